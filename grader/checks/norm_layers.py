"""Visible checks for assignment 05-norm-layers: ``layer_norm``, ``instance_norm``, ``group_norm``,
``equivalent_norm``, ``layer_norm_backward`` and the format of the two questions (the hidden
checks and the questions' answers are in ``grader.hidden.norm_layers``).

The references are PyTorch's own ``torch.nn.functional`` operations, evaluated in float64 on
probe inputs whose samples and channels have different means and spreads (so that BatchNorm,
LayerNorm, InstanceNorm and GroupNorm statistics all differ). When an answer is wrong, the
check computes the outputs of the typical mistakes (the wrong set of dimensions, the unbiased
variance, eps outside the square root, interleaved groups, gamma/beta broadcast against the
last dimension ...) and names the one the answer matches. Whether an answer mixes samples is
tested as a property: changing the other samples of the batch must not change sample 0.
``layer_norm_backward`` is compared with autograd through ``F.layer_norm`` in float64, and a wrong
answer is matched against the gradients of the typical slips of the derivation.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ._common import call, check, expect_raises, fail, forbid_builtins, generator

_BUILTINS = (
    "layer_norm", "native_layer_norm", "instance_norm", "group_norm", "native_group_norm",
    "batch_norm", "native_batch_norm", "_native_batch_norm_legit", "rms_norm",
)
_HOW = ("x.mean(dims, keepdim=True) and x.var(dims, unbiased=False, keepdim=True), then "
        "(x - mean) / torch.sqrt(var + eps)")


def _no_builtin(exercise: str):
    return forbid_builtins(exercise, _BUILTINS, _HOW)


# --------------------------------------------------------------------------------------------
# probes and the formulas of the typical mistakes

def _probe(shape: Sequence[int], seed: int, dtype=torch.float64) -> torch.Tensor:
    """Gaussian values whose mean and spread differ per sample and per channel (dims 0, 1)."""
    g = generator(seed)
    shape = tuple(shape)
    stat_shape = shape[:2] + (1,) * (len(shape) - 2)
    spread = 0.5 + torch.rand(stat_shape, generator=g, dtype=torch.float64)
    offset = 2.0 * torch.randn(stat_shape, generator=g, dtype=torch.float64)
    x = offset + spread * torch.randn(shape, generator=g, dtype=torch.float64)
    return x.to(dtype)


def _norm(x: torch.Tensor, dims, eps: float, *, unbiased: bool = False,
          eps_outside: bool = False) -> torch.Tensor:
    dims = tuple(dims)
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=unbiased, keepdim=True)
    if eps_outside:
        return (x - mean) / (var.sqrt() + eps)
    return (x - mean) / torch.sqrt(var + eps)


def _per_channel(t: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t.view((1, -1) + (1,) * (x.dim() - 2))


def _affine(y: torch.Tensor, w, b) -> torch.Tensor:
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def _group_stats(x, groups, eps, *, interleaved=False, **kw):
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    if interleaved:  # channel c in group c % G
        xg = x.reshape((n, c // groups, groups) + spatial)
        dims = (1,) + tuple(range(3, xg.dim()))
    else:
        xg = x.reshape((n, groups, c // groups) + spatial)
        dims = tuple(range(2, xg.dim()))
    return _norm(xg, dims, eps, **kw).reshape(x.shape)


def _close(a: torch.Tensor, b: torch.Tensor, dtype) -> bool:
    if a.shape != b.shape:
        return False
    rtol, atol = (1e-4, 1e-4) if dtype == torch.float32 else (1e-6, 1e-7)
    return bool(torch.allclose(a.detach().double(), b.detach().double(), rtol=rtol, atol=atol))


def _safe(make: Callable[[], torch.Tensor]):
    try:
        return make()
    except Exception:  # a mistake's formula that does not apply to this shape
        return None


def _run(fn, x: torch.Tensor, exercise: str, what: str, *args, _guard=None,
         _in_place: str = "compute a new tensor ((x - mean) / ...) instead of x.sub_(...) or x -= ...",
         _dtype: str = "keep the input's dtype (no .double() or .float() on the result).", **kwargs):
    """Call the student's ``fn`` on a copy of ``x`` with the built-ins forbidden (``_guard``,
    default: this module's), and fail if it modified its input or returned something of the
    wrong type, shape or dtype (``_in_place`` and ``_dtype``: the fixes those failures name)."""
    given = x.clone()
    with _guard or _no_builtin(exercise):
        out = call(fn, given, *args, _what=what, **kwargs)
    if not torch.equal(given, x):
        fail(f"{what} modified its input x in place.", _in_place)
    if not isinstance(out, torch.Tensor):
        fail(f"{what} returned {type(out).__name__}, not a tensor.", "return a torch.Tensor.")
    if out.shape != x.shape:
        fail(f"{what} returned shape {tuple(out.shape)} for an input of shape {tuple(x.shape)}.",
             "normalisation keeps the input's shape: reduce with keepdim=True and broadcast back.")
    if out.dtype != x.dtype:
        fail(f"{what} returned dtype {out.dtype} for a {x.dtype} input.", _dtype)
    return out


def _diagnose(out, x, ref, candidates, what, exercise, call_again) -> None:
    """Pass if ``out`` matches ``ref``; otherwise name the first mistake whose output matches,
    or whether samples were mixed, or give the largest difference."""
    if _close(out, ref, x.dtype):
        return
    for mistake, fix, make in candidates:
        cand = _safe(make)
        if cand is not None and _close(out, cand, x.dtype):
            fail(f"{what}: {mistake}", fix)
    # statistics mixing samples: change every sample but the first, sample 0 must not move
    other = x.clone()
    other[1:] = _probe(x[1:].shape, seed=999, dtype=x.dtype)
    out2 = call_again(other)
    if not _close(out[:1], out2[:1], x.dtype):
        fail(
            f"{what}: the statistics mix samples. Changing the other samples of the batch "
            "changed the output of sample 0, so the mean and variance were taken across the "
            "batch dimension (as BatchNorm does).",
            f"{exercise} normalises each sample on its own: never reduce over dimension 0 "
            "(and check that a reshape keeps the batch dimension first: x.reshape(N, ...)).",
        )
    gap = (out.detach().double() - ref).abs()
    worst = gap[torch.isfinite(gap)].max().item() if torch.isfinite(gap).any() else float("inf")
    fail(
        f"{what} differs from torch.nn.functional.{exercise} (largest difference {worst:.3g}), "
        "and not in a way the check recognises.",
        f"normalise with the biased variance, (x - mean) / sqrt(var + eps), over the dimensions "
        f"{exercise} uses, then apply weight and bias. Compare with "
        f"torch.nn.functional.{exercise} on a small input in a new cell.",
    )


_UNBIASED = ("the variance is the unbiased one (dividing by n - 1).",
             "normalisation uses the biased variance: x.var(dims, unbiased=False) (or "
             "correction=0), i.e. the mean of (x - mean)**2. Only BatchNorm's running_var "
             "stores the unbiased one.")
_EPS_OUTSIDE = ("eps is added outside the square root: (x - mean) / (std + eps).",
                "PyTorch adds eps to the variance: (x - mean) / torch.sqrt(var + eps).")
_NO_AFFINE = ("weight and bias were ignored.",
              "multiply the normalised tensor by weight and add bias when they are given.")


def _ref64(op, x, *args, **kwargs):
    kwargs = {k: (v.double() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    return op(x.double(), *args, **kwargs)


# --------------------------------------------------------------------------------------------
# layer_norm

def _ln_candidates(x, ns, w, b, eps):
    k = len(ns)
    trailing = tuple(range(x.dim() - k, x.dim()))
    w64 = None if w is None else w.double()
    b64 = None if b is None else b.double()
    x64 = x.double()
    return [
        (f"it normalises over the last dimension only, whatever normalized_shape={list(ns)} says.",
         "reduce over all the trailing dimensions that normalized_shape names: "
         "dims = tuple(range(-len(normalized_shape), 0)).",
         lambda: _affine(_norm(x64, (-1,), eps), w64, b64)),
        (f"it normalises over the leading dimensions {tuple(range(1, 1 + k))} instead of the "
         f"trailing ones {trailing}.",
         "normalized_shape names the *last* len(normalized_shape) dimensions of the input: "
         "dims = tuple(range(-len(normalized_shape), 0)).",
         lambda: _affine(_norm(x64, range(1, 1 + k), eps), w64, b64)),
        (f"it normalises over the leading dimensions {tuple(range(k))}, batch included, instead "
         f"of the trailing ones {trailing} (this also mixes samples).",
         "normalized_shape names the *last* len(normalized_shape) dimensions of the input: "
         "dims = tuple(range(-len(normalized_shape), 0)).",
         lambda: _affine(_norm(x64, range(k), eps), w64, b64)),
        (f"it normalises over every dimension but the batch, whatever normalized_shape="
         f"{list(ns)} says.",
         "reduce over the trailing dimensions that normalized_shape names, no more: "
         "dims = tuple(range(-len(normalized_shape), 0)).",
         lambda: _affine(_norm(x64, range(1, x.dim()), eps), w64, b64)),
        (_UNBIASED[0], _UNBIASED[1], lambda: _affine(_norm(x64, trailing, eps, unbiased=True), w64, b64)),
        (_EPS_OUTSIDE[0], _EPS_OUTSIDE[1],
         lambda: _affine(_norm(x64, trailing, eps, eps_outside=True), w64, b64)),
        (_NO_AFFINE[0], _NO_AFFINE[1], lambda: _norm(x64, trailing, eps)),
    ]


def _optional_args(w, b, eps):
    """The keyword arguments a case passes (only those given) and the eps in force."""
    given = {"weight": w, "bias": b, "eps": eps}
    return {k: v for k, v in given.items() if v is not None}, (1e-5 if eps is None else eps)


def _describe_args(w, eps) -> str:
    return (", weight, bias" if w is not None else "") + (f", eps={eps}" if eps is not None else "")


def _ln_case(layer_norm, x, ns, w=None, b=None, eps=None):
    kwargs, eps_v = _optional_args(w, b, eps)
    what = f"layer_norm(x of shape {list(x.shape)}, normalized_shape={ns!r}" + \
        _describe_args(w, eps) + ")"
    out = _run(layer_norm, x, "layer_norm", what, ns, **kwargs)
    shape = [ns] if isinstance(ns, int) else list(ns)
    ref = _ref64(F.layer_norm, x, shape, weight=w, bias=b, eps=eps_v)

    def again(other):
        with _no_builtin("layer_norm"):
            return call(layer_norm, other, ns, _what=what, **kwargs)

    _diagnose(out, x, ref, _ln_candidates(x, shape, w, b, eps_v), what, "layer_norm", again)
    return out


@check
def check_layer_norm(layer_norm) -> None:
    """Values against F.layer_norm for the seed's input [8, 6, 3, 4] and normalized_shape
    [6, 3, 4], [3, 4] and 4 (list, tuple, int), with and without weight/bias, float32/64."""
    x = _probe((8, 6, 3, 4), seed=1)
    _ln_case(layer_norm, x, [6, 3, 4])
    g = generator(2)
    w = 1 + 0.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    b = torch.randn(3, 4, generator=g, dtype=torch.float64)
    _ln_case(layer_norm, x, (3, 4), w, b)
    x32 = _probe((8, 6, 3, 4), seed=3, dtype=torch.float32)
    w32 = 1 + 0.5 * torch.randn(4, generator=g)
    b32 = torch.randn(4, generator=g)
    _ln_case(layer_norm, x32, 4, w32, b32, eps=0.5)
    _ln_case(layer_norm, x, [6, 3, 4], eps=0.5)


@check
def check_layer_norm_shape(layer_norm) -> None:
    """A normalized_shape that is not the input's trailing dimensions raises ValueError."""
    x = _probe((8, 6, 3, 4), seed=4)
    for ns in ([6, 3], [5], [6, 4], [2, 8, 6, 3, 4]):
        expect_raises(
            layer_norm, x, ns,
            mistake=(f"layer_norm accepted normalized_shape={ns} for an input of shape "
                     f"{list(x.shape)}: normalized_shape is not validated. It must be the end of "
                     "the input's shape: [6, 3, 4], [3, 4] or [4] here (or the whole shape), "
                     "never [6, 3], the seed's example of a shape that is not the last dimensions."),
            fix="compare list(x.shape[-len(normalized_shape):]) with list(normalized_shape) "
                "(and len(normalized_shape) with x.dim()) and raise ValueError saying both.",
        )


