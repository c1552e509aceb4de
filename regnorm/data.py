"""Datasets generated in code (nothing is downloaded)."""
from __future__ import annotations

import torch

TRUE_SLOPE = 1.5  # the seed's w


def seed_regression(num_data: int = 10, x_range=(-1.0, 1.0), train_noise: float = 0.5,
                    test_noise: float = 0.3, generator: torch.Generator | None = None):
    """The seed's ``gen_data``: y = 1.5 x + noise on ``num_data`` evenly spaced points.

    Returns ``train_x, train_y, test_x, test_y``, each of shape ``(num_data, 1)``. As in the
    seed, the test inputs are the training inputs with fresh, smaller noise (std 0.3).
    """
    if num_data < 2:
        raise ValueError(f"num_data must be at least 2, got {num_data}")
    train_x = torch.linspace(*x_range, num_data).unsqueeze(1)
    train_y = TRUE_SLOPE * train_x + train_noise * torch.randn(train_x.shape, generator=generator)
    test_x = torch.linspace(*x_range, num_data).unsqueeze(1)
    test_y = TRUE_SLOPE * test_x + test_noise * torch.randn(test_x.shape, generator=generator)
    return train_x, train_y, test_x, test_y


def dense_grid(x_range=(-1.0, 1.0), num: int = 401) -> torch.Tensor:
    """Evenly spaced inputs of shape ``(num, 1)`` to draw a fitted curve."""
    return torch.linspace(*x_range, num).unsqueeze(1)


def fresh_points(draws: int, num: int, noise: float = 0.5, x_range=(-1.0, 1.0),
                 generator: torch.Generator | None = None):
    """Held-out data for ``draws`` independent data sets: ``num`` inputs drawn uniformly
    over the whole input range (not the training inputs), ``y = 1.5 x + noise``. Returns
    ``x, y`` of shape ``(draws, num, 1)``; validation and test sets are made this way."""
    if draws < 1 or num < 1:
        raise ValueError(f"draws and num must be positive, got {draws} and {num}")
    lo, hi = x_range
    x = lo + (hi - lo) * torch.rand(draws, num, 1, generator=generator)
    y = TRUE_SLOPE * x + noise * torch.randn(x.shape, generator=generator)
    return x, y
