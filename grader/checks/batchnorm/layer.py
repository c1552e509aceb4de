"""Checks of ``BatchNorm`` (against ``nn.BatchNorm1d/2d/3d``, ``state_dict`` both ways),
``identity_affine`` and ``LeNetBN``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._common import call, check, fail, generator
from ._shared import (
    _affine, _CASCADE_BN, _close, _close_loose, _diagnose_train_output, _dims, _no_builtin,
    _probe, _shape_text,
)


# ---------------------------------------------------------------------------- BatchNorm

def _is_module_class(cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        fail("BatchNorm is not a subclass of nn.Module.", "write `class BatchNorm(nn.Module):`.")


def _make(BatchNorm, *args, **kwargs):
    desc = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    layer = call(BatchNorm, *args, _what=f"BatchNorm({desc})", **kwargs)
    if not isinstance(layer, nn.Module):
        fail(f"BatchNorm({desc}) is not an nn.Module.", "subclass nn.Module and call super().__init__().")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in layer.modules()):
        fail(f"BatchNorm({desc}) wraps PyTorch's own BatchNorm layer: the exercise is to write it, "
             "so the built-in earns no points here.",
             "register weight, bias and the three buffers on the module itself and call your "
             "batch_norm in forward().")
    return layer


def _check_state(layer, c: int, what: str) -> None:
    params = dict(layer.named_parameters(recurse=False))
    buffers = dict(layer.named_buffers(recurse=False))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        if name not in buffers:
            if isinstance(getattr(layer, name, None), torch.Tensor):
                fail(
                    f"{what}.{name} is a plain attribute, not a registered buffer: it is missing "
                    "from state_dict() (a saved model would lose its running statistics) and "
                    ".to(device) / .double() would not move or convert it.",
                    f"self.register_buffer(\"{name}\", ...) in __init__.",
                )
            fail(f"{what} has no buffer {name!r}.", f"self.register_buffer(\"{name}\", ...) in __init__.")
    if set(params) != {"weight", "bias"}:
        fail(f"{what} has the parameters {sorted(params)}; expected weight and bias.",
             "self.weight = nn.Parameter(torch.ones(num_features)); self.bias = nn.Parameter("
             "torch.zeros(num_features)).")
    expected = {"weight": torch.ones(c), "bias": torch.zeros(c), "running_mean": torch.zeros(c),
                "running_var": torch.ones(c)}
    for name, value in expected.items():
        t = params.get(name, buffers.get(name))
        if tuple(t.shape) != (c,) or not torch.equal(t.detach().float(), value):
            fail(f"{what}.{name} starts as {t.detach().tolist()}; expected {value.tolist()}.",
                 "weight ones, bias zeros, running_mean zeros, running_var ones, of shape (C,).")
    nbt = buffers["num_batches_tracked"]
    if nbt.dtype != torch.long or nbt.dim() != 0 or nbt.item() != 0:
        fail(f"{what}.num_batches_tracked is {nbt!r}; expected torch.tensor(0, dtype=torch.long).",
             "self.register_buffer(\"num_batches_tracked\", torch.tensor(0, dtype=torch.long)).")


def _pair(BatchNorm, ref_cls, c, seed, **kwargs):
    """A student layer and a PyTorch layer, float64, with the same random weight and bias."""
    ours = _make(BatchNorm, c, **kwargs).double()
    ref = ref_cls(c, **kwargs).double()
    if kwargs.get("affine", True):
        w, b = _affine(c, seed, torch.float64)
        with torch.no_grad():
            ours.weight.copy_(w)
            ours.bias.copy_(b)
            ref.weight.copy_(w)
            ref.bias.copy_(b)
    return ours, ref


def _run(layer, x, what, exercise="BatchNorm"):
    with _no_builtin(exercise):
        return call(layer, x, _what=what)


def _compare_layers(ours, ref, xs, what, *, check_buffers=True):
    """Train both layers on xs, then evaluate; fail at the first difference."""
    ours.train()
    ref.train()
    for step, x in enumerate(xs):
        rm = getattr(ours, "running_mean", None)
        xg = x.clone().requires_grad_(True)
        out = _run(ours, xg, f"{what} in train mode (step {step + 1})")
        expected = ref(x)
        if not _close(out, expected.detach(), x):
            try:
                _diagnose_train_output(out, x, ref.weight, ref.bias, ref.eps, f"{what} in train mode")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n  {_CASCADE_BN}") from None
        if check_buffers and rm is not None:
            if ours.running_mean is not rm or ours.running_mean.data_ptr() != rm.data_ptr():
                fail(
                    f"{what}: the forward pass replaced self.running_mean by a new tensor instead "
                    "of updating it in place; any reference to the buffer (an EMA copy, a "
                    "DataParallel replica, your own variable) keeps the stale values.",
                    "update the buffers in place (running_mean.mul_(...).add_(...)), e.g. by "
                    "passing them to your batch_norm.",
                )
            if ours.running_mean.requires_grad or ours.running_var.requires_grad:
                fail(f"{what}: after a training step the running buffers carry autograd history.",
                     "update them under torch.no_grad().")
    if check_buffers and ref.track_running_stats:
        for name in ("running_mean", "running_var"):
            mine, theirs = getattr(ours, name), getattr(ref, name)
            if not torch.allclose(mine.detach().double(), theirs, rtol=1e-6, atol=1e-9):
                fail(
                    f"After {len(xs)} training steps {what}.{name} is "
                    f"{[round(v, 5) for v in mine.tolist()]}; nn.{type(ref).__name__} has "
                    f"{[round(v, 5) for v in theirs.tolist()]}.\n  {_CASCADE_BN}",
                    "running = (1 - momentum) * running + momentum * batch_stat, the unbiased "
                    "variance for running_var, in place.",
                )
        if int(ours.num_batches_tracked) != int(ref.num_batches_tracked):
            fail(f"After {len(xs)} training steps {what}.num_batches_tracked is "
                 f"{int(ours.num_batches_tracked)}; expected {int(ref.num_batches_tracked)}.",
                 "self.num_batches_tracked.add_(1) on every training-mode forward pass.")
    ours.eval()
    ref.eval()
    saved = {k: v.clone() for k, v in ours.state_dict().items()}
    x = xs[0] * 1.5 + 0.5
    out = _run(ours, x, f"{what} in eval mode")
    expected = ref(x).detach()
    after = ours.state_dict()
    if any(not torch.equal(saved[k], after[k]) for k in saved):
        fail(f"{what} changed its buffers in eval mode.",
             "update running statistics and num_batches_tracked only when self.training.")
    if not _close(out, expected, x):
        if ref.track_running_stats:
            batch = F.batch_norm(x, None, None, ref.weight, ref.bias, training=True).detach()
            if _close_loose(out, batch):
                fail(f"{what} in eval mode normalised with the batch's statistics instead of "
                     "running_mean and running_var.",
                     "pass training=self.training to batch_norm.")
        fail(f"{what} in eval mode differs from nn.{type(ref).__name__}.\n  {_CASCADE_BN}",
             "in eval mode normalise with the running buffers.")


@check
def check_BatchNorm(BatchNorm) -> None:
    """Parameters and buffers as PyTorch's; matches nn.BatchNorm1d/2d/3d in train and eval."""
    _is_module_class(BatchNorm)
    layer = _make(BatchNorm, 5)
    _check_state(layer, 5, "BatchNorm(5)")
    cases = ((nn.BatchNorm1d, (8, 4)), (nn.BatchNorm1d, (5, 4, 6)), (nn.BatchNorm2d, (4, 4, 3, 3)),
             (nn.BatchNorm3d, (3, 4, 2, 3, 2)))
    for k, (ref_cls, shape) in enumerate(cases):
        momentum = 0.1 if k % 2 == 0 else 0.25
        ours, ref = _pair(BatchNorm, ref_cls, shape[1], 100 + k, momentum=momentum)
        xs = [_probe(shape, torch.float64, seed=110 + 4 * k + s) for s in range(3)]
        _compare_layers(ours, ref, xs, f"BatchNorm({shape[1]}, momentum={momentum}) on {_shape_text(xs[0])}")
    # follows self.training through a parent, not grad mode
    ours = _make(BatchNorm, 3)
    parent = nn.Sequential(ours).eval()
    x = _probe((6, 3), seed=130)
    with torch.no_grad():
        out = _run(parent, x, "nn.Sequential(BatchNorm(3)).eval()")
    if not torch.allclose(out.double(), F.batch_norm(x.double(), torch.zeros(3, dtype=torch.float64),
                                                     torch.ones(3, dtype=torch.float64), training=False),
                          rtol=1e-4, atol=1e-5):
        fail("After parent.eval() the BatchNorm inside still used batch statistics: the mode must "
             "come from self.training.", "pass training=self.training to batch_norm.")


