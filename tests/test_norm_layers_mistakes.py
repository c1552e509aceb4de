"""05-norm-layers: every catalogued mistake loses the stated points with a message that names
it, and correct answers written differently earn full marks."""

from grader.score import score_in_process
from helpers import mistake_tests

A = "05-norm-layers"

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
    "eq_seed_swapped": ({"test_equivalent_norm": 1}, {"test_equivalent_norm": "seed's swapped statement"}),
    "eq_accepts_bad_groups": ({"test_equivalent_norm_errors": 1},
                              {"test_equivalent_norm_errors": "cannot be split"}),
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
    "equivalent_norm": '''
def equivalent_norm(num_groups, num_channels):
    if num_channels % num_groups:
        raise ValueError(f"{num_groups} does not divide {num_channels}")
    return "layer" if num_groups == 1 else ("instance" if num_groups == num_channels else "group")
''',
}


def test_alternative_correct_answers_earn_full_marks():
    results = score_in_process(A, "norm_layers", answers=ALTERNATIVES)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert sum(r.max_score for r in results.values()) == 13


def test_solution_earns_full_marks():
    results = score_in_process(A, "norm_layers")
    assert all(r.score == r.max_score for r in results.values()), {
        gid: r.message for gid, r in results.items() if r.score < r.max_score}
