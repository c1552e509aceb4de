"""07-beyond-penalties: every catalogued mistake loses the stated points with a message that
names it, correct answers written differently earn full marks, and the graded readings of the
run hold for every seed tried."""

from grader.score import score_in_process
from helpers import mistake_tests

A = "07-beyond-penalties"

_LS = {"test_label_smoothed_cross_entropy": 2, "test_label_smoothed_cross_entropy_more": 1}
_MIX = {"test_mixup": 2, "test_mixup_random": 2}
_ECE = {"test_expected_calibration_error": 2, "test_expected_calibration_error_more": 1}

# mistake -> ({test cell: points lost}, {test cell: fragment its message must contain})
EXPECTED = {
    "ls_k_minus_1": (_LS, {"test_label_smoothed_cross_entropy": "eps/(K-1)"}),
    "ls_softmax": (_LS, {"test_label_smoothed_cross_entropy": "softmax where log-softmax is needed"}),
    "ls_no_true_class": (_LS, {"test_label_smoothed_cross_entropy": "sums to 1 - eps/K"}),
    "ls_accepts_bad_eps": ({"test_label_smoothed_cross_entropy_more": 1},
                           {"test_label_smoothed_cross_entropy_more": "eps = -0.1 was accepted"}),
    "ls_calls_builtin": (_LS, {"test_label_smoothed_cross_entropy": "PyTorch's own cross_entropy"}),
    "eval_smoothed": ({"test_evaluate": 2}, {"test_evaluate": "smoothing at evaluation"}),
    "eval_train_mode": ({"test_evaluate": 2}, {"test_evaluate": "train() mode"}),
    "mix_x_only": (_MIX, {"test_mixup": "mixed the inputs but not the targets"}),
    "mix_two_lambdas": (_MIX, {"test_mixup": "another λ"}),
    "mix_two_perms": (_MIX, {"test_mixup": "different permutation"}),
    "mix_lambda_per_example": (_MIX, {"test_mixup": "a different λ for each example"}),
    "mix_uniform_lambda": ({"test_mixup_random": 2}, {"test_mixup_random": "drawn from U(0, 1)"}),
    "mix_ignores_generator": ({"test_mixup_random": 2}, {"test_mixup_random": "ignores its `generator`"}),
    "es_reference": ({"test_EarlyStopping_state": 2}, {"test_EarlyStopping_state": "reference to the live tensors"}),
    "es_patience_late": ({"test_EarlyStopping": 2, "test_EarlyStopping_state": 2},
                         {"test_EarlyStopping": "one step late", "test_EarlyStopping_state": "one step late"}),
    "es_no_reset": ({"test_EarlyStopping": 2}, {"test_EarlyStopping": "not reset at an improvement"}),
    "es_ignores_min_delta": ({"test_EarlyStopping": 2}, {"test_EarlyStopping": "min_delta=0.02 is ignored"}),
    "es_nan_improves": ({"test_EarlyStopping_state": 2}, {"test_EarlyStopping_state": "NaN metric"}),
    "ema_inverted": ({"test_ema_update": 2}, {"test_ema_update": "decay is inverted"}),
    "ema_no_buffers": ({"test_ema_update": 2}, {"test_ema_update": "did not copy the buffers"}),
    "bn_eval_mode": ({"test_update_bn": 2, "test_update_bn_more": 1},
                     {"test_update_bn": "batch norm statistics that belong to other weights"}),
    "bn_exponential": ({"test_update_bn": 2, "test_update_bn_more": 1}, {"test_update_bn": "cumulative average"}),
    "bn_momentum_lost": ({"test_update_bn_more": 1}, {"test_update_bn_more": "momentum is None"}),
    "ece_left_closed": ({"test_expected_calibration_error_more": 1},
                        {"test_expected_calibration_error_more": "bins [b/n, (b+1)/n) put them one bin up"}),
    "ece_unweighted": (_ECE, {"test_expected_calibration_error": "weighted by its share"}),
    "ece_true_class": (_ECE, {"test_expected_calibration_error": "*true* class",
                              "test_expected_calibration_error_more": "*true* class"}),
    # the questions, answered wrongly from the notebook's own run
    "drop_inverted": ({"test_confidence_drop": 2}, {"test_confidence_drop": "inverse difference"}),
    "drop_mixup": ({"test_confidence_drop": 2}, {"test_confidence_drop": "drop with mixup"}),
    "restored_stop_epoch": ({"test_restored_epoch": 2}, {"test_restored_epoch": "where training *stopped*"}),
    "restored_from_zero": ({"test_restored_epoch": 2}, {"test_restored_epoch": "counts the epochs from 0"}),
    "ema_gain_inverted": ({"test_ema_gain": 2}, {"test_ema_gain": "inverse difference"}),
    "ema_gain_after_bn": ({"test_ema_gain": 2}, {"test_ema_gain": "after update_bn"}),
}


