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
