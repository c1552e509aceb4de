"""A two-class colour-image dataset generated in code (a stand-in for the seed's banknote photos).

The seed trains LeNet on photos of 1-yuan and 100-yuan RMB notes, which are not public. This
module draws a deterministic stand-in with the same tensor format (3 x 32 x 32, two classes)
and real structure, so that a convolutional network has something to learn and something to
generalise:

* the class is carried by a **pattern**: each image shows a "note", a soft-edged rectangle
  filled with a sinusoidal grating whose stripes run roughly horizontally for class 0
  (angle within +-40 degrees of horizontal) and roughly vertically for class 1 (within +-40
  degrees of vertical);
* everything else is **nuisance** shared by both classes: the stripe frequency and phase, the
  position of the note (shift), its colour tint, the brightness and contrast of the whole
  image, and independent Gaussian pixel noise.

Colour, brightness and position therefore say nothing about the class; only the orientation
does. Pixel values are roughly standardised (mean near 0, standard deviation near 1 over a
large sample), as after the ``transforms.Normalize`` of the seed's pipeline.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

DEFAULT_SEED = 0  # used when no generator is given, so that the default dataset is fixed


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def two_class_images(n: int, *, generator: torch.Generator | None = None,
                     size: int = 32) -> tuple[Tensor, Tensor]:
    """Draw ``n`` images of two classes.

    Args:
        n: number of images, at least 1. The classes are balanced: ``n // 2`` or
           ``n - n // 2`` images each, in random order.
        generator: a CPU ``torch.Generator`` used for every random draw. Without one, a fresh
           generator seeded with ``DEFAULT_SEED`` is used, so the result is always the same
           (the global random state is neither used nor changed).
        size: height and width of the images (at least 8).

    Returns:
        ``(x, y)``: ``x`` float32 of shape ``(n, 3, size, size)``, ``y`` int64 of shape
        ``(n,)`` with values in ``{0, 1}``.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, got {type(size).__name__}")
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    if generator is None:
        generator = torch.Generator().manual_seed(DEFAULT_SEED)

    # balanced labels in random order
    y = (torch.arange(n) % 2)[torch.randperm(n, generator=generator)]

    # class pattern: stripe orientation (class 0 near horizontal, class 1 near vertical)
    jitter = _uniform(n, -40.0, 40.0, generator)
    theta = torch.deg2rad(jitter + 90.0 * y)
    freq = _uniform(n, 2.0, 4.0, generator)            # cycles across the image width
    phase = _uniform(n, 0.0, 2 * math.pi, generator)

    # nuisance: position and size of the note, colour, brightness, contrast, noise
    cx = _uniform(n, -0.3, 0.3, generator)
    cy = _uniform(n, -0.3, 0.3, generator)
    half_w = _uniform(n, 0.5, 0.75, generator)
    half_h = _uniform(n, 0.4, 0.65, generator)
    tint = _uniform(3 * n, 0.4, 1.0, generator).view(n, 3)       # stripe colour per channel
    paper = _uniform(3 * n, -0.4, 0.4, generator).view(n, 3)     # note background per channel
    brightness = _uniform(n, -0.4, 0.4, generator)
    contrast = _uniform(n, 0.3, 1.3, generator)
    noise = torch.randn(n, 3, size, size, generator=generator)

    coords = torch.linspace(-1.0, 1.0, size)
    v, u = torch.meshgrid(coords, coords, indexing="ij")          # v: rows (down), u: columns
    u = u.view(1, size, size) - cx.view(n, 1, 1)
    v = v.view(1, size, size) - cy.view(n, 1, 1)
    # stripes run along the direction theta, so they vary along its normal
    along_normal = -u * torch.sin(theta).view(n, 1, 1) + v * torch.cos(theta).view(n, 1, 1)
    grating = torch.sin(math.pi * freq.view(n, 1, 1) * along_normal + phase.view(n, 1, 1))
    sharp = 12.0
    window = (torch.sigmoid(sharp * (half_w.view(n, 1, 1) - u.abs()))
              * torch.sigmoid(sharp * (half_h.view(n, 1, 1) - v.abs())))     # (n, size, size)

    note = (paper.view(n, 3, 1, 1) + tint.view(n, 3, 1, 1) * grating.unsqueeze(1)) * window.unsqueeze(1)
    x = brightness.view(n, 1, 1, 1) + contrast.view(n, 1, 1, 1) * note + 0.7 * noise
    x = 1.3 * x  # roughly unit standard deviation over the dataset
    return x.to(torch.float32).contiguous(), y.to(torch.int64)
