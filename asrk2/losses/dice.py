"""Soft dice loss over token posteriors (V-Net form).

For one sequence with posteriors ``P`` (U, V) and one-hot targets ``Y`` (U, V)
the dice coefficient is ``(2 sum P*Y + s) / (sum P^2 + sum Y^2 + s)``
(https://arxiv.org/abs/1606.04797, eq. 1, with smoothing ``s``) and the loss is
``1 - dice``. It measures the overlap of the predicted and true token sets, so
it does not grow with the length of the sequence the way cross-entropy does and
pushes the probability mass of absent tokens to zero. Perfect one-hot
predictions give exactly 0.
"""

from typing import Literal

import torch
import torch.nn.functional as F

from asrk2.losses.ctc import reduce_losses
from asrk2.model.decoder import IGNORE_ID

__all__ = ["dice_loss"]


def dice_loss(
    probs: torch.Tensor,
    targets: torch.Tensor,
    ignore_index: int = IGNORE_ID,
    smooth: float = 1.0,
    reduction: Literal["sum", "mean", "none"] = "sum",
) -> torch.Tensor:
    """Per-sequence soft dice loss.

    Args:
      probs: posteriors (N, U, V) (rows sum to 1), or (U, V) for one sequence;
        pass ``logits.softmax(-1)``.
      targets: class ids (N, U) or (U,); ``ignore_index`` marks padding.
      ignore_index: positions with this target count neither in P nor in Y.
      smooth: s > 0; keeps empty sequences at loss 0 and the gradient finite.
      reduction: ``sum``/``mean`` over sequences, or ``none`` for (N,).
    Returns:
      A scalar, or (N,) losses in [0, 1]; float32.
    """
    if smooth <= 0:
        raise ValueError(f"smooth must be > 0, got {smooth}")
    if probs.dim() == 2:
        probs, targets = probs.unsqueeze(0), targets.unsqueeze(0)
    if probs.shape[:-1] != targets.shape:
        raise ValueError(
            f"probs {tuple(probs.shape)} and targets {tuple(targets.shape)} disagree"
        )
    probs = probs.float()
    valid = (targets != ignore_index).unsqueeze(-1).to(probs.dtype)  # (N, U, 1)
    onehot = F.one_hot(targets.clamp(min=0), probs.size(-1)).to(probs.dtype)
    probs, onehot = probs * valid, onehot * valid
    inter = (probs * onehot).sum(dim=(1, 2))
    denom = (probs * probs).sum(dim=(1, 2)) + onehot.sum(dim=(1, 2))
    losses = 1.0 - (2.0 * inter + smooth) / (denom + smooth)
    return reduce_losses(losses, reduction)
