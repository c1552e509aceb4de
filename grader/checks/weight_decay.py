"""Visible checks for assignment 02-weight-decay: ``l1_penalty``, ``l2_penalty``, ``sgd_step``,
``soft_threshold``, ``no_decay_param_groups`` and the form of the questions' answers (the
hidden checks and the answers live in :mod:`grader.hidden.weight_decay`).

The references are PyTorch's own: sums of ``abs``/``pow`` in float64 for the penalties,
``torch.optim.SGD`` itself for ``sgd_step`` (twenty steps, to 1e-6), the formula
``sign(w)·max(|w| - t, 0)`` on probes whose answers are exact, and the dimension of every
parameter for the groups. When an answer is wrong the check computes what the known
mistakes would give and names the one that matches.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from ..wire import spies
from ._common import as_number, call, check, fail, forbid_builtins, generator, one_of

# ----------------------------------------------------------------------------- penalties


def _probe_params(dtype=torch.float32, seed=0) -> list[torch.Tensor]:
    """A weight matrix, a bias and a 3-d kernel, with negative entries (so |w| matters)."""
    g = generator(seed)
    shapes = [(5, 4), (4,), (2, 3, 3)]
    return [(torch.randn(s, generator=g, dtype=dtype) * 0.8 - 0.1).requires_grad_() for s in shapes]


def _penalty_value(fn, params, what):
    before = [p.detach().clone() for p in params]
    out = call(fn, params, _what=what)
    for p, b in zip(params, before):
        if not torch.equal(p.detach(), b):
            fail(f"{what} modified the parameters in place.", "compute the penalty from new tensors (w.abs(), w ** 2); never write into w.")
    if not isinstance(out, torch.Tensor):
        fail(
            f"{what} returned {type(out).__name__}, not a tensor.",
            "return a 0-dim tensor (sum tensors, do not call .item() or float()): the penalty is "
            "added to the loss and backpropagated.",
        )
    if out.dim() != 0:
        fail(
            f"{what} returned a tensor of shape {tuple(out.shape)}; expected a 0-dim tensor (one number).",
            "add up the per-tensor sums into one scalar: sum over all tensors of w.abs().sum() (or (w ** 2).sum()).",
        )
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7)


def _diagnose_penalty(value: float, params, kind: str, what: str) -> None:
    ws = [p.detach().double() for p in params]
    l1 = sum(w.abs().sum() for w in ws).item()
    l2 = sum((w ** 2).sum() for w in ws).item()
    expected = l1 if kind == "l1" else l2
    if _close(value, expected):
        return
    if kind == "l1":
        if _close(value, sum(w.sum() for w in ws).item()):
            fail(
                f"{what} = {value:.6g} is the plain sum of the weights, Σw = {value:.6g}; the L1 "
                f"penalty is Σ|w| = {l1:.6g}. Without the absolute value, negative weights lower the "
                "penalty and the optimiser is rewarded for making weights very negative.",
                "sum w.abs() over every tensor.",
            )
        if _close(value, sum(w.abs().mean() for w in ws).item()) or _close(value, l1 / sum(w.numel() for w in ws)):
            fail(f"{what} = {value:.6g} is a mean of |w|; the L1 penalty is the sum Σ|w| = {l1:.6g}.", "use .sum(), not .mean().")
        if _close(value, math.sqrt(l2)) or _close(value, l2):
            fail(f"{what} = {value:.6g} is an L2 quantity (Σw² or its square root), not Σ|w| = {l1:.6g}.", "sum the absolute values w.abs().")
        if _close(value, ws[-1].abs().sum().item()) or _close(value, ws[0].abs().sum().item()):
            fail(f"{what} = {value:.6g} covers only one of the {len(ws)} tensors; expected {l1:.6g}.", "add up the penalty of every tensor in params, not only the first or last.")
        fail(f"{what} = {value:.6g}; expected Σ|w| = {l1:.6g} over all {len(ws)} tensors.", "return the sum over every tensor of w.abs().sum().")
    if _close(value, l2 / 2):
        fail(
            f"{what} = {value:.6g} is half of Σw² = {l2:.6g}: the factor 1/2 belongs to the "
            "convention 'loss + (λ/2)·Σw²', which the exercise keeps outside the penalty.",
            "return Σw² with no factor 1/2 (as in the seed and in the course's objective).",
        )
    norms = [w.pow(2).sum().sqrt().item() for w in ws]
    if _close(value, math.sqrt(l2)) or _close(value, sum(norms)):
        fail(
            f"{what} = {value:.6g} is a Euclidean norm (‖w‖₂, a square root); the L2 penalty is "
            f"the squared norm Σw² = {l2:.6g}. The norm's gradient w/‖w‖ does not shrink each "
            "weight in proportion to its size, so it is not weight decay.",
            "sum w ** 2 (or w.pow(2)); drop the square root (torch.norm without ** 2).",
        )
    if _close(value, sum((w ** 2).mean() for w in ws).item()) or _close(value, l2 / sum(w.numel() for w in ws)):
        fail(f"{what} = {value:.6g} is a mean of w²; the L2 penalty is the sum Σw² = {l2:.6g}.", "use .sum(), not .mean().")
    if _close(value, l1):
        fail(f"{what} = {value:.6g} is Σ|w|, the L1 penalty; L2 is Σw² = {l2:.6g}.", "square the weights instead of taking absolute values.")
    fail(f"{what} = {value:.6g}; expected Σw² = {l2:.6g} over all {len(ws)} tensors.", "return the sum over every tensor of (w ** 2).sum().")


def _check_value(fn, kind: str) -> None:
    name = f"{kind}_penalty"
    for dtype, seed in ((torch.float32, 1), (torch.float64, 2)):
        params = _probe_params(dtype, seed)
        out = _penalty_value(fn, params, f"{name}(params)")
        _diagnose_penalty(out.item(), params, kind, f"{name}(params)")


def _check_autograd(fn, kind: str) -> None:
    name = f"{kind}_penalty"
    params = _probe_params(torch.float64, 3)
    out = _penalty_value(fn, params, f"{name}(params)")
    if out.dtype != torch.float64:
        fail(f"{name} of float64 tensors returned {out.dtype}.", "keep the tensors' dtype: sum them as they are, do not build the total with torch.tensor(0.0).")
    if not out.requires_grad:
        fail(
            f"{name}(params) does not track gradients: adding it to the loss would change nothing in backward().",
            "compute it from the tensors with differentiable operations (no .item(), .detach(), .data or torch.tensor(...)).",
        )
    grads = torch.autograd.grad(out, params, allow_unused=True)
    for p, gr in zip(params, grads):
        w = p.detach()
        expected = torch.sign(w) if kind == "l1" else 2 * w
        if gr is None or not torch.allclose(gr, expected, rtol=1e-6, atol=1e-9):
            fail(
                f"The gradient of {name} is not {'sign(w)' if kind == 'l1' else '2w'} for every tensor.",
                "every tensor of params must enter the sum, with the formula of the exercise.",
            )
    # a generator (model.parameters()) can be iterated only once
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        for k, p in enumerate(net.parameters()):
            p.copy_(torch.linspace(-1, 1, p.numel(), dtype=torch.float64).view_as(p) * (k + 1))
    plist = list(net.parameters())
    out = call(fn, net.parameters(), _what=f"{name}(model.parameters())")
    value = out.item() if isinstance(out, torch.Tensor) else out
    ws = [p.detach() for p in plist]
    expected = sum(w.abs().sum() for w in ws) if kind == "l1" else sum((w ** 2).sum() for w in ws)
    if not isinstance(value, float) or not _close(value, expected.item()):
        fail(
            f"{name}(model.parameters()) = {value!r}; expected {expected.item():.6g}. "
            "model.parameters() is a generator: it can be walked through only once.",
            "loop over params once (for w in params: ...) instead of len(params), params[0] or two passes.",
        )


@check
def check_l1_penalty(l1_penalty) -> None:
    """Σ|w| over every tensor, a 0-dim tensor, on float32 and float64 probes."""
    _check_value(l1_penalty, "l1")


@check
def check_l2_penalty(l2_penalty) -> None:
    """Σw² over every tensor (no factor 1/2, no square root), a 0-dim tensor."""
    _check_value(l2_penalty, "l2")


# ----------------------------------------------------------------------------- sgd_step


@contextlib.contextmanager
def _no_torch_optim():
    """Fail if student code builds any torch.optim optimizer or calls the functional SGD
    (``spies.optimizers``: here in the lab, in the student's kernel through the judge)."""
    used: list[str] = []
    with spies.optimizers(used), spies.watch("torch_optim", used.extend):
        yield
    if used:
        fail(
            f"sgd_step uses PyTorch's own optimizer ({', '.join(sorted(set(used)))}): the exercise "
            "is to write the update yourself, so calling torch.optim earns no points here.",
            "update each tensor with its gradient yourself: under torch.no_grad(), "
            "d = p.grad (+ weight_decay * p), the momentum buffer, then p.add_(..., alpha=-lr).",
        )


def _student_step(sgd_step, params, what, **kwargs):
    """Call the student's sgd_step with torch.optim forbidden; return its buffers list."""
    grads_before = [p.grad.clone() for p in params]
    with _no_torch_optim():
        buffers = call(sgd_step, params, _what=what, **kwargs)
    for p, g in zip(params, grads_before):
        if not torch.equal(p.grad, g):
            fail(
                f"{what} modified p.grad in place (for example p.grad.add_(weight_decay * p), or a "
                "momentum buffer that is p.grad itself).",
                "leave the gradients alone: d = p.grad + weight_decay * p builds a new tensor; "
                "start a momentum buffer from d.clone().",
            )
    return buffers


def _grad_sequence(shapes, steps, dtype, seed):
    g = generator(seed)
    return [[torch.randn(s, generator=g, dtype=dtype) for s in shapes] for _ in range(steps)]


def _start(shapes, dtype, seed):
    g = generator(seed)
    return [torch.randn(s, generator=g, dtype=dtype) + 0.5 for s in shapes]


def _torch_trajectory(start, grads, lr, momentum, weight_decay):
    params = [w.clone().requires_grad_() for w in start]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    traj = []
    for gs in grads:
        for p, gr in zip(params, gs):
            p.grad = gr.clone()
        opt.step()
        traj.append([p.detach().clone() for p in params])
    return traj


def _mistake_trajectory(kind, start, grads, lr, momentum, weight_decay):
    """What a known wrong update gives (for naming the mistake, never as a reference)."""
    ws = [w.clone() for w in start]
    bufs = [None] * len(ws)
    traj = []
    for gs in grads:
        for i, gr in enumerate(gs):
            w = ws[i]
            d = gr if kind in ("seed_decay", "decay_after_momentum") else gr + weight_decay * w
            if momentum:
                if kind == "ema":
                    bufs[i] = d.clone() if bufs[i] is None else momentum * bufs[i] + (1 - momentum) * d
                elif kind == "ema_zero":
                    bufs[i] = (1 - momentum) * d if bufs[i] is None else momentum * bufs[i] + (1 - momentum) * d
                else:
                    bufs[i] = d.clone() if bufs[i] is None else momentum * bufs[i] + d
                d = bufs[i]
            if kind == "seed_decay":
                ws[i] = w * (1 - weight_decay) - lr * d
            elif kind == "decay_after_momentum":
                ws[i] = w - lr * (d + weight_decay * w)
            else:
                ws[i] = w - lr * d
        traj.append([w.clone() for w in ws])
    return traj


_MISTAKES = {
    "seed_decay": (
        "The weights shrink by the factor (1 - weight_decay) each step, without the learning rate: "
        "that is the seed's formula w ← w(1 - λ) - ∂Loss/∂w, which silently assumes lr = 1. "
        "torch.optim.SGD adds weight_decay·w to the gradient, so the decay is multiplied by lr: "
        "w ← (1 - lr·λ)·w - lr·∂Loss/∂w.",
        "add the decay to the gradient before anything else: d = p.grad + weight_decay * p, then "
        "use d for the momentum buffer and the step p -= lr * d.",
    ),
    "decay_after_momentum": (
        "The weight decay is added after the momentum buffer (p -= lr * (buf + weight_decay * p)) "
        "instead of to the gradient that enters the buffer. The first step agrees with PyTorch, "
        "the following ones do not: in torch.optim.SGD the decay term is part of d = g + λ·w, "
        "so it accumulates in the buffer like the gradient.",
        "compute d = p.grad + weight_decay * p first, then buf = momentum * buf + d, then p -= lr * buf.",
    ),
    "ema": (
        "The momentum buffer is a dampened moving average, buf = momentum·buf + (1 - momentum)·d: "
        "PyTorch's SGD (dampening=0) accumulates buf = momentum·buf + d, with no (1 - momentum) "
        "factor, so its steps are up to 1/(1 - momentum) times larger.",
        "update the buffer with buf.mul_(momentum).add_(d) (initialised to d.clone() on the first step).",
    ),
    "ema_zero": (
        "The momentum buffer is a dampened moving average started at zero, "
        "buf = momentum·buf + (1 - momentum)·d: PyTorch's SGD (dampening=0) uses "
        "buf = momentum·buf + d and starts the buffer at d itself.",
        "on the first step buf = d.clone(); afterwards buf = momentum * buf + d.",
    ),
}


def _all_close(traj, ref, rtol=1e-5, atol=1e-6):
    return all(torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol) for sa, sb in zip(traj, ref) for a, b in zip(sa, sb))


