"""Visible checks for assignment 06-transformer-norms: ``rms_norm``, ``RMSNorm``,
``dyt`` and the format of the three questions (``rms_norm_backward`` and ``RMSNormFunction``
are checked in ``grader.checks.rms_backward``, ``ResidualBlock`` and ``Encoder`` in
``grader.checks.transformer_blocks``; the hidden checks and the questions' answers are in
``grader.hidden.transformer_norms``).

The reference is ``torch.nn.functional.rms_norm`` (float64 for float32/float64 inputs; in their
own dtype for float16 and bfloat16, where PyTorch computes in float32, multiplies by the weight
and casts back, and the answer must agree value for value). A wrong answer is matched against
the outputs of the typical mistakes (the mean subtracted, eps outside the root, a sum for the
mean, the wrong dimensions, another default eps, float16 arithmetic that overflows, the weight
multiplied after the cast ...) and the check names the one it matches.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._common import as_number, call, check, expect_raises, fail, forbid_builtins, generator
from .norm_layers import _close, _probe, _run, _safe

_BUILTINS = ("rms_norm", "_fused_rms_norm", "layer_norm", "native_layer_norm", "group_norm",
             "native_group_norm", "batch_norm", "native_batch_norm", "instance_norm")
_HOW = "x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps), then times weight"
_HALF = (torch.float16, torch.bfloat16)


def _no_builtin(exercise: str):
    return forbid_builtins(exercise, _BUILTINS, _HOW)


def _dims(ns) -> tuple:
    shape = [ns] if isinstance(ns, int) else list(ns)
    return tuple(range(-len(shape), 0))


def _rms(x, dims, eps, *, subtract_mean=False, eps_outside=False, reduce="mean"):
    """x / sqrt(mean(x**2) + eps) over dims, with the typical mistakes as switches."""
    if subtract_mean:
        x = x - x.mean(dims, keepdim=True)
    sq = x.pow(2).sum(dims, keepdim=True) if reduce == "sum" else x.pow(2).mean(dims, keepdim=True)
    return x / (sq.sqrt() + eps) if eps_outside else x / torch.sqrt(sq + eps)


def _w(y, w):
    return y if w is None else y * w.double()


def _default_eps(dtype) -> float:
    return torch.finfo(torch.float32 if dtype in _HALF else dtype).eps


def _candidates(x, ns, w, eps, eps_given):
    """(mistake, fix, make) for the typical wrong answers, evaluated in float64."""
    x64 = x.double()
    dims = _dims(ns)
    k = len(dims)
    out = [
        ("it subtracts the row's mean: that is LayerNorm without its bias, not RMSNorm.",
         "RMSNorm divides by the root mean square of x itself, nothing subtracted: "
         "x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps).",
         lambda: _w(_rms(x64, dims, eps, subtract_mean=True), w)),
        ("it divides by the standard deviation (the variance, which subtracts the mean) instead of "
         "the root mean square.",
         "use the mean of the squares, x.pow(2).mean(dims, keepdim=True), not x.var(...).",
         lambda: _w(x64 / torch.sqrt(x64.var(dims, unbiased=False, keepdim=True) + eps), w)),
        ("eps is added outside the square root: x / (sqrt(mean(x**2)) + eps).",
         "PyTorch adds eps to the mean of the squares: x / torch.sqrt(x.pow(2).mean(dims) + eps).",
         lambda: _w(_rms(x64, dims, eps, eps_outside=True), w)),
        ("it takes the sum of the squares instead of their mean (the result is sqrt(D) times too small).",
         "divide by the number of features: x.pow(2).mean(dims, keepdim=True), not .sum(dims).",
         lambda: _w(_rms(x64, dims, eps, reduce="sum"), w)),
        (f"it normalises over the last dimension only, whatever normalized_shape={ns!r} "
         "says." if k > 1 else "", "reduce over all the trailing dimensions that normalized_shape "
         "names: dims = tuple(range(-len(normalized_shape), 0)).",
         lambda: _w(_rms(x64, (-1,), eps), w) if k > 1 else None),
        (f"it normalises over the leading dimensions {tuple(range(1, 1 + k))} instead of the trailing ones.",
         "normalized_shape names the *last* len(normalized_shape) dimensions of the input: "
         "dims = tuple(range(-len(normalized_shape), 0)).",
         lambda: _w(_rms(x64, tuple(range(1, 1 + k)), eps), w) if 1 + k <= x.dim() and k < x.dim() - 1 else None),
        ("it normalises over every dimension but the batch, whatever normalized_shape says.",
         "reduce over the trailing dimensions that normalized_shape names, no more.",
         lambda: _w(_rms(x64, tuple(range(1, x.dim())), eps), w) if k < x.dim() - 1 else None),
        ("weight was ignored.", "multiply the normalised tensor by weight when it is given.",
         lambda: _rms(x64, dims, eps) if w is not None else None),
    ]
    if not eps_given:
        for wrong in (1e-5, 1e-6, 1e-8, torch.finfo(torch.float32).eps, torch.finfo(torch.float16).eps):
            if not math.isclose(wrong, eps, rel_tol=1e-3):
                out.append((f"eps=None was taken as {wrong:g}, but PyTorch's default is "
                            f"torch.finfo({str(x.dtype).replace('torch.', '')}).eps = {eps:.3g} here (the "
                            "default eps of the dtype the computation runs in, not LayerNorm's 1e-5).",
                            "if eps is None: eps = torch.finfo(dtype).eps, dtype the computation dtype "
                            "(float32 for float16 and bfloat16 inputs).",
                            lambda wrong=wrong: _w(_rms(x64, dims, wrong), w)))
    return [c for c in out if c[0]]


def _call_rms(rms_norm, x, ns, w, eps, what):
    kwargs = {} if eps is None else {"eps": eps}
    if w is not None:
        kwargs["weight"] = w
    return _run(rms_norm, x, "rms_norm", what, ns, _guard=_no_builtin("rms_norm"),
                _in_place="compute a new tensor (x * torch.rsqrt(...)) instead of x.mul_(...) or x *= ...",
                _dtype="keep the input's dtype: compute float16/bfloat16 in float32, then .to(x.dtype) at the end.",
                **kwargs)


def _describe(x, ns, w, eps) -> str:
    return (f"rms_norm(x of shape {list(x.shape)} in {str(x.dtype).replace('torch.', '')}, {ns!r}"
            + (", weight" if w is not None else "") + (f", eps={eps}" if eps is not None else "") + ")")


def _rms_case(rms_norm, x, ns, w=None, eps=None):
    what = _describe(x, ns, w, eps)
    out = _call_rms(rms_norm, x, ns, w, eps, what)
    eps_v = _default_eps(x.dtype) if eps is None else eps
    shape = [ns] if isinstance(ns, int) else list(ns)
    ref = F.rms_norm(x.double(), shape, None if w is None else w.double(), eps_v)
    if _close(out, ref, x.dtype):
        return
    for mistake, fix, make in _candidates(x, ns, w, eps_v, eps is not None):
        cand = _safe(make)
        if cand is not None and _close(out, cand, x.dtype) and not _close(cand, ref, x.dtype):
            fail(f"{what}: {mistake}", fix)
    gap = (out.detach().double() - ref).abs()
    worst = gap[torch.isfinite(gap)].max().item() if torch.isfinite(gap).any() else float("inf")
    fail(f"{what} differs from torch.nn.functional.rms_norm (largest difference {worst:.3g}), and "
         "not in a way the check recognises.",
         "x / torch.sqrt(x.pow(2).mean(dims, keepdim=True) + eps) * weight over the trailing "
         "dimensions; compare with F.rms_norm on a small input in a new cell.")


@check
def check_rms_norm(rms_norm) -> None:
    """Values against F.rms_norm: the seed's [8, 6, 3, 4] input with normalized_shape [3, 4]
    and [6, 3, 4], float32 and float64, with and without weight, eps None (also on rows whose
    mean square is small, where the default eps shows) and given."""
    g = generator(601)
    x = _probe((8, 6, 3, 4), seed=602)
    w = 1 + 0.5 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    _rms_case(rms_norm, x, [3, 4], w)
    _rms_case(rms_norm, x, (6, 3, 4), eps=0.5)
    x32 = _probe((5, 7, 10), seed=603, dtype=torch.float32)
    _rms_case(rms_norm, x32, 10, (1 + 0.5 * torch.randn(10, generator=g)))
    _rms_case(rms_norm, 1e-3 * _probe((6, 16), seed=604), 16)
    _rms_case(rms_norm, 1e-3 * _probe((6, 16), seed=605, dtype=torch.float32), [16])
    _rms_case(rms_norm, _probe((4, 9), seed=606), 9, torch.rand(9, generator=g, dtype=torch.float64), eps=1e-2)


@check
def check_rms_norm_shape(rms_norm) -> None:
    """A normalized_shape that is not the input's trailing dimensions raises ValueError."""
    x = _probe((8, 6, 3, 4), seed=607)
    for ns in ([6, 3], [5], [6, 4], [2, 8, 6, 3, 4]):
        expect_raises(
            rms_norm, x, ns,
            mistake=(f"rms_norm accepted normalized_shape={ns} for an input of shape {list(x.shape)}: "
                     "normalized_shape is not validated. It must be the end of the input's shape "
                     "([6, 3, 4], [3, 4] or [4] here), as for LayerNorm."),
            fix="compare list(x.shape[-len(normalized_shape):]) with list(normalized_shape) (and "
                "len(normalized_shape) with x.dim()) and raise ValueError saying both.",
        )


