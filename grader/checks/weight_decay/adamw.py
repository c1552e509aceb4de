"""Checks of ``adamw_step``: twenty steps against ``torch.optim.AdamW`` itself in float64 (to
1e-10), the state it returns against the optimizer's own, and the known wrong updates named
(Adam with L2, the decay without the learning rate, no bias correction, a step count from 0,
eps inside the square root ...); ``torch.optim`` is forbidden inside."""
from __future__ import annotations

import math

import torch

from .._common import _StudentError, as_number, call, check, fail, generator
from .sgd import _no_torch_optim

_EXERCISE = "adamw_step"
_BY_HAND = ("update each tensor yourself under torch.no_grad(): p.mul_(1 - lr * weight_decay), the "
            "two moments, then p.addcdiv_(exp_avg, denom, value=-lr / bias_correction1).")
_ORDER = ("t = step + 1; p *= 1 - lr·λ; m = β1·m + (1 - β1)·g; v = β2·v + (1 - β2)·g²; "
          "p -= lr/(1 - β1^t) · m / (sqrt(v)/sqrt(1 - β2^t) + eps)")
_RTOL, _ATOL = 1e-10, 1e-12        # float64, as the contract says
_RTOL32, _ATOL32 = 1e-5, 1e-6      # float32


def _tol(dtype):
    return (_RTOL, _ATOL) if dtype == torch.float64 else (_RTOL32, _ATOL32)


# ----------------------------------------------------------------------------- probes

# Each tensor with its own gradient scale: ordinary, tiny (1e-6, so that where eps sits
# shows at the default eps=1e-8) and large.
_SHAPES = ((4, 3), (3,), (2, 2, 2))
_SCALES = (1.0, 1e-6, 10.0)


def _start(dtype, seed):
    g = generator(seed)
    return [(torch.randn(s, generator=g, dtype=torch.float64) + 0.5).to(dtype) for s in _SHAPES]


def _grads(steps, dtype, seed):
    g = generator(seed)
    # a drift that keeps its sign, so that the moments build up, plus noise
    drift = [torch.randn(s, generator=g, dtype=torch.float64) for s in _SHAPES]
    return [[((d + 0.5 * torch.randn(s, generator=g, dtype=torch.float64)) * k).to(dtype)
             for d, s, k in zip(drift, _SHAPES, _SCALES)] for _ in range(steps)]


def _reference(start, grads, *, lr, betas, eps, weight_decay, skip=()):
    """The weights after every step of torch.optim.AdamW, and its state after each step."""
    params = [w.clone().requires_grad_() for w in start]
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    traj, states = [], []
    for gs in grads:
        for i, (p, gr) in enumerate(zip(params, gs)):
            p.grad = None if i in skip else gr.clone()
        opt.step()
        traj.append([p.detach().clone() for p in params])
        states.append([{k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in opt.state[p].items()}
                       if p in opt.state else None for p in params])
    return traj, states


def _variant(kind, start, grads, *, lr, betas, eps, weight_decay):
    """What a known wrong update gives, in float64 (for naming the mistake, never as a reference)."""
    b1, b2 = betas
    ws = [w.double().clone() for w in start]
    ms = [torch.zeros_like(w) for w in ws]
    vs = [torch.zeros_like(w) for w in ws]
    traj = []
    for t, gs in enumerate(grads, start=1):
        tt = t + 1 if kind == "step_off_by_one" else t
        for i, g in enumerate(gs):
            g, w = g.double(), ws[i]
            if kind in ("l2", "moments_decayed"):
                g = g + weight_decay * w
            if kind in ("l2", "decay_after_step"):
                decayed = w
            elif kind == "decay_no_lr":
                decayed = w * (1 - weight_decay)
            else:
                decayed = w * (1 - lr * weight_decay)
            if kind == "moments_decayed_late":  # the decay term taken from the weights already decayed
                g = g + weight_decay * decayed
            ms[i] = b1 * ms[i] + (1 - b1) * g
            vs[i] = b2 * vs[i] + (1 - b2) * g * g
            bc1 = 1.0 if kind in ("no_bias_correction", "no_correction1") else 1 - b1 ** tt
            bc2 = 1.0 if kind in ("no_bias_correction", "no_correction2") else 1 - b2 ** tt
            if kind == "eps_inside":
                denom = torch.sqrt(vs[i] / bc2 + eps)
            elif kind == "eps_inside_uncorrected":
                denom = torch.sqrt(vs[i] + eps) / math.sqrt(bc2)
            elif kind == "eps_before_correction":
                denom = (vs[i].sqrt() + eps) / math.sqrt(bc2)
            else:
                denom = vs[i].sqrt() / math.sqrt(bc2) + eps
            new = decayed - lr / bc1 * ms[i] / denom
            ws[i] = new * (1 - lr * weight_decay) if kind == "decay_after_step" else new
        traj.append([w.clone() for w in ws])
    return traj


