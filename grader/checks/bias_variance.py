"""Visible checks for assignment 01-bias-variance: ``mse_cost``, ``objective``,
``sample_predictions``, ``bias_variance_decomposition`` and the format of the questions (the hidden
checks and the questions' answers are in ``grader.hidden.bias_variance``).

The references are formulas evaluated here in float64 and properties of random draws, never a
working solution. ``sample_predictions`` is checked through a recording ``fit`` (what it was
called with, and what its predictors returned) and by statistics of the noise it drew, so any
correct way of drawing the noise passes (one ``torch.randn`` per training set or one for all,
``torch.normal``, float32 or float64).
"""
from __future__ import annotations

import math

import torch

from ._common import call, check, expect_raises, fail, forbid_builtins, generator

_BUILTINS = ("mse_loss",)
_HOW = "((y_hat - y) ** 2).mean() after checking that the shapes match"
_SIGMAS = 6.0  # statistical checks: a correct answer fails about 2 times in a billion


def _no_builtin(exercise: str):
    return forbid_builtins(exercise, _BUILTINS, _HOW)


def _close(a: float, b: float, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def _scalar_tensor(out, what: str, dtype: torch.dtype | None = None) -> float:
    """The value of a 0-dim tensor returned by ``what``; fail on anything else."""
    if not isinstance(out, torch.Tensor):
        fail(f"{what} returned {type(out).__name__}, not a tensor.",
             "return the tensor itself (no .item() or float(...)): autograd needs it to backpropagate.")
    if out.dim() != 0:
        fail(f"{what} returned a tensor of shape {tuple(out.shape)}; the cost is one number, a 0-dim tensor.",
             "average over every element with .mean() (no dim argument).")
    if dtype is not None and out.dtype != dtype:
        fail(f"{what} returned dtype {out.dtype} for {dtype} inputs.",
             "compute in the inputs' dtype (no .float() or torch.tensor(...) conversions).")
    return out.detach().double().item()


# --------------------------------------------------------------------------- mse_cost

@check
def check_mse_cost(mse_cost) -> None:
    """The mean of the squared errors over all samples, 0-dim, differentiable, dtype kept."""
    g = generator(0)
    for dtype, shape in ((torch.float32, (50,)), (torch.float64, (40, 1)), (torch.float32, (6, 5))):
        y_hat = torch.randn(shape, generator=g, dtype=dtype)
        y = torch.randn(shape, generator=g, dtype=dtype)
        a, b = y_hat.clone().requires_grad_(True), y.clone()
        what = f"mse_cost(y_hat, y) for two {str(dtype).replace('torch.', '')} tensors of shape {shape}"
        with _no_builtin("mse_cost"):
            out = call(mse_cost, a, b, _what=what)
        if isinstance(out, torch.Tensor) and out.dim() == 1 and out.numel() == y.numel():
            fail(f"{what} returned {out.numel()} values, one per sample: that is the loss of each sample, "
                 "not the cost.",
                 "the cost is the mean of the per-sample losses: add .mean().")
        value = _scalar_tensor(out, what, dtype)
        diff = y_hat.double() - y.double()
        n = diff.numel()
        expected = (diff ** 2).mean().item()
        if not torch.equal(b, y) or not torch.equal(a.detach(), y_hat):
            fail(f"{what} modified its inputs in place.", "compute a new tensor: (y_hat - y) ** 2.")
        if not _close(value, expected):
            mistakes = (
                ((diff ** 2).sum().item(),
                 f"{what} returned the sum of the squared errors ({value:.4g}) where the mean is meant "
                 f"({expected:.4g}): a sum grows with the number of samples N, and so would every "
                 "gradient step.",
                 "divide by the number of elements: .mean() instead of .sum()."),
                (math.sqrt(expected),
                 f"{what} returned the root of the mean squared error (RMSE), not the MSE.",
                 "drop the square root: the cost is mean((y_hat - y) ** 2)."),
                (diff.abs().mean().item(),
                 f"{what} returned the mean absolute error, not the mean squared error.",
                 "square the differences instead of taking their absolute value."),
                (expected / 2,
                 f"{what} returned half the mean squared error.",
                 "no factor 1/2 in this course's cost: mean((y_hat - y) ** 2)."),
                ((diff ** 2).sum().item() / max(n - 1, 1),
                 f"{what} divided the sum of squared errors by N - 1.",
                 "the cost is an average over the N samples: divide by N (.mean())."),
            )
            for candidate, mistake, fix in mistakes:
                if _close(value, candidate):
                    fail(mistake, fix)
            fail(f"{what} returned {value:.6g}; expected mean((y_hat - y) ** 2) = {expected:.6g}.",
                 "square the element-wise differences and average over all of them.")
        if not out.requires_grad:
            fail(f"{what} does not track gradients: autograd cannot differentiate the cost.",
                 "compute it from y_hat with tensor operations (no .item(), .detach(), .data or numpy).")
        out.backward()
        grad = a.grad
        if grad is None or not torch.allclose(grad.double(), 2 * diff / n, rtol=1e-4, atol=1e-7):
            fail(f"The gradient of {what} with respect to y_hat is not 2 (y_hat - y) / N.",
                 "return ((y_hat - y) ** 2).mean(), built from y_hat without detaching it.")


@check
def check_mse_cost_shapes(mse_cost) -> None:
    """Shapes must match exactly: (N, 1) against (N,) raises ValueError instead of broadcasting."""
    g = generator(1)
    n = 6
    col = torch.randn(n, 1, generator=g, dtype=torch.float64)
    flat = torch.randn(n, generator=g, dtype=torch.float64)
    for a, b in ((col, flat), (flat, col)):
        what = f"mse_cost(y_hat of shape {tuple(a.shape)}, y of shape {tuple(b.shape)})"
        try:
            with _no_builtin("mse_cost"):
                out = mse_cost(a.clone(), b.clone())
        except ValueError:
            continue
        except NotImplementedError:
            fail("mse_cost is not implemented yet.", "replace `raise NotImplementedError()` with your code.")
        except AssertionError:
            raise
        except Exception as exc:
            fail(f"{what} raised {type(exc).__name__}: {exc}; expected ValueError.",
                 "compare y_hat.shape with y.shape first and raise ValueError with both shapes in the message.")
        value = out.detach().double().item() if isinstance(out, torch.Tensor) and out.numel() == 1 else None
        broadcast = ((a - b) ** 2).mean().item()
        flattened = ((a.reshape(-1) - b.reshape(-1)) ** 2).mean().item()
        if value is not None and _close(value, broadcast):
            fail(f"{what} returned {value:.4g}: y_hat - y silently broadcast to shape ({n}, {n}), every "
                 f"prediction minus every target, whose mean square has nothing to do with the cost "
                 f"({flattened:.4g} if the pairs were matched).",
                 "refuse mismatched shapes: `if y_hat.shape != y.shape: raise ValueError(...)`, naming both shapes.")
        if value is not None and _close(value, flattened):
            fail(f"{what} reshaped the inputs to make them agree and returned a number. The contract asks for "
                 "ValueError: a shape mismatch usually means a bug upstream that must be seen.",
                 "do not squeeze/flatten silently: `if y_hat.shape != y.shape: raise ValueError(...)`.")
        fail(f"{what} returned normally; expected ValueError for mismatched shapes.",
             "`if y_hat.shape != y.shape: raise ValueError(...)` before computing anything.")
    expect_raises(
        mse_cost, torch.zeros(5), torch.zeros(4),
        mistake="mse_cost accepted predictions and targets of different lengths.",
        fix="raise ValueError when y_hat.shape != y.shape.",
    )
    same = call(mse_cost, col, col + 1.0, _what="mse_cost(y_hat, y) for two (6, 1) tensors")
    if not isinstance(same, torch.Tensor):
        fail("mse_cost of two (6, 1) tensors did not return a tensor.", "equal shapes are fine: compute the cost.")


# --------------------------------------------------------------------------- objective

_CASCADE_COST = ("(objective calls your mse_cost: if the mse_cost tests fail too, fix mse_cost first.)")


def _objective_probe(seed: int):
    g = generator(seed)
    y_hat = torch.randn(8, generator=g, dtype=torch.float64)
    y = torch.randn(8, generator=g, dtype=torch.float64)
    params = [torch.randn(2, 3, generator=g, dtype=torch.float64),
              torch.randn(2, generator=g, dtype=torch.float64),
              torch.randn(4, 1, generator=g, dtype=torch.float64)]
    return y_hat, y, params


def _objective_value(objective, y_hat, y, params, l1, l2, as_iterator=False):
    leaves = [p.clone().requires_grad_(True) for p in params]
    given = (p for p in leaves) if as_iterator else leaves
    kind = "a generator of 3 tensors" if as_iterator else "a list of 3 tensors"
    what = f"objective(y_hat, y, params={kind}, l1={l1}, l2={l2})"
    with _no_builtin("objective"):
        out = call(objective, y_hat.clone(), y.clone(), given, l1=l1, l2=l2, _what=what)
    value = _scalar_tensor(out, what)
    return out, value, leaves, what


@check
def check_objective(objective) -> None:
    """Cost + l1 * sum|w| + l2 * sum w² over every tensor of params; gradients reach the params."""
    y_hat, y, params = _objective_probe(2)
    cost = ((y_hat - y) ** 2).mean().item()
    sse = ((y_hat - y) ** 2).sum().item()
    l1_all = sum(p.abs().sum().item() for p in params)
    l2_all = sum((p ** 2).sum().item() for p in params)
    signed = sum(p.sum().item() for p in params)
    first_l1, first_l2 = params[0].abs().sum().item(), (params[0] ** 2).sum().item()
    last_l1, last_l2 = params[-1].abs().sum().item(), (params[-1] ** 2).sum().item()
    mean_l1 = sum(p.abs().mean().item() for p in params)
    mean_l2 = sum((p ** 2).mean().item() for p in params)
    for l1, l2 in ((0.0, 0.0), (0.3, 0.0), (0.0, 0.2), (0.3, 0.2)):
        out, value, leaves, what = _objective_value(objective, y_hat, y, params, l1, l2)
        expected = cost + l1 * l1_all + l2 * l2_all
        if _close(value, expected):
            continue
        candidates = (
            (cost + l2 * l2_all, "dropped the L1 penalty: l1 * sum(|w|) is missing",
             "add l1 * w.abs().sum() for every tensor w in params."),
            (cost + l1 * l1_all, "dropped the L2 penalty: l2 * sum(w ** 2) is missing",
             "add l2 * (w ** 2).sum() for every tensor w in params."),
            (cost, "returned the cost alone: both penalties are missing",
             "Obj = Cost + Regularisation: add l1 * sum(|w|) + l2 * sum(w ** 2) over params."),
            (cost + l1 * l1_all + l2 * l2_all / 2, "halved the L2 penalty (l2 / 2 * sum(w ** 2))",
             "this course's L2 term has no factor 1/2: l2 * sum(w ** 2) (PyTorch's weight_decay is the "
             "one with the 1/2)."),
            (cost + l1 * l1_all + l2 * math.sqrt(l2_all), "used the norm ||w|| instead of its square",
             "the L2 penalty is the sum of squares, l2 * (w ** 2).sum(), without a square root."),
            (cost + l1 * signed + l2 * l2_all, "summed the weights without their absolute values in the L1 term",
             "L1 is sum(|w|): use w.abs().sum(), otherwise positive and negative weights cancel."),
            (cost + l1 * first_l1 + l2 * first_l2, "penalised only the first tensor of params",
             "loop over every tensor in params and add up all the penalties (return after the loop)."),
            (cost + l1 * last_l1 + l2 * last_l2, "penalised only the last tensor of params",
             "accumulate the penalties over the loop (total = total + ...), do not overwrite them."),
            (cost + l1 * mean_l1 + l2 * mean_l2, "averaged |w| and w ** 2 within each tensor instead of summing",
             "the penalties are sums over every element: .sum(), not .mean()."),
            (sse + l1 * l1_all + l2 * l2_all, "used the sum of squared errors instead of the cost (their mean)",
             "start from mse_cost(y_hat, y), the mean. " + _CASCADE_COST),
        )
        for candidate, mistake, fix in candidates:
            if not _close(candidate, expected) and _close(value, candidate):
                fail(f"{what} {mistake}.", fix, detail=f"(returned {value:.6g}; expected {expected:.6g})")
        fail(f"{what} returned {value:.6g}; expected mse_cost + l1 * sum(|w|) + l2 * sum(w ** 2) = {expected:.6g}.",
             "add both penalties, summed over every element of every tensor in params.",
             detail=_CASCADE_COST)
    # params may be a one-shot iterator such as model.parameters()
    out, value, leaves, what = _objective_value(objective, y_hat, y, params, 0.3, 0.2, as_iterator=True)
    expected = cost + 0.3 * l1_all + 0.2 * l2_all
    if not _close(value, expected):
        if _close(value, cost + 0.3 * l1_all) or _close(value, cost + 0.2 * l2_all) or _close(value, cost):
            fail(f"{what} lost a penalty when params is a generator: it was iterated twice, and a "
                 "generator (like model.parameters()) is empty the second time.",
                 "go through params once and add both penalties in the same loop (or start with "
                 "params = list(params)).", detail=f"(returned {value:.6g}; expected {expected:.6g})")
        fail(f"{what} returned {value:.6g}; expected {expected:.6g} (as with a list).",
             "accept any iterable: loop over params once.")
    if not out.requires_grad:
        fail(f"{what} does not track gradients: no gradient reaches the parameters, so the penalty would "
             "not change training at all (computed with .item(), .detach(), .data or float(...)?).",
             "add l1 * w.abs().sum() + l2 * (w ** 2).sum() as tensors built from w.")
    out.backward()
    for k, (leaf, p) in enumerate(zip(leaves, params)):
        want = 0.3 * torch.sign(p) + 2 * 0.2 * p
        if leaf.grad is None:
            fail(f"No gradient reached params[{k}]: the penalty was computed on a detached copy "
                 "(.item(), .detach(), .data, float(...)) or left out.",
                 "add l1 * w.abs().sum() + l2 * (w ** 2).sum() as tensors, so that the optimiser sees them.")
        if not torch.allclose(leaf.grad.double(), want, rtol=1e-5, atol=1e-8):
            fail(f"The gradient of {what} with respect to params[{k}] is not l1 * sign(w) + 2 * l2 * w.",
                 "the penalty must be exactly l1 * sum(|w|) + l2 * sum(w ** 2).")


# --------------------------------------------------------------------------- sample_predictions

def _true_f(x: torch.Tensor) -> torch.Tensor:
    """A probe true function that is not the seed's line, so that f is seen to be used."""
    return 1.5 * x - 0.3 + x ** 2


class _RecordingFit:
    """A ``fit`` that records its arguments and returns a least-squares line as predictor
    (output shape (M, 1) for (M, 1) inputs: the student must flatten it)."""

    def __init__(self):
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.predicted: list[torch.Tensor] = []

    def __call__(self, x, y):
        if not isinstance(y, torch.Tensor):
            fail(f"fit was called with labels of type {type(y).__name__}, not a tensor.",
                 "pass y = f(x_train) + noise_std * noise, a tensor.")
        self.calls.append((x.detach().clone(), y.detach().clone()))
        if y.shape != x.shape:
            # keep going so the check can name the mistake from the recorded shapes
            def predictor(x_new):
                return torch.zeros(x_new.shape, dtype=torch.float64)
            return predictor
        xd, yd = x.detach().double(), y.detach().double()
        xc = xd - xd.mean()
        slope = (xc * (yd - yd.mean())).sum() / (xc ** 2).sum()
        intercept = yd.mean() - slope * xd.mean()

        def predictor(x_new):
            out = intercept + slope * x_new.double()
            self.predicted.append(out.detach().reshape(-1).clone())
            return out

        return predictor


_X_TRAIN = torch.linspace(-1, 1, 10, dtype=torch.float64).unsqueeze(1)
_X_EVAL = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64).unsqueeze(1)


