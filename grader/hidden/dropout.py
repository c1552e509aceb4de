"""Hidden checks for assignment 03-dropout, and the answers of its questions.

They reuse the probes and diagnoses of the visible checks (:mod:`grader.checks.dropout`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from grader.checks._common import as_number, call, check, fail, generator
from grader.checks.dropout import _as_module_fn, _diagnose_shared_mask, _no_builtin, _probe

from ._sweep import check_selected


@check
def check_dropout_randomness(dropout) -> None:
    """A fresh mask on every call, reproducible from a generator, each unit independent
    (also across the rows and the columns of a 2-d input)."""
    x2 = _probe(shape=(64, 48), seed=15)
    with _no_builtin("dropout"):
        out = call(dropout, x2.clone(), p=0.5, training=True, generator=generator(16))
    if isinstance(out, torch.Tensor) and out.shape == x2.shape:
        _diagnose_shared_mask(out.detach() != 0, "dropout(x, p=0.5)")
    x = _probe(shape=(40, 50), seed=10)
    with _no_builtin("dropout"):
        first = call(dropout, x.clone(), p=0.5, training=True)
        second = call(dropout, x.clone(), p=0.5, training=True)
    if torch.equal(first != 0, second != 0):
        fail(
            "Two calls of dropout(x, p=0.5) zeroed exactly the same units: the same mask is "
            "used on every call (a seed set inside the function, or a cached mask).",
            "draw a new mask on every call, and never call torch.manual_seed inside dropout.",
        )
    with _no_builtin("dropout"):
        a = call(dropout, x.clone(), p=0.5, training=True, generator=generator(11))
        b = call(dropout, x.clone(), p=0.5, training=True, generator=generator(11))
    if not torch.equal(a != 0, b != 0):
        fail(
            "Two generators seeded alike gave different masks: dropout ignores its "
            "`generator` argument.",
            "pass generator=generator to the random call (torch.rand(x.shape, generator="
            "generator, ...) or torch.bernoulli(..., generator=generator)).",
        )
    g = generator(12)
    with _no_builtin("dropout"):
        c = call(dropout, x.clone(), p=0.5, training=True, generator=g)
        d = call(dropout, x.clone(), p=0.5, training=True, generator=g)
    if torch.equal(c != 0, d != 0):
        fail(
            "Two calls with the same generator object gave the same mask: the generator is "
            "re-seeded or copied inside dropout.",
            "draw from the generator you were given; its state must advance between calls.",
        )
    small = _probe(shape=(10,), seed=13)
    g = generator(14)
    counts = set()
    with _no_builtin("dropout"):
        for _ in range(200):
            counts.add(int((call(dropout, small.clone(), p=0.5, training=True, generator=g) == 0).sum()))
    if len(counts) == 1:
        fail(
            f"Every call zeroed exactly {counts.pop()} of 10 units: dropout must drop each unit "
            "independently with probability p, so the number dropped varies from call to call.",
            "use an element-wise Bernoulli mask, not a fixed number of units (randperm / topk).",
        )


@check
def check_Dropout_mode(Dropout) -> None:
    """The mode comes from self.training (set by train()/eval(), also through a parent),
    not from whether gradients are enabled; invalid p is refused."""
    x = _probe(shape=(100, 100), seed=23)
    layer = _as_module_fn(Dropout, 0.5, training=True)
    with torch.no_grad(), _no_builtin("Dropout"):
        out = call(layer, x, _what="Dropout(p=0.5) in train mode under torch.no_grad()")
    if torch.equal(out, x):
        fail(
            "In train mode under torch.no_grad() the module did nothing: the mode is read from "
            "torch.is_grad_enabled() instead of self.training.",
            "use self.training, which .train() and .eval() set.",
        )
    parent = nn.Sequential(call(Dropout, 0.5, _what="Dropout(p=0.5)"))
    parent.eval()
    with _no_builtin("Dropout"):
        out = call(parent, x, _what="nn.Sequential(Dropout(0.5)).eval()")
    if not torch.equal(out.detach(), x):
        fail(
            "After parent.eval() the Dropout inside still dropped units: the module keeps its "
            "own mode flag instead of self.training (which eval() sets on every child).",
            "read self.training in forward(); do not store a separate flag.",
        )
    for bad in (-0.5, 1.2):
        try:
            layer = Dropout(bad)
            layer.train()
            layer(x)
        except ValueError:
            continue
        except NotImplementedError:
            fail("Dropout is not implemented yet.", "replace `raise NotImplementedError()`.")
        except Exception as exc:  # a crash, not a clear refusal
            fail(
                f"Dropout({bad}) raised {type(exc).__name__} instead of ValueError.",
                "check p in __init__ (or let dropout raise ValueError for it).",
            )
        fail(f"Dropout({bad}) was accepted.", "raise ValueError when p is outside [0, 1].")


@check
def check_DropoutMLP_modes(DropoutMLP) -> None:
    """Random in train(), deterministic in eval(), deterministic in train() with p = 0."""
    torch.manual_seed(0)  # the global RNG is restored by @check
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    net = call(DropoutMLP, 32, 0.5, _what="DropoutMLP(32, p=0.5)")
    net.eval()
    with torch.no_grad():
        if not torch.equal(net(x), net(x)):
            fail("DropoutMLP in eval() gave two different outputs for the same input.", "the dropout layers must follow the module's mode (self.training).")
        net.train()
        if torch.equal(net(x), net(x)):
            fail("DropoutMLP(32, p=0.5) in train() gave the same output twice: dropout is not active.", "put the dropout layers in self.linears and call them in forward().")
    net0 = call(DropoutMLP, 32, 0.0, _what="DropoutMLP(32, p=0.0)").train()
    with torch.no_grad():
        a, b = net0(x), net0.eval()(x)
    if not torch.allclose(a, b):
        fail("DropoutMLP(32, p=0) in train() differs from eval().", "with p = 0 dropout must be the identity.")


@check
def check_scaling_answer(expected_without_rescale) -> None:
    """The seed's experiment without the 1/(1-p) rescale: E[output] = (1 - p) * 10000."""
    try:
        value = float(expected_without_rescale)
    except (TypeError, ValueError):
        fail(
            f"expected_without_rescale is {expected_without_rescale!r}, not a number.",
            "assign a number, for example expected_without_rescale = 1234.0.",
        )
    if math.isclose(value, 5000.0, rel_tol=1e-6):
        return
    if math.isclose(value, 10000.0, rel_tol=1e-6):
        fail(
            "10 000 is the expected output *with* the rescale (and the exact output in eval()).",
            "without dividing by (1 - p), how many of the 10 000 ones survive on average?",
        )
    if abs(value - 9942) < 1:
        fail(
            "9942 is the one random draw the seed printed, with the rescale.",
            "compute the expectation without the rescale, not a sample.",
        )
    if 0 < value <= 1:
        fail(
            f"{value} looks like a probability; the question asks for the expected output value.",
            "multiply by the number of units and by the weight (1).",
        )
    fail(
        f"{value:g} is not the expected training output without the rescale.",
        "each of the 10 000 inputs (value 1, weight 1) survives with probability 1 - p; add "
        "up the expected contributions.",
    )


