"""Shared by the test modules: score a mistake with the in-process scorer."""
from __future__ import annotations

from grader import notebooks
from grader.mistakes import catalogue
from grader.paths import source_notebooks
from grader.score import score_in_process


def notebook_of(assignment: str) -> str:
    (nb,) = source_notebooks(assignment)
    return nb.stem


def run_cells(assignment: str, cells, guarded: bool = False) -> str:
    """The sources of the notebook's locked experiment cells ``cells`` (grade_ids), in order.

    The in-process scorer runs only the setup, solution and test cells; a question whose test
    cells read the variables of a run (``check_best_p(best_p, sweep)``) needs that run first:
    put this before the question's answer."""
    nb = notebooks.load(source_notebooks(assignment)[0])
    by_id = {notebooks.grade_id(c): c.source for c in nb.cells}
    if guarded:  # each run on its own, as a notebook cell: its error stops neither the next nor the answer
        return "".join(f"try:\n    exec({by_id[gid]!r}, globals())\nexcept Exception:\n    pass\n"
                       for gid in cells)
    return "".join(by_id[gid] + "\n" for gid in cells)


def lost_points(assignment: str, mistake_name: str, runs: dict | None = None):
    """({test grade_id: points lost}, {test grade_id: message}) for one catalogued mistake.
    ``runs`` maps an exercise to the experiment cells its tests need (see :func:`run_cells`)."""
    mistake = catalogue(assignment)[mistake_name]
    source = mistake.source
    if runs and mistake.exercise in runs:
        source = run_cells(assignment, runs[mistake.exercise], guarded=True) + source
    results = score_in_process(assignment, notebook_of(assignment), {mistake.exercise: source},
                               only=mistake.exercise)
    lost = {gid: r.max_score - r.score for gid, r in results.items() if r.score < r.max_score}
    messages = {gid: r.message for gid, r in results.items() if r.message}
    return lost, messages


def assert_mistake(assignment: str, mistake_name: str, expected_lost: dict, fragments: dict,
                   runs: dict | None = None):
    """The mistake loses exactly ``expected_lost`` and each listed cell's message contains
    its fragment (case-insensitive)."""
    lost, messages = lost_points(assignment, mistake_name, runs)
    assert lost == expected_lost, f"{mistake_name}: lost {lost}, expected {expected_lost}; messages {messages}"
    for gid, fragment in fragments.items():
        assert fragment.lower() in messages.get(gid, "").lower(), (
            f"{mistake_name}: message of {gid} lacks {fragment!r}: {messages.get(gid)!r}")


def mistake_tests(assignment: str, expected: dict, runs: dict | None = None):
    """The two tests every ``test_<topic>_mistakes.py`` module runs on its ``EXPECTED``
    ({mistake: ({test cell: points lost}, {test cell: message fragment})}): every mistake
    in the catalogue has an expectation, and each is caught and named as expected.
    ``runs`` maps question exercises to the experiment cells their tests need."""
    import pytest

    def test_every_mistake_has_an_expectation():
        assert set(expected) == set(catalogue(assignment))

    @pytest.mark.parametrize("name", sorted(expected))
    def test_mistake_is_caught_and_named(name):
        lost, fragments = expected[name]
        assert_mistake(assignment, name, lost, fragments, runs)

    return test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named


def question_runs(assignment: str) -> dict[str, list[str]]:
    """{exercise: the experiment cells its tests read}: a test cell that passes a name other
    than its exercise's (``check_best_p(best_p, sweep)``) needs the locked cell that assigns
    that name. Names the setup cell assigns are left out: their checks run the experiment
    themselves when the notebook's run did not happen (04-batchnorm's ``lr_sweep = None``)."""
    import ast

    nb = notebooks.load(source_notebooks(assignment)[0])
    names = notebooks.exercises(nb)
    assigned: dict[str, str] = {}  # name -> grade_id of the first locked cell assigning it
    needs: dict[str, list[str]] = {}
    for cell in nb.cells:
        gid = notebooks.grade_id(cell)
        if cell.cell_type != "code":
            continue
        tree = ast.parse(notebooks.strip_markers(cell.source))
        if notebooks.is_test(cell):
            exercise = notebooks.exercise_of(gid, names)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    for arg in node.args:
                        if (isinstance(arg, ast.Name) and arg.id != exercise
                                and assigned.get(arg.id, "setup") != "setup"):
                            run = assigned[arg.id]
                            if run not in needs.setdefault(exercise, []):
                                needs[exercise].append(run)
        elif not notebooks.is_solution(cell):
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    assigned.setdefault(node.id, gid)
    # a run reads what earlier runs computed: take those too, in notebook order
    order = [notebooks.grade_id(c) for c in nb.cells]
    sources = {notebooks.grade_id(c): c.source for c in nb.cells if c.cell_type == "code"}
    for exercise, runs in needs.items():
        todo = list(runs)
        while todo:
            gid = todo.pop()
            tree = ast.parse(sources[gid])
            own = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            own |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in own:
                    origin = assigned.get(node.id, "setup")
                    if origin != "setup" and origin not in runs and order.index(origin) < order.index(gid):
                        runs.append(origin)
                        todo.append(origin)
        runs.sort(key=order.index)
    return {exercise: needs[exercise] for exercise in names if exercise in needs}


def with_runs(assignment: str, answers: dict[str, str]) -> dict[str, str]:
    """``answers`` with the experiment cells that question tests read (:func:`question_runs`)
    put before the first answer that needs them."""
    out, done = dict(answers), set()
    for exercise, needed in question_runs(assignment).items():
        runs = [gid for gid in needed if gid not in done]
        if runs and exercise in out:
            out[exercise] = run_cells(assignment, runs, guarded=True) + out[exercise]
            done.update(runs)
    return out
