"""Visible checks for the blocks of assignment 06-transformer-norms: ``ResidualBlock`` and
``Encoder`` (the norms are checked in ``grader.checks.transformer_norms``).

The reference is PyTorch's ``nn.TransformerEncoderLayer`` (``dropout=0.0``, ``batch_first``,
``norm_first`` for pre-norm; for ``norm="rms"`` its two norms replaced by
``nn.RMSNorm(d_model, eps=1e-5)``) and ``nn.TransformerEncoder``, in float64, in training mode
(dropout is 0, and training mode keeps PyTorch off its fused inference path), with every
parameter drawn at random, the norms' weights included, so that two norms cannot pass for one.
The student's module must have the reference's ``state_dict`` keys; the reference's weights are
loaded into it and the outputs compared. A wrong output is matched against the typical
misplacements of the norm (post-norm as ``x + norm(f(x))``, the skip path normalised, one norm
for both sublayers, the other placement, LayerNorm for ``"rms"`` ...), computed with the
reference's own modules.
"""
from __future__ import annotations

import torch
from torch import nn

from ._common import call, check, fail, generator

_DTYPE = torch.float64


def _reference(d, heads, d_ff, norm, placement, seed):
    torch.manual_seed(seed)  # the check's decorator restores the global generator afterwards
    ref = nn.TransformerEncoderLayer(d, heads, d_ff, dropout=0.0, batch_first=True,
                                     norm_first=(placement == "pre"))
    if norm == "rms":
        ref.norm1, ref.norm2 = nn.RMSNorm(d, eps=1e-5), nn.RMSNorm(d, eps=1e-5)
    _randomise(ref, seed)
    return ref.to(_DTYPE).train()


def _randomise(module, seed):
    g = generator(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)


def _parts(ref):
    def sa(h):
        return ref.self_attn(h, h, h, need_weights=False)[0]

    def ff(h):
        return ref.linear2(torch.relu(ref.linear1(h)))

    return sa, ff, ref.norm1, ref.norm2


def _forward(ref, x, kind):
    """The output of a block built from ref's modules, correct or with a typical mistake."""
    sa, ff, n1, n2 = _parts(ref)
    if kind == "post":
        x = n1(x + sa(x))
        return n2(x + ff(x))
    if kind == "pre":
        x = x + sa(n1(x))
        return x + ff(n2(x))
    if kind == "post_outside":        # x + norm(f(x))
        x = x + n1(sa(x))
        return x + n2(ff(x))
    if kind == "pre_skip_normed":     # norm(x) + f(norm(x))
        h = n1(x)
        x = h + sa(h)
        h = n2(x)
        return h + ff(h)
    if kind == "pre_shared":
        x = x + sa(n1(x))
        return x + ff(n1(x))
    if kind == "post_shared":
        x = n1(x + sa(x))
        return n1(x + ff(x))
    if kind == "pre_shared2":
        x = x + sa(n2(x))
        return x + ff(n2(x))
    if kind == "post_shared2":
        x = n2(x + sa(x))
        return n2(x + ff(x))
    if kind == "gelu":
        post = not ref.norm_first
        ffg = lambda h: ref.linear2(torch.nn.functional.gelu(ref.linear1(h)))  # noqa: E731
        if post:
            x = n1(x + sa(x))
            return n2(x + ffg(x))
        x = x + sa(n1(x))
        return x + ffg(n2(x))
    raise ValueError(kind)


