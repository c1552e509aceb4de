"""Helpers for 05-norm-layers: the summary figure of the four normalisations, a widget to pick
one, padded sequences, and the batch-size study of a small CNN with BN, GN and LN."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .images import two_class_images
from .training import progress

METHODS = ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm")


def norm_set(method: str, n: int, c: int, num_groups: int = 2, channels: int = 6,
             batch: int = 4) -> np.ndarray:
    """Boolean mask of shape (batch, channels): which (sample, channel) pairs share one set
    of statistics with the element (sample ``n``, channel ``c``). Every method reduces over
    all of H·W, so the set is this mask times the whole spatial axis."""
    samples = np.arange(batch)[:, None]
    chans = np.arange(channels)[None, :]
    if method == "BatchNorm":
        return np.broadcast_to(chans == c, (batch, channels)).copy()
    if method == "LayerNorm":
        return np.broadcast_to(samples == n, (batch, channels)).copy()
    if method == "InstanceNorm":
        return (samples == n) & (chans == c)
    if method == "GroupNorm":
        if channels % num_groups:
            raise ValueError(f"num_groups={num_groups} does not divide {channels} channels")
        size = channels // num_groups
        return (samples == n) & (chans // size == c // size)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def draw_norm_block(ax, method: str, num_groups: int = 2, channels: int = 6, batch: int = 4,
                    spatial: int = 5, n: int = 0, c: int = 0) -> None:
    """The (N, C, H·W) block of a batch as cubes on a 3-d axis, with the set of values that
    ``method`` normalises together with element (n, c) shaded blue; the other sets are drawn
    faintly, GroupNorm's group boundaries in a second light colour."""
    chosen = norm_set(method, n, c, num_groups, channels, batch)
    filled = np.ones((batch, channels, spatial), dtype=bool)
    colors = np.empty(filled.shape, dtype=object)
    light = ("#e8e8e8", "#cfd8e3")
    size = channels // num_groups if method == "GroupNorm" else 1
    for i in range(batch):
        for j in range(channels):
            if chosen[i, j]:
                colors[i, j, :] = "#1f77b4"
            else:
                colors[i, j, :] = light[(j // size) % 2] if method == "GroupNorm" else light[0]
    ax.voxels(filled, facecolors=colors, edgecolor="#777777", linewidth=0.3, alpha=0.85)
    ax.set_xlabel("N (batch)", labelpad=-8)
    ax.set_ylabel("C (channels)", labelpad=-8)
    ax.set_zlabel("H·W (spatial)", labelpad=-8)
    ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
    ax.view_init(elev=22, azim=-128)
    ax.set_box_aspect((batch, channels, spatial))
    title = method if method != "GroupNorm" else f"GroupNorm (G = {num_groups})"
    ax.set_title(title, fontsize=10)


def summary_figure(num_groups: int = 2, channels: int = 6, batch: int = 4, spatial: int = 5):
    """The four normalisations side by side (the seed's summary picture, redrawn)."""
    fig = plt.figure(figsize=(14, 3.8))
    for k, method in enumerate(METHODS):
        ax = fig.add_subplot(1, 4, k + 1, projection="3d")
        draw_norm_block(ax, method, num_groups, channels, batch, spatial)
    fig.suptitle("Dark blue: the values normalised together (one mean and one variance) with "
                 "sample 0, channel 0.\nGroupNorm only: light blue-grey marks the channels of the "
                 "other group(s), which get their own statistics", fontsize=10.5, y=0.99)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def _stats_text(method: str, num_groups: int, channels: int, batch: int, spatial: int) -> str:
    sets = {"BatchNorm": channels, "LayerNorm": batch, "InstanceNorm": batch * channels,
            "GroupNorm": batch * num_groups}[method]
    total = batch * channels * spatial
    return (f"{method}: {sets} sets of {total // sets} values each "
            f"(input {batch} x {channels} x {spatial}, so {sets} means and {sets} variances)")


def norm_set_picker(channels: int = 6, batch: int = 4, spatial: int = 5):
    """A dropdown for the method and one for GroupNorm's number of groups (the divisors of
    ``channels``): the figure shades the set that is normalised together."""
    import ipywidgets as widgets
    from IPython.display import display

    method = widgets.Dropdown(options=METHODS, value="GroupNorm", description="method")
    divisors = [g for g in range(1, channels + 1) if channels % g == 0]
    groups = widgets.SelectionSlider(options=divisors, value=divisors[1] if len(divisors) > 1 else 1,
                                     description="num_groups", continuous_update=False)
    out = widgets.Output()

    def redraw(change=None):
        groups.disabled = method.value != "GroupNorm"
        with out:
            out.clear_output(wait=True)
            fig = plt.figure(figsize=(4.5, 4))
            ax = fig.add_subplot(projection="3d")
            draw_norm_block(ax, method.value, groups.value, channels, batch, spatial)
            display(fig)
            plt.close(fig)
            print(_stats_text(method.value, groups.value, channels, batch, spatial))

    method.observe(redraw, names="value")
    groups.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([method, groups]), out])


