"""Hidden checks for assignment 01-bias-variance (visible ones: ``grader.checks.bias_variance``),
and the answers of its questions: ``variance_means`` and the two questions answered from the
student's own run, which are recomputed from the run's numbers passed to the check, never
compared with a fixed value.
"""
from __future__ import annotations

import math

import torch

from ..checks._common import check, expect_raises, fail, generator
from ..checks.bias_variance import (
    _SIGMAS, _decomposition_probe, _diagnose_same, _letter, _objective_probe, _run, _structure,
    _terms, _number,
)


@check
def check_objective_validation(objective) -> None:
    """Negative coefficients and mismatched shapes raise ValueError."""
    y_hat, y, params = _objective_probe(3)
    for kwargs in ({"l1": -0.1}, {"l2": -0.1}, {"l1": 0.2, "l2": -1e-3}):
        name, val = next((k, v) for k, v in kwargs.items() if v < 0)
        expect_raises(
            objective, y_hat, y, list(params), **kwargs,
            mistake=f"objective accepted {name}={val}: a negative coefficient rewards large weights, so "
                    "minimising the objective would push them to infinity.",
            fix="raise ValueError when l1 < 0 or l2 < 0, saying which value was given.",
        )
    expect_raises(
        objective, torch.zeros(5, 1, dtype=torch.float64), torch.zeros(5, dtype=torch.float64), list(params),
        l2=0.1,
        mistake="objective accepted y_hat of shape (5, 1) with y of shape (5,): the cost broadcast to (5, 5).",
        fix="compute the cost with your mse_cost, which refuses mismatched shapes.",
    )


@check
def check_sample_predictions_randomness(sample_predictions) -> None:
    """Reproducible from the generator, fresh noise on every call, noise of mean 0 and std noise_std."""
    runs = []
    for global_seed in (101, 202):
        torch.manual_seed(global_seed)  # @check restores the global RNG afterwards
        fit, out, what = _run(sample_predictions, 0.5, 4, generator(12), ", generator=seeded alike")
        _structure(fit, out, what, 4)
        runs.append(out.detach())
    if not torch.equal(runs[0], runs[1]):
        fail("Two generators seeded alike gave different training sets: sample_predictions ignores its "
             "`generator` argument (it draws from the global random generator).",
             "pass generator=generator to every random call: torch.randn(shape, generator=generator, ...).")
    fit_a, a, what = _run(sample_predictions, 0.5, 3, None, ", generator=None")
    fit_b, b, _ = _run(sample_predictions, 0.5, 3, None, ", generator=None")
    if torch.equal(a, b):
        fail("Two calls without a generator returned the same predictions: the random generator is "
             "re-seeded inside sample_predictions (or the noise is cached).",
             "never call torch.manual_seed inside the function; draw from the global generator when "
             "generator is None.")
    g = generator(13)
    _, c, _ = _run(sample_predictions, 0.5, 3, g, ", generator=g")
    _, d, _ = _run(sample_predictions, 0.5, 3, g, ", generator=g (second call)")
    if torch.equal(c, d):
        fail("Two calls with the same generator object gave the same training sets: the generator is "
             "re-seeded or copied inside sample_predictions.",
             "draw from the generator you were given; its state must advance between calls.")
    # statistics of the noise: 400 training sets of 10 points, noise_std = 2
    sigma, n_datasets = 2.0, 400
    fit, out, what = _run(sample_predictions, sigma, n_datasets, generator(14), ", generator=g")
    res = _structure(fit, out, what, n_datasets)
    _diagnose_same(res, what)
    n = res.numel()
    mean = res.mean().item()
    rms = res.pow(2).mean().sqrt().item()
    mean_tol = _SIGMAS * sigma / math.sqrt(n)
    ratio = rms / sigma
    ratio_tol = _SIGMAS / math.sqrt(2 * n)  # sd of the sample rms / sigma is about 1 / sqrt(2n)
    if abs(mean) > mean_tol:
        if abs(mean - sigma / 2) < 0.2 * sigma:
            fail(f"The noise in the training sets of {what} has mean {mean:.3f}, about noise_std / 2: "
                 "it looks uniform on [0, noise_std) (torch.rand) rather than normal with mean 0.",
                 "draw standard normal noise with torch.randn (or torch.normal(0.0, noise_std, ...)).")
        fail(f"The noise in the training sets of {what} has mean {mean:.3f}; expected 0 "
             f"(within {mean_tol:.3f} over {n} values).",
             "y = f(x_train) + noise_std * torch.randn(...): the noise has mean 0.")
    if abs(ratio - 1) > ratio_tol:
        known = ((sigma ** 2, "noise_std ** 2, the variance, was used as the standard deviation",
                  "multiply the standard normal draws by noise_std itself."),
                 (1.0, "the noise was not scaled by noise_std (standard deviation 1)",
                  "multiply the standard normal draws by noise_std."),
                 (math.sqrt(sigma), "the noise was scaled by sqrt(noise_std)",
                  "noise_std is already a standard deviation: multiply by it directly."))
        for value, mistake, fix in known:
            if abs(rms - value) < 0.1 * value:
                fail(f"The noise in the training sets of {what} has standard deviation {rms:.3f} for "
                     f"noise_std={sigma}: {mistake}.", fix)
        fail(f"The noise in the training sets of {what} has standard deviation {rms:.3f}; expected "
             f"noise_std = {sigma} (within {ratio_tol * sigma:.3f}).",
             "y = f(x_train) + noise_std * torch.randn(f(x_train).shape, ...).")


