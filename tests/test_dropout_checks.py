"""03-dropout: correct answers written differently get full marks; checks are quiet,
leave the global RNG alone, and their statistical tolerances are as safe as claimed."""
import math

import pytest
import torch

from grader.checks import dropout as checks
from grader.checks._common import binomial_tolerance
from grader.score import score_in_process
from grader.submissions import solution_sources

A, NB = "03-dropout", "dropout"

# The questions whose tests read the notebook's sweep: the tests of dropout's own checks
# leave the sweep out (runs=False), and these with it.
RUN_QUESTIONS = ("best_p", "variance_ratio")

ALTERNATIVES = {
    "bernoulli": '''
def dropout(x, p=0.5, training=True, generator=None):
    if p < 0 or p > 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = torch.bernoulli(torch.full_like(x, 1 - p), generator=generator)
    return mask * x / (1 - p)
''',
    "where_float64": '''
def dropout(x, p=0.5, training=True, generator=None):
    if not (0.0 <= p <= 1.0):
        raise ValueError("p must be a probability, got %r" % p)
    if not training:
        return x
    if p == 1.0:
        return x * 0
    u = torch.rand(x.shape, generator=generator, dtype=torch.float64)
    return torch.where(u < p, torch.zeros((), dtype=x.dtype), x / (1 - p)).to(x.dtype)
''',
    "uniform_inplace_on_new_tensor": '''
def dropout(x, p=0.5, training=True, generator=None):
    if not 0 <= p <= 1:
        raise ValueError(f"bad p {p}")
    if training is False or p == 0:
        return x.clone()
    u = torch.empty_like(x).uniform_(0, 1, generator=generator)
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return x * (u > p).to(x.dtype) * scale
''',
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_other_correct_dropouts_get_full_marks(name):
    results = score_in_process(A, NB, {"dropout": ALTERNATIVES[name]}, runs=False)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score and r.exercise not in RUN_QUESTIONS}
    assert lost == {}


def test_solution_gets_full_marks_under_many_global_seeds():
    for seed in range(5):
        torch.manual_seed(seed)
        results = {g: r for g, r in score_in_process(A, NB, runs=False).items() if r.exercise not in RUN_QUESTIONS}
        assert all(r.score == r.max_score for r in results.values()), {g: r.message for g, r in results.items() if r.message}


# Answers to the questions written differently: the sum instead of the mean over the draws
# (same argmin), a Python loop, the unbiased variance (same ratio), a 0-dim tensor.
QUESTION_ALTERNATIVES = {
    "best_p": """
totals = [float(sweep["val_loss"][k].sum()) for k in range(len(p_values))]
best_p = p_values[totals.index(min(totals))]
""",
    "variance_ratio": """
variance_ratio = (sweep["curves"][p_values.index(0.5)].var(dim=0).mean()
                  / sweep["curves"][p_values.index(0.0)].var(dim=0).mean())
""",
}


def test_questions_on_the_run_get_full_marks_from_the_solution_and_from_other_answers():
    sources = solution_sources(A, NB)
    for answers in ({q: sources[q] for q in RUN_QUESTIONS}, QUESTION_ALTERNATIVES):
        results = {g: r for g, r in score_in_process(A, NB, answers).items() if r.exercise in RUN_QUESTIONS}
        assert len(results) == 4
        assert all(r.score == r.max_score for r in results.values()), {g: r.message for g, r in results.items()}


def test_stub_scores_zero_with_a_not_implemented_message():
    stub = 'def dropout(x, p=0.5, training=True, generator=None):\n    raise NotImplementedError()\n'
    results = score_in_process(A, NB, {"dropout": stub}, only="dropout")
    assert results and all(r.score == 0 for r in results.values())
    assert all("not implemented yet" in r.message for r in results.values())


def test_a_warning_from_student_code_does_not_reach_stderr():
    noisy = ALTERNATIVES["bernoulli"].replace(
        "    if not training", "    import warnings; warnings.warn('student warning')\n    if not training")
    results = score_in_process(A, NB, {"dropout": noisy}, only="dropout")
    assert all(r.score == r.max_score for r in results.values()), {g: r.message for g, r in results.items()}


def test_checks_leave_the_global_rng_as_they_found_it():
    from grader.hidden import dropout as hidden

    namespace = {}
    exec("import torch\nfrom torch import nn\n" + solution_sources(A, NB)["dropout"], namespace)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    hidden.check_dropout_randomness(namespace["dropout"])
    assert torch.equal(before, torch.random.get_rng_state())


def test_statistical_tolerance_fails_a_correct_answer_less_than_once_in_a_million():
    for n, p in ((100_000, 0.2), (100_000, 0.5), (10_000, 0.3)):
        sigmas = binomial_tolerance(n, p) / math.sqrt(p * (1 - p) / n)
        assert math.erfc(sigmas / math.sqrt(2)) < 1e-6


def test_checks_return_none_so_nbgrader_reads_no_partial_score():
    from grader.hidden import dropout as hidden

    assert checks.check_scaling_answer_is_a_number(5000) is None
    assert hidden.check_scaling_answer(5000) is None


def test_check_message_names_the_stubbed_call():
    def dropout(x, p=0.5, training=True, generator=None):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match=r"dropout\(x, p=0.2, training=True\) raised NotImplementedError"):
        checks.check_dropout_training(dropout)
