"""04-batchnorm: every catalogued mistake loses the stated points with a message that names it,
and correct answers written differently from the solution earn full marks."""
import pytest

from grader.score import score_in_process
from helpers import mistake_tests, notebook_of

A = "04-batchnorm"

# mistake -> ({test cell: points lost}, {test cell: fragment its message must contain})
EXPECTED = {
    "unbiased_normalisation": ({"test_batch_norm": 2}, {"test_batch_norm": "unbiased variance"}),
    "running_var_biased": ({"test_batch_norm_running_stats": 2},
                           {"test_batch_norm_running_stats": "average of the biased batch variances"}),
    "momentum_reversed": ({"test_batch_norm_running_stats": 2},
                          {"test_batch_norm_running_stats": "reversed momentum rule"}),
    "eps_outside_sqrt": ({"test_batch_norm": 2}, {"test_batch_norm": "eps is added outside the square root"}),
    "per_sample_stats": ({"test_batch_norm": 2, "test_batch_norm_running_stats": 2},
                         {"test_batch_norm": "computed per sample"}),
    "batch_only_dims": ({"test_batch_norm": 2, "test_batch_norm_running_stats": 2},
                        {"test_batch_norm": "over the batch only"}),
    "eval_batch_stats": ({"test_batch_norm_eval": 1, "test_batch_norm_edge_cases": 1},
                         {"test_batch_norm_eval": "batch's own mean and variance",
                          "test_batch_norm_edge_cases": "one sample"}),
    "eval_updates_buffers": ({"test_batch_norm_eval": 1, "test_batch_norm_edge_cases": 1},
                             {"test_batch_norm_eval": "changed running_mean or running_var"}),
    "buffers_rebound": ({"test_batch_norm_running_stats": 2},
                        {"test_batch_norm_running_stats": "in place"}),
    "buffers_autograd_history": ({"test_batch_norm_running_stats": 2},
                                 {"test_batch_norm_running_stats": "autograd history"}),
    "gamma_beta_swapped": ({"test_batch_norm": 2, "test_batch_norm_eval": 1},
                           {"test_batch_norm": "swapped", "test_batch_norm_eval": "swapped"}),
    "affine_before_normalising": ({"test_batch_norm": 2, "test_batch_norm_eval": 1},
                                  {"test_batch_norm": "before normalising",
                                   "test_batch_norm_eval": "before normalising"}),
    "calls_builtin": ({"test_batch_norm": 2, "test_batch_norm_running_stats": 2, "test_batch_norm_eval": 1,
                       "test_batch_norm_edge_cases": 1},
                      {"test_batch_norm": "PyTorch's own batch_norm",
                       "test_batch_norm_edge_cases": "PyTorch's own batch_norm"}),
    "stats_without_grad": ({"test_batch_norm_edge_cases": 1}, {"test_batch_norm_edge_cases": "gradient"}),
    "accepts_single_value": ({"test_batch_norm_edge_cases": 1},
                             {"test_batch_norm_edge_cases": "one value per channel"}),
    "plain_attribute_buffers": ({"test_BatchNorm": 2, "test_BatchNorm_state_dict": 1},
                                {"test_BatchNorm": "register_buffer", "test_BatchNorm_state_dict": "plain attributes"}),
    "momentum_none_ignored": ({"test_BatchNorm_options": 2}, {"test_BatchNorm_options": "momentum=None is ignored"}),
    "module_buffers_rebound": ({"test_BatchNorm": 2, "test_BatchNorm_options": 2},
                               {"test_BatchNorm": "in place"}),
    "module_uses_nn_batchnorm": ({"test_BatchNorm": 2, "test_BatchNorm_state_dict": 1, "test_BatchNorm_options": 2},
                                {"test_BatchNorm": "PyTorch's own BatchNorm"}),
    "module_eval_ignored": ({"test_BatchNorm": 2, "test_BatchNorm_state_dict": 1, "test_BatchNorm_options": 2},
                            {"test_BatchNorm": "in eval mode"}),
    "identity_no_eps": ({"test_identity_affine": 1, "test_identity_affine_ranks": 1},
                        {"test_identity_affine": "without eps"}),
    "identity_swapped": ({"test_identity_affine": 1, "test_identity_affine_ranks": 1},
                         {"test_identity_affine": "swapped"}),
    "identity_2d_only": ({"test_identity_affine_ranks": 1}, {"test_identity_affine_ranks": "expected (3,) each"}),
    "lenet_bn_after_relu": ({"test_LeNetBN": 2}, {"test_LeNetBN": "after the ReLU"}),
    "lenet_bn_unused": ({"test_LeNetBN": 2, "test_LeNetBN_modes": 1}, {"test_LeNetBN": "never used"}),
    "lenet_bn_after_pool": ({"test_LeNetBN": 2}, {"test_LeNetBN": "does not receive the output of conv1"}),
    # batch_norm_backward: every mistake of the issue, named
    "backward_variance_constant": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "variance treated as a constant",
         "test_batch_norm_backward_inputs": "variance treated as a constant"}),
    "backward_statistics_constant": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "the gradient in eval() mode"}),
    "backward_params_averaged": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "averaged over the batch"}),
    "backward_weight_left_out": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "grad_x leaves out weight"}),
    "backward_eps_outside": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "eps is outside the square root"}),
    "backward_unbiased_variance": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "unbiased variance"}),
    "backward_wrong_axis": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "over the features of each sample"}),
    "backward_modifies_grad_out": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "modified grad_out in place"}),
    "backward_uses_autograd": (
        {"test_batch_norm_backward": 2, "test_batch_norm_backward_inputs": 1},
        {"test_batch_norm_backward": "uses autograd, the tool this exercise replaces"}),
    # BatchNormFunction
    "function_none_for_weight": (
        {"test_BatchNormFunction": 2, "test_BatchNormFunction_gradcheck": 1},
        {"test_BatchNormFunction": "backward returned None for weight",
         "test_BatchNormFunction_gradcheck": "gradient your backward returns for weight"}),
    "function_grads_swapped": (
        {"test_BatchNormFunction": 2, "test_BatchNormFunction_gradcheck": 1},
        {"test_BatchNormFunction": "in another order",
         "test_BatchNormFunction_gradcheck": "for weight differs from the numerical gradient"}),
    "function_eps_ignored": (
        {"test_BatchNormFunction_gradcheck": 1},
        {"test_BatchNormFunction_gradcheck": "gradient your backward returns for x"}),
    "function_three_gradients": (
        {"test_BatchNormFunction": 2, "test_BatchNormFunction_gradcheck": 1},
        {"test_BatchNormFunction": "returned 3 gradients; forward takes 4 inputs",
         "test_BatchNormFunction_gradcheck": "another number of gradients"}),
    # the two questions on the run
    "lr_answer_without_bn": ({"test_largest_lr_bn": 1}, {"test_largest_lr_bn": "\"no BN\""}),
    "lr_answer_first_failure": ({"test_largest_lr_bn": 1}, {"test_largest_lr_bn": "did NOT train"}),
    "layer_answer_conv1": ({"test_first_layer_moved": 1}, {"test_first_layer_moved": "did not change"}),
    "layer_answer_later": ({"test_first_layer_moved": 1}, {"test_first_layer_moved": "not the first"}),
}


