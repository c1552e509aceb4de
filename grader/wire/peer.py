"""One end of the wire: values as data, everything else as handles, tensors as twins.

Both ends run this code. The judge calls :meth:`Peer.lookup` and works with what comes
back as if it were the student's object:

* numbers, strings, ``None``, lists, tuples, dicts, dtypes, shapes, numpy arrays and
  scalars travel **by value**;
* tensors travel by value too, as **twins**: each side keeps its copy under a shared id,
  and before every message a side sends the twins it changed in place (data, gradient,
  ``requires_grad``), so ``sgd_step`` updating parameters or a check writing
  ``layer.weight.copy_(w)`` is seen by the other side at the next call;
* ``torch.Generator`` states and the global RNG state are carried the same way, so the
  two processes behave as one random stream;
* any other object (functions, classes, modules) stays with its owner and travels as a
  **handle**; the other side gets a proxy (a real subclass of ``nn.Module`` or
  ``autograd.Function`` when the object is one) whose calls, attribute reads and writes
  become requests;
* gradients flow back through remote calls: an output that requires grad comes back
  attached to a ``_RemoteFunction`` node whose backward sends the upstream gradient over.

Nothing is unpickled or evaluated. The judge's end is *restricted*: it serves the
kernel only calls of objects it handed over and public attribute reads, never name
lookups or attribute writes, and it bounds every message it decodes.
"""
from __future__ import annotations

import builtins
import collections
import collections.abc
import itertools
import re
import socket
import sys
import types
from typing import Any, Callable

import torch

from . import framing, spies

try:  # numpy travels by value when present
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

JUDGE, KERNEL = "j", "k"

_DTYPES = {str(d).replace("torch.", ""): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
    torch.complex128, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.bool)}
_RNG_BYTES = len(torch.random.get_rng_state())
_EXCEPTIONS = {name: obj for name, obj in vars(builtins).items()
               if isinstance(obj, type) and issubclass(obj, Exception)}
_NAME = re.compile(r"[^A-Za-z0-9_]")
_DUNDERS = {"len", "list", "getitem", "setitem", "delitem", "contains", "bool", "float",
            "int", "index", "str", "repr"}
_RESTRICTED_DUNDERS = {"len", "list", "getitem", "contains", "bool", "float", "int", "index"}
MAX_ITEMS = 1_000_000
MAX_DEPTH = 64
MAX_STR = 1_000_000
MAX_LIST = 100_000


class RemoteError(Exception):
    """The other side raised an exception whose type is not a Python built-in."""


class Interrupted(BaseException):
    """The kernel was interrupted (the judge's time limit) while running student code."""


_remote_exceptions: dict = {}


def _exception(info: dict) -> BaseException:
    """The other side's exception as one of this side: a built-in type by its name, else a
    class of the same name derived from the nearest built-in base (so ``except
    RuntimeError`` catches torch's errors as it would in one process)."""
    name = _NAME.sub("_", str(info.get("t", "Exception")))[:80] or "Exception"
    message = str(info.get("m", ""))[:2000]
    if info.get("interrupt"):
        return Interrupted(message)
    cls = _EXCEPTIONS.get(name)
    if cls is None:
        bases = [str(b) for b in (info.get("b") or [])[:32] if isinstance(b, str)]
        base = next((_EXCEPTIONS[b] for b in bases if b in _EXCEPTIONS), Exception)
        key = (name, base)
        cls = _remote_exceptions.get(key)
        if cls is None:
            try:
                cls = _remote_exceptions[key] = type(name, (base,), {"__module__": "student"})
            except TypeError:
                cls = RemoteError
    try:
        return cls(message)
    except Exception:
        return RemoteError(f"{name}: {message}")


def _describe_exception(exc: BaseException) -> dict:
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable>"
    return {"t": type(exc).__name__, "m": message[:2000],
            "b": [c.__name__ for c in type(exc).__mro__[1:]][:32],
            "interrupt": isinstance(exc, KeyboardInterrupt)}


# ----------------------------------------------------------------------------- proxies

_LOCAL = frozenset({
    "_remote", "__class__", "__dict__", "__repr__", "__str__", "__eq__", "__ne__",
    "__hash__", "__reduce__", "__reduce_ex__", "__getstate__", "__dir__", "__format__",
    "__sizeof__", "__init_subclass__", "__subclasshook__", "__weakref__",
})