# --------------------------------------------------------------------------------------------
# instance_norm

def _in_candidates(x, w, b, eps):
    x64 = x.double()
    spatial = tuple(range(2, x.dim()))
    w64, b64 = _per_channel(None if w is None else w.double(), x), _per_channel(None if b is None else b.double(), x)
    wl = None if w is None else w.double()
    bl = None if b is None else b.double()
    return [
        ("the statistics are taken over the batch and the spatial dimensions, per channel: "
         "that is BatchNorm, not InstanceNorm.",
         "InstanceNorm takes one mean and variance per sample *and* per channel: reduce over "
         "the spatial dimensions only, dims = tuple(range(2, x.dim())).",
         lambda: _affine(_norm(x64, (0,) + spatial, eps), w64, b64)),
        ("the statistics are taken over the channels too, per sample: that is LayerNorm over "
         "(C, *spatial), not InstanceNorm.",
         "keep the channels apart: reduce over the spatial dimensions only, "
         "dims = tuple(range(2, x.dim())).",
         lambda: _affine(_norm(x64, tuple(range(1, x.dim())), eps), w64, b64)),
        ("the statistics are taken over dimensions (2, 3) only, as if every input were 4-dim.",
         "InstanceNorm accepts (N, C, L), (N, C, H, W) and (N, C, D, H, W): reduce over "
         "tuple(range(2, x.dim())).",
         lambda: _affine(_norm(x64, (2, 3), eps), w64, b64) if x.dim() != 4 else None),
        (_UNBIASED[0], _UNBIASED[1], lambda: _affine(_norm(x64, spatial, eps, unbiased=True), w64, b64)),
        (_EPS_OUTSIDE[0], _EPS_OUTSIDE[1],
         lambda: _affine(_norm(x64, spatial, eps, eps_outside=True), w64, b64)),
        ("weight and bias of shape (C,) were broadcast against the last dimension of the input "
         "(its width), not against the channels.",
         "reshape them to (1, C, 1, ..., 1) before multiplying: "
         "weight.view(1, -1, *([1] * (x.dim() - 2))).",
         lambda: _affine(_norm(x64, spatial, eps), wl, bl) if w is not None or b is not None else None),
        (_NO_AFFINE[0], _NO_AFFINE[1],
         lambda: _norm(x64, spatial, eps) if w is not None or b is not None else None),
    ]


