"""Hidden checks for assignment 02-weight-decay, and the answers of its questions.

They reuse the probes and diagnoses of the visible checks (:mod:`grader.checks.weight_decay`),
``_no_torch_optim`` included.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from grader.checks._common import as_number, call, check, expect_raises, fail, forbid_builtins, generator
from grader.checks.weight_decay.adamw import _BY_HAND as _ADAMW_BY_HAND
from grader.checks.weight_decay.adamw import _call_step as _call_adamw
from grader.checks.weight_decay.adamw import _compare_adamw
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
def check_adamw_step_in_place(adamw_step) -> None:
    """Trains a real network in place as torch.optim.AdamW does, in float64 and float32; a
    parameter without a gradient is skipped (neither decayed nor given state)."""
    for dtype, rtol, atol in ((torch.float64, 1e-10, 1e-12), (torch.float32, 1e-5, 1e-6)):
        torch.manual_seed(0)  # the global RNG is restored by @check
        net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)
        frozen = nn.Linear(2, 2).to(dtype)  # in the list, never in the loss: its .grad stays None
        ref_net, ref_frozen = copy.deepcopy(net), copy.deepcopy(frozen)
        g = generator(15)
        x = torch.randn(16, 3, generator=g, dtype=torch.float64).to(dtype)
        y = torch.randn(16, 1, generator=g, dtype=torch.float64).to(dtype)
        params = list(net.parameters()) + list(frozen.parameters())
        opt = torch.optim.AdamW(list(ref_net.parameters()) + list(ref_frozen.parameters()), lr=0.01, weight_decay=0.1)
        frozen_start = [p.detach().clone() for p in frozen.parameters()]
        state = None
        name = str(dtype).replace("torch.", "")
        for step in range(20):
            for model in (net, ref_net):
                model.zero_grad(set_to_none=True)
                ((model(x) - y) ** 2).mean().backward()
            opt.step()
            what = f"adamw_step(params, lr=0.01, weight_decay=0.1) on a {name} network at step {step + 1}"
            before = [p.detach().clone() for p in net.parameters()]
            state = _call_adamw(adamw_step, params, what, lr=0.01, weight_decay=0.1, state=state)
            if all(torch.equal(p.detach(), b) for p, b in zip(net.parameters(), before)):
                fail(
                    f"{what} left the network's parameters unchanged: they were rebound (p = p - ...) "
                    "instead of updated in place.",
                    "update in place under torch.no_grad(): p.mul_(1 - lr * weight_decay), then p.addcdiv_(...).",
                )
            if any(not torch.equal(p.detach(), b) for p, b in zip(frozen.parameters(), frozen_start)):
                fail(
                    f"{what} changed a parameter whose .grad is None (decayed it, or stepped it with a zero "
                    "gradient): torch.optim.AdamW skips such parameters entirely, decay included (a frozen "
                    "layer, or one this loss does not use).",
                    "begin the loop with: if p.grad is None: keep its state entry as it is and continue.",
                )
        for (pname, p), q in zip(net.named_parameters(), ref_net.parameters()):
            if p.dtype != dtype:
                fail(f"After adamw_step the {name} parameter {pname} is {p.dtype}.", "update in place, in the parameter's dtype.")
            if not torch.allclose(p.detach(), q.detach(), rtol=rtol, atol=atol):
                # name the mistake on the probe with the same settings, when it is a known one
                _compare_adamw(adamw_step, lr=0.01, weight_decay=0.1, seed=7)
                fail(
                    f"After 20 steps on a real {name} network the parameter {pname} differs from "
                    f"torch.optim.AdamW's (largest difference {(p - q).abs().max().item():.3g}).",
                    "pass the check_adamw_step tests first; then make sure every parameter with a "
                    "gradient is updated, in its own dtype.",
                )
            if not p.requires_grad or p.grad_fn is not None:
                fail(
                    f"After adamw_step the parameter {pname} is no longer a leaf that requires grad: the "
                    "update was recorded by autograd.",
                    "do the update under torch.no_grad() (or on p.data).",
                )


@check
def check_adamw_step_arguments(adamw_step) -> None:
    """Negative lr, eps or weight_decay, a beta outside [0, 1), or a state list of the wrong
    length raise ValueError (as torch.optim.AdamW does)."""
    def fresh():
        p = torch.ones(3, requires_grad=True)
        p.grad = torch.ones(3)
        return [p]

    for kwargs, what in (({"lr": -0.1}, "a negative learning rate"),
                         ({"lr": 0.1, "eps": -1e-8}, "a negative eps"),
                         ({"lr": 0.1, "weight_decay": -0.01}, "a negative weight_decay"),
                         ({"lr": 0.1, "betas": (1.0, 0.999)}, "beta1 = 1 (the bias correction 1 - beta1^t would be 0)"),
                         ({"lr": 0.1, "betas": (0.9, -0.5)}, "a negative beta2")):
        with _no_torch_optim("adamw_step", _ADAMW_BY_HAND):
            expect_raises(
                adamw_step, fresh(), **kwargs,
                mistake=f"adamw_step accepted {what}.",
                fix="raise ValueError when lr, eps or weight_decay is negative or a beta is outside "
                    "[0, 1), saying which value was given.",
            )
    with _no_torch_optim("adamw_step", _ADAMW_BY_HAND):
        expect_raises(
            adamw_step, fresh(), lr=0.1, state=[None, None],
            mistake="adamw_step accepted 2 state entries for 1 parameter.",
            fix="raise ValueError when len(state) != len(params).",
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


def _first_at_or_below(path, fraction):
    """The first step at which ``path`` is at or below ``fraction`` of its start, or None."""
    hits = (path <= path[0] * fraction).nonzero()
    return int(hits[0]) if len(hits) else None


@check
def check_decay_time_scale(decay_time_scale, decay_run) -> None:
    """decay_time_scale is the first step of the run at which AdamW's decay alone has shrunk w1
    (not in the loss) to 1/e of its start, for λ = 0.1: about 1/(lr·λ) steps."""
    value = as_number(decay_time_scale, "decay_time_scale")
    lams = [float(v) for v in decay_run["lambdas"]]
    lr = float(decay_run["lr"])
    if 0.1 not in lams:
        fail("The run passed in has no λ = 0.1.", "pass the notebook's `decay_run`, unchanged.")
    row = lams.index(0.1)
    path = decay_run["w1"]["AdamW"][row].double()
    steps = [int(s) for s in decay_run["steps"]]
    index = _first_at_or_below(path, math.exp(-1))
    if index is None:
        fail(
            f"In your run AdamW's w1 never fell to 1/e of its start in {steps[-1]} steps (it ends at "
            f"{path[-1].item():.4g}): your adamw_step does not decay the weights as AdamW does, so the "
            "run has no time scale to read.",
            "make adamw_step pass its tests (the decay p.mul_(1 - lr * weight_decay)), then run the "
            "experiment cell again and read its w1.",
        )
    expected = steps[index]
    if value == expected:
        return
    candidates = []
    if index > 0:
        candidates.append((steps[index - 1], (
            f"decay_time_scale = {value:g} is the last step at which w1 was still above 1/e of its start.",
            "take the first step at which w1 <= w1[0] / e.")))
    adam = _first_at_or_below(decay_run["w1"]["Adam"][row].double(), math.exp(-1))
    if adam is not None:
        candidates.append((steps[adam], (
            f"decay_time_scale = {value:g} is when *Adam*'s w1 (weight_decay added to the gradient) fell "
            "to 1/e: that time does not depend on λ, because Adam divides the decay term by its own "
            "root mean square. The question is about AdamW's decoupled decay.",
            "read decay_run['w1']['AdamW'], the row of λ = 0.1.")))
    for k, lam in enumerate(lams):
        other = _first_at_or_below(decay_run["w1"]["AdamW"][k].double(), math.exp(-1))
        if k != row and other is not None:
            candidates.append((steps[other], (
                f"decay_time_scale = {value:g} is the time scale of λ = {lam:g}, not of λ = 0.1.",
                f"read row {row} of decay_run['w1']['AdamW'] (decay_run['lambdas'].index(0.1)).")))
    half = _first_at_or_below(path, 0.5)
    if half is not None:
        candidates.append((steps[half], (
            f"decay_time_scale = {value:g} is when w1 fell to *half* its start (the half-life, "
            "ln 2/(lr·λ) steps); the time scale is the time to fall to 1/e ≈ 0.368 of it.",
            "compare w1 with w1[0] / math.e, not with w1[0] / 2.")))
    for candidate, (mistake, fix) in candidates:
        if value == candidate:
            fail(mistake, fix)
    if math.isclose(value, 1 / (lr * 0.1), rel_tol=1e-6):
        fail(
            f"decay_time_scale = {value:g} is the formula's 1/(lr·λ), but your run's w1 fell to 1/e at "
            f"step {expected}: your adamw_step does not decay as AdamW does, and the question reads the run.",
            "fix adamw_step (its tests name the mistake), run the experiment again and read the step from "
            "decay_run['w1']['AdamW'].",
        )
    fail(
        f"decay_time_scale = {value:g} is not the first step at which AdamW's w1 (λ = 0.1) is at or "
        "below 1/e of its start.",
        "path = decay_run['w1']['AdamW'][decay_run['lambdas'].index(0.1)]; the first step t with "
        "path[t] <= path[0] / math.e (look it up in decay_run['steps']).",
    )