test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named = mistake_tests(A, EXPECTED)


# Correct answers that differ from the solution: other formulas, float64 internals, no helper
# function in the module, a Sequential-free LeNetBN built on the student's own BatchNorm, the
# node-by-node backward of the computational graph, a Function that saves xhat and honours
# ctx.needs_input_grad.
ALTERNATIVES = {
    "batch_norm": '''
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5):
    if x.ndim < 2 or x.ndim > 5:
        raise ValueError("need (N, C, ...) with 2 to 5 dimensions, got " + str(tuple(x.shape)))
    n, c = x.shape[0], x.shape[1]
    flat = x.transpose(0, 1).reshape(c, -1).to(torch.float64)        # (C, N * positions)
    m = flat.shape[1]
    if training or running_mean is None:
        if training and m == 1:
            raise ValueError("one value per channel")
        mean = flat.mean(dim=1)
        var = ((flat - mean[:, None]) ** 2).sum(dim=1) / m
        if training and running_mean is not None:
            with torch.no_grad():
                running_mean.copy_((1 - momentum) * running_mean + momentum * mean.to(running_mean.dtype))
                running_var.copy_((1 - momentum) * running_var + momentum * (var * m / (m - 1)).to(running_var.dtype))
    else:
        mean, var = running_mean.to(torch.float64), running_var.to(torch.float64)
    xhat = (flat - mean[:, None]) * torch.rsqrt(var[:, None] + eps)
    if weight is not None:
        xhat = xhat * weight.to(torch.float64)[:, None]
    if bias is not None:
        xhat = xhat + bias.to(torch.float64)[:, None]
    rest = (x.shape[2:])
    return xhat.reshape(c, n, *rest).transpose(0, 1).to(x.dtype)
''',
    "BatchNorm": '''
class BatchNorm(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        for name, value in (("running_mean", torch.zeros(num_features)), ("running_var", torch.ones(num_features)),
                            ("num_batches_tracked", torch.tensor(0))):
            self.register_buffer(name, value if track_running_stats else None)

    def forward(self, x):
        if x.shape[1] != self.num_features:
            raise ValueError(f"{x.shape[1]} channels, expected {self.num_features}")
        dims = tuple(d for d in range(x.dim()) if d != 1)
        view = (1, -1) + (1,) * (x.dim() - 2)
        use_batch = self.training or self.running_mean is None
        if use_batch:
            var, mean = torch.var_mean(x, dim=dims, unbiased=False)
            if self.training and self.running_mean is not None:
                with torch.no_grad():
                    self.num_batches_tracked += 1
                    f = 1 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
                    k = x.numel() / x.shape[1]
                    self.running_mean.lerp_(mean, f)
                    self.running_var.lerp_(var * k / (k - 1), f)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean.reshape(view)) / (var.reshape(view) + self.eps).sqrt()
        return y * self.weight.reshape(view) + self.bias.reshape(view) if self.affine else y
''',
    "identity_affine": '''
def identity_affine(x, eps=1e-5):
    c = x.shape[1]
    flat = x.movedim(1, 0).reshape(c, -1)
    mean = flat.mean(1)
    return torch.sqrt(flat.var(1, correction=0) + eps), mean
''',
    # the step-by-step graph version of section 2.5, not the compact formula
    "batch_norm_backward": '''
def batch_norm_backward(grad_out, x, weight, eps=1e-5):
    n = x.shape[0]
    mu = x.sum(0) / n
    xc = x - mu
    var = (xc * xc).sum(0) / n
    std = (var + eps) ** 0.5
    xhat = xc / std
    grad_bias = grad_out.sum(0)
    grad_weight = (grad_out * xhat).sum(0)
    dxhat = grad_out * weight
    dxc = dxhat / std                          # through xhat
    dstd = -(dxhat * xc).sum(0) / std ** 2
    dvar = dstd / (2 * std)
    dxc = dxc + dvar * 2 * xc / n              # through var: xc feeds two nodes
    dx = dxc.clone()
    dmu = -dxc.sum(0)
    dx = dx + dmu / n
    return dx, grad_weight, grad_bias
''',
    "BatchNormFunction": '''
class BatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        var, mean = torch.var_mean(x, dim=0, unbiased=False)
        inv_std = torch.rsqrt(var + eps)
        xhat = (x - mean) * inv_std
        ctx.save_for_backward(xhat, inv_std, weight)
        return torch.addcmul(bias, xhat, weight)

    @staticmethod
    def backward(ctx, grad_out):
        xhat, inv_std, weight = ctx.saved_tensors
        n = grad_out.shape[0]
        dxhat = grad_out * weight
        grad_x = inv_std / n * (n * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0))
        grad_weight = (grad_out * xhat).sum(0) if ctx.needs_input_grad[1] else None
        grad_bias = grad_out.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias, None
''',
    "largest_lr_bn": "largest_lr_bn = bnx.largest_trained_lr(lr_sweep, 'BN') * 1.0",
    "first_layer_moved": "first_layer_moved = 'bn' + str(1)",
    "LeNetBN": '''
class LeNetBN(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 6, kernel_size=5), BatchNorm(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 16, kernel_size=5), BatchNorm(16)
        self.fc1, self.bn3 = nn.Linear(400, 120), BatchNorm(120)
        self.fc2, self.fc3 = nn.Linear(120, 84), nn.Linear(84, classes)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = torch.relu(self.bn3(self.fc1(x.view(x.size(0), -1))))
        return self.fc3(torch.relu(self.fc2(x)))
''',
}


