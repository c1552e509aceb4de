"""Visible checks for assignment 04-batchnorm: ``batch_norm``, ``BatchNorm``, ``identity_affine``,
``LeNetBN``, ``batch_norm_backward``, ``BatchNormFunction`` and the two questions on the run
(hidden checks: ``grader/hidden/batchnorm.py``).

The references are PyTorch's own ``torch.nn.functional.batch_norm`` and ``nn.BatchNorm1d/2d/3d``
(and autograd through them for the backward pass), run in float64 on probe inputs with different
means and scales per channel (one channel with a tiny variance, so that where ``eps`` sits
matters). When an answer differs, the check computes
the outputs of the typical mistakes on the same input and names the one that matches.

One module per exercise group: ``functional`` (``batch_norm``), ``layer`` (``BatchNorm``,
``identity_affine``, ``LeNetBN``), ``backward`` (``batch_norm_backward``,
``BatchNormFunction``), ``questions``, and ``_shared`` (probes and the typical mistakes'
outputs). This package re-exports every check, so test cells keep importing
``from grader.checks.batchnorm import check_...``; the hidden checks import the helpers they
reuse from the modules.
"""
from .backward import check_batch_norm_backward, check_BatchNormFunction
from .functional import check_batch_norm_eval, check_batch_norm_running_stats, check_batch_norm_training
from .layer import check_BatchNorm, check_BatchNorm_state_dict, check_identity_affine, check_LeNetBN
from .questions import check_first_layer_moved, check_largest_lr_bn

__all__ = [
    "check_batch_norm_training", "check_batch_norm_running_stats", "check_batch_norm_eval",
    "check_BatchNorm", "check_BatchNorm_state_dict", "check_identity_affine", "check_LeNetBN",
    "check_batch_norm_backward", "check_BatchNormFunction",
    "check_largest_lr_bn", "check_first_layer_moved",
]