class RemoteObject:
    """Base of every proxy of an object living on the other side."""

    def __getattribute__(self, name):
        if name in _LOCAL:
            return object.__getattribute__(self, name)
        peer, hid = object.__getattribute__(self, "_remote")
        return peer.request({"op": "getattr", "h": hid, "n": name})

    def __setattr__(self, name, value):
        peer, hid = object.__getattribute__(self, "_remote")
        peer.request({"op": "setattr", "h": hid, "n": name, "v": value})

    def __delattr__(self, name):
        peer, hid = object.__getattribute__(self, "_remote")
        peer.request({"op": "delattr", "h": hid, "n": name})

    def __call__(self, *args, **kwargs):
        peer, hid = object.__getattribute__(self, "_remote")
        return peer.request({"op": "call", "h": hid, "a": list(args), "k": kwargs})

    def _dunder(self, name, *args):
        peer, hid = object.__getattribute__(self, "_remote")
        return peer.request({"op": "dunder", "h": hid, "n": name, "a": list(args)})

    def __repr__(self):
        return f"<{type(self).__name__} (student object)>"

    __str__ = __repr__
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __len__(self):
        return RemoteObject._dunder(self, "len")

    def __iter__(self):
        return iter(RemoteObject._dunder(self, "list"))

    def __getitem__(self, key):
        return RemoteObject._dunder(self, "getitem", key)

    def __setitem__(self, key, value):
        RemoteObject._dunder(self, "setitem", key, value)

    def __delitem__(self, key):
        RemoteObject._dunder(self, "delitem", key)

    def __contains__(self, item):
        return RemoteObject._dunder(self, "contains", item)

    def __bool__(self):
        return RemoteObject._dunder(self, "bool")

    def __float__(self):
        return RemoteObject._dunder(self, "float")

    def __int__(self):
        return RemoteObject._dunder(self, "int")

    def __index__(self):
        return RemoteObject._dunder(self, "index")


class RemoteClass:
    """Base of every proxy of a class living on the other side: calling it builds an
    instance over there and returns its proxy."""

    def __new__(cls, *args, **kwargs):
        peer, hid = cls.__dict__["_remote"]
        return peer.request({"op": "call", "h": hid, "a": list(args), "k": kwargs})

    def __init__(self, *args, **kwargs):
        pass


class _RemoteClassAttr:
    """A class proxy's attribute (a static or class method such as ``Function.apply``)."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj, owner):
        peer, hid = owner.__dict__["_remote"]
        return peer.request({"op": "getattr", "h": hid, "n": self.name})


def _real_base(mro: list) -> type | None:
    """The most derived class of the remote MRO that is a torch.nn.Module or
    torch.autograd.Function class importable here (never imported anew)."""
    import sys

    for entry in mro[:64]:
        if not (isinstance(entry, list) and len(entry) == 2):
            continue
        module, qualname = str(entry[0]), str(entry[1])
        if not module.startswith("torch.") or module not in sys.modules:
            continue
        obj: Any = sys.modules[module]
        for part in qualname.split(".")[:8]:
            obj = getattr(obj, part, None)
        if isinstance(obj, type) and (issubclass(obj, torch.nn.Module)
                                      or issubclass(obj, torch.autograd.Function)):
            return obj
    return None


_instance_classes: dict = {}


def _make_proxy(peer: "Peer", hid: str, desc: dict):
    name = _NAME.sub("_", str(desc.get("n", "object")))[:60] or "object"
    real = _real_base(desc.get("mro") or [])
    if desc.get("k") == "class":
        ns: dict[str, Any] = {"__module__": "student", "__qualname__": name, "_remote": (peer, hid)}
        for attr in (desc.get("a") or [])[:200]:
            attr = str(attr)
            if attr.isidentifier() and not attr.startswith("__"):
                ns[attr] = _RemoteClassAttr(attr)
        if real is not None and issubclass(real, torch.autograd.Function):
            ns["apply"] = _RemoteClassAttr("apply")
        bases = (RemoteClass, real) if real is not None else (RemoteClass,)
        return type(name, bases, ns)
    key = (name, real)
    cls = _instance_classes.get(key)
    if cls is None:
        bases = (RemoteObject, real) if real is not None else (RemoteObject,)
        cls = _instance_classes[key] = type(name, bases, {"__module__": "student"})
    obj = object.__new__(cls)
    object.__setattr__(obj, "_remote", (peer, hid))
    return obj


def _describe(obj) -> dict:
    cls = obj if isinstance(obj, type) else type(obj)
    mro = [[str(getattr(c, "__module__", "")), str(getattr(c, "__qualname__", ""))]
           for c in getattr(cls, "__mro__", (cls,))[:64]]
    desc = {"k": "class" if isinstance(obj, type) else "obj",
            "n": str(getattr(obj, "__name__", None) or cls.__name__)[:100], "mro": mro}
    if isinstance(obj, type):
        own = set()
        for c in cls.__mro__:
            if str(getattr(c, "__module__", "")).split(".")[0] in ("torch", "builtins"):
                continue
            own.update(k for k in vars(c) if isinstance(k, str) and not k.startswith("__"))
        desc["a"] = sorted(own)[:200]
    return desc


# ----------------------------------------------------------------------------- autograd

class _RemoteFunction(torch.autograd.Function):
    """Ties outputs computed on the other side into this side's autograd graph."""

    @staticmethod
    def forward(ctx, peer, cid, outputs, anchor, *inputs):
        ctx.peer, ctx.cid, ctx.n_inputs = peer, cid, len(inputs)
        ctx.shapes = [(t.shape, t.dtype) for t in inputs]
        return tuple(o.detach().clone() for o in outputs)

    @staticmethod
    def backward(ctx, *grads):
        result = ctx.peer.request({"op": "backward", "c": ctx.cid, "g": list(grads)})
        if not isinstance(result, list) or len(result) != ctx.n_inputs:
            raise RuntimeError("the student's kernel answered a backward pass with the wrong number of gradients")
        out = []
        for g, (shape, dtype) in zip(result, ctx.shapes):
            if g is not None and not (isinstance(g, torch.Tensor) and g.shape == shape):
                raise RuntimeError("the student's kernel answered a backward pass with a gradient of the wrong shape")
            out.append(None if g is None else g.to(dtype))
        return (None, None, None, None, *out)