def _in_case(instance_norm, x, w=None, b=None, eps=None):
    kwargs, eps_v = _optional_args(w, b, eps)
    what = f"instance_norm(x of shape {list(x.shape)}" + \
        _describe_args(w, eps) + ")"
    out = _run(instance_norm, x, "instance_norm", what, **kwargs)
    ref = _ref64(F.instance_norm, x, weight=w, bias=b, eps=eps_v)

    def again(other):
        with _no_builtin("instance_norm"):
            return call(instance_norm, other, _what=what, **kwargs)

    _diagnose(out, x, ref, _in_candidates(x, w, b, eps_v), what, "instance_norm", again)


@check
def check_instance_norm(instance_norm) -> None:
    """Values against F.instance_norm (no weight/bias) for 4-, 3- and 5-dim inputs."""
    _in_case(instance_norm, _probe((4, 3, 6, 5), seed=10))
    _in_case(instance_norm, _probe((5, 4, 9), seed=11, dtype=torch.float32), eps=0.5)
    _in_case(instance_norm, _probe((2, 3, 3, 4, 2), seed=12))


@check
def check_instance_norm_affine(instance_norm) -> None:
    """weight and bias of shape (C,) scale and shift each channel."""
    g = generator(13)
    for shape, dtype in (((3, 4, 5, 4), torch.float64), ((2, 3, 7), torch.float32),
                         ((2, 5, 3, 2, 4), torch.float64)):
        c = shape[1]
        w = (1 + 0.5 * torch.randn(c, generator=g, dtype=torch.float64)).to(dtype)
        b = torch.randn(c, generator=g, dtype=torch.float64).to(dtype)
        _in_case(instance_norm, _probe(shape, seed=14, dtype=dtype), w, b)


