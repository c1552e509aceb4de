"""What the batch-norm checks share: the built-ins they forbid, probe inputs with one
near-constant channel, tolerances, and the outputs of the typical training-mode mistakes."""
from __future__ import annotations

import torch

from .._common import fail, forbid_builtins, generator


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