# ----------------------------------------------------------------------------- the peer

def _tensor_state(t: torch.Tensor):
    g = t.grad if t.is_leaf else None
    return (t._version, t.data_ptr(), tuple(t.shape), t.dtype, t.requires_grad,
            id(g) if g is not None else None)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal to the bit (NaN included): C++ kernels such as batch norm's running
    statistics, and writes through ``.data``, change a tensor without its version."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.numel() == 0:
        return True
    a = a.detach().contiguous().reshape(-1)
    return torch.equal(a.view(torch.uint8) if a.element_size() == 1 else a.view(_INT_OF_SIZE[a.element_size()]),
                       b.reshape(-1).view(torch.uint8) if b.element_size() == 1 else b.reshape(-1).view(_INT_OF_SIZE[b.element_size()]))


_INT_OF_SIZE = {2: torch.int16, 4: torch.int32, 8: torch.int64, 16: torch.int64}


class Peer:
    """One end of a connection. ``side`` is JUDGE or KERNEL; the judge is restricted."""

    def __init__(self, sock: socket.socket, side: str, namespace: dict | None = None):
        self.sock, self.side = sock, side
        self.restricted = side == JUDGE
        self.namespace = namespace  # the kernel's user namespace (name lookups)
        self.deadline: float | None = None
        self.on_deadline: Callable[[], float] | None = None  # returns a new deadline or raises
        self.max_buffers = framing.MAX_BUFFERS
        self._counter = itertools.count(1)
        self._rng_last: bytes | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every handle, twin and recorded call (between test cells)."""
        self.exported: dict[str, Any] = {}
        self.export_ids: dict[int, str] = {}
        self.proxies: dict[str, Any] = {}
        # Twins the judge no longer references are sent once more if changed, then
        # forgotten on both sides (``forget``), so each message scans only live twins.
        self.tensors: dict[str, torch.Tensor] = {}
        self.forgotten: list[str] = []
        self.tensor_ids: dict[int, str] = {}
        self.synced: dict[str, tuple] = {}
        self.snapshots: dict[str, torch.Tensor] = {}
        self.generators: dict[str, torch.Generator] = {}
        self.generator_ids: dict[int, str] = {}
        self.generator_synced: dict[str, bytes] = {}
        self.calls: dict[str, tuple[list, list]] = {}

    def register(self, tid: str, t: torch.Tensor) -> None:
        self.tensors[tid] = t
        self.tensor_ids[id(t)] = tid

    def register_generator(self, gid: str, g: torch.Generator) -> None:
        self.generators[gid] = g
        self.generator_ids[id(g)] = gid

    def _unreferenced(self) -> list[str]:
        """The judge's twins nothing but this peer refers to any more."""
        if not self.restricted:
            return []
        # 2 = the table's reference and getrefcount's argument
        return ([tid for tid in list(self.tensors) if sys.getrefcount(self.tensors[tid]) <= 2]
                + [gid for gid in list(self.generators) if sys.getrefcount(self.generators[gid]) <= 2])

    def _forget(self, tids) -> None:
        for tid in (tids or [])[:MAX_LIST]:
            g = self.generators.pop(tid, None) if isinstance(tid, str) else None
            if g is not None:
                self.generator_synced.pop(tid, None)
                self.generator_ids.pop(id(g), None)
            t = self.tensors.pop(tid, None) if isinstance(tid, str) else None
            self.synced.pop(tid, None)
            self.snapshots.pop(tid, None)
            if t is not None and self.tensor_ids.get(id(t)) == tid:
                del self.tensor_ids[id(t)]

    def mark_synced(self, tid: str, t: torch.Tensor) -> None:
        self.synced[tid] = _tensor_state(t)
        self.snapshots[tid] = t.detach().clone()

    def dirty(self, tid: str, t: torch.Tensor) -> bool:
        snapshot = self.snapshots.get(tid)
        return (self.synced.get(tid) != _tensor_state(t) or snapshot is None
                or not _same_bits(t, snapshot))

    def _new_id(self) -> str:
        return f"{self.side}{next(self._counter)}"

    # ---------------------------------------------------------------- messages

    def send(self, message: dict) -> list[str]:
        """Send a message; returns the ids of the tensors in it that require grad."""
        with torch._C.DisableTorchFunction():  # the wire's own tensor work is no one's call
            return self._send(message)

    def _send(self, message: dict) -> list[str]:
        enc = _Encoder(self)
        body = {k: (enc.value(v) if k in ("a", "k", "v", "g", "ok") else v) for k, v in message.items()}
        enc.collect = False
        body["sync"] = enc.dirty_twins()
        dropped = self._unreferenced()
        if dropped:
            self._forget(dropped)
            self.forgotten.extend(dropped)
        rng = bytes(torch.random.get_rng_state().numpy())
        if rng != self._rng_last:
            body["rng"] = enc.buffer(rng)
            self._rng_last = rng
        body["grad"] = torch.is_grad_enabled()
        body["gin"] = enc.grad_inputs
        if self.forgotten:
            body["forget"], self.forgotten = self.forgotten, []
        framing.send(self.sock, body, enc.buffers)
        return enc.grad_inputs

    def recv(self) -> tuple[dict, "_Decoder"]:
        with torch._C.DisableTorchFunction():
            return self._recv()

    def _recv(self) -> tuple[dict, "_Decoder"]:
        while True:
            try:
                message, buffers = framing.recv(self.sock, self.deadline, self.max_buffers)
                break
            except framing.Deadline:
                if self.on_deadline is None:
                    raise
                self.deadline = self.on_deadline()
        dec = _Decoder(self, buffers)
        for update in message.get("sync") or []:
            dec.value(update)
        if isinstance(message.get("forget"), list):
            self._forget(message["forget"])
        if isinstance(message.get("rng"), int):
            state = dec.buffer(message["rng"])
            if len(state) == _RNG_BYTES:
                try:
                    torch.random.set_rng_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
                    self._rng_last = state
                except Exception:
                    pass
        return message, dec

    def request(self, message: dict):
        """Send a request and serve the other side's nested requests until the reply."""
        message = dict(message, kinds=spies.active_kinds())
        sent = self.send(message)
        while True:
            reply, dec = self.recv()
            if reply.get("op") != "reply":
                self.handle(reply, dec)
                continue
            if "err" in reply:
                raise _exception(reply["err"] if isinstance(reply["err"], dict) else {})
            spies.deliver(reply.get("spied") or {})
            with torch._C.DisableTorchFunction():
                value = dec.value(reply.get("ok"))
            if isinstance(reply.get("cid"), str) and isinstance(reply.get("gout"), list):
                inputs = [self.tensors[t] for t in sent if isinstance(self.tensors.get(t), torch.Tensor)]
                outs = [self.tensors.get(t) for t in reply["gout"][:MAX_LIST] if isinstance(t, str)]
                outs = [t for t in outs if isinstance(t, torch.Tensor) and t.grad_fn is None
                        and (t.dtype.is_floating_point or t.dtype.is_complex)]
                if outs:
                    value = self._attach(reply["cid"], value, outs, inputs)
            return value

    def _attach(self, cid: str, value, outs: list[torch.Tensor], inputs: list[torch.Tensor]):
        """Route gradients of ``outs`` (tensors of ``value``) back to the other side's call ``cid``."""
        with torch._C.DisableTorchFunction(), torch.enable_grad():
            anchor = torch.zeros((), requires_grad=True)
            linked = _RemoteFunction.apply(self, cid, tuple(outs), anchor, *inputs)
        mapping = {}
        for old, new in zip(outs, linked):
            tid = self.tensor_ids.pop(id(old), None)
            if tid is not None:
                self.register(tid, new)
                self.mark_synced(tid, new)
            mapping[id(old)] = new
        return _replace(value, mapping)

    # ---------------------------------------------------------------- serving

    def serve(self) -> None:
        """Serve requests until the other side says it is done (the kernel's loop)."""
        while True:
            message, dec = self.recv()
            if message.get("op") == "done":
                return
            self.handle(message, dec)

    def handle(self, message: dict, dec: "_Decoder") -> None:
        reply: dict = {"op": "reply"}
        try:
            with torch.set_grad_enabled(bool(message.get("grad", True))):
                kinds = [k for k in (message.get("kinds") or []) if isinstance(k, str)]
                if message.get("op") == "call":  # arguments decoded before any spy watches
                    with torch._C.DisableTorchFunction():
                        args, kwargs = dec.value(message.get("a")), dec.value(message.get("k"))
                    if not isinstance(args, list) or not isinstance(kwargs, dict):
                        raise TypeError("malformed call")
                    message["_args"] = (args, kwargs)
                spy = _Spying(kinds if not self.restricted else [])
                value, cid = self._perform(message, dec, spy)
                reply["spied"] = {k: sorted(set(map(str, v)))[:1000] for k, v in spy.recorded.items()}
                reply["ok"] = value
                if cid:
                    reply["cid"] = cid
                    reply["gout"] = [self.tensor_ids[id(t)] for t in self.calls[cid][0]]
        except BaseException as exc:  # the student's code raised, or was interrupted
            if isinstance(exc, (framing.PeerGone, framing.WireError)):
                raise
            reply = {"op": "reply", "err": _describe_exception(exc)}
        try:
            self.send(reply)
        except (framing.PeerGone, framing.WireError):
            raise
        except BaseException as exc:  # the value could not be encoded
            self.send({"op": "reply", "err": _describe_exception(exc)})

    def _perform(self, message: dict, dec: "_Decoder", recorded: "_Spying"):
        op = message.get("op")
        if self.restricted and op not in ("call", "getattr", "dunder"):
            raise PermissionError(f"the judge does not serve {op!r} requests")
        if op == "lookup":
            name = str(message.get("n"))
            if self.namespace is None or name not in self.namespace:
                raise NameError(f"name {name!r} is not defined")
            return self.namespace[name], None
        if op == "backward":
            with recorded:
                return self._backward(message, dec), None
        target = self._local(message.get("h"))
        if op == "call":
            args, kwargs = message["_args"]
            inputs = dec.grad_inputs_of(message)
            with recorded:
                value = target(*args, **{str(k): v for k, v in kwargs.items()})
            return value, self._record(value, inputs)
        name = str(message.get("n"))
        if op == "getattr":
            if self.restricted and name.startswith("_"):
                raise AttributeError(f"{name!r} is not served")
            with recorded:
                value = getattr(target, name)
            return value, self._record(value, [])
        if op == "setattr":
            setattr(target, name, dec.value(message.get("v")))
            return None, None
        if op == "delattr":
            delattr(target, name)
            return None, None
        if op == "dunder":
            allowed = _RESTRICTED_DUNDERS if self.restricted else _DUNDERS
            if name not in allowed:
                raise PermissionError(f"{name!r} is not served")
            args = dec.value(message.get("a")) or []
            with recorded:
                return _dunder(target, name, args), None
        raise ValueError(f"unknown request {op!r}")

    def _local(self, hid):
        if not isinstance(hid, str) or hid not in self.exported:
            raise LookupError("unknown handle")
        return self.exported[hid]

    def _record(self, value, inputs: list[torch.Tensor]) -> str | None:
        """Keep a call's graph so that the other side can send gradients back."""
        if self.restricted or not torch.is_grad_enabled():
            return None
        outs = [t for t in _tensors_in(value) if t.requires_grad and not t.is_leaf]
        if not outs:
            return None
        for t in outs:  # give the outputs their ids now: the reply names them
            if self.tensors.get(self.tensor_ids.get(id(t), "")) is not t:
                self.register(self._new_id(), t)
        cid = self._new_id()
        self.calls[cid] = (outs, inputs)
        return cid

    def _backward(self, message: dict, dec: "_Decoder") -> list:
        record = self.calls.get(message.get("c"))
        if record is None:
            raise LookupError("unknown call")
        outs, inputs = record
        grads = dec.value(message.get("g"))
        if not isinstance(grads, list):
            raise TypeError("malformed gradients")
        pairs = [(o, g) for o, g in zip(outs, grads) if isinstance(g, torch.Tensor) and o.requires_grad]
        saved = [t.grad for t in inputs]
        for t in inputs:
            t.grad = None
        try:
            if pairs:
                torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs], retain_graph=True)
            result = [t.grad for t in inputs]
        finally:
            for t, s in zip(inputs, saved):
                t.grad = s
        for t in inputs:  # the inputs' own gradients did not change
            tid = self.tensor_ids.get(id(t))
            if tid is not None:
                self.mark_synced(tid, t)
        return result

    # ---------------------------------------------------------------- judge's calls

    def lookup(self, name: str):
        return self.request({"op": "lookup", "n": name})


