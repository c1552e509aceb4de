"""Training loops shared by the notebooks: small, explicit, and quiet on stderr."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .data import TRUE_SLOPE, dense_grid, fresh_points


def progress(iterable, enabled: bool = True, **kwargs):
    """A progress bar (a widget in Jupyter) when ``enabled``; the bare iterable otherwise."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


@dataclass
class History:
    """Losses recorded during training, one value every ``every`` iterations."""

    every: int
    train_loss: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)

    @property
    def steps(self) -> list:
        return [i * self.every for i in range(len(self.train_loss))]


def train_regression(net: nn.Module, x, y, *, test=None, iters: int = 1000, lr: float = 0.01,
                     momentum: float = 0.9, weight_decay: float = 0.0, every: int = 10,
                     show_progress: bool = False) -> History:
    """Full-batch SGD on the mean squared error, as in the seed. Records the training
    loss (of the training-mode forward pass) and, with ``test=(x, y)``, the test loss in
    ``eval()`` mode every ``every`` iterations. Leaves ``net`` in ``eval()`` mode."""
    if iters < 1 or every < 1:
        raise ValueError(f"iters and every must be positive, got {iters} and {every}")
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    history = History(every=every)
    for i in progress(range(iters), show_progress, desc="training", leave=False):
        net.train()
        loss = F.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i % every == 0:
            history.train_loss.append(loss.item())
            if test is not None:
                history.test_loss.append(evaluate(net, *test))
    net.eval()
    return history


@torch.no_grad()
def evaluate(net: nn.Module, x, y) -> float:
    """Mean squared error in ``eval()`` mode; restores the mode the net was in."""
    was_training = net.training
    net.eval()
    loss = F.mse_loss(net(x), y).item()
    net.train(was_training)
    return loss


def curve_shape(curves: torch.Tensor) -> dict:
    """Shape of fitted curves sampled on an even grid over [-1, 1], one curve per row
    (a 1-d tensor is one curve). Returns tensors (one value per curve):

    * ``total_variation``: sum of |f(x_{j+1}) - f(x_j)|; 3 for the true line 1.5x;
    * ``wiggle``: total variation minus |f(1) - f(-1)|, the up-and-down movement beyond
      the net rise: 0 for every monotone curve (the true line too), larger the more the
      curve bends back and forth;
    * ``slope``: (f(1) - f(-1)) / 2, the average slope (1.5 for the true line).
    """
    curves = torch.atleast_2d(curves)
    tv = (curves[:, 1:] - curves[:, :-1]).abs().sum(dim=1)
    rise = curves[:, -1] - curves[:, 0]
    return {"total_variation": tv, "wiggle": (tv - rise.abs()).clamp_min(0), "slope": rise / 2}


@torch.no_grad()
def fit_shape(net: nn.Module) -> dict:
    """:func:`curve_shape` of a 1-d regression net on the dense grid over [-1, 1], in
    ``eval()`` mode, as floats."""
    was_training = net.training
    net.eval()
    pred = net(dense_grid()).squeeze(-1)
    net.train(was_training)
    return {k: v.item() for k, v in curve_shape(pred).items()}


def _init_linear(models: int, fan_in: int, fan_out: int, g: torch.Generator):
    bound = 1 / math.sqrt(fan_in)  # nn.Linear's default initialisation
    w = (torch.rand(models, fan_in, fan_out, generator=g) * 2 - 1) * bound
    b = (torch.rand(models, 1, fan_out, generator=g) * 2 - 1) * bound
    return w, b


def paired_seed_mlps(seeds: int, copies: int, n_hidden: int, seed: int):
    """Set-up of a batched, paired study of the seed's MLP: ``seeds`` draws of the seed's
    data (``x`` of shape ``(seeds, 10, 1)``, ``y`` with noise std 0.5, ``test_y`` with std
    0.3) and of the initial weights, each draw repeated ``copies`` times along the batch
    (copy ``j`` of every draw is at ``j * seeds + draw``) so that the settings compared start
    from the same weights on the same points. Returns ``x, y, test_y, layers``, where
    ``layers`` are four ``(weight, bias)`` leaf tensors of shapes ``(copies * seeds, in, out)``
    and ``(copies * seeds, 1, out)``."""
    if seeds < 1 or copies < 1 or n_hidden < 1:
        raise ValueError(f"seeds, copies and n_hidden must be positive, got {seeds}, {copies}, {n_hidden}")
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, 10).view(1, 10, 1).expand(seeds, 10, 1)
    y = TRUE_SLOPE * x + 0.5 * torch.randn(x.shape, generator=g)
    test_y = TRUE_SLOPE * x + 0.3 * torch.randn(x.shape, generator=g)
    sizes = [(1, n_hidden), (n_hidden, n_hidden), (n_hidden, n_hidden), (n_hidden, 1)]
    layers = [tuple(t.repeat(copies, 1, 1).requires_grad_() for t in _init_linear(seeds, i, o, g))
              for i, o in sizes]
    return x, y, test_y, layers


