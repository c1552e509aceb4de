"""Checks of ``sgd_step``: twenty steps against ``torch.optim.SGD`` itself (to 1e-6), with the
known wrong updates named; ``torch.optim`` is forbidden inside."""
from __future__ import annotations

import contextlib

import torch

from ...wire import spies
from .._common import call, check, fail, generator


# ----------------------------------------------------------------------------- sgd_step


_SGD_BY_HAND = ("update each tensor with its gradient yourself: under torch.no_grad(), "
                "d = p.grad (+ weight_decay * p), the momentum buffer, then p.add_(..., alpha=-lr).")


@contextlib.contextmanager
def _no_torch_optim(exercise: str = "sgd_step", fix: str = _SGD_BY_HAND):
    """Fail if student code builds any torch.optim optimizer or calls the functional SGD or
    Adam (``spies.optimizers``: here in the lab, in the student's kernel through the judge)."""
    used: list[str] = []
    with spies.optimizers(used), spies.watch("torch_optim", used.extend):
        yield
    if used:
        fail(
            f"{exercise} uses PyTorch's own optimizer ({', '.join(sorted(set(used)))}): the exercise "
            "is to write the update yourself, so calling torch.optim earns no points here.",
            fix,
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
