"""Relative-position multi-head self-attention (Transformer-XL style) and masks.

This is the attention of the ESPnet/WeNet/icefall conformer
(https://arxiv.org/abs/1901.02860, section 3.3): the score of query ``i`` and
key ``j`` is ``(q_i + u) . k_j + (q_i + v) . W_pos PE(i - j)``, so it depends
on positions only through their distance ``i - j``. Because of that, a frame's
output does not depend on how much padding follows its utterance.

Masks here are boolean with True meaning "may not attend", as for
``torch.nn.MultiheadAttention``'s ``key_padding_mask``.
"""

import math
from typing import Optional, Tuple

import torch
from torch import nn

__all__ = [
    "RelPositionalEncoding",
    "RelPositionMultiheadAttention",
    "make_pad_mask",
    "chunk_attention_mask",
]


def make_pad_mask(lens: torch.Tensor, max_len: Optional[int] = None) -> torch.Tensor:
    """Marks padding frames.

    Args:
      lens: valid frames per utterance, shape (N,).
      max_len: padded length T; default ``lens.max()``.
    Returns:
      Bool tensor (N, T), True where frame ``t >= lens[n]``.
    """
    max_len = int(lens.max()) if max_len is None else max_len
    frames = torch.arange(max_len, device=lens.device)
    return frames.unsqueeze(0) >= lens.unsqueeze(1)


def lowest_value(dtype: torch.dtype) -> float:
    """``torch.finfo(dtype).min`` for the float dtypes, in a form TorchScript compiles.

    Args:
      dtype: a floating-point dtype (float16, bfloat16, float32 or float64).
    Returns:
      The most negative finite value of ``dtype``.
    """
    if dtype == torch.float16:
        return -65504.0
    if dtype == torch.bfloat16:
        return -3.3895313892515355e38
    if dtype == torch.float64:
        return -1.7976931348623157e308
    return -3.4028234663852886e38


def chunk_attention_mask(
    num_frames: int,
    chunk_size: int,
    left_context_frames: int = -1,
    device: Optional[torch.device] = None,
) -> torch.Tensor:
    """Blocks attention to future chunks (and optionally to old frames).

    Frames are split into chunks of ``chunk_size``; frame ``i`` may attend to
    frame ``j`` iff ``j`` is in ``i``'s chunk or an earlier one, and, when
    ``left_context_frames >= 0``, ``j >= chunk_start(i) - left_context_frames``.
    That is exactly what a streaming encoder sees when it processes one chunk at
    a time with a key cache of ``left_context_frames`` frames.

    Args:
      num_frames: T.
      chunk_size: frames per chunk, > 0.
      left_context_frames: frames before the chunk that stay visible; < 0 for all.
      device: where to build the mask.
    Returns:
      Bool tensor (T, T) indexed (query, key), True where attention is blocked.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    idx = torch.arange(num_frames, device=device)
    chunk_start = (idx // chunk_size) * chunk_size
    query_start = chunk_start.unsqueeze(1)
    key = idx.unsqueeze(0)
    blocked = key >= query_start + chunk_size
    if left_context_frames >= 0:
        blocked = blocked | (key < query_start - left_context_frames)
    return blocked


class RelPositionalEncoding(nn.Module):
    """Scales the input and returns sinusoidal encodings of relative positions.

    Args:
      d_model: embedding dimension (even).
      dropout: dropout applied to both outputs.
    """

    def __init__(self, d_model: int, dropout: float) -> None:
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even, got {d_model}")
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)

    def encodings(
        self,
        num_frames: int,
        device: torch.device,
        dtype: torch.dtype,
        num_keys: Optional[int] = None,
    ) -> torch.Tensor:
        """Sinusoidal encodings of relative positions ``K-1, K-2, ..., -(Q-1)``.

        Queries are the last Q of K key frames (K > Q when earlier frames come
        from a streaming cache), so query ``i`` and key ``j`` are
        ``K - Q + i - j`` frames apart.

        Args:
          num_frames: Q, the query frames.
          device: where to build the encodings.
          dtype: their dtype.
          num_keys: K >= Q; default Q.
        Returns:
          Shape (1, K + Q - 1, d_model); row ``r`` encodes position ``K-1-r``.
        """
        num_keys = num_frames if num_keys is None else num_keys
        pos = torch.arange(
            num_keys - 1, -num_frames, -1, device=device, dtype=torch.float32
        )
        freq = torch.exp(
            torch.arange(0, self.d_model, 2, device=device, dtype=torch.float32)
            * (-math.log(10000.0) / self.d_model)
        )
        angles = pos.unsqueeze(1) * freq.unsqueeze(0)
        # Interleave sin/cos as in ESPnet, so weights are interchangeable in layout.
        pe = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)
        return pe.unsqueeze(0).to(dtype)

    def forward(
        self, x: torch.Tensor, num_keys: Optional[int] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scales the input and builds its relative position encodings.

        Args:
          x: shape (N, T, d_model).
          num_keys: key frames K >= T (cached frames + T); default T.
        Returns:
          ``(x * sqrt(d_model), pos_emb)``, pos_emb of shape (1, K + T - 1, d_model).
        """
        pos_emb = self.encodings(x.size(1), x.device, x.dtype, num_keys)
        return self.dropout(x * self.xscale), self.dropout(pos_emb)