def _half_probe(dtype, seed, d=48):
    """Rows of ordinary size, one row of values about 300 (300**2 overflows float16) and one
    of values about 0.01 (where float16's own eps, 1e-3, would show)."""
    g = generator(seed)
    x = 3 * torch.randn(10, d, generator=g) + torch.randn(10, 1, generator=g)
    x[3] = 300 + 20 * torch.randn(d, generator=g)
    x[7] = 0.01 * torch.randn(d, generator=g)
    w = 1 + 0.5 * torch.randn(d, generator=g)
    return x.to(dtype), w.to(dtype)


def _half_agrees(out, ref) -> bool:
    """Value for value, up to one unit in the last place in at most 2 % of the values (correct
    answers written another way, x / sqrt or float64 inside, agree bit for bit in our tests)."""
    if out.shape != ref.shape or out.dtype != ref.dtype or not torch.isfinite(out.float()).all():
        return False
    a, b = out.float(), ref.float()
    ulp = torch.finfo(ref.dtype).eps * b.abs().clamp_min(torch.finfo(ref.dtype).tiny)
    return bool(((a - b).abs() <= 1.01 * ulp).all() and (a != b).float().mean().item() <= 0.02)


def _half_case(rms_norm, dtype, seed, ns=48, weight=True):
    x, w = _half_probe(dtype, seed)
    w = w if weight else None
    what = _describe(x, ns, w, None)
    out = _call_rms(rms_norm, x, ns, w, None, what)
    ref = F.rms_norm(x, [48], w)
    if _half_agrees(out, ref):
        return
    name = str(dtype).replace("torch.", "")
    x32, w32 = x.float(), (None if w is None else w.float())
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + torch.finfo(torch.float32).eps)
    bad = out.float()
    if not torch.isfinite(bad).all() or (bad[3].abs().max() < 0.05 and ref[3].float().abs().max() > 0.5):
        fail(f"{what}: row 3 (values about 300) comes out as "
             f"{'inf/nan' if not torch.isfinite(bad[3]).all() else 'zeros'}: x**2 was computed in "
             f"{name}, where 300**2 = 90000 overflows (the largest float16 is 65504). PyTorch "
             "computes half precision in float32 and does not overflow.",
             "compute in float32: xc = x.float() for float16/bfloat16 inputs, normalise xc, multiply "
             "by weight, and return out.to(x.dtype).")
    candidates = [
        (f"eps=None was taken as torch.finfo({name}).eps = {torch.finfo(dtype).eps:.3g}, the eps of the "
         "input's dtype; PyTorch computes half precision in float32 and uses float32's eps, 1.19e-07 "
         "(row 7, values about 0.01, shows it).",
         "take the default eps of the computation dtype: torch.finfo(torch.float32).eps for float16 "
         "and bfloat16 inputs (compute first, xc = x.float(), then torch.finfo(xc.dtype).eps).",
         lambda: (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + torch.finfo(dtype).eps)
                  * (1 if w32 is None else w32)).to(dtype)),
        (f"the weight is multiplied after the cast back to {name}: (normalised.to({name}) * weight) "
         "rounds twice. PyTorch multiplies by the weight in float32 and casts once.",
         "multiply by weight before the cast: (xc * torch.rsqrt(...) * weight).to(x.dtype).",
         lambda: normed.to(dtype) * w if w is not None else None),
    ]
    for eps_h in (torch.finfo(torch.float32).eps, torch.finfo(dtype).eps):
        candidates.append(
            (f"the computation runs in {name}: PyTorch computes half precision in float32 and casts the "
             "result back, so the values differ by more than rounding.",
             "xc = x.float() for float16/bfloat16 inputs, normalise and multiply by the weight in "
             "float32, then .to(x.dtype).",
             lambda eps_h=eps_h: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps_h) * (1 if w is None else w)))
    for mistake, fix, make in candidates:
        cand = _safe(make)
        if cand is not None and torch.isfinite(cand.float()).all() and _half_agrees(out, cand) \
                and not _half_agrees(cand, ref):
            fail(f"{what}: {mistake}", fix)
    tol = 4 * torch.finfo(dtype).eps  # the float-level mistakes, up to half-precision rounding
    for mistake, fix, make in _candidates(x32, ns, w32, torch.finfo(torch.float32).eps, False):
        cand = _safe(make)
        if cand is not None and torch.allclose(bad.double(), cand, rtol=tol, atol=tol):
            fail(f"{what}: {mistake}", fix)
    diff = (bad - ref.float()).abs().max().item()
    fail(f"{what} differs from torch.nn.functional.rms_norm in {name} (largest difference {diff:.3g}, "
         f"{(bad != ref.float()).float().mean().item():.0%} of the values differ).",
         "compute in float32 (x.float()), eps = torch.finfo(torch.float32).eps when None, multiply by "
         "weight in float32, then cast back with .to(x.dtype).")


