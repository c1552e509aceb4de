"""Typical wrong answers for 05-norm-layers (see grader/mistakes/__init__.py)."""
from . import Mistake

# ---- layer_norm -----------------------------------------------------------------------------
_LN_HEAD = '''
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    k = len(shape)
'''
_LN_VALIDATE = '''    if k == 0 or k > x.dim() or list(x.shape[x.dim() - k:]) != shape:
        raise ValueError(f"normalized_shape {shape} is not the end of {list(x.shape)}")
'''
_LN_TAIL = '''    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    out = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
'''


def _ln(body: str, validate: bool = True) -> str:
    return _LN_HEAD + (_LN_VALIDATE if validate else "") + body


# ---- instance_norm / group_norm ---------------------------------------------------------------
_AFFINE = '''
def _per_channel(out, weight, bias):
    shape = (1, -1) + (1,) * (out.dim() - 2)
    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out
'''
_IN_NO_VALIDATION = _AFFINE + '''
def instance_norm(x, weight=None, bias=None, eps=1e-5):
'''
_IN_HEAD = _IN_NO_VALIDATION + '''    if x.dim() not in (3, 4, 5) or x[0, 0].numel() == 1:
        raise ValueError(f"expected (N, C, *spatial) with more than one spatial value, got {list(x.shape)}")
'''
_GN_HEAD = _AFFINE + '''
def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = x.shape[:2]
'''
_GN_VALIDATE = '''    if c % num_groups != 0:
        raise ValueError(f"num_groups={num_groups} does not divide {c} channels")
'''

# ---- layer_norm_backward ---------------------------------------------------------------------
_LNB_HEAD = '''
def layer_norm_backward(grad_out, x, weight, eps=1e-5):
    d = x.shape[-1]
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    rstd = 1.0 / torch.sqrt(var + eps)
    x_hat = (x - mean) * rstd
    g_hat = grad_out * weight
'''
_LNB_GX = '''    grad_x = rstd / d * (d * g_hat - g_hat.sum(-1, keepdim=True) - x_hat * (g_hat * x_hat).sum(-1, keepdim=True))
'''
_LNB_PARAMS = '''    return grad_x, (grad_out * x_hat).sum(0), grad_out.sum(0)
'''


def _lnb(grad_x: str, params: str = _LNB_PARAMS) -> str:
    return _LNB_HEAD + grad_x + params


