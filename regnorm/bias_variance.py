"""Helpers for 01-bias-variance: polynomial (ridge) fits in closed form, a fit wrapper that
records the training error, and the figures of the decomposition.

The fits follow the contract of ``sample_predictions``: ``fit(x, y)`` returns a predictor,
a callable mapping inputs of shape ``(M, 1)`` (or ``(M,)``) to ``M`` predictions.
"""
from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt
import torch

from .data import TRUE_SLOPE

TERM_COLORS = {"bias2": "tab:blue", "variance": "tab:orange", "noise": "tab:gray",
               "expected_error": "k"}
TERM_LABELS = {"bias2": "bias²", "variance": "variance", "noise": "noise σ²",
               "expected_error": "bias² + variance + noise"}


def true_f(x: torch.Tensor) -> torch.Tensor:
    """The seed's true function f(x) = 1.5 x (same shape as x)."""
    return TRUE_SLOPE * x


def polynomial_features(x: torch.Tensor, degree: int) -> torch.Tensor:
    """``(N, degree + 1)`` columns 1, x, x², ... for the ``N`` values in ``x`` (any shape)."""
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    x = x.detach().reshape(-1, 1)
    return x ** torch.arange(degree + 1, dtype=x.dtype, device=x.device)


class _FeatureCache:
    """Polynomial features of the last few input tensors (the experiments evaluate thousands
    of fits on the same training and evaluation inputs)."""

    def __init__(self, degree: int, size: int = 4):
        self.degree, self.size, self.items = degree, size, []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for key, value in self.items:
            if key.shape == x.shape and key.dtype == x.dtype and torch.equal(key, x.detach()):
                return value
        value = polynomial_features(x.double(), self.degree)
        self.items = [(x.detach().clone(), value)] + self.items[: self.size - 1]
        return value


def polynomial_fit(degree: int, l2: float = 0.0) -> Callable:
    """A ``fit(x, y)`` for ``sample_predictions``: the polynomial of ``degree`` minimising the
    objective ``mean((ŷ - y)²) + l2 * sum(w_k², k >= 1)`` in closed form (ridge regression;
    the intercept w_0 is not penalised). With ``l2 = 0`` and more coefficients than points
    it returns the least-squares solution of smallest norm."""
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")

    cache: dict = {}  # the training inputs are the same for every training set: solve once
    features = _FeatureCache(degree)

    def coefficient_map(x: torch.Tensor) -> torch.Tensor:
        """The matrix A with coefficients w = A y for training inputs x."""
        if "x" in cache and cache["x"].shape == x.shape and cache["x"].dtype == x.dtype \
                and torch.equal(cache["x"], x.detach()):
            return cache["A"]
        X = features(x)
        n = X.shape[0]
        if l2 == 0:
            A = torch.linalg.pinv(X)
        else:
            penalty = torch.eye(degree + 1, dtype=X.dtype) * l2
            penalty[0, 0] = 0.0  # the intercept is free
            A = torch.linalg.solve(X.T @ X / n + penalty, X.T / n)
        cache.update(x=x.detach().clone(), A=A)
        return A

    def fit(x: torch.Tensor, y: torch.Tensor) -> Callable:
        w = coefficient_map(x) @ y.detach().double().reshape(-1)

        def predict(x_new: torch.Tensor) -> torch.Tensor:
            return features(x_new) @ w

        predict.coefficients = w
        return predict

    return fit


class RecordTrainingError:
    """Wraps a ``fit``: every call also records the training MSE of the fitted model (on the
    noisy labels it was fitted to), so that the experiment can compare it with the test error.

    With ``fresh > 0`` it also evaluates every fitted model on ``fresh`` new inputs drawn
    uniformly over ``x_range`` from ``generator`` (new inputs for every model: the whole input
    range, not the training inputs), keeping ``(inputs, predictions)`` in ``self.fresh``, and
    keeps its predictions at the training inputs in ``self.at_train``."""

    def __init__(self, fit: Callable, fresh: int = 0, generator: torch.Generator | None = None,
                 x_range=(-1.0, 1.0)):
        self.fit = fit
        self.errors: list[float] = []
        self.n_fresh, self.generator, self.x_range = fresh, generator, x_range
        self.fresh: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.at_train: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Callable:
        predict = self.fit(x, y)
        with torch.no_grad():
            on_train = predict(x).reshape(-1).to(torch.float64)
            self.errors.append(((on_train - y.reshape(-1).to(torch.float64)) ** 2).mean().item())
            if self.n_fresh:
                lo, hi = self.x_range
                x_new = lo + (hi - lo) * torch.rand(self.n_fresh, 1, generator=self.generator, dtype=torch.float64)
                self.fresh.append((x_new, predict(x_new).reshape(-1).to(torch.float64)))
                self.at_train.append(on_train)
        return predict


