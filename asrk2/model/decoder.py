"""Transformer attention decoder trained beside the CTC head (joint CTC/attention).

The decoder of https://arxiv.org/abs/1706.03762 as used by ESPnet/WeNet/icefall
conformer models: token embedding + sinusoidal positions, pre-norm layers of
causal self-attention, cross-attention over the encoder output and a
feed-forward network, then a LayerNorm and a linear layer over tokens. It is
trained with teacher forcing: the input is ``<sos> y_1 .. y_U`` and the target
``y_1 .. y_U <eos>``; the BPE lang dir reserves id 1 for ``<sos/eos>``.
"""

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
from torch import nn

__all__ = [
    "IGNORE_ID",
    "SOS_EOS_ID",
    "DecoderConfig",
    "AttentionDecoder",
    "add_sos_eos",
    "causal_mask",
    "reversed_tokens",
]

# Token id of <sos/eos> in asrk2's BPE lang dirs (asrk2.lang.bpe.SOS_EOS).
SOS_EOS_ID = 1
# Target padding: positions with this id contribute no loss.
IGNORE_ID = -1


@dataclass
class DecoderConfig:
    """Attention decoder hyper-parameters; its width is the encoder's ``d_model``.

    Attributes:
      num_layers: decoder layers; 0 means no attention decoder (CTC only).
      num_heads: attention heads; must divide the encoder's ``d_model``.
      ffn_dim: hidden size of the feed-forward networks.
      dropout: dropout on embeddings, attention weights and residual branches.
      num_r2l_layers: layers of a second, right-to-left decoder (WeNet's
        U2++ bidirectional decoder), which reads the tokens in reverse
        order; 0 (default) builds none. It is trained with
        ``loss.reverse_weight`` and rescores with ``reverse_weight`` in
        attention rescoring.
    """

    num_layers: int = 0
    num_heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    num_r2l_layers: int = 0

    def __post_init__(self) -> None:
        if (
            min(self.num_layers, self.num_r2l_layers) < 0
            or self.num_heads < 1
            or self.ffn_dim < 1
        ):
            raise ValueError(f"decoder sizes must be positive: {self}")
        if self.num_r2l_layers > 0 and self.num_layers == 0:
            raise ValueError("num_r2l_layers > 0 needs the left-to-right decoder too")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def causal_mask(size: int, device: torch.device) -> torch.Tensor:
    """Bool (size, size) mask, True above the diagonal: no token sees later ones."""
    return torch.ones(size, size, dtype=torch.bool, device=device).triu(1)


def reversed_tokens(token_ids: Sequence[Sequence[int]]) -> List[List[int]]:
    """Each sequence in reverse order: what the right-to-left decoder reads."""
    return [list(ids)[::-1] for ids in token_ids]


def add_sos_eos(
    token_ids: Sequence[Sequence[int]],
    sos_id: int = SOS_EOS_ID,
    eos_id: int = SOS_EOS_ID,
    ignore_id: int = IGNORE_ID,
    device: torch.device = torch.device("cpu"),
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Builds teacher-forcing inputs and targets of a batch.

    Args:
      token_ids: N token sequences (without sos/eos).
      sos_id: start symbol prepended to inputs.
      eos_id: end symbol appended to targets; also pads the inputs.
      ignore_id: pads the targets.
      device: where to put the tensors.
    Returns:
      ``(ys_in, ys_out, ys_lens)``: inputs (N, U+1) ``<sos> y``, targets
      (N, U+1) ``y <eos>``, and lengths ``len(y) + 1`` (N,), U the longest.
    """
    n = len(token_ids)
    lens = [len(ids) + 1 for ids in token_ids]
    width = max(lens, default=1)
    ys_in = torch.full((n, width), eos_id, dtype=torch.int64)
    ys_out = torch.full((n, width), ignore_id, dtype=torch.int64)
    for i, ids in enumerate(token_ids):
        seq = torch.as_tensor(list(ids), dtype=torch.int64)
        ys_in[i, 0] = sos_id
        ys_in[i, 1 : lens[i]] = seq
        ys_out[i, : lens[i] - 1] = seq
        ys_out[i, lens[i] - 1] = eos_id
    return ys_in.to(device), ys_out.to(device), torch.tensor(lens, device=device)


class PositionalEncoding(nn.Module):
    """Scales embeddings by sqrt(d) and adds sinusoidal absolute positions.

    Args:
      d_model: embedding dimension (even).
      dropout: dropout on the result.
    """

    def __init__(self, d_model: int, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps (N, U, d_model) to (N, U, d_model)."""
        pos = torch.arange(x.size(1), device=x.device, dtype=torch.float32)
        freq = torch.exp(
            torch.arange(0, self.d_model, 2, device=x.device, dtype=torch.float32)
            * (-math.log(10000.0) / self.d_model)
        )
        angles = pos.unsqueeze(1) * freq.unsqueeze(0)
        pe = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)
        return self.dropout(x * math.sqrt(self.d_model) + pe.to(x.dtype))


