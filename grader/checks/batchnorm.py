"""Checks for assignment 04-batchnorm: ``batch_norm``, ``BatchNorm``, ``identity_affine`` and
``LeNetBN``.

The references are PyTorch's own ``torch.nn.functional.batch_norm`` and ``nn.BatchNorm1d/2d/3d``,
run in float64 on probe inputs with different means and scales per channel (one channel with a
tiny variance, so that where ``eps`` sits matters). When an answer differs, the check computes
the outputs of the typical mistakes on the same input and names the one that matches.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import call, check, expect_raises, fail, forbid_builtins, generator

_BUILTINS = (
    "batch_norm", "native_batch_norm", "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training", "_batch_norm_impl_index", "cudnn_batch_norm",
    "instance_norm", "layer_norm", "native_layer_norm", "group_norm", "native_group_norm",
)
_HOW = "x.mean / x.var over the right dimensions, then (x - mean) / torch.sqrt(var + eps)"
_RTOL, _ATOL = 1e-4, 2e-5          # float32 answers against float64 references
_RTOL64, _ATOL64 = 1e-7, 1e-9      # float64 answers

_CASCADE_BN = ("(BatchNorm usually calls your batch_norm: if the batch_norm tests fail too, "
               "fix batch_norm first.)")


def _no_builtin(exercise: str):
    return forbid_builtins(exercise, _BUILTINS, _HOW)


# ---------------------------------------------------------------------------- probes

def _probe(shape, dtype=torch.float32, seed=0) -> torch.Tensor:
    """Channel c has its own mean and scale; the last channel has a tiny scale (1e-3, mean 0),
    so that var is below eps and eps outside the square root shows."""
    g = generator(seed)
    c = shape[1]
    view = [1, c] + [1] * (len(shape) - 2)
    means = torch.linspace(-2.0, 3.0, c, dtype=torch.float64)
    scales = torch.linspace(0.5, 4.0, c, dtype=torch.float64)
    means[-1], scales[-1] = 0.0, 1e-3
    x = means.view(view) + scales.view(view) * torch.randn(shape, generator=g, dtype=torch.float64)
    # make each sample differ in its mean too, so that per-sample statistics differ clearly
    x = x + 0.7 * torch.randn([shape[0]] + [1] * (len(shape) - 1), generator=g, dtype=torch.float64) * scales.view(view)
    return x.to(dtype)


def _affine(c: int, seed: int, dtype=torch.float32):
    g = generator(seed)
    weight = (0.5 + 1.5 * torch.rand(c, generator=g, dtype=torch.float64)).to(dtype)
    bias = (torch.randn(c, generator=g, dtype=torch.float64) + 1.0).to(dtype)
    return weight, bias


def _dims(x: torch.Tensor) -> list[int]:
    return [0] + list(range(2, x.dim()))


def _view(x: torch.Tensor) -> list[int]:
    return [1, x.shape[1]] + [1] * (x.dim() - 2)


def _tol(x: torch.Tensor):
    return (_RTOL64, _ATOL64) if x.dtype == torch.float64 else (_RTOL, _ATOL)


def _close(actual, expected, x) -> bool:
    rtol, atol = _tol(x)
    return (isinstance(actual, torch.Tensor) and actual.shape == expected.shape
            and bool(torch.allclose(actual.detach().to(torch.float64), expected, rtol=rtol, atol=atol)))


def _close_loose(actual, expected) -> bool:
    return (isinstance(actual, torch.Tensor) and actual.shape == expected.shape
            and bool(torch.allclose(actual.detach().to(torch.float64), expected, rtol=2e-3, atol=2e-4)))


def _shape_text(x: torch.Tensor) -> str:
    return f"an input of shape {tuple(x.shape)}"


# ---------------------------------------------------------------------------- typical outputs

def _normalise(x, mean, var, eps, how="inside"):
    if how == "outside":
        return (x - mean) / (torch.sqrt(var) + eps)
    return (x - mean) / torch.sqrt(var + eps)


def _candidates(x: torch.Tensor, weight, bias, eps: float) -> dict:
    """float64 outputs of the correct training-mode batch norm and of the typical mistakes."""
    x = x.detach().to(torch.float64)
    v = _view(x)
    dims = _dims(x)
    w = None if weight is None else weight.detach().to(torch.float64).view(v)
    b = None if bias is None else bias.detach().to(torch.float64).view(v)

    def affine(xhat):
        out = xhat
        if w is not None:
            out = out * w
        if b is not None:
            out = out + b
        return out

    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    xhat = _normalise(x, mean, var, eps)
    out = {"correct": affine(xhat)}
    out["unbiased"] = affine(_normalise(x, mean, x.var(dim=dims, unbiased=True, keepdim=True), eps))
    out["eps_outside"] = affine(_normalise(x, mean, var, eps, "outside"))
    out["no_eps"] = affine((x - mean) / torch.sqrt(var))
    out["std_not_sqrt"] = affine((x - mean) / (var + eps))
    sample_dims = list(range(1, x.dim()))
    out["per_sample"] = affine(_normalise(
        x, x.mean(dim=sample_dims, keepdim=True), x.var(dim=sample_dims, unbiased=False, keepdim=True), eps))
    if x.dim() > 2:
        inst = list(range(2, x.dim()))
        out["per_sample_channel"] = affine(_normalise(
            x, x.mean(dim=inst, keepdim=True), x.var(dim=inst, unbiased=False, keepdim=True), eps))
        out["batch_only"] = affine(_normalise(
            x, x.mean(dim=0, keepdim=True), x.var(dim=0, unbiased=False, keepdim=True), eps))
    out["whole_tensor"] = affine(_normalise(x, x.mean(), x.var(unbiased=False), eps))
    if w is not None or b is not None:
        out["no_affine"] = xhat
        if w is not None and b is not None:
            out["swapped"] = xhat * b + w
            out["affine_before"] = _normalise(x * w + b, (x * w + b).mean(dim=dims, keepdim=True),
                                              (x * w + b).var(dim=dims, unbiased=False, keepdim=True), eps)
        if w is not None:
            out["weight_only"] = xhat * w
        if b is not None:
            out["bias_only"] = xhat + b
    return out


def _eval_candidates(x, running_mean, running_var, weight, bias, eps) -> dict:
    """float64 outputs of typical affine mistakes when normalising with the running buffers."""
    x = x.detach().to(torch.float64)
    v = _view(x)
    m, var = running_mean.double().view(v), running_var.double().view(v)
    w, b = weight.double().view(v), bias.double().view(v)
    xhat = _normalise(x, m, var, eps)
    return {"swapped": xhat * b + w, "no_affine": xhat, "weight_only": xhat * w, "bias_only": xhat + b,
            "affine_before": _normalise(x * w + b, m, var, eps)}


_TRAIN_MISTAKES = {
    "unbiased": (
        "The output is normalised with the unbiased variance (dividing by m - 1): batch norm "
        "normalises with the biased variance of the batch (dividing by m, the number of values "
        "per channel); only running_var stores the unbiased one.",
        "use x.var(dim=..., unbiased=False) (or ((x - mean) ** 2).mean(dim=...)) to normalise.",
    ),
    "eps_outside": (
        "eps is added outside the square root, (x - mean) / (sqrt(var) + eps): on a channel whose "
        "variance is near eps the result differs a lot.",
        "divide by torch.sqrt(var + eps): eps goes inside the square root.",
    ),
    "no_eps": (
        "eps is missing: (x - mean) / sqrt(var).",
        "divide by torch.sqrt(var + eps).",
    ),
    "std_not_sqrt": (
        "The output is divided by the variance instead of the standard deviation.",
        "divide by torch.sqrt(var + eps).",
    ),
    "per_sample": (
        "The statistics are computed per sample (over dimensions 1, 2, ...): that is layer "
        "normalisation, not batch normalisation, which computes one mean and variance per "
        "channel across the batch.",
        "reduce over dimension 0 and every dimension after 1: dims = [0, 2, 3, ...].",
    ),
    "per_sample_channel": (
        "The statistics are computed per sample and per channel over the spatial positions only: "
        "that is instance normalisation. Batch norm also reduces over the batch (dimension 0).",
        "reduce over dimension 0 and every dimension after 1: dims = [0, 2, 3, ...].",
    ),
    "batch_only": (
        "For an input with spatial dimensions the statistics are computed over the batch only "
        "(dimension 0), one mean per channel *and position*: batch norm computes one mean and "
        "variance per channel over the batch and every spatial position.",
        "reduce over dimension 0 and every dimension after 1: dims = [0] + list(range(2, x.dim())).",
    ),
    "whole_tensor": (
        "One mean and variance are computed over the whole tensor: batch norm keeps one per "
        "channel (dimension 1).",
        "reduce over dimension 0 and every dimension after 1, keeping dimension 1.",
    ),
    "no_affine": (
        "weight (gamma) and bias (beta) have no effect on the output: they are either ignored, "
        "or applied before normalising, which then removes them.",
        "normalise first, then return weight * x_hat + bias (each reshaped to (1, C, 1, ...)).",
    ),
    "affine_before": (
        "gamma and beta are applied before normalising, which then removes them: the output is "
        "the same as without them.",
        "normalise first, then return weight * x_hat + bias.",
    ),
    "swapped": (
        "gamma and beta are swapped: the output is bias * x_hat + weight.",
        "weight (gamma) scales, bias (beta) shifts: weight * x_hat + bias.",
    ),
    "weight_only": (
        "bias (beta) is ignored.",
        "add bias (reshaped to (1, C, 1, ...)) after scaling by weight.",
    ),
    "bias_only": (
        "weight (gamma) is ignored.",
        "multiply by weight (reshaped to (1, C, 1, ...)) before adding bias.",
    ),
}


def _diagnose_train_output(out, x, weight, bias, eps, what, extra=""):
    """Fail naming the mistake unless ``out`` is training-mode batch norm of ``x``."""
    if not isinstance(out, torch.Tensor):
        fail(f"{what} returned {type(out).__name__}, not a tensor.", "return a torch.Tensor.")
    if out.shape != x.shape:
        fail(f"{what} returned shape {tuple(out.shape)} for {_shape_text(x)}.",
             "batch norm keeps the input's shape: reshape mean, var, weight and bias to "
             "(1, C, 1, ...) so that they broadcast.")
    if out.dtype != x.dtype:
        fail(f"{what} returned dtype {out.dtype} for a {x.dtype} input.",
             "compute in the input's dtype (do not create float32 tensors for a float64 input).")
    cands = _candidates(x, weight, bias, eps)
    if _close(out, cands["correct"], x):
        return
    for name, (mistake, fix) in _TRAIN_MISTAKES.items():
        if name in cands and _close_loose(out, cands[name]) and not _close_loose(cands[name], cands["correct"]):
            fail(f"{what}: {mistake}{extra}", fix)
    gap = (out.detach().to(torch.float64) - cands["correct"]).abs()
    fail(f"{what} differs from torch.nn.functional.batch_norm(training=True){extra}.",
         "normalise each channel with the mean and biased variance over dimension 0 and every "
         "dimension after 1, eps inside the square root, then weight * x_hat + bias.",
         detail=f"(largest difference {gap.max().item():.3g})")


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
            "(what track_running_stats=False gives) batch norm normalises with the batch's "
            "statistics in both modes.",
            "use the batch's mean and biased variance whenever running_mean is None.",
        )


@check
def check_batch_norm_edge_cases(batch_norm) -> None:
    """One value per channel and bad ranks raise; float64, gradients and single-sample eval work."""
    # gradients flow through the statistics
    x = _probe((6, 3, 2, 2), torch.float64, seed=93)
    weight, bias = _affine(3, 94, torch.float64)
    xs, ws, bs = (t.clone().requires_grad_(True) for t in (x, weight, bias))
    xr, wr, br = (t.clone().requires_grad_(True) for t in (x, weight, bias))
    with _no_builtin("batch_norm"):
        out = call(batch_norm, xs, None, None, ws, bs, training=True,
                   _what="batch_norm(x, None, None, weight, bias) with requires_grad")
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        fail("batch_norm's output does not track gradients: the network could not learn through it.",
             "compute the output from x, weight and bias with differentiable operations "
             "(no .detach(), no .data, no torch.no_grad() around the normalisation).")
    upstream = torch.randn(x.shape, generator=generator(95), dtype=torch.float64)
    reference = F.batch_norm(xr, None, None, wr, br, training=True)
    (reference * upstream).sum().backward()
    # a wrong output is test_batch_norm's business; compare gradients only for a right output
    same_output = _close(out, reference.detach(), x)
    if same_output:
        (out * upstream).sum().backward()
    for name, mine, ref in (("x", xs, xr), ("weight", ws, wr), ("bias", bs, br)):
        if same_output and (mine.grad is None or not torch.allclose(mine.grad, ref.grad, rtol=1e-6, atol=1e-8)):
            fail(
                f"The gradient of batch_norm's output with respect to {name} differs from PyTorch's.",
                "let autograd see the mean and variance too: compute them from x without "
                ".detach() or torch.no_grad() (only the buffer update goes under no_grad).",
            )
    for shape in ((1, 4), (1, 3, 1, 1)):
        x = _probe(shape, seed=90)
        expect_raises(
            batch_norm, x, torch.zeros(shape[1]), torch.ones(shape[1]), training=True,
            mistake=f"batch_norm accepted a training batch of shape {shape}, one value per channel: "
                    "its variance is 0 and the output carries no information.",
            fix="in training, raise ValueError when x.numel() // C < 2, saying what shape was given.",
        )
    for shape in ((5,), (2, 2, 2, 2, 2, 2)):
        x = torch.randn(shape, generator=generator(91))
        expect_raises(
            batch_norm, x, None, None, training=True,
            mistake=f"batch_norm accepted an input of shape {shape}: only 2- to 5-dimensional "
                    "inputs (N, C, ...) are batch-normalised.",
            fix="raise ValueError unless 2 <= x.dim() <= 5.",
        )
    # a single sample in evaluation is fine: that is how a trained model is used
    x = _probe((1, 3, 4, 4), seed=92)
    rm, rv = torch.tensor([0.5, -1.0, 0.0]), torch.tensor([2.0, 0.5, 1.5])
    what = "batch_norm(one sample, running_mean, running_var, training=False)"
    out = _call_bn(batch_norm, x, rm.clone(), rv.clone(), what, training=False)
    if not _close(out, F.batch_norm(x.double(), rm.double(), rv.double(), training=False), x):
        fail(f"{what} differs from torch.nn.functional.batch_norm(training=False): in evaluation "
             "a batch of one sample is normalised with the running estimates like any other.",
             "raise the one-value error only in training; in evaluation use (x - running_mean) / "
             "sqrt(running_var + eps).")


# ---------------------------------------------------------------------------- BatchNorm

def _is_module_class(cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        fail("BatchNorm is not a subclass of nn.Module.", "write `class BatchNorm(nn.Module):`.")


def _make(BatchNorm, *args, **kwargs):
    desc = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    layer = call(BatchNorm, *args, _what=f"BatchNorm({desc})", **kwargs)
    if not isinstance(layer, nn.Module):
        fail(f"BatchNorm({desc}) is not an nn.Module.", "subclass nn.Module and call super().__init__().")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in layer.modules()):
        fail(f"BatchNorm({desc}) wraps PyTorch's own BatchNorm layer: the exercise is to write it, "
             "so the built-in earns no points here.",
             "register weight, bias and the three buffers on the module itself and call your "
             "batch_norm in forward().")
    return layer


def _check_state(layer, c: int, what: str) -> None:
    params = dict(layer.named_parameters(recurse=False))
    buffers = dict(layer.named_buffers(recurse=False))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        if name not in buffers:
            if isinstance(getattr(layer, name, None), torch.Tensor):
                fail(
                    f"{what}.{name} is a plain attribute, not a registered buffer: it is missing "
                    "from state_dict() (a saved model would lose its running statistics) and "
                    ".to(device) / .double() would not move or convert it.",
                    f"self.register_buffer(\"{name}\", ...) in __init__.",
                )
            fail(f"{what} has no buffer {name!r}.", f"self.register_buffer(\"{name}\", ...) in __init__.")
    if set(params) != {"weight", "bias"}:
        fail(f"{what} has the parameters {sorted(params)}; expected weight and bias.",
             "self.weight = nn.Parameter(torch.ones(num_features)); self.bias = nn.Parameter("
             "torch.zeros(num_features)).")
    expected = {"weight": torch.ones(c), "bias": torch.zeros(c), "running_mean": torch.zeros(c),
                "running_var": torch.ones(c)}
    for name, value in expected.items():
        t = params.get(name, buffers.get(name))
        if tuple(t.shape) != (c,) or not torch.equal(t.detach().float(), value):
            fail(f"{what}.{name} starts as {t.detach().tolist()}; expected {value.tolist()}.",
                 "weight ones, bias zeros, running_mean zeros, running_var ones, of shape (C,).")
    nbt = buffers["num_batches_tracked"]
    if nbt.dtype != torch.long or nbt.dim() != 0 or nbt.item() != 0:
        fail(f"{what}.num_batches_tracked is {nbt!r}; expected torch.tensor(0, dtype=torch.long).",
             "self.register_buffer(\"num_batches_tracked\", torch.tensor(0, dtype=torch.long)).")


def _pair(BatchNorm, ref_cls, c, seed, **kwargs):
    """A student layer and a PyTorch layer, float64, with the same random weight and bias."""
    ours = _make(BatchNorm, c, **kwargs).double()
    ref = ref_cls(c, **kwargs).double()
    if kwargs.get("affine", True):
        w, b = _affine(c, seed, torch.float64)
        with torch.no_grad():
            ours.weight.copy_(w)
            ours.bias.copy_(b)
            ref.weight.copy_(w)
            ref.bias.copy_(b)
    return ours, ref


def _run(layer, x, what, exercise="BatchNorm"):
    with _no_builtin(exercise):
        return call(layer, x, _what=what)


def _compare_layers(ours, ref, xs, what, *, check_buffers=True):
    """Train both layers on xs, then evaluate; fail at the first difference."""
    ours.train()
    ref.train()
    for step, x in enumerate(xs):
        rm = getattr(ours, "running_mean", None)
        xg = x.clone().requires_grad_(True)
        out = _run(ours, xg, f"{what} in train mode (step {step + 1})")
        expected = ref(x)
        if not _close(out, expected.detach(), x):
            try:
                _diagnose_train_output(out, x, ref.weight, ref.bias, ref.eps, f"{what} in train mode")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n  {_CASCADE_BN}") from None
        if check_buffers and rm is not None:
            if ours.running_mean is not rm or ours.running_mean.data_ptr() != rm.data_ptr():
                fail(
                    f"{what}: the forward pass replaced self.running_mean by a new tensor instead "
                    "of updating it in place; any reference to the buffer (an EMA copy, a "
                    "DataParallel replica, your own variable) keeps the stale values.",
                    "update the buffers in place (running_mean.mul_(...).add_(...)), e.g. by "
                    "passing them to your batch_norm.",
                )
            if ours.running_mean.requires_grad or ours.running_var.requires_grad:
                fail(f"{what}: after a training step the running buffers carry autograd history.",
                     "update them under torch.no_grad().")
    if check_buffers and ref.track_running_stats:
        for name in ("running_mean", "running_var"):
            mine, theirs = getattr(ours, name), getattr(ref, name)
            if not torch.allclose(mine.detach().double(), theirs, rtol=1e-6, atol=1e-9):
                fail(
                    f"After {len(xs)} training steps {what}.{name} is "
                    f"{[round(v, 5) for v in mine.tolist()]}; nn.{type(ref).__name__} has "
                    f"{[round(v, 5) for v in theirs.tolist()]}.\n  {_CASCADE_BN}",
                    "running = (1 - momentum) * running + momentum * batch_stat, the unbiased "
                    "variance for running_var, in place.",
                )
        if int(ours.num_batches_tracked) != int(ref.num_batches_tracked):
            fail(f"After {len(xs)} training steps {what}.num_batches_tracked is "
                 f"{int(ours.num_batches_tracked)}; expected {int(ref.num_batches_tracked)}.",
                 "self.num_batches_tracked.add_(1) on every training-mode forward pass.")
    ours.eval()
    ref.eval()
    saved = {k: v.clone() for k, v in ours.state_dict().items()}
    x = xs[0] * 1.5 + 0.5
    out = _run(ours, x, f"{what} in eval mode")
    expected = ref(x).detach()
    after = ours.state_dict()
    if any(not torch.equal(saved[k], after[k]) for k in saved):
        fail(f"{what} changed its buffers in eval mode.",
             "update running statistics and num_batches_tracked only when self.training.")
    if not _close(out, expected, x):
        if ref.track_running_stats:
            batch = F.batch_norm(x, None, None, ref.weight, ref.bias, training=True).detach()
            if _close_loose(out, batch):
                fail(f"{what} in eval mode normalised with the batch's statistics instead of "
                     "running_mean and running_var.",
                     "pass training=self.training to batch_norm.")
        fail(f"{what} in eval mode differs from nn.{type(ref).__name__}.\n  {_CASCADE_BN}",
             "in eval mode normalise with the running buffers.")


@check
def check_BatchNorm(BatchNorm) -> None:
    """Parameters and buffers as PyTorch's; matches nn.BatchNorm1d/2d/3d in train and eval."""
    _is_module_class(BatchNorm)
    layer = _make(BatchNorm, 5)
    _check_state(layer, 5, "BatchNorm(5)")
    cases = ((nn.BatchNorm1d, (8, 4)), (nn.BatchNorm1d, (5, 4, 6)), (nn.BatchNorm2d, (4, 4, 3, 3)),
             (nn.BatchNorm3d, (3, 4, 2, 3, 2)))
    for k, (ref_cls, shape) in enumerate(cases):
        momentum = 0.1 if k % 2 == 0 else 0.25
        ours, ref = _pair(BatchNorm, ref_cls, shape[1], 100 + k, momentum=momentum)
        xs = [_probe(shape, torch.float64, seed=110 + 4 * k + s) for s in range(3)]
        _compare_layers(ours, ref, xs, f"BatchNorm({shape[1]}, momentum={momentum}) on {_shape_text(xs[0])}")
    # follows self.training through a parent, not grad mode
    ours = _make(BatchNorm, 3)
    parent = nn.Sequential(ours).eval()
    x = _probe((6, 3), seed=130)
    with torch.no_grad():
        out = _run(parent, x, "nn.Sequential(BatchNorm(3)).eval()")
    if not torch.allclose(out.double(), F.batch_norm(x.double(), torch.zeros(3, dtype=torch.float64),
                                                     torch.ones(3, dtype=torch.float64), training=False),
                          rtol=1e-4, atol=1e-5):
        fail("After parent.eval() the BatchNorm inside still used batch statistics: the mode must "
             "come from self.training.", "pass training=self.training to batch_norm.")


