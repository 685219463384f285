"""The acoustic model: a conformer encoder with a CTC output layer and an
optional transformer attention decoder (joint CTC/attention training)."""

from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

import torch
from torch import nn

from asrk2.model.conformer import Conformer, ConformerConfig, StreamingState
from asrk2.model.decoder import AttentionDecoder, DecoderConfig, reversed_tokens

__all__ = ["CtcModelConfig", "CtcModel"]


@dataclass
class CtcModelConfig:
    """Model hyper-parameters.

    Attributes:
      encoder: the conformer encoder.
      vocab_size: output units including the blank (id 0); the trainer fills it
        in from the BPE model.
      decoder: the attention decoder; ``num_layers: 0`` (default) builds none.
        The trainer also drops it when the attention loss weight is 0.
      blank_bias_init: initial bias of the blank output. Negative values make
        blank less likely at the start, a remedy for the long all-blank
        plateau of from-scratch CTC; 0 is the usual zero initialisation.
    """

    encoder: ConformerConfig = field(default_factory=ConformerConfig)
    vocab_size: int = 500
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    blank_bias_init: float = 0.0

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(
                f"vocab_size must be >= 2 (blank + a token), got {self.vocab_size}"
            )


class CtcModel(nn.Module):
    """Conformer encoder + dropout + linear + log-softmax over tokens.

    The encoder output is available on its own through :meth:`encode`; the
    attention decoder (``self.decoder``, None when not configured) reads it,
    and so does the optional right-to-left decoder (``self.r2l_decoder``).

    Args:
      config: model hyper-parameters.
    """

    def __init__(self, config: CtcModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Conformer(config.encoder)
        self.ctc_dropout = nn.Dropout(config.encoder.dropout)
        self.ctc_output = nn.Linear(self.encoder.output_dim, config.vocab_size)
        if config.blank_bias_init:
            with torch.no_grad():
                self.ctc_output.bias[0] = config.blank_bias_init
        self.decoder: Optional[AttentionDecoder] = None
        if config.decoder.num_layers > 0:
            self.decoder = AttentionDecoder(
                self.encoder.output_dim, config.vocab_size, config.decoder
            )
        self.r2l_decoder: Optional[AttentionDecoder] = None
        if config.decoder.num_r2l_layers > 0:
            r2l = replace(config.decoder, num_layers=config.decoder.num_r2l_layers)
            self.r2l_decoder = AttentionDecoder(
                self.encoder.output_dim, config.vocab_size, r2l
            )

    @property
    def subsampling_factor(self) -> int:
        """Input frames per output frame (4)."""
        return self.encoder.subsampling_factor

    @property
    def num_features(self) -> int:
        """C, the input feature dimension."""
        return self.config.encoder.num_features

    def encode(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        chunk_size: Optional[int] = None,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Runs the encoder; see :meth:`Conformer.forward`.

        Args:
          features: shape (N, T, C).
          feature_lens: shape (N,).
          chunk_size: attention chunk in output frames; <= 0 for full context;
            None for the encoder config's choice (see :meth:`Conformer.forward`).
          left_context_frames: override of the encoder config's value.
        Returns:
          ``(encoder_out (N, T', d_model), out_lens (N,))``.
        """
        return self.encoder(features, feature_lens, chunk_size, left_context_frames)

    def ctc_log_probs(self, encoder_out: torch.Tensor) -> torch.Tensor:
        """Maps encoder output (N, T', d_model) to CTC log-probs (N, T', V)."""
        return self.ctc_output(self.ctc_dropout(encoder_out)).log_softmax(dim=-1)

    def forward(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        chunk_size: Optional[int] = None,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Computes CTC log-probs for a padded batch.

        Args:
          features: fbank features, shape (N, T, C), padded.
          feature_lens: valid frames per utterance, shape (N,).
          chunk_size: attention chunk in output frames; <= 0 for full context;
            None for the encoder config's choice (see :meth:`Conformer.forward`).
          left_context_frames: override of the encoder config's value.
        Returns:
          ``(log_probs, out_lens)``: log-softmax outputs (N, T', V) and valid
          output frames per utterance (N,). Frames past ``out_lens`` are junk.
        """
        encoder_out, out_lens = self.encode(
            features, feature_lens, chunk_size, left_context_frames
        )
        return self.ctc_log_probs(encoder_out), out_lens

    def init_state(
        self, batch_size: int = 1, device: torch.device = torch.device("cpu")
    ) -> StreamingState:
        """The streaming state before the first chunk (:meth:`Conformer.init_state`)."""
        return self.encoder.init_state(batch_size, device)

    def forward_chunk(
        self,
        features: torch.Tensor,
        state: StreamingState,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, StreamingState]:
        """CTC log-probs of the next feature frames of N streams.

        Args:
          features: new frames (N, T, C); see :meth:`Conformer.chunk_input_frames`.
          state: from :meth:`init_state` or the previous call.
          left_context_frames: attention cache size; default from the config.
        Returns:
          ``(log_probs (N, T', V), new_state)``, equal to the offline chunked
          output for a causal encoder.
        """
        encoder_out, state = self.encoder.forward_chunk(
            features, state, left_context_frames
        )
        return self.ctc_log_probs(encoder_out), state

    def attention_scores(
        self,
        encoder_out: torch.Tensor,
        out_lens: torch.Tensor,
        token_ids: List[List[int]],
        reverse_weight: float = 0.0,
    ) -> torch.Tensor:
        """Decoder log-probabilities of whole hypotheses, for rescoring.

        With ``reverse_weight`` w > 0 (which needs ``self.r2l_decoder``) the
        score is ``(1 - w) * log p_l2r(y <eos>) + w * log p_r2l(rev(y) <eos>)``,
        as in WeNet's U2++ attention rescoring.

        Args:
          encoder_out: one row per hypothesis (N, T, d_model).
          out_lens: valid frames (N,).
          token_ids: N hypotheses (without sos/eos).
          reverse_weight: weight of the right-to-left decoder, in [0, 1].
        Returns:
          Shape (N,).
        Raises:
          ValueError: no decoder, or ``reverse_weight > 0`` without a
            right-to-left one.
        """
        if self.decoder is None:
            raise ValueError("the model has no attention decoder")
        scores = self.decoder.token_log_probs(encoder_out, out_lens, token_ids)
        if reverse_weight == 0:
            return scores
        if self.r2l_decoder is None:
            raise ValueError(
                f"reverse_weight {reverse_weight} needs a right-to-left decoder "
                "(model.decoder.num_r2l_layers > 0)"
            )
        r2l = self.r2l_decoder.token_log_probs(
            encoder_out, out_lens, reversed_tokens(token_ids)
        )
        return (1 - reverse_weight) * scores + reverse_weight * r2l

    def num_params(self, trainable_only: bool = False) -> int:
        """Number of parameters (all, or only those with ``requires_grad``)."""
        return sum(
            p.numel()
            for p in self.parameters()
            if p.requires_grad or not trainable_only
        )
