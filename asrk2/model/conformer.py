"""Conformer encoder (https://arxiv.org/abs/2005.08100), relative-position attention.

Each block is macaron-style: ½ feed-forward, self-attention, convolution,
½ feed-forward, each pre-normed with a residual connection, then a LayerNorm.
The convolution module normalises with LayerNorm rather than BatchNorm, so a
frame's output never depends on other utterances in the batch or on padding,
and chunk-wise streaming can later reproduce the offline output exactly.
"""

from dataclasses import dataclass
from typing import Final, List, Optional, Tuple

import torch
from torch import nn

from asrk2.frames import (
    LOOKAHEAD_FRAMES,
    SUBSAMPLING_FACTOR,
    chunk_input_frames,
    subsampled_lengths,
)
from asrk2.model.attention import (
    RelPositionalEncoding,
    RelPositionMultiheadAttention,
    chunk_attention_mask,
    make_pad_mask,
)
from asrk2.model.subsampling import Conv2dSubsampling

__all__ = [
    "StreamingState",
    "ConformerConfig",
    "Conformer",
    "ConformerLayer",
    "ConvolutionModule",
    "FeatureNormalizer",
    "FeedForward",
]


@dataclass
class ConformerConfig:
    """Conformer encoder hyper-parameters; defaults give a ~4.7 M-parameter demo model.

    Attributes:
      num_features: input feature dimension, e.g. 80 fbank bins.
      d_model: attention dimension, also the encoder output dimension.
      num_heads: attention heads; must divide ``d_model``.
      ffn_dim: hidden size of the feed-forward modules.
      num_layers: number of conformer blocks.
      conv_kernel_size: depthwise convolution kernel; odd when not causal.
      dropout: dropout everywhere (inputs, attention weights, residual branches).
      causal: left-only depthwise convolution, so that with chunked attention
        no output frame depends on frames of a later chunk.
      subsampling_channels: conv channels of the x4 front end; 0 means d_model.
      left_context_frames: with chunked attention, how many frames before the
        current chunk stay visible (after subsampling); < 0 for all of them.
      dynamic_chunk_training: in training mode, draw the attention chunk size
        anew for every batch (WeNet's dynamic chunk training,
        https://arxiv.org/abs/2012.05481), so one model decodes with any chunk
        size, streaming or full context. Set ``causal`` too for streaming.
      max_chunk_size: chunk sizes are drawn uniformly from ``[1, max_chunk_size]``
        output frames (25 = 1 s at 40 ms per frame).
      full_context_prob: probability that a batch uses full context instead.
      dynamic_left_chunks: also draw how many chunks of left context stay
        visible (uniformly from 0 to all), to train for limited-cache streaming.
      global_cmvn: normalise input features with the training set's per-bin
        mean and standard deviation (:mod:`asrk2.features.cmvn`), which the
        trainer computes and stores in the encoder's buffers; false leaves the
        features as they are.
    """

    num_features: int = 80
    d_model: int = 144
    num_heads: int = 4
    ffn_dim: int = 576
    num_layers: int = 8
    conv_kernel_size: int = 31
    dropout: float = 0.1
    causal: bool = False
    left_context_frames: int = -1
    subsampling_channels: int = 0
    dynamic_chunk_training: bool = False
    max_chunk_size: int = 25
    full_context_prob: float = 0.5
    dynamic_left_chunks: bool = False
    global_cmvn: bool = True

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads or self.d_model % 2:
            raise ValueError(
                f"d_model ({self.d_model}) must be even and divisible by "
                f"num_heads ({self.num_heads})"
            )
        if not self.causal and self.conv_kernel_size % 2 == 0:
            raise ValueError(
                f"conv_kernel_size must be odd, got {self.conv_kernel_size}"
            )
        sizes = (
            self.num_features,
            self.ffn_dim,
            self.num_layers,
            self.conv_kernel_size,
        )
        if min(sizes) < 1:
            raise ValueError(f"sizes must be positive: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.max_chunk_size < 1 or not 0.0 <= self.full_context_prob <= 1.0:
            raise ValueError(
                "need max_chunk_size >= 1 and full_context_prob in [0, 1], got "
                f"{self.max_chunk_size} and {self.full_context_prob}"
            )


class FeatureNormalizer(nn.Module):
    """Per-bin ``(x - mean) / std`` with the statistics held as buffers.

    The buffers start as the identity (mean 0, std 1) and are filled by
    :meth:`set_stats`; being buffers, they travel in every state dict, so a
    checkpoint, an averaged model or a TorchScript export normalises exactly
    as the model was trained.

    Args:
      num_features: feature dimension C.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    inv_std: torch.Tensor

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("inv_std", torch.ones(num_features))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Loads statistics: ``mean`` and ``std`` of shape (C,), std > 0."""
        if mean.shape != self.mean.shape or std.shape != self.mean.shape:
            raise ValueError(
                f"CMVN statistics of dimension {tuple(mean.shape)}/{tuple(std.shape)}"
                f" do not fit features of dimension {self.mean.numel()}"
            )
        self.mean.copy_(mean)
        self.inv_std.copy_(1.0 / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalises (N, T, C) features frame by frame."""
        return (x - self.mean) * self.inv_std


class FeedForward(nn.Module):
    """Linear -> Swish -> dropout -> Linear, applied per frame.

    Args:
      d_model: input/output dimension.
      hidden: hidden dimension.
      dropout: dropout after the activation.
    """

    def __init__(self, d_model: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, hidden),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, d_model),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps (N, T, d_model) to (N, T, d_model)."""
        return self.net(x)


class ConvolutionModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv, LayerNorm, Swish, pointwise conv.

    Args:
      d_model: channels.
      kernel_size: depthwise kernel size.
      causal: pad only on the left, so frame t sees frames ``t-K+1 .. t``.
    """

    def __init__(self, d_model: int, kernel_size: int, causal: bool) -> None:
        super().__init__()
        self.left_pad = kernel_size - 1 if causal else (kernel_size - 1) // 2
        self.right_pad = 0 if causal else (kernel_size - 1) // 2
        self.pointwise1 = nn.Conv1d(d_model, 2 * d_model, kernel_size=1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.activation = nn.SiLU()
        self.pointwise2 = nn.Conv1d(d_model, d_model, kernel_size=1)

    def forward(
        self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Applies the module to a padded batch.

        Args:
          x: shape (N, T, d_model).
          pad_mask: bool (N, T), True on padding frames.
        Returns:
          Shape (N, T, d_model).
        """
        x = nn.functional.glu(self.pointwise1(x.transpose(1, 2)), dim=1)  # (N, C, T)
        if pad_mask is not None:
            # Padding must look like the zero padding of a lone utterance, so the
            # depthwise conv gives the same output whatever batch it is in.
            x = x.masked_fill(pad_mask.unsqueeze(1), 0.0)
        x = nn.functional.pad(x, (self.left_pad, self.right_pad))
        return self._after_depthwise(self.depthwise(x))

    def _after_depthwise(self, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm, Swish and the last pointwise conv: (N, C, T) -> (N, T, C)."""
        x = self.activation(self.norm(x.transpose(1, 2)))  # (N, T, C)
        return self.pointwise2(x.transpose(1, 2)).transpose(1, 2)

    def forward_chunk(
        self, x: torch.Tensor, cache: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Causal convolution of the next frames of a stream.

        Args:
          x: the chunk, (N, T, d_model).
          cache: the last ``K - 1`` depthwise inputs before the chunk,
            (N, d_model, K - 1); zeros at the start of a stream, like the
            offline zero padding.
        Returns:
          ``(out (N, T, d_model), new_cache (N, d_model, K - 1))``.
        """
        if self.right_pad:
            raise RuntimeError("streaming needs a causal convolution (causal: true)")
        x = nn.functional.glu(self.pointwise1(x.transpose(1, 2)), dim=1)  # (N, C, T)
        x = torch.cat([cache, x], dim=2)
        new_cache = x[:, :, x.size(2) - self.left_pad :]
        return self._after_depthwise(self.depthwise(x)), new_cache


class ConformerLayer(nn.Module):
    """One macaron conformer block.

    Args:
      config: encoder hyper-parameters.
    """

    def __init__(self, config: ConformerConfig) -> None:
        super().__init__()
        d = config.d_model
        self.ff_macaron = FeedForward(d, config.ffn_dim, config.dropout)
        self.self_attn = RelPositionMultiheadAttention(
            d, config.num_heads, config.dropout
        )
        self.conv = ConvolutionModule(d, config.conv_kernel_size, config.causal)
        self.ff = FeedForward(d, config.ffn_dim, config.dropout)
        self.norm_ff_macaron = nn.LayerNorm(d)
        self.norm_mha = nn.LayerNorm(d)
        self.norm_conv = nn.LayerNorm(d)
        self.norm_ff = nn.LayerNorm(d)
        self.norm_final = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        pos_emb: torch.Tensor,
        attn_mask: Optional[torch.Tensor],
        pad_mask: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """Applies the block.

        Args:
          x: shape (N, T, d_model).
          pos_emb: relative position encodings, (1, 2T - 1, d_model).
          attn_mask: bool, broadcastable to (N, T, T); True blocks attention.
          pad_mask: bool (N, T), True on padding frames.
        Returns:
          Shape (N, T, d_model).
        """
        x = x + 0.5 * self.dropout(self.ff_macaron(self.norm_ff_macaron(x)))
        x = x + self.dropout(self.self_attn(self.norm_mha(x), pos_emb, attn_mask))
        x = x + self.dropout(self.conv(self.norm_conv(x), pad_mask))
        x = x + 0.5 * self.dropout(self.ff(self.norm_ff(x)))
        return self.norm_final(x)

    def forward_chunk(
        self,
        x: torch.Tensor,
        pos_emb: torch.Tensor,
        attn_cache: torch.Tensor,
        conv_cache: torch.Tensor,
        left_context_frames: int,
        attn_mask: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Applies the block to the next chunk of a stream (no padding inside).

        Args:
          x: the chunk, (N, T, d_model).
          pos_emb: relative encodings for K = cached + T keys, (1, K + T - 1, d_model).
          attn_cache: earlier normalised attention inputs, (N, K - T, d_model).
          conv_cache: see :meth:`ConvolutionModule.forward_chunk`.
          left_context_frames: frames the new attention cache keeps; < 0 all.
          attn_mask: bool, broadcastable to (N, T, K), True where a key is not
            to be seen: for a fixed-size cache whose oldest frames are not
            filled yet (the ONNX streaming layout); None for none.
        Returns:
          ``(out (N, T, d_model), new_attn_cache, new_conv_cache)``.
        """
        x = x + 0.5 * self.ff_macaron(self.norm_ff_macaron(x))
        h = self.norm_mha(x)
        x = x + self.self_attn(h, pos_emb, attn_mask, attn_cache)
        new_attn = torch.cat([attn_cache, h], dim=1)
        if left_context_frames >= 0:
            new_attn = new_attn[:, max(0, new_attn.size(1) - left_context_frames) :]
        conv, new_conv = self.conv.forward_chunk(self.norm_conv(x), conv_cache)
        x = x + conv
        x = x + 0.5 * self.ff(self.norm_ff(x))
        return self.norm_final(x), new_attn, new_conv


@dataclass
class StreamingState:
    """What a streaming conformer carries from one chunk to the next.

    Attributes:
      features: input frames not yet turned into output frames, (N, F, C), F < 7.
      attn: per layer, the normalised attention inputs of the last
        ``left_context_frames`` output frames, (num_layers, N, L, d_model).
      conv: per layer, the last ``K - 1`` depthwise conv inputs,
        (num_layers, N, d_model, K - 1).
    """

    features: torch.Tensor
    attn: torch.Tensor
    conv: torch.Tensor


class Conformer(nn.Module):
    """Conv2d subsampling (x4) followed by conformer blocks.

    Args:
      config: encoder hyper-parameters.
    """

    subsampling_factor: Final[int] = SUBSAMPLING_FACTOR
    lookahead_frames: Final[int] = LOOKAHEAD_FRAMES

    def __init__(self, config: ConformerConfig) -> None:
        super().__init__()
        self.config = config
        # Plain copies of the values the forward methods read: TorchScript
        # (asrk2.export) cannot compile the config dataclass.
        self.num_features = config.num_features
        self.d_model = config.d_model
        self.conv_cache_frames = config.conv_kernel_size - 1
        self.left_context_frames = config.left_context_frames
        self.dynamic_chunk_training = config.dynamic_chunk_training
        # Always present (the identity unless statistics are loaded), so that
        # every checkpoint has the same keys whatever global_cmvn says.
        self.feature_norm = FeatureNormalizer(config.num_features)
        self.embed = Conv2dSubsampling(
            config.num_features, config.d_model, config.subsampling_channels
        )
        self.pos_enc = RelPositionalEncoding(config.d_model, config.dropout)
        self.layers = nn.ModuleList(
            ConformerLayer(config) for _ in range(config.num_layers)
        )

    @property
    def output_dim(self) -> int:
        """Dimension of each output frame (``d_model``)."""
        return self.d_model

    @staticmethod
    def subsampled_lengths(lens: torch.Tensor) -> torch.Tensor:
        """Output frames per utterance: ``((T - 1) // 2 - 1) // 2``, clamped at 0.

        Args:
          lens: input frame counts, shape (N,).
        Returns:
          Output frame counts, shape (N,).
        """
        return subsampled_lengths(lens)

    @torch.jit.unused
    def sample_chunk(self, num_frames: int) -> Tuple[int, int]:
        """Draws a chunk size and left context for one training batch.

        Uses torch's global RNG, so it is reproduced by seeding and by restoring
        the RNG state from a checkpoint. Training only: a TorchScript export
        raises if it gets here (an exported model in training mode).

        Args:
          num_frames: T', output frames of the batch.
        Returns:
          ``(chunk_size, left_context_frames)``; chunk_size <= 0 means full
          context; left context < 0 means all earlier frames.
        """
        cfg = self.config
        if float(torch.rand(())) < cfg.full_context_prob:
            return -1, -1
        chunk = int(torch.randint(1, cfg.max_chunk_size + 1, ()))
        left = cfg.left_context_frames
        if cfg.dynamic_left_chunks:
            num_chunks = max(1, (num_frames + chunk - 1) // chunk)
            left = chunk * int(torch.randint(0, num_chunks, ()))
        return chunk, left

    def forward(
        self,
        x: torch.Tensor,
        x_lens: torch.Tensor,
        chunk_size: Optional[int] = None,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encodes a padded batch.

        With ``chunk_size > 0``, output frames (after subsampling) are split into
        chunks of ``chunk_size`` and attention cannot look into later chunks.
        Only with ``causal=True`` is the whole encoder then free of look-ahead
        beyond its chunk, up to the subsampling's own: output frame ``k`` reads
        input frames up to ``4k + 6``.

        Args:
          x: features, shape (N, T, C), padded.
          x_lens: valid input frames per utterance, shape (N,).
          chunk_size: attention chunk in output frames; <= 0 for full context;
            None for the config's choice: a random chunk per batch in training
            with ``dynamic_chunk_training``, else full context.
          left_context_frames: override of ``config.left_context_frames``.
        Returns:
          ``(out, out_lens)``: output (N, T', d_model) and valid output frames
          (N,), ``out_lens == subsampled_lengths(x_lens)``.
        """
        out_lens = subsampled_lengths(x_lens)
        x, pos_emb = self.pos_enc(self.embed(self.feature_norm(x)))
        chunk = -1 if chunk_size is None else chunk_size
        left = left_context_frames
        if chunk_size is None and self.training and self.dynamic_chunk_training:
            chunk, left = self.sample_chunk(x.size(1))
        pad_mask = make_pad_mask(out_lens, x.size(1))
        attn_mask = pad_mask.unsqueeze(1)  # (N, 1, T'): no query sees padding
        if chunk > 0:
            if left is None:
                left = self.left_context_frames
            chunk_mask = chunk_attention_mask(x.size(1), chunk, left, x.device)
            attn_mask = attn_mask | chunk_mask.unsqueeze(0)
        for layer in self.layers:
            x = layer(x, pos_emb, attn_mask, pad_mask)
        return x, out_lens

    def init_state(
        self, batch_size: int = 1, device: torch.device = torch.device("cpu")
    ) -> StreamingState:
        """The state before the first chunk of ``batch_size`` streams."""
        return StreamingState(*self.init_caches(batch_size, device))

    @torch.jit.export
    def init_caches(
        self, batch_size: int, device: torch.device
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`init_state` as plain tensors ``(features, attn, conv)``.

        Args:
          batch_size: N, the number of streams.
          device: where the caches live.
        Returns:
          Empty caches of shapes (N, 0, C), (num_layers, N, 0, d_model) and
          zeros (num_layers, N, d_model, K - 1); see :class:`StreamingState`.
        """
        d, layers = self.d_model, len(self.layers)
        return (
            torch.zeros(batch_size, 0, self.num_features, device=device),
            torch.zeros(layers, batch_size, 0, d, device=device),
            torch.zeros(
                layers, batch_size, d, self.conv_cache_frames, device=device
            ),
        )

    @staticmethod
    def chunk_input_frames(chunk_size: int, first: bool) -> int:
        """Input frames to feed per call for output chunks of ``chunk_size`` frames.

        See :func:`asrk2.frames.chunk_input_frames`; fed that many frames per
        call, :meth:`forward_chunk` reproduces ``forward(..., chunk_size=chunk_size)``.
        """
        return chunk_input_frames(chunk_size, first)

    def forward_chunk(
        self,
        x: torch.Tensor,
        state: StreamingState,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, StreamingState]:
        """Encodes the next input frames of N equally long streams.

        Every output frame computable from the buffered and new input frames
        is produced, and these frames form one attention chunk: they see each
        other and the cached frames, never later ones. With ``causal=True``,
        feeding :meth:`chunk_input_frames` frames per call gives exactly the
        offline ``forward(x, lens, chunk_size, left_context_frames)`` output.
        The weights are those of the offline model.

        Args:
          x: new input frames (N, T, C); T may be 0.
          state: from :meth:`init_state` or the previous call.
          left_context_frames: attention cache size in output frames; default
            ``config.left_context_frames`` (< 0: unbounded).
        Returns:
          ``(out (N, T', d_model), new_state)``; T' may be 0.
        """
        if left_context_frames is None:
            left_context_frames = self.left_context_frames
        out, feats, attn, conv = self.forward_chunk_tensors(
            x, state.features, state.attn, state.conv, left_context_frames
        )
        return out, StreamingState(feats, attn, conv)

    @torch.jit.export
    def forward_chunk_tensors(
        self,
        x: torch.Tensor,
        feature_cache: torch.Tensor,
        attn_cache: torch.Tensor,
        conv_cache: torch.Tensor,
        left_context_frames: int,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`forward_chunk` with the state as plain tensors (TorchScript).

        Args:
          x: new input frames (N, T, C).
          feature_cache: ``StreamingState.features``, (N, F, C).
          attn_cache: ``StreamingState.attn``, (num_layers, N, L, d_model).
          conv_cache: ``StreamingState.conv``, (num_layers, N, d_model, K - 1).
          left_context_frames: attention cache size in output frames; < 0 all.
        Returns:
          ``(out (N, T', d_model), feature_cache, attn_cache, conv_cache)``,
          the new caches shaped like the old ones.
        """
        feats = torch.cat([feature_cache, x], dim=1)
        num_out = int(subsampled_lengths(torch.tensor(feats.size(1))))
        if num_out == 0:
            empty = feats.new_zeros(feats.size(0), 0, self.d_model)
            return empty, feats, attn_cache, conv_cache
        step = self.subsampling_factor * num_out
        out = self.embed(self.feature_norm(feats[:, : step + self.lookahead_frames]))
        num_keys = attn_cache.size(2) + num_out
        out, pos_emb = self.pos_enc(out, num_keys)
        attn: List[torch.Tensor] = []
        conv: List[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            out, a, c = layer.forward_chunk(
                out, pos_emb, attn_cache[i], conv_cache[i], left_context_frames
            )
            attn.append(a)
            conv.append(c)
        return out, feats[:, step:], torch.stack(attn), torch.stack(conv)
