"""Experiment helpers for 02-weight-decay: many copies of the seed's MLP trained at once."""
from __future__ import annotations

import torch

from .data import dense_grid
from .training import batched_forward, curve_shape, paired_seed_mlps, progress


def weight_decay_study(weight_decays, seeds: int = 8, n_hidden: int = 100, iters: int = 1000,
                       lr: float = 0.01, momentum: float = 0.9, seed: int = 0,
                       show_progress: bool = False) -> dict:
    """Train the seed's MLP for every weight decay in ``weight_decays`` on ``seeds``
    independent draws of the seed's data, all at once (batched matrix products).

    Copy ``(k, s)`` (decay ``k``, seed ``s``) starts from the same initialisation and sees the
    same data as every other copy with seed ``s``: the comparison across decays is paired.
    Coupled weight decay on every parameter, biases included, as in the seed's
    ``SGD(net.parameters(), weight_decay=...)``, is added as ``(λ/2)·Σw²`` to each copy's loss,
    which gives SGD the same update (the notebook shows the equivalence).

    Returns tensors of shape ``(len(weight_decays), seeds, ...)``: ``train_loss`` and
    ``test_loss`` after training, ``total_variation``, ``wiggle`` and ``slope`` of the fit
    (see :func:`regnorm.training.curve_shape`), ``curves`` on the dense grid, and
    ``weights``: the list of the four Linear layers' weight matrices; plus the data
    (``train_x`` of shape ``(10, 1)``, ``train_y`` and ``test_y`` of shape ``(seeds, 10, 1)``).
    """
    lambdas = torch.as_tensor(list(weight_decays), dtype=torch.float32)
    if lambdas.ndim != 1 or len(lambdas) == 0 or (lambdas < 0).any():
        raise ValueError(f"weight_decays must be a non-empty list of non-negative numbers, got {weight_decays}")
    n_wd = len(lambdas)
    # one initialisation per seed, shared by every decay
    x, y, test_y, layers = paired_seed_mlps(seeds, n_wd, n_hidden, seed)
    params = [t for layer in layers for t in layer]
    xs, ys = x.repeat(n_wd, 1, 1), y.repeat(n_wd, 1, 1)
    lam = lambdas.repeat_interleave(seeds)  # (n_wd * seeds,)
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)

    for _ in progress(range(iters), show_progress, desc=f"{n_wd * seeds} nets", leave=False):
        mse = ((batched_forward(layers, xs) - ys) ** 2).mean(dim=(1, 2))
        penalty = sum((p ** 2).sum(dim=(1, 2)) for p in params)
        opt.zero_grad()
        (mse + lam / 2 * penalty).sum().backward()
        opt.step()

    def split(t):
        return t.reshape(n_wd, seeds, *t.shape[1:])

    with torch.no_grad():
        grid = dense_grid().view(1, -1, 1).expand(n_wd * seeds, -1, 1)
        curves = batched_forward(layers, grid).squeeze(-1)
        out = batched_forward(layers, xs)
        return {
            "weight_decays": lambdas,
            "train_loss": split(((out - ys) ** 2).mean(dim=(1, 2))),
            "test_loss": split(((out - test_y.repeat(n_wd, 1, 1)) ** 2).mean(dim=(1, 2))),
            **{k: split(v) for k, v in curve_shape(curves).items()},
            "curves": split(curves),
            "weights": [split(w.detach().clone()) for w, _ in layers],
            "train_x": x[0].clone(),
            "train_y": y.clone(),
            "test_y": test_y.clone(),
        }
