"""06-transformer-norms: every catalogued mistake loses the stated points with a message that
names it, and correct answers written differently earn full marks."""

from grader.score import score_in_process
from helpers import mistake_tests

A = "06-transformer-norms"

_RMS_ALL = {"test_rms_norm": 2, "test_rms_norm_half": 1, "test_rms_norm_more": 1}
_RMSB_ALL = {"test_rms_norm_backward": 2, "test_rms_norm_backward_more": 1}
_FN_ALL = {"test_RMSNormFunction": 1, "test_RMSNormFunction_gradcheck": 1}
_BLOCK_ALL = {"test_ResidualBlock_post": 2, "test_ResidualBlock_pre": 2, "test_ResidualBlock_rms": 2}


def _all(cells, fragment):
    return {cell: fragment for cell in cells}


# mistake -> ({test cell: points lost}, {test cell: fragment its message must contain})
EXPECTED = {
    "rms_mean_subtracted": (_RMS_ALL, _all(_RMS_ALL, "subtracts the row's mean: that is LayerNorm")),
    "rms_eps_outside": (_RMS_ALL, _all(_RMS_ALL, "eps is added outside the square root")),
    "rms_sum_not_mean": (_RMS_ALL, _all(_RMS_ALL, "sum of the squares instead of their mean")),
    "rms_last_dim_only": ({"test_rms_norm": 2, "test_rms_norm_more": 1},
                          _all(("test_rms_norm", "test_rms_norm_more"), "last dimension only")),
    "rms_no_validation": ({"test_rms_norm_shape": 1}, {"test_rms_norm_shape": "not validated"}),
    "rms_default_eps": (_RMS_ALL, _all(_RMS_ALL, "eps=None was taken as 1e-05")),
    "rms_half_overflow": ({"test_rms_norm_half": 1, "test_rms_norm_more": 1},
                          {"test_rms_norm_half": "overflows", "test_rms_norm_more": "the computation runs in bfloat16"}),
    "rms_half_eps_of_input": ({"test_rms_norm_half": 1, "test_rms_norm_more": 1},
                              _all(("test_rms_norm_half", "test_rms_norm_more"), "the eps of the input's dtype")),
    "rms_weight_after_cast": ({"test_rms_norm_half": 1}, {"test_rms_norm_half": "multiplied after the cast back"}),
    "rms_returns_float32": ({"test_rms_norm_half": 1, "test_rms_norm_more": 1},
                            _all(("test_rms_norm_half", "test_rms_norm_more"), "returned dtype torch.float32")),
    "rms_calls_builtin": ({**_RMS_ALL, "test_rms_norm_shape": 1}, {"test_rms_norm": "PyTorch's own rms_norm"}),
    "RMSNorm_with_bias": ({"test_RMSNorm": 2, "test_RMSNorm_more": 1},
                          _all(("test_RMSNorm", "test_RMSNorm_more"), "has a bias")),
    "RMSNorm_default_eps": ({"test_RMSNorm": 2, "test_RMSNorm_more": 1},
                            _all(("test_RMSNorm", "test_RMSNorm_more"), "eps=None must reach rms_norm as None")),
    "RMSNorm_builtin": ({"test_RMSNorm": 2, "test_RMSNorm_more": 1}, {"test_RMSNorm": "PyTorch's nn.RMSNorm"}),
    "rmsb_r_constant": (_RMSB_ALL, _all(_RMSB_ALL, "treated as a constant")),
    "rmsb_mean_term": (_RMSB_ALL, _all(_RMSB_ALL, "layer norm's mean term")),
    "rmsb_sum_not_mean": (_RMSB_ALL, _all(_RMSB_ALL, "where the formula has a mean")),
    "rmsb_eps_outside": (_RMSB_ALL, _all(_RMSB_ALL, "eps is added outside the square root")),
    "rmsb_no_weight": (_RMSB_ALL, _all(_RMSB_ALL, "weight is left out of grad_x")),
    "rmsb_weight_grad_mean": (_RMSB_ALL, _all(_RMSB_ALL, "averaged over the batch instead of summed")),
    "rmsb_modifies_grad_out": (_RMSB_ALL, _all(_RMSB_ALL, "modified grad_out in place")),
    "rmsb_autograd": (_RMSB_ALL, _all(_RMSB_ALL, "PyTorch's own grad")),
    "rmsf_none_for_weight": (_FN_ALL, _all(_FN_ALL, "backward returned None for weight")),
    "rmsf_two_gradients": (_FN_ALL, _all(_FN_ALL, "another number of gradients")),
    "dyt_alpha_outside": ({"test_dyt": 1, "test_dyt_more": 1}, _all(("test_dyt", "test_dyt_more"), "outside the tanh")),
    "dyt_alpha_number": ({"test_dyt_more": 1}, {"test_dyt_more": "alpha.grad is None"}),
    "block_post_outside": ({"test_ResidualBlock_post": 2, "test_ResidualBlock_rms": 2},
                           _all(("test_ResidualBlock_post", "test_ResidualBlock_rms"), "written as x + norm(f(x))")),
    "block_skip_normed": ({"test_ResidualBlock_pre": 2, "test_ResidualBlock_rms": 2},
                          _all(("test_ResidualBlock_pre", "test_ResidualBlock_rms"), "the skip path is normalised")),
    "block_one_norm": (_BLOCK_ALL, _all(_BLOCK_ALL, "one norm shared by both sublayers")),
    "block_norm1_twice": (_BLOCK_ALL, _all(_BLOCK_ALL, "one norm is shared by both sublayers")),
    "block_always_post": ({"test_ResidualBlock_pre": 2, "test_ResidualBlock_rms": 2},
                          _all(("test_ResidualBlock_pre", "test_ResidualBlock_rms"), "placement='pre' is ignored")),
    "block_rms_is_layer": ({"test_ResidualBlock_rms": 2}, {"test_ResidualBlock_rms": "this looks like LayerNorm"}),
    "block_rms_default_eps": ({"test_ResidualBlock_rms": 2}, {"test_ResidualBlock_rms": "default eps"}),
    "block_gelu": (_BLOCK_ALL, _all(_BLOCK_ALL, "uses GELU")),
    "enc_no_final_norm": ({"test_Encoder": 1, "test_Encoder_post": 1},
                          _all(("test_Encoder", "test_Encoder_post"), "has no final norm")),
    "enc_norm_not_applied": ({"test_Encoder": 1, "test_Encoder_post": 1},
                             _all(("test_Encoder", "test_Encoder_post"), "never applies it")),
    "enc_final_norm_post": ({"test_Encoder_post": 1}, {"test_Encoder_post": "every post-norm block already ends with a norm"}),
    # the questions, answered wrongly from the notebook's own run
    "larger_smaller": ({"test_larger_at_output": 1}, {"test_larger_at_output": "has the smaller gradient norm at the last block"}),
    "factor_inverse": ({"test_output_grad_factor": 1}, {"test_output_grad_factor": "inverse ratio"}),
    "factor_first_block": ({"test_output_grad_factor": 1}, {"test_output_grad_factor": "ratio at the first block"}),
    "growth_post": ({"test_stream_growth": 1}, {"test_stream_growth": "growth of the post-norm stream"}),
    "growth_inverse": ({"test_stream_growth": 1}, {"test_stream_growth": "inverse ratio"}),
}