_STEP_FROM_ZERO = (
    "The step count starts from 0: the first step's bias corrections are 1 - β1^0 = 0 and "
    "1 - β2^0 = 0, so it divides by zero (a ZeroDivisionError, or inf and NaN in the weights). "
    "torch.optim.AdamW counts the step *before* using it: t = 1 on the first call.",
    "increment first, then correct: t = state['step'] + 1 (state['step'] = 0 before the first "
    "step), bias_correction1 = 1 - beta1 ** t, and store state['step'] = t.",
)

_EPS_INSIDE = (
    "eps is inside the square root, sqrt(v̂ + eps): torch.optim.AdamW adds eps *outside* it, "
    "sqrt(v̂) + eps. For a weight whose gradients are tiny (about 1e-6 here) the two differ by "
    "orders of magnitude: sqrt(1e-12 + 1e-8) is 1e-4, not 1e-6.",
    "denom = exp_avg_sq.sqrt() / math.sqrt(bias_correction2) + eps.",
)

_MISTAKES = {
    "l2": (
        "The weight decay is added to the gradient, g + λ·w, and goes through Adam's moments: that "
        "is Adam with an L2 penalty (torch.optim.Adam(weight_decay=λ)), not AdamW. Adam then divides "
        "the decay term by the root mean square of the gradient, so weights with large gradients "
        "hardly decay. AdamW decouples it: the weights shrink by (1 - lr·λ) apart from the "
        "adaptive step.",
        "leave the gradient alone (the moments see p.grad only) and decay the weights directly, "
        "first: p.mul_(1 - lr * weight_decay), then the Adam step.",
    ),
    "decay_no_lr": (
        "The weights shrink by (1 - λ) each step, without the learning rate: AdamW multiplies "
        "them by (1 - lr·λ), so that the decay's time scale is 1/(lr·λ) steps and follows the "
        "learning-rate schedule.",
        "p.mul_(1 - lr * weight_decay) before the Adam step.",
    ),
    "moments_decayed": (
        "The moments are fed the decayed gradient g + λ·w, on top of the decoupled decay "
        "(1 - lr·λ)·w: the decay is applied twice, once through Adam's moments (as Adam's L2 "
        "penalty would) and once directly. In AdamW the moments see the gradient p.grad only.",
        "update exp_avg and exp_avg_sq with g = p.grad itself; the decay is only "
        "p.mul_(1 - lr * weight_decay).",
    ),
    "moments_decayed_late": (
        "The moments are fed the decayed gradient g + λ·w (with w already multiplied by 1 - lr·λ), "
        "on top of the decoupled decay: the decay is applied twice, once through Adam's moments (as "
        "Adam's L2 penalty would) and once directly. In AdamW the moments see the gradient p.grad only.",
        "update exp_avg and exp_avg_sq with g = p.grad itself; the decay is only "
        "p.mul_(1 - lr * weight_decay).",
    ),
    "decay_after_step": (
        "The decay is applied after the Adam step, to the updated weights: torch.optim.AdamW "
        "decays first, w ← (1 - lr·λ)·w, then subtracts the Adam step (the two orders differ by "
        "lr·λ times the step, which adds up over the steps).",
        "p.mul_(1 - lr * weight_decay) first, then p.addcdiv_(...) for the Adam step.",
    ),
    "no_bias_correction": (
        "The moments are not bias-corrected: m and v start at 0, so in the first steps they are "
        "too small by the factors 1 - β1^t and 1 - β2^t, and the step is wrong (at t = 1 it is "
        "(1 - β1)/sqrt(1 - β2) ≈ 3.2 times PyTorch's with the default betas).",
        "divide by the corrections: step_size = lr / (1 - beta1 ** t), "
        "denom = sqrt(exp_avg_sq) / sqrt(1 - beta2 ** t) + eps, with t counted from 1.",
    ),
    "no_correction1": (
        "Only the second moment is bias-corrected: the first moment m, which starts at 0, is not "
        "divided by 1 - β1^t, so the first steps are about 10 times too small.",
        "step_size = lr / (1 - beta1 ** t).",
    ),
    "no_correction2": (
        "Only the first moment is bias-corrected: the second moment v, which starts at 0, is not "
        "divided by 1 - β2^t, so the first steps are far too large.",
        "denom = exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** t) + eps.",
    ),
    "step_off_by_one": (
        "The bias corrections use t + 1 instead of t (the step count is incremented twice, or "
        "starts at 1 and is incremented before use): on the first step PyTorch uses 1 - β^1.",
        "t = state['step'] + 1 with state['step'] = 0 before the first step; "
        "bias corrections 1 - beta ** t; store state['step'] = t.",
    ),
    "eps_inside": _EPS_INSIDE,
    "eps_inside_uncorrected": _EPS_INSIDE,
    "eps_before_correction": (
        "eps is added before dividing by sqrt(1 - β2^t), (sqrt(v) + eps) / sqrt(1 - β2^t) (the "
        "'ε̂' form of the Adam paper's efficient version): in the first steps that makes eps up to "
        "30 times larger. torch.optim.AdamW adds eps after the correction.",
        "denom = exp_avg_sq.sqrt() / math.sqrt(bias_correction2) + eps.",
    ),
}


