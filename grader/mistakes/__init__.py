"""Wrong answers that students typically write, one module per assignment.

Each module maps a mistake's name to a :class:`Mistake`: the exercise it answers and the
source of a solution cell that makes that mistake. ``tests/`` feeds every one of them to
the checks and asserts the points lost and the message; ``make demo`` submits some of them
as the class's "typical mistakes" student.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    exercise: str
    source: str
    summary: str


def _module(assignment: str):
    return importlib.import_module(f"grader.mistakes.{assignment.split('-', 1)[1].replace('-', '_')}")


def catalogue(assignment: str) -> dict[str, Mistake]:
    """The mistakes of one assignment folder name, e.g. ``"03-dropout"``."""
    return _module(assignment).MISTAKES


def demo_mistakes(assignment: str) -> dict[str, Mistake]:
    """The mistakes the demo class's "typical mistakes" student makes in this assignment."""
    module = _module(assignment)
    return {name: module.MISTAKES[name] for name in module.DEMO}