test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named = mistake_tests(A, EXPECTED)


# Correct answers written another way: x / sqrt(...) in float64 inside, norms by hand, torch.where
# and a loop over the blocks' sublayers, staged backward, alpha written as a product.
ALTERNATIVES = {
    "rms_norm": '''
def rms_norm(x, normalized_shape, weight=None, eps=None):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    n = len(normalized_shape)
    if n == 0 or n > x.dim() or tuple(x.shape[-n:]) != normalized_shape:
        raise ValueError(f"bad normalized_shape {normalized_shape} for {tuple(x.shape)}")
    compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    if eps is None:
        eps = torch.finfo(compute).eps
    flat = x.to(torch.float64).reshape(*x.shape[:x.dim() - n], -1)
    ms = (flat * flat).sum(-1, keepdim=True) / flat.shape[-1]
    out = (flat / torch.sqrt(ms + eps)).reshape(x.shape).to(compute)
    if weight is not None:
        out = out * weight.to(compute)
    return out.to(x.dtype)
''',
    "RMSNorm": '''
class RMSNorm(nn.Module):
    def __init__(self, normalized_shape, eps=None, elementwise_affine=True):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(*self.normalized_shape)) if elementwise_affine else None

    def forward(self, x):
        return rms_norm(x, self.normalized_shape, weight=self.weight, eps=self.eps)
''',
    "rms_norm_backward": '''
def rms_norm_backward(grad_out, x, weight, eps=1e-6):
    D = x.shape[-1]
    ms = (x * x).sum(1, keepdim=True) / D
    s = torch.sqrt(ms + eps)
    xhat = x / s
    dxhat = grad_out * weight
    ds = -(dxhat * x).sum(1, keepdim=True) / s ** 2      # y = w * x / s
    dms = ds / (2 * s)
    dx = dxhat / s + dms * 2 * x / D
    return dx, (grad_out * xhat).sum(0)
''',
    "dyt": '''
def dyt(x, alpha, weight, bias):
    return torch.addcmul(bias, weight, torch.tanh(x * alpha))
''',
    "ResidualBlock": '''
class ResidualBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, norm="layer", placement="pre"):
        super().__init__()
        if placement not in {"pre", "post"} or norm not in {"layer", "rms"}:
            raise ValueError(f"unknown norm {norm!r} or placement {placement!r}")
        self.pre = placement == "pre"
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=0.0, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        Norm = nn.LayerNorm if norm == "layer" else RMSNorm
        self.norm1, self.norm2 = Norm(d_model, eps=1e-5), Norm(d_model, eps=1e-5)

    def forward(self, x):
        subs = ((lambda h: self.self_attn(h, h, h)[0], self.norm1),
                (lambda h: self.linear2(F.relu(self.linear1(h))), self.norm2))
        for f, n in subs:
            x = x + f(n(x)) if self.pre else n(x + f(x))
        return x
''',
    "Encoder": '''
class Encoder(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, n_layers, norm="layer", placement="pre"):
        super().__init__()
        self.layers = nn.ModuleList([ResidualBlock(d_model, n_heads, d_ff, norm=norm, placement=placement)
                                     for _ in range(n_layers)])
        self.norm = None
        if placement == "pre":
            self.norm = nn.LayerNorm(d_model, eps=1e-5) if norm == "layer" else RMSNorm(d_model, eps=1e-5)

    def forward(self, x):
        for block in self.layers:
            x = block(x)
        if self.norm is not None:
            x = self.norm(x)
        return x
''',
    "output_grad_factor": '''
post, pre = depth["grad_norms"]["post"], depth["grad_norms"]["pre"]
output_grad_factor = float(torch.tensor(post)[-1] / torch.tensor(pre)[-1])
''',
}