_KINDS = {
    "post_outside": ("post-norm is written as x + norm(f(x)): the norm is applied to the sublayer's "
                     "output only, and the sum, the residual stream, is never normalised.",
                     "post-norm normalises the sum: x = norm1(x + sa(x)), then x = norm2(x + ff(x))."),
    "pre_skip_normed": ("the skip path is normalised too: x = norm(x) + f(norm(x)). In pre-norm the "
                        "residual connection carries x itself, untouched; only the sublayer's input "
                        "is normalised.",
                        "x = x + sa(norm1(x)), then x = x + ff(norm2(x)): add the sublayer's output to "
                        "the x that came in, not to its normalised copy."),
    "pre_shared": ("one norm is shared by both sublayers: norm1 is used before the feed-forward too. "
                   "Each sublayer has its own norm with its own weights.",
                   "use norm1 around attention and norm2 around the feed-forward."),
    "post_shared": ("one norm is shared by both sublayers: norm1 is used after the feed-forward too. "
                    "Each sublayer has its own norm with its own weights.",
                    "use norm1 around attention and norm2 around the feed-forward."),
    "pre_shared2": ("one norm is shared by both sublayers (norm2 around attention as well).",
                    "use norm1 around attention and norm2 around the feed-forward."),
    "post_shared2": ("one norm is shared by both sublayers (norm2 after attention as well).",
                     "use norm1 around attention and norm2 around the feed-forward."),
    "gelu": ("the feed-forward uses GELU; nn.TransformerEncoderLayer's default activation is ReLU.",
             "ff(h) = linear2(torch.relu(linear1(h)))."),
}


def _close(a, b) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and bool(
        torch.allclose(a.detach().to(_DTYPE), b.detach(), rtol=1e-7, atol=1e-9))


def _keys(module, what) -> list:
    return sorted(call(module.state_dict, _what=f"{what}.state_dict()").keys())


def _compare_keys(keys, ref_keys, what, reference, norm):
    if keys == ref_keys:
        return
    missing, extra = sorted(set(ref_keys) - set(keys)), sorted(set(keys) - set(ref_keys))
    if norm == "rms" and any(k.endswith("norm1.bias") or k.endswith("norm2.bias") for k in extra):
        fail(f"{what} has norms with a bias ({', '.join(extra)}): with norm='rms' the norms are "
             "RMSNorm, which has a weight only; this looks like LayerNorm.",
             "build norm1 and norm2 as RMSNorm(d_model, eps=1e-5) when norm == 'rms'.")
    if any(k.endswith("norm2.weight") for k in missing) and not any("norm2" in k for k in keys):
        fail(f"{what} has no norm2 (state_dict keys {keys[:12]}...): one norm shared by both "
             "sublayers. Each sublayer of a transformer block has its own norm, with its own weights.",
             "create two norms, self.norm1 (around attention) and self.norm2 (around the feed-forward).")
    fail(f"{what}'s state_dict does not have the keys of {reference}: missing {missing[:6]}, "
         f"unexpected {extra[:6]}. Its weights cannot be loaded into your module.",
         "name the submodules exactly self_attn, linear1, linear2, norm1, norm2 (nn.MultiheadAttention, "
         "nn.Linear, and the norms), with nothing else that has parameters or buffers.")


def _block(ResidualBlock, d, heads, d_ff, norm, placement, what):
    kwargs = {"norm": norm, "placement": placement}
    block = call(ResidualBlock, d, heads, d_ff, _what=what, **kwargs)
    if not isinstance(block, nn.Module):
        fail(f"{what} is not a torch.nn.Module.", "write class ResidualBlock(nn.Module) and call super().__init__().")
    if isinstance(block, nn.TransformerEncoderLayer):
        fail(f"{what} is PyTorch's nn.TransformerEncoderLayer (a subclass of it): the exercise is to "
             "write the block.", "subclass nn.Module and write forward yourself.")
    return block


