"""``python -m grader check NOTEBOOK``: grade one notebook exactly as the instructor's
autograder would (real nbgrader, hidden tests included) and print a row per exercise."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat

from . import report
from .autograde import autograde
from .paths import SOLUTIONS, assignments
from .sandbox import Sandbox, SandboxUnavailable


def find_assignment(notebook: Path) -> str:
    """The assignment a notebook belongs to: its folder's name, or the assignment that has
    a notebook of the same file name."""
    if (SOLUTIONS / notebook.parent.name / notebook.name).exists():
        return notebook.parent.name
    matches = [a for a in assignments() if (SOLUTIONS / a / notebook.name).exists()]
    if len(matches) == 1:
        return matches[0]
    raise SystemExit(
        f"{notebook} is not a notebook of this course (expected one of: "
        + ", ".join(f"{a}/{p.name}" for a in assignments() for p in (SOLUTIONS / a).glob('*.ipynb'))
        + ")"
    )


def check(path: str, messages: bool = True) -> int:
    notebook = Path(path).resolve()
    if not notebook.exists():
        print(f"no such notebook: {path}")
        return 2
    try:
        nbformat.read(str(notebook), as_version=4)
    except Exception as exc:  # not JSON, not a notebook
        print(f"{path} cannot be read as a notebook: {exc}")
        return 2
    assignment = find_assignment(notebook)
    with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:
        submissions = Path(tmp) / "submissions" / "you" / assignment
        submissions.mkdir(parents=True)
        shutil.copy2(notebook, submissions / notebook.name)
        try:
            Sandbox().check()
            confined = True
        except SandboxUnavailable:  # your own notebook on your own machine: fine unconfined
            confined = False
        print(f"Running {notebook.name} top to bottom in a fresh kernel (hidden tests included"
              + ("" if confined else "; no sandbox on this machine, which is fine for your own code")
              + ")...")
        results = autograde(Path(tmp) / "submissions", Path(tmp) / "work", feedback=False,
                            log=lambda m: None, sandbox=confined)
    mine = [r for r in results if r.notebook == notebook.stem]
    if not mine or (mine[0].error and not mine[0].cells):
        print(f"{path} could not be graded: {mine[0].error if mine else 'no result'}")
        return 1
    print(report.exercise_rows(mine[0], messages=messages))
    return 0