@check
def check_bias_variance_decomposition_validation(bias_variance_decomposition) -> None:
    """Mismatched shapes raise ValueError; the inputs are not modified; one dataset has variance 0."""
    preds, f_true = _decomposition_probe(seed=21)
    for bad_f, why in ((f_true.unsqueeze(1), "of shape (6, 1) broadcast against preds (4, 6) to (6, 6)"),
                       (f_true[:5], "of 5 values for 6 points")):
        expect_raises(
            bias_variance_decomposition, preds, bad_f, 0.25,
            mistake=f"bias_variance_decomposition accepted an f_true {why}.",
            fix="check `f_true.shape == preds.shape[1:]` and raise ValueError with both shapes otherwise.",
        )
    expect_raises(
        bias_variance_decomposition, preds[0], f_true, 0.25,
        mistake="bias_variance_decomposition accepted 1-dimensional preds of shape (6,).",
        fix="preds must have shape (n_datasets, n_points): raise ValueError when preds.dim() != 2.",
    )
    p, f = preds.clone(), f_true.clone()
    one = _terms(bias_variance_decomposition, p[:1], f, 0.1, "bias_variance_decomposition(preds of shape (1, 6), ...)")
    if not torch.equal(p, preds) or not torch.equal(f, f_true):
        fail("bias_variance_decomposition modified its inputs in place.",
             "compute new tensors (preds - mean), never preds -= ... .")
    if abs(one["variance"]) > 1e-12:
        fail("With a single training set the variance across training sets must be 0; got "
             f'{one["variance"]:.4g}.',
             "take the variance over dim 0 (the datasets), dividing by n_datasets.")


@check
def check_variance_means(variance_means) -> None:
    """Variance: the spread of the predictions across models trained on different training sets."""
    letter = _letter(variance_means)
    if letter == "b":
        return
    why = {
        "a": "the gap between test and training loss is the misreading the seed warns against: a model "
             "that interpolates its training set has zero training loss and a gap larger than its "
             "variance (section 3 measures both).",
        "c": "the variance of the label noise is the *noise* term, sigma², a separate term of the "
             "decomposition that no model can reduce.",
        "d": "how one model's predictions change with x is the shape of the fitted curve (a line "
             "1.5x varies a lot over x and has no variance at all if every training set gives it).",
    }.get(letter, "that is not one of the options a, b, c, d.")
    fail(f"variance_means = {variance_means!r} is not right: {why}",
         "variance is measured at a fixed input, across models trained on different training sets: "
         "the spread of the spaghetti plot.")


