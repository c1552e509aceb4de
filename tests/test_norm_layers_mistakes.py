"""05-norm-layers: every catalogued mistake loses the stated points with a message that names
it, and correct answers written differently earn full marks."""

from grader.score import score_in_process
from helpers import mistake_tests

A = "05-norm-layers"

_LNB_ALL = {"test_layer_norm_backward": 2, "test_layer_norm_backward_more": 2}


def _lnb(fragment):
    return {"test_layer_norm_backward": fragment, "test_layer_norm_backward_more": fragment}


# mistake -> ({test cell: points lost}, {test cell: fragment its message must contain})
EXPECTED = {
    "ln_last_dim_only": ({"test_layer_norm": 2, "test_layer_norm_more": 1},
                         {"test_layer_norm": "last dimension only"}),
    "ln_leading_dims": ({"test_layer_norm": 2, "test_layer_norm_more": 1},
                        {"test_layer_norm": "leading dimensions"}),
    "ln_no_validation": ({"test_layer_norm_shape": 1}, {"test_layer_norm_shape": "not validated"}),
    "ln_unbiased": ({"test_layer_norm": 2, "test_layer_norm_more": 1},
                    {"test_layer_norm": "unbiased", "test_layer_norm_more": "unbiased"}),
    "ln_eps_outside": ({"test_layer_norm": 2, "test_layer_norm_more": 1},
                       {"test_layer_norm": "eps is added outside the square root"}),
    "ln_mixes_samples": ({"test_layer_norm": 2, "test_layer_norm_more": 1},
                         {"test_layer_norm": "mix samples", "test_layer_norm_more": "mix samples"}),
    "ln_calls_builtin": ({"test_layer_norm": 2, "test_layer_norm_shape": 1, "test_layer_norm_more": 1},
                         {"test_layer_norm": "PyTorch's own layer_norm"}),
    "in_over_batch": ({"test_instance_norm": 2, "test_instance_norm_affine": 1},
                      {"test_instance_norm": "that is BatchNorm"}),
    "in_over_channels": ({"test_instance_norm": 2, "test_instance_norm_affine": 1},
                         {"test_instance_norm": "that is LayerNorm"}),
    "in_unbiased": ({"test_instance_norm": 2, "test_instance_norm_affine": 1},
                    {"test_instance_norm": "unbiased"}),
    "in_affine_last_dim": ({"test_instance_norm_affine": 1},
                           {"test_instance_norm_affine": "broadcast against the last dimension"}),
    "in_calls_builtin": ({"test_instance_norm": 2, "test_instance_norm_affine": 1},
                         {"test_instance_norm": "PyTorch's own instance_norm"}),
    "gn_interleaved": ({"test_group_norm": 2, "test_group_norm_affine": 1},
                       {"test_group_norm": "interleaved channels"}),
    "gn_mixes_samples": ({"test_group_norm": 2, "test_group_norm_affine": 1},
                         {"test_group_norm": "mix samples"}),
    "gn_accepts_bad_groups": ({"test_group_norm_groups": 1}, {"test_group_norm_groups": "cannot be split"}),
    "gn_unbiased": ({"test_group_norm": 2, "test_group_norm_affine": 1}, {"test_group_norm": "unbiased"}),
    "gn_eps_outside": ({"test_group_norm": 2, "test_group_norm_affine": 1},
                       {"test_group_norm": "eps is added outside the square root"}),
    "gn_affine_last_dim": ({"test_group_norm_affine": 1},
                           {"test_group_norm_affine": "broadcast against the last dimension"}),
    "gn_calls_builtin": ({"test_group_norm": 2, "test_group_norm_groups": 1, "test_group_norm_affine": 1},
                         {"test_group_norm": "PyTorch's own group_norm"}),
    "in_one_value_zeros": ({"test_instance_norm_errors": 1},
                           {"test_instance_norm_errors": "one spatial value per channel"}),
    "lnb_variance_constant": (_LNB_ALL, _lnb("variance is treated as a constant")),
    "lnb_statistics_constant": (_LNB_ALL, _lnb("both statistics are treated as constants")),
    "lnb_params_averaged": (_LNB_ALL, _lnb("averaged over the batch instead of summed")),
    "lnb_no_weight": (_LNB_ALL, _lnb("weight is left out of grad_x")),
    "lnb_eps_outside": (_LNB_ALL, _lnb("eps is added outside the square root")),
    "lnb_unbiased": (_LNB_ALL, _lnb("unbiased")),
    "lnb_batch_axis": (_LNB_ALL, _lnb("statistics are on the wrong axis")),
    "lnb_modifies_grad_out": (_LNB_ALL, _lnb("modified grad_out in place")),
    "lnb_autograd": (_LNB_ALL, _lnb("PyTorch's own grad")),
    "eq_seed_swapped": ({"test_equivalent_norm": 1}, {"test_equivalent_norm": "seed's swapped statement"}),
    "eq_accepts_bad_groups": ({"test_equivalent_norm_errors": 1},
                              {"test_equivalent_norm_errors": "cannot be split"}),
    # the questions, answered wrongly from the notebook's own run
    "moved_inverted": ({"test_moved_layers": 1}, {"test_moved_layers": "did NOT move in your run"}),
    "moved_all": ({"test_moved_layers": 1}, {"test_moved_layers": "did not move"}),
    "bn_mode_lower": ({"test_better_bn_mode": 1}, {"test_better_bn_mode": "the higher of the two"}),
}


test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named = mistake_tests(A, EXPECTED)


