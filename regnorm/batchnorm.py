"""Experiments of assignment 04-batchnorm: deep-MLP activation scales, training a classifier
with honest train/validation bookkeeping, running estimates, and their figures."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from .training import progress

# ---------------------------------------------------------------- deep MLP activation scales

INITS = ("normal", "default", "kaiming")


def deep_mlp(depth: int, width: int, init: str = "default",
             norm: Callable[[int], nn.Module] | None = None) -> nn.Sequential:
    """``depth`` blocks ``Linear(width, width) [norm(width)] ReLU``.

    ``init``: ``"normal"`` sets every weight to N(0, 1) and biases to 0; ``"default"`` keeps
    PyTorch's own initialisation of ``nn.Linear``; ``"kaiming"`` uses Kaiming-normal weights
    for ReLU (std sqrt(2 / fan_in)) and zero biases. ``norm`` builds a normalisation layer
    placed between each Linear and its ReLU (e.g. ``nn.BatchNorm1d``).
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be positive, got {depth} and {width}")
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        if init == "normal":
            nn.init.normal_(linear.weight, 0.0, 1.0)
            nn.init.zeros_(linear.bias)
        elif init == "kaiming":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if norm is not None:
            layers.append(norm(width))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@torch.no_grad()
def block_stds(net: nn.Sequential, x: torch.Tensor) -> dict:
    """Two scales of the output of every ReLU of ``net`` (one value per block), in the
    network's current mode: ``"all"``, the standard deviation over all activations of the
    block, and ``"batch"``, the standard deviation across the batch of each unit, averaged
    over the units: how much the block's output still differs from sample to sample, i.e.
    carries the input. Overflowed values are ``inf`` or ``nan``."""
    overall, across = [], []
    out = x
    for layer in net:
        out = layer(out)
        if isinstance(layer, nn.ReLU):
            overall.append(out.std().item())
            across.append(out.std(dim=0).mean().item())
    return {"all": torch.tensor(overall, dtype=torch.float64),
            "batch": torch.tensor(across, dtype=torch.float64)}


def plot_block_stds(curves: dict, ax=None, title="Activation scale through a deep ReLU MLP",
                    ylabel="std of the block's output", ylim=None):
    """``{label: stds per block}`` on a log scale. Where a curve overflows to inf/NaN (the
    float32 standard deviation exceeds about 3.4e38) or underflows to 0 (neither can be drawn
    on a log scale), a cross marks its last drawable block and the legend says from which block
    it broke. With ``ylim=(low, high)`` the axis is clipped there and a triangle on the top or
    bottom edge marks the block where a curve leaves the plot, so that one exploding curve does
    not squash the others."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for k, (label, stds) in enumerate(curves.items()):
        stds = torch.as_tensor(stds, dtype=torch.float64)
        blocks = torch.arange(1, len(stds) + 1)
        finite = torch.isfinite(stds) & (stds > 0)
        color = f"C{k}"
        ax.plot(blocks[finite], stds[finite], color=color, lw=2, label=label)
        broken = (~finite).nonzero()
        if ylim is not None:
            for edge, outside, marker, word in ((ylim[1], finite & (stds > ylim[1]), "^", "above"),
                                                (ylim[0], finite & (stds < ylim[0]), "v", "below")):
                if outside.any():
                    first_out = int(outside.nonzero()[0])
                    ax.plot([first_out + 1], [edge], marker, color=color, ms=10, clip_on=False,
                            label=f"{label}: {word} {edge:g} from block {first_out + 1}")
        if len(broken) and finite.any():
            first = int(broken[0])
            last_ok = int(finite.nonzero()[-1])
            what = "std overflows float32 (inf/NaN)" if not torch.isfinite(stds[first]) else "exactly 0"
            y_mark = stds[last_ok].item()
            if ylim is not None and not ylim[0] <= y_mark <= ylim[1]:
                label_end = f"{label}: {what} from block {first + 1} (off the plot)"
                ax.plot([], [], "x", color=color, ms=11, mew=2.5, label=label_end)
            else:
                ax.plot([last_ok + 1], [y_mark], "x", color=color, ms=11, mew=2.5,
                        label=f"{label}: {what} from block {first + 1}")
    ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set(xlabel="block (Linear → [BN] → ReLU)", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------- classifier training

@dataclass
class ClassifierHistory:
    """What one training run recorded. ``iter_loss``: the loss of every training batch (the
    training-mode forward pass). ``train_loss``/``train_acc``: per epoch, the mean over all
    the epoch's batches (weighted by batch size), measured during training.
    ``valid_loss``/``valid_acc``: per epoch, on the whole validation set in ``eval()`` mode
    after the epoch."""

    iters_per_epoch: int
    iter_loss: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    valid_loss: list = field(default_factory=list)
    valid_acc: list = field(default_factory=list)


@torch.no_grad()
def evaluate_classifier(net: nn.Module, x, y, *, training: bool = False,
                        batch_size: int | None = None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``net`` on ``(x, y)``. In ``eval()`` mode by
    default; ``training=True`` uses train-mode batch statistics on consecutive batches of
    ``batch_size`` (running buffers are saved and restored). The net's mode is restored."""
    was_training = net.training
    saved = {k: v.clone() for k, v in net.state_dict().items()} if training else None
    net.train(training)
    size = len(x) if batch_size is None else batch_size
    outs = torch.cat([net(x[i:i + size]) for i in range(0, len(x), size)])
    net.train(was_training)
    if saved is not None:
        net.load_state_dict(saved)
    loss = F.cross_entropy(outs, y).item()
    acc = (outs.argmax(dim=1) == y).double().mean().item()
    return loss, acc


