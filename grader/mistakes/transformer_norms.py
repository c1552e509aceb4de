"""Typical wrong answers for 06-transformer-norms (see grader/mistakes/__init__.py)."""
from . import Mistake

# ---- rms_norm -------------------------------------------------------------------------------
_RMS_HEAD = '''
def rms_norm(x, normalized_shape, weight=None, eps=None):
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    k = len(shape)
'''
_RMS_VALIDATE = '''    if k == 0 or k > x.dim() or list(x.shape[x.dim() - k:]) != shape:
        raise ValueError(f"normalized_shape {shape} is not the end of {list(x.shape)}")
'''
_RMS_DTYPE = '''    xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    if eps is None:
        eps = torch.finfo(xc.dtype).eps
    dims = tuple(range(-k, 0))
'''
_RMS_TAIL = '''    out = xc * torch.rsqrt(xc.pow(2).mean(dims, keepdim=True) + eps)
    if weight is not None:
        out = out * weight
    return out.to(x.dtype)
'''


def _rms(dtype: str = _RMS_DTYPE, tail: str = _RMS_TAIL, validate: bool = True) -> str:
    return _RMS_HEAD + (_RMS_VALIDATE if validate else "") + dtype + tail


# ---- RMSNorm --------------------------------------------------------------------------------
_MODULE = '''
class RMSNorm(nn.Module):
    def __init__(self, normalized_shape, eps=None, elementwise_affine=True):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)
'''

# ---- rms_norm_backward ----------------------------------------------------------------------
_RMSB = '''
def rms_norm_backward(grad_out, x, weight, eps=1e-6):
    r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    x_hat = x * r
    g_hat = grad_out * weight
    grad_x = r * (g_hat - x_hat * (g_hat * x_hat).mean(-1, keepdim=True))
    return grad_x, (grad_out * x_hat).sum(0)
'''

# ---- RMSNormFunction ------------------------------------------------------------------------
_FUNCTION = '''
class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps=1e-6):
        ctx.save_for_backward(x, weight)
        ctx.eps = eps
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x, grad_weight = rms_norm_backward(grad_out, x, weight, ctx.eps)
        return grad_x, grad_weight, None
'''

# ---- ResidualBlock --------------------------------------------------------------------------
_BLOCK = '''
class ResidualBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, norm="layer", placement="pre"):
        super().__init__()
        if norm not in ("layer", "rms") or placement not in ("pre", "post"):
            raise ValueError(f"bad norm {norm!r} or placement {placement!r}")
        self.placement = placement
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=0.0, batch_first=True)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        make = (lambda: nn.LayerNorm(d_model, eps=1e-5)) if norm == "layer" else (lambda: RMSNorm(d_model, eps=1e-5))
        self.norm1, self.norm2 = make(), make()

    def sa(self, h):
        return self.self_attn(h, h, h, need_weights=False)[0]

    def ff(self, h):
        return self.linear2(torch.relu(self.linear1(h)))

    def forward(self, x):
        if self.placement == "pre":
            x = x + self.sa(self.norm1(x))
            return x + self.ff(self.norm2(x))
        x = self.norm1(x + self.sa(x))
        return self.norm2(x + self.ff(x))
'''
_PRE = '''            x = x + self.sa(self.norm1(x))
            return x + self.ff(self.norm2(x))
'''
_POST = '''        x = self.norm1(x + self.sa(x))
        return self.norm2(x + self.ff(x))
'''

# ---- Encoder --------------------------------------------------------------------------------
_ENCODER = '''
class Encoder(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, n_layers, norm="layer", placement="pre"):
        super().__init__()
        self.layers = nn.ModuleList(ResidualBlock(d_model, n_heads, d_ff, norm, placement)
                                    for _ in range(n_layers))
        if placement == "pre":
            self.norm = nn.LayerNorm(d_model) if norm == "layer" else RMSNorm(d_model, eps=1e-5)
        else:
            self.norm = None

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x if self.norm is None else self.norm(x)
'''


