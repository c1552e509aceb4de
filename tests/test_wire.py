"""The wire between judge and kernel, without a kernel: a kernel-side peer serves a
namespace from a thread over a socket pair. Proxies behave like the objects they stand
for, tensors stay in step both ways, gradients flow back, built-in spies report, and the
judge's end refuses what it must never do or decode."""
from __future__ import annotations

import json
import socket
import struct
import threading

import pytest
import torch
from torch import nn

from grader.checks._common import forbid_builtins
from grader.wire import framing
from grader.wire.peer import JUDGE, KERNEL, Peer, RemoteError

STUDENT = '''
import torch
from torch import nn
import torch.nn.functional as F

def scale(x, factor=2.0):
    return x * factor

def sgd(params, lr):
    with torch.no_grad():
        for p in params:
            p.add_(p.grad, alpha=-lr)

def alias_grad(params):
    return [p.grad for p in params]

def bump(buffers):
    for b in buffers:
        b.add_(1.0)

def uses_builtin(x):
    return F.dropout(x, 0.5, True)

def running(x, mean, var):
    return F.batch_norm(x, mean, var, training=True, momentum=0.5)

def call_back(f, x):
    return f(x) + 1

class Layer(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.register_buffer("seen", torch.zeros(()))
    def forward(self, x):
        if self.training:
            self.seen += 1
        return x * self.weight

class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g

answer = 5000.0
'''


@pytest.fixture()
def judge():
    a, b = socket.socketpair()
    namespace: dict = {}
    exec(STUDENT, namespace)
    kernel = Peer(b, KERNEL, namespace)
    thread = threading.Thread(target=_serve, args=(kernel,), daemon=True)
    thread.start()
    peer = Peer(a, JUDGE)
    yield peer, kernel, namespace
    try:
        peer.send({"op": "done"})
    except BaseException:
        pass
    thread.join(5)
    a.close()


def _serve(kernel):
    try:
        kernel.serve()
    except BaseException:
        pass


def test_values_travel_by_value(judge):
    peer, _, _ = judge
    scale = peer.lookup("scale")
    x = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    out = scale(x, factor=3.0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert torch.equal(out, x * 3)
    assert peer.lookup("answer") == 5000.0
    with pytest.raises(NameError):
        peer.lookup("nothing_here")


def test_module_proxies_act_like_modules(judge):
    peer, _, namespace = judge
    Layer = peer.lookup("Layer")
    assert isinstance(Layer, type) and issubclass(Layer, nn.Module)
    layer = Layer(3)
    assert isinstance(layer, nn.Module)
    parent = nn.Sequential(layer)
    parent.eval()
    assert layer.training is False
    parent.train()
    out = parent(torch.ones(2, 3))
    assert torch.equal(out, torch.ones(2, 3))
    assert float(layer.seen) == 1.0
    assert set(layer.state_dict()) == {"weight", "seen"}
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))  # seen by the kernel at the next call
    assert torch.equal(layer(torch.ones(1, 3)), torch.tensor([[1.0, 2.0, 3.0]]))


def test_in_place_changes_travel_both_ways(judge):
    peer, _, _ = judge
    params = [torch.ones(3, requires_grad=True)]
    params[0].grad = torch.full((3,), 2.0)
    peer.lookup("sgd")(params, 0.5)
    assert torch.equal(params[0].detach(), torch.zeros(3))
    grads = peer.lookup("alias_grad")(params)  # the very gradient tensor comes back
    peer.lookup("bump")(grads)
    assert torch.equal(params[0].grad, torch.full((3,), 3.0))
    mean, var = torch.zeros(2), torch.ones(2)
    peer.lookup("running")(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), mean, var)  # C++ update, no version bump
    assert torch.allclose(mean, torch.tensor([1.0, 1.5]))


def test_gradients_flow_back_through_remote_calls(judge):
    peer, _, _ = judge
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    out = peer.lookup("scale")(x, 3.0)
    assert out.requires_grad
    out.sum().backward()
    assert torch.equal(x.grad, torch.full((4,), 3.0, dtype=torch.float64))
    Square = peer.lookup("Square")
    assert issubclass(Square, torch.autograd.Function)
    y = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Square.apply, (y,))


def test_spies_report_built_ins_used_in_the_kernel(judge):
    peer, _, _ = judge
    with pytest.raises(AssertionError, match="dropout"):
        with forbid_builtins("uses_builtin", ["dropout"], "a mask"):
            peer.lookup("uses_builtin")(torch.ones(10))


def test_the_kernel_can_call_back_what_the_judge_handed_over(judge):
    peer, _, _ = judge
    assert torch.equal(peer.lookup("call_back")(lambda t: t * 10, torch.ones(2)), torch.full((2,), 11.0))


def test_the_judge_serves_the_kernel_only_calls_and_public_reads(judge):
    peer, kernel, _ = judge

    def secret():
        return "judge"

    # the kernel gets a handle to a judge function, then tries to reach beyond it
    escape = '''
def escape(f):
    results = []
    for attempt in (lambda: f.__globals__, lambda: f.__code__, lambda: getattr(f, "_x")):
        try:
            attempt()
            results.append("reached")
        except Exception as exc:
            results.append(type(exc).__name__)
    try:
        f.name = "changed"
        results.append("set")
    except Exception as exc:
        results.append(type(exc).__name__)
    results.append(f())
    return results
'''
    exec(escape, kernel.namespace)
    got = peer.lookup("escape")(secret)
    assert "reached" not in got and "set" not in got and got[-1] == "judge"
    assert not hasattr(secret, "name")
    with pytest.raises(PermissionError):
        peer._perform({"op": "lookup", "n": "os"}, None)


def _raw_reply(message, buffers=()):
    header = json.dumps({"m": message, "b": [len(b) for b in buffers]}).encode()
    return struct.pack("!I", len(header)) + header + b"".join(buffers)


@pytest.mark.parametrize("payload", [
    struct.pack("!I", 2**31),  # a header larger than the limit
    _raw_reply({"op": "reply", "ok": {"T": "k1", "d": {"dt": "float32", "sh": [10**6], "b": 0}}}, [b"1234"]),
    _raw_reply({"op": "reply", "ok": {"T": "k1", "d": {"dt": "object", "sh": [1], "b": 0}}}, [b"1234"]),
    _raw_reply({"op": "reply", "ok": {"T": "k77"}}),  # a tensor never sent
    _raw_reply({"op": "reply", "ok": {"O": "k9"}}),  # a handle never described
    _raw_reply({"op": "reply", "ok": {"py": "__import__('os')"}}),
])
def test_the_judge_refuses_malformed_or_oversized_messages(payload):
    a, b = socket.socketpair()
    peer = Peer(a, JUDGE)
    b.sendall(payload)
    with pytest.raises((framing.WireError, RemoteError)):
        message, dec = peer.recv()
        dec.value(message.get("ok"))


def test_nesting_is_bounded():
    a, b = socket.socketpair()
    peer = Peer(a, JUDGE)
    deep = "null"
    for _ in range(200):
        deep = '{"L": [' + deep + "]}"
    header = ('{"m": {"op": "reply", "ok": ' + deep + '}, "b": []}').encode()
    b.sendall(struct.pack("!I", len(header)) + header)
    message, dec = peer.recv()
    with pytest.raises(framing.WireError):
        dec.value(message["ok"])