@check
def check_BatchNorm_state_dict(BatchNorm) -> None:
    """state_dict from nn.BatchNorm2d into BatchNorm and back; the layers then agree."""
    _is_module_class(BatchNorm)
    ref = nn.BatchNorm2d(5, momentum=0.2)
    with torch.no_grad():
        w, b = _affine(5, 140)
        ref.weight.copy_(w)
        ref.bias.copy_(b)
        for s in range(3):
            ref(_probe((4, 5, 3, 3), seed=141 + s))
    ours = _make(BatchNorm, 5, momentum=0.2)
    ref_keys, our_keys = set(ref.state_dict()), set(ours.state_dict())
    if ref_keys != our_keys:
        missing, extra = sorted(ref_keys - our_keys), sorted(our_keys - ref_keys)
        plain = [k for k in missing if isinstance(getattr(ours, k, None), torch.Tensor)]
        if plain:
            fail(
                f"BatchNorm(5).state_dict() lacks {plain}: they are plain attributes, so saving "
                "and loading a model would lose the running statistics (and nn.BatchNorm2d's "
                "state cannot be loaded).",
                "register them with self.register_buffer(name, tensor) in __init__.",
            )
        fail(f"BatchNorm(5).state_dict() has the keys {sorted(our_keys)}; nn.BatchNorm2d(5) has "
             f"{sorted(ref_keys)} (missing {missing}, extra {extra}).",
             "use exactly the names weight, bias, running_mean, running_var, num_batches_tracked.")
    try:
        ours.load_state_dict(ref.state_dict())
    except Exception as exc:  # noqa: BLE001 - report the student's incompatibility
        fail(f"BatchNorm(5).load_state_dict(nn.BatchNorm2d(5).state_dict()) raised "
             f"{type(exc).__name__}: {exc}", "give the parameters and buffers PyTorch's names, shapes and dtypes.")
    x = _probe((3, 5, 4, 4), seed=150)
    ours.eval()
    ref.eval()
    out = _run(ours, x, "BatchNorm(5) in eval mode after loading nn.BatchNorm2d's state")
    if not _close(out, ref(x).detach().double(), x):
        fail("After loading nn.BatchNorm2d's state, BatchNorm in eval mode gives a different output.",
             "in eval mode normalise with running_mean and running_var, then weight and bias.")
    # and back: a trained BatchNorm into nn.BatchNorm2d
    ours = _make(BatchNorm, 5, momentum=0.3)
    with torch.no_grad():
        ours.weight.copy_(w)
        ours.bias.copy_(b)
    ours.train()
    for s in range(2):
        _run(ours, _probe((4, 5, 3, 3), seed=160 + s), "BatchNorm(5, momentum=0.3) in train mode")
    back = nn.BatchNorm2d(5, momentum=0.3)
    try:
        back.load_state_dict(ours.state_dict())
    except Exception as exc:  # noqa: BLE001
        fail(f"nn.BatchNorm2d(5).load_state_dict(BatchNorm(5).state_dict()) raised "
             f"{type(exc).__name__}: {exc}", "keep PyTorch's names, shapes and dtypes (num_batches_tracked: a long scalar).")
    if int(back.num_batches_tracked) != 2:
        fail(f"After 2 training steps num_batches_tracked is {int(back.num_batches_tracked)}; expected 2.",
             "self.num_batches_tracked.add_(1) on every training-mode forward pass.")
    ours.eval()
    back.eval()
    out = _run(ours, x, "BatchNorm(5) in eval mode")
    if not _close(out, back(x).detach().double(), x):
        fail("nn.BatchNorm2d loaded with your BatchNorm's state gives a different eval output.",
             "the running buffers must follow PyTorch's update rule (see the batch_norm tests).")