# --------------------------------------------------------------------------------------------
# group_norm

def _gn_candidates(x, groups, w, b, eps):
    x64 = x.double()
    c = x.shape[1]
    w64, b64 = _per_channel(None if w is None else w.double(), x), _per_channel(None if b is None else b.double(), x)
    wl = None if w is None else w.double()
    bl = None if b is None else b.double()
    return [
        (f"the {groups} groups are made of interleaved channels (channel c in group c % "
         f"{groups}) instead of contiguous blocks of {c // groups} channels.",
         "group g holds channels g*C/G ... (g+1)*C/G - 1: x.reshape(N, G, C // G, *spatial), "
         "not x.reshape(N, C // G, G, *spatial).",
         lambda: _affine(_group_stats(x64, groups, eps, interleaved=True), w64, b64)),
        (f"num_groups={groups} was ignored: every sample is normalised over all its channels "
         "at once (GroupNorm with one group, i.e. LayerNorm over (C, *spatial)).",
         "split the channels into num_groups groups: x.reshape(N, num_groups, -1), then reduce "
         "over the last dimension.",
         lambda: _affine(_norm(x64, tuple(range(1, x.dim())), eps), w64, b64) if groups != 1 else None),
        (f"num_groups={groups} was ignored: every channel is normalised on its own "
         "(GroupNorm with C groups, i.e. InstanceNorm).",
         "split the channels into num_groups contiguous groups of C // num_groups channels.",
         lambda: _affine(_norm(x64, tuple(range(2, x.dim())), eps), w64, b64) if groups != c else None),
        (_UNBIASED[0], _UNBIASED[1], lambda: _affine(_group_stats(x64, groups, eps, unbiased=True), w64, b64)),
        (_EPS_OUTSIDE[0], _EPS_OUTSIDE[1],
         lambda: _affine(_group_stats(x64, groups, eps, eps_outside=True), w64, b64)),
        ("weight and bias of shape (C,) were broadcast against the last dimension of the input "
         "(its width), not against the channels.",
         "GroupNorm's weight and bias are per channel: reshape them to (1, C, 1, ..., 1), "
         "weight.view(1, -1, *([1] * (x.dim() - 2))).",
         lambda: _affine(_group_stats(x64, groups, eps), wl, bl) if w is not None or b is not None else None),
        (_NO_AFFINE[0], _NO_AFFINE[1],
         lambda: _group_stats(x64, groups, eps) if w is not None or b is not None else None),
    ]