class _Spying:
    """The spies a request asked for, around the student's code only."""

    def __init__(self, kinds: list[str]):
        self.kinds = kinds
        self.recorded: dict = {}
        self._stack = None

    def __enter__(self):
        self._stack = spies.recording(self.kinds)
        self._got = self._stack.__enter__()
        return self

    def __exit__(self, *exc):
        result = self._stack.__exit__(*exc)
        for kind, names in self._got.items():
            self.recorded.setdefault(kind, []).extend(names)
        return result


def _dunder(target, name: str, args: list):
    if name == "len":
        return len(target)
    if name == "list":
        return list(itertools.islice(iter(target), MAX_LIST))
    if name == "getitem":
        return target[args[0]]
    if name == "setitem":
        target[args[0]] = args[1]
        return None
    if name == "delitem":
        del target[args[0]]
        return None
    if name == "contains":
        return args[0] in target
    if name == "bool":
        return bool(target)
    if name == "float":
        return float(target)
    if name == "int":
        return int(target)
    if name == "index":
        return target.__index__()
    if name == "str":
        return str(target)
    return repr(target)


def _tensors_in(value, depth: int = 0) -> list[torch.Tensor]:
    if depth > MAX_DEPTH:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v, depth + 1)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v, depth + 1)]
    return []