def _run(sample_predictions, noise_std, n_datasets, gen, what_extra=""):
    fit = _RecordingFit()
    what = (f"sample_predictions(fit, f, x_train (10, 1), x_eval (7, 1), noise_std={noise_std}, "
            f"n_datasets={n_datasets}{what_extra})")
    out = call(sample_predictions, fit, _true_f, _X_TRAIN.clone(), _X_EVAL.clone(), noise_std, n_datasets,
               generator=gen, _what=what)
    return fit, out, what


def _structure(fit: _RecordingFit, out, what: str, n_datasets: int) -> torch.Tensor:
    """Check calls, shapes and rows; return the residuals y - f(x_train), shape (n_datasets, N)."""
    n, m = _X_TRAIN.shape[0], _X_EVAL.shape[0]
    if len(fit.calls) != n_datasets:
        fail(f"{what} called fit {len(fit.calls)} times; expected once per training set, {n_datasets} times.",
             "loop n_datasets times: draw a training set, call fit(x_train, y), predict on x_eval.")
    for x, y in fit.calls:
        if x.shape != _X_TRAIN.shape or not torch.allclose(x.double(), _X_TRAIN):
            fail(f"{what} called fit with inputs of shape {tuple(x.shape)} that are not x_train.",
                 "every training set has the same inputs: call fit(x_train, y).")
        if y.shape != _X_TRAIN.shape:
            if y.shape == (n, n):
                fail(f"{what} called fit with labels of shape {tuple(y.shape)}: noise of shape ({n},) was added "
                     f"to f(x_train) of shape ({n}, 1), which broadcast to ({n}, {n}).",
                     "draw the noise with the shape of f(x_train): torch.randn(f(x_train).shape, ...).")
            fail(f"{what} called fit with labels of shape {tuple(y.shape)}; expected the shape of f(x_train), "
                 f"{tuple(_X_TRAIN.shape)}.",
                 "y = f(x_train) + noise_std * noise, with noise of the same shape as f(x_train).")
    if not isinstance(out, torch.Tensor):
        fail(f"{what} returned {type(out).__name__}, not a tensor.",
             "stack the rows: torch.stack([predictor(x_eval).reshape(-1) for ...]).")
    if tuple(out.shape) != (n_datasets, m):
        if tuple(out.shape) == (n_datasets, m, 1):
            hint = "each predictor returned shape (7, 1): flatten it with .reshape(-1) before stacking."
        elif tuple(out.shape) == (m, n_datasets):
            hint = "the result is transposed: one row per training set, stack along dim 0."
        else:
            hint = "one row per training set, one column per evaluation input."
        fail(f"{what} returned shape {tuple(out.shape)}; expected (n_datasets, len(x_eval)) = ({n_datasets}, {m}).", hint)
    if len(fit.predicted) < n_datasets:
        fail(f"{what} did not evaluate every fitted predictor on x_eval.",
             "row d is predictor_d(x_eval), the model of the d-th training set.")
    expected = torch.stack(fit.predicted[-n_datasets:]) if len(fit.predicted) == n_datasets else None
    if expected is None:
        # predictors called more than once (e.g. also on x_train): match the x_eval calls
        evals = [p for p in fit.predicted if p.numel() == m]
        expected = torch.stack(evals[-n_datasets:]) if len(evals) >= n_datasets else None
    if expected is None or not torch.allclose(out.detach().double(), expected, rtol=1e-5, atol=1e-6):
        fail(f"The rows returned by {what} are not the predictions of the fitted models on x_eval, in order.",
             "row d must be predictor_d(x_eval), where predictor_d = fit(x_train, y_d) for the d-th training set.")
    clean = _true_f(_X_TRAIN)
    return torch.stack([(y.double() - clean).reshape(-1) for _, y in fit.calls])