# Correct answers written another way: var_mean / E[x^2] - E[x]^2, rsqrt, float64 internally,
# permute-and-flatten instead of keepdim, torch.where-free validation by exception.
ALTERNATIVES = {
    "layer_norm": '''
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    if tuple(x.shape[len(x.shape) - len(normalized_shape):]) != normalized_shape or len(normalized_shape) > x.dim():
        raise ValueError(f"bad normalized_shape {normalized_shape} for {tuple(x.shape)}")
    lead = x.shape[:x.dim() - len(normalized_shape)]
    flat = x.double().reshape(*lead, -1)
    mean = flat.mean(-1, keepdim=True)
    var = (flat * flat).mean(-1, keepdim=True) - mean * mean
    out = ((flat - mean) * torch.rsqrt(var + eps)).reshape(x.shape).to(x.dtype)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
''',
    "instance_norm": '''
def instance_norm(x, weight=None, bias=None, eps=1e-5):
    if not 3 <= x.dim() <= 5 or math.prod(x.shape[2:]) < 2:
        raise ValueError(f"expected (N, C, *spatial) with more than one spatial value, got {tuple(x.shape)}")
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    var, mean = torch.var_mean(flat, dim=-1, correction=0, keepdim=True)
    out = ((flat - mean) / (var + eps).sqrt()).reshape(x.shape)
    shape = [1, c] + [1] * (x.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
''',
    "group_norm": '''
def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise ValueError(f"{num_groups} groups do not divide {c} channels")
    parts = []
    for chunk in x.chunk(num_groups, dim=1):        # contiguous groups
        dims = tuple(range(1, x.dim()))
        var, mean = torch.var_mean(chunk, dim=dims, unbiased=False, keepdim=True)
        parts.append((chunk - mean) / torch.sqrt(var + eps))
    out = torch.cat(parts, dim=1)
    view = (1, c) + (1,) * (x.dim() - 2)
    if weight is not None:
        out = weight.view(view) * out
    if bias is not None:
        out = out + bias.view(view)
    return out
''',
    # the computational graph node by node (CS231n's staged backward), float64 inside
    "layer_norm_backward": '''
def layer_norm_backward(grad_out, x, weight, eps=1e-5):
    xd, gd, wd = x.double(), grad_out.double(), weight.double()
    D = xd.shape[1]
    mu = xd.sum(1, keepdim=True) / D
    xc = xd - mu
    var = (xc * xc).sum(1, keepdim=True) / D
    std = (var + eps).sqrt()
    inv = 1 / std
    xhat = xc * inv
    dbeta = gd.sum(0)
    dgamma = (gd * xhat).sum(0)
    dxhat = gd * wd
    dinv = (dxhat * xc).sum(1, keepdim=True)
    dxc = dxhat * inv
    dstd = -dinv / std ** 2
    dvar = 0.5 * dstd / std
    dxc = dxc + 2 * xc * dvar / D
    dmu = -dxc.sum(1, keepdim=True)
    dx = dxc + dmu / D
    return dx.to(x.dtype), dgamma.to(x.dtype), dbeta.to(x.dtype)
''',
    "equivalent_norm": '''
def equivalent_norm(num_groups, num_channels):
    if num_channels % num_groups:
        raise ValueError(f"{num_groups} does not divide {num_channels}")
    return "layer" if num_groups == 1 else ("instance" if num_groups == num_channels else "group")
''',
}


def test_alternative_correct_answers_earn_full_marks():
    # the questions read the runs, which call these answers: they run as in the notebook
    results = score_in_process(A, "norm_layers", answers=ALTERNATIVES)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert sum(r.max_score for r in results.values()) == 20


def test_solution_earns_full_marks():
    results = score_in_process(A, "norm_layers")
    assert {"test_moved_layers", "test_better_bn_mode"} <= set(results)
    assert all(r.score == r.max_score for r in results.values()), {
        gid: r.message for gid, r in results.items() if r.score < r.max_score}


def _fails(check, *args):
    try:
        check(*args)
    except AssertionError as exc:
        return str(exc)
    return None


def test_moved_layers_is_recomputed_from_the_run():
    from grader.checks.norm_layers import check_moved_layers_format
    from grader.hidden.norm_layers import check_moved_layers

    run = {"BN": 0.31, "GN": 0.0, "LN": 2e-8}
    assert _fails(check_moved_layers, ["BN"], run) is None
    assert _fails(check_moved_layers, ("bn",), run) is None
    assert "did NOT move in your run" in _fails(check_moved_layers, ["GN", "LN"], run)
    assert "['LN'] did not move" in _fails(check_moved_layers, ["BN", "LN"], run)
    # a student whose group_norm mixes samples measured a move of GN too: then that is the answer
    mixed = {"BN": 0.31, "GN": 0.12, "LN": 0.0}
    assert _fails(check_moved_layers, ["BN", "GN"], mixed) is None
    assert "['GN'] moved too" in _fails(check_moved_layers, ["BN"], mixed)
    assert _fails(check_moved_layers_format, ["BN"]) is None
    assert "expected only the names" in _fails(check_moved_layers_format, ["batch norm"])
    assert "not a list" in _fails(check_moved_layers_format, 3)


def test_better_bn_mode_is_recomputed_from_the_run():
    from grader.checks.norm_layers import check_better_bn_mode_format
    from grader.hidden.norm_layers import check_better_bn_mode

    assert _fails(check_better_bn_mode, "eval", {"eval": 0.83, "train": 0.75}) is None
    assert _fails(check_better_bn_mode, "train", {"eval": 0.70, "train": 0.75}) is None
    assert "the higher of the two is 'eval'" in _fails(check_better_bn_mode, "train", {"eval": 0.83, "train": 0.75})
    assert _fails(check_better_bn_mode, "train", {"eval": 0.75, "train": 0.75}) is None  # a tie: both right
    assert "expected the string 'eval' or 'train'" in _fails(check_better_bn_mode_format, "a")
