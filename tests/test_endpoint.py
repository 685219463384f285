"""Endpointing: each rule on synthetic CTC outputs, and segments of one stream.

The stream tests use a scripted acoustic model: the CTC output of encoder
frame k is the label written into input frame 4k, so a stream's exact
frame labelling (speech, pauses) is chosen here and the segments, their
text and their times are known in advance.
"""

from typing import Any, Dict, List, Sequence, Tuple

import pytest
import torch

from asrk2.decode.alignment import token_spans, word_times
from asrk2.decode.endpoint import OUTPUT_FRAME_SECONDS, EndpointConfig, SegmentClock
from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
from asrk2.frames import SUBSAMPLING_FACTOR, chunk_input_frames, subsampled_lengths
from asrk2.lang.graphs import build_H
from asrk2.model.conformer import StreamingState

V = 5  # blank + 4 tokens
FRAMES_PER_SECOND = round(1 / OUTPUT_FRAME_SECONDS)  # 25 output frames


def frame_log_probs(labels: Sequence[int]) -> torch.Tensor:
    """(T, V) log-probs with P(label) = 0.97 per frame."""
    probs = torch.full((len(labels), V), 0.03 / (V - 1))
    probs[torch.arange(len(labels)), torch.tensor(labels)] = 0.97
    return probs.log()


def seconds(n: float) -> int:
    return round(n * FRAMES_PER_SECOND)


# ----- the rules, on synthetic log-probs -----


@pytest.mark.parametrize(
    "silence_s, speech, fires",
    [
        (2.4, False, True),  # rule 1
        (2.36, False, False),
        (1.2, True, True),  # rule 2
        (1.16, True, False),
        (1.2, False, False),  # rule 2 needs speech in the segment
        (2.36, True, True),
    ],
)
def test_trailing_silence_rules(silence_s: float, speech: bool, fires: bool):
    clock = SegmentClock(EndpointConfig(endpointing=True))
    clock.advance(frame_log_probs([1, 2] * speech + [0] * seconds(silence_s)))
    assert clock.endpoint() is fires


def test_rule3_ends_long_segments_and_speech_resets_the_silence():
    clock = SegmentClock(EndpointConfig(endpointing=True))
    clock.advance(frame_log_probs([0] * seconds(2.0) + [3] + [0] * seconds(1.0)))
    assert clock.trailing_silence == seconds(1.0)
    assert not clock.endpoint()
    speech = ([1, 2, 3, 4] * 200)[: seconds(19.96) - clock.frames]
    clock.advance(frame_log_probs(speech))
    assert not clock.endpoint() and clock.frames == seconds(19.96)
    clock.advance(frame_log_probs([1]))
    assert clock.endpoint()  # 20 s
    clock.reset()
    assert clock.frames == clock.trailing_silence == clock.speech_frames == 0


def test_a_frame_is_silence_only_above_the_blank_threshold():
    clock = SegmentClock(EndpointConfig(endpointing=True, blank_threshold=0.98))
    clock.advance(frame_log_probs([0] * seconds(3)))  # P(blank) = 0.97
    assert clock.trailing_silence == 0 and not clock.endpoint()


@pytest.mark.parametrize(
    "field, value",
    [("blank_threshold", 1.0), ("rule2_min_trailing_silence", 0.0)],
)
def test_bad_rules_are_errors(field: str, value: float):
    with pytest.raises(ValueError, match=field):
        overrides: Dict[str, Any] = {field: value}
        EndpointConfig(**overrides)


# ----- one stream, three utterances -----


class ScriptedModel:
    """Reads the CTC label of output frame k from input frame 4k, feature 0."""

    num_features = 8
    subsampling_factor = SUBSAMPLING_FACTOR

    @property
    def encoder(self) -> "ScriptedModel":
        return self

    @staticmethod
    def chunk_input_frames(chunk_size: int, first: bool) -> int:
        return chunk_input_frames(chunk_size, first)

    def init_state(self, batch_size: int, device: torch.device) -> StreamingState:
        return StreamingState(
            torch.zeros(batch_size, 0, self.num_features),
            torch.zeros(1, batch_size, 0, 4),
            torch.zeros(1, batch_size, 4, 2),
        )

    def forward_chunk(
        self, x: torch.Tensor, state: StreamingState, left: object
    ) -> Tuple[torch.Tensor, StreamingState]:
        n = int(subsampled_lengths(torch.tensor(x.size(1))))
        labels = x[:, 0 : 4 * n : 4, 0].long()  # (B, n)
        probs = torch.full((x.size(0), n, V), 0.03 / (V - 1))
        probs.scatter_(2, labels.unsqueeze(-1), 0.97)
        return probs.log(), state


