"""The training objective: CTC, attention and LF-MMI losses mixed by weight.

``total = ctc_weight * ctc + att_weight * (att + dice_weight * dice)
+ mmi_weight * mmi``, every part a sum over the batch (tokens for the
attention loss, utterances otherwise); the trainer divides by the number of
encoder frames. By default ``att_weight = 1 - ctc_weight - mmi_weight``
(WeNet's convention), so ``ctc_weight: 1`` trains CTC alone and drops the
attention decoder. With a right-to-left decoder, ``att`` is
``(1 - reverse_weight) * att_l2r + reverse_weight * att_r2l``.

The whole computation sits in :class:`LossModule`'s ``forward`` because
DistributedDataParallel synchronises gradients only for work done inside the
``forward`` of the module it wraps.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, cast

import k2
import torch
from torch import nn

from asrk2.lang.graph_compiler import CtcTrainingGraphCompiler
from asrk2.losses.ctc import k2_ctc_loss
from asrk2.losses.dice import dice_loss
from asrk2.losses.focal import ctc_focal_loss, focal_loss, sigmoid_focal_loss
from asrk2.losses.label_smoothing import label_smoothing_loss
from asrk2.losses.mmi import LfMmiLoss, MmiOptions
from asrk2.model.ctc_model import CtcModel
from asrk2.model.decoder import (
    IGNORE_ID,
    SOS_EOS_ID,
    AttentionDecoder,
    add_sos_eos,
    reversed_tokens,
)

__all__ = ["LossConfig", "LossModule"]


@dataclass
class LossConfig:
    """Which losses are trained and how they are weighted.

    Attributes:
      ctc_weight: weight of the k2 CTC loss.
      att_weight: weight of the attention decoder loss; None (default) means
        ``max(0, 1 - ctc_weight - mmi_weight)``. The decoder exists iff > 0.
      mmi_weight: weight of the k2 LF-MMI loss.
      att_loss: the attention loss: ``label_smoothing`` cross-entropy,
        softmax ``focal`` or ``sigmoid_focal`` (both with label smoothing).
      label_smoothing: eps of the attention losses.
      focal_gamma: gamma of the focal attention losses.
      focal_alpha: sigmoid focal: weight of positives in [0, 1] (< 0: none);
        softmax focal: a global scale when >= 0.
      ctc_focal_gamma: > 0 scales each utterance's CTC loss by (1 - p)^gamma.
      dice_weight: adds ``dice_weight *`` soft dice over the decoder's
        posteriors to the attention loss.
      dice_smooth: smoothing constant of the dice loss.
      reverse_weight: share of the right-to-left decoder in the attention
        loss, ``(1 - w) * l2r + w * r2l`` (WeNet's U2++); > 0 needs
        ``model.decoder.num_r2l_layers > 0``.
      mmi: options of the LF-MMI loss (used when ``mmi_weight > 0``).
    """

    ctc_weight: float = 1.0
    att_weight: Optional[float] = None
    mmi_weight: float = 0.0
    att_loss: Literal["label_smoothing", "focal", "sigmoid_focal"] = "label_smoothing"
    label_smoothing: float = 0.1
    focal_gamma: float = 2.0
    focal_alpha: float = -1.0
    ctc_focal_gamma: float = 0.0
    dice_weight: float = 0.0
    dice_smooth: float = 1.0
    reverse_weight: float = 0.0
    mmi: MmiOptions = field(default_factory=MmiOptions)

    def __post_init__(self) -> None:
        weights = (self.ctc_weight, self.attention_weight, self.mmi_weight)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"loss weights must be >= 0 with a positive sum, got ctc/att/mmi "
                f"= {weights}"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"label_smoothing must be in [0, 1): {self.label_smoothing}"
            )
        if not 0.0 <= self.reverse_weight < 1.0:
            raise ValueError(f"reverse_weight must be in [0, 1): {self.reverse_weight}")
        if self.reverse_weight > 0 and self.attention_weight == 0:
            raise ValueError(
                "reverse_weight > 0 needs the attention decoder (att_weight > 0)"
            )
        if self.dice_weight > 0 and self.attention_weight == 0:
            raise ValueError(
                "dice_weight > 0 needs the attention decoder (att_weight > 0)"
            )

    @property
    def attention_weight(self) -> float:
        """The resolved attention weight (``att_weight`` or its default)."""
        if self.att_weight is not None:
            return self.att_weight
        return max(0.0, 1.0 - self.ctc_weight - self.mmi_weight)


class LossModule(nn.Module):
    """Computes the weighted training loss of a batch from features and texts.

    Args:
      model: the acoustic model (with a decoder iff the attention weight > 0).
      config: weights and loss options.
      compiler: turns texts into token ids (and CTC graphs).
      mmi: the LF-MMI loss; required iff ``mmi_weight > 0``.
    """

    def __init__(
        self,
        model: CtcModel,
        config: LossConfig,
        compiler: CtcTrainingGraphCompiler,
        mmi: Optional[LfMmiLoss] = None,
    ) -> None:
        super().__init__()
        if (config.attention_weight > 0) != (model.decoder is not None):
            raise ValueError(
                f"attention weight {config.attention_weight} but the model has "
                f"{'a' if model.decoder is not None else 'no'} decoder; set "
                "model.decoder.num_layers > 0 exactly when att_weight > 0"
            )
        if (config.reverse_weight > 0) != (model.r2l_decoder is not None):
            raise ValueError(
                f"reverse_weight {config.reverse_weight} but the model has "
                f"{'a' if model.r2l_decoder is not None else 'no'} right-to-left "
                "decoder; set model.decoder.num_r2l_layers > 0 exactly when "
                "reverse_weight > 0"
            )
        if config.mmi_weight > 0 and mmi is None:
            raise ValueError("mmi_weight > 0 needs an LfMmiLoss")
        self.model = model
        self.config = config
        self.compiler = compiler
        self.mmi = mmi

    def _attention(
        self,
        encoder_out: torch.Tensor,
        out_lens: torch.Tensor,
        token_ids: List[List[int]],
    ) -> Dict[str, torch.Tensor]:
        """Attention loss (and dice) sums of a batch; with ``reverse_weight``
        the attention loss mixes in the right-to-left decoder's."""
        cfg = self.config
        decoder = self.model.decoder
        assert decoder is not None  # __init__: a decoder iff attention_weight > 0
        att, logits, ys_out = self._decoder_loss(
            decoder, encoder_out, out_lens, token_ids
        )
        if cfg.reverse_weight > 0:
            assert self.model.r2l_decoder is not None  # checked in __init__
            r2l_att, _, _ = self._decoder_loss(
                self.model.r2l_decoder, encoder_out, out_lens,
                reversed_tokens(token_ids),
            )  # fmt: skip
            att = (1 - cfg.reverse_weight) * att + cfg.reverse_weight * r2l_att
        parts = {"att": att}
        if cfg.dice_weight > 0:
            probs = logits.float().softmax(dim=-1)
            parts["dice"] = dice_loss(probs, ys_out, smooth=cfg.dice_smooth)
        return parts

    def _decoder_loss(
        self,
        decoder: AttentionDecoder,
        encoder_out: torch.Tensor,
        out_lens: torch.Tensor,
        token_ids: List[List[int]],
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder's attention loss sum, its logits (N, U+1, V) and targets."""
        cfg = self.config
        ys_in, ys_out, ys_lens = add_sos_eos(
            token_ids, SOS_EOS_ID, SOS_EOS_ID, IGNORE_ID, encoder_out.device
        )
        logits = decoder(encoder_out, out_lens, ys_in, ys_lens)
        if cfg.att_loss == "label_smoothing":
            att = label_smoothing_loss(logits, ys_out, cfg.label_smoothing)
        elif cfg.att_loss == "focal":
            alpha = cfg.focal_alpha if cfg.focal_alpha >= 0 else None
            att = focal_loss(
                logits, ys_out, cfg.focal_gamma, alpha, cfg.label_smoothing
            )
        else:
            att = sigmoid_focal_loss(
                logits, ys_out, cfg.focal_gamma, cfg.focal_alpha, cfg.label_smoothing
            )
        return att, logits, ys_out

    def forward(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        texts: List[str],
        return_log_probs: bool = False,
    ) -> Dict[str, torch.Tensor]:
        """Computes every configured loss of a batch.

        Args:
          features: (N, T, C) padded features.
          feature_lens: valid frames (N,).
          texts: N transcripts, in batch order.
          return_log_probs: also return the CTC outputs (for validation WER),
            so that they need not be computed twice.
        Returns:
          ``loss``: the weighted total (a sum over the batch, not normalised);
          ``frames``: encoder output frames in the batch (the normaliser);
          and each part's sum (``ctc``, ``att``, ``dice``, ``mmi``), all
          0-dim tensors. With ``return_log_probs``, also ``log_probs``
          (N, T', V) and ``out_lens`` (N,).
        """
        cfg = self.config
        token_ids = self.compiler.texts_to_ids(texts)
        encoder_out, out_lens = self.model.encode(features, feature_lens)
        parts: Dict[str, torch.Tensor] = {}
        if cfg.ctc_weight > 0 or cfg.mmi_weight > 0 or return_log_probs:
            log_probs = self.model.ctc_log_probs(encoder_out)
        if cfg.ctc_weight > 0:
            graphs = k2.ctc_graph(token_ids, modified=False, device=log_probs.device)
            nll = k2_ctc_loss(log_probs, out_lens, graphs, reduction="none")
            parts["ctc"] = ctc_focal_loss(nll, cfg.ctc_focal_gamma, "sum")
        if cfg.mmi_weight > 0:
            assert self.mmi is not None  # __init__ requires it when mmi_weight > 0
            parts["mmi"] = self.mmi(log_probs, out_lens, token_ids).sum()
        if cfg.attention_weight > 0:
            parts.update(self._attention(encoder_out, out_lens, token_ids))
        weights = {
            "ctc": cfg.ctc_weight,
            "mmi": cfg.mmi_weight,
            "att": cfg.attention_weight,
            "dice": cfg.attention_weight * cfg.dice_weight,
        }
        # A tensor: the weights have a positive sum, so ``parts`` is never empty.
        total = cast(
            torch.Tensor, sum(weights[name] * value for name, value in parts.items())
        )
        result = {"loss": total, "frames": out_lens.sum(), **parts}
        if return_log_probs:
            result.update(log_probs=log_probs, out_lens=out_lens)
        return result