# ---------------------------------------------------------------------------------------------
# padded sequences

def padded_sequences(lengths, max_len: int, features: int, *, seed: int = 0):
    """A batch of variable-length sequences, zero-padded to ``max_len``: ``(x, mask)`` with
    ``x`` of shape (B, max_len, features) and ``mask`` (B, max_len) True on real steps. The
    real steps are the same for every ``max_len`` (same seed)."""
    if max(lengths) > max_len:
        raise ValueError(f"max_len={max_len} is shorter than the longest sequence ({max(lengths)})")
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max_len, features)
    mask = torch.zeros(len(lengths), max_len, dtype=torch.bool)
    for i, length in enumerate(lengths):
        x[i, :length] = 1.0 + 2.0 * torch.randn(length, features, generator=g)
        mask[i, :length] = True
    return x, mask


# ---------------------------------------------------------------------------------------------
# batch-size study

class _BlockNorm(nn.Module):
    """Several independent small CNNs run as one grouped network: the channels hold
    ``copies`` models with BatchNorm, then ``copies`` with GroupNorm, then ``copies`` with
    LayerNorm (GroupNorm with one group per model, i.e. LayerNorm over (C, H, W) with
    per-channel weight and bias). Contiguous GroupNorm groups never straddle two models."""

    def __init__(self, copies: int, channels: int, groups: int):
        super().__init__()
        self.width = copies * channels
        self.norms = nn.ModuleList([
            nn.BatchNorm2d(copies * channels),
            nn.GroupNorm(copies * groups, copies * channels),
            nn.GroupNorm(copies, copies * channels),
        ])

    def forward(self, x):
        w = self.width
        return torch.cat([m(x[:, k * w:(k + 1) * w]) for k, m in enumerate(self.norms)], dim=1)


def _grouped_cnn(copies: int, groups: int) -> nn.Sequential:
    k = 3 * copies  # models in the grouped network
    return nn.Sequential(
        nn.Conv2d(3 * k, 8 * k, 3, padding=1, groups=k), _BlockNorm(copies, 8, groups), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8 * k, 16 * k, 3, padding=1, groups=k), _BlockNorm(copies, 16, groups), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16 * k, 16 * k, 3, padding=1, groups=k), _BlockNorm(copies, 16, groups), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Conv2d(16 * k, 2 * k, 1, groups=k), nn.Flatten(),
    )


def small_cnn(norm: str, groups: int = 4) -> nn.Sequential:
    """One copy of the study's network: conv(3→8) norm ReLU pool conv(8→16) norm ReLU pool
    conv(16→16) norm ReLU global-average-pool linear(16→2), for ``norm`` in BN, GN, LN."""
    def layer(c):
        return {"BN": nn.BatchNorm2d(c), "GN": nn.GroupNorm(groups, c), "LN": nn.GroupNorm(1, c)}[norm]
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), layer(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), layer(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), layer(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2),
    )