@check
def check_BatchNorm_state_dict(BatchNorm) -> None:
    """state_dict from nn.BatchNorm2d into BatchNorm and back; the layers then agree."""
    _is_module_class(BatchNorm)
    ref = nn.BatchNorm2d(5, momentum=0.2)
    with torch.no_grad():
        w, b = _affine(5, 140)
        ref.weight.copy_(w)
        ref.bias.copy_(b)
        for s in range(3):
            ref(_probe((4, 5, 3, 3), seed=141 + s))
    ours = _make(BatchNorm, 5, momentum=0.2)
    ref_keys, our_keys = set(ref.state_dict()), set(ours.state_dict())
    if ref_keys != our_keys:
        missing, extra = sorted(ref_keys - our_keys), sorted(our_keys - ref_keys)
        plain = [k for k in missing if isinstance(getattr(ours, k, None), torch.Tensor)]
        if plain:
            fail(
                f"BatchNorm(5).state_dict() lacks {plain}: they are plain attributes, so saving "
                "and loading a model would lose the running statistics (and nn.BatchNorm2d's "
                "state cannot be loaded).",
                "register them with self.register_buffer(name, tensor) in __init__.",
            )
        fail(f"BatchNorm(5).state_dict() has the keys {sorted(our_keys)}; nn.BatchNorm2d(5) has "
             f"{sorted(ref_keys)} (missing {missing}, extra {extra}).",
             "use exactly the names weight, bias, running_mean, running_var, num_batches_tracked.")
    try:
        ours.load_state_dict(ref.state_dict())
    except Exception as exc:  # noqa: BLE001 - report the student's incompatibility
        fail(f"BatchNorm(5).load_state_dict(nn.BatchNorm2d(5).state_dict()) raised "
             f"{type(exc).__name__}: {exc}", "give the parameters and buffers PyTorch's names, shapes and dtypes.")
    x = _probe((3, 5, 4, 4), seed=150)
    ours.eval()
    ref.eval()
    out = _run(ours, x, "BatchNorm(5) in eval mode after loading nn.BatchNorm2d's state")
    if not _close(out, ref(x).detach().double(), x):
        fail("After loading nn.BatchNorm2d's state, BatchNorm in eval mode gives a different output.",
             "in eval mode normalise with running_mean and running_var, then weight and bias.")
    # and back: a trained BatchNorm into nn.BatchNorm2d
    ours = _make(BatchNorm, 5, momentum=0.3)
    with torch.no_grad():
        ours.weight.copy_(w)
        ours.bias.copy_(b)
    ours.train()
    for s in range(2):
        _run(ours, _probe((4, 5, 3, 3), seed=160 + s), "BatchNorm(5, momentum=0.3) in train mode")
    back = nn.BatchNorm2d(5, momentum=0.3)
    try:
        back.load_state_dict(ours.state_dict())
    except Exception as exc:  # noqa: BLE001
        fail(f"nn.BatchNorm2d(5).load_state_dict(BatchNorm(5).state_dict()) raised "
             f"{type(exc).__name__}: {exc}", "keep PyTorch's names, shapes and dtypes (num_batches_tracked: a long scalar).")
    if int(back.num_batches_tracked) != 2:
        fail(f"After 2 training steps num_batches_tracked is {int(back.num_batches_tracked)}; expected 2.",
             "self.num_batches_tracked.add_(1) on every training-mode forward pass.")
    ours.eval()
    back.eval()
    out = _run(ours, x, "BatchNorm(5) in eval mode")
    if not _close(out, back(x).detach().double(), x):
        fail("nn.BatchNorm2d loaded with your BatchNorm's state gives a different eval output.",
             "the running buffers must follow PyTorch's update rule (see the batch_norm tests).")