def _gn_case(group_norm, x, groups, w=None, b=None, eps=None):
    kwargs, eps_v = _optional_args(w, b, eps)
    what = f"group_norm(x of shape {list(x.shape)}, num_groups={groups}" + \
        _describe_args(w, eps) + ")"
    out = _run(group_norm, x, "group_norm", what, groups, **kwargs)
    ref = _ref64(F.group_norm, x, groups, weight=w, bias=b, eps=eps_v)

    def again(other):
        with _no_builtin("group_norm"):
            return call(group_norm, other, groups, _what=what, **kwargs)

    _diagnose(out, x, ref, _gn_candidates(x, groups, w, b, eps_v), what, "group_norm", again)


@check
def check_group_norm(group_norm) -> None:
    """Values against F.group_norm (no weight/bias) for several group counts and ranks."""
    x = _probe((4, 6, 5, 5), seed=20)
    for groups in (2, 3, 1, 6):
        _gn_case(group_norm, x, groups)
    _gn_case(group_norm, _probe((3, 8, 7), seed=21, dtype=torch.float32), 4, eps=0.5)
    _gn_case(group_norm, _probe((2, 4, 3, 3, 2), seed=22), 2)
    _gn_case(group_norm, _probe((4, 6, 5, 5), seed=23), 3, eps=0.5)


@check
def check_group_norm_groups(group_norm) -> None:
    """A group count that does not divide the number of channels raises ValueError."""
    x = _probe((2, 6, 4, 4), seed=26)
    for groups in (4, 5, 12):
        expect_raises(
            group_norm, x, groups,
            mistake=(f"group_norm accepted num_groups={groups} for {x.shape[1]} channels: "
                     f"{x.shape[1]} channels cannot be split into {groups} equal groups, so the "
                     "groups straddle channels (a reshape of the flattened sample silently "
                     "succeeds when the sizes happen to divide)."),
            fix="check x.shape[1] % num_groups == 0 first and raise ValueError saying both numbers.",
        )


# --------------------------------------------------------------------------------------------
# equivalent_norm

_EQ_CASES = (((1, 8), "layer"), ((8, 8), "instance"), ((2, 8), "group"), ((4, 8), "group"),
             ((1, 1), "layer"), ((16, 16), "instance"), ((1, 32), "layer"), ((32, 32), "instance"))


