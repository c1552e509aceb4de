"""The seed's models, written with PyTorch's own layers (exercises rebuild them)."""
from __future__ import annotations

from torch import nn


class MLP(nn.Module):
    """The seed's regression MLP: ``Linear(1, n) ReLU [Linear(n, n) ReLU] x2 Linear(n, 1)``."""

    def __init__(self, neural_num: int):
        super().__init__()
        if neural_num < 1:
            raise ValueError(f"neural_num must be positive, got {neural_num}")
        self.linears = nn.Sequential(
            nn.Linear(1, neural_num), nn.ReLU(inplace=True),
            nn.Linear(neural_num, neural_num), nn.ReLU(inplace=True),
            nn.Linear(neural_num, neural_num), nn.ReLU(inplace=True),
            nn.Linear(neural_num, 1),
        )

    def forward(self, x):
        return self.linears(x)


class ScaleNet(nn.Module):
    """The seed's scaling experiment: ``dropout_layer`` then ``Linear(input_num, 1)`` with
    every weight set to 1 and no bias, so the output is the sum of what survives."""

    def __init__(self, input_num: int, dropout_layer: nn.Module):
        super().__init__()
        self.linears = nn.Sequential(dropout_layer, nn.Linear(input_num, 1, bias=False))
        self.linears[1].weight.detach().fill_(1.0)

    def forward(self, x):
        return self.linears(x)