@check
def check_BatchNorm_options(BatchNorm) -> None:
    """momentum=None, affine=False, track_running_stats=False, a wrong channel count."""
    _is_module_class(BatchNorm)
    # momentum=None: cumulative moving average
    ours, ref = _pair(BatchNorm, nn.BatchNorm1d, 3, 170, momentum=None)
    xs = [_probe((6, 3), torch.float64, seed=171 + s) for s in range(4)]
    ours.train()
    ref.train()
    for s, x in enumerate(xs):
        _run(ours, x, f"BatchNorm(3, momentum=None) in train mode (step {s + 1})")
        ref(x)
    if not (torch.allclose(ours.running_mean.double(), ref.running_mean, rtol=1e-6, atol=1e-9)
            and torch.allclose(ours.running_var.double(), ref.running_var, rtol=1e-6, atol=1e-9)):
        as_default = _simulate_buffers(xs, 0.1, "correct")
        if torch.allclose(ours.running_mean.double(), as_default[0], rtol=1e-6, atol=1e-9):
            fail(
                "BatchNorm(3, momentum=None) updated its buffers as with momentum=0.1: "
                "momentum=None is ignored. It means a cumulative average: after t batches the "
                "running mean is the plain average of the t batch means.",
                "when self.momentum is None use the factor 1 / num_batches_tracked (after "
                "incrementing it).",
            )
        fail("BatchNorm(3, momentum=None): after 4 steps the running estimates differ from "
             "nn.BatchNorm1d(3, momentum=None) (a cumulative average of the batch statistics).\n  "
             + _CASCADE_BN,
             "when self.momentum is None use the factor 1 / num_batches_tracked.")
    # affine=False
    layer = _make(BatchNorm, 4, affine=False)
    if list(layer.parameters()):
        fail("BatchNorm(4, affine=False) has trainable parameters.",
             "register weight and bias as None when affine is False.")
    if getattr(layer, "weight", "missing") is not None or getattr(layer, "bias", "missing") is not None:
        fail("BatchNorm(4, affine=False).weight / .bias should be None (as in PyTorch).",
             "self.register_parameter(\"weight\", None) and the same for bias.")
    ours, ref = _pair(BatchNorm, nn.BatchNorm2d, 4, 180, affine=False)
    _compare_layers(ours, ref, [_probe((3, 4, 3, 3), torch.float64, seed=181 + s) for s in range(2)],
                    "BatchNorm(4, affine=False)")
    # track_running_stats=False: no buffers, batch statistics in both modes
    layer = _make(BatchNorm, 4, track_running_stats=False)
    if getattr(layer, "running_mean", "missing") is not None or getattr(layer, "running_var", "missing") is not None:
        fail("BatchNorm(4, track_running_stats=False).running_mean / running_var should be None: "
             "without running statistics there is nothing to keep.",
             "self.register_buffer(\"running_mean\", None) (and running_var, num_batches_tracked).")
    if set(layer.state_dict()) != {"weight", "bias"}:
        fail(f"BatchNorm(4, track_running_stats=False).state_dict() has {sorted(layer.state_dict())}; "
             "nn.BatchNorm2d has only weight and bias.", "register the three buffers as None.")
    ours, ref = _pair(BatchNorm, nn.BatchNorm2d, 4, 190, track_running_stats=False)
    for mode in ("train", "eval"):
        ours.train(mode == "train")
        ref.train(mode == "train")
        x = _probe((4, 4, 3, 3), torch.float64, seed=191)
        out = _run(ours, x, f"BatchNorm(4, track_running_stats=False) in {mode} mode")
        if not _close(out, ref(x).detach(), x):
            fail(f"BatchNorm(4, track_running_stats=False) in {mode} mode differs from PyTorch's: "
                 "without running statistics the batch's statistics are used in both modes.",
                 "call batch_norm with training=self.training or not self.track_running_stats.")
    # wrong number of channels
    layer = _make(BatchNorm, 4)
    expect_raises(layer, torch.randn(5, 3, generator=generator(195)),
                  mistake="BatchNorm(4) accepted an input with 3 channels.",
                  fix="raise ValueError when x.shape[1] != num_features, giving both numbers.")
    # eval does not count batches
    layer = _make(BatchNorm, 2).eval()
    _run(layer, _probe((4, 2), seed=196), "BatchNorm(2) in eval mode")
    if int(layer.num_batches_tracked) != 0:
        fail("BatchNorm(2) counted a batch in eval mode.",
             "increment num_batches_tracked only when self.training.")