def train_classifier(net: nn.Module, train: tuple, valid: tuple, *, epochs: int, batch_size: int,
                     lr: float = 0.01, momentum: float = 0.9, generator: torch.Generator | None = None,
                     show_progress: bool = False, desc: str = "training") -> ClassifierHistory:
    """Mini-batch SGD (with momentum) on the cross-entropy, with honest
    bookkeeping: every batch loss is kept, the epoch's training loss is the mean over all
    its batches (not the last one), and validation is measured on held-out data in
    ``eval()`` mode (not from the training loop's counters). Batches are
    drawn by a shuffle from ``generator``; an incomplete last batch is dropped."""
    x, y = train
    n = len(x)
    if batch_size < 1 or batch_size > n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    if epochs < 1:
        raise ValueError(f"epochs must be positive, got {epochs}")
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    steps = n // batch_size
    history = ClassifierHistory(iters_per_epoch=steps)
    for _ in progress(range(epochs), show_progress, desc=desc, leave=False):
        net.train()
        order = torch.randperm(n, generator=generator)
        total_loss, correct, seen = 0.0, 0, 0
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            out = net(x[idx])
            loss = F.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.iter_loss.append(loss.item())
            total_loss += loss.item() * len(idx)
            correct += (out.argmax(dim=1) == y[idx]).sum().item()
            seen += len(idx)
        history.train_loss.append(total_loss / seen)
        history.train_acc.append(correct / seen)
        v_loss, v_acc = evaluate_classifier(net, *valid)
        history.valid_loss.append(v_loss)
        history.valid_acc.append(v_acc)
    net.eval()
    return history