def _sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


MISTAKES = {
    # rms_norm
    "rms_mean_subtracted": Mistake("rms_norm", _rms(tail=_sub(_RMS_TAIL, "    out = xc *", "    xc = xc - xc.mean(dims, keepdim=True)\n    out = xc *")),
                                   "RMSNorm with the mean subtracted (that is LayerNorm)"),
    "rms_eps_outside": Mistake("rms_norm", _rms(tail=_sub(_RMS_TAIL, "xc * torch.rsqrt(xc.pow(2).mean(dims, keepdim=True) + eps)",
                                                          "xc / (xc.pow(2).mean(dims, keepdim=True).sqrt() + eps)")),
                               "eps outside the square root"),
    "rms_sum_not_mean": Mistake("rms_norm", _rms(tail=_sub(_RMS_TAIL, "xc.pow(2).mean(dims", "xc.pow(2).sum(dims")),
                                "the sum of the squares instead of their mean"),
    "rms_last_dim_only": Mistake("rms_norm", _rms(dtype=_sub(_RMS_DTYPE, "dims = tuple(range(-k, 0))", "dims = (-1,)")),
                                 "the wrong dimensions: the last one only, whatever normalized_shape says"),
    "rms_no_validation": Mistake("rms_norm", _rms(validate=False), "normalized_shape not validated"),
    "rms_default_eps": Mistake("rms_norm", _rms(dtype=_sub(_RMS_DTYPE, "eps = torch.finfo(xc.dtype).eps", "eps = 1e-5")),
                               "the default eps taken as LayerNorm's 1e-5 instead of torch.finfo(dtype).eps"),
    "rms_half_overflow": Mistake("rms_norm", _rms(dtype=_sub(_RMS_DTYPE, "xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x",
                                                             "xc = x  # float16 stays float16: x**2 overflows above 256")),
                                 "half precision computed in half precision (x**2 overflows float16)"),
    "rms_half_eps_of_input": Mistake("rms_norm", _rms(dtype=_sub(_RMS_DTYPE, "torch.finfo(xc.dtype).eps", "torch.finfo(x.dtype).eps")),
                                     "the default eps of the input's dtype (float16's 1e-3) instead of the computation's"),
    "rms_weight_after_cast": Mistake("rms_norm", _rms(tail='''    out = (xc * torch.rsqrt(xc.pow(2).mean(dims, keepdim=True) + eps)).to(x.dtype)
    if weight is not None:
        out = out * weight
    return out
'''), "the weight multiplied after casting back to half precision (rounds twice)"),
    "rms_returns_float32": Mistake("rms_norm", _rms(tail=_sub(_RMS_TAIL, "return out.to(x.dtype)", "return out")),
                                   "half precision inputs returned as float32"),
    "rms_calls_builtin": Mistake("rms_norm", '''
def rms_norm(x, normalized_shape, weight=None, eps=None):
    shape = [normalized_shape] if isinstance(normalized_shape, int) else list(normalized_shape)
    return torch.nn.functional.rms_norm(x, shape, weight, eps)
''', "torch.nn.functional.rms_norm called"),
    # RMSNorm
    "RMSNorm_with_bias": Mistake("RMSNorm", _sub(_sub(_MODULE, '''            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
''', '''            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape))
'''), "return rms_norm(x, self.normalized_shape, self.weight, self.eps)",
        "out = rms_norm(x, self.normalized_shape, self.weight, self.eps)\n        return out if self.bias is None else out + self.bias"
    ).replace('''            self.register_parameter("weight", None)''', '''            self.register_parameter("weight", None)
            self.bias = None'''), "a bias added to RMSNorm"),
    "RMSNorm_default_eps": Mistake("RMSNorm", _sub(_MODULE, "self.eps = eps", "self.eps = 1e-6 if eps is None else eps"),
                                   "eps=None replaced by 1e-6 in the layer"),
    "RMSNorm_builtin": Mistake("RMSNorm", '''
class RMSNorm(nn.RMSNorm):
    pass
''', "nn.RMSNorm itself"),
    # rms_norm_backward
    "rmsb_r_constant": Mistake("rms_norm_backward", _sub(_RMSB, "r * (g_hat - x_hat * (g_hat * x_hat).mean(-1, keepdim=True))", "r * g_hat"),
                               "r treated as a constant (no path through the statistic)"),
    "rmsb_mean_term": Mistake("rms_norm_backward", _sub(_RMSB, "r * (g_hat - x_hat", "r * (g_hat - g_hat.mean(-1, keepdim=True) - x_hat"),
                              "layer norm's mean term kept"),
    "rmsb_sum_not_mean": Mistake("rms_norm_backward", _sub(_RMSB, "(g_hat * x_hat).mean(-1, keepdim=True)", "(g_hat * x_hat).sum(-1, keepdim=True)"),
                                 "a sum over the features where the formula has a mean"),
    "rmsb_eps_outside": Mistake("rms_norm_backward", _sub(_RMSB, "r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)",
                                                          "r = 1 / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps)"),
                                "eps outside the square root"),
    "rmsb_no_weight": Mistake("rms_norm_backward", _sub(_RMSB, "g_hat = grad_out * weight", "g_hat = grad_out"),
                              "weight left out of grad_x"),
    "rmsb_weight_grad_mean": Mistake("rms_norm_backward", _sub(_RMSB, "(grad_out * x_hat).sum(0)", "(grad_out * x_hat).mean(0)"),
                                     "grad_weight averaged over the batch"),
    "rmsb_modifies_grad_out": Mistake("rms_norm_backward", _sub(_sub(_RMSB, "g_hat = grad_out * weight", "grad_weight = (grad_out * x_hat).sum(0)\n    g_hat = grad_out.mul_(weight)"),
                                                                "return grad_x, (grad_out * x_hat).sum(0)", "return grad_x, grad_weight"),
                                      "grad_out modified in place"),
    "rmsb_autograd": Mistake("rms_norm_backward", '''
def rms_norm_backward(grad_out, x, weight, eps=1e-6):
    x = x.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
    return torch.autograd.grad(y, (x, w), grad_out)
''', "autograd instead of the derivation"),
    # RMSNormFunction
    "rmsf_none_for_weight": Mistake("RMSNormFunction", _sub(_FUNCTION, "return grad_x, grad_weight, None", "return grad_x, None, None"),
                                    "None returned for weight's gradient (the weight never learns)"),
    "rmsf_two_gradients": Mistake("RMSNormFunction", _sub(_FUNCTION, "return grad_x, grad_weight, None", "return grad_x, grad_weight"),
                                  "no gradient slot for eps"),
    # dyt
    "dyt_alpha_outside": Mistake("dyt", '''
def dyt(x, alpha, weight, bias):
    return weight * alpha * torch.tanh(x) + bias
''', "alpha outside the tanh"),
    "dyt_alpha_number": Mistake("dyt", '''
def dyt(x, alpha, weight, bias):
    return weight * torch.tanh(float(alpha) * x) + bias
''', "alpha turned into a Python number (it never learns)"),
    # ResidualBlock
    "block_post_outside": Mistake("ResidualBlock", _sub(_BLOCK, _POST, '''        x = x + self.norm1(self.sa(x))
        return x + self.norm2(self.ff(x))
'''), "post-norm written as x + norm(f(x))"),
    "block_skip_normed": Mistake("ResidualBlock", _sub(_BLOCK, _PRE, '''            h = self.norm1(x)
            x = h + self.sa(h)
            h = self.norm2(x)
            return h + self.ff(h)
'''), "pre-norm with the skip path normalised"),
    "block_one_norm": Mistake("ResidualBlock", _sub(_sub(_sub(_BLOCK, "self.norm1, self.norm2 = make(), make()", "self.norm = make()"),
                                                         _PRE, '''            x = x + self.sa(self.norm(x))
            return x + self.ff(self.norm(x))
'''), _POST, '''        x = self.norm(x + self.sa(x))
        return self.norm(x + self.ff(x))
'''), "one norm shared by both sublayers"),
    "block_norm1_twice": Mistake("ResidualBlock", _sub(_sub(_BLOCK, "return x + self.ff(self.norm2(x))", "return x + self.ff(self.norm1(x))"),
                                                       "return self.norm2(x + self.ff(x))", "return self.norm1(x + self.ff(x))"),
                                 "two norms created, norm1 used for both sublayers"),
    "block_always_post": Mistake("ResidualBlock", _sub(_BLOCK, '''        if self.placement == "pre":
''' + _PRE, ""), "placement ignored (always post-norm)"),
    "block_rms_is_layer": Mistake("ResidualBlock", _sub(_BLOCK, '''make = (lambda: nn.LayerNorm(d_model, eps=1e-5)) if norm == "layer" else (lambda: RMSNorm(d_model, eps=1e-5))''',
                                                        '''make = lambda: nn.LayerNorm(d_model, eps=1e-5)  # norm ignored'''),
                                  "norm='rms' builds LayerNorms"),
    "block_rms_default_eps": Mistake("ResidualBlock", _sub(_BLOCK, "(lambda: RMSNorm(d_model, eps=1e-5))", "(lambda: RMSNorm(d_model))"),
                                     "the RMSNorms built with their default eps instead of 1e-5"),
    "block_gelu": Mistake("ResidualBlock", _sub(_BLOCK, "torch.relu(self.linear1(h))", "F.gelu(self.linear1(h))"),
                          "GELU instead of ReLU in the feed-forward"),
    # Encoder
    "enc_no_final_norm": Mistake("Encoder", _sub(_sub(_ENCODER, '''        if placement == "pre":
            self.norm = nn.LayerNorm(d_model) if norm == "layer" else RMSNorm(d_model, eps=1e-5)
        else:
            self.norm = None
''', ""), "return x if self.norm is None else self.norm(x)", "return x"), "a pre-norm stack without its final norm"),
    "enc_norm_not_applied": Mistake("Encoder", _sub(_ENCODER, "return x if self.norm is None else self.norm(x)", "return x"),
                                    "the final norm created but never applied"),
    "enc_final_norm_post": Mistake("Encoder", _sub(_ENCODER, '''        if placement == "pre":
            self.norm = nn.LayerNorm(d_model) if norm == "layer" else RMSNorm(d_model, eps=1e-5)
        else:
            self.norm = None
''', '''        self.norm = nn.LayerNorm(d_model) if norm == "layer" else RMSNorm(d_model, eps=1e-5)
'''), "a final norm after a post-norm stack too"),
    # ------------------------------------------------------- the questions on the run
    "larger_smaller": Mistake("larger_at_output", '''
larger_at_output = min(("pre", "post"), key=lambda p: depth["grad_norms"][p][-1])
''', "the placement with the smaller gradient at the last block"),
    "factor_inverse": Mistake("output_grad_factor", '''
output_grad_factor = depth["grad_norms"]["pre"][-1] / depth["grad_norms"]["post"][-1]
''', "pre over post instead of post over pre"),
    "factor_first_block": Mistake("output_grad_factor", '''
output_grad_factor = depth["grad_norms"]["post"][0] / depth["grad_norms"]["pre"][0]
''', "the ratio at the first block instead of the last"),
    "growth_post": Mistake("stream_growth", '''
stream_growth = depth["stream_rms"]["post"][-1] / depth["stream_rms"]["post"][0]
''', "the post-norm stream's growth"),
    "growth_inverse": Mistake("stream_growth", '''
stream_growth = depth["stream_rms"]["pre"][0] / depth["stream_rms"]["pre"][-1]
''', "input over output"),
}

# The demo class's "typical mistakes" student submits these (make demo).
DEMO = ("rms_mean_subtracted", "block_post_outside", "enc_no_final_norm", "factor_inverse")
