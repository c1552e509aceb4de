"""Validate tells the truth: nbgrader's Validate (the button of the student lab and of the
hub's Assignments tab, `nbgrader validate`) never contradicts the autograder. A notebook
that validates clean gets full marks on the visible tests, a visible test that the
autograder fails also fails Validate, and Validate's report carries the autograder's
message (the mistake and the fix), not just "AssertionError".

The autograder's side is the in-process scorer, which `tests/test_judge_equivalence.py`
proves equal to the judge on every catalogued mistake."""
from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

import pytest

from grader import notebooks, submissions
from grader.mistakes import catalogue
from grader.paths import ROOT
from grader.score import score_in_process

sys.path.insert(0, str(Path(__file__).parent))
import hostile  # noqa: E402  (lean: drops experiment cells nothing graded reads)

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "03-dropout", "dropout"
_STDERR_DROPOUT = '''
import sys
print("debugging my dropout", file=sys.stderr)
'''
CASES = {
    # a correct notebook whose answer also writes to stderr (a style the judge accepts)
    "correct": {},
    "demo mistakes": {"dropout": "no_rescale", "Dropout": "module_ignores_training",
                      "expected_without_rescale": "answer_with_rescale"},
    "other mistakes": {"dropout": "calls_builtin", "Dropout": "module_uses_nn_dropout",
                       "DropoutMLP": "mlp_dropout_after_last"},
}


def _answers(case: dict) -> dict:
    sources = submissions.solution_sources(ASSIGNMENT, NOTEBOOK)
    mistakes = catalogue(ASSIGNMENT)
    out = dict(sources, **{ex: mistakes[name].source.strip("\n") for ex, name in case.items()})
    if not case:
        out["dropout"] = _STDERR_DROPOUT.strip() + "\n" + out["dropout"]
    return out


def _validate(path: Path) -> dict:
    """What the Validate button reports, with the student lab's settings."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    config = Config()
    config.Execute.kernel_name = "python3"
    config.Execute.timeout = 120
    return Validator(config=config).validate(str(path))


def _visible_tests() -> list[str]:
    """Test cells with no hidden part (the release keeps a hidden test's cell, emptied)."""
    source = notebooks.load(ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    return [notebooks.grade_id(c) for c in source.cells
            if notebooks.is_test(c) and "BEGIN HIDDEN TESTS" not in c.source]


def _strip_ansi(text: str) -> str:
    """The report as the Validate dialog shows it: no colour codes, HTML entities read."""
    return html.unescape(re.sub(r"\x1b\[[0-9;]*m|<[^>]+>", "", text))


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_agrees_with_the_autograder(case, tmp_path):
    answers = _answers(CASES[case])
    nb = hostile.lean(submissions.fill(ASSIGNMENT, NOTEBOOK, answers))
    folder = tmp_path / ASSIGNMENT
    path = submissions.write(nb, folder / f"{NOTEBOOK}.ipynb")
    shutil.copytree(ROOT / "course" / ASSIGNMENT, folder, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.ipynb"))
    report = _validate(path)
    scored = score_in_process(ASSIGNMENT, NOTEBOOK, answers)
    visible = _visible_tests()
    failing = {gid: r.message for gid, r in scored.items() if gid in visible and r.score < r.max_score}
    by_source = {c.source: notebooks.grade_id(c) for c in nb.cells if notebooks.is_test(c)}
    reported = {by_source.get(f["source"]): _strip_ansi(f.get("error", "")) for f in report.get("failed", [])}
    assert not report.get("changed") and not report.get("type_changed"), report
    assert set(reported) == set(failing), (reported.keys(), failing.keys())
    if not failing:
        assert "failed" not in report and "passed" not in report or not report.get("failed"), report
    for gid, message in failing.items():
        first = message.strip().splitlines()[0].strip()
        assert first in reported[gid], f"{gid}: Validate says {reported[gid]!r}, the autograder {message!r}"
        assert "How to fix" in reported[gid], reported[gid]
    if case != "correct":
        assert failing, "the mistakes should fail some visible test"
