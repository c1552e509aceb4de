"""The form of the questions' answers (their values: :mod:`grader.hidden.weight_decay`)."""
from __future__ import annotations

from .._common import as_number, check, one_of


# ----------------------------------------------------------------------------- questions
# The form of the answers only: their values are checked by grader.hidden.weight_decay.


@check
def check_best_weight_decay_is_swept(best_weight_decay, sweep) -> None:
    """The answer is one of the weight decays the sweep trained."""
    one_of(as_number(best_weight_decay, "best_weight_decay"), sweep["values"],
           "best_weight_decay", "the swept values of λ")


@check
def check_overfitting_starts_is_a_step(overfitting_starts, sweep) -> None:
    """The answer is one of the iterations at which the sweep recorded its losses."""
    one_of(as_number(overfitting_starts, "overfitting_starts"), sweep["steps"],
           "overfitting_starts", "the recorded iterations sweep['steps']")


@check
def check_decay_time_scale_is_a_step(decay_time_scale, decay_run) -> None:
    """The answer is one of the steps the run recorded (a whole number of steps)."""
    one_of(as_number(decay_time_scale, "decay_time_scale"), [int(s) for s in decay_run["steps"]],
           "decay_time_scale", "the recorded steps decay_run['steps']")
