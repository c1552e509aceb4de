"""``make demo``: a small demo class, autograded with real nbgrader.

Four students submit every assignment: ``alice`` complete, ``bob`` the first half of each
notebook, ``carol`` the untouched release, ``dave`` complete but with typical mistakes
(from ``grader/mistakes``). Their notebooks are written to ``classroom/demo/`` and graded
into the course's own gradebook (``classroom/gradebook.db``, with ``submitted/``,
``autograded/`` and ``feedback/`` beside it: the folders ``nbgrader_config.py`` names), so
the formgrader of ``make instructor`` shows the demo class next to any real one. A re-run
replaces the demo students' submissions and nobody else's.
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
# What formgrader shows as each demo student's name.
NAMES = {"alice": ("Alice", "Demo (complete)"), "bob": ("Bob", "Demo (half done)"),
         "carol": ("Carol", "Demo (untouched)"), "dave": ("Dave", "Demo (typical mistakes)")}


def _quiet_warning(message: str) -> None:
    """The demo's log without the no-sandbox warning, which is about students' code."""
    from .autograde import NO_SANDBOX_WARNING

    if message != NO_SANDBOX_WARNING:
        print(message)


def name_students(workdir: Path) -> None:
    """Give the demo students names in the gradebook (nbgrader creates them nameless)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}") as gb:
        for student, (first, last) in NAMES.items():
            gb.update_or_create_student(student, first_name=first, last_name=last)


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


def _sandbox_available() -> bool:
    from .sandbox import Sandbox, SandboxUnavailable

    try:
        Sandbox().check()
    except SandboxUnavailable:
        return False
    return True


def demo(workdir: Path = CLASSROOM, only: list[str] | None = None, sandbox: bool | None = None):
    """``sandbox``: None confines the kernels when this machine can (the demo notebooks are
    the course's own, so grading them unconfined is safe), True requires it, False never."""
    start = time.perf_counter()
    workdir = Path(workdir).resolve()
    folder = build_class(workdir / "demo", only)
    print(f"Demo class written to {folder} (alice: complete, bob: half, carol: untouched, dave: typical mistakes)")
    if sandbox is None:
        sandbox = _sandbox_available()
        if not sandbox:
            print("(no sandbox on this machine: the demo's own notebooks are graded unconfined)")
    results = autograde(folder, workdir, sandbox=sandbox, log=print if sandbox else _quiet_warning)
    name_students(workdir)
    print()
    print(report.score_table(results))
    print()
    print(report.class_mistakes(results))
    print()
    for r in results:
        if r.student == "dave":
            print(report.exercise_rows(r))
    print()
    page = report.write_html(report.gradebook_results(workdir), workdir / "report")
    print(f"Gradebook:  {workdir / 'gradebook.db'}  (make instructor: Formgrader shows it)")
    print(f"Grades CSV: {workdir / 'grades.csv'}   per-test messages: {workdir / 'cells.csv'}")
    print(f"Feedback:   {workdir / 'feedback'}/<student>/<assignment>/<notebook>.html")
    print(f"Report:     {page}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return results