class DecoderLayer(nn.Module):
    """Pre-norm self-attention, cross-attention and feed-forward, each residual.

    Args:
      d_model: model dimension.
      config: decoder hyper-parameters.
    """

    def __init__(self, d_model: int, config: DecoderConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            d_model, config.num_heads, dropout=config.dropout, batch_first=True
        )
        self.src_attn = nn.MultiheadAttention(
            d_model, config.num_heads, dropout=config.dropout, batch_first=True
        )
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, config.ffn_dim),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ffn_dim, d_model),
        )
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor,
        tgt_pad: torch.Tensor,
        memory: torch.Tensor,
        memory_pad: torch.Tensor,
    ) -> torch.Tensor:
        """Applies the layer.

        Args:
          x: token states (N, U, d_model).
          self_mask: (U, U) bool, True where a token may not see another.
          tgt_pad: (N, U) bool, True on padding tokens.
          memory: encoder output (N, T, d_model).
          memory_pad: (N, T) bool, True on padding frames.
        Returns:
          Shape (N, U, d_model).
        """
        h = self.norm1(x)
        h = self.self_attn(
            h, h, h, attn_mask=self_mask, key_padding_mask=tgt_pad, need_weights=False
        )[0]
        x = x + self.dropout(h)
        h = self.norm2(x)
        h = self.src_attn(
            h, memory, memory, key_padding_mask=memory_pad, need_weights=False
        )[0]
        x = x + self.dropout(h)
        return x + self.dropout(self.feed_forward(self.norm3(x)))


class AttentionDecoder(nn.Module):
    """Transformer decoder over the conformer's output.

    Args:
      d_model: encoder output dimension, also the decoder width.
      vocab_size: output tokens (including blank 0 and ``<sos/eos>``).
      config: decoder hyper-parameters with ``num_layers >= 1``.
    """

    def __init__(self, d_model: int, vocab_size: int, config: DecoderConfig) -> None:
        super().__init__()
        if config.num_layers < 1:
            raise ValueError("AttentionDecoder needs num_layers >= 1")
        if d_model % config.num_heads:
            raise ValueError(
                f"d_model {d_model} is not divisible by decoder num_heads "
                f"{config.num_heads}"
            )
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_enc = PositionalEncoding(d_model, config.dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, config) for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, vocab_size)

    def forward(
        self,
        memory: torch.Tensor,
        memory_lens: torch.Tensor,
        ys_in: torch.Tensor,
        ys_in_lens: torch.Tensor,
    ) -> torch.Tensor:
        """Teacher-forced logits of a padded batch.

        Args:
          memory: encoder output (N, T, d_model).
          memory_lens: valid encoder frames (N,), each >= 1.
          ys_in: input tokens (N, U), e.g. from :func:`add_sos_eos`.
          ys_in_lens: valid input tokens (N,), each >= 1.
        Returns:
          Logits (N, U, vocab_size); rows past ``ys_in_lens`` are junk.
        """
        u = ys_in.size(1)
        tgt_pad = torch.arange(u, device=ys_in.device) >= ys_in_lens.unsqueeze(1)
        memory_pad = torch.arange(
            memory.size(1), device=memory.device
        ) >= memory_lens.to(memory.device).unsqueeze(1)
        self_mask = causal_mask(u, ys_in.device)
        x = self.pos_enc(self.embed(ys_in))
        for layer in self.layers:
            x = layer(x, self_mask, tgt_pad, memory, memory_pad)
        return self.output(self.norm(x))

    def token_log_probs(
        self,
        memory: torch.Tensor,
        memory_lens: torch.Tensor,
        token_ids: List[List[int]],
        sos_id: int = SOS_EOS_ID,
        eos_id: int = SOS_EOS_ID,
    ) -> torch.Tensor:
        """Log-probability of whole hypotheses ``y <eos>``, e.g. for n-best rescoring.

        Args:
          memory: encoder output, one row per hypothesis (N, T, d_model).
          memory_lens: valid frames (N,).
          token_ids: N hypotheses (token ids without sos/eos).
          sos_id: start symbol.
          eos_id: end symbol.
        Returns:
          Shape (N,): ``sum_u log p(y_u | y_<u, x)`` including the final eos.
        """
        ys_in, ys_out, lens = add_sos_eos(
            token_ids, sos_id, eos_id, IGNORE_ID, memory.device
        )
        logp = self.forward(memory, memory_lens, ys_in, lens).log_softmax(-1)
        valid = ys_out != IGNORE_ID
        picked = logp.gather(-1, ys_out.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (picked * valid).sum(dim=1)