# ---------------------------------------------------------------------------- identity_affine

def _check_identity(identity_affine, x, eps, what):
    kwargs = {} if eps is None else {"eps": eps}
    eps_v = 1e-5 if eps is None else eps
    given = x.clone()
    with _no_builtin("identity_affine"):
        result = call(identity_affine, given, _what=what, **kwargs)
    if not torch.equal(given, x):
        fail(f"{what} modified its input.", "compute new tensors from x.")
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and all(isinstance(t, torch.Tensor) for t in result)):
        fail(f"{what} returned {type(result).__name__}; expected a tuple (weight, bias) of two tensors.",
             "return weight, bias.")
    weight, bias = result
    c = x.shape[1]
    if tuple(weight.shape) != (c,) or tuple(bias.shape) != (c,):
        fail(f"{what} returned shapes {tuple(weight.shape)} and {tuple(bias.shape)}; expected ({c},) each.",
             "one gamma and one beta per channel: reduce over dimension 0 and every dimension after 1.")
    if weight.dtype != x.dtype or bias.dtype != x.dtype:
        fail(f"{what} returned {weight.dtype}/{bias.dtype} for a {x.dtype} input.", "keep the input's dtype.")
    xd = x.double()
    out = F.batch_norm(xd, None, None, weight.detach().double(), bias.detach().double(), training=True, eps=eps_v)
    rtol, atol = (1e-7, 1e-9) if x.dtype == torch.float64 else (1e-4, 1e-5)
    if torch.allclose(out, xd, rtol=rtol, atol=atol):
        return
    dims = _dims(xd)
    var, mean = torch.var_mean(xd, dim=dims, unbiased=False)
    w, b = weight.detach().double(), bias.detach().double()
    close = lambda a, e: torch.allclose(a, e, rtol=1e-3, atol=1e-6)  # noqa: E731
    if close(w, mean) and close(b, torch.sqrt(var + eps_v)):
        fail(f"{what}: weight and bias are swapped (weight = mean, bias = sqrt(var + eps)).",
             "gamma (weight) undoes the division: sqrt(var + eps); beta (bias) undoes the "
             "subtraction: mean.")
    if close(b, mean) and close(w, torch.sqrt(var)):
        fail(f"{what}: weight is sqrt(var), without eps: batch norm divided by sqrt(var + eps), "
             "so the output is not quite x (visibly so on a channel with a tiny variance).",
             "weight = torch.sqrt(var + eps).")
    if close(b, mean) and close(w, torch.sqrt(torch.var(xd, dim=dims, unbiased=True) + eps_v)):
        fail(f"{what}: weight uses the unbiased variance; batch norm normalises with the biased one.",
             "var = x.var(dim=..., unbiased=False).")
    if close(b, mean) and close(w, 1 / torch.sqrt(var + eps_v)):
        fail(f"{what}: weight is 1 / sqrt(var + eps); it must undo the division, not repeat it.",
             "weight = torch.sqrt(var + eps).")
    if not close(b, mean):
        fail(f"{what}: bias is not the per-channel batch mean.",
             "bias = x.mean(dim=[0, 2, 3, ...]) (dimension 0 and every dimension after 1).")
    fail(f"{what}: batch norm with the returned weight does not give x back.",
         "weight = sqrt(var + eps) with the biased variance per channel.")