def _replace(value, mapping: dict, depth: int = 0):
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, torch.Tensor):
        return mapping.get(id(value), value)
    if isinstance(value, list):
        return [_replace(v, mapping, depth + 1) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_replace(v, mapping, depth + 1) for v in value)
    if isinstance(value, dict):
        out = type(value)() if isinstance(value, collections.OrderedDict) else {}
        for k, v in value.items():
            out[k] = _replace(v, mapping, depth + 1)
        return out
    return value


# ----------------------------------------------------------------------------- codec

class _Encoder:
    def __init__(self, peer: Peer):
        self.peer = peer
        self.buffers: list[bytes] = []
        self.grad_inputs: list[str] = []
        self.collect = True  # record the tensors that require grad (a call's inputs)

    def buffer(self, data: bytes) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def dirty_twins(self) -> list:
        peer, out = self.peer, []
        for tid, t in list(peer.tensors.items()):
            if peer.dirty(tid, t):
                out.append(self.tensor(t, force=True))
        for gid, g in list(peer.generators.items()):
            if bytes(g.get_state().numpy()) != peer.generator_synced.get(gid):
                out.append(self.generator(g))
        return out

    def tensor(self, t: torch.Tensor, force: bool = False) -> dict:
        peer = self.peer
        tid = peer.tensor_ids.get(id(t))
        if tid is not None and peer.tensors.get(tid) is not t:
            tid = None
        known = tid is not None
        if not known:
            tid = peer._new_id()
            peer.register(tid, t)
        if self.collect and t.requires_grad and tid not in self.grad_inputs:
            self.grad_inputs.append(tid)
        if known and not force and not peer.dirty(tid, t):
            return {"T": tid}
        peer.mark_synced(tid, t)
        data = t.detach()
        if data.layout != torch.strided or data.is_quantized:
            raise TypeError("only dense tensors can be sent")
        if str(data.dtype).replace("torch.", "") not in _DTYPES:
            raise TypeError(f"tensors of dtype {data.dtype} cannot be sent")
        data = data.cpu().contiguous()
        raw = data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b""
        body = {"dt": str(data.dtype).replace("torch.", ""), "sh": list(data.shape),
                "b": self.buffer(raw), "rg": bool(t.requires_grad), "lf": bool(t.is_leaf),
                "p": isinstance(t, torch.nn.Parameter)}
        grad = t.grad if t.is_leaf else None
        body["g"] = self.tensor(grad) if grad is not None else None
        return {"T": tid, "d": body}

    def generator(self, g: torch.Generator) -> dict:
        peer = self.peer
        gid = peer.generator_ids.get(id(g))
        if gid is None or peer.generators.get(gid) is not g:
            gid = peer._new_id()
            peer.register_generator(gid, g)
        state = bytes(g.get_state().numpy())
        if peer.generator_synced.get(gid) == state:
            return {"G": gid}
        peer.generator_synced[gid] = state
        return {"G": gid, "s": self.buffer(state)}

    def handle(self, obj) -> dict:
        peer = self.peer
        if isinstance(obj, (RemoteObject, RemoteClass)) or (
                isinstance(obj, type) and issubclass(obj, RemoteClass)):
            remote = obj.__dict__["_remote"] if isinstance(obj, type) else object.__getattribute__(obj, "_remote")
            if remote[0] is peer:
                return {"O": remote[1]}
        hid = peer.export_ids.get(id(obj))
        if hid is not None and peer.exported.get(hid) is obj:
            return {"O": hid}
        hid = peer._new_id()
        peer.exported[hid] = obj
        peer.export_ids[id(obj)] = hid
        return {"O": hid, "desc": _describe(obj)}

    def value(self, v, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ValueError("value nested too deeply")
        if v is None or type(v) in (bool, str):
            return v
        if type(v) is int:
            return v if abs(v) < 2**63 else {"big": str(v)}
        if type(v) is float:
            return v
        if isinstance(v, torch.Tensor):
            return self.tensor(v)
        if isinstance(v, torch.Generator):
            return self.generator(v)
        if isinstance(v, torch.dtype):
            return {"dt": str(v).replace("torch.", "")}
        if isinstance(v, torch.device):
            return {"dev": str(v)}
        if isinstance(v, torch.Size):
            return {"S": [int(s) for s in v]}
        if _np is not None and isinstance(v, _np.ndarray) and v.dtype.kind in "biufc":
            return {"A": v.dtype.str, "sh": list(v.shape), "b": self.buffer(_np.ascontiguousarray(v).tobytes())}
        if _np is not None and isinstance(v, _np.generic) and v.dtype.kind in "biufc":
            return {"NS": v.dtype.str, "b": self.buffer(v.tobytes())}
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            return self.value(int(v), depth + 1)
        if isinstance(v, float):
            return float(v)
        if isinstance(v, str):
            return str(v)
        if isinstance(v, complex):
            return {"C": [v.real, v.imag]}
        if isinstance(v, tuple) and not hasattr(v, "_fields"):
            return {"U": [self.value(x, depth + 1) for x in v]}
        if isinstance(v, list):
            return {"L": [self.value(x, depth + 1) for x in v]}
        if isinstance(v, (set, frozenset)):
            return {"SET": [self.value(x, depth + 1) for x in v]}
        if isinstance(v, collections.OrderedDict):
            return {"OD": [[self.value(k, depth + 1), self.value(x, depth + 1)] for k, x in v.items()]}
        if isinstance(v, dict):
            return {"D": [[self.value(k, depth + 1), self.value(x, depth + 1)] for k, x in v.items()]}
        if isinstance(v, slice):
            return {"SL": [self.value(v.start, depth + 1), self.value(v.stop, depth + 1), self.value(v.step, depth + 1)]}
        if v is Ellipsis:
            return {"E": 1}
        if isinstance(v, range):
            return {"R": [v.start, v.stop, v.step]}
        if isinstance(v, (types.GeneratorType, collections.abc.Iterator)) and not isinstance(v, RemoteObject):
            return {"I": [self.value(x, depth + 1) for x in itertools.islice(v, MAX_LIST)]}
        return self.handle(v)


class _Decoder:
    def __init__(self, peer: Peer, buffers: list[bytes]):
        self.peer, self.buffers = peer, buffers
        self.items = 0
        self.grad_inputs: list[torch.Tensor] = []

    def buffer(self, index) -> bytes:
        if not isinstance(index, int) or not 0 <= index < len(self.buffers):
            raise framing.WireError("bad buffer reference")
        return self.buffers[index]

    def grad_inputs_of(self, message: dict) -> list[torch.Tensor]:
        out = []
        for tid in (message.get("gin") or [])[:MAX_LIST]:
            t = self.peer.tensors.get(tid) if isinstance(tid, str) else None
            if isinstance(t, torch.Tensor) and t.requires_grad:
                out.append(t)
        return out

    def value(self, v, depth: int = 0):
        self.items += 1
        if self.items > MAX_ITEMS or depth > MAX_DEPTH:
            raise framing.WireError("value too large or nested too deeply")
        if v is None or isinstance(v, (bool, int, float)):
            return v
        if isinstance(v, str):
            if len(v) > MAX_STR:
                raise framing.WireError("string too long")
            return v
        if not isinstance(v, dict) or len(v) > 6:
            raise framing.WireError("malformed value")
        if "T" in v:
            return self.tensor(v)
        if "G" in v:
            return self.generator(v)
        if "O" in v:
            return self.handle(v)
        if "L" in v:
            return [self.value(x, depth + 1) for x in self._seq(v["L"])]
        if "U" in v:
            return tuple(self.value(x, depth + 1) for x in self._seq(v["U"]))
        if "I" in v:
            return iter([self.value(x, depth + 1) for x in self._seq(v["I"])])
        if "SET" in v:
            return {self._key(self.value(x, depth + 1)) for x in self._seq(v["SET"])}
        if "D" in v or "OD" in v:
            out = collections.OrderedDict() if "OD" in v else {}
            for pair in self._seq(v.get("D", v.get("OD"))):
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise framing.WireError("malformed dict")
                out[self._key(self.value(pair[0], depth + 1))] = self.value(pair[1], depth + 1)
            return out
        if "dt" in v:
            return self._dtype(v["dt"])
        if "dev" in v:
            return torch.device(str(v["dev"])[:20])
        if "S" in v:
            return torch.Size([int(s) for s in self._seq(v["S"])])
        if "big" in v:
            text = str(v["big"])
            if len(text) > 4000:
                raise framing.WireError("integer too large")
            return int(text)
        if "C" in v:
            re_, im = self._seq(v["C"])[:2]
            return complex(float(re_), float(im))
        if "SL" in v:
            a, b, c = (self.value(x, depth + 1) for x in self._seq(v["SL"])[:3])
            return slice(a, b, c)
        if "E" in v:
            return Ellipsis
        if "R" in v:
            a, b, c = (int(x) for x in self._seq(v["R"])[:3])
            return range(a, b, c)
        if "A" in v or "NS" in v:
            if _np is None:
                raise framing.WireError("numpy is not available")
            dtype = _np.dtype(str(v.get("A", v.get("NS")))[:8])
            if dtype.kind not in "biufc":
                raise framing.WireError("unsupported numpy dtype")
            raw = self.buffer(v["b"])
            if "NS" in v:
                if len(raw) != dtype.itemsize:
                    raise framing.WireError("malformed numpy scalar")
                return _np.frombuffer(raw, dtype=dtype)[0]
            shape = [int(s) for s in self._seq(v["sh"])]
            if any(s < 0 for s in shape) or _prod(shape) * dtype.itemsize != len(raw):
                raise framing.WireError("malformed numpy array")
            return _np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
        raise framing.WireError("malformed value")

    def _seq(self, v) -> list:
        if not isinstance(v, list) or len(v) > MAX_LIST:
            raise framing.WireError("malformed or too long sequence")
        return v

    @staticmethod
    def _key(k):
        try:
            hash(k)
        except TypeError:
            raise framing.WireError("unhashable key") from None
        return k

    @staticmethod
    def _dtype(name) -> torch.dtype:
        dtype = _DTYPES.get(str(name))
        if dtype is None:
            raise framing.WireError(f"unsupported dtype {str(name)[:20]!r}")
        return dtype

    def tensor(self, v: dict) -> torch.Tensor:
        peer = self.peer
        tid = v.get("T")
        if not isinstance(tid, str) or len(tid) > 40:
            raise framing.WireError("malformed tensor")
        body = v.get("d")
        existing = peer.tensors.get(tid)
        if body is None:
            if existing is None:
                raise framing.WireError("unknown tensor")
            return existing
        if not isinstance(body, dict):
            raise framing.WireError("malformed tensor")
        dtype = self._dtype(body.get("dt"))
        shape = [int(s) for s in self._seq(body.get("sh"))]
        raw = self.buffer(body.get("b"))
        itemsize = torch.empty((), dtype=dtype).element_size()
        if any(s < 0 for s in shape) or _prod(shape) * itemsize != len(raw):
            raise framing.WireError("tensor data does not match its shape")
        data = (torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape)
                if raw else torch.empty(shape, dtype=dtype))
        grad = self.value(body["g"]) if body.get("g") is not None else None
        if grad is not None and not isinstance(grad, torch.Tensor):
            raise framing.WireError("malformed gradient")
        wants_grad = bool(body.get("rg")) and (dtype.is_floating_point or dtype.is_complex)
        # The kernel takes a changed judge tensor as a new object: the old one may be saved
        # in an autograd graph (gradcheck perturbs its inputs in place between calls).
        renew = existing is not None and not peer.restricted and not tid.startswith(peer.side)
        if existing is None or renew:
            t = torch.nn.Parameter(data, requires_grad=wants_grad) if body.get("p") else data.requires_grad_(wants_grad)
            if renew:
                peer.tensor_ids.pop(id(existing), None)
            peer.register(tid, t)
        else:
            t = existing
            with torch.no_grad():
                if t.shape == data.shape and t.dtype == data.dtype:
                    t.copy_(data)
                else:
                    t.data = data
            if t.is_leaf and t.requires_grad != wants_grad:
                t.requires_grad_(wants_grad)
        if t.is_leaf:
            try:
                t.grad = grad
            except RuntimeError:
                pass
        peer.mark_synced(tid, t)
        return t

    def generator(self, v: dict) -> torch.Generator:
        peer = self.peer
        gid = v.get("G")
        if not isinstance(gid, str) or len(gid) > 40:
            raise framing.WireError("malformed generator")
        g = peer.generators.get(gid)
        if g is None:
            g = torch.Generator()
            peer.register_generator(gid, g)
        if v.get("s") is not None:
            state = self.buffer(v["s"])
            if len(state) != _RNG_BYTES:
                raise framing.WireError("malformed generator state")
            g.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
            peer.generator_synced[gid] = state
        elif gid not in peer.generator_synced:
            raise framing.WireError("unknown generator")
        return g

    def handle(self, v: dict):
        peer = self.peer
        hid = v.get("O")
        if not isinstance(hid, str) or len(hid) > 40:
            raise framing.WireError("malformed handle")
        if hid.startswith(peer.side):
            if hid not in peer.exported:
                raise framing.WireError("unknown handle")
            return peer.exported[hid]
        proxy = peer.proxies.get(hid)
        if proxy is None:
            desc = v.get("desc")
            if not isinstance(desc, dict):
                raise framing.WireError("unknown handle")
            proxy = peer.proxies[hid] = _make_proxy(peer, hid, desc)
        return proxy


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
        if n > 2**40:
            raise framing.WireError("tensor too large")
    return n


def connect(path: str, side: str = KERNEL, namespace: dict | None = None, timeout: float = 30.0) -> Peer:
    """The kernel's end: connect to the judge's socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    sock.settimeout(None)
    return Peer(sock, side, namespace)