def block_case(ResidualBlock, placement, norm="layer", d=16, heads=2, d_ff=32, seed=700, shape=(3, 5)):
    """Build the student's block, load the reference's weights, compare outputs; name the
    misplacement the output matches."""
    what = f"ResidualBlock({d}, {heads}, {d_ff}, norm={norm!r}, placement={placement!r})"
    block = _block(ResidualBlock, d, heads, d_ff, norm, placement, what)
    ref = _reference(d, heads, d_ff, norm, placement, seed)
    reference = ("nn.TransformerEncoderLayer(..., norm_first=" + str(placement == "pre") + ")"
                 + (" with nn.RMSNorm norms" if norm == "rms" else ""))
    _compare_keys(_keys(block, what), sorted(ref.state_dict().keys()), what, reference, norm)
    call(block.to, _DTYPE, _what=f"{what}.to(torch.float64)")
    call(block.load_state_dict, ref.state_dict(), _what=f"{what}.load_state_dict(the reference's weights)")
    call(block.train, _what=f"{what}.train()")
    x = torch.randn(shape + (d,), generator=generator(seed + 1), dtype=_DTYPE)
    xs = x.clone()
    out = call(block, xs, _what=f"{what}(x of shape {list(x.shape)})")
    if not torch.equal(xs, x):
        fail(f"{what} modified its input x in place.", "x = x + ... creates a new tensor; x += ... does not.")
    with torch.no_grad():
        expected = _forward(ref, x, placement)
    if isinstance(out, torch.Tensor) and _close(out, expected):
        return
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        fail(f"{what} returned {type(out).__name__}"
             + (f" of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else "")
             + f" for x of shape {tuple(x.shape)}.",
             "return a tensor of x's shape (self_attn(h, h, h, need_weights=False)[0] is the output "
             "of attention; [1] would be its weights).")
    other = "pre" if placement == "post" else "post"
    with torch.no_grad():
        if _close(out, _forward(ref, x, other)):
            fail(f"{what} computes the {other}-norm block: placement={placement!r} is ignored or swapped.",
                 "post: x = norm1(x + sa(x)); x = norm2(x + ff(x)). pre: x = x + sa(norm1(x)); "
                 "x = x + ff(norm2(x)).")
        for kind, (mistake, fix) in _KINDS.items():
            if _close(out, _forward(ref, x, kind)):
                fail(f"{what}: {mistake}", fix)
        if norm == "rms":
            alt = _reference(d, heads, d_ff, "rms", placement, seed)
            alt.norm1.eps = alt.norm2.eps = None
            if _close(out, _forward(alt, x, placement)):
                fail(f"{what}: its RMSNorms use the default eps (None, the dtype's finfo eps) instead "
                     "of 1e-5, the eps of nn.TransformerEncoderLayer's norms.",
                     "build the norms as RMSNorm(d_model, eps=1e-5).")
    cascade = (" (With norm='rms' the block uses your RMSNorm: if its tests or rms_norm's fail too, "
               "fix them first.)" if norm == "rms" else "")
    fail(f"{what} differs from {reference} with the same weights (largest difference "
         f"{(out.detach().to(_DTYPE) - expected).abs().max().item():.3g}), and not in a way the check "
         f"recognises.{cascade}",
         "sa(h) = self_attn(h, h, h, need_weights=False)[0], ff(h) = linear2(relu(linear1(h))); "
         "post: x = norm1(x + sa(x)), x = norm2(x + ff(x)); pre: x = x + sa(norm1(x)), "
         "x = x + ff(norm2(x)).")


@check
def check_ResidualBlock_post(ResidualBlock) -> None:
    """placement='post' equals nn.TransformerEncoderLayer(norm_first=False) with copied weights."""
    block_case(ResidualBlock, "post")
    block_case(ResidualBlock, "post", d=12, heads=3, d_ff=20, seed=710, shape=(2, 7))


@check
def check_ResidualBlock_pre(ResidualBlock) -> None:
    """placement='pre' equals nn.TransformerEncoderLayer(norm_first=True) with copied weights."""
    block_case(ResidualBlock, "pre")
    block_case(ResidualBlock, "pre", d=12, heads=3, d_ff=20, seed=720, shape=(2, 7))


# --------------------------------------------------------------------------------------------
# Encoder

_CASCADE = ("(An Encoder of your ResidualBlocks inherits their mistakes: if the ResidualBlock tests "
            "fail too, fix them first.)")


def encoder_case(Encoder, placement, norm="layer", d=16, heads=2, d_ff=32, n_layers=3, seed=750):
    what = f"Encoder({d}, {heads}, {d_ff}, {n_layers}, norm={norm!r}, placement={placement!r})"
    enc = call(Encoder, d, heads, d_ff, n_layers, _what=what, norm=norm, placement=placement)
    if not isinstance(enc, nn.Module):
        fail(f"{what} is not a torch.nn.Module.", "write class Encoder(nn.Module) and call super().__init__().")
    if isinstance(enc, nn.TransformerEncoder):
        fail(f"{what} is PyTorch's nn.TransformerEncoder: the exercise is to write the stack.",
             "subclass nn.Module, keep the blocks in an nn.ModuleList named layers.")
    layers = [_reference(d, heads, d_ff, norm, placement, seed + i) for i in range(n_layers)]
    final = None
    if placement == "pre":
        final = nn.LayerNorm(d) if norm == "layer" else nn.RMSNorm(d, eps=1e-5)
        _randomise(final, seed + 99)
        final = final.to(_DTYPE)
    state = {f"layers.{i}.{k}": v for i, layer in enumerate(layers) for k, v in layer.state_dict().items()}
    if final is not None:
        state.update({f"norm.{k}": v for k, v in final.state_dict().items()})
    keys, ref_keys = _keys(enc, what), sorted(state)
    if keys != ref_keys:
        missing, extra = sorted(set(ref_keys) - set(keys)), sorted(set(keys) - set(ref_keys))
        if placement == "pre" and missing and all(k.startswith("norm.") for k in missing):
            fail(f"{what} has no final norm (state_dict lacks {missing}): a pre-norm stack without its "
                 "final norm hands the output layer the raw residual stream, which nothing has "
                 "normalised and which grows with depth.",
                 "add self.norm = nn.LayerNorm(d_model) (RMSNorm(d_model, eps=1e-5) for norm='rms') for "
                 "placement='pre' and apply it after the last block.")
        if placement == "post" and extra and all(k.startswith("norm.") for k in extra):
            fail(f"{what} has a final norm (state_dict has {extra}): every post-norm block already ends "
                 "with a norm, so nn.TransformerEncoder's post-norm stack has none.",
                 "self.norm = None for placement='post'; the final norm belongs to pre-norm stacks only.")
        fail(f"{what}'s state_dict does not have nn.TransformerEncoder's keys: missing {missing[:6]}, "
             f"unexpected {extra[:6]}. {_CASCADE}",
             "keep the blocks in nn.ModuleList `layers` (self.layers[i] a ResidualBlock) and the final "
             "norm in `norm`.")
    call(enc.to, _DTYPE, _what=f"{what}.to(torch.float64)")
    call(enc.load_state_dict, state, _what=f"{what}.load_state_dict(the reference's weights)")
    call(enc.train, _what=f"{what}.train()")
    x = torch.randn(2, 6, d, generator=generator(seed + 1), dtype=_DTYPE)
    out = call(enc, x.clone(), _what=f"{what}(x of shape {list(x.shape)})")
    with torch.no_grad():
        h = x
        for layer in layers:
            h = _forward(layer, h, placement)
        expected = h if final is None else final(h)
    if _close(out, expected):
        return
    if final is not None and _close(out, h):
        fail(f"{what} returns the residual stream after the last block without its final norm: "
             "self.norm exists but forward never applies it.",
             "return self.norm(x) after the loop over the blocks (pre-norm).")
    if final is not None and isinstance(out, torch.Tensor) and out.shape == expected.shape:
        with torch.no_grad():
            h2 = final(x)
            for layer in layers:
                h2 = _forward(layer, h2, placement)
        if _close(out, h2):
            fail(f"{what} applies the final norm before the first block instead of after the last.",
                 "loop over self.layers first, then return self.norm(x).")
    fail(f"{what} differs from nn.TransformerEncoder with the same weights. {_CASCADE}",
         "forward: x = layer(x) for every block of self.layers, then self.norm(x) when it is not None.")


@check
def check_Encoder(Encoder) -> None:
    """A pre-norm LayerNorm stack equals nn.TransformerEncoder(..., norm=nn.LayerNorm(d)) with copied weights."""
    encoder_case(Encoder, "pre")
