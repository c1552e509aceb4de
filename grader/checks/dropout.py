"""Checks for assignment 03-dropout: ``dropout``, ``Dropout``, ``DropoutMLP`` and the
scaling question.

The references are numbers and properties, never a working solution: survivors equal
``x / (1 - p)``, the dropped fraction is ``p`` within six binomial standard deviations,
``eval()`` is the identity, the same generator state gives the same mask.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._common import (
    binomial_tolerance,
    call,
    check,
    expect_raises,
    fail,
    forbid_builtins,
    generator,
)

_BUILTINS = ("dropout", "dropout_", "alpha_dropout", "feature_dropout", "dropout1d", "dropout2d", "dropout3d")
_HOW = "a Bernoulli mask from torch.rand(..., generator=generator) < p or torch.bernoulli"


def _no_builtin(exercise: str):
    return forbid_builtins(exercise, _BUILTINS, _HOW)


def _probe(shape=(200, 500), dtype=torch.float32, seed=0) -> torch.Tensor:
    """Inputs in [1, 2): a zero in the output can only mean 'dropped'."""
    return 1 + torch.rand(shape, generator=generator(seed), dtype=dtype)


def _train_call(fn, x: torch.Tensor, what: str, exercise: str, **kwargs):
    """Call ``fn(copy of x, **kwargs)`` with built-ins forbidden; fail if it changed its input."""
    given = x.clone()
    with _no_builtin(exercise):
        out = call(fn, given, _what=what, **kwargs)
    if not torch.equal(given, x):
        fail(
            f"{what} modified its input x in place.",
            "build a new tensor (x * mask / (1 - p)) instead of x.mul_(...) or x[mask] = 0: "
            "the caller may still need x.",
        )
    return out


_CASCADE = ("(Dropout calls your dropout function: if the dropout tests fail too, fix "
            "dropout first.)")


def _diagnose_training(out: torch.Tensor, x: torch.Tensor, p: float, what: str) -> None:
    """Name the mistake in a training-mode output of dropout with probability p."""
    try:
        _diagnose_output(out, x, p, what)
    except AssertionError as exc:
        if what.startswith("Dropout"):
            raise AssertionError(f"{exc}\n  {_CASCADE}") from None
        raise


def _diagnose_output(out: torch.Tensor, x: torch.Tensor, p: float, what: str) -> None:
    if not isinstance(out, torch.Tensor):
        fail(f"{what} returned {type(out).__name__}, not a tensor.", "return a torch.Tensor.")
    if out.shape != x.shape:
        fail(
            f"{what} returned shape {tuple(out.shape)} for an input of shape {tuple(x.shape)}.",
            "dropout keeps the shape: multiply the input by a mask of the same shape.",
        )
    if out.dtype != x.dtype:
        fail(
            f"{what} returned dtype {out.dtype} for a {x.dtype} input.",
            "build the mask with dtype=x.dtype (or compare and convert with .to(x.dtype)).",
        )
    out = out.detach()
    if torch.isnan(out).any():
        fail(f"{what} returned NaN.", "check your division by (1 - p).")
    kept = out != 0
    dropped = 1 - kept.double().mean().item()
    n = x.numel()
    tol = binomial_tolerance(n, p)
    if abs(dropped - (1 - p)) <= tol and abs(p - 0.5) > 0.05:
        fail(
            f"About {dropped:.0%} of the units were zeroed with p={p}: in PyTorch `p` is the "
            "probability of dropping a unit, not of keeping it.",
            "zero a unit when the uniform draw is below p (keep it when it is >= p).",
        )
    if dropped <= tol:
        fail(
            f"{what} zeroed no unit in training mode.",
            "draw a Bernoulli mask: each element is zeroed with probability p.",
        )
    if abs(dropped - p) > tol:
        fail(
            f"{what} zeroed {dropped:.2%} of the units; with p={p} expect {p:.0%} "
            f"(within {tol:.2%} on {n} units).",
            "zero each element independently with probability p.",
        )
    ratio = out[kept].double() / x.detach()[kept].double()
    if torch.allclose(ratio, torch.ones_like(ratio), rtol=1e-5):
        fail(
            "The surviving units are not rescaled: without dividing by (1 - p) the expected "
            f"output is (1 - p)·x = {1 - p:g}·x in training but x in eval(), so the next layer "
            "sees a different scale in the two modes.",
            "divide the survivors by (1 - p) (inverted dropout): x * mask / (1 - p).",
        )
    if torch.allclose(ratio, torch.full_like(ratio, 1 - p), rtol=1e-5):
        fail(
            f"The survivors were multiplied by (1 - p) = {1 - p:g} instead of divided by it.",
            "divide by (1 - p): E[mask / (1 - p)] = 1 keeps the expected value of each unit.",
        )
    if not torch.allclose(ratio, torch.full_like(ratio, 1 / (1 - p)), rtol=1e-5):
        fail(
            f"The surviving units were scaled by {ratio.mean().item():.4g} on average; expected "
            f"exactly 1 / (1 - p) = {1 / (1 - p):.4g}, the same factor for every survivor.",
            "return x * mask / (1 - p) with a 0/1 mask.",
        )


@check
def check_dropout_training(dropout) -> None:
    """Training mode: a p-fraction of units zeroed, survivors scaled by 1/(1-p)."""
    for p, dtype, seed in ((0.2, torch.float32, 1), (0.5, torch.float64, 2)):
        x = _probe(dtype=dtype, seed=seed)
        what = f"dropout(x, p={p}, training=True)"
        out = _train_call(dropout, x, what, "dropout", p=p, training=True, generator=generator(seed + 100))
        _diagnose_training(out, x, p, what)


@check
def check_dropout_eval(dropout) -> None:
    """Evaluation mode and p = 0 return the input unchanged."""
    x = _probe(shape=(50, 40), seed=3)
    for kwargs in ({"p": 0.5, "training": False}, {"p": 0.0, "training": True}):
        what = f"dropout(x, p={kwargs['p']}, training={kwargs['training']})"
        with _no_builtin("dropout"):
            out = call(dropout, x.clone(), **kwargs)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            fail(f"{what} did not return a tensor of the input's shape.", "return x itself.")
        out = out.detach()
        if torch.equal(out, x):
            continue
        if kwargs["training"] is False:
            if torch.allclose(out, x / 0.5) or torch.allclose(out, x * 0.5):
                fail(
                    f"{what} rescaled the input in evaluation mode.",
                    "in eval() dropout is the identity: the 1/(1-p) rescale happens only in "
                    "training, which is why the two modes agree in expectation.",
                )
            if (out == 0).any():
                fail(
                    f"{what} still zeroed units in evaluation mode.",
                    "return x unchanged when training is False.",
                )
        fail(f"{what} changed the input; expected it unchanged.", "return x when p == 0 or not training.")


@check
def check_dropout_edge_cases(dropout) -> None:
    """p = 1 gives zeros (no NaN), invalid p raises, the input is never modified."""
    x = _probe(shape=(30, 30), seed=4)
    with _no_builtin("dropout"):
        out = call(dropout, x, p=1.0, training=True, generator=generator(5))
    if not isinstance(out, torch.Tensor):
        fail("dropout(x, p=1.0) did not return a tensor.", "return torch.zeros_like(x) when p == 1.")
    if torch.isnan(out).any():
        fail(
            "dropout(x, p=1.0) returned NaN: every unit is dropped, and 0 / (1 - 1) = 0/0.",
            "treat p == 1 on its own: return torch.zeros_like(x).",
        )
    if not torch.equal(out.detach(), torch.zeros_like(x)):
        fail("dropout(x, p=1.0) did not return all zeros.", "with p == 1 every unit is dropped.")
    for bad in (-0.1, 1.5):
        expect_raises(
            dropout, x, p=bad,
            mistake=f"dropout accepted p={bad}, which is not a probability.",
            fix="raise ValueError when p is outside [0, 1], saying which p was given.",
        )
    for training in (True, False):
        for p in (0.3, 0.0):
            y = _probe(shape=(40, 25), seed=6)
            before = y.clone()
            with _no_builtin("dropout"):
                call(dropout, y, p=p, training=training, generator=generator(7))
            if not torch.equal(y, before):
                fail(
                    f"dropout(x, p={p}, training={training}) modified its input x in place.",
                    "build a new tensor (x * mask / (1 - p)) instead of x.mul_(...) or "
                    "x[mask] = 0: the caller may still need x.",
                )
    x = _probe(shape=(20, 10), seed=8).requires_grad_(True)
    with _no_builtin("dropout"):
        out = call(dropout, x, p=0.5, training=True, generator=generator(9))
    if not out.requires_grad:
        fail(
            "dropout's output does not track gradients: backpropagation cannot pass through it.",
            "compute the output from x with differentiable operations (no .detach(), no .data).",
        )


@check
def check_dropout_randomness(dropout) -> None:
    """A fresh mask on every call, reproducible from a generator, each unit independent."""
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


def _as_module_fn(module_cls, p: float, training: bool):
    layer = call(module_cls, p, _what=f"Dropout(p={p})")
    if not isinstance(layer, nn.Module):
        fail("Dropout(p) is not an nn.Module.", "subclass nn.Module and call super().__init__().")
    layer.train(training)
    return layer


@check
def check_Dropout(Dropout) -> None:
    """The module drops like dropout in train() and is the identity in eval()."""
    if not (isinstance(Dropout, type) and issubclass(Dropout, nn.Module)):
        fail("Dropout is not a subclass of nn.Module.", "write `class Dropout(nn.Module):`.")
    for p, seed in ((0.3, 20), (0.5, 21)):
        layer = _as_module_fn(Dropout, p, training=True)
        x = _probe(seed=seed)
        what = f"Dropout(p={p}) in train mode"
        out = _train_call(layer, x, what, "Dropout")
        _diagnose_training(out, x, p, what)
    default = call(Dropout, _what="Dropout()").train()
    x = _probe(seed=22)
    out = _train_call(default, x, "Dropout() in train mode", "Dropout")
    _diagnose_training(out, x, 0.5, "Dropout() (default p) in train mode")
    layer = _as_module_fn(Dropout, 0.5, training=False)
    with _no_builtin("Dropout"):
        out = call(layer, x, _what="Dropout(p=0.5) in eval mode")
    if not torch.equal(out.detach(), x):
        fail(
            "Dropout(p=0.5) changed its input after .eval(): the module ignores self.training.",
            "pass training=self.training to dropout in forward().",
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


def _layer_kinds(seq: nn.Sequential) -> list[str]:
    kinds = []
    for m in seq:
        if isinstance(m, nn.Linear):
            kinds.append(f"Linear({m.in_features},{m.out_features})")
        elif isinstance(m, nn.ReLU):
            kinds.append("ReLU")
        elif "dropout" in type(m).__name__.lower():
            kinds.append("Dropout")
        else:
            kinds.append(type(m).__name__)
    return kinds


@check
def check_DropoutMLP(DropoutMLP) -> None:
    """The seed's network, layer by layer, with dropout before the 2nd, 3rd and 4th Linear."""
    n, p = 7, 0.3
    net = call(DropoutMLP, n, p, _what=f"DropoutMLP(n_hidden={n}, p={p})")
    seq = getattr(net, "linears", None)
    if not isinstance(seq, nn.Sequential):
        fail("DropoutMLP has no nn.Sequential called `linears`.", "store the layers in self.linears = nn.Sequential(...), as in the seed.")
    expected = [f"Linear(1,{n})", "ReLU", "Dropout", f"Linear({n},{n})", "ReLU", "Dropout",
                f"Linear({n},{n})", "ReLU", "Dropout", f"Linear({n},1)"]
    kinds = _layer_kinds(seq)
    if kinds != expected:
        hint = "the seed's order is Linear, ReLU, then Dropout before each following Linear"
        if kinds.count("Dropout") != 3:
            hint = f"there are {kinds.count('Dropout')} dropout layers; the seed has 3, one before each Linear after the first"
        elif kinds and kinds[0] == "Dropout":
            hint = "dropout on the 1-dimensional input would drop the only feature; the seed drops hidden units only"
        fail(
            f"DropoutMLP({n}, p={p}).linears is [{', '.join(kinds)}]; expected [{', '.join(expected)}].",
            hint + ".",
        )
    x = torch.linspace(-1, 1, 16).unsqueeze(1)
    net.eval()
    out = call(net, x, _what="DropoutMLP(...)(x) for x of shape (16, 1)")
    if not isinstance(out, torch.Tensor) or out.shape != (16, 1):
        fail("DropoutMLP maps (N, 1) to something other than (N, 1).", "return self.linears(x).")
    ones = torch.ones(100, 100)
    for i, m in enumerate(seq):
        if kinds[i] != "Dropout":
            continue
        m.train()
        with torch.no_grad():
            dropped = (call(m, ones, _what=f"linears[{i}]") == 0).double().mean().item()
        if abs(dropped - p) > binomial_tolerance(ones.numel(), p):
            fail(
                f"linears[{i}] dropped {dropped:.1%} of its inputs; DropoutMLP(n, p={p}) should "
                f"drop {p:.0%}.",
                "pass p to every dropout layer.",
            )


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
