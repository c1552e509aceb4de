"""Visible checks for the backward pass of assignment 06-transformer-norms: ``rms_norm_backward``
and ``RMSNormFunction`` (the forward norms are checked in ``grader.checks.transformer_norms``).

The reference is autograd through ``torch.nn.functional.rms_norm`` in float64 (1e-8). A wrong
answer is matched against the gradients of the typical slips of the derivation (the statistic r
held constant, layer norm's mean term kept, a sum for the mean, eps outside the root, the weight
left out, the weight's gradient averaged) and the check names the one it matches;
``RMSNormFunction`` also runs ``torch.autograd.gradcheck``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import call, check, fail, forbid_builtins, generator
from .norm_layers import _bw_close, _safe
from .transformer_norms import _BUILTINS, _no_builtin


# --------------------------------------------------------------------------------------------
# rms_norm_backward

_BACKWARD_HOW = ("r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps), x_hat = x * r, "
                 "g_hat = grad_out * weight, grad_x = r * (g_hat - x_hat * (g_hat * x_hat).mean(-1, "
                 "keepdim=True)), grad_weight = (grad_out * x_hat).sum(0)")


def _no_autograd(exercise: str):
    return forbid_builtins(exercise, _BUILTINS + ("backward", "grad"),
                           "derive the gradients by hand, no autograd (.backward(), torch.autograd.grad) "
                           "and no built-in normalisation: " + _BACKWARD_HOW)


def _rms_grads(g, x, w, eps, forward=None):
    """(grad_x, grad_weight) of sum(g * forward(x, w)) by autograd, float64."""
    forward = forward or (lambda x, w: F.rms_norm(x, x.shape[-1:], w, eps))
    x = x.detach().double().clone().requires_grad_(True)
    w = w.detach().double().clone().requires_grad_(True)
    return torch.autograd.grad((forward(x, w) * g.double()).sum(), (x, w))


def _compact(g, x, w, eps, *, r_path=True, mean_path=False, weight_in=True, reduce_d="mean",
             params="sum", eps_outside=False):
    g, x, w = g.double(), x.double(), w.double()
    ms = x.pow(2).mean(-1, keepdim=True)
    r = 1 / (ms.sqrt() + eps) if eps_outside else torch.rsqrt(ms + eps)
    xh = x * r
    gh = g * w if weight_in else g
    gx = gh
    if mean_path:
        gx = gx - gh.mean(-1, keepdim=True)
    if r_path:
        red = (gh * xh).sum(-1, keepdim=True) if reduce_d == "sum" else (gh * xh).mean(-1, keepdim=True)
        gx = gx - xh * red
    gw = (g * xh).sum(0) if params == "sum" else (g * xh).mean(0)
    return gx * r, gw


def _backward_candidates(g, x, w, eps):
    return [
        ("r = 1/sqrt(mean(x**2) + eps) is treated as a constant: grad_x = r * g_hat misses the path "
         "through r, which depends on every x of the row.",
         "back-propagate through r as well: grad_x = r * (g_hat - x_hat * mean(g_hat * x_hat)), the "
         "mean over the features.",
         lambda: _compact(g, x, w, eps, r_path=False)),
        ("it keeps layer norm's mean term (- mean(g_hat)): RMS norm subtracts no mean, so that path "
         "does not exist.",
         "drop the term - g_hat.mean(-1): grad_x = r * (g_hat - x_hat * mean(g_hat * x_hat)).",
         lambda: _compact(g, x, w, eps, mean_path=True)),
        ("it sums g_hat * x_hat over the features where the formula has a mean (the 1/D of "
         "mean(x**2) is missing).",
         "use (g_hat * x_hat).mean(-1, keepdim=True), not .sum(-1).",
         lambda: _compact(g, x, w, eps, reduce_d="sum")),
        ("weight is left out of grad_x: the gradient reaching x_hat is grad_out * weight.",
         "use g_hat = grad_out * weight everywhere in the formula for grad_x.",
         lambda: _compact(g, x, w, eps, weight_in=False)),
        ("grad_weight is averaged over the batch instead of summed.",
         "grad_weight = (grad_out * x_hat).sum(0): every row contributes its own term.",
         lambda: _compact(g, x, w, eps, params="mean")),
        ("eps is added outside the square root: sqrt(mean(x**2)) + eps.",
         "PyTorch adds eps inside: r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps).",
         lambda: _rms_grads(g, x, w, eps, lambda x, w: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * w)),
        ("eps is added outside the square root: sqrt(mean(x**2)) + eps.",
         "PyTorch adds eps inside: r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps).",
         lambda: _compact(g, x, w, eps, eps_outside=True)),
        ("it is layer norm's backward (the mean subtracted in the forward pass as well).",
         "RMS norm uses x itself: x_hat = x * r with r = rsqrt(mean(x**2) + eps), no mean anywhere.",
         lambda: _rms_grads(g, x, w, eps, lambda x, w: F.layer_norm(x, x.shape[-1:], w, None, eps))),
    ]


def _rms_backward_case(rms_norm_backward, n, d, seed, dtype=torch.float64, eps=None):
    gen = generator(seed)
    x = (torch.randn(n, 1, generator=gen, dtype=torch.float64)
         + (0.5 + torch.rand(n, 1, generator=gen, dtype=torch.float64))
         * torch.randn(n, d, generator=gen, dtype=torch.float64)).to(dtype)
    w = (1 + 0.5 * torch.randn(d, generator=gen, dtype=torch.float64)).to(dtype)
    g = torch.randn(n, d, generator=gen, dtype=torch.float64).to(dtype)
    eps_v = 1e-6 if eps is None else eps
    what = (f"rms_norm_backward(grad_out, x, weight{'' if eps is None else f', eps={eps}'}) "
            f"for x of shape ({n}, {d}) in {str(dtype).replace('torch.', '')}")
    xs, ws, gs = x.clone(), w.clone(), g.clone()
    with _no_autograd("rms_norm_backward"):
        out = call(rms_norm_backward, gs, xs, ws, _what=what, **({} if eps is None else {"eps": eps}))
    if not torch.equal(gs, g):
        fail(f"{what} modified grad_out in place.",
             "grad_out belongs to the caller: compute new tensors (g_hat = grad_out * weight), "
             "never grad_out *= ... or grad_out.mul_(...).")
    if not torch.equal(xs, x) or not torch.equal(ws, w):
        fail(f"{what} modified x or weight in place.", "compute new tensors, never x *= ... or x.mul_(...).")
    if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(isinstance(t, torch.Tensor) for t in out):
        fail(f"{what} returned {type(out).__name__}"
             + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
             + ", not a tuple of two tensors.", "return grad_x, grad_weight (in that order; there is no bias).")
    for name, t, shape in (("grad_x", out[0], (n, d)), ("grad_weight", out[1], (d,))):
        if tuple(t.shape) != shape:
            fail(f"{what}: {name} has shape {tuple(t.shape)}, expected {shape}.",
                 f"{name} has the shape of {'x' if name == 'grad_x' else 'weight: sum over dim 0'}.")
        if t.dtype != dtype:
            fail(f"{what}: {name} has dtype {t.dtype} for {dtype} inputs.", "keep the inputs' dtype.")
    ref = _rms_grads(g, x, w, eps_v)
    if all(_bw_close(a, r, dtype) for a, r in zip(out, ref)):
        return
    for mistake, fix, make in _backward_candidates(g, x, w, eps_v):
        cand = _safe(make)
        if cand is not None and all(_bw_close(a, c, dtype) for a, c in zip(out, cand)) \
                and not all(_bw_close(c, r, dtype) for c, r in zip(cand, ref)):
            fail(f"{what}: {mistake}", fix)
    wrong = [name for name, a, r in zip(("grad_x", "grad_weight"), out, ref) if not _bw_close(a, r, dtype)]
    worst = max((a.detach().double() - r).abs().max().item() for a, r in zip(out, ref))
    fail(f"{what}: {', '.join(wrong)} differ{'s' if len(wrong) == 1 else ''} from autograd through "
         f"torch.nn.functional.rms_norm (largest difference {worst:.3g}), and not in a way the check "
         "recognises.", "derive it step by step as in the notebook and compare with autograd on a small "
         "float64 input in a new cell: " + _BACKWARD_HOW + ".")


@check
def check_rms_norm_backward(rms_norm_backward) -> None:
    """Both gradients agree with autograd through F.rms_norm to 1e-8 in float64; inputs unchanged;
    no autograd, no built-in normalisation."""
    _rms_backward_case(rms_norm_backward, 6, 8, seed=630)
    _rms_backward_case(rms_norm_backward, 5, 7, seed=631, eps=0.5)


# --------------------------------------------------------------------------------------------
# RMSNormFunction

_CASCADE = ("(A backward that calls your rms_norm_backward inherits its mistakes: if the "
            "rms_norm_backward tests fail too, fix it first.)")


def _function_case(RMSNormFunction, n, d, seed, eps, needs=(True, True)):
    if not (isinstance(RMSNormFunction, type) and issubclass(RMSNormFunction, torch.autograd.Function)):
        fail("RMSNormFunction is not a subclass of torch.autograd.Function.",
             "write `class RMSNormFunction(torch.autograd.Function):` with two @staticmethods, "
             "forward(ctx, x, weight, eps) and backward(ctx, grad_out).")
    gen = generator(seed)
    x = torch.randn(n, 1, generator=gen, dtype=torch.float64) + torch.randn(n, d, generator=gen, dtype=torch.float64)
    w = 1 + 0.5 * torch.randn(d, generator=gen, dtype=torch.float64)
    g = torch.randn(n, d, generator=gen, dtype=torch.float64)
    what = f"RMSNormFunction.apply(x of shape ({n}, {d}), weight, {eps})"
    xs, ws = x.clone().requires_grad_(needs[0]), w.clone().requires_grad_(needs[1])
    expected = F.rms_norm(x, (d,), w, eps)
    with _no_builtin("RMSNormFunction"):
        out = call(RMSNormFunction.apply, xs, ws, eps, _what=what)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            fail(f"{what} returned {type(out).__name__}"
                 + (f" of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else "")
                 + f", not a tensor of x's shape {(n, d)}.", "return the normalised tensor from forward.")
        if not torch.allclose(out.detach(), expected, rtol=1e-8, atol=1e-10):
            fail(f"{what}: forward differs from torch.nn.functional.rms_norm.",
                 "forward returns x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight.")
        if not out.requires_grad:
            fail(f"{what} returned an output that does not require grad: autograd cannot reach your backward.",
                 "return a tensor computed in forward (no .detach()).")
        try:
            out.backward(g)
        except RuntimeError as exc:
            if "incorrect number of gradients" in str(exc):
                fail(f"{what}: backward returned another number of gradients than forward has inputs "
                     "(x, weight, eps).", "return grad_x, grad_weight, None (None for eps).")
            fail(f"{what}.backward(grad_out) raised RuntimeError: {exc}",
                 "backward returns grad_x, grad_weight, None, tensors of x's and weight's shapes.")
    ref = _rms_grads(g, x, w, eps)
    for name, t, r, need in (("x", xs, ref[0], needs[0]), ("weight", ws, ref[1], needs[1])):
        if not need:
            continue
        if t.grad is None:
            fail(f"{what}: after backward, {name}.grad is None: backward returned None for {name}.",
                 "return a gradient for every tensor input that needs one: grad_x, grad_weight, None.")
        if not _bw_close(t.grad, r, torch.float64):
            fail(f"{what}: the gradient of {name} differs from autograd through F.rms_norm. {_CASCADE}",
                 "backward returns rms_norm_backward(grad_out, x, weight, ctx.eps) and None for eps, "
                 "in the order of forward's inputs.")
    inputs = (x.clone().requires_grad_(True), w.clone().requires_grad_(True))
    try:
        with _no_builtin("RMSNormFunction"):
            ok = torch.autograd.gradcheck(lambda a, b: RMSNormFunction.apply(a, b, eps), inputs,
                                          eps=1e-6, atol=1e-7, rtol=1e-5, raise_exception=True)
    except Exception as exc:  # noqa: BLE001 - translated, never shown raw
        ok = False
        detail = type(exc).__name__
    else:
        detail = ""
    if not ok:
        fail(f"torch.autograd.gradcheck failed on {what} ({detail or 'Jacobian mismatch'}): your backward "
             f"disagrees with finite differences of your forward. {_CASCADE}",
             "compare backward with rms_norm_backward above, input by input.")


@check
def check_RMSNormFunction(RMSNormFunction) -> None:
    """forward against F.rms_norm; gradients of x and weight against autograd; gradcheck passes."""
    _function_case(RMSNormFunction, 6, 5, seed=640, eps=1e-6)
