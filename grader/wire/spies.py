"""Spies: record which built-ins student code reached during a call.

A check asks for a spy with :func:`watch` (``forbid_builtins`` does). In the lab the spy
runs in the same process as the student's code. While autograding, student code runs in
the sandboxed kernel: the judge sends the names of the active spies with every call, the
kernel runs the same spies around the student's code (:func:`recording`), and what they
recorded comes back to the callbacks registered here. A hostile kernel can silence its
own spies; that only lets it call a built-in unnoticed, never raise its score otherwise.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch.overrides import TorchFunctionMode

_active: list[tuple[str, Callable[[list[str]], None]]] = []


@contextlib.contextmanager
def watch(kind: str, report: Callable[[list[str]], None]) -> Iterator[None]:
    """While active, names recorded by spies of ``kind`` in a remote call go to ``report``."""
    entry = (kind, report)
    _active.append(entry)
    try:
        yield
    finally:
        _active.remove(entry)


def active_kinds() -> list[str]:
    return sorted({kind for kind, _ in _active})


def deliver(recorded: dict) -> None:
    """Hand what a remote call's spies recorded to the watchers that asked for it."""
    for kind, report in list(_active):
        names = recorded.get(kind)
        if isinstance(names, list):
            report([str(n)[:100] for n in names[:10_000]])


class TorchFunctions(TorchFunctionMode):
    """Records the name of every torch function called with tensor arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def optimizers(used: list[str]) -> Iterator[None]:
    """Record the use of any torch.optim optimizer or of the functional SGD or Adam/AdamW.

    Patched during the block only: ``Optimizer.__init__`` (every optimizer calls it) and
    the implementations behind ``torch.optim.sgd.sgd`` and ``torch.optim.adam.adam`` (which
    ``torch.optim.adamw.adamw`` calls), which those functions look up as module globals (so
    an alias imported earlier is caught too)."""
    import torch.optim.adam as adam_module
    import torch.optim.sgd as sgd_module

    originals = {(torch.optim.Optimizer, "__init__"): torch.optim.Optimizer.__init__}
    labels = {}
    for module, kind in ((sgd_module, "sgd"), (adam_module, "adam")):
        for fname in (f"_single_tensor_{kind}", f"_multi_tensor_{kind}", f"_fused_{kind}"):
            if hasattr(module, fname):
                originals[(module, fname)] = getattr(module, fname)
                labels[(module, fname)] = "torch.optim's functional sgd" if kind == "sgd" else "torch.optim's functional adam/adamw"

    def spy(label, original):
        def wrapper(*args, **kwargs):
            used.append(label)
            return original(*args, **kwargs)
        return wrapper

    try:
        for (owner, attr), original in originals.items():
            label = labels.get((owner, attr), "torch.optim optimizer")
            setattr(owner, attr, spy(label, original))
        yield
    finally:
        for (owner, attr), original in originals.items():
            setattr(owner, attr, original)


@contextlib.contextmanager
def recording(kinds: list[str]) -> Iterator[dict]:
    """Run the spies of ``kinds`` around a block; yields {kind: recorded names}."""
    recorded: dict[str, list[str]] = {}
    with contextlib.ExitStack() as stack:
        if "torch_functions" in kinds:
            mode = TorchFunctions()
            stack.enter_context(mode)
            recorded["torch_functions"] = mode.names
        if "torch_optim" in kinds:
            recorded["torch_optim"] = []
            stack.enter_context(optimizers(recorded["torch_optim"]))
        yield recorded
