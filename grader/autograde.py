"""Autograde a folder of submissions with real nbgrader.

``SUBMISSIONS_DIR/<student>/<assignment>/*.ipynb`` is collected into a working folder
(``classroom/`` for a real class), then nbgrader ``autograde``, ``generate_feedback`` and
``export`` run there; the per-cell scores come back from the SQLite gradebook and the
feedback messages from the autograded notebooks.
"""
from __future__ import annotations

import csv
import datetime as _dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks
from .paths import CLASSROOM, SOLUTIONS, assignments
from .repair import repair_file
from .release import nbgrader


@dataclass
class CellResult:
    grade_id: str
    exercise: str | None
    score: float
    max_score: float
    message: str = ""


@dataclass
class NotebookResult:
    student: str
    assignment: str
    notebook: str
    cells: list[CellResult] = field(default_factory=list)
    error: str = ""  # set when nbgrader could not grade the notebook at all

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cells)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells)

    def exercises(self) -> list[tuple[str, float, float, list[str]]]:
        """Rows (exercise, earned, available, failure messages) in notebook order."""
        rows: dict[str, list] = {}
        for cell in self.cells:
            row = rows.setdefault(cell.exercise or cell.grade_id, [0.0, 0.0, []])
            row[0] += cell.score
            row[1] += cell.max_score
            if cell.message and cell.score < cell.max_score:
                row[2].append(f"{cell.grade_id}: {cell.message}")
        return [(name, *values) for name, values in rows.items()]


def _dirs(workdir: Path) -> list[str]:
    return [
        f"--CourseDirectory.submitted_directory={workdir / 'submitted'}",
        f"--CourseDirectory.autograded_directory={workdir / 'autograded'}",
        f"--CourseDirectory.feedback_directory={workdir / 'feedback'}",
        f"--CourseDirectory.release_directory={workdir / 'release'}",
        f"--CourseDirectory.db_url=sqlite:///{workdir / 'gradebook.db'}",
    ]


def collect(submissions: Path, workdir: Path, log=print) -> dict[str, list[str]]:
    """Copy ``submissions/<student>/<assignment>/*.ipynb`` into ``workdir/submitted``,
    putting back any exercise or test cell the student deleted (see grader/repair.py).
    Returns {assignment: [students]} for the assignments this course knows."""
    known = set(assignments())
    found: dict[str, list[str]] = {}
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
    for student_dir in sorted(p for p in Path(submissions).iterdir() if p.is_dir()):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            if assignment_dir.name not in known or not list(assignment_dir.glob("*.ipynb")):
                continue
            dest = workdir / "submitted" / student_dir.name / assignment_dir.name
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for nb in assignment_dir.glob("*.ipynb"):
                shutil.copy2(nb, dest / nb.name)
                restored = repair_file(dest / nb.name, assignment_dir.name)
                if restored:
                    log(f"{student_dir.name}/{assignment_dir.name}/{nb.name}: put back deleted cells "
                        + ", ".join(restored))
            (dest / "timestamp.txt").write_text(stamp)
            found.setdefault(assignment_dir.name, []).append(student_dir.name)
    return found


def _message(cell) -> str:
    """The feedback a failed test cell printed: the check's message, or the error."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            ename, evalue = out.get("ename", ""), out.get("evalue", "")
            if ename == "AssertionError" and evalue:
                parts.append(evalue)
            elif ename == "NameError":
                parts.append(f"{evalue}: run the exercise's cell first (or it raised an error there).")
            elif ename == "CellTimeoutError":
                parts.append("the cell did not finish before the time limit (an endless loop?).")
            else:
                parts.append(f"{ename}: {evalue}".strip(": "))
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            parts.append("the cell wrote to stderr (a warning?), which nbgrader scores 0:\n    "
                         + "".join(out.get("text", "")).strip()[:300])
    return "\n".join(parts)


def results(workdir: Path, assignment: str, student: str) -> list[NotebookResult]:
    """Scores from the gradebook and messages from the autograded notebooks."""
    from nbgrader.api import Gradebook, MissingEntry

    out = []
    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}") as gb:
        for source in sorted((SOLUTIONS / assignment).glob("*.ipynb")):
            name = source.stem
            names = notebooks.exercises(notebooks.load(source))
            result = NotebookResult(student, assignment, name)
            graded = workdir / "autograded" / student / assignment / f"{name}.ipynb"
            try:
                sub = gb.find_submission_notebook(name, assignment, student)
            except MissingEntry:
                result.error = "not submitted"
                out.append(result)
                continue
            if not graded.exists():
                result.error = "nbgrader could not grade this notebook (see the log above)"
            messages = {}
            if graded.exists():
                for cell in notebooks.load(graded).cells:
                    if notebooks.is_test(cell):
                        messages[notebooks.grade_id(cell)] = _message(cell)
            order = {gid: i for i, gid in enumerate(notebooks.grade_id(c) for c in notebooks.load(source).cells)}
            for grade in sorted(sub.grades, key=lambda g: order.get(g.name, 1e9)):
                if not grade.name.startswith("test_"):
                    continue
                result.cells.append(CellResult(
                    grade.name, notebooks.exercise_of(grade.name, names),
                    float(grade.score or 0.0), float(grade.max_score), messages.get(grade.name, ""),
                ))
            out.append(result)
    return out


def autograde(submissions: Path, workdir: Path = CLASSROOM, feedback: bool = True,
              log=print) -> list[NotebookResult]:
    """Grade every submission under ``submissions``; returns one result per notebook."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    found = collect(Path(submissions), workdir, log=log)
    if not found:
        raise SystemExit(f"no submissions found under {submissions} "
                         "(expected <student>/<assignment>/*.ipynb with a known assignment)")
    everything = []
    for assignment, students in found.items():
        log(f"nbgrader: {assignment}: generating the gradebook entry")
        nbgrader("generate_assignment", assignment, "--force", *_dirs(workdir))
        log(f"nbgrader: {assignment}: autograding {len(students)} submission(s)")
        run = nbgrader("autograde", assignment, "--force", *_dirs(workdir), check=False)
        if run.returncode != 0:
            log(f"nbgrader autograde reported problems (exit {run.returncode}); grading went on:\n"
                + run.stdout.strip()[-2000:])
        if feedback:
            nbgrader("generate_feedback", assignment, "--force", *_dirs(workdir), check=False)
        for student in students:
            everything.extend(results(workdir, assignment, student))
    nbgrader("export", f"--to={workdir / 'grades.csv'}", *_dirs(workdir), check=False)
    _export_cells(everything, workdir / "cells.csv")
    return everything


def _export_cells(results_: list[NotebookResult], path: Path) -> None:
    """One row per student and test cell, with the feedback message: the class's mistakes."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "notebook", "test", "exercise", "score", "max_score", "message"])
        for r in results_:
            for c in r.cells:
                writer.writerow([r.student, r.assignment, r.notebook, c.grade_id, c.exercise,
                                 c.score, c.max_score, c.message])