def batch_size_study(steps: dict | None = None, *, seeds: int = 2, n_train: int = 2048,
                     n_test: int = 256, size: int = 12, lr: float = 0.002, groups: int = 4,
                     checkpoints: int = 4, seed: int = 0, show_progress: bool = False) -> dict:
    """Train ``seeds`` copies each of the small CNN with BN, GN and LN (see ``small_cnn``) on
    ``two_class_images``, for ``steps[batch]`` Adam steps at every batch size in ``steps``
    (default ``{2: 1024, 32: 256}``), learning rate ``lr * sqrt(batch / 2)``. All copies train
    at once as one grouped network; copy ``s`` of each method starts from the same weights and
    sees the same minibatches.

    Returns ``{"steps": {batch: [step of each checkpoint]}, (method, batch): tensor (seeds,
    checkpoints) of test accuracy in eval() mode, ("loss", method, batch): tensor (seeds,) of the
    training loss (train() mode, on the training minibatches) averaged over the last quarter of
    the steps, ("train_mode", method, batch): tensor (seeds,) of the final test accuracy in
    train() mode, the test set cut into batches of the training batch size}``: for BN the
    last one normalises with the statistics of each test batch, as in training, instead of the
    running statistics (GN and LN compute the same in both modes)."""
    if steps is None:
        steps = {2: 1024, 32: 256}
    x_train, y_train = two_class_images(n_train, generator=torch.Generator().manual_seed(seed + 1), size=size)
    x_test, y_test = two_class_images(n_test, generator=torch.Generator().manual_seed(seed + 2), size=size)
    k = 3 * seeds
    results: dict = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny operations: one thread is faster and leaves a core free
    try:
        with torch.random.fork_rng(devices=[]):
            for batch, n_steps in steps.items():
                torch.manual_seed(seed)
                net = _grouped_cnn(seeds, groups)
                with torch.no_grad():  # copy s of every method starts from the same weights
                    for m in net.modules():
                        if isinstance(m, nn.Conv2d):
                            for t in (m.weight, m.bias):
                                per = t.shape[0] // k
                                first = t[: seeds * per].clone()
                                t[seeds * per: 2 * seeds * per] = first
                                t[2 * seeds * per:] = first
                opt = torch.optim.Adam(net.parameters(), lr=lr * (batch / 2) ** 0.5)
                gens = [torch.Generator().manual_seed(seed + 100 + s) for s in range(seeds)]
                marks = [round(n_steps * (j + 1) / checkpoints) for j in range(checkpoints)]
                results.setdefault("steps", {})[batch] = marks
                accs, late_losses = [], []
                for step in progress(range(1, n_steps + 1), show_progress, desc=f"batch {batch}", leave=False):
                    net.train()
                    idx = torch.stack([torch.randint(0, n_train, (batch,), generator=g) for g in gens])
                    idx = idx.repeat(3, 1)  # (models, batch): the same minibatches for BN, GN, LN
                    xb = x_train[idx].permute(1, 0, 2, 3, 4).reshape(batch, 3 * k, size, size)
                    logits = net(xb).view(batch, k, 2)
                    loss = F.cross_entropy(logits.reshape(-1, 2), y_train[idx].T.reshape(-1)) * k
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    if step > n_steps - n_steps // 4:
                        with torch.no_grad():  # the loss of each model on its own minibatch
                            per_model = F.cross_entropy(logits.detach().reshape(-1, 2), y_train[idx].T.reshape(-1),
                                                        reduction="none").view(batch, k).mean(0)
                        late_losses.append(per_model)
                    if step in marks:
                        net.eval()
                        with torch.no_grad():
                            out = net(x_test.repeat(1, k, 1, 1)).view(n_test, k, 2)
                        accs.append((out.argmax(-1) == y_test[:, None]).double().mean(0))
                acc = torch.stack(accs, dim=1)  # (models, checkpoints)
                late = torch.stack(late_losses).mean(0)  # (models,)
                net.train()  # BN with the statistics of each test batch, as in training
                correct = torch.zeros(k)
                with torch.no_grad():
                    for start in range(0, n_test - batch + 1, batch):
                        out = net(x_test[start:start + batch].repeat(1, k, 1, 1)).view(batch, k, 2)
                        correct += (out.argmax(-1) == y_test[start:start + batch, None]).double().sum(0)
                train_mode = correct / (n_test - n_test % batch)
                for j, method in enumerate(("BN", "GN", "LN")):
                    results[(method, batch)] = acc[j * seeds:(j + 1) * seeds]
                    results[("loss", method, batch)] = late[j * seeds:(j + 1) * seeds]
                    results[("train_mode", method, batch)] = train_mode[j * seeds:(j + 1) * seeds]
    finally:
        torch.set_num_threads(threads)
    return results
