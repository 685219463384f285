"""Frame geometry: feature frame shift, subsampling and chunk sizes, defined once.

Every frame count asrk2 derives from a duration, and every chunk size in
input frames or seconds, comes from here: the fbank's 10 ms shift, the x4
convolutional subsampling (each output frame sees 7 input frames, 3 of them
ahead of its 4-frame step), and what a chunked encoder consumes per call.

Nothing here imports a model, so the TorchScript loader, the server and the
ONNX export use the same numbers as training.
"""

from typing import NamedTuple

import torch

__all__ = [
    "FRAME_SHIFT",
    "SUBSAMPLING_FACTOR",
    "LOOKAHEAD_FRAMES",
    "MIN_INPUT_FRAMES",
    "WINDOW_REACH_SECONDS",
    "subsampled_lengths",
    "chunk_input_frames",
    "ChunkTiming",
    "chunk_timing",
]

# Seconds between fbank frames (Kaldi's 10 ms).
FRAME_SHIFT = 0.01
# Input frames per encoder output frame (two stride-2 convolutions).
SUBSAMPLING_FACTOR = 4
# Input frames the subsampling reads beyond an output frame's 4-frame step:
# output frame k sees input frames 4k .. 4k + 6.
LOOKAHEAD_FRAMES = 3
# The shortest input that yields one output frame: 7 -> 3 -> 1.
MIN_INPUT_FRAMES = SUBSAMPLING_FACTOR + LOOKAHEAD_FRAMES
# Kaldi fbank with snip_edges=False: the 25 ms window of frame m ends 7.5 ms
# after (m + 1) shifts (asrk2.features.online).
WINDOW_REACH_SECONDS = 0.0075


def subsampled_lengths(lens: torch.Tensor) -> torch.Tensor:
    """Number of encoder output frames for each input length.

    Each subsampling layer is a kernel-3, stride-2 convolution without
    padding, so ``T -> (T - 1) // 2``, and in all ``T' = ((T - 1) // 2 - 1)
    // 2``. Output frame ``k`` depends only on input frames ``4k .. 4k + 6``;
    hence every output frame below ``T'`` depends only on the first ``T``
    input frames, which is what makes batching with padding exact. Lengths
    below :data:`MIN_INPUT_FRAMES` give 0 (clamped, since the formula would
    go negative).

    Args:
      lens: input frame counts, shape (N,), integer dtype.
    Returns:
      Output frame counts, shape (N,), same dtype and device.
    """
    return (((lens - 1) // 2 - 1) // 2).clamp(min=0)


def chunk_input_frames(
    chunk_size: int, first: bool, subsampling_factor: int = SUBSAMPLING_FACTOR
) -> int:
    """Input frames per call that make each call one chunk of ``chunk_size`` outputs.

    The first call takes :data:`LOOKAHEAD_FRAMES` more frames: the
    subsampling reads them ahead, and later calls reuse the buffered ones.

    Args:
      chunk_size: output frames (after subsampling) per chunk, >= 1.
      first: whether this is the first call of a stream.
      subsampling_factor: input frames per output frame.
    Returns:
      ``subsampling_factor * chunk_size`` (+ the look-ahead for the first call).
    """
    return subsampling_factor * chunk_size + (LOOKAHEAD_FRAMES if first else 0)


class ChunkTiming(NamedTuple):
    """Audio durations of a chunked encoder's calls, in seconds.

    Attributes:
      chunk_seconds: audio per chunk of one stream.
      lookahead_seconds: extra audio the first chunk needs (the subsampling's
        look-ahead and the end of the last frame's window).
    """

    chunk_seconds: float
    lookahead_seconds: float


def chunk_timing(
    chunk_size: int, subsampling_factor: int = SUBSAMPLING_FACTOR
) -> ChunkTiming:
    """The :class:`ChunkTiming` of chunks of ``chunk_size`` output frames."""
    return ChunkTiming(
        chunk_seconds=chunk_size * subsampling_factor * FRAME_SHIFT,
        lookahead_seconds=LOOKAHEAD_FRAMES * FRAME_SHIFT + WINDOW_REACH_SECONDS,
    )
