"""Matplotlib figures shared by the notebooks: labelled axes, titles, units."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .data import TRUE_SLOPE, dense_grid


@torch.no_grad()
def plot_fits(nets: dict, train_x, train_y, test_x=None, test_y=None, ax=None, title=None):
    """Fitted curves (``eval()`` mode) of ``{label: net}`` over the data and the true line."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    grid = dense_grid((train_x.min().item(), train_x.max().item()))
    ax.plot(grid, TRUE_SLOPE * grid, "k--", lw=1, label="true line y = 1.5x")
    for label, net in nets.items():
        was_training = net.training
        net.eval()
        ax.plot(grid, net(grid), lw=2, label=label)
        net.train(was_training)
    ax.scatter(train_x, train_y, c="tab:red", zorder=3, label="training points")
    if test_x is not None:
        ax.scatter(test_x, test_y, c="tab:blue", marker="x", zorder=3, label="test points")
    ax.set(xlabel="x", ylabel="prediction ŷ", title=title or "Fitted curves (eval mode)")
    ax.legend(fontsize=8)
    return ax


def plot_losses(histories: dict, ax=None, log=True):
    """Training (solid) and test (dashed) loss against iterations for ``{label: History}``."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for k, (label, h) in enumerate(histories.items()):
        color = f"C{k}"
        ax.plot(h.steps, h.train_loss, color=color, label=f"{label}: train")
        if h.test_loss:
            ax.plot(h.steps, h.test_loss, color=color, ls="--", label=f"{label}: test")
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="iteration", ylabel="MSE loss", title="Loss during training")
    ax.legend(fontsize=8)
    return ax


def plot_weight_histograms(layers: dict, ax=None, bins=60, title="Weights of the hidden Linear layer"):
    """Overlaid histograms of ``{label: weight tensor}`` on shared bins."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    values = {k: w.detach().flatten() for k, w in layers.items()}
    lo = min(v.min().item() for v in values.values())
    hi = max(v.max().item() for v in values.values())
    for label, v in values.items():
        ax.hist(v.numpy(), bins=bins, range=(lo, hi), alpha=0.55, label=f"{label} (std {v.std():.3f})")
    ax.set(xlabel="weight value", ylabel="count", title=title)
    ax.legend(fontsize=8)
    return ax


def plot_paired(a, b, labels, ax=None, ylabel="", title=""):
    """One line per seed from condition ``a`` to condition ``b`` (a paired comparison)."""
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    for i in range(len(a)):
        better = b[i] < a[i]
        ax.plot([0, 1], [a[i], b[i]], "-o", color="tab:green" if better else "tab:red", alpha=0.7)
    ax.set_xticks([0, 1], labels)
    ax.set_xlim(-0.3, 1.3)
    ax.set(ylabel=ylabel, title=title)
    return ax


def plot_sweep(sweep: dict, ax=None, label="weight decay λ", log=True):
    """Mean training and validation MSE over the draws of a :func:`regnorm.training.regularisation_sweep`
    against the swept value (one point per value; nothing of the test set is shown)."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    values = sweep["values"]
    pos = torch.arange(len(values))
    ax.plot(pos, sweep["train_loss"].mean(dim=1), "-o", color="tab:gray", label="training MSE")
    ax.plot(pos, sweep["val_loss"].mean(dim=1), "-o", color="tab:green", label="validation MSE")
    ax.set_xticks(pos.tolist(), [f"{v:g}" for v in values.tolist()])
    if log:
        ax.set_yscale("log")
    ax.set(xlabel=label, ylabel=f"MSE (mean of {sweep['val_loss'].shape[1]} draws)",
           title="Training and validation error of the sweep")
    ax.legend(fontsize=8)
    return ax


def plot_learning_curves(sweep: dict, values, ax=None, name="λ", log=True):
    """Mean training (solid) and validation (dashed) MSE against iterations, one colour per
    swept value in ``values``, from the histories of a regularisation sweep."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    steps = sweep["steps"]
    for k, value in enumerate(values):
        i = int(torch.argmin((sweep["values"] - value).abs()))
        color = f"C{k}"
        ax.plot(steps, sweep["train_history"][i].mean(dim=0), color=color, label=f"{name} = {value:g}: training")
        ax.plot(steps, sweep["val_history"][i].mean(dim=0), color=color, ls="--", label=f"{name} = {value:g}: validation")
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="iteration", ylabel="MSE (mean over draws, eval mode)", title="Learning curves")
    ax.legend(fontsize=8)
    return ax