@check
def check_identity_affine(identity_affine) -> None:
    """Training-mode batch norm with the returned (weight, bias) gives back a 2-d batch."""
    _check_identity(identity_affine, _probe((16, 5), seed=200), None, "identity_affine(x of shape (16, 5))")


# ---------------------------------------------------------------------------- LeNetBN

_LENET = {
    "conv1": (nn.Conv2d, (3, 6, 5)), "conv2": (nn.Conv2d, (6, 16, 5)),
    "fc1": (nn.Linear, (400, 120)), "fc2": (nn.Linear, (120, 84)), "fc3": (nn.Linear, (84, None)),
}
_BNS = {"bn1": (6, "conv1"), "bn2": (16, "conv2"), "bn3": (120, "fc1")}


def _bn_size(module):
    n = getattr(module, "num_features", None)
    if isinstance(n, int):
        return n
    w = getattr(module, "running_mean", None)
    if isinstance(w, torch.Tensor):
        return w.numel()
    w = getattr(module, "weight", None)
    return w.numel() if isinstance(w, torch.Tensor) else None


def _lenet_structure(net, classes):
    for name, (kind, sizes) in _LENET.items():
        m = getattr(net, name, None)
        if not isinstance(m, kind):
            fail(f"LeNetBN({classes}).{name} is {type(m).__name__}; expected nn.{kind.__name__}.",
                 "keep the seed's attribute names: conv1 bn1 conv2 bn2 fc1 bn3 fc2 fc3.")
        if kind is nn.Conv2d:
            got = (m.in_channels, m.out_channels, m.kernel_size[0])
        else:
            got = (m.in_features, m.out_features)
        want = tuple(classes if s is None else s for s in sizes[: len(got)])
        if got != want:
            fail(f"LeNetBN({classes}).{name} has sizes {got}; the seed's LeNet has {want}.",
                 "conv1 3→6 (5×5), conv2 6→16 (5×5), fc1 400→120, fc2 120→84, fc3 84→classes.")
    for name, (size, _) in _BNS.items():
        m = getattr(net, name, None)
        if not isinstance(m, nn.Module):
            fail(f"LeNetBN has no layer {name}.", "add bn1 (6 channels), bn2 (16) and bn3 (120).")
        if _bn_size(m) != size:
            fail(f"LeNetBN.{name} normalises {_bn_size(m)} features; expected {size}.",
                 f"{name} follows a layer with {size} outputs: BatchNorm{'1' if name == 'bn3' else '2'}d({size}).")


