"""Honest answers grade exactly as before: every catalogued mistake, and the solution,
scored by the judge against a sandboxed kernel gets the same points and the same message
as the in-process scorer (checks and student code in one namespace) that the mistake
tests use. One kernel per assignment; each mistake redefines the answers in it."""
from __future__ import annotations

import re

import pytest

from grader import notebooks
from grader.judge import Judge
from grader.mistakes import catalogue
from grader.paths import SOLUTIONS, assignments, source_notebooks
from grader.sandbox import Sandbox
from grader.score import score_in_process
from helpers import question_runs, run_cells

pytestmark = pytest.mark.slow

_ADDRESS = re.compile(r"0x[0-9a-f]+")


def _normal(message):
    return None if message is None else _ADDRESS.sub("0x?", message)


def _judged(assignment: str) -> dict:
    """{(case, test id): message or None} for the solution and every catalogued mistake."""
    (path,) = source_notebooks(assignment)
    nb = notebooks.load(path)
    setup = next(c.source for c in nb.cells if notebooks.grade_id(c) == "setup")
    solutions = {notebooks.grade_id(c): notebooks.strip_markers(c.source) for c in nb.cells if notebooks.is_solution(c)}
    names = list(solutions)
    tests = [(notebooks.grade_id(c), c.source) for c in nb.cells if notebooks.is_test(c)]
    cases = {"solution": (None, None)}
    cases.update({name: (m.exercise, m.source) for name, m in catalogue(assignment).items()})
    judge = Judge(Sandbox(), cell_timeout=120, notebook_timeout=3600)
    out = {}
    judge.open()
    try:
        assert judge.execute(setup).status == "ok"
        # the runs that questions' tests read (helpers.question_runs), once: they are locked
        order = [notebooks.grade_id(c) for c in nb.cells]
        runs = sorted({gid for needed in question_runs(assignment).values() for gid in needed},
                      key=order.index)
        for case, (exercise, source) in cases.items():
            for name in names:
                judge.execute(source if name == exercise else solutions[name])
            if runs:  # after the first case's answers (the solution): the runs call them,
                outcome = judge.execute(run_cells(assignment, runs))
                assert outcome.status == "ok", [o for o in outcome.outputs if o.get("output_type") == "error"]
                runs = []
                for name in names:  # and the question answers read the runs
                    judge.execute(source if name == exercise else solutions[name])
            for gid, code in tests:
                if exercise is None or notebooks.exercise_of(gid, names) == exercise:
                    out[(case, gid)] = _normal(judge.verdict(gid, code))
    finally:
        judge.close()
    return out


def _in_process(assignment: str) -> dict:
    name = source_notebooks(assignment)[0].stem
    out = {}
    solutions = {notebooks.grade_id(c): notebooks.strip_markers(c.source)
                 for c in notebooks.load(source_notebooks(assignment)[0]).cells if notebooks.is_solution(c)}
    for gid, r in score_in_process(assignment, name, solutions).items():
        out[("solution", gid)] = None if r.score == r.max_score else _normal(r.message)
    for case, m in catalogue(assignment).items():
        for gid, r in score_in_process(assignment, name, {m.exercise: m.source}, only=m.exercise).items():
            out[(case, gid)] = None if r.score == r.max_score else _normal(r.message)
    return out


@pytest.mark.parametrize("assignment", assignments())
def test_the_judge_scores_like_the_in_process_scorer(assignment):
    judged, expected = _judged(assignment), _in_process(assignment)
    assert set(judged) == set(expected)
    differ = {k: (judged[k], expected[k]) for k in expected if judged[k] != expected[k]}
    assert not differ, differ
    assert any(v is not None for v in judged.values())  # the mistakes do fail
