"""Typical wrong answers for 04-batchnorm (see grader/mistakes/__init__.py)."""
from . import Mistake

# A correct batch_norm with named holes; each mistake fills one hole wrongly.
_BN = '''
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5):
    if x.dim() not in (2, 3, 4, 5):
        raise ValueError(f"expected a 2- to 5-d input, got shape {{tuple(x.shape)}}")
    c = x.shape[1]
    dims = {dims}
    shape = [1, c] + [1] * (x.dim() - 2)
    if {use_batch}:
        count = x.numel() // c
        if count < 2:
            raise ValueError(f"need more than 1 value per channel, got shape {{tuple(x.shape)}}")
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased={norm_unbiased}, keepdim=True)
        if {update} and running_mean is not None:
{update_block}
    else:
        mean, var = running_mean.view(shape), running_var.view(shape)
    out = {normalise}
{affine}
    return out
'''

_UPDATE = '''            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean.flatten())
                running_var.mul_(1 - momentum).add_(momentum * var.flatten() * count / (count - 1))'''
_AFFINE = '''    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)'''

_DEFAULTS = dict(
    dims="[0] + list(range(2, x.dim()))",
    use_batch="training or running_mean is None",
    norm_unbiased="False",
    update="training",
    update_block=_UPDATE,
    normalise="(x - mean) / torch.sqrt(var + eps)",
    affine=_AFFINE,
)


def _bn(**changes) -> str:
    return _BN.format(**{**_DEFAULTS, **changes})


# A correct BatchNorm with holes.
_MODULE = '''
class BatchNorm(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
{buffers}
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected {{self.num_features}} channels, got shape {{tuple(x.shape)}}")
{factor}
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=self.training or not self.track_running_stats,
                          momentum=factor, eps=self.eps)
'''
_BUFFERS = '''            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))'''
_FACTOR = '''        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)'''


def _module(**changes) -> str:
    return _MODULE.format(**{**dict(buffers=_BUFFERS, factor=_FACTOR), **changes})


_LENET = '''
class LeNetBN(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.bn3 = nn.BatchNorm1d(120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
{body}
'''

# A correct batch_norm_backward with holes; each mistake fills one hole wrongly.
_BW = """
def batch_norm_backward(grad_out, x, weight, eps=1e-5):
    n = x.shape[0]
    mean = x.mean(dim={axis}, keepdim=True)
    var = ((x - mean) ** 2).sum(dim={axis}, keepdim=True) / {count}
    inv_std = {inv_std}
    xhat = (x - mean) * inv_std
    grad_bias = grad_out.{reduce}(dim=0)
    grad_weight = (grad_out * xhat).{reduce}(dim=0)
{dxhat}
    grad_x = {grad_x}
    return grad_x, grad_weight, grad_bias
"""
_BW_DEFAULTS = dict(
    axis="0", count="n", inv_std="1.0 / torch.sqrt(var + eps)", reduce="sum",
    dxhat="    dxhat = grad_out * weight",
    grad_x="inv_std * (dxhat - dxhat.mean(dim=0) - xhat * (dxhat * xhat).mean(dim=0))",
)


def _bw(**changes) -> str:
    return _BW.format(**{**_BW_DEFAULTS, **changes})


_FN = """
class BatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=False)
        ctx.save_for_backward(x, weight)
        ctx.eps = eps
        return (x - mean) / torch.sqrt(var + eps) * weight + bias

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x, grad_weight, grad_bias = batch_norm_backward(grad_out, x, weight, ctx.eps)
{ret}
"""


