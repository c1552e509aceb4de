"""Hidden checks for assignment 06-transformer-norms (visible ones:
``grader.checks.transformer_norms`` and ``grader.checks.transformer_blocks``).

Besides more shapes, dtypes and error cases, the answers of the three questions live here: each
is recomputed from the student's own run (`depth`, from section 3.2), never compared with a
fixed value.
"""
from __future__ import annotations

import math

import torch

from ..checks._common import call, check, expect_raises, fail, generator
from ..checks.norm_layers import _probe
from ..checks.transformer_blocks import block_case, encoder_case
from ..checks.rms_backward import _function_case, _rms_backward_case
from ..checks.transformer_norms import (
    _dyt_case, _half_case, _module_case, _no_builtin, _placement, _positive, _rms_case,
)


@check
def check_rms_norm_more(rms_norm) -> None:
    """Other ranks, torch.Size, a 2-dim normalized_shape in float16, gradients flow."""
    g = generator(660)
    _rms_case(rms_norm, _probe((16, 10), seed=661), torch.Size([10]))
    _rms_case(rms_norm, _probe((3, 4, 7, 5), seed=662, dtype=torch.float32), (7, 5),
              1 + torch.randn(7, 5, generator=g))
    _rms_case(rms_norm, _probe((2, 3, 4), seed=663), [2, 3, 4], eps=1e-4)
    x = _probe((3, 4, 6), seed=664).requires_grad_(True)
    with _no_builtin("rms_norm"):
        out = call(rms_norm, x, [6], _what="rms_norm(x requiring grad, [6])")
    if not out.requires_grad:
        fail("rms_norm's output does not track gradients: backpropagation cannot pass through it.",
             "compute it from x with differentiable operations (no .detach(), no .data, no numpy).")
    _half_case(rms_norm, torch.bfloat16, 665, weight=False)


@check
def check_RMSNorm_more(RMSNorm) -> None:
    """elementwise_affine=False (weight None, empty state_dict), eps given, a 2-dim
    normalized_shape; backward reaches weight."""
    _module_case(RMSNorm, 8, affine=False, seed=670)
    _module_case(RMSNorm, (3, 4), eps=0.1, seed=672)
    layer = call(RMSNorm, 5, _what="RMSNorm(5)")
    x = _probe((4, 5), seed=674)
    with _no_builtin("RMSNorm"):
        out = call(layer, x.float(), _what="RMSNorm(5)(x)")
        call(out.sum().backward, _what="RMSNorm(5)(x).sum().backward()")
    if layer.weight.grad is None:
        fail("After backward, RMSNorm's weight.grad is None: the weight is not part of the computation.",
             "pass self.weight to rms_norm in forward (and keep it an nn.Parameter).")


@check
def check_rms_norm_backward_more(rms_norm_backward) -> None:
    """One sample, two features, many features, float32, another eps."""
    _rms_backward_case(rms_norm_backward, 1, 5, seed=680)
    _rms_backward_case(rms_norm_backward, 9, 2, seed=681)
    _rms_backward_case(rms_norm_backward, 4, 33, seed=682, eps=1e-3)
    _rms_backward_case(rms_norm_backward, 8, 12, seed=683, dtype=torch.float32)


@check
def check_RMSNormFunction_gradcheck(RMSNormFunction) -> None:
    """Another shape and eps; only x requiring grad."""
    _function_case(RMSNormFunction, 4, 9, seed=690, eps=0.1)
    _function_case(RMSNormFunction, 3, 6, seed=691, eps=1e-6, needs=(True, False))