def test_alternative_correct_answers_earn_full_marks():
    results = score_in_process(A, notebook_of(A), ALTERNATIVES)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert sum(r.max_score for r in results.values()) == 24


def test_solution_earns_full_marks():
    results = score_in_process(A, notebook_of(A))
    assert all(r.score == r.max_score for r in results.values()), {
        gid: r.message for gid, r in results.items() if r.score < r.max_score}


# The shared helpers this assignment adds to regnorm/ (two_class_images is also used by 05).
def test_two_class_images_api():
    import time

    import torch

    from regnorm.images import two_class_images

    start = time.perf_counter()
    x, y = two_class_images(2000)
    assert time.perf_counter() - start < 5.0                 # about 0.2 s on one core
    assert x.shape == (2000, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (2000,) and y.dtype == torch.int64
    assert set(y.tolist()) == {0, 1} and int(y.sum()) == 1000
    assert torch.isfinite(x).all() and abs(x.mean().item()) < 0.1 and 0.8 < x.std().item() < 1.2
    again, _ = two_class_images(2000)
    assert torch.equal(x, again)                              # deterministic without a generator
    a, ya = two_class_images(7, generator=torch.Generator().manual_seed(1), size=16)
    b, yb = two_class_images(7, generator=torch.Generator().manual_seed(1), size=16)
    assert a.shape == (7, 3, 16, 16) and torch.equal(a, b) and torch.equal(ya, yb)
    assert abs(int(ya.sum()) - 3.5) == 0.5                    # balanced up to one image
    state = torch.random.get_rng_state()
    two_class_images(5)
    assert torch.equal(state, torch.random.get_rng_state())   # the global RNG is untouched
    for bad in (0, -3):
        with pytest.raises(ValueError):
            two_class_images(bad)


def test_lenet():
    import torch
    from torch import nn

    from regnorm.lenet import LeNet

    torch.manual_seed(0)
    net = LeNet(2)
    assert net(torch.randn(4, 3, 32, 32)).shape == (4, 2)
    assert net.initialize_weights() is net
    assert abs(net.fc1.weight.std().item() - 0.1) < 0.01 and net.fc1.bias.abs().max() == 0
    assert isinstance(net.conv1, nn.Conv2d) and net.conv1.bias.abs().max() == 0
    with pytest.raises(ValueError):
        LeNet(0)


def test_hidden_checks_are_decorated_and_apart():
    import inspect

    import grader.checks.batchnorm as visible
    import grader.hidden.batchnorm as hidden

    checks = {name for name, fn in inspect.getmembers(hidden, inspect.isfunction)
              if name.startswith("check_") and fn.__module__ == hidden.__name__}
    assert checks == {"check_batch_norm_edge_cases", "check_BatchNorm_options", "check_identity_affine_ranks",
                      "check_LeNetBN_modes", "check_batch_norm_backward_inputs",
                      "check_BatchNormFunction_gradcheck"}
    assert all(getattr(getattr(hidden, name), "__grader_check__", False) for name in checks)
    assert not checks & set(dir(visible)), "a hidden check is also visible"


def test_lr_sweep_and_batch_dependence():
    import math

    import torch
    from torch import nn

    from regnorm import batchnorm as bnx

    state = torch.random.get_rng_state()
    sweep = bnx.lr_sweep(lrs=(0.1, 1e4), steps=20)
    assert torch.equal(state, torch.random.get_rng_state())          # the global RNG is untouched
    assert sweep["setups"] == list(bnx.SWEEP_SETUPS) and sweep["lrs"] == [0.1, 1e4]
    assert len(sweep["final_loss"]) == 4 and all(len(row) == 2 for row in sweep["final_loss"])
    assert sweep["threshold"] == math.log(4) / 2
    assert repr(sweep) == repr(bnx.lr_sweep(lrs=(0.1, 1e4), steps=20))   # deterministic (nan too)
    assert bnx.trained(sweep)["no BN"][1] is False                    # lr 1e4 cannot train
    assert bnx.largest_trained_lr({**sweep, "threshold": -1.0}, "BN") is None

    net = nn.Sequential()
    net.add_module("lin", nn.Linear(3, 3))
    net.add_module("bn", nn.BatchNorm1d(3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    probe = bnx.batch_dependence(net, torch.randn(4, 3, generator=g), torch.randn(3, 3, generator=g))
    assert probe["train"]["lin"] == 0 and probe["train"]["bn"] > 0
    assert probe["eval"] == {"lin": 0.0, "bn": 0.0}
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # buffers restored
    assert net.training