# ---------------------------------------------------------------------------- identity_affine

def _check_identity(identity_affine, x, eps, what):
    kwargs = {} if eps is None else {"eps": eps}
    eps_v = 1e-5 if eps is None else eps
    given = x.clone()
    with _no_builtin("identity_affine"):
        result = call(identity_affine, given, _what=what, **kwargs)
    if not torch.equal(given, x):
        fail(f"{what} modified its input.", "compute new tensors from x.")
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and all(isinstance(t, torch.Tensor) for t in result)):
        fail(f"{what} returned {type(result).__name__}; expected a tuple (weight, bias) of two tensors.",
             "return weight, bias.")
    weight, bias = result
    c = x.shape[1]
    if tuple(weight.shape) != (c,) or tuple(bias.shape) != (c,):
        fail(f"{what} returned shapes {tuple(weight.shape)} and {tuple(bias.shape)}; expected ({c},) each.",
             "one gamma and one beta per channel: reduce over dimension 0 and every dimension after 1.")
    if weight.dtype != x.dtype or bias.dtype != x.dtype:
        fail(f"{what} returned {weight.dtype}/{bias.dtype} for a {x.dtype} input.", "keep the input's dtype.")
    xd = x.double()
    out = F.batch_norm(xd, None, None, weight.detach().double(), bias.detach().double(), training=True, eps=eps_v)
    rtol, atol = (1e-7, 1e-9) if x.dtype == torch.float64 else (1e-4, 1e-5)
    if torch.allclose(out, xd, rtol=rtol, atol=atol):
        return
    dims = _dims(xd)
    var, mean = torch.var_mean(xd, dim=dims, unbiased=False)
    w, b = weight.detach().double(), bias.detach().double()
    close = lambda a, e: torch.allclose(a, e, rtol=1e-3, atol=1e-6)  # noqa: E731
    if close(w, mean) and close(b, torch.sqrt(var + eps_v)):
        fail(f"{what}: weight and bias are swapped (weight = mean, bias = sqrt(var + eps)).",
             "gamma (weight) undoes the division: sqrt(var + eps); beta (bias) undoes the "
             "subtraction: mean.")
    if close(b, mean) and close(w, torch.sqrt(var)):
        fail(f"{what}: weight is sqrt(var), without eps: batch norm divided by sqrt(var + eps), "
             "so the output is not quite x (visibly so on a channel with a tiny variance).",
             "weight = torch.sqrt(var + eps).")
    if close(b, mean) and close(w, torch.sqrt(torch.var(xd, dim=dims, unbiased=True) + eps_v)):
        fail(f"{what}: weight uses the unbiased variance; batch norm normalises with the biased one.",
             "var = x.var(dim=..., unbiased=False).")
    if close(b, mean) and close(w, 1 / torch.sqrt(var + eps_v)):
        fail(f"{what}: weight is 1 / sqrt(var + eps); it must undo the division, not repeat it.",
             "weight = torch.sqrt(var + eps).")
    if not close(b, mean):
        fail(f"{what}: bias is not the per-channel batch mean.",
             "bias = x.mean(dim=[0, 2, 3, ...]) (dimension 0 and every dimension after 1).")
    fail(f"{what}: batch norm with the returned weight does not give x back.",
         "weight = sqrt(var + eps) with the biased variance per channel.")


