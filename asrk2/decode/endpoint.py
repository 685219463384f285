"""Endpointing: where one utterance of a long stream ends, from the CTC output.

A frame is silence when the CTC blank posterior exceeds ``blank_threshold``
(WeNet's rule). After every decoded chunk, three rules (sherpa-onnx's, with
its defaults) decide whether the current segment has ended:

1. ``rule1_min_trailing_silence`` seconds of trailing silence, whatever was
   decoded (a stream of silence still ends segments, so it costs nothing);
2. ``rule2_min_trailing_silence`` seconds of trailing silence after the
   segment had speech (a frame that is not silence);
3. the segment is ``rule3_min_utterance_length`` seconds long.

The rules are checked at chunk ends, as sherpa-onnx does, so trailing
silence counts only the silence at the end of a chunk: a pause is certain to
end a segment when it is longer than the rule's silence plus one chunk (1.2 s
+ 0.64 s at chunk 16).

:class:`SegmentClock` keeps the counts of one stream; the streaming decoder
finalises and resets the segment when :meth:`SegmentClock.endpoint` is true.
"""

from dataclasses import dataclass

import torch

from asrk2.frames import FRAME_SHIFT, SUBSAMPLING_FACTOR

__all__ = ["EndpointConfig", "SegmentClock", "OUTPUT_FRAME_SECONDS"]

# Seconds per encoder output frame (40 ms).
OUTPUT_FRAME_SECONDS = SUBSAMPLING_FACTOR * FRAME_SHIFT


@dataclass
class EndpointConfig:
    """When a streamed segment ends (rules as sherpa-onnx's ``--rule*`` flags).

    Attributes:
      endpointing: cut streams into segments at endpoints; off: one stream is
        one utterance, finalised only at its end.
      blank_threshold: an output frame is silence when P(blank) exceeds it.
      rule1_min_trailing_silence: seconds of silence that end any segment.
      rule2_min_trailing_silence: seconds of silence that end a segment that
        decoded something.
      rule3_min_utterance_length: seconds after which a segment ends anyway.
    """

    endpointing: bool = False
    blank_threshold: float = 0.8
    rule1_min_trailing_silence: float = 2.4
    rule2_min_trailing_silence: float = 1.2
    rule3_min_utterance_length: float = 20.0

    def __post_init__(self) -> None:
        if not 0.0 < self.blank_threshold < 1.0:
            raise ValueError(
                f"blank_threshold must be in (0, 1), got {self.blank_threshold}"
            )
        for name in (
            "rule1_min_trailing_silence",
            "rule2_min_trailing_silence",
            "rule3_min_utterance_length",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


class SegmentClock:
    """Frame counts of one stream's current segment, for the endpoint rules.

    Args:
      config: the rules.
    """

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.log_blank_threshold = float(torch.tensor(config.blank_threshold).log())
        self.frames = 0  # output frames in the segment
        self.speech_frames = 0  # its frames that are not silence
        self.trailing_silence = 0  # output frames of silence at its end

    def advance(self, log_probs: torch.Tensor) -> None:
        """Counts a chunk's (T, V) CTC log-probs (blank at 0)."""
        silent = (log_probs[:, 0] > self.log_blank_threshold).tolist()
        for is_silent in silent:
            self.trailing_silence = self.trailing_silence + 1 if is_silent else 0
        self.frames += len(silent)
        self.speech_frames += len(silent) - sum(silent)

    def endpoint(self) -> bool:
        """Whether a rule fires now.

        Speech is read from the CTC output, not from the hypothesis: with
        HL/HLG, k2 1.23.4's online partial can be empty mid-word.
        """
        c = self.config
        silence = self.trailing_silence * OUTPUT_FRAME_SECONDS
        length = self.frames * OUTPUT_FRAME_SECONDS
        # A small tolerance: 1.2 s is 30 frames, 30 * 0.04 is 1.19999...
        eps = 1e-6
        return (
            silence + eps >= c.rule1_min_trailing_silence
            or (self.speech_frames and silence + eps >= c.rule2_min_trailing_silence)
            or length + eps >= c.rule3_min_utterance_length
        )

    def reset(self) -> None:
        """Starts the next segment."""
        self.frames = 0
        self.speech_frames = 0
        self.trailing_silence = 0
