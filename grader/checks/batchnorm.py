"""Visible checks for assignment 04-batchnorm: ``batch_norm``, ``BatchNorm``, ``identity_affine``,
``LeNetBN``, ``batch_norm_backward``, ``BatchNormFunction`` and the two questions on the run
(hidden checks: ``grader/hidden/batchnorm.py``).

The references are PyTorch's own ``torch.nn.functional.batch_norm`` and ``nn.BatchNorm1d/2d/3d``
(and autograd through them for the backward pass), run in float64 on probe inputs with different
means and scales per channel (one channel with a tiny variance, so that where ``eps`` sits
matters). When an answer differs, the check computes
the outputs of the typical mistakes on the same input and names the one that matches.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import _StudentError, call, check, fail, forbid_builtins, generator

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
            "batch norm normalises with the batch's statistics in both modes, as a layer with "
            "track_running_stats=False does (F.batch_norm itself refuses None buffers in "
            "evaluation; this exercise follows the layer, as its docstring says).",
            "use the batch's mean and biased variance whenever running_mean is None.",
        )



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



# ---------------------------------------------------------------------------- batch_norm_backward

# Autograd is the tool the exercise replaces: these names are recorded when student code calls
# torch.autograd.grad, Tensor.backward or Tensor.requires_grad_.
_AUTOGRAD = ("grad", "backward", "requires_grad_")
_HOW_BACKWARD = ("no autograd (requires_grad_, .backward(), torch.autograd.grad) and no built-in "
                 "normalisation: the formulas of section 2.5, from x.mean(0), the biased "
                 "variance and sums over dimension 0")
_RTOL_BW, _ATOL_BW = 1e-8, 1e-10    # float64 answers against autograd through F.batch_norm
_GRAD_NAMES = ("grad_x", "grad_weight", "grad_bias")


def _bn_variant(x, weight, bias, eps, variant):
    """Training-mode batch norm of a 2-d x (float64), correct or with one typical mistake
    built into the forward pass, so that autograd gives that mistake's gradients."""
    if variant == "correct":     # the reference: autograd through PyTorch's own batch norm
        return F.batch_norm(x, None, None, weight, bias, training=True, eps=eps), None
    dim = 1 if variant == "wrong_axis" else 0
    mean = x.mean(dim=dim, keepdim=True)
    var = x.var(dim=dim, unbiased=(variant == "unbiased"), keepdim=True)
    if variant in ("mean_only", "constants"):
        var = var.detach()
    if variant == "constants":
        mean = mean.detach()
    if variant == "eps_outside":
        xhat = (x - mean) / (torch.sqrt(var) + eps)
    else:
        xhat = (x - mean) / torch.sqrt(var + eps)
    if variant == "no_weight_in_grad_x":
        # weight scales the output, but its factor is missing from the gradient wrt x:
        # grad_x is that of weight = 1; grad_weight and grad_bias are right
        return xhat * weight + bias, xhat
    return xhat * weight + bias, None


def _backward_candidates(grad_out, x, weight, eps) -> dict:
    """float64 (grad_x, grad_weight, grad_bias) of the correct backward and of each mistake."""
    out = {}
    g = grad_out.detach().to(torch.float64)
    for variant in ("correct", "mean_only", "constants", "eps_outside", "unbiased", "wrong_axis",
                    "no_weight_in_grad_x"):
        xs = x.detach().to(torch.float64).clone().requires_grad_(True)
        ws = weight.detach().to(torch.float64).clone().requires_grad_(True)
        bs = torch.zeros_like(ws, requires_grad=True)
        y, y_no_weight = _bn_variant(xs, ws, bs, eps, variant)
        gw, gb = torch.autograd.grad(y, (ws, bs), g, retain_graph=True)
        (gx,) = torch.autograd.grad(y if y_no_weight is None else y_no_weight, (xs,), g)
        out[variant] = (gx, gw, gb)
    gx, gw, gb = out["correct"]
    n = x.shape[0]
    out["averaged"] = (gx, gw / n, gb / n)
    return out