@check
def check_identity_affine(identity_affine) -> None:
    """Training-mode batch norm with the returned (weight, bias) gives back a 2-d batch."""
    _check_identity(identity_affine, _probe((16, 5), seed=200), None, "identity_affine(x of shape (16, 5))")


@check
def check_identity_affine_ranks(identity_affine) -> None:
    """The same for 3-, 4- and 5-d inputs, in float64, with another eps."""
    for k, shape in enumerate(((6, 3, 4), (4, 3, 3, 3), (3, 2, 2, 3, 2))):
        x = _probe(shape, torch.float64, seed=210 + k)
        _check_identity(identity_affine, x, 1e-3, f"identity_affine(x of shape {shape}, eps=1e-3)")


# ---------------------------------------------------------------------------- LeNetBN

_LENET = {
    "conv1": (nn.Conv2d, (3, 6, 5)), "conv2": (nn.Conv2d, (6, 16, 5)),
    "fc1": (nn.Linear, (400, 120)), "fc2": (nn.Linear, (120, 84)), "fc3": (nn.Linear, (84, None)),
}
_BNS = {"bn1": (6, "conv1"), "bn2": (16, "conv2"), "bn3": (120, "fc1")}


def _bn_size(module):
    n = getattr(module, "num_features", None)
    if isinstance(n, int):
        return n
    w = getattr(module, "running_mean", None)
    if isinstance(w, torch.Tensor):
        return w.numel()
    w = getattr(module, "weight", None)
    return w.numel() if isinstance(w, torch.Tensor) else None


