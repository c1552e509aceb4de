"""Reading course notebooks: exercises, test cells, solution text."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

_SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)[ \t]*\n?", re.MULTILINE)


def load(path: str | Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.cell_type == "code"


def exercises(nb) -> list[str]:
    """Exercise names in notebook order: the grade_ids of the solution cells."""
    return [grade_id(c) for c in nb.cells if is_solution(c)]


def exercise_of(test_id: str, names: list[str]) -> str | None:
    """The exercise a test cell grades: ``test_F`` or ``test_F_*`` (longest name wins)."""
    best = None
    for name in names:
        if test_id == f"test_{name}" or test_id.startswith(f"test_{name}_"):
            if best is None or len(name) > len(best):
                best = name
    return best


def points(nb) -> dict[str, float]:
    """Points available per exercise, from the test cells' metadata."""
    names = exercises(nb)
    total = {name: 0.0 for name in names}
    for cell in nb.cells:
        if is_test(cell):
            ex = exercise_of(grade_id(cell), names)
            if ex is not None:
                total[ex] += float(nbgrader_meta(cell).get("points", 0))
    return total


def strip_markers(source: str) -> str:
    """Solution text with the ### BEGIN/END SOLUTION (and HIDDEN TESTS) lines removed."""
    return _SOLUTION_MARKERS.sub("", source)


def assigned_names(tree) -> set[str]:
    import ast

    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
              for a in n.names}
    return names | {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def question_runs(nb) -> dict[str, list[str]]:
    """{exercise: the locked experiment cells its answer and tests read, in notebook order}.

    A question is answered from a run: its solution reads the run's variables (``lams[best]``)
    and its test passes them to a check (``check_best_lambda(best_lambda, lams, lam_rows)``).
    Each name comes from the locked cell that first assigns it, and that run reads the runs
    before it that assign the names it uses. The setup cell is not a run: it always runs. A
    notebook runs these cells where they stand; so do the in-process scorer
    (:func:`grader.score.score_in_process`) and the tests that replay a notebook."""
    import ast

    names = exercises(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    order = [grade_id(c) for c in code]
    trees = {grade_id(c): ast.parse(strip_markers(c.source)) for c in code}
    assigned: dict[str, str] = {}  # name -> grade_id of the first locked cell assigning it
    needs: dict[str, list[str]] = {}

    def read(exercise, used):
        for name in used:
            run = assigned.get(name, "setup")
            if run != "setup" and run not in needs.setdefault(exercise, []):
                needs[exercise].append(run)

    for cell in code:
        gid = grade_id(cell)
        tree = trees[gid]
        if is_test(cell):
            exercise = exercise_of(gid, names)
            read(exercise, [arg.id for node in ast.walk(tree) if isinstance(node, ast.Call)
                            for arg in node.args if isinstance(arg, ast.Name) and arg.id != exercise])
        elif is_solution(cell):
            read(gid, read_names(tree))
        else:
            for name in assigned_names(tree):
                assigned.setdefault(name, gid)
    for runs in needs.values():  # a run reads what earlier runs computed: take those too
        todo = list(runs)
        while todo:
            gid = todo.pop()
            for name in read_names(trees[gid]):
                origin = assigned.get(name, "setup")
                if origin != "setup" and origin not in runs and order.index(origin) < order.index(gid):
                    runs.append(origin)
                    todo.append(origin)
        runs.sort(key=order.index)
    return {exercise: needs[exercise] for exercise in names if needs.get(exercise)}


def read_names(tree) -> list[str]:
    """Names a cell reads that it does not assign itself."""
    import ast

    own = assigned_names(tree)
    return [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in own]