def _diagnose_same(res: torch.Tensor, what: str) -> None:
    if res.abs().max().item() == 0:
        fail(f"{what} fitted every model to f(x_train) itself: no noise was added.",
             "add noise_std * torch.randn(f(x_train).shape, generator=generator, ...) to every training set.")
    if all(torch.equal(res[0], r) for r in res[1:]):
        fail(f"{what} used the same noise for every training set: all {len(res)} training sets are identical, "
             "so every fitted model is the same and the variance across training sets is 0.",
             "draw new noise inside the loop, once per training set (or one (n_datasets, N) draw, a row each).")
    spread = res.std(dim=1)
    if (spread == 0).all():
        fail(f"{what} added one noise value per training set to all its points instead of independent noise "
             "per point.",
             "draw noise of the shape of f(x_train), not a single number.")


@check
def check_sample_predictions(sample_predictions) -> None:
    """fit is called n_datasets times on x_train with labels of f(x_train)'s shape; the rows are the
    predictors' outputs on x_eval in order; the training sets differ."""
    for n_datasets, seed in ((5, 10), (1, 11)):
        fit, out, what = _run(sample_predictions, 0.5, n_datasets, generator(seed), ", generator=g")
        res = _structure(fit, out, what, n_datasets)
        if n_datasets > 1:
            _diagnose_same(res, what)