def _lenet_structure(net, classes):
    for name, (kind, sizes) in _LENET.items():
        m = getattr(net, name, None)
        if not isinstance(m, kind):
            fail(f"LeNetBN({classes}).{name} is {type(m).__name__}; expected nn.{kind.__name__}.",
                 "keep the seed's attribute names: conv1 bn1 conv2 bn2 fc1 bn3 fc2 fc3.")
        if kind is nn.Conv2d:
            got = (m.in_channels, m.out_channels, m.kernel_size[0])
        else:
            got = (m.in_features, m.out_features)
        want = tuple(classes if s is None else s for s in sizes[: len(got)])
        if got != want:
            fail(f"LeNetBN({classes}).{name} has sizes {got}; the seed's LeNet has {want}.",
                 "conv1 3→6 (5×5), conv2 6→16 (5×5), fc1 400→120, fc2 120→84, fc3 84→classes.")
    for name, (size, _) in _BNS.items():
        m = getattr(net, name, None)
        if not isinstance(m, nn.Module):
            fail(f"LeNetBN has no layer {name}.", "add bn1 (6 channels), bn2 (16) and bn3 (120).")
        if _bn_size(m) != size:
            fail(f"LeNetBN.{name} normalises {_bn_size(m)} features; expected {size}.",
                 f"{name} follows a layer with {size} outputs: BatchNorm{'1' if name == 'bn3' else '2'}d({size}).")


