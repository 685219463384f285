"""Focal losses: softmax (attention branch), sigmoid, and the CTC variant.

Focal loss (https://arxiv.org/abs/1708.02002) scales each example's loss by
``(1 - p_t)^gamma``, so well-classified examples (p_t near 1) count less and
training concentrates on hard ones; ``gamma = 0`` gives back the plain loss.
The CTC variant (https://doi.org/10.1155/2019/3152870) applies the same factor
to whole utterances with ``p = exp(-ctc_loss)``.
"""

from typing import Literal, Optional, Union

import torch
import torch.nn.functional as F

from asrk2.losses.ctc import reduce_losses
from asrk2.losses.label_smoothing import flatten_targets, reduce_positions
from asrk2.model.decoder import IGNORE_ID

__all__ = ["focal_loss", "sigmoid_focal_loss", "ctc_focal_loss"]

Reduction = Literal["sum", "mean", "none"]
# Floor of the focal base 1 - p: d/dx x^gamma is infinite at 0 for gamma < 1,
# and below the floor the clamp passes a zero gradient instead.
_TINY = 1e-12


def _check_gamma(gamma: float) -> None:
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: Optional[Union[float, torch.Tensor]] = None,
    label_smoothing: float = 0.0,
    ignore_index: int = IGNORE_ID,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """Softmax focal loss ``-alpha_y (1 - p_y)^gamma log p_y``.

    With label smoothing the focal factor scales the smoothed cross-entropy of
    :func:`asrk2.losses.label_smoothing.label_smoothing_loss`.

    Args:
      logits: (N, U, V) or (M, V) unnormalised scores.
      targets: (N, U) or (M,) class ids; ``ignore_index`` marks padding.
      gamma: focusing parameter >= 0; 0 gives (smoothed) cross-entropy.
      alpha: class weights: a float for all classes, a (V,) tensor per class,
        or None for 1.
      label_smoothing: eps in [0, 1).
      ignore_index: target id that contributes no loss.
      reduction: ``sum``/``mean`` over valid positions, or ``none``.
    Returns:
      A scalar, or per-position losses shaped like ``targets``; float32.
    """
    _check_gamma(gamma)
    flat, tgt, valid = flatten_targets(logits, targets, ignore_index)
    logp = flat.log_softmax(dim=-1)
    logp_t = logp.gather(1, tgt.unsqueeze(1)).squeeze(1)
    ce = -(1.0 - label_smoothing) * logp_t - label_smoothing * logp.mean(dim=-1)
    # -expm1(log p) = 1 - p, accurate when p is close to 1.
    losses = ce if gamma == 0 else (-torch.expm1(logp_t)).clamp(min=_TINY) ** gamma * ce
    if alpha is not None:
        if isinstance(alpha, torch.Tensor):
            losses = losses * alpha.to(losses.device, losses.dtype)[tgt]
        else:
            losses = losses * alpha
    return reduce_positions(losses, valid, targets.shape, reduction)


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: float = -1.0,
    label_smoothing: float = 0.0,
    ignore_index: int = IGNORE_ID,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """One-vs-all sigmoid focal loss over classes, as in RetinaNet.

    Every class is a binary problem with target ``y_c`` (1 for the true class),
    smoothed to ``y_c (1 - eps) + eps / 2``. Per class the loss is
    ``alpha_t (1 - p_t)^gamma BCE(logit_c, y_c)`` with ``p_t = p y + (1-p)(1-y)``
    and ``alpha_t = alpha y + (1 - alpha)(1 - y)``, summed over classes.

    Args:
      logits: (N, U, V) or (M, V) unnormalised scores.
      targets: (N, U) or (M,) class ids; ``ignore_index`` marks padding.
      gamma: focusing parameter >= 0; 0 with ``alpha < 0`` gives plain BCE.
      alpha: weight of positives in [0, 1]; < 0 disables the weighting.
      label_smoothing: eps in [0, 1).
      ignore_index: target id that contributes no loss.
      reduction: ``sum``/``mean`` over valid positions, or ``none``.
    Returns:
      A scalar, or per-position losses shaped like ``targets``; float32.
    """
    _check_gamma(gamma)
    flat, tgt, valid = flatten_targets(logits, targets, ignore_index)
    y = F.one_hot(tgt, flat.size(-1)).to(flat.dtype)
    y = y * (1.0 - label_smoothing) + 0.5 * label_smoothing
    bce = F.binary_cross_entropy_with_logits(flat, y, reduction="none")
    if gamma != 0:
        p = flat.sigmoid()
        p_t = p * y + (1.0 - p) * (1.0 - y)
        bce = (1.0 - p_t).clamp(min=_TINY) ** gamma * bce
    if alpha >= 0:
        bce = (alpha * y + (1.0 - alpha) * (1.0 - y)) * bce
    return reduce_positions(bce.sum(dim=-1), valid, targets.shape, reduction)


def ctc_focal_loss(
    nll: torch.Tensor,
    gamma: float = 2.0,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """Scales per-utterance CTC losses by ``(1 - p)^gamma``, ``p = exp(-nll)``.

    Args:
      nll: per-utterance CTC losses (N,), e.g. ``k2_ctc_loss(reduction="none")``.
      gamma: focusing parameter >= 0; 0 returns the CTC loss unchanged.
      reduction: ``sum``, ``mean`` or ``none`` over utterances.
    Returns:
      A scalar or (N,).
    """
    _check_gamma(gamma)
    if gamma != 0:
        # 1 - exp(-nll) via expm1, exact for the small losses of easy utterances.
        nll = (-torch.expm1(-nll)).clamp(min=_TINY) ** gamma * nll
    return reduce_losses(nll, reduction)