# --------------------------------------------------------------------------- decomposition

_KEYS = ("bias2", "variance", "noise", "expected_error")


def _decomposition_probe(dtype=torch.float64, seed=20):
    g = generator(seed)
    f_true = torch.randn(6, generator=g, dtype=torch.float64)
    offset = torch.tensor([0.4, -0.3, 0.8, 0.1, -0.6, 0.5], dtype=torch.float64)
    preds = f_true + offset + 0.7 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    return preds.to(dtype), f_true.to(dtype)


def _terms(decomposition, preds, f_true, noise_var, what):
    out = call(decomposition, preds.clone(), f_true.clone(), noise_var, _what=what)
    if not isinstance(out, dict):
        fail(f"{what} returned {type(out).__name__}, not a dict.",
             'return {"bias2": ..., "variance": ..., "noise": ..., "expected_error": ...}.')
    missing = [k for k in _KEYS if k not in out]
    if missing:
        fail(f"{what} returned a dict without the keys {missing} (it has {sorted(map(str, out))}).",
             'use exactly the keys "bias2", "variance", "noise" and "expected_error".')
    for k in _KEYS:
        if isinstance(out[k], torch.Tensor) or not isinstance(out[k], (float, int)) or isinstance(out[k], bool):
            fail(f'{what}["{k}"] is a {type(out[k]).__name__}, not a Python float.',
                 "convert each 0-dim tensor with .item() (and noise_var with float(...)).")
    return {k: float(out[k]) for k in _KEYS}


