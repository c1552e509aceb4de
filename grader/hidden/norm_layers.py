"""Hidden checks for assignment 05-norm-layers (visible ones: ``grader.checks.norm_layers``).

Besides more shapes and error cases, the answers of the two questions live here: both are
recomputed from the numbers of the student's own run, passed to the check, never compared
with a fixed letter.
"""
from __future__ import annotations

import torch

from ..checks._common import call, check, expect_raises, fail, generator
from ..checks.norm_layers import (
    _LAYERS, _gn_case, _layer_names, _ln_backward_case, _ln_case, _mode,
    _no_builtin, _probe,
)


@check
def check_layer_norm_more(layer_norm) -> None:
    """Other ranks and shapes (2-dim features, 3-dim sequences, torch.Size), gradients flow."""
    g = generator(5)
    x2 = _probe((16, 10), seed=6)
    _ln_case(layer_norm, x2, 10)
    x3 = _probe((4, 7, 5), seed=7, dtype=torch.float32)
    w = 1 + torch.randn(7, 5, generator=g)
    _ln_case(layer_norm, x3, torch.Size([7, 5]), w, None)
    _ln_case(layer_norm, x3, [5], None, torch.randn(5, generator=g))
    x = _probe((3, 4, 6), seed=8).requires_grad_(True)
    with _no_builtin("layer_norm"):
        out = call(layer_norm, x, [6], _what="layer_norm(x requiring grad, [6])")
    if not out.requires_grad:
        fail("layer_norm's output does not track gradients: backpropagation cannot pass through it.",
             "compute it from x with differentiable operations (no .detach(), no .data, no numpy).")



@check
def check_group_norm_affine(group_norm) -> None:
    """weight and bias of shape (C,) scale and shift each channel, not each group."""
    g = generator(24)
    for shape, groups, dtype in (((3, 4, 5, 4), 2, torch.float64), ((2, 6, 7), 3, torch.float32),
                                 ((2, 6, 3, 5), 2, torch.float64)):
        c = shape[1]
        w = (1 + 0.5 * torch.randn(c, generator=g, dtype=torch.float64)).to(dtype)
        b = torch.randn(c, generator=g, dtype=torch.float64).to(dtype)
        _gn_case(group_norm, _probe(shape, seed=25, dtype=dtype), groups, w, b)



@check
def check_equivalent_norm_errors(equivalent_norm) -> None:
    """A group count that does not divide the number of channels raises ValueError."""
    for groups, channels in ((3, 8), (16, 8), (5, 6)):
        expect_raises(
            equivalent_norm, groups, channels,
            mistake=(f"equivalent_norm accepted num_groups={groups} for {channels} channels, "
                     f"which cannot be split into {groups} equal groups: such a GroupNorm does "
                     "not exist."),
            fix="raise ValueError when num_channels % num_groups != 0, saying both numbers.",
        )


@check
def check_instance_norm_errors(instance_norm) -> None:
    """One spatial value per channel raises ValueError, as F.instance_norm does (the variance of
    one value is 0 and the output would be all zeros); so does an input without spatial dims."""
    for shape in ((4, 3, 1), (2, 3, 1, 1), (2, 2, 1, 1, 1)):
        x = _probe(shape, seed=15)
        expect_raises(
            instance_norm, x,
            mistake=(f"instance_norm accepted an input of shape {list(shape)}: one spatial value per "
                     "channel, so every (sample, channel) set holds a single value, whose variance is "
                     "0 and whose normalised output is 0 whatever the input. "
                     "torch.nn.functional.instance_norm raises ValueError (\"Expected more than 1 "
                     "spatial element when training\")."),
            fix="count the spatial values (x[0, 0].numel()) and raise ValueError when there is "
                "only one, saying the shape.",
        )
    expect_raises(
        instance_norm, _probe((4, 3), seed=16),
        mistake="instance_norm accepted a 2-dim input (N, C): it has no spatial dimensions to "
                "normalise over.",
        fix="accept only 3-, 4- and 5-dim inputs (N, C, *spatial) and raise ValueError otherwise.",
    )


@check
def check_layer_norm_backward_more(layer_norm_backward) -> None:
    """Other shapes (one sample, two features, many features), float32, another eps."""
    _ln_backward_case(layer_norm_backward, 1, 5, seed=42)
    _ln_backward_case(layer_norm_backward, 9, 2, seed=43)
    _ln_backward_case(layer_norm_backward, 4, 33, seed=44, eps=1e-3)
    _ln_backward_case(layer_norm_backward, 8, 12, seed=45, dtype=torch.float32)


# --------------------------------------------------------------------------------------------
# the questions, recomputed from the run

_MOVED = 1e-4  # a mean absolute change above this is a move; float32 rounding is ~1e-7


@check
def check_moved_layers(moved_layers, partner_moves) -> None:
    """The layers whose output for image 0 changed when only its batch partners changed, as
    measured in the student's own run (section 3.2's `partner_moves`)."""
    answer = _layer_names(moved_layers, "moved_layers")
    measured = {name: float(partner_moves[name]) for name in _LAYERS}
    moved = {name for name, v in measured.items() if v > _MOVED}
    if answer == moved:
        return
    table = ", ".join(f"{k} {v:.2g}" for k, v in measured.items())
    if answer == set(_LAYERS) - moved:
        fail(f"moved_layers = {sorted(answer)} names the layers that did NOT move in your run "
             f"(mean change of image 0's output: {table}).",
             "list the layers whose output changed (a mean change clearly above float rounding, "
             "i.e. above 1e-4), not those that stayed put.")
    extra, missing = sorted(answer - moved), sorted(moved - answer)
    fail(f"moved_layers = {sorted(answer)} does not match your run: the mean change of image 0's "
         f"output when only its batch partners changed was {table}, so the layers that moved are "
         f"{sorted(moved) or 'none'}"
         + (f"; {extra} did not move" if extra else "") + (f"; {missing} moved too" if missing else "") + ".",
         "read the printed partner_moves of section 3.2 (a change of order 1e-7 or less is float "
         "rounding, not a move) and list the layers above 1e-4. If your own group_norm or "
         "layer_norm moved, its statistics mix samples: fix it first.")


@check
def check_better_bn_mode(better_bn_mode, bn_modes) -> None:
    """Which evaluation of the BN networks trained with batches of 2 was more accurate in the
    student's run: with running statistics ('eval') or with the statistics of test batches
    of 2 ('train'); a tie accepts both."""
    answer = _mode(better_bn_mode)
    acc = {k: float(bn_modes[k]) for k in ("eval", "train")}
    if abs(acc["eval"] - acc["train"]) < 1e-9:
        return
    best = max(acc, key=acc.get)
    if answer != best:
        fail(f"better_bn_mode = {better_bn_mode!r}, but in your run the BN networks trained with "
             f"batches of 2 reached test accuracy {acc['eval']:.3f} in eval() mode (running "
             f"statistics) and {acc['train']:.3f} in train() mode (statistics of test batches of 2).",
             f"answer from your printed bn_modes: the higher of the two is {best!r}.")
