"""Checks of assignment 07-beyond-penalties for weight averaging: ``ema_update`` against
``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn`` and ``update_bn``
against ``torch.optim.swa_utils.update_bn`` (re-exported by :mod:`grader.checks.beyond_penalties`).

Both run the student's function on classifiers built in the student's kernel
(``bp.classifier``): the judge does not set attributes of its own modules for the kernel.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ._common import call, check, fail, generator


HIDDEN = 16  # small probe networks: every tensor the judge and the kernel exchange stays small


def _few(t: torch.Tensor) -> str:
    """The first values of a tensor, rounded so that the lab and the judge print them alike."""
    return "[" + ", ".join(f"{v:.3f}" for v in t.detach().flatten()[:3].tolist()) + "]"


# ----------------------------------------------------------------------------- EMA


def ema_reference(start, states, decay):
    """PyTorch's AveragedModel with the EMA function, started from the state ``start`` (the
    average so far) and updated with each state of ``states``; returns its state_dict."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from regnorm.beyond_penalties import classifier

    net = classifier(0, hidden=HIDDEN)
    net.load_state_dict(start)
    averaged = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay))
    averaged.n_averaged.fill_(1)  # the start is the average so far: every update averages
    live = classifier(0, hidden=HIDDEN)
    for state in states:
        live.load_state_dict(state)
        averaged.update_parameters(live)
    return averaged.module.state_dict()


def _training_states(seed, n=3):
    """The states a classifier goes through in ``n`` SGD steps (batch norm statistics included)."""
    from regnorm.beyond_penalties import classifier

    model = classifier(seed, hidden=HIDDEN)
    g = generator(seed + 10)
    x, y = torch.randn(64, 10, generator=g), torch.randint(4, (64,), generator=g)
    states = []
    for _ in range(n):
        model.train()
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        with torch.no_grad():  # plain SGD by hand: torch.optim's first step costs seconds of imports
            for p in model.parameters():
                p -= 0.5 * p.grad
        states.append(copy.deepcopy(model.state_dict()))
    return states


def ema_compare(ema_update, model_factory, decay=0.9, seed=0, n=3, what="ema_update"):
    """The student's ema_update after each of ``n`` training states, on two classifiers built in
    the student's kernel; the parameters compared with AveragedModel, the buffers with the
    live model's."""
    from regnorm.beyond_penalties import classifier

    states = _training_states(seed, n)
    start = classifier(seed + 100, hidden=HIDDEN).state_dict()
    ema_model = call(model_factory, 0, hidden=HIDDEN, _what=f"bp.classifier(0, hidden={HIDDEN})")
    model = call(model_factory, 0, hidden=HIDDEN, _what=f"bp.classifier(0, hidden={HIDDEN})")
    ema_model.load_state_dict(start)
    for state in states:
        model.load_state_dict(state)
        call(ema_update, ema_model, model, decay, _what=f"ema_update(ema_model, model, decay={decay})")
    got = ema_model.state_dict()
    want = ema_reference(start, states, decay)
    buffers = [k for k, _ in classifier(0, hidden=HIDDEN).named_buffers()]
    for name in want:
        if name in buffers:
            continue
        g = got[name]
        if torch.allclose(g, want[name], rtol=1e-5, atol=1e-6):
            continue
        if torch.allclose(g, ema_reference(start, states, 1 - decay)[name], rtol=1e-5, atol=1e-6):
            fail(f"{what}: the decay is inverted: e ← (1 − decay)·e + decay·p keeps only {1 - decay:.2f} of the "
                 f"average and takes {decay} of the new weights, so the 'average' follows the live model "
                 "almost step for step.",
                 "e.mul_(decay).add_(p, alpha=1 - decay): decay is the weight of the old average.")
        if torch.equal(g, start[name]):
            fail(f"{what} left the parameter {name} of ema_model unchanged.",
                 "update ema_model's parameters in place (under torch.no_grad()): e.mul_(decay).add_(p, alpha=1 - decay).")
        if torch.allclose(g, states[-1][name]):
            fail(f"{what} copied the model's parameter {name} instead of averaging it.",
                 "e ← decay·e + (1 − decay)·p.")
        fail(f"{what}: ema_model's {name} differs from AveragedModel(model, multi_avg_fn="
             f"get_ema_multi_avg_fn({decay})) by {(g - want[name]).abs().max().item():.1e}.",
             "every parameter: e ← decay·e + (1 − decay)·p, in place.")
    for name in buffers:
        if not torch.equal(got[name], states[-1][name]):
            fail(f"{what} did not copy the buffers: ema_model's {name} is not the model's. The averaged model "
                 "then normalises with batch norm statistics that belong to neither model.",
                 "after the parameters, copy every buffer: for eb, b in zip(ema_model.buffers(), "
                 "model.buffers()): eb.copy_(b).")