# ----------------------------------------------------------------------------- questions


@check
def check_best_p(best_p, sweep) -> None:
    """best_p is the p of the sweep with the smallest mean validation error."""
    check_selected(best_p, sweep, "best_p", "p")


def _variance_term(curves: torch.Tensor, dim: int = 0) -> float:
    return curves.double().var(dim=dim, unbiased=False).mean().item()


@check
def check_variance_ratio(variance_ratio, sweep) -> None:
    """variance_ratio is the variance term of the p = 0.5 fits divided by that of the p = 0
    fits: per grid point the variance across the draws, averaged over the grid."""
    value = as_number(variance_ratio, "variance_ratio")
    values = [float(v) for v in sweep["values"]]
    if 0.0 not in values or 0.5 not in values:
        fail("The sweep passed in has no p = 0 or no p = 0.5.", "pass the notebook's `sweep`, unchanged.")
    with_p, without = (sweep["curves"][values.index(p)] for p in (0.5, 0.0))
    expected = _variance_term(with_p) / _variance_term(without)
    if math.isclose(value, expected, rel_tol=1e-3):
        return
    grid = torch.linspace(-1, 1, with_p.shape[-1], dtype=torch.float64)  # the sweep's dense grid
    bias2 = [((c.double().mean(dim=0) - 1.5 * grid) ** 2).mean().item() for c in (with_p, without)]
    known = [
        (1 / expected, "is the inverse ratio: the variance term without dropout over the one with it.",
         "divide the p = 0.5 variance term by the p = 0 one."),
        (math.sqrt(expected), "is a ratio of standard deviations; the variance term is a variance.",
         "do not take the square root: average the variances, then divide."),
        (_variance_term(with_p, dim=1) / _variance_term(without, dim=1),
         "compares the variance *along each curve* (over x); the variance term is the spread "
         "across the draws at each x.",
         "take the variance over dim 0 of sweep['curves'][k] (the draws), then the mean over the grid."),
        (bias2[0] / bias2[1], "is the ratio of the squared-bias terms, not of the variance terms.",
         "use the variance across the draws, not the gap between the mean curve and the true line."),
    ]
    for candidate, mistake, fix in known:
        if math.isclose(value, candidate, rel_tol=1e-3):
            fail(f"variance_ratio = {value:.4g} {mistake}", fix)
    fail(
        f"variance_ratio = {value:.4g} is not the ratio of the variance terms of your run.",
        "for p = 0.5 and p = 0: sweep['curves'][k].var(dim=0, unbiased=False).mean(); divide the first by the second.",
    )