@check
def check_bias_variance_decomposition(bias_variance_decomposition) -> None:
    """bias² of the average prediction, population variance across datasets, noise, their sum."""
    for dtype in (torch.float64, torch.float32):
        preds, f_true = _decomposition_probe(dtype)
        p, f = preds.double(), f_true.double()
        mean_pred = p.mean(dim=0)
        bias2 = ((mean_pred - f) ** 2).mean().item()
        variance = ((p - mean_pred) ** 2).mean(dim=0).mean().item()
        noise = 0.25
        what = f"bias_variance_decomposition(preds of shape (4, 6), f_true of shape (6,), noise_var=0.25) [{dtype}]"
        got = _terms(bias_variance_decomposition, preds, f_true, noise, what)
        rtol = 1e-5 if dtype == torch.float64 else 1e-4
        ok = lambda a, b: _close(a, b, rtol=rtol, atol=1e-6)  # noqa: E731
        if not ok(got["bias2"], bias2):
            mse_all = ((p - f) ** 2).mean().item()
            known = (
                (mse_all, "bias2 is the mean squared error of all the predictions, which is bias² + variance: "
                          "it mixes the variance in",
                 "first average the predictions over the training sets (dim 0), then compare that average "
                 "with f_true: ((preds.mean(dim=0) - f_true) ** 2).mean()."),
                ((mean_pred - f).mean().item(), "bias2 is the average gap without the square (the seed's "
                                                "formula forgets it): positive and negative gaps cancel",
                 "square the gap before averaging over the points: ((preds.mean(0) - f_true) ** 2).mean()."),
                ((mean_pred - f).abs().mean().item(), "bias2 is the mean absolute gap, not the squared one",
                 "square the gap: ((preds.mean(0) - f_true) ** 2).mean()."),
                ((mean_pred - f).mean().item() ** 2, "bias2 squares the average gap over the points instead of "
                                                     "averaging the squared gaps",
                 "square point by point, then average: ((preds.mean(0) - f_true) ** 2).mean()."),
                (math.sqrt(bias2), "bias2 is the root of the mean squared gap (the bias, not bias²)",
                 "drop the square root."),
            )
            for value, mistake, fix in known:
                if ok(got["bias2"], value):
                    fail(f'{what}: {mistake} (got {got["bias2"]:.5g}, expected {bias2:.5g}).', fix)
            fail(f'{what}["bias2"] is {got["bias2"]:.6g}; expected {bias2:.6g}.',
                 "bias2 = ((preds.mean(dim=0) - f_true) ** 2).mean().")
        if not ok(got["variance"], variance):
            known = (
                (p.var(dim=1, correction=0).mean().item(), "the variance is taken across the points (dim 1) "
                 "instead of across the training sets (dim 0): that is how much one model's predictions change "
                 "with x, not how much the prediction at a fixed x changes from one training set to another",
                 "take the variance over dim 0 (the datasets) at each point, then average over the points."),
                (p.var(dim=1, correction=1).mean().item(), "the variance is taken across the points (dim 1) "
                 "instead of across the training sets (dim 0)",
                 "take the variance over dim 0 (the datasets) at each point, then average over the points."),
                (p.var(dim=0, correction=1).mean().item(), "the variance divides by n_datasets - 1 (torch.var's "
                 "default); the contract uses the population variance, dividing by n_datasets, so that "
                 "bias² + variance is exactly the mean squared error of the predictions",
                 "use preds.var(dim=0, unbiased=False) (or correction=0), or ((preds - mean) ** 2).mean(dim=0)."),
                (p.var(correction=0).item(), "the variance is taken over all predictions at once, so it "
                 "includes how the average prediction changes with x",
                 "take the variance over dim 0 (the datasets) at each point, then average over the points."),
                (p.std(dim=0, correction=0).mean().item(), "the standard deviation was averaged, not the variance",
                 "average the variances (squared deviations), without the square root."),
            )
            for value, mistake, fix in known:
                if ok(got["variance"], value):
                    fail(f'{what}: {mistake} (got {got["variance"]:.5g}, expected {variance:.5g}).', fix)
            fail(f'{what}["variance"] is {got["variance"]:.6g}; expected {variance:.6g}.',
                 "variance = ((preds - preds.mean(dim=0)) ** 2).mean(dim=0).mean().")
        if not ok(got["noise"], noise):
            fail(f'{what}["noise"] is {got["noise"]:.6g}; expected noise_var = {noise}.',
                 "the noise term is noise_var itself (already a variance: no square, no root).")
        total = bias2 + variance + noise
        if not ok(got["expected_error"], total):
            if ok(got["expected_error"], bias2 + variance):
                fail(f'{what}["expected_error"] leaves out the noise.',
                     "expected_error = bias2 + variance + noise: no model can remove the noise.")
            fail(f'{what}["expected_error"] is {got["expected_error"]:.6g}; expected bias2 + variance + noise '
                 f"= {total:.6g}.", "return the sum of the three terms.")