def _run_student(sgd_step, start, grads, lr, momentum, weight_decay, what):
    params = [w.clone().requires_grad_() for w in start]
    originals = list(params)
    buffers = None
    traj = []
    for step, gs in enumerate(grads):
        for p, gr in zip(params, gs):
            p.grad = gr.clone()
        before = [p.detach().clone() for p in params]
        kwargs = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "buffers": buffers}
        buffers = _student_step(sgd_step, params, f"{what} at step {step + 1}", **kwargs)
        if any(q is not p for q, p in zip(params, originals)):
            fail(
                f"{what} replaced the tensors in the params list by new ones (params[i] = ...): the "
                "model's own parameters, which the caller holds, are not updated.",
                "update each tensor in place: with torch.no_grad(): p.add_(d, alpha=-lr).",
            )
        if all(torch.equal(p.detach(), b) for p, b in zip(params, before)):
            fail(
                f"{what} left every parameter unchanged: the parameters were rebound (p = p - lr * d "
                "makes a new tensor and throws it away) instead of updated in place.",
                "update in place under torch.no_grad(): p.sub_(lr * d) or p.add_(d, alpha=-lr).",
            )
        if not isinstance(buffers, (list, tuple)) or len(buffers) != len(params):
            fail(
                f"{what} returned {type(buffers).__name__}"
                f"{'' if not isinstance(buffers, (list, tuple)) else f' of length {len(buffers)}'}; expected "
                f"a list of {len(params)} momentum buffers, one per parameter.",
                "return the list of buffers (None entries when momentum is 0), to be passed back as buffers= on the next call.",
            )
        if momentum == 0 and any(b is not None for b in buffers):
            fail(
                f"{what} returned tensors as momentum buffers with momentum=0.",
                "return [None] * len(params) when momentum is 0, as torch.optim.SGD keeps no buffer then.",
            )
        if momentum != 0:
            for b, p in zip(buffers, params):
                if not isinstance(b, torch.Tensor) or b.shape != p.shape:
                    fail(f"{what} returned a momentum buffer that is not a tensor of its parameter's shape.", "return one buffer tensor per parameter, of the parameter's shape.")
                if b.data_ptr() == p.grad.data_ptr():
                    fail(
                        f"{what} returned p.grad itself as the momentum buffer: the next "
                        "optimizer.zero_grad(set_to_none=False) or backward() would overwrite the momentum.",
                        "start the buffer from a copy: buf = d.clone() (PyTorch clones it too).",
                    )
        traj.append([p.detach().clone() for p in params])
    return traj


