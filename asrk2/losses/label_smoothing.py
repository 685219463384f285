"""Cross-entropy with label smoothing for the attention decoder.

The target distribution is ``(1 - eps) * one_hot(y) + eps / V`` (uniform over
all V classes), which is what ``torch.nn.functional.cross_entropy`` does with
``label_smoothing=eps`` (https://arxiv.org/abs/1512.00567, section 7), so
the loss is ``(1 - eps) * -log p_y + eps * mean_c(-log p_c)``.
"""

from typing import Literal, Tuple

import torch

from asrk2.model.decoder import IGNORE_ID

__all__ = ["flatten_targets", "label_smoothing_loss"]

Reduction = Literal["sum", "mean", "none"]


def flatten_targets(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattens (N, U, V) logits and (N, U) targets, keeping the batch shape.

    Args:
      logits: (..., V) unnormalised scores.
      targets: class ids with the shape of ``logits`` minus its last dim.
      ignore_index: targets with this id are masked out.
    Returns:
      ``(logits (M, V) as float32, targets (M,) with ignored ids set to 0,
      valid (M,) bool)``, M the number of positions.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} "
            "disagree"
        )
    flat = logits.reshape(-1, logits.size(-1)).float()
    tgt = targets.reshape(-1)
    valid = tgt != ignore_index
    return flat, tgt.masked_fill(~valid, 0), valid


def reduce_positions(
    losses: torch.Tensor, valid: torch.Tensor, shape: torch.Size, reduction: str
) -> torch.Tensor:
    """Sum/mean over valid positions, or the (masked) per-position losses."""
    losses = losses * valid
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.sum() / valid.sum().clamp(min=1)
    if reduction == "none":
        return losses.reshape(shape)
    raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")


def label_smoothing_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    smoothing: float = 0.1,
    ignore_index: int = IGNORE_ID,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """Label-smoothed cross-entropy.

    Args:
      logits: (N, U, V) or (M, V) unnormalised scores.
      targets: (N, U) or (M,) class ids; ``ignore_index`` marks padding.
      smoothing: eps in [0, 1); 0 gives plain cross-entropy.
      ignore_index: target id that contributes no loss.
      reduction: ``sum`` or ``mean`` over valid positions, or ``none`` for a
        tensor shaped like ``targets`` (0 at ignored positions).
    Returns:
      A scalar, or per-position losses; float32.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    flat, tgt, valid = flatten_targets(logits, targets, ignore_index)
    logp = flat.log_softmax(dim=-1)
    nll = -logp.gather(1, tgt.unsqueeze(1)).squeeze(1)
    losses = (1.0 - smoothing) * nll - smoothing * logp.mean(dim=-1)
    return reduce_positions(losses, valid, targets.shape, reduction)