@check
def check_equivalent_norm(equivalent_norm) -> None:
    """GroupNorm(G, C) normalises like LayerNorm when G = 1 and like InstanceNorm when G = C."""
    answers = {}
    for (groups, channels), expected in _EQ_CASES:
        answers[(groups, channels)] = call(equivalent_norm, groups, channels)
    for got in answers.values():
        if got not in ("layer", "instance", "group"):
            fail(f"equivalent_norm returned {got!r}; expected one of the strings 'layer', "
                 "'instance', 'group'.",
                 "return exactly 'layer', 'instance' or 'group' (lower case, no 'norm').")
    if answers[(1, 8)] == "instance" and answers[(8, 8)] == "layer":
        fail(
            "equivalent_norm(1, 8) returned 'instance' and equivalent_norm(8, 8) 'layer': this "
            "is the seed's swapped statement (当num_groups=num时,相当于LN; 当num_groups=1时,相当于IN), "
            "and it is wrong.",
            "with one group, the group is every channel of the sample: statistics over "
            "(C, H, W) per sample, i.e. LayerNorm. With C groups, each group is one channel: "
            "statistics over (H, W) per sample and channel, i.e. InstanceNorm.",
        )
    if answers[(1, 1)] != "layer" and answers[(1, 8)] == "layer":
        fail(
            f"equivalent_norm(1, 1) returned {answers[(1, 1)]!r}; with one channel both rules "
            "apply and the contract checks num_groups == 1 first.",
            "test num_groups == 1 before num_groups == num_channels.",
        )
    for (groups, channels), expected in _EQ_CASES:
        got = answers[(groups, channels)]
        if got != expected:
            fail(f"equivalent_norm({groups}, {channels}) returned {got!r}; expected {expected!r}.",
                 "'layer' when num_groups == 1, else 'instance' when num_groups == num_channels, "
                 "else 'group'.")




# --------------------------------------------------------------------------------------------
# layer_norm_backward

_BACKWARD_FORBIDDEN = _BUILTINS + ("backward", "grad")
_BACKWARD_HOW = ("the formulas of the notebook: grad_bias = g.sum(0), grad_weight = (g * x_hat).sum(0), "
                 "grad_x = rstd / D * (D * g_hat - g_hat.sum(-1) - x_hat * (g_hat * x_hat).sum(-1)) "
                 "with g_hat = g * weight")


def _no_autograd(exercise: str):
    return forbid_builtins(exercise, _BACKWARD_FORBIDDEN,
                           "derive the gradients by hand, no autograd (.backward(), torch.autograd.grad) "
                           "and no built-in normalisation: " + _BACKWARD_HOW)


def _ln_grads_autograd(g, x, w, eps, forward):
    """(grad_x, grad_weight, grad_bias) of sum(g * forward(x, w, b)) by autograd, in float64."""
    x = x.detach().double().clone().requires_grad_(True)
    w = w.detach().double().clone().requires_grad_(True)
    b = torch.zeros_like(w).requires_grad_(True)
    y = forward(x, w, b)
    return torch.autograd.grad((y * g.double()).sum(), (x, w, b))


def _ln_reference(g, x, w, eps):
    return _ln_grads_autograd(g, x, w, eps, lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b, eps))


def _ln_compact(g, x, w, eps, *, var_path=True, mean_path=True, weight_in_x=True,
                eps_outside=False, unbiased=False, reduce="sum"):
    """The compact formula, with the typical mistakes as switches (float64)."""
    g, x, w = g.double(), x.double(), w.double()
    d = x.shape[-1]
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=unbiased, keepdim=True)
    rstd = 1 / (var.sqrt() + eps) if eps_outside else 1 / torch.sqrt(var + eps)
    xhat = (x - mean) * rstd
    gh = g * w if weight_in_x else g
    gx = gh
    if mean_path:
        gx = gx - gh.mean(-1, keepdim=True)
    if var_path:
        gx = gx - xhat * (gh * xhat).mean(-1, keepdim=True)
    gx = gx * rstd
    red = (lambda t: t.sum(0)) if reduce == "sum" else (lambda t: t.mean(0))
    return gx, red(g * xhat), red(g)


