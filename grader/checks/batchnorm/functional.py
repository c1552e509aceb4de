"""Checks of ``batch_norm``: training mode, running statistics, evaluation mode."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._common import call, check, fail, generator
from ._shared import (
    _affine, _candidates, _close, _close_loose, _diagnose_train_output, _dims, _eval_candidates,
    _no_builtin, _probe, _TRAIN_MISTAKES,
)


# ---------------------------------------------------------------------------- batch_norm

def _call_bn(batch_norm, x, running_mean, running_var, what, exercise="batch_norm", **kwargs):
    given = x.clone()
    with _no_builtin(exercise):
        out = call(batch_norm, given, running_mean, running_var, _what=what, **kwargs)
    if not torch.equal(given, x):
        fail(f"{what} modified its input x in place.",
             "build new tensors ((x - mean) / ...); never x.sub_(...) or x -= ...")
    return out


_TRAIN_CASES = (
    ((8, 4), torch.float32),
    ((6, 3, 7), torch.float32),
    ((4, 3, 5, 5), torch.float32),
    ((3, 2, 3, 4, 2), torch.float64),
)


@check
def check_batch_norm_training(batch_norm) -> None:
    """Training mode against F.batch_norm for every rank, with and without gamma and beta."""
    for k, (shape, dtype) in enumerate(_TRAIN_CASES):
        x = _probe(shape, dtype, seed=10 + k)
        c = shape[1]
        what = f"batch_norm(x of shape {shape}, None, None, training=True)"
        out = _call_bn(batch_norm, x, None, None, what, training=True)
        _diagnose_train_output(out, x, None, None, 1e-5, what)
        weight, bias = _affine(c, 20 + k, dtype)
        rm, rv = torch.zeros(c, dtype=dtype), torch.ones(c, dtype=dtype)
        what = (f"batch_norm(x of shape {shape}, running_mean, running_var, weight, bias, "
                f"training=True)")
        out = _call_bn(batch_norm, x, rm, rv, what, weight=weight, bias=bias, training=True)
        _diagnose_train_output(out, x, weight, bias, 1e-5, what)
    x = _probe((10, 3), seed=30)
    what = "batch_norm(x, None, None, training=True, eps=0.1)"
    out = _call_bn(batch_norm, x, None, None, what, training=True, eps=0.1)
    _diagnose_train_output(out, x, None, None, 0.1, what, extra=" (with eps=0.1: is eps passed through?)")


def _simulate_buffers(xs, momentum, variant):
    """Running buffers after training steps on ``xs`` (float64), correct or mistaken."""
    c = xs[0].shape[1]
    rm = torch.zeros(c, dtype=torch.float64)
    rv = torch.ones(c, dtype=torch.float64)
    for x in xs:
        x = x.to(torch.float64)
        dims = _dims(x)
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=(variant not in ("biased", "reversed_biased")))
        if variant.startswith("reversed"):
            rm = momentum * rm + (1 - momentum) * mean
            rv = momentum * rv + (1 - momentum) * var
        else:
            rm = (1 - momentum) * rm + momentum * mean
            rv = (1 - momentum) * rv + momentum * var
    return rm, rv


def _buffer_close(actual, expected):
    return bool(torch.allclose(actual.detach().to(torch.float64), expected, rtol=1e-4, atol=1e-6))


@check
def check_batch_norm_running_stats(batch_norm) -> None:
    """The running buffers after several training steps, as F.batch_norm leaves them."""
    cases = (((8, 3), torch.float32, 0.1), ((4, 3, 5, 5), torch.float64, 0.3), ((5, 2, 6), torch.float32, 0.1))
    for k, (shape, dtype, momentum) in enumerate(cases):
        xs = [_probe(shape, dtype, seed=40 + 5 * k + s) for s in range(4)]
        c = shape[1]
        rm, rv = torch.zeros(c, dtype=dtype), torch.ones(c, dtype=dtype)
        ref_m, ref_v = rm.double().clone(), rv.double().clone()
        what = f"batch_norm(x of shape {shape}, running_mean, running_var, training=True, momentum={momentum})"
        for step, x in enumerate(xs):
            xg = x.clone().requires_grad_(True)
            with _no_builtin("batch_norm"):
                call(batch_norm, xg, rm, rv, _what=what, training=True, momentum=momentum)
            F.batch_norm(x.double(), ref_m, ref_v, training=True, momentum=momentum)
            if rm.requires_grad or rv.requires_grad or rm.grad_fn is not None or rv.grad_fn is not None:
                fail(
                    f"After {what} with an input that requires grad, running_mean/running_var "
                    "carry autograd history (requires_grad=True): every later step would chain "
                    "onto the graph of every earlier batch.",
                    "update the buffers inside `with torch.no_grad():` (or from mean.detach() "
                    "and var.detach()).",
                )
            if step == 0 and torch.equal(rm, torch.zeros(c, dtype=dtype)) and torch.equal(rv, torch.ones(c, dtype=dtype)):
                fail(
                    f"{what} left the running_mean and running_var it was given unchanged. "
                    "Assigning `running_mean = ...` inside the function only rebinds a local name "
                    "to a new tensor that the caller never sees.",
                    "update the given tensors in place: running_mean.mul_(1 - momentum)"
                    ".add_(momentum * mean), and the same for running_var.",
                )
        if rm.dtype != dtype or rv.dtype != dtype:
            fail(f"{what} changed the buffers' dtype.", "update them in place, keeping their dtype.")
        if _buffer_close(rm, ref_m) and _buffer_close(rv, ref_v):
            continue
        sims = {v: _simulate_buffers(xs, momentum, v) for v in ("biased", "reversed", "reversed_biased")}
        if _buffer_close(rm, sims["reversed"][0]):
            fail(
                f"After 4 steps of {what} the running estimates follow the reversed momentum rule, "
                "running = momentum * running + (1 - momentum) * batch_stat (CS231n's convention, "
                "or Keras'). In PyTorch momentum is the weight of the *new* batch.",
                "running = (1 - momentum) * running + momentum * batch_stat.",
            )
        if _buffer_close(rm, ref_m) and _buffer_close(rv, sims["biased"][1]):
            fail(
                f"After 4 steps of {what} running_var is an average of the biased batch variances "
                "(dividing by m). PyTorch stores the unbiased variance (dividing by m - 1) in "
                "running_var, while it normalises with the biased one: the seed's formula hides "
                "this (a batch [1, 2, 6] with momentum 0.3 gives 2.8, not 2.1).",
                "update running_var with var * m / (m - 1), m = values per channel "
                "(x.numel() // C), or x.var(dim=..., unbiased=True).",
            )
        if not _buffer_close(rm, ref_m):
            fail(
                f"After 4 steps of {what} running_mean is {rm.tolist()}; "
                f"expected {[round(v, 6) for v in ref_m.tolist()]}.",
                "running_mean.mul_(1 - momentum).add_(momentum * batch_mean), with the mean over "
                "dimension 0 and every dimension after 1.",
            )
        fail(
            f"After 4 steps of {what} running_var is {rv.tolist()}; "
            f"expected {[round(v, 6) for v in ref_v.tolist()]}.",
            "running_var.mul_(1 - momentum).add_(momentum * unbiased_batch_var).",
        )


@check
def check_batch_norm_eval(batch_norm) -> None:
    """Evaluation mode: the running buffers normalise, nothing changes; without buffers, batch statistics."""
    for k, shape in enumerate(((8, 4), (4, 4, 3, 3))):
        x = _probe(shape, seed=50 + k)
        c = shape[1]
        g = generator(60 + k)
        rm = torch.randn(c, generator=g) * 2
        rv = 0.5 + 3 * torch.rand(c, generator=g)
        weight, bias = _affine(c, 70 + k)
        saved_m, saved_v = rm.clone(), rv.clone()
        what = f"batch_norm(x of shape {shape}, running_mean, running_var, weight, bias, training=False)"
        out = _call_bn(batch_norm, x, rm, rv, what, weight=weight, bias=bias, training=False)
        changed = not (torch.equal(rm, saved_m) and torch.equal(rv, saved_v))
        expected = F.batch_norm(x.double(), saved_m.double(), saved_v.double(), weight.double(),
                                bias.double(), training=False)
        if changed:
            fail(
                f"{what} changed running_mean or running_var: in evaluation the buffers are only "
                "read. Updating them would make the model's predictions drift with every batch it "
                "is shown.",
                "update the buffers only when training is True.",
            )
        if _close(out, expected, x):
            continue
        batch_stats = _candidates(x, weight, bias, 1e-5)["correct"]
        for name, cand in _eval_candidates(x, saved_m, saved_v, weight, bias, 1e-5).items():
            if _close_loose(out, cand):
                mistake, fix = _TRAIN_MISTAKES[name]
                fail(f"{what}: {mistake}", fix)
        if _close_loose(out, batch_stats):
            fail(
                f"{what} normalised with the batch's own mean and variance. In evaluation batch "
                "norm uses running_mean and running_var, the estimates accumulated in training "
                "(the seed's \"测试:当前统计值\" says otherwise and is misleading); otherwise a "
                "prediction would depend on the other samples of the batch.",
                "when training is False and the buffers are given, use mean = running_mean and "
                "var = running_var.",
            )
        gap = (out.detach().to(torch.float64) - expected).abs().max().item() if isinstance(out, torch.Tensor) and out.shape == x.shape else float("nan")
        fail(f"{what} differs from torch.nn.functional.batch_norm(training=False).",
             "(x - running_mean) / sqrt(running_var + eps), then weight and bias, each reshaped "
             "to (1, C, 1, ...).", detail=f"(largest difference {gap:.3g})")
    x = _probe((6, 3, 4), seed=80)
    what = "batch_norm(x, None, None, training=False)"
    out = _call_bn(batch_norm, x, None, None, what, training=False)
    train_out = _call_bn(batch_norm, x, None, None, "batch_norm(x, None, None, training=True)", training=True)
    if not (isinstance(out, torch.Tensor) and isinstance(train_out, torch.Tensor)
            and out.shape == train_out.shape
            and torch.allclose(out.detach().double(), train_out.detach().double(), rtol=1e-6, atol=1e-7)):
        fail(
            f"{what} differs from the same call with training=True. Without running buffers "
            "batch norm normalises with the batch's statistics in both modes, as a layer with "
            "track_running_stats=False does (F.batch_norm itself refuses None buffers in "
            "evaluation; this exercise follows the layer, as its docstring says).",
            "use the batch's mean and biased variance whenever running_mean is None.",
        )


