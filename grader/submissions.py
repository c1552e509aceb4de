"""Build submissions from the release: complete, partial, untouched, or with mistakes.
Used by ``make demo`` and by the tests."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import nbformat

from . import notebooks
from .paths import COURSE, SOLUTIONS


def solution_sources(assignment: str, name: str) -> dict[str, str]:
    """{exercise: the solution cell's source without the solution markers}."""
    nb = notebooks.load(SOLUTIONS / assignment / f"{name}.ipynb")
    return {notebooks.grade_id(c): notebooks.strip_markers(c.source) for c in nb.cells if notebooks.is_solution(c)}


def fill(assignment: str, name: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with the solution cells named in ``answers`` replaced."""
    nb = copy.deepcopy(notebooks.load(COURSE / assignment / f"{name}.ipynb"))
    for cell in nb.cells:
        gid = notebooks.grade_id(cell)
        if notebooks.is_solution(cell) and gid in answers:
            cell.source = answers[gid]
    return nb


def complete(assignment: str, name: str) -> nbformat.NotebookNode:
    return fill(assignment, name, solution_sources(assignment, name))


def partial(assignment: str, name: str) -> nbformat.NotebookNode:
    """The first half of the exercises solved, the rest untouched."""
    sources = solution_sources(assignment, name)
    keep = list(sources)[: math.ceil(len(sources) / 2)]
    return fill(assignment, name, {k: sources[k] for k in keep})


def untouched(assignment: str, name: str) -> nbformat.NotebookNode:
    return fill(assignment, name, {})


def with_mistakes(assignment: str, name: str, mistakes) -> nbformat.NotebookNode:
    """Complete, except the exercises answered by the given Mistake objects."""
    sources = solution_sources(assignment, name)
    for mistake in mistakes:
        sources[mistake.exercise] = mistake.source.strip("\n")
    return fill(assignment, name, sources)


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path
