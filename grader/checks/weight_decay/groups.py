"""Checks of ``no_decay_param_groups``: the dimension of every parameter decides its group."""
from __future__ import annotations

import torch
from torch import nn

from .._common import call, check, fail


# ----------------------------------------------------------------------------- param groups


class _Probe(nn.Module):
    """Linear, Conv, BatchNorm, LayerNorm, a tied Linear, a free 2-d, a free 1-d and a free
    0-dim parameter; module names that say nothing about their kind."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)
        self.a = nn.BatchNorm2d(4)
        self.body = nn.Sequential(nn.Linear(8, 6), nn.LayerNorm(6), nn.ReLU(), nn.Linear(6, 8))
        self.head = nn.Linear(8, 6)
        self.tied = nn.Linear(8, 6, bias=False)
        self.tied.weight = self.body[0].weight  # shared: one parameter under two names
        self.table = nn.Parameter(torch.zeros(5, 8))
        self.gain = nn.Parameter(torch.ones(8))
        self.scale = nn.Parameter(torch.tensor(1.0))  # 0-dim, like a learnable temperature


def _groups(fn, model, wd, what):
    groups = call(fn, model, wd, _what=what)
    if not isinstance(groups, (list, tuple)) or len(groups) != 2 or not all(isinstance(g, dict) for g in groups):
        fail(
            f"{what} returned {type(groups).__name__}"
            f"{' of length ' + str(len(groups)) if isinstance(groups, (list, tuple)) else ''}; expected a list of two dicts.",
            "return [{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}].",
        )
    out = []
    for g in groups:
        if "params" not in g or "weight_decay" not in g:
            fail(f"A group returned by {what} lacks the key {'params' if 'params' not in g else 'weight_decay'}.", "each group is a dict with the keys 'params' and 'weight_decay'.")
        params = g["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        out.append((params, float(g["weight_decay"])))
    return out


def _describe_params(model, params) -> str:
    names = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), name)
    return ", ".join(names.get(id(p), "an unknown tensor") for p in params)


def _check_groups(fn, model, wd, what):
    groups = _groups(fn, model, wd, what)
    trainable = [p for p in model.parameters() if p.requires_grad]
    listed = [p for params, _ in groups for p in params]
    seen = {}
    for p in listed:
        seen[id(p)] = seen.get(id(p), 0) + 1
    twice = [p for p in trainable if seen.get(id(p), 0) > 1]
    if twice:
        fail(
            f"{what} lists a parameter more than once ({_describe_params(model, twice)}): a weight shared "
            "by two modules is one parameter; torch.optim refuses a parameter in two groups, and within a "
            "group it would be updated twice per step.",
            "walk model.named_parameters() (which yields a shared parameter once) or skip ids already seen.",
        )
    lost = [p for p in trainable if id(p) not in seen]
    if lost:
        fail(
            f"{what} loses {len(lost)} parameter(s) ({_describe_params(model, lost)}): they would never "
            "be trained.",
            "walk every parameter with model.named_parameters(), not only the modules you thought of "
            "(Conv layers and parameters registered directly on a module count too).",
        )
    alien = [p for p in listed if id(p) not in {id(q) for q in trainable}]
    if alien:
        fail(f"{what} lists tensors that are not trainable parameters of the model.", "use only model.parameters() with requires_grad.")
    for params, decay in groups:
        for p in params:
            if p.dim() >= 2 and decay != wd:
                fail(
                    f"{what} gives weight_decay={decay} to a weight matrix or kernel "
                    f"({_describe_params(model, [p])}), which should get weight_decay={wd}.",
                    "put every parameter with p.ndim >= 2 in the group with weight_decay.",
                )
            if p.dim() < 2 and decay != 0.0:
                name = _describe_params(model, [p])
                if p.dim() == 0:
                    kind = "a 0-dim (scalar) parameter"
                elif name.endswith("bias"):
                    kind = "a bias"
                else:
                    kind = "a normalisation weight or other 1-dim parameter"
                fail(
                    f"{what} decays {kind} ({name}). A bias only shifts a unit and a BatchNorm/LayerNorm "
                    "weight only rescales it: shrinking them towards 0 does not make the function "
                    "smoother, it just fights the normalisation (a norm weight of 0 kills the channel).",
                    "put every parameter with p.ndim < 2 (biases, norm weights and biases, 0-dim scalars) in the "
                    "group with weight_decay 0.0: test p.ndim < 2, not p.ndim == 1; do not sort by name.",
                )


@check
def check_no_decay_param_groups(no_decay_param_groups) -> None:
    """Two groups: weights with 2+ dims decayed, biases and norm parameters not; usable by SGD."""
    torch.manual_seed(0)  # the global RNG is restored by @check
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    _check_groups(no_decay_param_groups, model, 0.05, "no_decay_param_groups(model, 0.05)")
    groups = no_decay_param_groups(model, 0.05)
    try:
        torch.optim.SGD(groups, lr=0.1)
    except Exception as exc:
        fail(f"torch.optim.SGD(no_decay_param_groups(model, 0.05), lr=0.1) raised {type(exc).__name__}: {exc}", "return groups that torch.optim accepts: dicts with 'params' (a list) and 'weight_decay'.")