def _all_close(traj, ref, rtol, atol):
    return all(a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol)
               for sa, sb in zip(traj, ref) for a, b in zip(sa, sb))


def _finite(step_params):
    return all(bool(torch.isfinite(w).all()) for w in step_params)


def _call_step(adamw_step, params, what, **kwargs):
    """Call the student's adamw_step with torch.optim forbidden; p.grad must not change."""
    grads_before = [None if p.grad is None else p.grad.clone() for p in params]
    try:
        with _no_torch_optim(_EXERCISE, _BY_HAND):
            state = call(adamw_step, params, _what=what, **kwargs)
    except _StudentError as exc:
        if "ZeroDivisionError" in str(exc):
            fail(*_STEP_FROM_ZERO, detail=f"({str(exc).splitlines()[0]})")
        raise
    for p, g in zip(params, grads_before):
        if g is not None and (p.grad is None or not torch.equal(p.grad, g)):
            fail(
                f"{what} modified p.grad in place (for example p.grad.add_(weight_decay * p), or "
                "exp_avg that is p.grad itself).",
                "leave the gradients alone: build new tensors from p.grad, and start the moments "
                "from torch.zeros_like(p).",
            )
    return state


def _check_state_form(state, params, what, skip=()):
    if not isinstance(state, (list, tuple)) or len(state) != len(params):
        fail(
            f"{what} returned {type(state).__name__}"
            f"{f' of length {len(state)}' if isinstance(state, (list, tuple)) else ''}; expected a list "
            f"of {len(params)} dicts, one per parameter.",
            "return the list of per-parameter states {'step': ..., 'exp_avg': ..., 'exp_avg_sq': ...}, "
            "to be passed back as state= on the next call.",
        )
    for i, (s, p) in enumerate(zip(state, params)):
        if i in skip:
            continue
        if not isinstance(s, dict) or not {"step", "exp_avg", "exp_avg_sq"} <= set(s):
            fail(
                f"{what} returned a state entry that is not a dict with the keys 'step', 'exp_avg' and "
                f"'exp_avg_sq' (got {type(s).__name__}"
                f"{': keys ' + ', '.join(map(repr, s)) if isinstance(s, dict) else ''}).",
                "keep, per parameter, {'step': t, 'exp_avg': m, 'exp_avg_sq': v}, as torch.optim.AdamW's state.",
            )
        for key in ("exp_avg", "exp_avg_sq"):
            m = s[key]
            if not isinstance(m, torch.Tensor) or m.shape != p.shape:
                fail(f"{what} returned state['{key}'] that is not a tensor of its parameter's shape.",
                     "keep one exp_avg and one exp_avg_sq tensor per parameter, of its shape (torch.zeros_like(p) at first).")
            if p.grad is not None and m.data_ptr() == p.grad.data_ptr():
                fail(f"{what} returned p.grad itself as state['{key}']: the next backward() would overwrite it.",
                     "start the moments from torch.zeros_like(p) and update them with lerp_/mul_/add_.")


