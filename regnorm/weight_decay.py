"""Experiment helpers for 02-weight-decay: many copies of the seed's MLP trained at once."""
from __future__ import annotations

from .training import regularisation_sweep


def weight_decay_sweep(weight_decays, **kwargs) -> dict:
    """:func:`regnorm.training.regularisation_sweep` of the weight decay λ: coupled decay on
    every parameter, biases included, as in the seed's ``SGD(net.parameters(),
    weight_decay=...)``, added as ``(λ/2)·Σw²`` to each copy's loss (the same SGD update;
    the notebook shows the equivalence)."""
    return regularisation_sweep("weight_decay", weight_decays, **kwargs)