_BACKWARD_MISTAKES = {
    "mean_only": (
        "grad_x is the gradient of batch norm with the variance treated as a constant: only the "
        "mean's path is back-propagated, grad_x = (dxhat - mean(dxhat)) / sqrt(var + eps). But "
        "var depends on every x_i too.",
        "add the variance's path: dvar = sum(dxhat * (x - mean)) * -0.5 * (var + eps)**-1.5 and "
        "grad_x gets dvar * 2 * (x - mean) / N; compactly, grad_x = (dxhat - mean(dxhat) - "
        "xhat * mean(dxhat * xhat)) / sqrt(var + eps), means over dimension 0.",
    ),
    "constants": (
        "grad_x is the gradient of batch norm with the mean and the variance both treated as "
        "constants, grad_x = weight * grad_out / sqrt(var + eps): that is the gradient in eval() "
        "mode, with running statistics. In training mode both statistics are computed from x, "
        "so x reaches the output through them too.",
        "back-propagate through the mean and the variance as well (section 2.5's graph): "
        "grad_x = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps).",
    ),
    "averaged": (
        "grad_weight and grad_bias are averaged over the batch (divided by N): every sample's "
        "output uses the same weight and bias, so their gradients are the SUM of the "
        "contributions of the N samples.",
        "grad_weight = (grad_out * xhat).sum(dim=0), grad_bias = grad_out.sum(dim=0).",
    ),
    "no_weight_in_grad_x": (
        "grad_x leaves out weight (gamma): y = weight * xhat + bias, so the gradient reaching "
        "xhat is dxhat = weight * grad_out, not grad_out.",
        "start from dxhat = grad_out * weight (weight broadcast over the batch).",
    ),
    "eps_outside": (
        "The gradients are those of (x - mean) / (sqrt(var) + eps): eps is outside the square "
        "root (it shows on the probe's channel whose variance is below eps).",
        "use 1 / torch.sqrt(var + eps) everywhere: eps goes inside the square root.",
    ),
    "unbiased": (
        "The gradients are those of batch norm with the unbiased variance (dividing by N - 1): "
        "batch norm normalises with the biased variance (dividing by N).",
        "var = ((x - mean) ** 2).mean(dim=0), and N (not N - 1) in the formula.",
    ),
    "wrong_axis": (
        "The statistics are computed over the features of each sample (dimension 1): that is "
        "the gradient of layer normalisation. Batch norm computes one mean and variance per "
        "feature over the batch (dimension 0).",
        "reduce over dimension 0: mean = x.mean(dim=0), sums over dim=0.",
    ),
}


def _backward_probe(n, c, seed, dtype=torch.float64):
    x = _probe((n, c), dtype, seed=seed)
    g = generator(seed + 1)
    weight = (0.5 + 1.5 * torch.rand(c, generator=g, dtype=torch.float64)).to(dtype)
    grad_out = torch.randn(n, c, generator=g, dtype=torch.float64).to(dtype)
    return grad_out, x, weight


def _grad_close(a, b, rtol=_RTOL_BW, atol=_ATOL_BW):
    return bool(torch.allclose(a.detach().to(torch.float64), b, rtol=rtol, atol=atol))


def _loose(a, b):
    return bool(torch.allclose(a.detach().to(torch.float64), b, rtol=1e-5, atol=1e-7))


def _diagnose_backward(result, grad_out, x, weight, eps, what, rtol=_RTOL_BW, atol=_ATOL_BW):
    """Fail naming the mistake unless ``result`` is (grad_x, grad_weight, grad_bias)."""
    n, c = x.shape
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        fail(f"{what} returned {type(result).__name__}"
             f"{' of length ' + str(len(result)) if isinstance(result, (tuple, list)) else ''}; "
             "expected a tuple (grad_x, grad_weight, grad_bias).",
             "return grad_x, grad_weight, grad_bias.")
    shapes = ((n, c), (c,), (c,))
    for name, t, shape in zip(_GRAD_NAMES, result, shapes):
        if not isinstance(t, torch.Tensor):
            fail(f"{what}: {name} is {type(t).__name__}, not a tensor.", f"return {name} as a tensor.")
        if tuple(t.shape) != shape:
            hint = ("sum over dimension 0 (the batch): one value per feature"
                    if name != "grad_x" else "grad_x has the shape of x")
            fail(f"{what}: {name} has shape {tuple(t.shape)}; expected {shape}.", hint + ".")
        if t.dtype != x.dtype:
            fail(f"{what}: {name} is {t.dtype} for a {x.dtype} input.", "keep the input's dtype.")
    cands = _backward_candidates(grad_out, x, weight, eps)
    right = [_grad_close(t, e, rtol, atol) for t, e in zip(result, cands["correct"])]
    if all(right):
        return
    for name, (mistake, fix) in _BACKWARD_MISTAKES.items():
        cand = cands[name]
        differs = [not _loose(cand[i], cands["correct"][i]) for i in range(3)]
        if not any(differs):
            continue
        # the candidate must explain every wrong output it changes, and leave nothing unexplained
        if all(_loose(result[i], cand[i]) for i in range(3) if differs[i] or not right[i]):
            fail(f"{what}: {mistake}", fix)
    wrong = [name for name, ok in zip(_GRAD_NAMES, right) if not ok]
    gaps = ", ".join(f"{name} by {(t.detach().double() - e).abs().max().item():.3g}"
                     for name, t, e, ok in zip(_GRAD_NAMES, result, cands["correct"], right) if not ok)
    fail(f"{what}: {' and '.join(wrong)} differ{'s' if len(wrong) == 1 else ''} from autograd "
         "through torch.nn.functional.batch_norm (training mode).",
         "follow section 2.5: dxhat = grad_out * weight; grad_x = (dxhat - mean(dxhat) - xhat * "
         "mean(dxhat * xhat)) / sqrt(var + eps); grad_weight = sum(grad_out * xhat); grad_bias = "
         "sum(grad_out), means and sums over dimension 0.",
         detail=f"(largest differences: {gaps})")


