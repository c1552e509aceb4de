"""Hidden checks of assignment 04-batchnorm: the tests that run only when the work is graded.

They live apart from the visible checks (``grader/checks/batchnorm/``), so that an instructor
can hand students the grader package without this folder. They reuse the visible modules' probes
and diagnoses.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks._common import call, check, expect_raises, fail, generator
from grader.checks.batchnorm._shared import _CASCADE_BN, _affine, _close, _no_builtin, _probe
from grader.checks.batchnorm.backward import (
    _ATOL_BW, _CASCADE_FN, _RTOL_BW, _backward_probe, _call_backward, _diagnose_backward,
    _function_grads, _gradcheck_failure, _is_function_class,
)
from grader.checks.batchnorm.functional import _call_bn, _simulate_buffers
from grader.checks.batchnorm.layer import (
    _BNS, _check_identity, _compare_layers, _is_module_class, _make, _pair, _run,
)


@check
def check_batch_norm_edge_cases(batch_norm) -> None:
    """One value per channel and bad ranks raise; float64, gradients and single-sample eval work."""
    # gradients flow through the statistics
    x = _probe((6, 3, 2, 2), torch.float64, seed=93)
    weight, bias = _affine(3, 94, torch.float64)
    xs, ws, bs = (t.clone().requires_grad_(True) for t in (x, weight, bias))
    xr, wr, br = (t.clone().requires_grad_(True) for t in (x, weight, bias))
    with _no_builtin("batch_norm"):
        out = call(batch_norm, xs, None, None, ws, bs, training=True,
                   _what="batch_norm(x, None, None, weight, bias) with requires_grad")
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        fail("batch_norm's output does not track gradients: the network could not learn through it.",
             "compute the output from x, weight and bias with differentiable operations "
             "(no .detach(), no .data, no torch.no_grad() around the normalisation).")
    upstream = torch.randn(x.shape, generator=generator(95), dtype=torch.float64)
    reference = F.batch_norm(xr, None, None, wr, br, training=True)
    (reference * upstream).sum().backward()
    # a wrong output is test_batch_norm's business; compare gradients only for a right output
    same_output = _close(out, reference.detach(), x)
    if same_output:
        (out * upstream).sum().backward()
    for name, mine, ref in (("x", xs, xr), ("weight", ws, wr), ("bias", bs, br)):
        if same_output and (mine.grad is None or not torch.allclose(mine.grad, ref.grad, rtol=1e-6, atol=1e-8)):
            fail(
                f"The gradient of batch_norm's output with respect to {name} differs from PyTorch's.",
                "let autograd see the mean and variance too: compute them from x without "
                ".detach() or torch.no_grad() (only the buffer update goes under no_grad).",
            )
    for shape in ((1, 4), (1, 3, 1, 1)):
        x = _probe(shape, seed=90)
        expect_raises(
            batch_norm, x, torch.zeros(shape[1]), torch.ones(shape[1]), training=True,
            mistake=f"batch_norm accepted a training batch of shape {shape}, one value per channel: "
                    "its variance is 0 and the output carries no information.",
            fix="in training, raise ValueError when x.numel() // C < 2, saying what shape was given.",
        )
    for shape in ((5,), (2, 2, 2, 2, 2, 2)):
        x = torch.randn(shape, generator=generator(91))
        expect_raises(
            batch_norm, x, None, None, training=True,
            mistake=f"batch_norm accepted an input of shape {shape}: only 2- to 5-dimensional "
                    "inputs (N, C, ...) are batch-normalised.",
            fix="raise ValueError unless 2 <= x.dim() <= 5.",
        )
    # a single sample in evaluation is fine: that is how a trained model is used
    x = _probe((1, 3, 4, 4), seed=92)
    rm, rv = torch.tensor([0.5, -1.0, 0.0]), torch.tensor([2.0, 0.5, 1.5])
    what = "batch_norm(one sample, running_mean, running_var, training=False)"
    out = _call_bn(batch_norm, x, rm.clone(), rv.clone(), what, training=False)
    if not _close(out, F.batch_norm(x.double(), rm.double(), rv.double(), training=False), x):
        fail(f"{what} differs from torch.nn.functional.batch_norm(training=False): in evaluation "
             "a batch of one sample is normalised with the running estimates like any other.",
             "raise the one-value error only in training; in evaluation use (x - running_mean) / "
             "sqrt(running_var + eps).")


@check
def check_BatchNorm_options(BatchNorm) -> None:
    """momentum=None, affine=False, track_running_stats=False, a wrong channel count."""
    _is_module_class(BatchNorm)
    # momentum=None: cumulative moving average
    ours, ref = _pair(BatchNorm, nn.BatchNorm1d, 3, 170, momentum=None)
    xs = [_probe((6, 3), torch.float64, seed=171 + s) for s in range(4)]
    ours.train()
    ref.train()
    for s, x in enumerate(xs):
        _run(ours, x, f"BatchNorm(3, momentum=None) in train mode (step {s + 1})")
        ref(x)
    if not (torch.allclose(ours.running_mean.double(), ref.running_mean, rtol=1e-6, atol=1e-9)
            and torch.allclose(ours.running_var.double(), ref.running_var, rtol=1e-6, atol=1e-9)):
        as_default = _simulate_buffers(xs, 0.1, "correct")
        if torch.allclose(ours.running_mean.double(), as_default[0], rtol=1e-6, atol=1e-9):
            fail(
                "BatchNorm(3, momentum=None) updated its buffers as with momentum=0.1: "
                "momentum=None is ignored. It means a cumulative average: after t batches the "
                "running mean is the plain average of the t batch means.",
                "when self.momentum is None use the factor 1 / num_batches_tracked (after "
                "incrementing it).",
            )
        fail("BatchNorm(3, momentum=None): after 4 steps the running estimates differ from "
             "nn.BatchNorm1d(3, momentum=None) (a cumulative average of the batch statistics).\n  "
             + _CASCADE_BN,
             "when self.momentum is None use the factor 1 / num_batches_tracked.")
    # affine=False
    layer = _make(BatchNorm, 4, affine=False)
    if list(layer.parameters()):
        fail("BatchNorm(4, affine=False) has trainable parameters.",
             "register weight and bias as None when affine is False.")
    if getattr(layer, "weight", "missing") is not None or getattr(layer, "bias", "missing") is not None:
        fail("BatchNorm(4, affine=False).weight / .bias should be None (as in PyTorch).",
             "self.register_parameter(\"weight\", None) and the same for bias.")
    ours, ref = _pair(BatchNorm, nn.BatchNorm2d, 4, 180, affine=False)
    _compare_layers(ours, ref, [_probe((3, 4, 3, 3), torch.float64, seed=181 + s) for s in range(2)],
                    "BatchNorm(4, affine=False)")
    # track_running_stats=False: no buffers, batch statistics in both modes
    layer = _make(BatchNorm, 4, track_running_stats=False)
    if getattr(layer, "running_mean", "missing") is not None or getattr(layer, "running_var", "missing") is not None:
        fail("BatchNorm(4, track_running_stats=False).running_mean / running_var should be None: "
             "without running statistics there is nothing to keep.",
             "self.register_buffer(\"running_mean\", None) (and running_var, num_batches_tracked).")
    if set(layer.state_dict()) != {"weight", "bias"}:
        fail(f"BatchNorm(4, track_running_stats=False).state_dict() has {sorted(layer.state_dict())}; "
             "nn.BatchNorm2d has only weight and bias.", "register the three buffers as None.")
    ours, ref = _pair(BatchNorm, nn.BatchNorm2d, 4, 190, track_running_stats=False)
    for mode in ("train", "eval"):
        ours.train(mode == "train")
        ref.train(mode == "train")
        x = _probe((4, 4, 3, 3), torch.float64, seed=191)
        out = _run(ours, x, f"BatchNorm(4, track_running_stats=False) in {mode} mode")
        if not _close(out, ref(x).detach(), x):
            fail(f"BatchNorm(4, track_running_stats=False) in {mode} mode differs from PyTorch's: "
                 "without running statistics the batch's statistics are used in both modes.",
                 "call batch_norm with training=self.training or not self.track_running_stats.")
    # wrong number of channels
    layer = _make(BatchNorm, 4)
    expect_raises(layer, torch.randn(5, 3, generator=generator(195)),
                  mistake="BatchNorm(4) accepted an input with 3 channels.",
                  fix="raise ValueError when x.shape[1] != num_features, giving both numbers.")
    # eval does not count batches
    layer = _make(BatchNorm, 2).eval()
    _run(layer, _probe((4, 2), seed=196), "BatchNorm(2) in eval mode")
    if int(layer.num_batches_tracked) != 0:
        fail("BatchNorm(2) counted a batch in eval mode.",
             "increment num_batches_tracked only when self.training.")


@check
def check_identity_affine_ranks(identity_affine) -> None:
    """The same for 3-, 4- and 5-d inputs, in float64, with another eps."""
    for k, shape in enumerate(((6, 3, 4), (4, 3, 3, 3), (3, 2, 2, 3, 2))):
        x = _probe(shape, torch.float64, seed=210 + k)
        _check_identity(identity_affine, x, 1e-3, f"identity_affine(x of shape {shape}, eps=1e-3)")


@check
def check_LeNetBN_modes(LeNetBN) -> None:
    """Output shape, running statistics updated in train(), samples independent in eval()."""
    torch.manual_seed(1)
    net = call(LeNetBN, 5, _what="LeNetBN(5)")
    x = torch.randn(6, 3, 32, 32, generator=generator(310))
    before = {n: getattr(net, n).running_mean.clone() for n in _BNS
              if isinstance(getattr(getattr(net, n), "running_mean", None), torch.Tensor)}
    net.train()
    out = call(net, x, _what="LeNetBN(5)(x) in train mode")
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (6, 5):
        fail(f"LeNetBN(5) returned {tuple(getattr(out, 'shape', ()))} for 6 images; expected (6, 5).",
             "fc3 has `classes` outputs.")
    for n, value in before.items():
        if torch.equal(getattr(net, n).running_mean, value):
            fail(f"LeNetBN.{n}.running_mean did not change after a training step.",
                 f"make sure {n} is used in forward() and tracks running statistics.")
    net.eval()
    with torch.no_grad():
        batch = net(x)
        alone = torch.cat([net(x[i:i + 1]) for i in range(len(x))])
    if not torch.allclose(batch, alone, atol=1e-5):
        fail("In eval mode LeNetBN's output for an image depends on the other images in the batch.",
             "the batch-norm layers must use their running statistics in eval mode.")
    net.train()
    with torch.no_grad():
        batch = net(x)
        other = net(torch.cat([x[:3], torch.randn(3, 3, 32, 32, generator=generator(311))]))
    if torch.allclose(batch[:3], other[:3]):
        fail("In train mode LeNetBN's output for an image does not depend on the batch: batch "
             "norm is not active.", "put the batch-norm layers in forward().")


@check
def check_batch_norm_backward_inputs(batch_norm_backward) -> None:
    """float32 kept, a batch of 2, many features, large values; nothing modified in place."""
    cases = (((2, 3), torch.float64, 1e-5), ((64, 7), torch.float64, 1e-5), ((12, 5), torch.float32, 1e-3))
    for k, (shape, dtype, eps) in enumerate(cases):
        grad_out, x, weight = _backward_probe(*shape, seed=450 + 2 * k, dtype=dtype)
        if k == 1:
            x = x * 1e3 + 5e3
        what = f"batch_norm_backward(grad_out, x of shape {shape}, {dtype}, weight, eps={eps})"
        result = _call_backward(batch_norm_backward, grad_out, x, weight, what, eps=eps)
        tol = (_RTOL_BW, _ATOL_BW) if dtype == torch.float64 else (1e-4, 1e-5)
        _diagnose_backward(result, grad_out, x, weight, eps, what, *tol)


@check
def check_BatchNormFunction_gradcheck(BatchNormFunction) -> None:
    """gradcheck with another shape and eps; only x requiring grad; inside a small network."""
    _is_function_class(BatchNormFunction)
    x = _probe((7, 2), torch.float64, seed=520)
    weight, bias = _affine(2, 521, torch.float64)
    problem = _gradcheck_failure(BatchNormFunction, x, weight, bias, 0.1,
                                 "BatchNormFunction.apply with eps=0.1")
    if problem:
        fail(problem + "\n  " + _CASCADE_FN,
             "backward returns one gradient per input of forward, in its order "
             "(grad_x, grad_weight, grad_bias, None), computed with the eps that forward was "
             "given (keep it on ctx: ctx.eps = eps).")
    # only x needs a gradient (a frozen layer): backward may return None for weight and bias
    grad_out = torch.randn(7, 2, generator=generator(522), dtype=torch.float64)
    what = "BatchNormFunction.apply(x, weight, bias, 1e-5) with only x requiring grad"
    _, grads = _function_grads(BatchNormFunction, x, weight, bias, 1e-5, grad_out, what,
                               needs=(True, False, False))
    ref_x = x.clone().requires_grad_(True)
    F.batch_norm(ref_x, None, None, weight, bias, training=True).backward(grad_out)
    if grads[0] is None or not torch.allclose(grads[0], ref_x.grad, rtol=1e-8, atol=1e-10):
        fail(f"{what}: x.grad differs from autograd's when weight and bias do not require grad.",
             "compute grad_x the same way whatever ctx.needs_input_grad says about weight and bias.")
    # a Linear layer before it: gradients reach the Linear's weight
    torch.manual_seed(3)  # restored by @check
    linear = nn.Linear(3, 2).double()
    ref = nn.Linear(3, 2).double()
    ref.load_state_dict(linear.state_dict())
    inp = torch.randn(9, 3, generator=generator(523), dtype=torch.float64)
    with _no_builtin("BatchNormFunction"):
        out = call(BatchNormFunction.apply, linear(inp), weight, bias, 1e-5,
                   _what="BatchNormFunction.apply(linear(x), weight, bias, 1e-5)")
        call(out.pow(2).sum().backward, _what="loss.backward() through BatchNormFunction")
    F.batch_norm(ref(inp), None, None, weight, bias, training=True).pow(2).sum().backward()
    if linear.weight.grad is None or not torch.allclose(linear.weight.grad, ref.weight.grad,
                                                        rtol=1e-7, atol=1e-9):
        fail("With a Linear layer before BatchNormFunction, the Linear's weight gets a wrong "
             "gradient: grad_x is what flows on to the layers below.",
             "check grad_x against batch_norm_backward's (the test above names the mistake).")