def batched_forward(layers, inp, hidden=None):
    """The seed's MLP on a batch of networks: ``baddbmm`` per layer, ReLU between layers,
    then ``hidden(h)`` (dropout, say) on the hidden units when given."""
    h = inp
    for j, (w, b) in enumerate(layers):
        if j > 0:
            h = torch.relu(h)
            if hidden is not None:
                h = hidden(h)
        h = torch.baddbmm(b, h, w)
    return h


def regularisation_sweep(kind: str, values, seeds: int = 8, n_hidden: int = 100, iters: int = 1000,
                         lr: float = 0.01, momentum: float = 0.9, seed: int = 0, every: int = 10,
                         n_val: int = 20, n_test: int = 1000, show_progress: bool = False) -> dict:
    """Choose a regulariser's strength as a practitioner does, on many networks at once.

    ``kind`` is ``"weight_decay"`` (``values`` are λ: coupled decay on every parameter,
    added as ``(λ/2)·Σw²`` to each copy's loss, the same SGD update as ``weight_decay=λ``)
    or ``"dropout"`` (``values`` are p: PyTorch's ``F.dropout`` on the hidden units, as in
    the seed's network). For each of ``seeds`` draws of the seed's data (10 training
    points) and of the initial weights, one copy of the seed's MLP per value, trained
    together with batched matrix products (the comparison across values is paired).

    Every draw also gets a **validation** set of ``n_val`` and a **test** set of ``n_test``
    fresh points, inputs uniform over [-1, 1] and the training noise (std 0.5): error over
    the whole input range, not at the training inputs. Returns tensors indexed
    ``[value, draw, ...]``: ``values``; ``steps`` (iterations at which the histories were
    recorded); ``train_history`` and ``val_history`` (eval-mode MSE, shape
    ``(k, seeds, len(steps))``); ``train_loss``, ``val_loss`` and ``test_loss`` after
    training; ``curves`` on the dense grid; and the ``total_variation``, ``wiggle`` and
    ``slope`` of :func:`curve_shape`. The global random state is left as it was."""
    if kind not in ("weight_decay", "dropout"):
        raise ValueError(f"kind must be 'weight_decay' or 'dropout', got {kind!r}")
    values = torch.tensor([float(v) for v in values], dtype=torch.float64)  # exact as given
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"values must be a non-empty list of numbers, got {values}")
    if kind == "dropout" and not ((values >= 0) & (values < 1)).all():
        raise ValueError(f"every dropout p must be in [0, 1), got {values.tolist()}")
    if kind == "weight_decay" and (values < 0).any():
        raise ValueError(f"every weight decay must be >= 0, got {values.tolist()}")
    if seeds < 1 or iters < 1 or every < 1:
        raise ValueError(f"seeds, iters and every must be positive, got {seeds}, {iters}, {every}")
    k = len(values)
    x, y, _, layers = paired_seed_mlps(seeds, k, n_hidden, seed)
    g = torch.Generator().manual_seed(seed + 10_000)  # held-out points: their own stream
    val_x, val_y = fresh_points(seeds, n_val, generator=g)
    test_x, test_y = fresh_points(seeds, n_test, generator=g)
    params = [t for layer in layers for t in layer]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    lam = values.float().repeat_interleave(seeds) if kind == "weight_decay" else None

    def drop(h):  # PyTorch's own dropout on the hidden units, per block of copies
        return torch.cat([F.dropout(part, p) if p > 0 else part
                          for part, p in zip(h.split(seeds), values.tolist())])

    def forward(inp, training=False):
        return batched_forward(layers, inp.repeat(k, 1, 1),
                               drop if training and kind == "dropout" else None)

    def mse(inp, target):
        return ((forward(inp) - target.repeat(k, 1, 1)) ** 2).mean(dim=(1, 2)).view(k, seeds)

    steps, train_hist, val_hist = [], [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)  # F.dropout draws from the global generator
        for i in progress(range(iters + 1), show_progress, desc=f"{k * seeds} networks", leave=False):
            if i % every == 0 or i == iters:
                with torch.no_grad():
                    steps.append(i)
                    train_hist.append(mse(x, y))
                    val_hist.append(mse(val_x, val_y))
            if i == iters:
                break
            loss = ((forward(x, True) - y.repeat(k, 1, 1)) ** 2).mean(dim=(1, 2))
            if lam is not None:
                loss = loss + lam / 2 * sum((p ** 2).sum(dim=(1, 2)) for p in params)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
    with torch.no_grad():
        curves = forward(dense_grid().view(1, -1, 1).expand(seeds, -1, 1)).squeeze(-1).view(k, seeds, -1)
        shape = {name: v.view(k, seeds) for name, v in curve_shape(curves.flatten(0, 1)).items()}
        return {
            "kind": kind,
            "values": values,
            "steps": torch.tensor(steps),
            "train_history": torch.stack(train_hist, dim=-1),
            "val_history": torch.stack(val_hist, dim=-1),
            "train_loss": train_hist[-1],
            "val_loss": val_hist[-1],
            "test_loss": mse(test_x, test_y),
            "curves": curves,
            **shape,
        }


def dropout_sweep(p_values, **kwargs) -> dict:
    """:func:`regularisation_sweep` of the dropout probability (PyTorch's own ``F.dropout``,
    so that it runs before the exercises pass)."""
    return regularisation_sweep("dropout", p_values, **kwargs)