def _call_backward(batch_norm_backward, grad_out, x, weight, what, **kwargs):
    saved = [t.clone() for t in (grad_out, x, weight)]
    given = [t.clone() for t in (grad_out, x, weight)]
    with forbid_builtins("batch_norm_backward", _BUILTINS, _HOW_BACKWARD), forbid_builtins(
            "batch_norm_backward uses autograd, the tool this exercise replaces: it", _AUTOGRAD,
            _HOW_BACKWARD):
        result = call(batch_norm_backward, *given, _what=what, **kwargs)
    for name, before, after in zip(("grad_out", "x", "weight"), saved, given):
        if not torch.equal(before, after):
            fail(f"{what} modified {name} in place. The caller (autograd, or the layer below) "
                 f"still needs {name}: a backward pass reads its inputs and builds new tensors.",
                 f"never write into {name} (no {name} *= ..., {name}.mul_(...), "
                 f"{name}[...] = ...): compute new tensors, e.g. dxhat = grad_out * weight.")
    return result


@check
def check_batch_norm_backward(batch_norm_backward) -> None:
    """(grad_x, grad_weight, grad_bias) against autograd through F.batch_norm, float64, 1e-8."""
    for k, (n, c, eps) in enumerate(((8, 4, 1e-5), (5, 3, 1e-5), (16, 6, 0.1))):
        grad_out, x, weight = _backward_probe(n, c, seed=400 + 3 * k)
        kwargs = {} if eps == 1e-5 else {"eps": eps}
        what = f"batch_norm_backward(grad_out, x of shape {(n, c)}, weight{', eps=0.1' if kwargs else ''})"
        result = _call_backward(batch_norm_backward, grad_out, x, weight, what, **kwargs)
        _diagnose_backward(result, grad_out, x, weight, eps, what)


# ---------------------------------------------------------------------------- BatchNormFunction

_INPUT_NAMES = ("x", "weight", "bias", "eps")
_CASCADE_FN = ("(A backward that calls your batch_norm_backward inherits its mistakes: if the "
               "batch_norm_backward tests fail too, fix it first.)")


def _is_function_class(BatchNormFunction) -> None:
    if not (isinstance(BatchNormFunction, type) and issubclass(BatchNormFunction, torch.autograd.Function)):
        fail("BatchNormFunction is not a subclass of torch.autograd.Function.",
             "write `class BatchNormFunction(torch.autograd.Function):` with two @staticmethods, "
             "forward(ctx, x, weight, bias, eps) and backward(ctx, grad_out).")


def _backward_named(out, grad_out):
    """out.backward(grad_out), with autograd's complaint about the number of gradients in words."""
    import re

    try:
        out.backward(grad_out)
    except RuntimeError as exc:
        m = re.search(r"incorrect number of gradients \(expected (\d+), got (\d+)\)", str(exc))
        if not m:
            raise
        raise _StudentError(
            f"BatchNormFunction.backward returned {m.group(2)} gradients; forward takes "
            f"{m.group(1)} inputs (x, weight, bias, eps), and backward must return one value per "
            "input, in the same order.\n"
            "  How to fix: return grad_x, grad_weight, grad_bias, None (None for eps).") from None