class RelPositionMultiheadAttention(nn.Module):
    """Multi-head self-attention with Transformer-XL relative positions.

    Args:
      d_model: model dimension, divisible by ``num_heads``.
      num_heads: number of heads H.
      dropout: dropout on the attention weights.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(
                f"d_model {d_model} is not divisible by num_heads {num_heads}"
            )
        self.num_heads = num_heads
        self.d_k = d_model // num_heads
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k = nn.Linear(d_model, d_model)
        self.linear_v = nn.Linear(d_model, d_model)
        self.linear_out = nn.Linear(d_model, d_model)
        self.linear_pos = nn.Linear(d_model, d_model, bias=False)
        # u and v of Transformer-XL: content and position biases per head.
        self.pos_bias_u = nn.Parameter(torch.empty(num_heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(num_heads, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, d_model) -> (N, H, T, d_k)."""
        n, t, _ = x.shape
        return x.view(n, t, self.num_heads, self.d_k).transpose(1, 2)

    @staticmethod
    def rel_shift(scores: torch.Tensor, num_keys: Optional[int] = None) -> torch.Tensor:
        """Turns per-relative-position scores into per-key scores.

        Args:
          scores: shape (N, H, Q, K + Q - 1); column ``r`` is relative position
            ``K-1-r``.
          num_keys: K; default Q.
        Returns:
          Shape (N, H, Q, K); entry ``(i, j)`` is column ``Q - 1 - i + j``,
          i.e. relative position ``K - Q + i - j`` (query i is key K - Q + i).
        """
        n, h, q, _ = scores.shape
        num_keys = q if num_keys is None else num_keys
        rows = torch.arange(q, device=scores.device).unsqueeze(1)
        cols = torch.arange(num_keys, device=scores.device).unsqueeze(0)
        index = (q - 1 - rows + cols).expand(n, h, q, num_keys)
        return scores.gather(3, index)

    def forward(
        self,
        x: torch.Tensor,
        pos_emb: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        cache: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Self-attention over a padded batch, optionally after cached frames.

        Args:
          x: shape (N, T, d_model).
          pos_emb: relative encodings from :class:`RelPositionalEncoding`,
            shape (1, K + T - 1, d_model), K = cached frames + T.
          mask: bool, broadcastable to (N, T, K), True where query may not see key.
          cache: earlier frames (N, K - T, d_model) that are keys and values
            but not queries (streaming); None for none.
        Returns:
          Shape (N, T, d_model).
        """
        keys = x if cache is None else torch.cat([cache, x], dim=1)
        q = self._heads(self.linear_q(x))
        k = self._heads(self.linear_k(keys))
        v = self._heads(self.linear_v(keys))
        p = self._heads(self.linear_pos(pos_emb))  # (1, H, K+T-1, d_k)
        content = torch.matmul(q + self.pos_bias_u.unsqueeze(1), k.transpose(-2, -1))
        position = torch.matmul(q + self.pos_bias_v.unsqueeze(1), p.transpose(-2, -1))
        scores = (content + self.rel_shift(position, keys.size(1))) / math.sqrt(
            self.d_k
        )
        if mask is not None:
            mask = mask.unsqueeze(1)  # broadcast over heads
            # A finite fill keeps fully masked rows (all-padding) NaN-free.
            scores = scores.masked_fill(mask, lowest_value(scores.dtype))
            weights = torch.softmax(scores, dim=-1).masked_fill(mask, 0.0)
        else:
            weights = torch.softmax(scores, dim=-1)
        out = torch.matmul(self.dropout(weights), v)  # (N, H, T, d_k)
        n, _, t, _ = out.shape
        return self.linear_out(out.transpose(1, 2).reshape(n, t, -1))