@check
def check_rms_norm_half(rms_norm) -> None:
    """float16 and bfloat16 inputs, with and without weight: the values of F.rms_norm in the
    input's dtype (computed in float32), including a row whose squares overflow float16."""
    _half_case(rms_norm, torch.float16, 610)
    _half_case(rms_norm, torch.bfloat16, 611)
    _half_case(rms_norm, torch.float16, 612, weight=False)


# --------------------------------------------------------------------------------------------
# RMSNorm

def _make(RMSNorm, *args, **kwargs):
    with _no_builtin("RMSNorm"):
        return call(RMSNorm, *args, _what=f"RMSNorm({', '.join(map(repr, args))}"
                    + "".join(f", {k}={v!r}" for k, v in kwargs.items()) + ")", **kwargs)


def _state_keys(module) -> list:
    return sorted(call(module.state_dict, _what="state_dict()").keys())


def _module_case(RMSNorm, ns, eps=None, affine=True, seed=620):
    kwargs = {} if eps is None else {"eps": eps}
    if not affine:
        kwargs["elementwise_affine"] = False
    layer = _make(RMSNorm, ns, **kwargs)
    what = "RMSNorm(" + repr(ns) + "".join(f", {k}={v!r}" for k, v in kwargs.items()) + ")"
    if not isinstance(layer, torch.nn.Module):
        fail(f"{what} is not a torch.nn.Module.", "write class RMSNorm(nn.Module) and call super().__init__().")
    if isinstance(layer, torch.nn.RMSNorm):
        fail(f"{what} is PyTorch's nn.RMSNorm (a subclass of it): the exercise is to write the layer.",
             "subclass nn.Module and compute with your rms_norm.")
    ref = torch.nn.RMSNorm(ns, **kwargs)
    keys, ref_keys = _state_keys(layer), sorted(ref.state_dict().keys())
    if keys != ref_keys:
        if "bias" in keys:
            fail(f"{what} has a bias (state_dict keys {keys}): RMSNorm has only a weight, so its "
                 "state_dict does not load into nn.RMSNorm.",
                 "remove the bias: RMSNorm scales by weight and shifts by nothing.")
        if affine and not keys:
            fail(f"{what} has no parameter weight (state_dict is empty).",
                 "self.weight = nn.Parameter(torch.ones(normalized_shape)) when elementwise_affine is True.")
        fail(f"{what}'s state_dict has the keys {keys}; nn.RMSNorm's has {ref_keys}, so they do not "
             "load into each other.",
             "keep exactly one parameter named weight (ones of shape normalized_shape), None without "
             "affine (self.register_parameter('weight', None)), and no buffers.")
    shape = (ns,) if isinstance(ns, int) else tuple(ns)
    if affine:
        weight = layer.weight
        if not isinstance(weight, torch.nn.Parameter) or tuple(weight.shape) != shape \
                or not torch.equal(weight.detach().double(), torch.ones(shape, dtype=torch.float64)):
            fail(f"{what}.weight is not a Parameter of ones of shape {shape}.",
                 "self.weight = nn.Parameter(torch.ones(normalized_shape)).")
        g = generator(seed)
        with torch.no_grad():
            ref.weight.copy_(1 + 0.5 * torch.randn(shape, generator=g))
        call(layer.load_state_dict, ref.state_dict(), _what=f"{what}.load_state_dict(nn.RMSNorm's state_dict)")
    elif getattr(layer, "weight", None) is not None:
        fail(f"{what}.weight is not None although elementwise_affine=False.",
             "self.register_parameter('weight', None) without affine parameters.")
    x = _probe((4, 5) + shape, seed=seed + 1, dtype=torch.float32) * (1e-3 if eps is None else 1.0)
    with _no_builtin("RMSNorm"):
        out = call(layer, x, _what=f"{what}(x of shape {list(x.shape)})")
    expected = ref(x)
    if not isinstance(out, torch.Tensor) or not _close(out, expected.double(), torch.float32):
        w = None if ref.weight is None else ref.weight.detach().double()
        dims = tuple(range(-len(shape), 0))
        if eps is None and isinstance(out, torch.Tensor) and any(
                _close(out, _w(_rms(x.double(), dims, wrong), w), torch.float32) for wrong in (1e-5, 1e-6, 1e-8)):
            fail(f"{what}(x) uses a fixed eps where nn.RMSNorm's default is None: eps=None must reach "
                 "rms_norm as None, where it means the computation dtype's torch.finfo(...).eps.",
                 "store eps as given (self.eps = eps) and pass it on: rms_norm(x, self.normalized_shape, "
                 "self.weight, self.eps).")
        fail(f"{what}(x) differs from nn.RMSNorm with the same weight. (A forward that calls your "
             "rms_norm inherits its mistakes: if the rms_norm tests fail too, fix them first.)",
             "forward(x) returns rms_norm(x, self.normalized_shape, self.weight, self.eps).")
    if affine:  # and back: PyTorch's layer loads the student's weights
        with torch.no_grad():
            for p in call(layer.parameters, _what=f"{what}.parameters()"):
                p.mul_(0.5)
        fresh = torch.nn.RMSNorm(ns, **kwargs)
        try:
            fresh.load_state_dict(call(layer.state_dict, _what="state_dict()"))
        except Exception as exc:  # noqa: BLE001 - the student's state_dict
            fail(f"nn.RMSNorm.load_state_dict({what}.state_dict()) raised {type(exc).__name__}: {exc}",
                 "the state_dict must hold exactly weight, of shape normalized_shape.")
        if not torch.allclose(fresh.weight.double(), 0.5 * ref.weight.detach().double()):
            fail(f"{what}.state_dict()['weight'] is not the layer's weight.", "register weight as an nn.Parameter.")