def _function_grads(BatchNormFunction, x, weight, bias, eps, grad_out, what, needs=(True, True, True)):
    """Run apply and backward (through autograd, as a network would) and return the output and
    the gradients of x, weight and bias (None where not requested or not returned)."""
    xs, ws, bs = (t.clone().requires_grad_(r) for t, r in zip((x, weight, bias), needs))
    with _no_builtin("BatchNormFunction"):
        out = call(BatchNormFunction.apply, xs, ws, bs, eps, _what=what)
        if not isinstance(out, torch.Tensor):
            fail(f"{what} returned {type(out).__name__}, not a tensor.", "return the output tensor from forward.")
        if not out.requires_grad:
            fail(f"{what} returned an output that does not require grad although x, weight and "
                 "bias do: autograd cannot reach your backward.",
                 "return a tensor computed in forward (do not .detach() it); autograd connects it "
                 "to backward by itself.")
        call(_backward_named, out, grad_out.clone(), _what=f"{what}.backward(grad_out)")
    return out, (xs.grad, ws.grad, bs.grad)


def _gradcheck_failure(BatchNormFunction, x, weight, bias, eps, what):
    """Run torch.autograd.gradcheck; on failure return which input's gradient is wrong, in words."""
    import re

    inputs = tuple(t.detach().clone().requires_grad_(True) for t in (x, weight, bias))
    try:
        with _no_builtin("BatchNormFunction"):
            ok = torch.autograd.gradcheck(lambda a, b, c: BatchNormFunction.apply(a, b, c, eps),
                                          inputs, eps=1e-6, atol=1e-7, rtol=1e-5, raise_exception=True)
    except Exception as exc:  # noqa: BLE001 - gradcheck's message is translated, never shown
        text = str(exc)
        m = re.search(r"with respect to input (\d+)", text) or re.search(r"at index (\d+)", text)
        if m and int(m.group(1)) < 3:
            name = _INPUT_NAMES[int(m.group(1))]
            if "numerical" in text or "Jacobian mismatch" in text:
                return (f"torch.autograd.gradcheck: the gradient your backward returns for {name} "
                        f"differs from the numerical gradient of your forward (finite differences "
                        f"of {what} with respect to {name}).")
            return (f"torch.autograd.gradcheck: your backward's gradient for {name} is not a "
                    f"tensor of {name}'s shape and dtype.")
        if "incorrect number of gradients" in text:
            return ("torch.autograd.gradcheck: backward returns another number of gradients than "
                    "forward has inputs (x, weight, bias, eps): one value per input, in order.")
        if "not reentrant" in text:
            return ("torch.autograd.gradcheck: backward gives different results on two runs with "
                    "the same input (does it depend on state kept between calls?).")
        return f"torch.autograd.gradcheck failed ({type(exc).__name__}) on {what}."
    return None if ok else f"torch.autograd.gradcheck failed on {what}."


@check
def check_BatchNormFunction(BatchNormFunction) -> None:
    """forward is training-mode batch norm; backward's gradients match autograd's; gradcheck passes."""
    _is_function_class(BatchNormFunction)
    n, c, eps = 6, 4, 1e-5
    x = _probe((n, c), torch.float64, seed=500)
    weight, bias = _affine(c, 501, torch.float64)
    grad_out = torch.randn(n, c, generator=generator(502), dtype=torch.float64)
    what = "BatchNormFunction.apply(x of shape (6, 4), weight, bias, 1e-5)"
    out, grads = _function_grads(BatchNormFunction, x, weight, bias, eps, grad_out, what)
    _diagnose_train_output(out, x, weight, bias, eps, f"{what} (forward)")
    for name, grad in zip(("x", "weight", "bias"), grads):
        if grad is None:
            fail(f"{what}: after backward, {name}.grad is None although {name} requires grad: "
                 f"backward returned None for {name}. None means \"no gradient\", which is only "
                 "right for an input that does not need one (like eps).",
                 "return a gradient for every tensor input that needs one: "
                 "return grad_x, grad_weight, grad_bias, None (None only for eps); "
                 "ctx.needs_input_grad[i] says which are needed.")
    correct = _backward_candidates(grad_out, x, weight, eps)["correct"]
    if (not _loose(grads[1], correct[1]) and grads[1].shape == correct[2].shape
            and _loose(grads[1], correct[2]) and _loose(grads[2], correct[1])):
        fail(f"{what}: weight.grad holds the gradient of bias and bias.grad that of weight: "
             "backward returns its gradients in another order than forward takes its inputs.",
             "return grad_x, grad_weight, grad_bias, None: the order of forward(ctx, x, weight, "
             "bias, eps).")
    try:
        _diagnose_backward(grads, grad_out, x, weight, eps, f"{what}, its backward")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n  {_CASCADE_FN}") from None
    problem = _gradcheck_failure(BatchNormFunction, _probe((5, 3), torch.float64, seed=503),
                                 *_affine(3, 504, torch.float64), eps, "BatchNormFunction.apply")
    if problem:
        fail(problem + "\n  " + _CASCADE_FN,
             "compare your backward with batch_norm_backward above, input by input; "
             "backward must return one gradient per input of forward, in the same order.")