def _trace(net, x):
    """Run net(x) recording, for each named child, its inputs and outputs (cloned)."""
    records = {}
    order = []
    handles = []
    for name in list(_LENET) + list(_BNS):
        module = getattr(net, name)

        def hook(mod, inputs, output, name=name):
            order.append(name)
            records.setdefault(name, []).append((inputs[0].detach().clone(), output.detach().clone()))
        handles.append(module.register_forward_hook(hook))
    try:
        out = call(net, x, _what="LeNetBN(2)(x)")
    finally:
        for h in handles:
            h.remove()
    return out, records, order


@check
def check_LeNetBN(LeNetBN) -> None:
    """The seed's layers, each batch norm between its layer and the ReLU, every layer used."""
    if not (isinstance(LeNetBN, type) and issubclass(LeNetBN, nn.Module)):
        fail("LeNetBN is not a subclass of nn.Module.", "write `class LeNetBN(nn.Module):`.")
    torch.manual_seed(0)  # restored by @check
    net = call(LeNetBN, 2, _what="LeNetBN(2)")
    _lenet_structure(net, 2)
    net.train()
    x = torch.randn(8, 3, 32, 32, generator=generator(300))
    out, rec, order = _trace(net, x)
    for name in list(_LENET) + list(_BNS):
        if name not in rec:
            fail(f"LeNetBN.{name} is defined but never used in forward(): its parameters exist "
                 "but the network does not normalise there.", f"call self.{name} in forward().")
        if len(rec[name]) > 1:
            fail(f"LeNetBN.{name} is called {len(rec[name])} times in one forward pass.",
                 "call each layer once.")
    for bn, (_, layer) in _BNS.items():
        bn_in = rec[bn][0][0]
        layer_out = rec[layer][0][1]
        if bn_in.shape == layer_out.shape and torch.equal(bn_in, layer_out):
            continue
        if bn_in.shape == layer_out.shape and torch.allclose(bn_in, F.relu(layer_out)):
            fail(f"LeNetBN.{bn} comes after the ReLU: it receives relu({layer}(...)). The seed "
                 f"(and the original paper) put batch norm between {layer} and its ReLU, so that the "
                 "ReLU sees normalised, zero-centred inputs and keeps about half of them.",
                 f"out = F.relu(self.{bn}(self.{layer}(out))).")
        fail(f"LeNetBN.{bn} does not receive the output of {layer} directly.",
             f"out = F.relu(self.{bn}(self.{layer}(out))).")
    expected_inputs = {
        "conv2": F.max_pool2d(F.relu(rec["bn1"][0][1]), 2),
        "fc1": F.max_pool2d(F.relu(rec["bn2"][0][1]), 2).flatten(1),
        "fc2": F.relu(rec["bn3"][0][1]),
        "fc3": F.relu(rec["fc2"][0][1]),
    }
    for name, expected in expected_inputs.items():
        got = rec[name][0][0]
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-6):
            fail(f"The input of LeNetBN.{name} is not what the seed's forward pass gives it.",
                 "conv1 → bn1 → ReLU → max-pool 2 → conv2 → bn2 → ReLU → max-pool 2 → flatten → "
                 "fc1 → bn3 → ReLU → fc2 → ReLU → fc3.")
    if not isinstance(out, torch.Tensor) or not torch.allclose(out.detach(), rec["fc3"][0][1]):
        fail("LeNetBN's output is not the output of fc3.", "return self.fc3(out) (no softmax: "
             "cross_entropy takes logits).")