MISTAKES = {
    # layer_norm
    "ln_last_dim_only": Mistake("layer_norm", _ln('''    dims = (-1,)
''' + _LN_TAIL), "LayerNorm over the last dimension only, whatever normalized_shape says"),
    "ln_leading_dims": Mistake("layer_norm", _ln('''    dims = tuple(range(1, 1 + k))
''' + _LN_TAIL), "LayerNorm over the leading dimensions (after the batch) instead of the trailing ones"),
    "ln_no_validation": Mistake("layer_norm", _ln('''    dims = tuple(range(-k, 0))
''' + _LN_TAIL, validate=False), "normalized_shape not validated"),
    "ln_unbiased": Mistake("layer_norm", _ln('''    dims = tuple(range(-k, 0))
''' + _LN_TAIL.replace("unbiased=False", "unbiased=True")), "the unbiased variance in layer_norm"),
    "ln_eps_outside": Mistake("layer_norm", _ln('''    dims = tuple(range(-k, 0))
''' + _LN_TAIL.replace("torch.sqrt(var + eps)", "(torch.sqrt(var) + eps)")), "eps outside the square root"),
    "ln_mixes_samples": Mistake("layer_norm", _ln('''    dims = tuple(range(x.dim() - k - 1, x.dim()))  # the batch too
''' + _LN_TAIL), "LayerNorm statistics over the batch as well (mixing samples)"),
    "ln_calls_builtin": Mistake("layer_norm", '''
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    return torch.nn.functional.layer_norm(x, shape, weight, bias, eps)
''', "torch.nn.functional.layer_norm called"),
    # instance_norm
    "in_over_batch": Mistake("instance_norm", _IN_HEAD + '''
    dims = (0,) + tuple(range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    return _per_channel((x - mean) / torch.sqrt(var + eps), weight, bias)
''', "InstanceNorm over the batch (that is BatchNorm)"),
    "in_over_channels": Mistake("instance_norm", _IN_HEAD + '''
    dims = tuple(range(1, x.dim()))
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    return _per_channel((x - mean) / torch.sqrt(var + eps), weight, bias)
''', "InstanceNorm over the channels too (that is LayerNorm)"),
    "in_unbiased": Mistake("instance_norm", _IN_HEAD + '''
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    std = x.std(dims, keepdim=True)
    return _per_channel((x - mean) / torch.sqrt(std ** 2 + eps), weight, bias)
''', "the unbiased variance in instance_norm (x.std's default)"),
    "in_affine_last_dim": Mistake("instance_norm", _IN_HEAD + '''
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    out = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
''', "gamma/beta of shape (C,) broadcast against the last dimension"),
    "in_calls_builtin": Mistake("instance_norm", '''
def instance_norm(x, weight=None, bias=None, eps=1e-5):
    return torch.nn.functional.instance_norm(x, weight=weight, bias=bias, eps=eps)
''', "torch.nn.functional.instance_norm called"),
    "in_one_value_zeros": Mistake("instance_norm", _IN_NO_VALIDATION + '''
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    return _per_channel((x - mean) / torch.sqrt(var + eps), weight, bias)
''', "one spatial value per channel accepted (the output is all zeros; PyTorch raises)"),
    # group_norm
    "gn_interleaved": Mistake("group_norm", _GN_HEAD + _GN_VALIDATE + '''
    xg = x.reshape(n, c // num_groups, num_groups, -1)  # channel c lands in group c % G
    mean = xg.mean((1, 3), keepdim=True)
    var = xg.var((1, 3), unbiased=False, keepdim=True)
    out = ((xg - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    return _per_channel(out, weight, bias)
''', "groups of interleaved channels (c mod G) instead of contiguous blocks"),
    "gn_mixes_samples": Mistake("group_norm", _GN_HEAD + _GN_VALIDATE + '''
    xg = x.reshape(num_groups, -1)  # forgets the batch dimension
    mean = xg.mean(-1, keepdim=True)
    var = xg.var(-1, unbiased=False, keepdim=True)
    out = ((xg - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    return _per_channel(out, weight, bias)
''', "GroupNorm statistics mixing samples (a reshape that drops the batch dimension)"),
    "gn_accepts_bad_groups": Mistake("group_norm", _GN_HEAD + '''
    xg = x.reshape(n, num_groups, -1)
    mean = xg.mean(-1, keepdim=True)
    var = xg.var(-1, unbiased=False, keepdim=True)
    out = ((xg - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    return _per_channel(out, weight, bias)
''', "a group count that does not divide the channels accepted"),
    "gn_unbiased": Mistake("group_norm", _GN_HEAD + _GN_VALIDATE + '''
    xg = x.reshape(n, num_groups, -1)
    mean = xg.mean(-1, keepdim=True)
    var = xg.var(-1, keepdim=True)
    out = ((xg - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    return _per_channel(out, weight, bias)
''', "the unbiased variance in group_norm (x.var's default)"),
    "gn_eps_outside": Mistake("group_norm", _GN_HEAD + _GN_VALIDATE + '''
    xg = x.reshape(n, num_groups, -1)
    mean = xg.mean(-1, keepdim=True)
    std = xg.var(-1, unbiased=False, keepdim=True).sqrt()
    out = ((xg - mean) / (std + eps)).reshape(x.shape)
    return _per_channel(out, weight, bias)
''', "eps outside the square root in group_norm"),
    "gn_affine_last_dim": Mistake("group_norm", _GN_HEAD + _GN_VALIDATE + '''
    xg = x.reshape(n, num_groups, -1)
    mean = xg.mean(-1, keepdim=True)
    var = xg.var(-1, unbiased=False, keepdim=True)
    out = ((xg - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
''', "gamma/beta of shape (C,) broadcast against the last dimension in group_norm"),
    "gn_calls_builtin": Mistake("group_norm", '''
def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    return torch.nn.functional.group_norm(x, num_groups, weight, bias, eps)
''', "torch.nn.functional.group_norm called"),
    # equivalent_norm
    "eq_seed_swapped": Mistake("equivalent_norm", '''
def equivalent_norm(num_groups, num_channels):
    if num_channels % num_groups != 0:
        raise ValueError(f"num_groups={num_groups} does not divide {num_channels}")
    if num_groups == num_channels:  # the seed: 当num_groups=num时,相当于LN
        return "layer"
    if num_groups == 1:             # the seed: 当num_groups=1时,相当于IN
        return "instance"
    return "group"
''', "the seed's swapped equivalence (G=C as LN, G=1 as IN)"),
    "eq_accepts_bad_groups": Mistake("equivalent_norm", '''
def equivalent_norm(num_groups, num_channels):
    if num_groups == 1:
        return "layer"
    if num_groups == num_channels:
        return "instance"
    return "group"
''', "a group count that does not divide the channels accepted"),
    # layer_norm_backward
    "lnb_variance_constant": Mistake("layer_norm_backward", _lnb('''
    grad_x = rstd * (g_hat - g_hat.mean(-1, keepdim=True))  # only the mean's path
'''), "the variance treated as a constant (only the mean's path back-propagated)"),
    "lnb_statistics_constant": Mistake("layer_norm_backward", _lnb('''
    grad_x = rstd * g_hat  # the eval-mode gradient
'''), "both statistics treated as constants (the eval-mode gradient)"),
    "lnb_params_averaged": Mistake("layer_norm_backward", _lnb(_LNB_GX, params='''
    return grad_x, (grad_out * x_hat).mean(0), grad_out.mean(0)
'''), "the parameter gradients averaged over the batch instead of summed"),
    "lnb_no_weight": Mistake("layer_norm_backward", _lnb(_LNB_GX.replace("g_hat", "grad_out")),
                             "weight left out of grad_x"),
    "lnb_eps_outside": Mistake("layer_norm_backward", _lnb(_LNB_GX).replace(
        "rstd = 1.0 / torch.sqrt(var + eps)", "rstd = 1.0 / (torch.sqrt(var) + eps)"), "eps outside the square root"),
    "lnb_unbiased": Mistake("layer_norm_backward", _lnb(_LNB_GX).replace(
        "var = ((x - mean) ** 2).mean(-1, keepdim=True)", "var = x.var(-1, keepdim=True)"),
                            "the unbiased variance"),
    "lnb_batch_axis": Mistake("layer_norm_backward", '''
def layer_norm_backward(grad_out, x, weight, eps=1e-5):
    n = x.shape[0]
    mean = x.mean(0, keepdim=True)            # batch norm's axis
    var = ((x - mean) ** 2).mean(0, keepdim=True)
    rstd = 1.0 / torch.sqrt(var + eps)
    x_hat = (x - mean) * rstd
    g_hat = grad_out * weight
    grad_x = rstd / n * (n * g_hat - g_hat.sum(0, keepdim=True) - x_hat * (g_hat * x_hat).sum(0, keepdim=True))
    return grad_x, (grad_out * x_hat).sum(0), grad_out.sum(0)
''', "statistics on the wrong axis (batch instead of features: batch norm's backward)"),
    "lnb_modifies_grad_out": Mistake("layer_norm_backward", '''
def layer_norm_backward(grad_out, x, weight, eps=1e-5):
    d = x.shape[-1]
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    rstd = 1.0 / torch.sqrt(var + eps)
    x_hat = (x - mean) * rstd
    grad_bias = grad_out.sum(0)
    grad_weight = (grad_out * x_hat).sum(0)
    g_hat = grad_out.mul_(weight)             # in place: the caller's grad_out changes
    grad_x = rstd / d * (d * g_hat - g_hat.sum(-1, keepdim=True) - x_hat * (g_hat * x_hat).sum(-1, keepdim=True))
    return grad_x, grad_weight, grad_bias
''', "grad_out modified in place"),
    "lnb_autograd": Mistake("layer_norm_backward", '''
def layer_norm_backward(grad_out, x, weight, eps=1e-5):
    x = x.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    b = torch.zeros_like(w, requires_grad=True)
    mean = x.mean(-1, keepdim=True)
    y = (x - mean) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps) * w + b
    return torch.autograd.grad(y, (x, w, b), grad_out)
''', "autograd instead of the derivation"),
    # ------------------------------------------------------- the questions on the run
    "moved_inverted": Mistake("moved_layers", '''
moved_layers = [name for name, v in partner_moves.items() if v <= 1e-4]
''', "the layers that did not move"),
    "moved_all": Mistake("moved_layers", '''
moved_layers = ["BN", "GN", "LN"]
''', "every layer said to move, float rounding read as a move"),
    "bn_mode_lower": Mistake("better_bn_mode", '''
better_bn_mode = min(bn_modes, key=bn_modes.get)
''', "the evaluation with the lower accuracy"),
}

# The demo class's "typical mistakes" student submits these (make demo).
DEMO = ("ln_last_dim_only", "in_over_batch", "gn_interleaved", "eq_seed_swapped")
