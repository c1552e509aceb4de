"""Visible checks for assignment 02-weight-decay: ``l1_penalty``, ``l2_penalty``, ``sgd_step``,
``adamw_step``, ``soft_threshold``, ``no_decay_param_groups`` and the form of the questions'
answers (the hidden checks and the answers live in :mod:`grader.hidden.weight_decay`).

The references are PyTorch's own: sums of ``abs``/``pow`` in float64 for the penalties,
``torch.optim.SGD`` and ``torch.optim.AdamW`` themselves for the two updates (twenty steps),
the formula ``sign(w)·max(|w| - t, 0)`` on probes whose answers are exact, and the dimension
of every parameter for the groups. When an answer is wrong the check computes what the known
mistakes would give and names the one that matches.

One module per exercise group (``penalties``, ``sgd``, ``adamw``, ``sparsity``, ``groups``,
``questions``); this package re-exports every check, so test cells import
``from grader.checks.weight_decay import check_...``.
"""
from .adamw import check_adamw_step, check_adamw_step_state
from .groups import check_no_decay_param_groups
from .penalties import check_l1_penalty, check_l2_penalty
from .questions import (
    check_best_weight_decay_is_swept, check_decay_time_scale_is_a_step, check_overfitting_starts_is_a_step,
)
from .sgd import check_sgd_step, check_sgd_step_momentum
from .sparsity import check_soft_threshold

__all__ = [
    "check_l1_penalty", "check_l2_penalty", "check_sgd_step", "check_sgd_step_momentum",
    "check_adamw_step", "check_adamw_step_state", "check_soft_threshold", "check_no_decay_param_groups",
    "check_best_weight_decay_is_swept", "check_overfitting_starts_is_a_step", "check_decay_time_scale_is_a_step",
]