def _ln_candidates_backward(g, x, w, eps):
    """(mistake, fix, make) for the typical wrong gradients; make() -> (gx, gw, gb)."""
    def eps_out_forward(x, w, b):
        mean = x.mean(-1, keepdim=True)
        return (x - mean) / (x.var(-1, unbiased=False, keepdim=True).sqrt() + eps) * w + b

    def unbiased_forward(x, w, b):
        mean = x.mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(-1, unbiased=True, keepdim=True) + eps) * w + b

    def batch_axis_forward(x, w, b):
        mean = x.mean(0, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(0, unbiased=False, keepdim=True) + eps) * w + b

    return [
        ("the variance is treated as a constant: only the mean's path is back-propagated, so the "
         "term - x_hat * mean(g_hat * x_hat) is missing from grad_x.",
         "the variance depends on x too: grad_x = rstd * (g_hat - mean(g_hat) - x_hat * "
         "mean(g_hat * x_hat)), means over the features (dim -1).",
         lambda: _ln_compact(g, x, w, eps, var_path=False)),
        ("both statistics are treated as constants: grad_x = weight * grad_out / sqrt(var + eps) "
         "is the gradient of evaluation-mode batch norm (fixed statistics), not of layer norm, "
         "whose mean and variance depend on x.",
         "back-propagate through the mean and the variance as well: subtract mean(g_hat) and "
         "x_hat * mean(g_hat * x_hat) (means over the features) before multiplying by rstd.",
         lambda: _ln_compact(g, x, w, eps, var_path=False, mean_path=False)),
        ("the parameter gradients are averaged over the batch instead of summed: every sample "
         "contributes its own term to the gradient of weight and bias.",
         "grad_weight = (grad_out * x_hat).sum(0) and grad_bias = grad_out.sum(0), sums over the "
         "batch dimension, not .mean(0).",
         lambda: _ln_compact(g, x, w, eps, reduce="mean")),
        ("weight is left out of grad_x: y = weight * x_hat + bias, so the gradient reaching x_hat "
         "is grad_out * weight, not grad_out.",
         "use g_hat = grad_out * weight everywhere in the formula for grad_x.",
         lambda: _ln_compact(g, x, w, eps, weight_in_x=False)),
        ("eps is added outside the square root: std + eps instead of sqrt(var + eps).",
         "PyTorch adds eps to the variance: rstd = 1 / torch.sqrt(var + eps).",
         lambda: _ln_grads_autograd(g, x, w, eps, eps_out_forward)),
        ("eps is added outside the square root: std + eps instead of sqrt(var + eps).",
         "PyTorch adds eps to the variance: rstd = 1 / torch.sqrt(var + eps).",
         lambda: _ln_compact(g, x, w, eps, eps_outside=True)),
        ("the variance is the unbiased one (dividing by D - 1).",
         "layer norm uses the biased variance: x.var(-1, unbiased=False) (or correction=0), the "
         "mean of (x - mean)**2, and the 1/D of the formula comes from that mean.",
         lambda: _ln_grads_autograd(g, x, w, eps, unbiased_forward)),
        ("the variance is the unbiased one (dividing by D - 1).",
         "layer norm uses the biased variance: x.var(-1, unbiased=False) (or correction=0), the "
         "mean of (x - mean)**2, and the 1/D of the formula comes from that mean.",
         lambda: _ln_compact(g, x, w, eps, unbiased=True)),
        ("the statistics are on the wrong axis: mean and variance over the batch (dim 0, per "
         "feature), which is batch norm's backward, not layer norm's.",
         "layer norm normalises each sample over its features: every mean and sum in grad_x "
         "runs over dim -1 (keepdim=True); only grad_weight and grad_bias sum over dim 0.",
         lambda: _ln_grads_autograd(g, x, w, eps, batch_axis_forward)),
    ]


def _bw_close(a, b, dtype) -> bool:
    if not isinstance(a, torch.Tensor) or a.shape != b.shape:
        return False
    rtol, atol = (1e-4, 1e-5) if dtype == torch.float32 else (1e-8, 1e-8)
    return bool(torch.allclose(a.detach().double(), b.detach().double(), rtol=rtol, atol=atol))


