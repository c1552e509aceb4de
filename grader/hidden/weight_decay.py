"""Hidden checks for assignment 02-weight-decay, and the answers of its questions.

They reuse the probes and diagnoses of the visible checks (:mod:`grader.checks.weight_decay`),
``_no_torch_optim`` included.
"""
from __future__ import annotations

import torch
from torch import nn

from grader.checks._common import call, check, expect_raises, fail, forbid_builtins, generator
from grader.checks.weight_decay.groups import _Probe, _check_groups
from grader.checks.weight_decay.penalties import _check_autograd
from grader.checks.weight_decay.sgd import _compare_sgd, _no_torch_optim, _student_step
from grader.checks.weight_decay.sparsity import _soft_probe

from ._sweep import check_selected, check_step


@check
def check_l1_penalty_autograd(l1_penalty) -> None:
    """Differentiable (gradient sign(w)), dtype kept, works on model.parameters()."""
    _check_autograd(l1_penalty, "l1")


@check
def check_l2_penalty_autograd(l2_penalty) -> None:
    """Differentiable (gradient 2w), dtype kept, works on model.parameters()."""
    _check_autograd(l2_penalty, "l2")


@check
def check_sgd_step_in_place(sgd_step) -> None:
    """Trains a real network's parameters in place (float64), as torch.optim.SGD does."""
    torch.manual_seed(0)  # the global RNG is restored by @check
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    ref_net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    ref_net.load_state_dict(net.state_dict())
    g = generator(5)
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    y = torch.randn(16, 1, generator=g, dtype=torch.float64)
    opt = torch.optim.SGD(ref_net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    params = list(net.parameters())
    buffers = None
    for step in range(20):
        for model in (net, ref_net):
            model.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
        opt.step()
        what = f"sgd_step(list(net.parameters()), lr=0.1, momentum=0.9, weight_decay=0.01) at step {step + 1}"
        before = [p.detach().clone() for p in params]
        buffers = _student_step(sgd_step, params, what, lr=0.1, momentum=0.9, weight_decay=0.01, buffers=buffers)
        if all(torch.equal(p.detach(), b) for p, b in zip(net.parameters(), before)):
            fail(
                f"{what} left the network's parameters unchanged: they were rebound (p = p - lr * d) "
                "instead of updated in place.",
                "update in place under torch.no_grad(): p.add_(d, alpha=-lr).",
            )
    for (name, p), q in zip(net.named_parameters(), ref_net.parameters()):
        if not torch.allclose(p.detach(), q.detach(), rtol=1e-7, atol=1e-9):
            # name the mistake on the probe with the same settings, when it is a known one
            _compare_sgd(sgd_step, lr=0.1, momentum=0.9, weight_decay=0.01, dtype=torch.float64, seed=7)
            fail(
                f"After 20 steps on a real network the parameter {name} differs from torch.optim.SGD's "
                f"(largest difference {(p - q).abs().max().item():.3g}).",
                "pass the check_sgd_step tests first; then make sure every parameter is updated.",
            )
        if not p.requires_grad or p.grad_fn is not None:
            fail(
                f"After sgd_step the parameter {name} is no longer a leaf that requires grad: the "
                "update was recorded by autograd.",
                "do the update under torch.no_grad() (or on p.data).",
            )


@check
def check_sgd_step_arguments(sgd_step) -> None:
    """Negative lr, momentum or weight_decay, or a buffers list of the wrong length, raise ValueError."""
    def fresh():
        p = torch.ones(3, requires_grad=True)
        p.grad = torch.ones(3)
        return [p]

    for kwargs, what in (({"lr": -0.1}, "a negative learning rate"),
                         ({"lr": 0.1, "momentum": -0.5}, "a negative momentum"),
                         ({"lr": 0.1, "weight_decay": -0.01}, "a negative weight_decay")):
        with _no_torch_optim():
            expect_raises(
                sgd_step, fresh(), **kwargs,
                mistake=f"sgd_step accepted {what}.",
                fix="raise ValueError when lr, momentum or weight_decay is negative, saying which value was given.",
            )
    with _no_torch_optim():
        expect_raises(
            sgd_step, fresh(), lr=0.1, momentum=0.9, buffers=[None, None],
            mistake="sgd_step accepted 2 momentum buffers for 1 parameter.",
            fix="raise ValueError when len(buffers) != len(params).",
        )


@check
def check_soft_threshold_edge_cases(soft_threshold) -> None:
    """threshold 0 is the identity, a negative threshold raises ValueError, gradients flow."""
    w = _soft_probe(torch.float64)
    with forbid_builtins("soft_threshold", ("softshrink",), "torch.sign, abs and clamp(min=0)"):
        out = call(soft_threshold, w.clone(), 0.0, _what="soft_threshold(w, 0.0)")
    if not isinstance(out, torch.Tensor) or not torch.equal(out.detach(), w):
        fail("soft_threshold(w, 0.0) changed w; with threshold 0 it must return w.", "sign(w) * clamp(|w| - 0, min=0) is w.")
    expect_raises(
        soft_threshold, w, -0.1,
        mistake="soft_threshold accepted a negative threshold.",
        fix="raise ValueError when threshold < 0 (a negative threshold would push weights away from zero).",
    )
    big = torch.randn(1000, generator=generator(6), dtype=torch.float64)
    with forbid_builtins("soft_threshold", ("softshrink",), "torch.sign, abs and clamp(min=0)"):
        out = call(soft_threshold, big, 0.3, _what="soft_threshold(w, 0.3)")
    zeros = int((out == 0).sum())
    expected = int((big.abs() <= 0.3).sum())
    if zeros != expected:
        fail(
            f"soft_threshold(w, 0.3) produced {zeros} exact zeros on 1000 weights; expected {expected} "
            "(one for every |w| <= 0.3): the proximal L1 step must land exactly on 0.",
            "clamp the shrunken magnitude at 0: sign(w) * torch.clamp(w.abs() - t, min=0); no tolerance, no sign flip.",
        )


@check
def check_no_decay_param_groups_edge_cases(no_decay_param_groups) -> None:
    """Conv and free parameters (2-d, 1-d, 0-dim), a weight tied between two layers, a negative weight_decay."""
    torch.manual_seed(0)
    model = _Probe()
    _check_groups(no_decay_param_groups, model, 0.1, "no_decay_param_groups(model, 0.1)")
    expect_raises(
        no_decay_param_groups, model, -0.1,
        mistake="no_decay_param_groups accepted a negative weight_decay.",
        fix="raise ValueError when weight_decay < 0.",
    )


# ----------------------------------------------------------------------------- questions


@check
def check_best_weight_decay(best_weight_decay, sweep) -> None:
    """best_weight_decay is the λ of the sweep with the smallest mean validation error."""
    check_selected(best_weight_decay, sweep, "best_weight_decay", "λ")


@check
def check_overfitting_starts(overfitting_starts, sweep) -> None:
    """overfitting_starts is the iteration at which the mean validation loss of the networks
    without weight decay is lowest."""
    values = [float(v) for v in sweep["values"]]
    if 0.0 not in values:
        fail("The sweep passed in has no λ = 0.", "pass the notebook's `sweep`, unchanged.")
    check_step(overfitting_starts, sweep, "overfitting_starts", values.index(0.0))
