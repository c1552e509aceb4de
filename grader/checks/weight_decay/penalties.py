"""Checks of ``l1_penalty`` and ``l2_penalty``: Σ|w| and Σw² in float64 over every tensor, a
0-dim differentiable tensor, and the known wrong sums named."""
from __future__ import annotations

import math

import torch
from torch import nn

from .._common import call, check, fail, generator


# ----------------------------------------------------------------------------- penalties


def _probe_params(dtype=torch.float32, seed=0) -> list[torch.Tensor]:
    """A weight matrix, a bias and a 3-d kernel, with negative entries (so |w| matters)."""
    g = generator(seed)
    shapes = [(5, 4), (4,), (2, 3, 3)]
    return [(torch.randn(s, generator=g, dtype=dtype) * 0.8 - 0.1).requires_grad_() for s in shapes]


def _penalty_value(fn, params, what):
    before = [p.detach().clone() for p in params]
    out = call(fn, params, _what=what)
    for p, b in zip(params, before):
        if not torch.equal(p.detach(), b):
            fail(f"{what} modified the parameters in place.", "compute the penalty from new tensors (w.abs(), w ** 2); never write into w.")
    if not isinstance(out, torch.Tensor):
        fail(
            f"{what} returned {type(out).__name__}, not a tensor.",
            "return a 0-dim tensor (sum tensors, do not call .item() or float()): the penalty is "
            "added to the loss and backpropagated.",
        )
    if out.dim() != 0:
        fail(
            f"{what} returned a tensor of shape {tuple(out.shape)}; expected a 0-dim tensor (one number).",
            "add up the per-tensor sums into one scalar: sum over all tensors of w.abs().sum() (or (w ** 2).sum()).",
        )
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7)


def _diagnose_penalty(value: float, params, kind: str, what: str) -> None:
    ws = [p.detach().double() for p in params]
    l1 = sum(w.abs().sum() for w in ws).item()
    l2 = sum((w ** 2).sum() for w in ws).item()
    expected = l1 if kind == "l1" else l2
    if _close(value, expected):
        return
    if kind == "l1":
        if _close(value, sum(w.sum() for w in ws).item()):
            fail(
                f"{what} = {value:.6g} is the plain sum of the weights, Σw = {value:.6g}; the L1 "
                f"penalty is Σ|w| = {l1:.6g}. Without the absolute value, negative weights lower the "
                "penalty and the optimiser is rewarded for making weights very negative.",
                "sum w.abs() over every tensor.",
            )
        if _close(value, sum(w.abs().mean() for w in ws).item()) or _close(value, l1 / sum(w.numel() for w in ws)):
            fail(f"{what} = {value:.6g} is a mean of |w|; the L1 penalty is the sum Σ|w| = {l1:.6g}.", "use .sum(), not .mean().")
        if _close(value, math.sqrt(l2)) or _close(value, l2):
            fail(f"{what} = {value:.6g} is an L2 quantity (Σw² or its square root), not Σ|w| = {l1:.6g}.", "sum the absolute values w.abs().")
        if _close(value, ws[-1].abs().sum().item()) or _close(value, ws[0].abs().sum().item()):
            fail(f"{what} = {value:.6g} covers only one of the {len(ws)} tensors; expected {l1:.6g}.", "add up the penalty of every tensor in params, not only the first or last.")
        fail(f"{what} = {value:.6g}; expected Σ|w| = {l1:.6g} over all {len(ws)} tensors.", "return the sum over every tensor of w.abs().sum().")
    if _close(value, l2 / 2):
        fail(
            f"{what} = {value:.6g} is half of Σw² = {l2:.6g}: the factor 1/2 belongs to the "
            "convention 'loss + (λ/2)·Σw²', which the exercise keeps outside the penalty.",
            "return Σw² with no factor 1/2 (as in the seed and in the course's objective).",
        )
    norms = [w.pow(2).sum().sqrt().item() for w in ws]
    if _close(value, math.sqrt(l2)) or _close(value, sum(norms)):
        fail(
            f"{what} = {value:.6g} is a Euclidean norm (‖w‖₂, a square root); the L2 penalty is "
            f"the squared norm Σw² = {l2:.6g}. The norm's gradient w/‖w‖ does not shrink each "
            "weight in proportion to its size, so it is not weight decay.",
            "sum w ** 2 (or w.pow(2)); drop the square root (torch.norm without ** 2).",
        )
    if _close(value, sum((w ** 2).mean() for w in ws).item()) or _close(value, l2 / sum(w.numel() for w in ws)):
        fail(f"{what} = {value:.6g} is a mean of w²; the L2 penalty is the sum Σw² = {l2:.6g}.", "use .sum(), not .mean().")
    if _close(value, l1):
        fail(f"{what} = {value:.6g} is Σ|w|, the L1 penalty; L2 is Σw² = {l2:.6g}.", "square the weights instead of taking absolute values.")
    fail(f"{what} = {value:.6g}; expected Σw² = {l2:.6g} over all {len(ws)} tensors.", "return the sum over every tensor of (w ** 2).sum().")