@check
def check_RMSNorm(RMSNorm) -> None:
    """One Parameter weight of ones, no bias; state_dict loads from and into nn.RMSNorm; the
    same output as nn.RMSNorm with the same weight (default eps)."""
    _module_case(RMSNorm, 16)
    _module_case(RMSNorm, [6], eps=1e-3, seed=622)


# --------------------------------------------------------------------------------------------
# dyt

def _dyt_case(dyt, x, alpha, w, b):
    what = (f"dyt(x of shape {list(x.shape)} in {str(x.dtype).replace('torch.', '')}, alpha="
            f"{alpha if not isinstance(alpha, torch.Tensor) else 'a tensor'}, weight, bias)")
    xs = x.clone()
    out = call(dyt, xs, alpha, w, b, _what=what)
    if not torch.equal(xs, x):
        fail(f"{what} modified x in place.", "compute a new tensor: weight * torch.tanh(alpha * x) + bias.")
    if not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != x.dtype:
        fail(f"{what} returned {type(out).__name__}"
             + (f" of shape {tuple(out.shape)} and dtype {out.dtype}" if isinstance(out, torch.Tensor) else "")
             + f"; expected x's shape {tuple(x.shape)} and dtype {x.dtype}.",
             "return weight * torch.tanh(alpha * x) + bias.")
    a = float(alpha)
    x64, w64, b64 = x.double(), w.double(), b.double()
    ref = w64 * torch.tanh(a * x64) + b64
    if _close(out, ref, x.dtype):
        return
    for mistake, make in (
            ("alpha multiplies outside the tanh: weight * alpha * tanh(x) + bias.", lambda: w64 * a * torch.tanh(x64) + b64),
            ("alpha is ignored: weight * tanh(x) + bias.", lambda: w64 * torch.tanh(x64) + b64),
            ("the bias is inside the tanh: weight * tanh(alpha * x + bias).", lambda: w64 * torch.tanh(a * x64 + b64)),
            ("the weight is inside the tanh: tanh(alpha * weight * x) + bias.", lambda: torch.tanh(a * w64 * x64) + b64),
            ("the bias is left out.", lambda: w64 * torch.tanh(a * x64)),
            ("alpha divides instead of multiplying: tanh(x / alpha).", lambda: w64 * torch.tanh(x64 / a) + b64)):
        if _close(out, make(), x.dtype):
            fail(f"{what}: {mistake}", "DyT(x) = weight * torch.tanh(alpha * x) + bias: alpha inside, "
                 "weight and bias outside the tanh.")
    fail(f"{what} differs from weight * tanh(alpha * x) + bias (largest difference "
         f"{(out.detach().double() - ref).abs().max().item():.3g}).", "return weight * torch.tanh(alpha * x) + bias.")