def _trace(net, x):
    """Run net(x) recording, for each named child, its inputs and outputs (cloned)."""
    records = {}
    order = []
    handles = []
    for name in list(_LENET) + list(_BNS):
        module = getattr(net, name)

        def hook(mod, inputs, output, name=name):
            order.append(name)
            records.setdefault(name, []).append((inputs[0].detach().clone(), output.detach().clone()))
        handles.append(module.register_forward_hook(hook))
    try:
        out = call(net, x, _what="LeNetBN(2)(x)")
    finally:
        for h in handles:
            h.remove()
    return out, records, order


@check
def check_LeNetBN(LeNetBN) -> None:
    """The seed's layers, each batch norm between its layer and the ReLU, every layer used."""
    if not (isinstance(LeNetBN, type) and issubclass(LeNetBN, nn.Module)):
        fail("LeNetBN is not a subclass of nn.Module.", "write `class LeNetBN(nn.Module):`.")
    torch.manual_seed(0)  # restored by @check
    net = call(LeNetBN, 2, _what="LeNetBN(2)")
    _lenet_structure(net, 2)
    net.train()
    x = torch.randn(8, 3, 32, 32, generator=generator(300))
    out, rec, order = _trace(net, x)
    for name in list(_LENET) + list(_BNS):
        if name not in rec:
            fail(f"LeNetBN.{name} is defined but never used in forward(): its parameters exist "
                 "but the network does not normalise there.", f"call self.{name} in forward().")
        if len(rec[name]) > 1:
            fail(f"LeNetBN.{name} is called {len(rec[name])} times in one forward pass.",
                 "call each layer once.")
    for bn, (_, layer) in _BNS.items():
        bn_in = rec[bn][0][0]
        layer_out = rec[layer][0][1]
        if bn_in.shape == layer_out.shape and torch.equal(bn_in, layer_out):
            continue
        if bn_in.shape == layer_out.shape and torch.allclose(bn_in, F.relu(layer_out)):
            fail(f"LeNetBN.{bn} comes after the ReLU: it receives relu({layer}(...)). The seed "
                 f"(and the original paper) put batch norm between {layer} and its ReLU, so that the "
                 "ReLU sees normalised, zero-centred inputs and keeps about half of them.",
                 f"out = F.relu(self.{bn}(self.{layer}(out))).")
        fail(f"LeNetBN.{bn} does not receive the output of {layer} directly.",
             f"out = F.relu(self.{bn}(self.{layer}(out))).")
    expected_inputs = {
        "conv2": F.max_pool2d(F.relu(rec["bn1"][0][1]), 2),
        "fc1": F.max_pool2d(F.relu(rec["bn2"][0][1]), 2).flatten(1),
        "fc2": F.relu(rec["bn3"][0][1]),
        "fc3": F.relu(rec["fc2"][0][1]),
    }
    for name, expected in expected_inputs.items():
        got = rec[name][0][0]
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-6):
            fail(f"The input of LeNetBN.{name} is not what the seed's forward pass gives it.",
                 "conv1 → bn1 → ReLU → max-pool 2 → conv2 → bn2 → ReLU → max-pool 2 → flatten → "
                 "fc1 → bn3 → ReLU → fc2 → ReLU → fc3.")
    if not isinstance(out, torch.Tensor) or not torch.allclose(out.detach(), rec["fc3"][0][1]):
        fail("LeNetBN's output is not the output of fc3.", "return self.fc3(out) (no softmax: "
             "cross_entropy takes logits).")


