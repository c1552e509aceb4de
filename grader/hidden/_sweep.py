"""The answers of the questions about a regularisation sweep
(:func:`regnorm.training.regularisation_sweep`), recomputed from the run the student's
notebook made, which the test cell passes in. Shared by 02-weight-decay and 03-dropout."""
from __future__ import annotations

import math

from grader.checks._common import as_number, fail, one_of


def _value_at(sweep, index) -> float:
    return float(sweep["values"][int(index)])


def check_selected(answer, sweep, name: str, symbol: str) -> None:
    """``answer`` is the swept value with the smallest validation MSE, averaged over the draws."""
    value = as_number(answer, name)
    values = [float(v) for v in sweep["values"]]
    one_of(value, values, name, f"the swept values of {symbol}")
    mean = {key: sweep[key].mean(dim=1) for key in ("val_loss", "test_loss", "train_loss")}
    expected = _value_at(sweep, mean["val_loss"].argmin())
    if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-12):
        return
    why = {
        _value_at(sweep, mean["test_loss"].argmin()): (
            f"{symbol} = {value:g} has the smallest *test* error. Choosing on the test set makes the "
            "reported test error optimistic: the test set must stay unseen until the choice is made.",
            "choose by the validation error, sweep['val_loss'], averaged over the draws (dim=1)."),
        _value_at(sweep, mean["train_loss"].argmin()): (
            f"{symbol} = {value:g} has the smallest *training* error: training error always favours "
            "the weakest regulariser, so it cannot choose one.",
            "choose by the validation error, sweep['val_loss'], averaged over the draws (dim=1)."),
        _value_at(sweep, mean["val_loss"].argmax()): (
            f"{symbol} = {value:g} has the *largest* validation error.",
            "take the argmin of the mean validation error, not the argmax."),
        _value_at(sweep, sweep["val_history"].mean(dim=1).min(dim=-1).values.argmin()): (
            f"{symbol} = {value:g} has the lowest validation error at *some* iteration of training, "
            "not at the end: the networks you would use are the trained ones.",
            "compare the validation errors after training, sweep['val_loss']."),
    }
    for candidate, (mistake, fix) in why.items():
        if math.isclose(value, candidate, rel_tol=1e-6, abs_tol=1e-12):
            fail(mistake, fix)
    medians = sweep["val_loss"].median(dim=1).values
    if math.isclose(value, _value_at(sweep, medians.argmin()), rel_tol=1e-6):
        fail(f"{symbol} = {value:g} minimises the median validation error over the draws, not the mean.",
             "average the validation error over the draws: sweep['val_loss'].mean(dim=1).")
    fail(
        f"{symbol} = {value:g} is not the value with the smallest mean validation error.",
        "average sweep['val_loss'] over the draws (dim=1) and take the value at its argmin.",
    )


def check_step(answer, sweep, name: str, row: int) -> None:
    """``answer`` is the iteration at which the mean validation loss of ``sweep``'s row
    ``row`` (the unregularised networks) is smallest."""
    value = as_number(answer, name)
    steps = [int(s) for s in sweep["steps"]]
    val = sweep["val_history"][row].mean(dim=0)
    index = int(val.argmin())
    expected = steps[index]
    if value == expected:
        return
    if value == index and index != expected:
        fail(
            f"{name} = {value:g} is the position of the minimum in the recorded history, not an "
            f"iteration: the losses were recorded every {steps[1] - steps[0]} iterations.",
            "look the position up in sweep['steps'].",
        )
    one_of(value, steps, name, "the recorded iterations sweep['steps']")
    train_index = int(sweep["train_history"][row].mean(dim=0).argmin())
    if value == steps[train_index]:
        fail(
            f"{name} = {value:g} is where the *training* loss is lowest; it goes on falling long "
            "after the validation loss has turned up.",
            "over-fitting starts where the *validation* loss stops falling: use sweep['val_history'].",
        )
    other = [steps[int(sweep["val_history"][k].mean(dim=0).argmin())] for k in range(len(sweep["values"]))]
    if value in other:
        fail(
            f"{name} = {value:g} is where the validation loss of another setting is lowest.",
            f"use the networks without the regulariser: row {row} of sweep['val_history'], averaged over the draws.",
        )
    fail(
        f"{name} = {value:g} is not the iteration at which the mean validation loss without the "
        "regulariser is lowest.",
        f"average sweep['val_history'][{row}] over the draws (dim=0), take its argmin and look it up in sweep['steps'].",
    )