@check
def check_ema_update(ema_update, model_factory) -> None:
    """Equal to torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn(decay); buffers copied."""
    for seed, decay in ((0, 0.9), (1, 0.75)):
        ema_compare(ema_update, model_factory, decay, seed)


# ----------------------------------------------------------------------------- update_bn


def bn_loader(seed=0, batches=5, n=16, d=10):
    g = generator(seed)
    return [3 * torch.randn(n, d, generator=g) + 1 for _ in range(batches)]


def _bn_layers(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def bn_compare(update_bn, model_factory, loader, what, *, momentum=0.1):
    """The student's update_bn on a classifier built in the student's kernel (``bp.classifier``:
    a model the judge passed in could not have its momenta set there), and
    torch.optim.swa_utils.update_bn on a copy of it here; name the mistake. Returns the
    student's model and the state it started from."""
    from torch.optim.swa_utils import update_bn as reference

    from regnorm.beyond_penalties import classifier

    ref = classifier(0, hidden=HIDDEN)
    g = generator(30)
    with torch.no_grad():
        for m in _bn_layers(ref):
            m.running_mean.uniform_(-1, 1, generator=g)
            m.running_var.uniform_(0.5, 2, generator=g)
            m.momentum = momentum
    start = copy.deepcopy(ref.state_dict())
    model = call(model_factory, 0, hidden=HIDDEN, _what=f"bp.classifier(0, hidden={HIDDEN})")
    model.load_state_dict(start)
    for m in _bn_layers(model):
        m.momentum = momentum
    model.eval()
    ref.eval()
    reference(loader, ref)
    call(update_bn, loader, model, _what=what)
    got, want = model.state_dict(), ref.state_dict()
    keys = [k for k in want if k.endswith(("running_mean", "running_var"))]
    if all(torch.equal(got[k], start[k]) for k in keys):
        fail(f"{what} left the running statistics unchanged: the averaged weights would be evaluated "
             "with batch norm statistics that belong to other weights. Batch norm layers only update "
             "their running statistics in train() mode.",
             "put the model in train() mode for the pass (model.train()), then restore the mode it had.")
    if all(torch.allclose(got[k], want[k], rtol=1e-4, atol=1e-5) for k in keys):
        return model
    k = keys[0]
    fail(f"{what}: {k} starts {_few(got[k])} ... where torch.optim.swa_utils.update_bn's starts "
         f"{_few(want[k])} ...: the statistics must be the *cumulative average* over the "
         "whole pass, from reset statistics (an exponential average with the layer's momentum, or one "
         "that starts from the old statistics, weighs the last batches most).",
         "for every batch norm layer: reset_running_stats() and momentum = None (cumulative average) "
         "before the pass; restore each momentum afterwards.")


@check
def check_update_bn(update_bn, model_factory) -> None:
    """Equal to torch.optim.swa_utils.update_bn on a loader of input batches."""
    bn_compare(update_bn, model_factory, bn_loader(0), "update_bn(loader of 5 batches, model)")