def plot_classifier_histories(histories: dict, axes=None, title_suffix=""):
    """Two panels for ``{label: ClassifierHistory}``: the loss of every training batch (thin)
    with the epoch means (dots), and the validation loss per epoch (eval mode)."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(13, 4))[1]
    for k, (label, h) in enumerate(histories.items()):
        color = f"C{k}"
        it = torch.arange(1, len(h.iter_loss) + 1)
        axes[0].plot(it, h.iter_loss, color=color, lw=0.6, alpha=0.45)
        ends = [h.iters_per_epoch * (e + 1) for e in range(len(h.train_loss))]
        axes[0].plot(ends, h.train_loss, "o-", color=color, lw=2, label=f"{label}: epoch mean")
        epochs = range(1, len(h.valid_loss) + 1)
        axes[1].plot(epochs, h.valid_loss, "o-", color=color, lw=2, label=f"{label}: validation")
        axes[1].plot(epochs, h.train_loss, ":", color=color, lw=1.5, label=f"{label}: training")
    axes[1].set_xticks(range(1, max(len(h.valid_loss) for h in histories.values()) + 1))
    axes[0].set(xlabel="iteration (one mini-batch)", ylabel="cross-entropy",
                title="Training loss of every batch" + title_suffix)
    axes[1].set(xlabel="epoch", ylabel="cross-entropy",
                title="Per epoch: validation (eval mode) vs training" + title_suffix)
    axes[0].plot([], [], color="gray", lw=0.6, alpha=0.6, label="thin lines: loss of each batch")
    for ax in axes:
        ax.axhline(math.log(2), color="gray", ls="--", lw=1, label="ln 2 = 0.693: predicting 50/50")
        ax.legend(fontsize=7)
    return axes


# ---------------------------------------------------------------- running estimates

def running_estimates(layer: nn.Module, *, steps: int, batch_size: int, mean: float, std: float,
                      generator: torch.Generator | None = None) -> dict:
    """Feed ``steps`` batches of shape ``(batch_size, C)`` drawn from N(mean, std^2) to the
    batch-norm ``layer`` in train mode, and record ``running_mean`` and ``running_var`` after
    every step, averaged over the C channels (which all see the same distribution, so the average
    is a less noisy picture of one channel's estimate). Tensors of length ``steps``."""
    layer.train()
    c = layer.running_mean.numel()
    means, variances = [], []
    with torch.no_grad():
        for _ in range(steps):
            layer(mean + std * torch.randn(batch_size, c, generator=generator))
            means.append(layer.running_mean.mean().item())
            variances.append(layer.running_var.mean().item())
    return {"running_mean": torch.tensor(means), "running_var": torch.tensor(variances)}


# ---------------------------------------------------------------- which values share a statistic

def plot_bn_reduction(shapes: dict, axes=None):
    """For each ``{title: input shape (N, C, *spatial)}``, draw the input as a grid, one row per
    sample and one column per (channel, position), coloured by channel: batch norm computes one
    mean and variance per colour, i.e. over a whole column block, across every sample."""
    if axes is None:
        axes = plt.subplots(1, len(shapes), figsize=(5 * len(shapes), 3))[1]
    for ax, (title, shape) in zip(axes, shapes.items()):
        n, c = shape[0], shape[1]
        positions = math.prod(shape[2:]) if len(shape) > 2 else 1
        grid = torch.arange(c).repeat_interleave(positions).repeat(n, 1)
        ax.imshow(grid, cmap="tab10", vmin=0, vmax=9, aspect="auto")
        for p in range(1, c * positions):       # thin: between positions of one channel
            if p % positions:
                ax.axvline(p - 0.5, color="white", lw=0.8)
        for k in range(1, c):                   # thick: between channels
            ax.axvline(k * positions - 0.5, color="white", lw=3)
        for r in range(1, n):
            ax.axhline(r - 0.5, color="black", lw=0.5, alpha=0.5)
        ax.set_xticks([k * positions + (positions - 1) / 2 for k in range(c)],
                      [f"ch {k}" for k in range(c)], fontsize=7)
        ax.set_yticks(range(n), [f"sample {i}" for i in range(n)], fontsize=7)
        ax.set_title(f"{title}\ninput {tuple(shape)}: {c} means/vars (γ, β: {c} each),\n"
                     f"each over N·positions = {n}·{positions} = {n * positions} values", fontsize=9)
        ax.set_xlabel("channel × position (thin lines: positions)", fontsize=8)
    return axes


# ---------------------------------------------------------------- learning-rate sweep

SWEEP_LRS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
SWEEP_SETUPS = {                      # name: (batch norm?, factor on the initial hidden weights)
    "no BN": (False, 1.0),
    "no BN, weights x10": (False, 10.0),
    "BN": (True, 1.0),
    "BN, weights x10": (True, 10.0),
}


def _sweep_task(n: int, dim: int, classes: int, g: torch.Generator):
    teacher = torch.randn(dim, classes, generator=g) / math.sqrt(dim)
    x = torch.randn(n, dim, generator=g)
    return x, (x @ teacher).argmax(dim=1)


def lr_sweep(lrs=SWEEP_LRS, setups=None, *, depth: int = 4, width: int = 32, steps: int = 250,
             batch_size: int = 32, classes: int = 4, dim: int = 32, seed: int = 0) -> dict:
    """Train one MLP ``depth x [Linear(width) (BN) ReLU]`` then ``Linear(classes)`` per
    (set-up, learning rate) with plain SGD for ``steps`` mini-batches of a fixed classification
    task (labels: the argmax of a random linear teacher), all from the same initial weights and
    the same batches. A set-up is ``(batch_norm, weight_scale)``: training-mode batch norm
    (batch statistics, gamma 1, beta 0 at the start) between each hidden Linear and its ReLU,
    and a factor on PyTorch's default initial weights of the hidden layers.

    The networks are trained side by side as one batch of independent models (``torch.bmm``),
    which is exactly K separate trainings, only faster. Returns plain data:
    ``{"lrs": [...], "setups": [...], "final_loss": [[...] per set-up], "initial_loss": float,
    "threshold": float, "steps": int}``, where ``final_loss`` is the mean training loss over the
    last 10% of the steps (``nan`` when it diverged) and ``threshold`` is half the loss of a
    uniform guess, ``ln(classes) / 2``: a run *trained* when its final loss is below it."""
    setups = dict(SWEEP_SETUPS if setups is None else setups)
    lrs = [float(lr) for lr in lrs]
    g = torch.Generator().manual_seed(seed)
    x, y = _sweep_task(4096, dim, classes, g)
    k = len(lrs) * len(setups)
    bn = torch.tensor([float(b) for b, _ in setups.values() for _ in lrs]).view(k, 1, 1)
    scale = torch.tensor([s for _, s in setups.values() for _ in lrs]).view(k, 1, 1)
    lr = torch.tensor([lr for _ in setups for lr in lrs])
    sizes = [dim] + [width] * depth + [classes]
    weights, biases, gammas, betas = [], [], [], []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1 / math.sqrt(fan_in)      # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        w = (torch.rand(1, fan_in, fan_out, generator=g) * 2 - 1) * bound
        b = (torch.rand(1, 1, fan_out, generator=g) * 2 - 1) * bound
        w = w.expand(k, -1, -1) * (scale if i < depth else 1.0)
        weights.append(w.clone().requires_grad_(True))
        biases.append(b.expand(k, -1, -1).clone().requires_grad_(True))
        if i < depth:
            gammas.append(torch.ones(k, 1, fan_out, requires_grad=True))
            betas.append(torch.zeros(k, 1, fan_out, requires_grad=True))
    params = weights + biases + gammas + betas
    order = torch.Generator().manual_seed(seed + 1)
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(x), (batch_size,), generator=order)
        h = x[idx].expand(k, -1, -1)
        for i in range(depth):
            h = torch.baddbmm(biases[i], h, weights[i])
            var, mean = torch.var_mean(h, dim=1, keepdim=True, unbiased=False)
            normed = (h - mean) / torch.sqrt(var + 1e-5) * gammas[i] + betas[i]
            h = torch.relu(bn * normed + (1 - bn) * h)
        out = torch.baddbmm(biases[-1], h, weights[-1])
        loss = F.cross_entropy(out.reshape(-1, classes), y[idx].repeat(k),
                               reduction="none").view(k, batch_size).mean(dim=1)
        grads = torch.autograd.grad(loss.sum(), params)
        with torch.no_grad():
            for p, grad in zip(params, grads):
                p -= lr.view(k, 1, 1) * grad
        losses.append(loss.detach())
    tail = torch.stack(losses)[-max(1, steps // 10):].mean(dim=0).view(len(setups), len(lrs))
    return {"lrs": lrs, "setups": list(setups), "final_loss": tail.tolist(),
            "initial_loss": float(losses[0].mean()), "threshold": math.log(classes) / 2,
            "steps": steps}


def trained(sweep: dict) -> dict:
    """``{set-up: [True/False per learning rate]}``: final loss finite and below the threshold."""
    return {name: [math.isfinite(v) and v < sweep["threshold"] for v in row]
            for name, row in zip(sweep["setups"], sweep["final_loss"])}


def largest_trained_lr(sweep: dict, setup: str):
    """The largest learning rate at which ``setup`` trained, or ``None`` if it never did."""
    ok = trained(sweep)[setup]
    good = [lr for lr, t in zip(sweep["lrs"], ok) if t]
    return max(good) if good else None


def plot_lr_sweep(sweep: dict, ax=None):
    """Final training loss against the learning rate, one line per set-up; diverged runs
    (inf/NaN) are drawn as crosses on the top edge."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    top = 3.0
    for k, (name, row) in enumerate(zip(sweep["setups"], sweep["final_loss"])):
        vals = torch.tensor(row, dtype=torch.float64)
        finite = torch.isfinite(vals)
        lrs = torch.tensor(sweep["lrs"], dtype=torch.float64)
        ax.plot(lrs[finite], vals[finite].clamp(max=top), "o-", color=f"C{k}", lw=2, label=name)
        if (~finite).any():
            ax.plot(lrs[~finite], [top] * int((~finite).sum()), "x", color=f"C{k}", ms=10, mew=2.5,
                    clip_on=False)
    ax.axhline(sweep["threshold"], color="gray", ls="--", lw=1,
               label=f"trained: below {sweep['threshold']:.3f} = ln(classes) / 2")
    ax.set_xscale("log")
    ax.set(xlabel="learning rate (plain SGD)", ylim=(0, top),
           ylabel=f"training loss, last {max(1, sweep['steps'] // 10)} steps",
           title=f"After {sweep['steps']} steps (x on the top edge: diverged, inf/NaN)")
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------- which outputs depend on the batch

@torch.no_grad()
def batch_dependence(net: nn.Module, x: torch.Tensor, others: torch.Tensor) -> dict:
    """How much each named child's output *for the first image* changes when the other images
    of the batch are replaced by ``others``: ``{"train": {layer: change}, "eval": {...}}``,
    the largest absolute difference, layers in the order they run. Running statistics are
    saved and restored, so the network is left as it was."""
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    was_training = net.training
    result = {}
    for mode in ("train", "eval"):
        net.train(mode == "train")
        outputs = []
        for batch in (x, torch.cat([x[:1], others])):
            seen = {}

            def record(module, inputs, output, name):
                seen.setdefault(name, output[0].detach().clone())   # returns None: output kept

            handles = [module.register_forward_hook(
                lambda mod, inp, out, name=name: record(mod, inp, out, name))
                for name, module in net.named_children()]
            try:
                net(batch)
            finally:
                for h in handles:
                    h.remove()
            outputs.append(seen)
        result[mode] = {name: float((outputs[0][name] - outputs[1][name]).abs().max())
                        for name in outputs[0]}
    net.load_state_dict(saved)
    net.train(was_training)
    return result