MISTAKES = {
    # ------------------------------------------------------------------ batch_norm
    "unbiased_normalisation": Mistake("batch_norm", _bn(norm_unbiased="True", update_block='''            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean.flatten())
                running_var.mul_(1 - momentum).add_(momentum * var.flatten())'''),
        "normalising with the unbiased variance"),
    "running_var_biased": Mistake("batch_norm", _bn(update_block='''            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean.flatten())
                running_var.mul_(1 - momentum).add_(momentum * var.flatten())'''),
        "running_var updated with the biased variance (the seed's formula)"),
    "momentum_reversed": Mistake("batch_norm", _bn(update_block='''            with torch.no_grad():
                running_mean.mul_(momentum).add_((1 - momentum) * mean.flatten())
                running_var.mul_(momentum).add_((1 - momentum) * var.flatten() * count / (count - 1))'''),
        "the momentum rule reversed (CS231n / Keras convention)"),
    "eps_outside_sqrt": Mistake("batch_norm", _bn(normalise="(x - mean) / (torch.sqrt(var) + eps)"),
        "eps added outside the square root"),
    "per_sample_stats": Mistake("batch_norm", _bn(dims="list(range(1, x.dim()))", update_block='''            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean.mean())
                running_var.mul_(1 - momentum).add_(momentum * var.mean())'''),
        "statistics per sample (layer norm) instead of per channel"),
    "batch_only_dims": Mistake("batch_norm", _bn(dims="[0]", update_block='''            with torch.no_grad():
                m = mean.reshape(c, -1).mean(dim=1)
                v = var.reshape(c, -1).mean(dim=1)
                running_mean.mul_(1 - momentum).add_(momentum * m)
                running_var.mul_(1 - momentum).add_(momentum * v * count / (count - 1))'''),
        "statistics over the batch only, per position, for 3-D+ inputs"),
    "eval_batch_stats": Mistake("batch_norm", _bn(use_batch="True"),
        "evaluation normalised with the batch's statistics"),
    "eval_updates_buffers": Mistake("batch_norm", _bn(use_batch="True", update="True"),
        "evaluation updates the running buffers (and uses batch statistics)"),
    "buffers_rebound": Mistake("batch_norm", _bn(update_block='''            running_mean = (1 - momentum) * running_mean + momentum * mean.flatten().detach()
            running_var = (1 - momentum) * running_var + momentum * var.flatten().detach() * count / (count - 1)'''),
        "buffers rebound to new tensors instead of updated in place"),
    "buffers_autograd_history": Mistake("batch_norm", _bn(update_block='''            running_mean.mul_(1 - momentum).add_(momentum * mean.flatten())
            running_var.mul_(1 - momentum).add_(momentum * var.flatten() * count / (count - 1))'''),
        "buffers updated outside torch.no_grad(): they carry autograd history"),
    "gamma_beta_swapped": Mistake("batch_norm", _bn(affine='''    if weight is not None and bias is not None:
        out = out * bias.view(shape) + weight.view(shape)'''),
        "gamma and beta swapped"),
    "affine_before_normalising": Mistake("batch_norm", _bn(affine="", dims='''[0] + list(range(2, x.dim()))
    if weight is not None:
        x = x * weight.view([1, c] + [1] * (x.dim() - 2))
    if bias is not None:
        x = x + bias.view([1, c] + [1] * (x.dim() - 2))'''),
        "gamma and beta applied before normalising"),
    "calls_builtin": Mistake("batch_norm", '''
import torch.nn.functional as F

def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, weight, bias,
                        training or running_mean is None, momentum, eps)
''', "torch.nn.functional.batch_norm called"),
    "stats_without_grad": Mistake("batch_norm", _bn(dims='''[0] + list(range(2, x.dim()))
    if True:
        x_stat = x.detach()''').replace("mean = x.mean(dim=dims", "mean = x_stat.mean(dim=dims").replace(
        "var = x.var(dim=dims", "var = x_stat.var(dim=dims"),
        "mean and variance detached: wrong gradients"),
    "accepts_single_value": Mistake("batch_norm", _bn().replace(
        "        if count < 2:\n            raise ValueError(", "        if False:\n            raise ValueError("),
        "one value per channel accepted in training"),
    # ------------------------------------------------------------------ batch_norm_backward
    "backward_variance_constant": Mistake("batch_norm_backward", _bw(
        grad_x="inv_std * (dxhat - dxhat.mean(dim=0))"),
        "the variance treated as a constant: only the mean's path back-propagated"),
    "backward_statistics_constant": Mistake("batch_norm_backward", _bw(grad_x="inv_std * dxhat"),
        "mean and variance both treated as constants: the eval-mode gradient"),
    "backward_params_averaged": Mistake("batch_norm_backward", _bw(reduce="mean"),
        "grad_weight and grad_bias averaged over the batch instead of summed"),
    "backward_weight_left_out": Mistake("batch_norm_backward", _bw(dxhat="    dxhat = grad_out"),
        "weight (gamma) left out of grad_x"),
    "backward_eps_outside": Mistake("batch_norm_backward", _bw(
        inv_std="1.0 / (torch.sqrt(var) + eps)",
        grad_x="""inv_std * (dxhat - dxhat.mean(dim=0)) - (x - mean) * inv_std ** 2 / (2 * torch.sqrt(var)) * (2 / n) * (dxhat * (x - mean)).sum(dim=0, keepdim=True)"""),
        "eps added outside the square root (forward and backward)"),
    "backward_unbiased_variance": Mistake("batch_norm_backward", _bw(
        count="(n - 1)",
        grad_x="inv_std * (dxhat - dxhat.mean(dim=0) - xhat * (dxhat * xhat).sum(dim=0) / (n - 1))"),
        "the unbiased variance (dividing by N - 1)"),
    "backward_wrong_axis": Mistake("batch_norm_backward", """
def batch_norm_backward(grad_out, x, weight, eps=1e-5):
    d = x.shape[1]
    mean = x.mean(dim=1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
    inv_std = 1.0 / torch.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    grad_bias = grad_out.sum(dim=0)
    grad_weight = (grad_out * xhat).sum(dim=0)
    dxhat = grad_out * weight
    grad_x = inv_std * (dxhat - dxhat.mean(dim=1, keepdim=True) - xhat * (dxhat * xhat).mean(dim=1, keepdim=True))
    return grad_x, grad_weight, grad_bias
""", "statistics over the features of each sample (layer norm's axis)"),
    "backward_modifies_grad_out": Mistake("batch_norm_backward", _bw(dxhat="""    grad_bias = grad_bias.clone()
    grad_out *= weight
    dxhat = grad_out""").replace("grad_weight = (grad_out * xhat)", "grad_weight = (grad_out.clone() * xhat)"),
        "grad_out multiplied by weight in place"),
    "backward_uses_autograd": Mistake("batch_norm_backward", """
def batch_norm_backward(grad_out, x, weight, eps=1e-5):
    x = x.detach().clone().requires_grad_(True)
    weight = weight.detach().clone().requires_grad_(True)
    bias = torch.zeros_like(weight, requires_grad=True)
    with torch.enable_grad():
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=False)
        y = (x - mean) / torch.sqrt(var + eps) * weight + bias
        return torch.autograd.grad(y, (x, weight, bias), grad_out)
""", "autograd computes the gradients"),
    # ------------------------------------------------------------------ BatchNormFunction
    "function_none_for_weight": Mistake("BatchNormFunction", _FN.format(
        ret="        return grad_x, None, grad_bias, None"),
        "backward returns None for weight, which needs a gradient"),
    "function_grads_swapped": Mistake("BatchNormFunction", _FN.format(
        ret="        return grad_x, grad_bias, grad_weight, None"),
        "backward returns the weight and bias gradients in the wrong order"),
    "function_eps_ignored": Mistake("BatchNormFunction", _FN.format(
        ret="        return grad_x, grad_weight, grad_bias, None").replace(
        "batch_norm_backward(grad_out, x, weight, ctx.eps)", "batch_norm_backward(grad_out, x, weight)"),
        "backward ignores eps (uses the default 1e-5)"),
    "function_three_gradients": Mistake("BatchNormFunction", _FN.format(
        ret="        return grad_x, grad_weight, grad_bias"),
        "backward returns 3 gradients for 4 inputs (nothing for eps)"),
    # ------------------------------------------------------------------ questions
    "lr_answer_without_bn": Mistake("largest_lr_bn", """
largest_lr_bn = bnx.largest_trained_lr(lr_sweep, "no BN")
""", "the largest learning rate of the network without BN"),
    "lr_answer_first_failure": Mistake("largest_lr_bn", """
largest_lr_bn = min(lr for lr in lr_sweep["lrs"] if lr > bnx.largest_trained_lr(lr_sweep, "BN"))
""", "the first learning rate at which BN did not train"),
    "layer_answer_conv1": Mistake("first_layer_moved", """
first_layer_moved = "conv1"
""", "conv1, which computes each image on its own"),
    "layer_answer_later": Mistake("first_layer_moved", """
first_layer_moved = "bn3"
""", "a later layer (bn3), which inherits the change"),
    # ------------------------------------------------------------------ BatchNorm
    "plain_attribute_buffers": Mistake("BatchNorm", _module(buffers='''            self.running_mean = torch.zeros(num_features)
            self.running_var = torch.ones(num_features)
            self.num_batches_tracked = torch.tensor(0, dtype=torch.long)'''),
        "buffers as plain attributes: state_dict lacks them"),
    "momentum_none_ignored": Mistake("BatchNorm", _module(factor='''        factor = 0.1 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)'''),
        "momentum=None treated as 0.1 instead of a cumulative average"),
    "module_buffers_rebound": Mistake("BatchNorm", '''
class BatchNorm(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        if x.shape[1] != self.num_features:
            raise ValueError(f"expected {self.num_features} channels, got shape {tuple(x.shape)}")
        dims = [0] + list(range(2, x.dim()))
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        if self.training or not self.track_running_stats:
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            if self.training and self.track_running_stats:
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
                n = x.numel() // x.shape[1]
                self.running_mean = (1 - m) * self.running_mean + m * mean.detach()
                self.running_var = (1 - m) * self.running_var + m * var.detach() * n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        out = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out
''', "buffers replaced by new tensors on every step (not in place)"),
    "module_uses_nn_batchnorm": Mistake("BatchNorm", '''
class BatchNorm(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.inner = nn.BatchNorm1d(num_features, eps, momentum, affine, track_running_stats)

    def forward(self, x):
        return self.inner(x)
''', "nn.BatchNorm1d wrapped inside BatchNorm"),
    "module_eval_ignored": Mistake("BatchNorm", _module().replace(
        "training=self.training or not self.track_running_stats", "training=True"),
        "BatchNorm ignores self.training (batch statistics in eval)"),
    # ------------------------------------------------------------------ identity_affine
    "identity_no_eps": Mistake("identity_affine", '''
def identity_affine(x, eps=1e-5):
    dims = [0] + list(range(2, x.dim()))
    return x.var(dim=dims, unbiased=False).sqrt(), x.mean(dim=dims)
''', "gamma = sqrt(var) without eps (the seed's gamma = sigma)"),
    "identity_swapped": Mistake("identity_affine", '''
def identity_affine(x, eps=1e-5):
    dims = [0] + list(range(2, x.dim()))
    return x.mean(dim=dims), torch.sqrt(x.var(dim=dims, unbiased=False) + eps)
''', "gamma and beta swapped"),
    "identity_2d_only": Mistake("identity_affine", '''
def identity_affine(x, eps=1e-5):
    return torch.sqrt(x.var(dim=0, unbiased=False) + eps), x.mean(dim=0)
''', "statistics over dimension 0 only (works for 2-d inputs only)"),
    # ------------------------------------------------------------------ LeNetBN
    "lenet_bn_after_relu": Mistake("LeNetBN", _LENET.format(body='''        out = F.max_pool2d(self.bn1(F.relu(self.conv1(x))), 2)
        out = F.max_pool2d(self.bn2(F.relu(self.conv2(out))), 2)
        out = out.flatten(1)
        out = self.bn3(F.relu(self.fc1(out)))
        out = F.relu(self.fc2(out))
        return self.fc3(out)'''), "batch norm after the ReLU"),
    "lenet_bn_unused": Mistake("LeNetBN", _LENET.format(body='''        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        out = F.max_pool2d(F.relu(self.bn2(self.conv2(out))), 2)
        out = out.flatten(1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)'''), "bn3 defined but never used"),
    "lenet_bn_after_pool": Mistake("LeNetBN", _LENET.format(body='''        out = F.relu(self.bn1(F.max_pool2d(self.conv1(x), 2)))
        out = F.relu(self.bn2(F.max_pool2d(self.conv2(out), 2)))
        out = out.flatten(1)
        out = F.relu(self.bn3(self.fc1(out)))
        out = F.relu(self.fc2(out))
        return self.fc3(out)'''), "batch norm after the pooling"),
}

# The demo class's "typical mistakes" student submits these (make demo).
DEMO = ("running_var_biased", "plain_attribute_buffers", "lenet_bn_after_relu", "backward_variance_constant")
