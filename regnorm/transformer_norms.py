"""Helpers for 06-transformer-norms: deep stacks of PyTorch's transformer encoder layers at
initialisation (the gradient of each block and the size of the residual stream, pre-norm
against post-norm, as in Xiong et al. 2020), and rows whose mean grows (RMSNorm against
LayerNorm)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PLACEMENTS = ("pre", "post")


def encoder_stack(placement: str, n_layers: int, d_model: int, n_heads: int, d_ff: int,
                  seed: int) -> tuple[nn.ModuleList, nn.Module]:
    """``n_layers`` ``nn.TransformerEncoderLayer`` blocks (ReLU, no dropout, batch first) with
    the norm after (``"post"``) or before (``"pre"``) each sublayer, and the final norm a
    pre-norm stack needs (``nn.Identity`` for post-norm, whose blocks end with a norm).

    The weight matrices are Xavier-uniform and the biases zero, as in Xiong et al. (2020);
    PyTorch's default initialisation of ``nn.Linear`` is smaller, so that each sublayer adds
    little to the residual stream and the effects below need more blocks to show."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be 'pre' or 'post', got {placement!r}")
    torch.manual_seed(seed)
    layers = nn.ModuleList(
        nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True,
                                   norm_first=(placement == "pre"))
        for _ in range(n_layers))
    for layer in layers:
        for name, p in layer.named_parameters():
            if p.dim() == 2:
                nn.init.xavier_uniform_(p)
            elif "norm" not in name:
                nn.init.zeros_(p)
    final = nn.LayerNorm(d_model) if placement == "pre" else nn.Identity()
    return layers, final


def _one_init(placement, seed, n_layers, d_model, n_heads, d_ff, batch, seq, classes):
    layers, final = encoder_stack(placement, n_layers, d_model, n_heads, d_ff, seed)
    g = torch.Generator().manual_seed(10_000 + seed)
    x = torch.randn(batch, seq, d_model, generator=g)
    y = torch.randint(0, classes, (batch, seq), generator=g)
    head = nn.Linear(d_model, classes)
    rms = [x.pow(2).mean().sqrt().item()]
    h = x
    for layer in layers:
        h = layer(h)
        rms.append(h.pow(2).mean().sqrt().item())
    loss = F.cross_entropy(head(final(h)).flatten(0, 1), y.flatten())
    loss.backward()
    grads = [layer.linear2.weight.grad.norm().item() for layer in layers]
    return grads, rms


def depth_probe(n_layers: int = 12, d_model: int = 64, n_heads: int = 4, d_ff: int = 256,
                inits: int = 3, batch: int = 8, seq: int = 32, classes: int = 16,
                seed: int = 0) -> dict:
    """One forward and backward pass at initialisation through a pre-norm and a post-norm
    stack, for ``inits`` random initialisations each (copy ``s`` of both placements starts
    from the same random input and labels; the loss is the cross-entropy of a linear head on
    random labels).

    Returns plain numbers (lists of floats), averaged over the initialisations:
    ``grad_norms[placement][l]`` the norm of the gradient of block ``l``'s second
    feed-forward weight (``linear2.weight``, Xiong et al.'s W^2), blocks numbered from the
    input; ``stream_rms[placement][l]`` the root mean square of the residual stream before
    block 0 (``l = 0``) and after block ``l - 1``; ``per_init`` the same before averaging."""
    out = {"n_layers": n_layers, "inits": inits, "grad_norms": {}, "stream_rms": {},
           "per_init": {}}
    for placement in PLACEMENTS:
        runs = [_one_init(placement, seed * 1000 + s, n_layers, d_model, n_heads, d_ff, batch,
                          seq, classes) for s in range(inits)]
        grads = torch.tensor([r[0] for r in runs], dtype=torch.float64)
        rms = torch.tensor([r[1] for r in runs], dtype=torch.float64)
        out["grad_norms"][placement] = grads.mean(0).tolist()
        out["stream_rms"][placement] = rms.mean(0).tolist()
        out["per_init"][placement] = {"grad_norms": grads.tolist(), "stream_rms": rms.tolist()}
    return out


def rows_with_mean(means, d: int = 32, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """One row of ``d`` features per value of ``means``: the same pattern ``z`` (mean exactly 0,
    root mean square exactly 1) plus that mean, ``x_m = m + z``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(d, generator=g, dtype=torch.float64)
    z = z - z.mean()
    z = z / z.pow(2).mean().sqrt()
    m = torch.as_tensor(list(means), dtype=torch.float64)[:, None]
    return (m + z).to(dtype)