@check
def check_LeNetBN_modes(LeNetBN) -> None:
    """Output shape, running statistics updated in train(), samples independent in eval()."""
    torch.manual_seed(1)
    net = call(LeNetBN, 5, _what="LeNetBN(5)")
    x = torch.randn(6, 3, 32, 32, generator=generator(310))
    before = {n: getattr(net, n).running_mean.clone() for n in _BNS
              if isinstance(getattr(getattr(net, n), "running_mean", None), torch.Tensor)}
    net.train()
    out = call(net, x, _what="LeNetBN(5)(x) in train mode")
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (6, 5):
        fail(f"LeNetBN(5) returned {tuple(getattr(out, 'shape', ()))} for 6 images; expected (6, 5).",
             "fc3 has `classes` outputs.")
    for n, value in before.items():
        if torch.equal(getattr(net, n).running_mean, value):
            fail(f"LeNetBN.{n}.running_mean did not change after a training step.",
                 f"make sure {n} is used in forward() and tracks running statistics.")
    net.eval()
    with torch.no_grad():
        batch = net(x)
        alone = torch.cat([net(x[i:i + 1]) for i in range(len(x))])
    if not torch.allclose(batch, alone, atol=1e-5):
        fail("In eval mode LeNetBN's output for an image depends on the other images in the batch.",
             "the batch-norm layers must use their running statistics in eval mode.")
    net.train()
    with torch.no_grad():
        batch = net(x)
        other = net(torch.cat([x[:3], torch.randn(3, 3, 32, 32, generator=generator(311))]))
    if torch.allclose(batch[:3], other[:3]):
        fail("In train mode LeNetBN's output for an image does not depend on the batch: batch "
             "norm is not active.", "put the batch-norm layers in forward().")