def _ln_backward_case(layer_norm_backward, n, d, seed, dtype=torch.float64, eps=None):
    """Call the student's layer_norm_backward on a probe and compare with autograd through
    F.layer_norm; name the typical mistake the answer matches."""
    gen = generator(seed)
    x = (3 * torch.randn(n, 1, generator=gen, dtype=torch.float64)
         + (0.5 + torch.rand(n, 1, generator=gen, dtype=torch.float64))
         * torch.randn(n, d, generator=gen, dtype=torch.float64)).to(dtype)
    w = (1 + 0.5 * torch.randn(d, generator=gen, dtype=torch.float64)).to(dtype)
    g = torch.randn(n, d, generator=gen, dtype=torch.float64).to(dtype)
    eps_v = 1e-5 if eps is None else eps
    what = (f"layer_norm_backward(grad_out, x, weight{'' if eps is None else f', eps={eps}'}) "
            f"for x of shape ({n}, {d}) in {str(dtype).replace('torch.', '')}")
    xs, ws, gs = x.clone(), w.clone(), g.clone()
    kwargs = {} if eps is None else {"eps": eps}
    with _no_autograd("layer_norm_backward"):
        out = call(layer_norm_backward, gs, xs, ws, _what=what, **kwargs)
    if not torch.equal(gs, g):
        fail(f"{what} modified grad_out in place.",
             "grad_out belongs to the caller (autograd may pass it on to other branches): compute "
             "new tensors (g_hat = grad_out * weight), never grad_out *= ... or grad_out.mul_(...).")
    if not torch.equal(xs, x) or not torch.equal(ws, w):
        fail(f"{what} modified x or weight in place.",
             "compute new tensors (x - mean), never x -= ... or x.sub_(...).")
    if not isinstance(out, (tuple, list)) or len(out) != 3 or \
            not all(isinstance(t, torch.Tensor) for t in out):
        fail(f"{what} returned {type(out).__name__}"
             + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
             + ", not a tuple of three tensors.",
             "return grad_x, grad_weight, grad_bias (in that order).")
    gx, gw, gb = out
    for name, t, shape in (("grad_x", gx, (n, d)), ("grad_weight", gw, (d,)), ("grad_bias", gb, (d,))):
        if tuple(t.shape) != shape:
            fail(f"{what}: {name} has shape {tuple(t.shape)}, expected {shape}.",
                 f"{name} has the shape of {'x' if name == 'grad_x' else 'weight'}"
                 + ("" if name == "grad_x" else ": sum over the batch dimension, dim 0") + ".")
        if t.dtype != dtype:
            fail(f"{what}: {name} has dtype {t.dtype} for {dtype} inputs.",
                 "keep the inputs' dtype (no .double() or .float() on the results).")
    ref = _ln_reference(g, x, w, eps_v)
    if all(_bw_close(a, r, dtype) for a, r in zip(out, ref)):
        return
    for mistake, fix, make in _ln_candidates_backward(g, x, w, eps_v):
        cand = _safe(make)
        if cand is not None and all(_bw_close(a, c, dtype) for a, c in zip(out, cand)) \
                and not all(_bw_close(c, r, dtype) for c, r in zip(cand, ref)):
            fail(f"{what}: {mistake}", fix)
    wrong = [name for name, a, r in zip(("grad_x", "grad_weight", "grad_bias"), out, ref)
             if not _bw_close(a, r, dtype)]
    worst = max((a.detach().double() - r).abs().max().item() for a, r in zip(out, ref))
    fail(f"{what}: {', '.join(wrong)} differ{'s' if len(wrong) == 1 else ''} from autograd through "
         f"torch.nn.functional.layer_norm (largest difference {worst:.3g}), and not in a way the "
         "check recognises.",
         "derive it step by step as in the notebook and compare each gradient with autograd on "
         "a small float64 input in a new cell: " + _BACKWARD_HOW + ".")


@check
def check_layer_norm_backward(layer_norm_backward) -> None:
    """The three gradients agree with autograd through F.layer_norm to 1e-8 in float64;
    grad_out, x and weight are not modified; no autograd, no built-in normalisation."""
    _ln_backward_case(layer_norm_backward, 6, 8, seed=40)
    _ln_backward_case(layer_norm_backward, 5, 7, seed=41, eps=0.5)


# --------------------------------------------------------------------------------------------
# the questions: the answers come from the student's own run (grader.hidden recomputes them)

_LAYERS = ("BN", "GN", "LN")


def _layer_names(answer, what: str) -> set:
    if isinstance(answer, str):
        answer = [answer]
    if not isinstance(answer, (list, tuple, set, frozenset)):
        fail(f"{what} is {answer!r}, not a list of names.",
             f'assign a list of the names among "BN", "GN", "LN", e.g. {what} = ["GN"] (or [] for none).')
    names = set()
    for item in answer:
        if not isinstance(item, str) or item.strip().upper() not in _LAYERS:
            fail(f"{what} contains {item!r}; expected only the names 'BN', 'GN', 'LN'.",
                 f'assign a list of those names, e.g. {what} = ["GN"].')
        names.add(item.strip().upper())
    return names


@check
def check_moved_layers_format(moved_layers) -> None:
    """A list of names among 'BN', 'GN', 'LN'."""
    _layer_names(moved_layers, "moved_layers")


def _mode(answer) -> str:
    if not isinstance(answer, str) or answer.strip().lower() not in ("eval", "train"):
        fail(f"better_bn_mode is {answer!r}; expected the string 'eval' or 'train'.",
             'assign one of the two strings, e.g. better_bn_mode = "eval".')
    return answer.strip().lower()


@check
def check_better_bn_mode_format(better_bn_mode) -> None:
    """The string 'eval' or 'train'."""
    _mode(better_bn_mode)