def _compare_sgd(sgd_step, *, lr, momentum, weight_decay, dtype, seed, steps=20):
    shapes = [(4, 3), (3,), (2, 2, 2)]
    start = _start(shapes, dtype, seed)
    grads = _grad_sequence(shapes, steps, dtype, seed + 1000)
    what = f"sgd_step(params, lr={lr}, momentum={momentum}, weight_decay={weight_decay})"
    traj = _run_student(sgd_step, start, grads, lr, momentum, weight_decay, what)
    ref = _torch_trajectory(start, grads, lr, momentum, weight_decay)
    if _all_close(traj, ref):
        return
    first_bad = next(i for i in range(steps) if not _all_close(traj[i:i + 1], ref[i:i + 1]))
    for kind, (mistake, fix) in _MISTAKES.items():
        if _all_close(traj, _mistake_trajectory(kind, start, grads, lr, momentum, weight_decay), rtol=1e-4, atol=1e-5):
            fail(mistake, fix, detail=f"({what}: first differs from torch.optim.SGD at step {first_bad + 1} of {steps})")
    gap = max((a.double() - b.double()).abs().max().item() for a, b in zip(traj[first_bad], ref[first_bad]))
    hint = "the plain step p -= lr * p.grad"
    if weight_decay and not momentum:
        hint = "d = p.grad + weight_decay * p, then p -= lr * d"
    elif momentum:
        hint = ("d = p.grad + weight_decay * p; buf = d.clone() on the first step, else "
                "buf = momentum * buf + d; p -= lr * buf")
    fail(
        f"{what} differs from torch.optim.SGD from step {first_bad + 1} of {steps} on "
        f"(largest difference {gap:.3g} at that step).",
        f"follow PyTorch's update exactly: {hint}.",
    )


