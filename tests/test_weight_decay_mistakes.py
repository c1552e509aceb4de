"""02-weight-decay: every catalogued mistake loses the stated points with a message that names
it, and correct answers written differently earn full marks."""

from grader.score import score_in_process
from helpers import mistake_tests

A = "02-weight-decay"

_SGD_ALL = {"test_sgd_step": 2, "test_sgd_step_momentum": 2, "test_sgd_step_in_place": 1}
_OPTIM = "PyTorch's own optimizer"
# the points every wrong AdamW update loses (the state test also checks the moments and the step count)
_ADAMW = {"test_adamw_step": 2, "test_adamw_step_in_place": 1}

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
    "adamw_l2": ({**_ADAMW, "test_adamw_step_state": 1},
                 {"test_adamw_step": "Adam with an L2 penalty", "test_adamw_step_state": "g + λ·w",
                  "test_adamw_step_in_place": "Adam with an L2 penalty"}),
    "adamw_decay_no_lr": (_ADAMW, {"test_adamw_step": "without the learning rate",
                                   "test_adamw_step_in_place": "without the learning rate"}),
    "adamw_no_bias_correction": (_ADAMW, {"test_adamw_step": "not bias-corrected"}),
    "adamw_step_from_zero": ({**_ADAMW, "test_adamw_step_state": 1},
                             {k: "step count starts from 0" for k in (*_ADAMW, "test_adamw_step_state")}),
    "adamw_eps_inside": (_ADAMW, {"test_adamw_step": "eps is inside the square root"}),
    "adamw_moments_decayed": ({**_ADAMW, "test_adamw_step_state": 1},
                              {"test_adamw_step": "moments are fed the decayed gradient",
                               "test_adamw_step_state": "g + λ·w"}),
    "adamw_moments_decayed_late": ({**_ADAMW, "test_adamw_step_state": 1},
                                   {"test_adamw_step": "with w already multiplied by 1 - lr·λ",
                                    "test_adamw_step_state": "g + λ·w"}),
    "adamw_decay_after_step": (_ADAMW, {"test_adamw_step": "after the Adam step"}),
    "adamw_uses_torch_optim": ({**_ADAMW, "test_adamw_step_state": 1},
                               {k: _OPTIM for k in (*_ADAMW, "test_adamw_step_state")}),
    "adamw_uses_functional": ({**_ADAMW, "test_adamw_step_state": 1},
                              {k: "functional adam" for k in (*_ADAMW, "test_adamw_step_state")}),
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
    "decay_time_scale_adam": ({"test_decay_time_scale_value": 1},
                              {"test_decay_time_scale_value": "*Adam*'s w1"}),
    "decay_time_scale_half": ({"test_decay_time_scale_value": 1},
                              {"test_decay_time_scale_value": "the half-life"}),
    "decay_time_scale_last_above": ({"test_decay_time_scale_value": 1},
                                    {"test_decay_time_scale_value": "last step at which w1 was still above"}),
}

# The questions' tests read the run the notebook made: the scorer runs it before their answers.


test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named = mistake_tests(A, EXPECTED)


# Correct answers written differently from the notebook's: float64 accumulation, torch.norm
# squared, new buffer tensors instead of in-place ones, p.data, torch.where, the groups in the
# other order with parameters as generators of names, AdamW's state updated in place.
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
    # PyTorch's own style: the state updated in place with lerp_/addcmul_, a tensor step count, p.data
    "adamw_step": '''
def adamw_step(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, state=None):
    params = list(params)
    b1, b2 = betas
    if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
        raise ValueError("invalid hyper-parameter")
    state = [None] * len(params) if state is None else list(state)
    if len(state) != len(params):
        raise ValueError("state must have one entry per parameter")
    for i, p in enumerate(params):
        if p.grad is None:
            continue
        st = state[i]
        if st is None:
            st = state[i] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p),
                             "exp_avg_sq": torch.zeros_like(p)}
        st["step"] += 1
        t = st["step"].item()
        st["exp_avg"].lerp_(p.grad, 1 - b1)
        st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad.conj(), value=1 - b2)
        denom = (st["exp_avg_sq"].sqrt() / (1 - b2 ** t) ** 0.5).add_(eps)
        p.data.mul_(1 - lr * weight_decay)
        p.data.addcdiv_(st["exp_avg"], denom, value=-lr / (1 - b1 ** t))
    return state
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


# adamw_step in another exact order, in float64 whatever the parameters' dtype: the decay and the
# Adam step both computed from the old weights, the corrections applied to the moments (m̂, v̂).
ALTERNATIVES_2 = {
    "adamw_step": '''
def adamw_step(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, state=None):
    params = list(params)
    if min(lr, eps, weight_decay) < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
        raise ValueError(f"bad arguments lr={lr}, eps={eps}, weight_decay={weight_decay}, betas={betas}")
    if state is not None and len(state) != len(params):
        raise ValueError("wrong number of states")
    out = []
    for k, p in enumerate(params):
        old = None if state is None else state[k]
        if p.grad is None:
            out.append(old)
            continue
        g = p.grad.detach().double()
        w = p.detach().double()
        t = 1 if old is None else int(old["step"]) + 1
        m = (1 - betas[0]) * g if old is None else betas[0] * old["exp_avg"].double() + (1 - betas[0]) * g
        v = (1 - betas[1]) * g * g if old is None else betas[1] * old["exp_avg_sq"].double() + (1 - betas[1]) * g ** 2
        m_hat = m / (1 - betas[0] ** t)
        v_hat = v / (1 - betas[1] ** t)
        # the Adam step from the old weights, the decay of the old weights: the same update
        new = w - lr * weight_decay * w - lr * m_hat / (torch.sqrt(v_hat) + eps)
        with torch.no_grad():
            p.copy_(new.to(p.dtype))
        out.append({"step": t, "exp_avg": m.to(p.dtype), "exp_avg_sq": v.to(p.dtype)})
    return out
''',
    "decay_time_scale": """
lam_row = decay_run["lambdas"].index(0.1)
below = torch.nonzero(decay_run["w1"]["AdamW"][lam_row] <= math.exp(-1) * decay_run["w1"]["AdamW"][lam_row, 0])
decay_time_scale = decay_run["steps"][below[0, 0]]
""",
}


def test_alternative_correct_answers_score_full_marks():
    results = score_in_process(A, "weight_decay", answers=ALTERNATIVES)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert results


def test_other_alternatives_score_full_marks():
    results = score_in_process(A, "weight_decay", answers=ALTERNATIVES_2)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert {"test_adamw_step", "test_decay_time_scale_value"} <= set(results)