@check
def check_dyt_more(dyt) -> None:
    """alpha as a learnable 0-dim tensor: values, and gradients reach alpha, weight and bias."""
    g = generator(695)
    x = 2 * torch.randn(2, 3, 6, generator=g, dtype=torch.float64)
    w = 1 + 0.5 * torch.randn(6, generator=g, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    _dyt_case(dyt, x, torch.tensor(0.7, dtype=torch.float64), w, b)
    alpha = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    ws, bs = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    out = call(dyt, x, alpha, ws, bs, _what="dyt(x, alpha (a tensor requiring grad), weight, bias)")
    call(out.sum().backward, _what="dyt(...).sum().backward()")
    for name, t in (("alpha", alpha), ("weight", ws), ("bias", bs)):
        if t.grad is None:
            fail(f"After backward, {name}.grad is None: {name} does not take part in the computation "
                 "(was it turned into a Python number or detached?).",
                 "use alpha, weight and bias as given: weight * torch.tanh(alpha * x) + bias.")
    expected = (w * x * (1 - torch.tanh(0.7 * x) ** 2)).sum()
    if not math.isclose(alpha.grad.item(), expected.item(), rel_tol=1e-6):
        fail("The gradient reaching alpha is wrong.", "return weight * torch.tanh(alpha * x) + bias.")


@check
def check_ResidualBlock_rms(ResidualBlock) -> None:
    """norm='rms' in both placements (RMSNorm(d_model, eps=1e-5) in the places of the LayerNorms),
    another size, and ValueError for an unknown norm or placement."""
    block_case(ResidualBlock, "pre", norm="rms", seed=730)
    block_case(ResidualBlock, "post", norm="rms", d=12, heads=4, d_ff=24, seed=740, shape=(2, 3))
    for kwargs in ({"norm": "batch"}, {"placement": "middle"}):
        expect_raises(
            ResidualBlock, 16, 2, 32, **kwargs,
            mistake=f"ResidualBlock(16, 2, 32, {', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
                    "was accepted: an unknown norm or placement silently builds some other block.",
            fix="raise ValueError unless norm is 'layer' or 'rms' and placement is 'pre' or 'post'.",
        )


@check
def check_Encoder_post(Encoder) -> None:
    """A post-norm stack (no final norm) and a pre-norm RMSNorm stack."""
    encoder_case(Encoder, "post", seed=760)
    encoder_case(Encoder, "pre", norm="rms", n_layers=2, seed=770)


# --------------------------------------------------------------------------------------------
# the questions, recomputed from the run

def _series(depth, key, placement):
    try:
        values = [float(v) for v in depth[key][placement]]
    except (KeyError, TypeError, ValueError):
        fail(f"The run passed in has no {key}[{placement!r}].", "pass the notebook's `depth`, unchanged.")
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        fail(f"The run's {key}[{placement!r}] holds values that are not positive numbers.",
             "run section 3.2's cell again, unchanged.")
    return values


@check
def check_larger_at_output(larger_at_output, depth) -> None:
    """The placement with the larger gradient norm at the last block, in the student's run."""
    answer = _placement(larger_at_output, "larger_at_output")
    last = {p: _series(depth, "grad_norms", p)[-1] for p in ("pre", "post")}
    first = {p: _series(depth, "grad_norms", p)[0] for p in ("pre", "post")}
    best = max(last, key=last.get)
    if answer == best or last["pre"] == last["post"]:
        return
    at_input = (" It is the larger at the first block, next to the input; the question asks about the "
                "last block, next to the output." if answer == max(first, key=first.get) else "")
    fail(f"larger_at_output = {answer!r} has the smaller gradient norm at the last block in your run: "
         f"post {last['post']:.4g}, pre {last['pre']:.4g}.{at_input}",
         f"take the placement with the larger depth['grad_norms'][p][-1] (the last entries): here {best!r}.")


@check
def check_output_grad_factor(output_grad_factor, depth) -> None:
    """Post-norm's gradient norm at the last block divided by pre-norm's, from the run (0.1 %)."""
    value = _positive(output_grad_factor, "output_grad_factor")
    post, pre = _series(depth, "grad_norms", "post"), _series(depth, "grad_norms", "pre")
    expected = post[-1] / pre[-1]
    if math.isclose(value, expected, rel_tol=1e-3):
        return
    known = [
        (1 / expected, "is the inverse ratio: pre-norm's gradient over post-norm's.",
         "divide the post-norm value by the pre-norm value."),
        (post[0] / pre[0], "is the ratio at the first block (next to the input), not the last.",
         "use the last entries, depth['grad_norms'][p][-1]."),
        (sum(post) / sum(pre), "is the ratio of the means over all blocks, not at the last block.",
         "use the last entries only, depth['grad_norms'][p][-1]."),
        (post[-1] / post[0], "is post-norm's last block over its first block, not post over pre.",
         "divide depth['grad_norms']['post'][-1] by depth['grad_norms']['pre'][-1]."),
        (pre[0] / pre[-1], "is pre-norm's first block over its last block, not post over pre.",
         "divide depth['grad_norms']['post'][-1] by depth['grad_norms']['pre'][-1]."),
    ]
    for candidate, mistake, fix in known:
        if math.isclose(value, candidate, rel_tol=1e-3):
            fail(f"output_grad_factor = {value:.4g} {mistake}", fix)
    fail(f"output_grad_factor = {value:.4g} is not post / pre at the last block of your run ({expected:.4g} "
         "would be).", "output_grad_factor = depth['grad_norms']['post'][-1] / depth['grad_norms']['pre'][-1].")


@check
def check_stream_growth(stream_growth, depth) -> None:
    """The pre-norm residual stream's RMS after the last block over its RMS at the input, from the run."""
    value = _positive(stream_growth, "stream_growth")
    pre, post = _series(depth, "stream_rms", "pre"), _series(depth, "stream_rms", "post")
    expected = pre[-1] / pre[0]
    if math.isclose(value, expected, rel_tol=1e-3):
        return
    known = [
        (post[-1] / post[0], "is the growth of the post-norm stream, which every block renormalises.",
         "use depth['stream_rms']['pre']."),
        (1 / expected, "is the inverse ratio: the input over the output.",
         "divide the RMS after the last block by the RMS at the input."),
        (pre[-1] / pre[1], "divides by the RMS after the first block, not at the input.",
         "depth['stream_rms']['pre'][0] is the input (before block 0)."),
        (pre[-1], "is the RMS after the last block, not divided by the RMS at the input.",
         "divide by depth['stream_rms']['pre'][0]."),
    ]
    for candidate, mistake, fix in known:
        if math.isclose(value, candidate, rel_tol=1e-3) and not math.isclose(candidate, expected, rel_tol=1e-3):
            fail(f"stream_growth = {value:.4g} {mistake}", fix)
    fail(f"stream_growth = {value:.4g} is not the growth of your run's pre-norm stream ({expected:.4g} would be).",
         "stream_growth = depth['stream_rms']['pre'][-1] / depth['stream_rms']['pre'][0].")
