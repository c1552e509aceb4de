"""02-weight-decay: every catalogued mistake loses the stated points with a message that names
it, and correct answers written differently earn full marks."""

from grader.score import score_in_process
from helpers import mistake_tests

A = "02-weight-decay"

_SGD_ALL = {"test_sgd_step": 2, "test_sgd_step_momentum": 2, "test_sgd_step_in_place": 1}
_OPTIM = "PyTorch's own optimizer"

# mistake -> ({test cell: points lost}, {test cell: fragment its message must contain})
EXPECTED = {
    "l1_no_abs": ({"test_l1_penalty": 1, "test_l1_penalty_autograd": 1},
                  {"test_l1_penalty": "without the absolute value", "test_l1_penalty_autograd": "sign(w)"}),
    "l2_half": ({"test_l2_penalty": 1, "test_l2_penalty_autograd": 1},
                {"test_l2_penalty": "factor 1/2", "test_l2_penalty_autograd": "2w"}),
    "l2_norm": ({"test_l2_penalty": 1, "test_l2_penalty_autograd": 1},
                {"test_l2_penalty": "squared norm"}),
    "l2_item": ({"test_l2_penalty": 1, "test_l2_penalty_autograd": 1},
                {"test_l2_penalty": "not a tensor", "test_l2_penalty_autograd": "not a tensor"}),
    "seed_decay": (_SGD_ALL, {"test_sgd_step": "without the learning rate",
                              "test_sgd_step_momentum": "seed's formula"}),
    "decay_after_momentum": ({"test_sgd_step_momentum": 2, "test_sgd_step_in_place": 1},
                             {"test_sgd_step_momentum": "added after the momentum buffer"}),
    "ema_momentum": ({"test_sgd_step_momentum": 2, "test_sgd_step_in_place": 1},
                     {"test_sgd_step_momentum": "dampened moving average"}),
    "rebound": (_SGD_ALL, {"test_sgd_step": "rebound", "test_sgd_step_momentum": "rebound",
                           "test_sgd_step_in_place": "rebound"}),
    "grad_in_place": (_SGD_ALL, {"test_sgd_step": "modified p.grad in place"}),
    "uses_torch_optim": (_SGD_ALL, {k: _OPTIM for k in _SGD_ALL}),
    "uses_functional_sgd": (_SGD_ALL, {k: "functional sgd" for k in _SGD_ALL}),
    "crosses_zero": ({"test_soft_threshold": 1, "test_soft_threshold_edge_cases": 1},
                     {"test_soft_threshold": "cross", "test_soft_threshold_edge_cases": "exact zeros"}),
    "zeroes_negatives": ({"test_soft_threshold": 1, "test_soft_threshold_edge_cases": 1},
                         {"test_soft_threshold": "zeroed every negative weight"}),
    "uses_softshrink": ({"test_soft_threshold": 1, "test_soft_threshold_edge_cases": 1},
                        {"test_soft_threshold": "PyTorch's own softshrink"}),
    "decays_biases": ({"test_no_decay_param_groups": 2, "test_no_decay_param_groups_edge_cases": 1},
                      {"test_no_decay_param_groups": "decays a bias"}),
    "decays_norm_weights": ({"test_no_decay_param_groups": 2, "test_no_decay_param_groups_edge_cases": 1},
                            {"test_no_decay_param_groups": "decays a normalisation weight"}),
    "loses_params": ({"test_no_decay_param_groups": 2, "test_no_decay_param_groups_edge_cases": 1},
                     {"test_no_decay_param_groups": "loses 4 parameter(s)"}),
    "lists_twice": ({"test_no_decay_param_groups_edge_cases": 1},
                    {"test_no_decay_param_groups_edge_cases": "more than once"}),
    "ndim_eq_1": ({"test_no_decay_param_groups_edge_cases": 1},
                  {"test_no_decay_param_groups_edge_cases": "0-dim (scalar) parameter"}),
    "best_on_train": ({"test_best_weight_decay_value": 1}, {"test_best_weight_decay_value": "smallest *training* error"}),
    "overfitting_index": ({"test_overfitting_starts": 1, "test_overfitting_starts_value": 1},
                          {"test_overfitting_starts": "not one of the recorded iterations",
                           "test_overfitting_starts_value": "position of the minimum"}),
    "overfitting_on_train": ({"test_overfitting_starts_value": 1},
                             {"test_overfitting_starts_value": "*training* loss is lowest"}),
}

# The questions' tests read the sweep the notebook ran: run it before their answers.


test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named = mistake_tests(A, EXPECTED)


# Correct answers written differently from the notebook's: float64 accumulation, torch.norm
# squared, new buffer tensors instead of in-place ones, p.data, torch.where, the groups in the
# other order with parameters as generators of names.
ALTERNATIVES = {
    "l1_penalty": '''
def l1_penalty(params):
    return torch.stack([torch.linalg.vector_norm(w, 1) for w in params]).sum()
''',
    "l2_penalty": '''
def l2_penalty(params):
    total = 0
    for w in params:
        total = total + torch.norm(w) ** 2
    return total
''',
    "sgd_step": '''
def sgd_step(params, lr, momentum=0.0, weight_decay=0.0, buffers=None):
    params = list(params)
    if min(lr, momentum, weight_decay) < 0:
        raise ValueError("lr, momentum and weight_decay must be non-negative")
    buffers = list(buffers) if buffers is not None else [None] * len(params)
    if len(buffers) != len(params):
        raise ValueError("wrong number of buffers")
    out = []
    for p, b in zip(params, buffers):
        g = p.grad.detach().to(torch.float64) + weight_decay * p.detach().to(torch.float64)
        if momentum:
            b = g if b is None else momentum * b.to(torch.float64) + g
            step = b
            out.append(b.to(p.dtype))
        else:
            step = g
            out.append(None)
        p.data = (p.data.to(torch.float64) - lr * step).to(p.dtype)
    return out
''',
    "soft_threshold": '''
def soft_threshold(w, threshold):
    if threshold < 0:
        raise ValueError("negative threshold")
    shrunk = w - threshold * torch.sign(w)
    return torch.where(w.abs() <= threshold, torch.zeros_like(w), shrunk)
''',
    "no_decay_param_groups": '''
def no_decay_param_groups(model, weight_decay):
    if weight_decay < 0:
        raise ValueError("negative weight_decay")
    named = list(model.named_parameters())
    return [
        {"params": (p for _, p in named if p.ndim < 2), "weight_decay": 0.0},
        {"params": (p for _, p in named if p.ndim >= 2), "weight_decay": weight_decay},
    ]
''',
}


# The questions on the sweep, answered differently: the sum over the draws (same argmin), a
# Python loop, a 0-dim tensor. The sweep runs first (the in-process scorer skips experiment cells).
ALTERNATIVES["best_weight_decay"] = """
totals = [float(sweep["val_loss"][k].sum()) for k in range(len(lambdas))]
best_weight_decay = lambdas[totals.index(min(totals))]
"""
ALTERNATIVES["overfitting_starts"] = """
curve = sweep["val_history"][0].sum(dim=0)
overfitting_starts = sweep["steps"][torch.argmin(curve)]
"""


def test_alternative_correct_answers_score_full_marks():
    results = score_in_process(A, "weight_decay", answers=ALTERNATIVES)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert results
