"""A mixed class of 03-dropout for the parallel-grading tests: complete, partial,
untouched, typical mistakes, and broken (a syntax error; a kernel that exits), each
notebook lean (the long experiment cells dropped) so that a class grades in seconds."""
from __future__ import annotations

from pathlib import Path

from grader import submissions
from grader.mistakes import demo_mistakes
from hostile import lean

ASSIGNMENT, NOTEBOOK = "03-dropout", "dropout"


def mixed_class(folder: Path, students: tuple[str, ...] | None = None) -> Path:
    a, n = ASSIGNMENT, NOTEBOOK
    solutions = submissions.solution_sources(a, n)
    nbs = {
        "alice": submissions.complete(a, n),
        "bob": submissions.partial(a, n),
        "carol": submissions.untouched(a, n),
        "dave": submissions.with_mistakes(a, n, list(demo_mistakes(a).values())),
        "erin": submissions.fill(a, n, {**solutions, "Dropout": "class Dropout(nn.Module:\n    pass"}),
        "frank": submissions.fill(a, n, {**solutions, "expected_without_rescale":
                                         "import os\nos._exit(3)"}),
    }
    for student, nb in nbs.items():
        if students is None or student in students:
            submissions.write(lean(nb), folder / student / a / f"{n}.ipynb")
    return folder


def table(results) -> dict:
    """(student, notebook) -> (score, error, [(grade_id, score, max, message)])."""
    return {(r.student, r.notebook): (r.score, r.error, [(c.grade_id, c.score, c.max_score, c.message)
                                                          for c in r.cells]) for r in results}