@check
def check_dyt(dyt) -> None:
    """weight * tanh(alpha * x) + bias for alphas 0.5, 2 and 0.1, float64 and float32."""
    g = generator(650)
    for alpha, dtype, shape in ((0.5, torch.float64, (6, 8)), (2.0, torch.float32, (4, 3, 5)), (0.1, torch.float64, (5, 4))):
        d = shape[-1]
        x = (3 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
        w = (1 + 0.5 * torch.randn(d, generator=g, dtype=torch.float64)).to(dtype)
        b = torch.randn(d, generator=g, dtype=torch.float64).to(dtype)
        _dyt_case(dyt, x, alpha, w, b)


# --------------------------------------------------------------------------------------------
# the questions: the format here; the answers from the student's run in grader.hidden

def _placement(answer, name: str) -> str:
    if not isinstance(answer, str) or answer.strip().lower() not in ("pre", "post"):
        fail(f"{name} is {answer!r}; expected the string 'pre' or 'post'.",
             f'assign one of the two strings, e.g. {name} = "post".')
    return answer.strip().lower()


@check
def check_larger_at_output_format(larger_at_output) -> None:
    """The string 'pre' or 'post'."""
    _placement(larger_at_output, "larger_at_output")


def _positive(value, name: str) -> float:
    v = as_number(value, name)
    if v <= 0:
        fail(f"{name} = {v:g} is not positive; a ratio of two norms is.", f"divide one positive number by another for {name}.")
    return v


@check
def check_output_grad_factor_format(output_grad_factor) -> None:
    """A positive number."""
    _positive(output_grad_factor, "output_grad_factor")


@check
def check_stream_growth_format(stream_growth) -> None:
    """A positive number."""
    _positive(stream_growth, "stream_growth")