# --------------------------------------------------------------------------- the questions on the run

def _best_index(lam_rows) -> int:
    errors = [float(r["expected_error"]) for r in lam_rows]
    return min(range(len(errors)), key=errors.__getitem__)


@check
def check_best_lambda(best_lambda, lams, lam_rows) -> None:
    """The lambda of the student's sweep with the lowest bias² + variance + noise."""
    value = _number(best_lambda, "best_lambda", positive=True)
    lams = [float(v) for v in lams]
    errors = [float(r["expected_error"]) for r in lam_rows]
    best = _best_index(lam_rows)
    tied = [i for i, e in enumerate(errors) if e <= errors[best] + 1e-12]
    if any(math.isclose(value, lams[i], rel_tol=1e-3) for i in tied):
        return
    table = ", ".join(f"{lam:.0e}: {e:.4f}" for lam, e in zip(lams, errors))
    chosen = [i for i, lam in enumerate(lams) if math.isclose(value, lam, rel_tol=1e-3)]
    if chosen:
        i = chosen[0]
        key = min(("bias2", "variance"), key=lambda k: float(lam_rows[i][k]))
        hint = (f" At {lams[i]:.0e} it is the {'bias²' if key == 'bias2' else 'variance'} that is "
                "lowest, not the total." if all(float(lam_rows[i][key]) <= float(r[key]) for r in lam_rows) else "")
        fail(f"best_lambda = {best_lambda!r} is in your sweep, but its bias² + variance + noise is "
             f"{errors[i]:.4f}, and {lams[best]:.0e} has {errors[best]:.4f}, the lowest.{hint}",
             "take the lambda whose expected error (bias² + variance + noise, the total) is the "
             f"smallest in your printed table: {table}.")
    fail(f"best_lambda = {best_lambda!r} is not one of the lambdas of your sweep.",
         "assign the lambda of the row with the smallest bias² + variance + noise, as a number "
         f"(e.g. 1e-3): {table}.")


@check
def check_variance_removed(variance_removed, deg_rows, lam_rows) -> None:
    """The variance of degree 9 without penalty minus its variance at the best lambda."""
    value = _number(variance_removed, "variance_removed")
    unpenalised = deg_rows[9]
    best = lam_rows[_best_index(lam_rows)]
    weakest = lam_rows[0]
    right = float(unpenalised["variance"]) - float(best["variance"])

    def near(x):
        return abs(value - x) <= max(0.002, 0.01 * abs(x))

    if near(right):
        return
    fix = (f"subtract the variance at your best lambda ({float(best['variance']):.4f}) from the variance "
           f"of the unpenalised degree-9 fit, the degree-9 row of the first table "
           f"({float(unpenalised['variance']):.4f}): a positive number if the penalty lowered it.")
    wrong = [
        (-right, "has the sign reversed: the penalty lowered the variance, so the variance removed is positive."),
        (float(weakest["variance"]) - float(best["variance"]),
         "compares with the weakest penalty plotted, lambda = 1e-6, not with no penalty at all (lambda = 0)."),
        (float(best["bias2"]) - float(unpenalised["bias2"]),
         "is the bias² the penalty added, not the variance it removed."),
        (float(unpenalised["expected_error"]) - float(best["expected_error"]),
         "is the change of the total (bias² + variance + noise), not of the variance alone."),
        (float(best["variance"]), "is the variance left at the best lambda, not the amount removed."),
    ]
    for candidate, why in wrong:
        if near(candidate) and not near(right):
            fail(f"variance_removed = {variance_removed!r} {why}", fix)
    fail(f"variance_removed = {variance_removed!r} does not match your run: the variance fell from "
         f"{float(unpenalised['variance']):.4f} (no penalty) to {float(best['variance']):.4f} "
         f"(best lambda), a drop of {right:.4f}.", fix)
