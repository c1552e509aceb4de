"""The form of the answers of the two questions on the run (``largest_lr_bn``,
``first_layer_moved``)."""
from __future__ import annotations

from .._common import check, fail


# ---------------------------------------------------------------------------- questions on the run

def _number(value, name):
    if value is None:
        return None
    if isinstance(value, bool):
        fail(f"{name} is {value!r}, not a learning rate.", f"assign a number, e.g. {name} = 0.5.")
    try:
        return float(value)
    except (TypeError, ValueError):
        fail(f"{name} is {value!r}, not a number.", f"assign a number from the table, e.g. {name} = 0.5.")


def _largest(sweep, setup):
    ok = [isinstance(v, (int, float)) and v == v and abs(v) != float("inf") and v < sweep["threshold"]
          for v in sweep["final_loss"][sweep["setups"].index(setup)]]
    good = [lr for lr, t in zip(sweep["lrs"], ok) if t]
    return max(good) if good else None


@check
def check_largest_lr_bn(largest_lr_bn, lr_sweep) -> None:
    """The largest learning rate at which the BN network trained, recomputed from the sweep run."""
    value = _number(largest_lr_bn, "largest_lr_bn")
    expected = _largest(lr_sweep, "BN")
    if expected is None:
        if value is None:
            return
        fail(f"In your sweep the BN network never got below the threshold, so no learning rate "
             f"trained it; largest_lr_bn is {value:g}.", "assign None.")
    if value is not None and abs(value - expected) <= 1e-9 * expected:
        return
    got = "None" if value is None else f"{value:g}"
    others = {name: _largest(lr_sweep, name) for name in lr_sweep["setups"] if name != "BN"}
    for name, lr in others.items():
        if value is not None and lr is not None and abs(value - lr) <= 1e-9 * lr:
            fail(f"largest_lr_bn = {got} is the largest learning rate that trained the network "
                 f"\"{name}\", not \"BN\" (PyTorch's initial weights with batch norm).",
                 "read the row \"BN\" of the table.")
    row = lr_sweep["final_loss"][lr_sweep["setups"].index("BN")]
    finite = [(v, lr) for v, lr in zip(row, lr_sweep["lrs"]) if v == v and abs(v) != float("inf")]
    if finite and value is not None and abs(value - min(finite)[1]) <= 1e-9 * value:
        fail(f"largest_lr_bn = {got} is the learning rate with the lowest final loss; the question "
             "asks for the largest learning rate that still trained (final loss below the "
             "threshold).", "take the largest learning rate of the row \"BN\" marked as trained.")
    above = [lr for lr in lr_sweep["lrs"] if lr > expected]
    if above and value is not None and abs(value - above[0]) <= 1e-9 * value:
        fail(f"largest_lr_bn = {got} is the first learning rate at which the BN network did NOT "
             "train (its final loss is above the threshold).",
             "take the learning rate just below it.")
    fail(f"largest_lr_bn = {got} is not the largest learning rate at which the BN network trained "
         "in your sweep.", "read the row \"BN\" of the table printed by the sweep cell "
         "(the largest learning rate marked as trained).")


def _first_moved(probe, mode="train", tol=1e-6):
    return next((name for name, change in probe[mode].items() if change > tol), None)


@check
def check_first_layer_moved(first_layer_moved, batch_probe) -> None:
    """The first layer whose output for image 0 changed with the rest of the batch, from the run."""
    layers = list(batch_probe["train"])
    if not isinstance(first_layer_moved, str) or first_layer_moved not in layers:
        fail(f"first_layer_moved is {first_layer_moved!r}; expected one of the layer names "
             f"{layers} (a string).", "assign the attribute name, e.g. first_layer_moved = \"fc2\".")
    expected = _first_moved(batch_probe)
    if first_layer_moved == expected:
        return
    change = batch_probe["train"][first_layer_moved]
    if change <= 1e-6:
        fail(f"In your run the output of {first_layer_moved} for image 0 did not change (largest "
             f"difference {change:.2g}) when the other images were replaced.",
             f"{first_layer_moved} computes each image on its own; look for the first layer whose "
             "difference is not 0 in train mode.")
    fail(f"The output of {first_layer_moved} changed, but it is not the first: "
         f"{layers[:layers.index(first_layer_moved)]} run before it, and one of them already "
         "changed, and every later layer inherits the change.",
         "find the earliest layer in train mode whose difference is not 0.")