def plot_spaghetti(curves: torch.Tensor, grid: torch.Tensor, ax=None, title: str = "",
                   color: str = "tab:blue", ylim=(-3.5, 3.5), x_train=None, average=None):
    """One thin line per training set (rows of ``curves`` on ``grid``), the average prediction
    (thick: ``average`` over all training sets when given, else the mean of the rows drawn)
    and the true line (dashed)."""
    ax = ax or plt.subplots(figsize=(5, 4))[1]
    g = grid.reshape(-1)
    ax.plot(g, curves.T, color=color, alpha=0.25, lw=0.8)
    if average is None:
        average, label = curves.mean(0), f"average of these {len(curves)} fits"
    else:
        label = "average fit over all training sets"
    ax.plot(g, average, color="tab:red", lw=2.5, label=label)
    ax.plot(g, true_f(g), "k--", lw=1.5, label="true f(x) = 1.5x")
    if x_train is not None:
        for xv in x_train.reshape(-1):
            ax.axvline(xv.item(), color="0.85", lw=0.6, zorder=0)
    ax.set(xlabel="x", ylabel="prediction ŷ(x)", title=title, ylim=ylim)
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_terms(xs, rows: list[dict], ax=None, measured=None, measured_se=None, xlabel="",
               title="", logx=False, ymax=None):
    """The terms of the decomposition against ``xs`` (one dict of terms per x) on a linear
    y-axis cut at ``ymax`` (totals above it are written at the top edge); ``measured`` (with
    error bars of 2 ``measured_se``) is the error on fresh test draws."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for key in ("bias2", "variance", "noise", "expected_error"):
        ax.plot(xs, [r[key] for r in rows], "-", marker="o", ms=3, color=TERM_COLORS[key],
                lw=2.5 if key == "expected_error" else 1.5, label=TERM_LABELS[key])
    if measured is not None:
        ax.errorbar(xs, measured, yerr=None if measured_se is None else [2 * s for s in measured_se],
                    fmt="s", mfc="none", color="tab:green", ms=7,
                    label="error measured on fresh test draws (±2 s.e.)")
    if logx:
        ax.set_xscale("log")
    if ymax is not None:
        ax.set_ylim(0, ymax)
        for x, r in zip(xs, rows):
            if r["expected_error"] > ymax:
                ax.annotate(f"total {r['expected_error']:.2f} ↑", (x, ymax), xytext=(-4, -14),
                            textcoords="offset points", ha="right", fontsize=8, zorder=5,
                            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none"))
    else:
        ax.set_ylim(bottom=0)
    ax.set(xlabel=xlabel, ylabel="mean squared error (averaged over x in [-1, 1])", title=title)
    ax.legend(fontsize=8)
    return ax


def plot_terms_bar(terms: dict, ax=None, ymax=None, title=""):
    """A stacked bar of bias², variance and noise, next to the measured total."""
    ax = ax or plt.subplots(figsize=(3, 4))[1]
    bottom = 0.0
    for key in ("noise", "bias2", "variance"):
        ax.bar(0, terms[key], bottom=bottom, color=TERM_COLORS[key], label=TERM_LABELS[key], width=0.6)
        bottom += terms[key]
    ax.set_xticks([0], ["bias² + variance + noise"])
    ax.set_xlim(-0.8, 0.8)
    ax.set(ylabel="expected test MSE", title=title or f"total {bottom:.3f}")
    if ymax is not None:
        ax.set_ylim(0, ymax)
    ax.legend(fontsize=8, loc="upper right")
    return ax
