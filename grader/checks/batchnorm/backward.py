"""Checks of ``batch_norm_backward`` (by hand, against autograd) and ``BatchNormFunction``
(a ``torch.autograd.Function``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._common import _StudentError, call, check, fail, forbid_builtins, generator
from ._shared import _affine, _BUILTINS, _diagnose_train_output, _no_builtin, _probe


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