def _check_value(fn, kind: str) -> None:
    name = f"{kind}_penalty"
    for dtype, seed in ((torch.float32, 1), (torch.float64, 2)):
        params = _probe_params(dtype, seed)
        out = _penalty_value(fn, params, f"{name}(params)")
        _diagnose_penalty(out.item(), params, kind, f"{name}(params)")


def _check_autograd(fn, kind: str) -> None:
    name = f"{kind}_penalty"
    params = _probe_params(torch.float64, 3)
    out = _penalty_value(fn, params, f"{name}(params)")
    if out.dtype != torch.float64:
        fail(f"{name} of float64 tensors returned {out.dtype}.", "keep the tensors' dtype: sum them as they are, do not build the total with torch.tensor(0.0).")
    if not out.requires_grad:
        fail(
            f"{name}(params) does not track gradients: adding it to the loss would change nothing in backward().",
            "compute it from the tensors with differentiable operations (no .item(), .detach(), .data or torch.tensor(...)).",
        )
    grads = torch.autograd.grad(out, params, allow_unused=True)
    for p, gr in zip(params, grads):
        w = p.detach()
        expected = torch.sign(w) if kind == "l1" else 2 * w
        if gr is None or not torch.allclose(gr, expected, rtol=1e-6, atol=1e-9):
            fail(
                f"The gradient of {name} is not {'sign(w)' if kind == 'l1' else '2w'} for every tensor.",
                "every tensor of params must enter the sum, with the formula of the exercise.",
            )
    # a generator (model.parameters()) can be iterated only once
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        for k, p in enumerate(net.parameters()):
            p.copy_(torch.linspace(-1, 1, p.numel(), dtype=torch.float64).view_as(p) * (k + 1))
    plist = list(net.parameters())
    out = call(fn, net.parameters(), _what=f"{name}(model.parameters())")
    value = out.item() if isinstance(out, torch.Tensor) else out
    ws = [p.detach() for p in plist]
    expected = sum(w.abs().sum() for w in ws) if kind == "l1" else sum((w ** 2).sum() for w in ws)
    if not isinstance(value, float) or not _close(value, expected.item()):
        fail(
            f"{name}(model.parameters()) = {value!r}; expected {expected.item():.6g}. "
            "model.parameters() is a generator: it can be walked through only once.",
            "loop over params once (for w in params: ...) instead of len(params), params[0] or two passes.",
        )


@check
def check_l1_penalty(l1_penalty) -> None:
    """Σ|w| over every tensor, a 0-dim tensor, on float32 and float64 probes."""
    _check_value(l1_penalty, "l1")


@check
def check_l2_penalty(l2_penalty) -> None:
    """Σw² over every tensor (no factor 1/2, no square root), a 0-dim tensor."""
    _check_value(l2_penalty, "l2")
