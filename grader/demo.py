"""``make demo``: a small demo class, autograded with real nbgrader.

Four students submit every assignment: ``alice`` complete, ``bob`` the first half of each
notebook, ``carol`` the untouched release, ``dave`` complete but with typical mistakes
(from ``grader/mistakes``). Everything lands in ``classroom/demo/``.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import report, submissions
from .autograde import autograde
from .mistakes import demo_mistakes
from .paths import CLASSROOM, SOLUTIONS, assignments

STUDENTS = ("alice", "bob", "carol", "dave")


def build_class(folder: Path, only: list[str] | None = None) -> Path:
    """Write ``folder/<student>/<assignment>/<notebook>.ipynb`` for the four students."""
    shutil.rmtree(folder, ignore_errors=True)
    for assignment in only or assignments():
        for source in sorted((SOLUTIONS / assignment).glob("*.ipynb")):
            name = source.stem
            mistakes = list(demo_mistakes(assignment).values())
            nbs = {
                "alice": submissions.complete(assignment, name),
                "bob": submissions.partial(assignment, name),
                "carol": submissions.untouched(assignment, name),
                "dave": submissions.with_mistakes(assignment, name, mistakes),
            }
            for student, nb in nbs.items():
                submissions.write(nb, folder / student / assignment / f"{name}.ipynb")
    return folder


def demo(workdir: Path = CLASSROOM / "demo", only: list[str] | None = None):
    start = time.perf_counter()
    workdir = Path(workdir).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    folder = build_class(workdir / "submissions", only)
    print(f"Demo class written to {folder} (alice: complete, bob: half, carol: untouched, dave: typical mistakes)")
    results = autograde(folder, workdir)
    print()
    print(report.score_table(results))
    print()
    print(report.class_mistakes(results))
    print()
    for r in results:
        if r.student == "dave":
            print(report.exercise_rows(r))
    print()
    print(f"Gradebook:  {workdir / 'gradebook.db'}")
    print(f"Grades CSV: {workdir / 'grades.csv'}   per-test messages: {workdir / 'cells.csv'}")
    print(f"Feedback:   {workdir / 'feedback'}/<student>/<assignment>/<notebook>.html")
    print(f"({time.perf_counter() - start:.0f} s)")
    return results