def _run_student(adamw_step, start, grads, *, lr, betas, eps, weight_decay, what, skip=()):
    params = [w.clone().requires_grad_() for w in start]
    originals = list(params)
    state = None
    traj, states = [], []
    for step, gs in enumerate(grads):
        for i, (p, gr) in enumerate(zip(params, gs)):
            p.grad = None if i in skip else gr.clone()
        before = [p.detach().clone() for p in params]
        here = f"{what} at step {step + 1}"
        state = _call_step(adamw_step, params, here, lr=lr, betas=betas, eps=eps,
                           weight_decay=weight_decay, state=state)
        if any(q is not p for q, p in zip(params, originals)):
            fail(
                f"{here} replaced the tensors in the params list by new ones (params[i] = ...): the "
                "model's own parameters, which the caller holds, are not updated.",
                "update each tensor in place: with torch.no_grad(): p.mul_(...), p.addcdiv_(...).",
            )
        if all(torch.equal(p.detach(), b) for i, (p, b) in enumerate(zip(params, before)) if i not in skip):
            fail(
                f"{here} left every parameter unchanged: the parameters were rebound (p = p - ... "
                "makes a new tensor and throws it away) instead of updated in place.",
                "update in place under torch.no_grad(): p.mul_(1 - lr * weight_decay), then "
                "p.addcdiv_(exp_avg, denom, value=-step_size).",
            )
        _check_state_form(state, params, here, skip)
        traj.append([p.detach().clone() for p in params])
        # a snapshot: the next call may update the same dicts and tensors in place, as PyTorch does
        states.append([s if not isinstance(s, dict) else
                       {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
                       for s in state])
    return traj, states


def _diagnose(traj, ref, start, grads, what, **kw):
    """Fail naming the mistake the trajectory matches, or with the step where it departs."""
    steps = len(ref)
    rtol, atol = _tol(start[0].dtype)
    if _all_close(traj, ref, rtol, atol):
        return
    first_bad = next(i for i in range(steps) if not _all_close(traj[i:i + 1], ref[i:i + 1], rtol, atol))
    detail = f"({what}: first differs from torch.optim.AdamW at step {first_bad + 1} of {steps})"
    if not _finite(traj[0]):
        fail(*_STEP_FROM_ZERO, detail=f"({what}: the weights are inf or NaN after the first step)")
    for kind, (mistake, fix) in _MISTAKES.items():
        candidate = _variant(kind, start, grads, **kw)
        if (_all_close(traj, candidate, 1e-6, 1e-9)
                and not _all_close(candidate, ref, 1e-6, 1e-9)):
            fail(mistake, fix, detail=detail)
    gap = max((a.double() - b.double()).abs().max().item() for a, b in zip(traj[first_bad], ref[first_bad]))
    fail(
        f"{what} differs from torch.optim.AdamW from step {first_bad + 1} of {steps} on "
        f"(largest difference {gap:.3g} at that step).",
        f"follow PyTorch's order exactly: {_ORDER}.",
    )


def _compare_adamw(adamw_step, *, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                   dtype=torch.float64, seed=0, steps=20):
    start = _start(dtype, seed)
    grads = _grads(steps, dtype, seed + 1000)
    what = f"adamw_step(params, lr={lr}, betas={betas}, eps={eps:g}, weight_decay={weight_decay})"
    kw = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
    traj, _ = _run_student(adamw_step, start, grads, what=what, **kw)
    ref, _ = _reference(start, grads, **kw)
    _diagnose(traj, ref, start, grads, what, **kw)


@check
def check_adamw_step(adamw_step) -> None:
    """Twenty steps of Adam (weight_decay=0) and of AdamW (weight_decay=0.1) match
    torch.optim.AdamW to 1e-10 in float64, on tensors with ordinary, tiny and large gradients."""
    _compare_adamw(adamw_step, lr=1e-2, weight_decay=0.0, seed=1)
    _compare_adamw(adamw_step, lr=5e-2, betas=(0.8, 0.99), weight_decay=0.1, seed=2)


# ----------------------------------------------------------------------------- the state


def _step_number(value, what):
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        fail(f"{what}: state['step'] is a tensor of shape {tuple(value.shape)}, not one number.",
             "keep the number of steps taken, an int (or a 0-dim tensor as PyTorch does).")
    return as_number(value, "state['step']")


@check
def check_adamw_step_state(adamw_step) -> None:
    """The returned state after each of 3 steps equals torch.optim.AdamW's: 'step' (counted from
    1), 'exp_avg' and 'exp_avg_sq' (fed the gradient, not the decayed one)."""
    kw = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.5}
    start = _start(torch.float64, 11)
    grads = _grads(3, torch.float64, 12)
    what = "adamw_step(params, lr=0.01, weight_decay=0.5)"
    _, states = _run_student(adamw_step, start, grads, what=what, **kw)
    _, ref = _reference(start, grads, **kw)
    for t, (got, want) in enumerate(zip(states, ref), start=1):
        for i, (s, r) in enumerate(zip(got, want)):
            here = f"{what}: after step {t}, state[{i}]"
            step = _step_number(s["step"], here)
            if step != t:
                if step == t - 1:
                    fail(f"{here}['step'] is {step:g}: {_STEP_FROM_ZERO[0]}", _STEP_FROM_ZERO[1])
                fail(f"{here}['step'] is {step:g}, not {t}: it counts the steps taken, 1 after the first.",
                     "t = state['step'] + 1 (0 before the first step); store state['step'] = t.")
            g = grads[t - 1][i]
            for key in ("exp_avg", "exp_avg_sq"):
                value = s[key].detach().double()
                if torch.allclose(value, r[key], rtol=_RTOL, atol=1e-20):
                    continue
                w_before = (start[i] if t == 1 else None)
                if w_before is not None:
                    b1, b2 = kw["betas"]
                    lam = kw["weight_decay"]
                    fed = [g + lam * w_before, g + lam * (1 - kw["lr"] * lam) * w_before]  # before/after the decay
                    fed = [(1 - b1) * f if key == "exp_avg" else (1 - b2) * f * f for f in fed]
                    if any(torch.allclose(value, f, rtol=1e-6, atol=1e-20) for f in fed):
                        fail(
                            f"{here}['{key}'] is built from g + λ·w, the gradient with the decay term: "
                            "in AdamW the moments see the gradient only, and the decay acts on the "
                            "weights directly (decoupled).",
                            "exp_avg.lerp_(p.grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2).",
                        )
                    if key == "exp_avg" and torch.allclose(value, g, rtol=1e-6, atol=1e-20):
                        fail(
                            f"{here}['exp_avg'] is the gradient itself: the moving average "
                            "m = β1·m + (1 - β1)·g starts from m = 0, so after the first step m = (1 - β1)·g.",
                            "start from torch.zeros_like(p), then exp_avg.lerp_(p.grad, 1 - beta1).",
                        )
                fail(
                    f"{here}['{key}'] differs from torch.optim.AdamW's state "
                    f"(largest difference {(value - r[key]).abs().max().item():.3g}).",
                    "m = β1·m + (1 - β1)·g and v = β2·v + (1 - β2)·g², from m = v = 0, with g = p.grad "
                    "(store the moments before bias correction).",
                )
