"""What :class:`~asrk2.decode.streaming.MultiStreamDecoder` keeps per stream.

The input frame queue, the encoder state of one stream and how states of
several streams are stacked into one batch and split again, the endpoint
counts, and the finished segments of an endpointed stream.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Deque, List, Optional, Sequence

import k2
import torch

from asrk2.decode.alignment import Alignment
from asrk2.decode.endpoint import OUTPUT_FRAME_SECONDS, SegmentClock
from asrk2.features.online import OnlineFbankExtractor
from asrk2.model.conformer import StreamingState

__all__ = ["stack_states", "split_states", "FrameQueue", "Segment", "StreamState"]


def stack_states(states: Sequence[StreamingState]) -> StreamingState:
    """Stacks single-stream encoder states into the state of one batch.

    Args:
      states: B states of one stream each (batch dimension 1), with the same
        buffered-frame count and attention-cache length.
    Returns:
      The state of the B streams in that order: features (B, F, C), attn
      (num_layers, B, L, d_model), conv (num_layers, B, d_model, K - 1).
    Raises:
      ValueError: if the states differ in shape (the encoder has no padding
        mask for its caches, so streams of different cache lengths cannot be
        batched exactly; :class:`MultiStreamDecoder` groups them instead).
    """
    first = states[0]
    for s in states:
        same = s.features.shape == first.features.shape
        if not same or s.attn.shape != first.attn.shape:
            raise ValueError(
                "cannot stack states of different shapes: features "
                f"{tuple(s.features.shape)} vs {tuple(first.features.shape)}, attn "
                f"{tuple(s.attn.shape)} vs {tuple(first.attn.shape)}"
            )
    return StreamingState(
        features=torch.cat([s.features for s in states], dim=0),
        attn=torch.cat([s.attn for s in states], dim=1),
        conv=torch.cat([s.conv for s in states], dim=1),
    )


def split_states(state: StreamingState) -> List[StreamingState]:
    """Splits a batch state into one state per stream (inverse of :func:`stack_states`).

    Args:
      state: the state of B streams.
    Returns:
      B states with batch dimension 1 (views into ``state``'s tensors).
    """
    features = state.features.split(1, dim=0)
    attn, conv = state.attn.split(1, dim=1), state.conv.split(1, dim=1)
    return [StreamingState(*parts) for parts in zip(features, attn, conv)]


class FrameQueue:
    """Input frames of one stream not yet consumed by the encoder, (F, C) in pieces.

    Appending is O(1); only the frames of the next chunk are ever concatenated,
    so a client that sends faster than it is decoded costs no quadratic copying.

    Args:
      dim: C, the feature dimension.
    """

    def __init__(self, dim: int) -> None:
        self._pieces: Deque[torch.Tensor] = deque()
        self.num_frames = 0
        self.dim = dim

    def push(self, frames: torch.Tensor) -> None:
        """Appends (T, C) frames."""
        if frames.size(0) > 0:
            self._pieces.append(frames)
            self.num_frames += frames.size(0)

    def take(self, num_read: int, num_drop: int) -> torch.Tensor:
        """Returns the first ``num_read`` frames and removes the first ``num_drop``.

        Args:
          num_read: frames to return (at most all of them).
          num_drop: frames to remove, <= ``num_read``; the rest stay queued (the
            subsampling's look-ahead is read again by the next chunk).
        Returns:
          Shape (min(num_read, F), C).
        """
        gathered, count = [torch.zeros(0, self.dim)], 0
        while self._pieces and count < num_read:
            gathered.append(self._pieces.popleft())
            count += gathered[-1].size(0)
        head = torch.cat(gathered) if len(gathered) > 2 else gathered[-1]
        if head.size(0) > num_drop:
            self._pieces.appendleft(head[num_drop:])
        self.num_frames -= min(num_drop, head.size(0))
        return head[:num_read]


@dataclass
class Segment:
    """One finished segment (utterance) of an endpointed stream.

    Attributes:
      index: 0 for a stream's first segment, then 1, 2, ...
      ids: its final ids (token ids for H, word ids for HL/HLG).
      start_frame: its first encoder output frame, counted from the stream's
        start (40 ms each).
      num_frames: its length in output frames.
      alignment: its best path (frames relative to ``start_frame``), for word
        times (:func:`asrk2.decode.alignment.word_times`).
    """

    index: int
    ids: List[int]
    start_frame: int
    num_frames: int
    alignment: Optional[Alignment] = None

    @property
    def start(self) -> float:
        """Start in seconds from the stream's start."""
        return round(self.start_frame * OUTPUT_FRAME_SECONDS, 3)

    @property
    def end(self) -> float:
        """End in seconds from the stream's start."""
        return round((self.start_frame + self.num_frames) * OUTPUT_FRAME_SECONDS, 3)


@dataclass
class StreamState:
    """Everything :class:`MultiStreamDecoder` keeps for one stream.

    Attributes:
      state: encoder caches of this stream (batch dimension 1); its
        ``features`` stay empty, since unconsumed frames live in ``frames``.
      frames: input frames not yet consumed.
      decode_state: the online search state; None before the first chunk.
      hyp: best ids so far.
      fbank: the online fbank when audio is fed (:meth:`accept_waveform`).
      got_features: True once features were fed directly.
      finished: no more input will come.
      final: finished and every frame decoded.
      log_probs: the (T'_i, V) log-probs of each chunk of the current
        segment, kept only with ``StreamingOptions.redecode_final``.
      alignment: the best path of the current segment so far.
      clock: the endpoint counts; None when the stream is not endpointed.
      segment_start: output frames of the stream before the current segment.
      segment_index: index of the current segment.
      segments: finished segments not yet taken by :meth:`pop_segments`.
      graph: the stream's own graph (e.g. biased with its hotwords), as an
        FsaVec; None: the decoder's.
      own_intersecter: the online intersecter of ``graph``.
    """

    state: StreamingState
    frames: FrameQueue
    decode_state: Optional[k2.DecodeStateInfo] = None
    hyp: List[int] = field(default_factory=list)
    fbank: Optional[OnlineFbankExtractor] = None
    got_features: bool = False
    finished: bool = False
    final: bool = False
    log_probs: List[torch.Tensor] = field(default_factory=list)
    alignment: Optional[Alignment] = None
    clock: Optional[SegmentClock] = None
    segment_start: int = 0
    segment_index: int = 0
    segments: List[Segment] = field(default_factory=list)
    graph: Optional[k2.Fsa] = None
    own_intersecter: Optional[k2.OnlineDenseIntersecter] = None
