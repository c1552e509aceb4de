"""The seed's plain LeNet for 3 x 32 x 32 images, with the seed's ``initialize_weights``."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    """``conv1(3->6, 5) ReLU maxpool2 conv2(6->16, 5) ReLU maxpool2 fc1(400->120) ReLU
    fc2(120->84) ReLU fc3(84->classes)``, the network of the seed's banknote experiment."""

    def __init__(self, classes: int):
        super().__init__()
        if isinstance(classes, bool) or not isinstance(classes, int):
            raise TypeError(f"classes must be an int, got {type(classes).__name__}")
        if classes < 1:
            raise ValueError(f"classes must be positive, got {classes}")
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = out.flatten(1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)

    def initialize_weights(self, linear_std: float = 0.1):
        """The seed's "carefully designed" initialisation: Xavier-normal convolutions,
        ``N(0, linear_std^2)`` fully connected weights, zero biases, BN weights 1 and
        biases 0. The ``initialize_weights`` printed in the seed (a method of its ``LeNet_bn``)
        draws the fully connected weights from N(0, 1), i.e. ``linear_std=1.0``; this course's
        default ``linear_std=0.1`` is its own choice, not the seed's. Returns ``self``."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, linear_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        return self
