"""Checks of ``soft_threshold``: ``sign(w)·max(|w| - t, 0)`` on probes whose answers are exact."""
from __future__ import annotations

import torch

from .._common import call, check, fail, forbid_builtins


# ----------------------------------------------------------------------------- soft_threshold


def _soft_probe(dtype=torch.float32) -> torch.Tensor:
    # values on a grid of multiples of 1/8: |w| - t is exact in binary floating point
    return torch.tensor([-2.0, -1.0, -0.625, -0.5, -0.25, 0.0, 0.125, 0.5, 0.75, 1.5, 3.0], dtype=dtype)


@check
def check_soft_threshold(soft_threshold) -> None:
    """sign(w)·max(|w| - t, 0): exact zeros inside [-t, t], the rest moved t towards 0."""
    for dtype in (torch.float32, torch.float64):
        w = _soft_probe(dtype).view(1, -1).repeat(2, 1)
        t = 0.5
        given = w.clone()
        with forbid_builtins("soft_threshold", ("softshrink",), "torch.sign, abs and clamp(min=0)"):
            out = call(soft_threshold, given, t, _what=f"soft_threshold(w, {t})")
        if not torch.equal(given, w):
            fail("soft_threshold modified w in place.", "build a new tensor; the caller still needs w.")
        if not isinstance(out, torch.Tensor) or out.shape != w.shape:
            fail("soft_threshold did not return a tensor of w's shape.", "return sign(w) * clamp(|w| - t, min=0), element-wise.")
        if out.dtype != dtype:
            fail(f"soft_threshold returned {out.dtype} for a {dtype} input.", "keep w's dtype.")
        out = out.detach()
        expected = torch.sign(w) * torch.clamp(w.abs() - t, min=0)
        if torch.equal(out, expected):
            continue
        if torch.allclose(out, w - t * torch.sign(w)):
            fail(
                "soft_threshold moved every weight by t towards zero and let the small ones cross "
                "it (w = 0.25 became -0.25): without the max(·, 0) it is a constant pull, the "
                "subgradient step, and it never produces exact zeros.",
                "clamp the shrunken magnitude at zero: sign(w) * torch.clamp(w.abs() - t, min=0).",
            )
        if torch.allclose(out, torch.clamp(w - t, min=0)):
            fail(
                "soft_threshold zeroed every negative weight: clamp(w - t, min=0) is a shifted ReLU, "
                "which only handles positive weights. L1 shrinks both signs towards zero.",
                "work on the magnitude and put the sign back: sign(w) * torch.clamp(w.abs() - t, min=0).",
            )
        inside = w.abs() <= t
        if (out[inside] != 0).any():
            fail(
                "soft_threshold left weights with |w| <= t nonzero (they should become exact zeros, "
                "the whole point of the proximal L1 step).",
                "clamp |w| - t at 0, so every |w| <= t maps to exactly 0.",
            )
        if torch.equal(out[~inside], w[~inside]):
            fail("soft_threshold zeroes the small weights but does not shrink the large ones (hard thresholding).", "subtract t from the magnitude of every weight: sign(w) * (|w| - t) outside [-t, t].")
        fail("soft_threshold(w, 0.5) differs from sign(w)·max(|w| - 0.5, 0).", "return sign(w) * torch.clamp(w.abs() - t, min=0).")
