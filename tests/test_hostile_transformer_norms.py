"""06-transformer-norms graded by the real pipeline (collection, nbgrader, sandbox, judge) against
submissions that attack what its checks rely on: the references (F.rms_norm,
nn.TransformerEncoderLayer, gradcheck) patched in the student's kernel, a module whose
state_dict lies about its norms, and a run rewritten after the question was answered. None
earns more than its honest answers score in-process; an honest classmate keeps full marks.
(The class-wide attacks on the sandbox itself are tests/test_hostile.py's, on 03-dropout.)"""
from __future__ import annotations

import os
from unittest import mock

import pytest

from grader import submissions
from grader.mistakes import catalogue
from grader.score import score_in_process

pytestmark = pytest.mark.slow

A, NB = "06-transformer-norms", "transformer_norms"

# rms_norm is LayerNorm in disguise; then every reference the checks could use is replaced in
# the kernel by something that agrees with it (the judge computes its references outside)
_PATCH_REFERENCES = '''
import torch.nn.functional as _F
_F.rms_norm = lambda x, shape, weight=None, eps=None: rms_norm(x, shape, weight, eps)
torch.rms_norm = _F.rms_norm
nn.RMSNorm.forward = lambda self, x: rms_norm(x, self.normalized_shape, self.weight, self.eps)
torch.autograd.gradcheck = lambda *args, **kwargs: True
'''
# the block shares one norm; its state_dict claims a norm2 and load_state_dict drops it
_LYING_STATE_DICT = '''
_real_state_dict, _real_load = ResidualBlock.state_dict, ResidualBlock.load_state_dict

def _claims_two_norms(self, *args, **kwargs):
    state = _real_state_dict(self, *args, **kwargs)
    for k in list(state):
        if k.startswith("norm."):
            state["norm1" + k[4:]] = state[k]
            state["norm2" + k[4:]] = state.pop(k)
    return state

def _loads_leniently(self, state, strict=True):
    state = {("norm" + k[5:] if k.startswith("norm1.") else k): v for k, v in state.items()
             if not k.startswith("norm2.")}
    return _real_load(self, state, strict=False)

ResidualBlock.state_dict, ResidualBlock.load_state_dict = _claims_two_norms, _loads_leniently
'''
# answers the smaller placement, then rewrites the run so that it looks like the larger
_TAMPERS_RUN = '''
depth["grad_norms"][larger_at_output][-1] = 1e9
'''

STUDENTS = {
    # name: ({exercise: "correct" | mistake name}, {exercise: code appended to the answer}, sabotage)
    "h06-patches-references": ({"rms_norm": "rms_mean_subtracted", "RMSNormFunction": "rmsf_none_for_weight"},
                               {"rms_norm": _PATCH_REFERENCES}, False),
    "h06-lying-state-dict": ({"ResidualBlock": "block_one_norm"}, {"ResidualBlock": _LYING_STATE_DICT}, False),
    # its later answers read the rewritten run: it may lose what it deserves, never gain
    "h06-tampers-run": ({"larger_at_output": "larger_smaller"}, {"larger_at_output": _TAMPERS_RUN}, True),
    "a06-honest": ({}, {}, False),
}


def _honest(choices):
    solutions = submissions.solution_sources(A, NB)
    mistakes = catalogue(A)
    return {ex: (src if choices.get(ex, "correct") == "correct" else mistakes[choices[ex]].source.strip("\n"))
            for ex, src in solutions.items()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from grader.autograde import autograde

    base = tmp_path_factory.mktemp("hostile06")
    subs, work = base / "submissions", base / "work"
    for name, (choices, payload, _) in STUDENTS.items():
        answers = _honest(choices)
        for exercise, extra in payload.items():
            answers[exercise] = answers[exercise] + "\n" + extra
        submissions.write(submissions.fill(A, NB, answers), subs / name / A / f"{NB}.ipynb")
    env = {"GRADER_CELL_TIMEOUT": "120", "GRADER_NOTEBOOK_TIMEOUT": "900"}
    with mock.patch.dict(os.environ, env):  # restored afterwards, even on failure
        results = autograde(subs, work, feedback=False, log=lambda m: None)
    return {r.student: r for r in results}


@pytest.mark.parametrize("name", sorted(STUDENTS))
def test_no_submission_earns_more_than_its_honest_answers(graded, name):
    choices, _, sabotage = STUDENTS[name]
    result = graded[name]
    assert not result.error, result.error
    deserved = {gid: r.score for gid, r in score_in_process(A, NB, _honest(choices)).items()}
    for cell in result.cells:
        assert cell.score <= deserved[cell.grade_id], (name, cell.grade_id, cell.score, cell.message)
        if not sabotage and deserved[cell.grade_id] == cell.max_score:
            assert cell.score == cell.max_score, (name, cell.grade_id, cell.message)


def test_the_attacks_are_named_as_the_honest_mistakes(graded):
    cells = {(r.student, c.grade_id): c for r in graded.values() for c in r.cells}
    assert "LayerNorm" in cells[("h06-patches-references", "test_rms_norm")].message
    assert "gradcheck" in cells[("h06-patches-references", "test_RMSNormFunction")].message \
        or "None for weight" in cells[("h06-patches-references", "test_RMSNormFunction")].message
    assert cells[("h06-lying-state-dict", "test_ResidualBlock_pre")].score == 0
    assert "shared" in cells[("h06-lying-state-dict", "test_ResidualBlock_pre")].message
    tampered = cells[("h06-tampers-run", "test_larger_at_output")]
    assert tampered.score == 0 and "smaller gradient norm at the last block" in tampered.message
    assert graded["a06-honest"].score == graded["a06-honest"].max_score == 26