def test_alternative_correct_answers_earn_full_marks():
    results = score_in_process(A, "transformer_norms", answers=ALTERNATIVES)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert sum(r.max_score for r in results.values()) == 26


def test_solution_earns_full_marks():
    results = score_in_process(A, "transformer_norms")
    assert {"test_larger_at_output", "test_output_grad_factor", "test_stream_growth"} <= set(results)
    assert all(r.score == r.max_score for r in results.values()), {
        gid: r.message for gid, r in results.items() if r.score < r.max_score}


def _fails(check, *args):
    try:
        check(*args)
    except AssertionError as exc:
        return str(exc)
    return None


def test_questions_are_recomputed_from_the_run():
    from grader.checks.transformer_norms import check_larger_at_output_format, check_output_grad_factor_format
    from grader.hidden.transformer_norms import check_larger_at_output, check_output_grad_factor, check_stream_growth

    # a run where pre-norm's gradient were the larger at the output: then "pre" is the answer
    run = {"grad_norms": {"pre": [0.2, 0.5], "post": [0.3, 0.25]}, "stream_rms": {"pre": [1.0, 2.0], "post": [1.0, 1.0]}}
    assert _fails(check_larger_at_output, "pre", run) is None
    assert "smaller gradient norm at the last block" in _fails(check_larger_at_output, "post", run)
    assert _fails(check_output_grad_factor, 0.5, run) is None
    assert "inverse ratio" in _fails(check_output_grad_factor, 2.0, run)
    assert _fails(check_stream_growth, 2.0, run) is None
    assert "not the growth" in _fails(check_stream_growth, 3.0, run)
    assert "expected the string 'pre' or 'post'" in _fails(check_larger_at_output_format, "Post-norm")
    assert "not positive" in _fails(check_output_grad_factor_format, -1)


def test_the_readings_of_the_depth_run_hold_for_other_seeds():
    """What section 3.2 says of every run (measured for seeds 0 to 29), on a few seeds."""
    import torch

    from regnorm.transformer_norms import depth_probe

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the notebook runs it: small tensors, one thread is faster
    try:
        runs = {seed: depth_probe(seed=seed) for seed in (0, 7, 23)}
    finally:
        torch.set_num_threads(threads)
    for seed, run in runs.items():
        grads, stream = run["grad_norms"], run["stream_rms"]
        assert 2.5 <= grads["post"][-1] / grads["pre"][-1] <= 4.2, seed      # larger near the output: post
        assert 0.5 <= grads["post"][0] / grads["pre"][0] <= 2.0, seed         # near the input: similar
        assert grads["pre"][-1] / grads["pre"][0] < 0.6, seed                 # pre-norm's shrink towards the output
        assert 2.4 <= stream["pre"][-1] / stream["pre"][0] <= 3.1, seed       # the pre-norm stream grows
        assert all(abs(v - 1) < 0.02 for v in stream["post"][1:]), seed      # every post-norm block renormalises


def test_pytorch_computes_half_precision_rms_norm_as_the_notebook_says():
    """The conventions section 1.1 states and check_rms_norm_half relies on: eps=None is float32's
    finfo eps, the weight is multiplied in float32 before one cast back (casting first differs)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float16, torch.bfloat16):
        x = (3 * torch.randn(32, 48, generator=g)).to(dtype)
        w = (1 + 0.5 * torch.randn(48, generator=g)).to(dtype)
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + torch.finfo(torch.float32).eps)
        assert torch.equal(F.rms_norm(x, [48], w), (normed * w.float()).to(dtype))
        assert (F.rms_norm(x, [48], w) != normed.to(dtype) * w).float().mean() > 0.1
    big = torch.full((2, 8), 300.0, dtype=torch.float16)  # 300**2 overflows float16; PyTorch's result does not
    assert torch.equal(F.rms_norm(big, [8]), torch.ones(2, 8, dtype=torch.float16))