# --------------------------------------------------------------------------- the question

_OPTIONS = ("a", "b", "c", "d")


def _letter(answer) -> str:
    if not isinstance(answer, str):
        fail(f"variance_means is {answer!r}, not a string.", 'assign one letter as a string, e.g. variance_means = "a".')
    return answer.strip().strip("().").strip().lower()


@check
def check_variance_option(variance_means) -> None:
    """The answer is one of the letters a, b, c, d."""
    if _letter(variance_means) not in _OPTIONS:
        fail(f"variance_means is {variance_means!r}; expected one of the letters a, b, c, d.",
             'assign the letter of your choice, e.g. variance_means = "a".')


# --------------------------------------------------------------------------- the questions on the run

def _number(answer, what: str, positive: bool = False) -> float:
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) and not (
            isinstance(answer, torch.Tensor) and answer.numel() == 1):
        fail(f"{what} is {answer!r}, not a number.", f"assign a number read from your run, e.g. {what} = 0.01.")
    value = float(answer)
    if not math.isfinite(value) or (positive and value <= 0):
        fail(f"{what} is {answer!r}; expected a {'positive ' if positive else ''}finite number.",
             f"assign a number read from your run, e.g. {what} = 0.01.")
    return value


@check
def check_best_lambda_format(best_lambda) -> None:
    """A positive number."""
    _number(best_lambda, "best_lambda", positive=True)


@check
def check_variance_removed_format(variance_removed) -> None:
    """A number."""
    _number(variance_removed, "variance_removed")
