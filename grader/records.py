"""Result records: what a graded notebook scored, cell by cell, with the feedback message.

Scores come from the gradebook (nbgrader's truth), messages from the autograded notebooks
(the judge's outputs). Every text that may come from a student (exception messages, names)
is cleaned here: no control characters in the console report, and ``cells.csv`` escapes a
leading ``= + - @`` so that a spreadsheet never reads a message as a formula.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks
from .paths import SOLUTIONS

CELL_COLUMNS = ["student", "assignment", "notebook", "test", "exercise", "score", "max_score", "message"]


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


def clean(text: str, limit: int = 4000) -> str:
    """Printable text: control characters (ANSI escapes included) removed, newlines and
    tabs kept, at most ``limit`` characters."""
    text = "".join(ch for ch in str(text) if ch in "\n\t" or ch.isprintable())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def spreadsheet_safe(value) -> str:
    """A CSV field no spreadsheet evaluates: a leading = + - @ (or tab, CR) gets a quote."""
    if value is None:
        return ""
    text = clean(value) if isinstance(value, str) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def message_of(cell) -> str:
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
    return clean("\n".join(parts))


def results(workdir: Path, db_url: str, assignment: str, student: str | list[str]) -> list[NotebookResult]:
    """Scores from the gradebook and messages from the autograded notebooks; ``student``
    may be a list (one gradebook connection and one read of the sources for a class)."""
    from nbgrader.api import Gradebook

    sources = [(source.stem, notebooks.load(source)) for source in sorted((SOLUTIONS / assignment).glob("*.ipynb"))]
    out: list[NotebookResult] = []
    with Gradebook(db_url) as gb:
        for one in [student] if isinstance(student, str) else student:
            out.extend(_results(gb, workdir, assignment, one, sources))
    return out


def _results(gb, workdir: Path, assignment: str, student: str, sources) -> list[NotebookResult]:
    from nbgrader.api import MissingEntry

    out = []
    for name, source_nb in sources:
        names = notebooks.exercises(source_nb)
        result = NotebookResult(student, assignment, name)
        graded = workdir / "autograded" / student / assignment / f"{name}.ipynb"
        try:
            sub = gb.find_submission_notebook(name, assignment, student)
        except MissingEntry:
            result.error = "not submitted"
            out.append(result)
            continue
        messages = {}
        if graded.exists():
            try:
                for cell in notebooks.load(graded).cells:
                    if notebooks.is_test(cell):
                        messages[notebooks.grade_id(cell)] = message_of(cell)
            except Exception:
                result.error = "the autograded notebook cannot be read"
        else:
            result.error = "nbgrader could not grade this notebook (see the log above)"
        order = {gid: i for i, gid in enumerate(notebooks.grade_id(c) for c in source_nb.cells)}
        for grade in sorted(sub.grades, key=lambda g: order.get(g.name, 1e9)):
            if not grade.name.startswith("test_"):
                continue
            result.cells.append(CellResult(
                grade.name, notebooks.exercise_of(grade.name, names),
                float(grade.score or 0.0), float(grade.max_score), messages.get(grade.name, ""),
            ))
        out.append(result)
    return out


def export_cells(results_: list[NotebookResult], path: Path) -> None:
    """One row per student and test cell, with the feedback message: the class's mistakes."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CELL_COLUMNS)
        for r in results_:
            for c in r.cells:
                writer.writerow([spreadsheet_safe(v) for v in (
                    r.student, r.assignment, r.notebook, c.grade_id, c.exercise, c.score,
                    c.max_score, c.message)])
