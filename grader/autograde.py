"""Autograde a folder of submissions with real nbgrader, safely.

``SUBMISSIONS_DIR/<student>/<assignment>/*.ipynb`` is collected into a working folder
(``classroom/`` for a real class) by ``grader.collect``, which refuses links and odd names
and normalises every notebook; then nbgrader ``generate_assignment``, ``autograde`` (whose
execute step is the judge: ``grader.judge``, each kernel in ``grader.sandbox``),
``generate_feedback`` and ``export`` run there. Per-cell scores come back from the
gradebook and messages from the autograded notebooks (``grader.records``).
"""
from __future__ import annotations

from pathlib import Path

from .collect import collect
from .nbgrader_apps import course_dirs, nbgrader
from .paths import CLASSROOM
from .records import CellResult, NotebookResult, export_cells, message_of, results  # noqa: F401
from .sandbox import Sandbox, SandboxUnavailable

NO_SANDBOX_WARNING = ("WARNING: grading WITHOUT a sandbox (--no-sandbox): the students' code runs with "
                      "your permissions and can read or change anything you can. Use it only for "
                      "trusted submissions.")

_message = message_of  # the name tests and older scripts use


def sandbox_options(sandbox: bool) -> list[str]:
    """nbgrader options for the confinement; checks that a sandbox can start at all."""
    if not sandbox:
        return ["--Sandbox.enabled=False"]
    problem = None
    try:
        Sandbox().check()
    except SandboxUnavailable as exc:
        problem = str(exc)
    if problem:
        raise SystemExit(f"Cannot autograde: {problem}\nTo grade trusted submissions anyway, "
                         "add --no-sandbox.")
    return []


def autograde(submissions: Path, workdir: Path = CLASSROOM, feedback: bool = True,
              log=print, sandbox: bool = True) -> list[NotebookResult]:
    """Grade every submission under ``submissions``; returns one result per notebook.
    Entries that could not be collected are logged and listed in ``workdir/problems.txt``;
    nbgrader's own messages go to ``workdir/nbgrader.log``."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "nbgrader.log").write_text("")
    options = sandbox_options(sandbox)
    if not sandbox:
        log(NO_SANDBOX_WARNING)
    collection = collect(Path(submissions), workdir, log=log)
    (workdir / "problems.txt").write_text("".join(p + "\n" for p in collection.problems))
    for problem in collection.problems:
        log(f"not graded: {problem}")
    if not collection.found:
        raise SystemExit(f"no submissions found under {submissions} "
                         "(expected <student>/<assignment>/<notebook>.ipynb with a known assignment)")
    dirs = course_dirs(workdir)
    db_url = f"sqlite:///{workdir / 'gradebook.db'}"
    everything = []
    for assignment, students in collection.found.items():
        log(f"nbgrader: {assignment}: generating the gradebook entry")
        nbgrader("generate_assignment", assignment, "--force", *dirs)
        log(f"nbgrader: {assignment}: autograding {len(students)} submission(s)"
            + ("" if sandbox else " WITHOUT a sandbox"))
        run = nbgrader("autograde", assignment, "--force", *dirs, *options, check=False)
        with open(workdir / "nbgrader.log", "a") as f:
            f.write(f"--- nbgrader autograde {assignment} (exit {run.returncode})\n{run.stdout}\n")
        if run.returncode != 0:
            log(f"nbgrader autograde reported problems (exit {run.returncode}); grading went on:\n"
                + run.stdout.strip()[-2000:])
        if feedback:
            nbgrader("generate_feedback", assignment, "--force", *dirs, check=False)
        for student in students:
            everything.extend(results(workdir, db_url, assignment, student))
    nbgrader("export", f"--to={workdir / 'grades.csv'}", *dirs, check=False)
    export_cells(everything, workdir / "cells.csv")
    return everything