test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named = mistake_tests(A, EXPECTED)


# Correct answers written another way: the target built with one_hot and lerp, log(softmax)
# on moderate logits, a Beta draw through numpy seeded from the generator, a deep-copied
# state, torch._foreach_lerp_, bucketize for the bins.
ALTERNATIVES = {
    "label_smoothed_cross_entropy": '''
def label_smoothed_cross_entropy(logits, target, eps, reduction="mean"):
    if eps < 0 or eps > 1:
        raise ValueError(f"eps={eps}")
    k = logits.size(-1)
    q = torch.lerp(F.one_hot(target, k).to(logits.dtype), torch.full_like(logits, 1.0 / k), eps)
    per = -(q * torch.log(torch.softmax(logits, dim=-1))).sum(-1)
    return {"mean": per.mean, "sum": per.sum, "none": lambda: per}[reduction]()
''',
    "mixup": '''
def mixup(x, y, alpha, num_classes, generator=None):
    import numpy as np
    if not alpha > 0:
        raise ValueError(alpha)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    idx = torch.randperm(len(x), generator=generator)
    t = torch.zeros(len(y), num_classes, dtype=x.dtype).scatter_(1, y[:, None], 1.0)
    return torch.lerp(x[idx], x, lam), torch.lerp(t[idx], t, lam)
''',
    "EarlyStopping": '''
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0, mode="min"):
        if mode not in {"min", "max"}:
            raise ValueError(mode)
        self.patience, self.min_delta = patience, min_delta
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = self.sign * float("inf")
        self.wait, self.state = 0, None

    def step(self, metric, model):
        if self.sign * (self.best - metric) > self.min_delta:   # False for NaN
            self.best, self.wait = float(metric), 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model):
        model.load_state_dict(self.state)
''',
    "ema_update": '''
@torch.no_grad()
def ema_update(ema_model, model, decay):
    e, p = list(ema_model.parameters()), list(model.parameters())
    torch._foreach_lerp_(e, p, 1 - decay)
    for (name, b_e), (_, b) in zip(ema_model.named_buffers(), model.named_buffers()):
        b_e.copy_(b)
''',
    "expected_calibration_error": '''
def expected_calibration_error(probs, labels, n_bins=15):
    conf, pred = torch.max(probs, 1)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype)[1:-1]
    which = torch.bucketize(conf, edges, right=False)       # (b/n, (b+1)/n] -> b
    total = torch.zeros((), dtype=torch.float64)
    for b in which.unique():
        m = which == b
        total += m.sum() / len(conf) * ((pred[m] == labels[m]).double().mean() - conf[m].double().mean()).abs()
    return total.item()
''',
}


def test_alternative_correct_answers_earn_full_marks():
    results = score_in_process(A, "beyond_penalties", answers=ALTERNATIVES)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert sum(r.max_score for r in results.values()) == 27


def test_graded_readings_hold_for_every_seed():
    """The question texts presuppose two readings (label smoothing lowers the confidence, the
    averaged weights have a lower validation loss): both hold in each of 8 seeds."""
    from grader.paths import source_notebooks
    from grader import notebooks
    from regnorm import beyond_penalties as bp

    nb = notebooks.load(source_notebooks(A)[0])
    ns = {}
    exec(next(c.source for c in nb.cells if notebooks.grade_id(c) == "setup"), ns)
    for c in nb.cells:
        if notebooks.is_solution(c) and notebooks.grade_id(c) in (
                "label_smoothed_cross_entropy", "mixup", "evaluate", "expected_calibration_error",
                "ema_update", "update_bn"):
            exec(notebooks.strip_markers(c.source), ns)
    study = bp.compare(ns["label_smoothed_cross_entropy"], ns["mixup"], ns["evaluate"],
                       ns["expected_calibration_error"], seeds=8, epochs=20)
    assert bool((study["confidence"][1] < study["confidence"][0]).all()), study["confidence"]
    ema = bp.ema_run(ns["ema_update"], ns["update_bn"], ns["evaluate"], seeds=8, epochs=20)
    assert bool((ema["ema_loss"] < ema["live_loss"]).all()), (ema["ema_loss"], ema["live_loss"])