# ---------------------------------------------------------------------------- questions on the run

def _number(value, name):
    if value is None:
        return None
    if isinstance(value, bool):
        fail(f"{name} is {value!r}, not a learning rate.", f"assign a number, e.g. {name} = 0.5.")
    try:
        return float(value)
    except (TypeError, ValueError):
        fail(f"{name} is {value!r}, not a number.", f"assign a number from the table, e.g. {name} = 0.5.")


def _largest(sweep, setup):
    ok = [isinstance(v, (int, float)) and v == v and abs(v) != float("inf") and v < sweep["threshold"]
          for v in sweep["final_loss"][sweep["setups"].index(setup)]]
    good = [lr for lr, t in zip(sweep["lrs"], ok) if t]
    return max(good) if good else None


@check
def check_largest_lr_bn(largest_lr_bn, lr_sweep) -> None:
    """The largest learning rate at which the BN network trained, recomputed from the sweep run."""
    value = _number(largest_lr_bn, "largest_lr_bn")
    expected = _largest(lr_sweep, "BN")
    if expected is None:
        if value is None:
            return
        fail(f"In your sweep the BN network never got below the threshold, so no learning rate "
             f"trained it; largest_lr_bn is {value:g}.", "assign None.")
    if value is not None and abs(value - expected) <= 1e-9 * expected:
        return
    got = "None" if value is None else f"{value:g}"
    others = {name: _largest(lr_sweep, name) for name in lr_sweep["setups"] if name != "BN"}
    for name, lr in others.items():
        if value is not None and lr is not None and abs(value - lr) <= 1e-9 * lr:
            fail(f"largest_lr_bn = {got} is the largest learning rate that trained the network "
                 f"\"{name}\", not \"BN\" (PyTorch's initial weights with batch norm).",
                 "read the row \"BN\" of the table.")
    row = lr_sweep["final_loss"][lr_sweep["setups"].index("BN")]
    finite = [(v, lr) for v, lr in zip(row, lr_sweep["lrs"]) if v == v and abs(v) != float("inf")]
    if finite and value is not None and abs(value - min(finite)[1]) <= 1e-9 * value:
        fail(f"largest_lr_bn = {got} is the learning rate with the lowest final loss; the question "
             "asks for the largest learning rate that still trained (final loss below the "
             "threshold).", "take the largest learning rate of the row \"BN\" marked as trained.")
    above = [lr for lr in lr_sweep["lrs"] if lr > expected]
    if above and value is not None and abs(value - above[0]) <= 1e-9 * value:
        fail(f"largest_lr_bn = {got} is the first learning rate at which the BN network did NOT "
             "train (its final loss is above the threshold).",
             "take the learning rate just below it.")
    fail(f"largest_lr_bn = {got} is not the largest learning rate at which the BN network trained "
         "in your sweep.", "read the row \"BN\" of the table printed by the sweep cell "
         "(the largest learning rate marked as trained).")


def _first_moved(probe, mode="train", tol=1e-6):
    return next((name for name, change in probe[mode].items() if change > tol), None)


@check
def check_first_layer_moved(first_layer_moved, batch_probe) -> None:
    """The first layer whose output for image 0 changed with the rest of the batch, from the run."""
    layers = list(batch_probe["train"])
    if not isinstance(first_layer_moved, str) or first_layer_moved not in layers:
        fail(f"first_layer_moved is {first_layer_moved!r}; expected one of the layer names "
             f"{layers} (a string).", "assign the attribute name, e.g. first_layer_moved = \"fc2\".")
    expected = _first_moved(batch_probe)
    if first_layer_moved == expected:
        return
    change = batch_probe["train"][first_layer_moved]
    if change <= 1e-6:
        fail(f"In your run the output of {first_layer_moved} for image 0 did not change (largest "
             f"difference {change:.2g}) when the other images were replaced.",
             f"{first_layer_moved} computes each image on its own; look for the first layer whose "
             "difference is not 0 in train mode.")
    fail(f"The output of {first_layer_moved} changed, but it is not the first: "
         f"{layers[:layers.index(first_layer_moved)]} run before it, and one of them already "
         "changed, and every later layer inherits the change.",
         "find the earliest layer in train mode whose difference is not 0.")
