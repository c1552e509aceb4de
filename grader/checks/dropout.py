"""Visible checks for assignment 03-dropout: ``dropout``, ``Dropout``, ``DropoutMLP`` and
the form of the questions' answers (the hidden checks and the answers live in
:mod:`grader.hidden.dropout`).

The references are numbers and properties, never a working solution: survivors equal
``x / (1 - p)``, the dropped fraction is ``p`` within six binomial standard deviations,
``eval()`` is the identity, the same generator state gives the same mask.
"""
from __future__ import annotations

import torch
from torch import nn

from ._common import (
    as_number,
    binomial_tolerance,
    call,
    check,
    expect_raises,
    fail,
    forbid_builtins,
    generator,
    one_of,
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


def _diagnose_shared_mask(kept: torch.Tensor, what: str) -> None:
    """Name a mask drawn for one row and broadcast over the batch, or drawn per row and
    shared by every feature, from a 2-d output's kept (True) / dropped units. An independent
    mask makes every column (or every row) constant with probability below 1e-100 at the
    probes' sizes (at least 40 x 40, p between 0.2 and 0.8)."""
    if kept.dim() != 2 or min(kept.shape) < 40:
        return
    n, d = kept.shape
    if bool((kept == kept[:1]).all()) and not bool(kept.all()):
        fail(
            f"{what} dropped the same features in every row of a ({n}, {d}) input: the mask was "
            f"drawn once with shape (1, {d}) (or ({d},)) and broadcast over the batch, so every "
            "example in the batch loses the same units.",
            "draw one Bernoulli value per element of x: torch.rand(x.shape, generator=generator) >= p.",
        )
    if bool((kept == kept[:, :1]).all()) and not bool(kept.all()):
        fail(
            f"{what} dropped whole rows of a ({n}, {d}) input: the mask was drawn with shape "
            f"({n}, 1) and shared by every feature, so an example is either kept whole or zeroed.",
            "draw one Bernoulli value per element of x: torch.rand(x.shape, generator=generator) >= p.",
        )


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
    _diagnose_shared_mask(kept, what)
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
            kept = call(m, ones, _what=f"linears[{i}]") != 0
        try:
            _diagnose_shared_mask(kept, f"linears[{i}] of DropoutMLP")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n  (The network's dropout layers call your dropout: if the "
                                 "dropout tests fail too, fix dropout first.)") from None
        dropped = 1 - kept.double().mean().item()
        if abs(dropped - p) > binomial_tolerance(ones.numel(), p):
            fail(
                f"linears[{i}] dropped {dropped:.1%} of its inputs; DropoutMLP(n, p={p}) should "
                f"drop {p:.0%}.",
                "pass p to every dropout layer.",
            )




# ----------------------------------------------------------------------------- questions
# The form of the answers only: their values are checked by grader.hidden.dropout.


@check
def check_scaling_answer_is_a_number(expected_without_rescale) -> None:
    """The answer is one number (an expected output value, not a probability)."""
    value = as_number(expected_without_rescale, "expected_without_rescale")
    if 0 < value <= 1:
        fail(
            f"{value} looks like a probability; the question asks for the expected output value.",
            "multiply by the number of units and by the weight (1).",
        )


@check
def check_best_p_is_swept(best_p, sweep) -> None:
    """The answer is one of the dropout probabilities the sweep trained."""
    one_of(as_number(best_p, "best_p"), sweep["values"], "best_p", "the swept values of p")


@check
def check_variance_ratio_is_a_number(variance_ratio) -> None:
    """The answer is one positive number, a ratio of two variance terms."""
    if as_number(variance_ratio, "variance_ratio") <= 0:
        fail("variance_ratio is not positive, but a ratio of two variances is.",
             "divide the variance term with p = 0.5 by the variance term with p = 0.")