def features_for(labels: List[int]) -> torch.Tensor:
    """Input frames whose output frame k has CTC label ``labels[k]``."""
    x = torch.zeros(4 * len(labels) + 3, ScriptedModel.num_features)
    x[0 : 4 * len(labels) : 4, 0] = torch.tensor(labels, dtype=torch.float32)
    return x


UTTERANCES = ([1, 1, 0, 2], [3, 0, 4, 4, 0, 1], [2, 3])


def three_utterances(pause_s: float) -> Tuple[List[int], List[Tuple[int, int]]]:
    """Frame labels of 0.4 s silence, then each utterance and a pause.

    Returns:
      The labels, and each utterance's (first, last) output frame.
    """
    labels, spans = [0] * seconds(0.4), []
    for utt in UTTERANCES:
        spans.append((len(labels), len(labels) + len(utt) - 1))
        labels += utt + [0] * seconds(pause_s)
    return labels, spans


def decode(labels: List[int], chunk: int, endpointing: bool = True):
    decoder = MultiStreamDecoder(
        ScriptedModel(),  # type: ignore[arg-type]
        build_H(V - 1),
        StreamingOptions(chunk_size=chunk, left_context_frames=8),
    )
    decoder.add_stream("s", endpointing=endpointing)
    x = features_for(labels)
    segments, step = [], decoder.chunk_step
    for pos in range(0, x.size(0), step):
        decoder.accept_features("s", x[pos : pos + step])
        while decoder.ready_keys():
            decoder.step()
            segments += decoder.pop_segments("s")
    decoder.input_finished("s")
    while not decoder.is_final("s"):
        decoder.step()
    return segments + decoder.pop_segments("s"), decoder


@pytest.mark.parametrize("chunk", [2, 5, 16])
def test_three_utterances_with_pauses_give_three_finals(chunk: int):
    labels, spans = three_utterances(pause_s=1.5)
    segments, decoder = decode(labels, chunk)
    expected_ids = [[t for t, _, _ in token_spans(u)] for u in UTTERANCES]
    assert [s.ids for s in segments] == expected_ids
    assert [s.index for s in segments] == [0, 1, 2]
    for segment, (first, last) in zip(segments, spans):
        # A segment starts where the previous one ended and ends at the
        # endpoint, 1.2 s (30 frames) into the pause (+ the rest of a chunk).
        assert segment.start_frame <= first
        assert last + seconds(1.2) <= segment.start_frame + segment.num_frames
        assert segment.start_frame + segment.num_frames <= last + seconds(1.2) + chunk
        # Token times from the segment's alignment, in stream time.
        assert segment.alignment is not None
        pieces = ["<blk>", "\u2581A", "\u2581B", "\u2581C", "\u2581D"]
        words = [pieces[t][1:] for t in segment.ids]
        times = word_times(segment.alignment, words, pieces, segment.start_frame)
        assert times[0].start == pytest.approx(first * OUTPUT_FRAME_SECONDS)
        assert times[-1].end == pytest.approx((last + 1) * OUTPUT_FRAME_SECONDS)
    starts = [s.start_frame for s in segments]
    ends = [s.start_frame + s.num_frames for s in segments]
    assert starts[1:] == ends[:-1]  # contiguous, no frame counted twice


def test_short_pauses_do_not_split_and_silence_gives_no_segment():
    labels, _ = three_utterances(pause_s=0.8)
    segments, _ = decode(labels, chunk=4)
    assert len(segments) == 1
    assert segments[0].ids == [t for u in UTTERANCES for t, _, _ in token_spans(u)]
    silence, _ = decode([0] * seconds(6.0), chunk=4)
    assert silence == []


def test_without_endpointing_the_stream_is_one_utterance():
    labels, _ = three_utterances(pause_s=1.5)
    segments, decoder = decode(labels, chunk=4, endpointing=False)
    assert segments == []
    assert decoder.result("s") == [t for u in UTTERANCES for t, _, _ in token_spans(u)]