@check
def check_sgd_step(sgd_step) -> None:
    """Twenty steps of plain SGD and of SGD with weight decay match torch.optim.SGD to 1e-6."""
    _compare_sgd(sgd_step, lr=0.1, momentum=0.0, weight_decay=0.0, dtype=torch.float32, seed=1)
    _compare_sgd(sgd_step, lr=0.05, momentum=0.0, weight_decay=0.3, dtype=torch.float32, seed=2)


@check
def check_sgd_step_momentum(sgd_step) -> None:
    """Twenty steps with momentum, without and with weight decay, match torch.optim.SGD."""
    _compare_sgd(sgd_step, lr=0.05, momentum=0.9, weight_decay=0.0, dtype=torch.float32, seed=3)
    _compare_sgd(sgd_step, lr=0.02, momentum=0.8, weight_decay=0.2, dtype=torch.float64, seed=4)


# ----------------------------------------------------------------------------- soft_threshold


def _soft_probe(dtype=torch.float32) -> torch.Tensor:
    # values on a grid of multiples of 1/8: |w| - t is exact in binary floating point
    return torch.tensor([-2.0, -1.0, -0.625, -0.5, -0.25, 0.0, 0.125, 0.5, 0.75, 1.5, 3.0], dtype=dtype)


@check
def check_soft_threshold(soft_threshold) -> None:
    """sign(w)·max(|w| - t, 0): exact zeros inside [-t, t], the rest moved t towards 0."""
    for dtype in (torch.float32, torch.float64):
        w = _soft_probe(dtype).view(1, -1).repeat(2, 1)
        t = 0.5
        given = w.clone()
        with forbid_builtins("soft_threshold", ("softshrink",), "torch.sign, abs and clamp(min=0)"):
            out = call(soft_threshold, given, t, _what=f"soft_threshold(w, {t})")
        if not torch.equal(given, w):
            fail("soft_threshold modified w in place.", "build a new tensor; the caller still needs w.")
        if not isinstance(out, torch.Tensor) or out.shape != w.shape:
            fail("soft_threshold did not return a tensor of w's shape.", "return sign(w) * clamp(|w| - t, min=0), element-wise.")
        if out.dtype != dtype:
            fail(f"soft_threshold returned {out.dtype} for a {dtype} input.", "keep w's dtype.")
        out = out.detach()
        expected = torch.sign(w) * torch.clamp(w.abs() - t, min=0)
        if torch.equal(out, expected):
            continue
        if torch.allclose(out, w - t * torch.sign(w)):
            fail(
                "soft_threshold moved every weight by t towards zero and let the small ones cross "
                "it (w = 0.25 became -0.25): without the max(·, 0) it is a constant pull, the "
                "subgradient step, and it never produces exact zeros.",
                "clamp the shrunken magnitude at zero: sign(w) * torch.clamp(w.abs() - t, min=0).",
            )
        if torch.allclose(out, torch.clamp(w - t, min=0)):
            fail(
                "soft_threshold zeroed every negative weight: clamp(w - t, min=0) is a shifted ReLU, "
                "which only handles positive weights. L1 shrinks both signs towards zero.",
                "work on the magnitude and put the sign back: sign(w) * torch.clamp(w.abs() - t, min=0).",
            )
        inside = w.abs() <= t
        if (out[inside] != 0).any():
            fail(
                "soft_threshold left weights with |w| <= t nonzero (they should become exact zeros, "
                "the whole point of the proximal L1 step).",
                "clamp |w| - t at 0, so every |w| <= t maps to exactly 0.",
            )
        if torch.equal(out[~inside], w[~inside]):
            fail("soft_threshold zeroes the small weights but does not shrink the large ones (hard thresholding).", "subtract t from the magnitude of every weight: sign(w) * (|w| - t) outside [-t, t].")
        fail("soft_threshold(w, 0.5) differs from sign(w)·max(|w| - 0.5, 0).", "return sign(w) * torch.clamp(w.abs() - t, min=0).")


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
