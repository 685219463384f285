"""Streaming decoding of a test set: many cuts in flight, scored like offline.

:func:`stream_decode_cuts` streams every cut of a set through one
:class:`~asrk2.decode.streaming.MultiStreamDecoder` (as fast as it decodes,
not in real time) and times each step; :func:`stream_decode_and_score`
writes the same recogs/errs/wer-summary files as offline decoding.
"""

import contextlib
import itertools
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import (
    Callable,
    ContextManager,
    Dict,
    List,
    Literal,
    Optional,
    Sequence,
)

import k2
import torch
from lhotse import CutSet
from lhotse.cut import Cut

from asrk2.decode.methods import load_streaming_graph
from asrk2.decode.scoring import (
    Result,
    compute_wer,
    write_errs,
    write_recogs,
    write_wer_summary,
)
from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
from asrk2.features.fbank import torch_threads
from asrk2.frames import FRAME_SHIFT
from asrk2.model.ctc_model import CtcModel

__all__ = [
    "StreamingReport",
    "FeatureSource",
    "stream_decode_cuts",
    "stream_decode_and_score",
    "with_causal_convs",
]


@dataclass
class StreamingReport:
    """Results and timings of a streaming run over a test set.

    Attributes:
      results: ``(cut_id, ref_words, hyp_words)`` per cut.
      chunk_latencies: wall seconds of each decoding step (encoder + search of
        one chunk of every stream that advanced, batched).
      audio_seconds: total duration of the cuts.
      compute_seconds: total compute time (with online fbank, its time too).
    """

    results: List[Result]
    chunk_latencies: List[float]
    audio_seconds: float
    compute_seconds: float

    @property
    def rtf(self) -> float:
        """Real-time factor: compute time over audio time."""
        return self.compute_seconds / max(self.audio_seconds, 1e-9)

    def latency_ms(self, quantile: float) -> float:
        """A quantile (0.5, 0.95, ...) of the per-step latency, in ms."""
        if not self.chunk_latencies:
            return 0.0
        return 1000.0 * float(torch.tensor(self.chunk_latencies).quantile(quantile))


FeatureSource = Literal["precomputed", "online"]


class _CutFeeder:
    """Feeds one cut to a :class:`MultiStreamDecoder` one chunk's worth at a time.

    Args:
      cut: the cut; its id is the stream key.
      index: its position in the cut set (results keep that order).
      source: ``precomputed`` (the cut's features) or ``online`` (its audio
        through the stream's online fbank).
      decoder: the decoder the cut is streamed into.
    """

    def __init__(
        self, cut: Cut, index: int, source: FeatureSource, decoder: MultiStreamDecoder
    ) -> None:
        self.cut, self.index, self.source = cut, index, source
        self.ref = " ".join(s.text for s in cut.supervisions).split()
        if source == "precomputed":
            if not cut.has_features:
                raise ValueError(f"cut {cut.id} has no features (use online fbank)")
            self.data = torch.as_tensor(cut.load_features())
            self.per_frame = 1
        else:
            audio = cut.load_audio()  # (channels, samples)
            if audio.shape[0] != 1:
                raise ValueError(
                    f"cut {cut.id}: expected mono audio, got {audio.shape[0]} channels"
                )
            self.data = torch.from_numpy(audio[0])
            self.per_frame = round(cut.sampling_rate * FRAME_SHIFT)
        self.decoder, self.pos = decoder, 0
        self.segment_words: List[str] = []  # of the segments finished so far
        decoder.add_stream(cut.id)

    def feed(self) -> None:
        """Hands the decoder the next chunk's input; ends the stream after the last."""
        if self.pos >= self.data.size(0):
            return
        frames = self.decoder.chunk_step if self.pos else self.decoder.chunk_frames
        piece = self.data[self.pos : self.pos + frames * self.per_frame]
        self.pos += piece.size(0)
        if self.source == "precomputed":
            self.decoder.accept_features(self.cut.id, piece)
        else:
            self.decoder.accept_waveform(self.cut.id, piece, self.cut.sampling_rate)
        if self.pos >= self.data.size(0):
            self.decoder.input_finished(self.cut.id)


def stream_decode_cuts(
    model: CtcModel,
    graph: k2.Fsa,
    cuts: CutSet,
    options: StreamingOptions,
    to_words: Callable[[List[int]], List[str]],
    num_streams: int = 8,
    features: FeatureSource = "precomputed",
) -> StreamingReport:
    """Streams a cut set through a :class:`MultiStreamDecoder`, one stream per cut.

    Up to ``num_streams`` cuts are in flight; a finished one is replaced by
    the next cut. Every round hands each stream in flight its next chunk of
    input (as fast as it can be decoded, not in real time) and runs one
    :meth:`MultiStreamDecoder.step`. With endpointing (``options.endpoint``)
    a cut's hypothesis is the words of all its segments, in order.

    Args:
      model: the CTC model, in eval mode, on the graph's device.
      graph: H, HL or HLG.
      cuts: the cuts (with features, or with audio for ``online``).
      options: chunking and beams.
      to_words: maps the graph's output ids of one hypothesis to words.
      num_streams: cuts decoded together (also the largest batch).
      features: ``precomputed`` (the cuts' features) or ``online`` (fbank
        computed from the audio as it is fed, timed as part of the compute).
    Returns:
      Hypotheses in the order of ``cuts``; the wall time of each step that
      advanced a stream (``chunk_latencies``); compute = feeding + steps.
    """
    if features not in ("precomputed", "online"):
        raise ValueError(f"features must be precomputed or online, got {features!r}")
    decoder = MultiStreamDecoder(model, graph, options, max_batch_streams=num_streams)
    endpointed = options.endpoint.endpointing
    report, results = StreamingReport([], [], 0.0, 0.0), {}
    todo = enumerate(cuts)
    in_flight: Dict[str, _CutFeeder] = {}
    while True:
        for index, cut in itertools.islice(todo, num_streams - len(in_flight)):
            in_flight[cut.id] = _CutFeeder(cut, index, features, decoder)
            report.audio_seconds += cut.duration
        if not in_flight:
            break
        start = time.perf_counter()
        for feeder in in_flight.values():
            feeder.feed()
        fed = time.perf_counter()
        advanced = decoder.step()
        end = time.perf_counter()
        report.compute_seconds += end - start
        if advanced:
            report.chunk_latencies.append(end - fed)
        for key in advanced:
            for segment in decoder.pop_segments(key):
                in_flight[str(key)].segment_words += to_words(segment.ids)
        for key in [k for k in in_flight if decoder.is_final(k)]:
            feeder = in_flight.pop(key)
            words = feeder.segment_words if endpointed else to_words(
                decoder.result(key)
            )
            results[feeder.index] = (key, feeder.ref, words)
            decoder.remove_stream(key)
    report.results = [results[i] for i in sorted(results)]
    return report


def stream_decode_and_score(
    model: CtcModel,
    cuts: CutSet,
    lang_dir: Path,
    out_dir: Path,
    options: StreamingOptions,
    graph_name: str = "H",
    test_set: str = "test",
    chunk_sizes: Sequence[int] = (),
    num_streams: int = 8,
    features: FeatureSource = "precomputed",
    num_threads: Optional[int] = 1,
) -> Dict[str, Dict[str, float]]:
    """Streams a test set at one or more chunk sizes; writes recogs/errs/wer-summary.

    Keys are ``streaming-{graph_name}-chunk{n}``; each gets its own
    ``recogs-``/``errs-`` files, and all share ``wer-summary-{test_set}-streaming.txt``.

    Args:
      model: the CTC model (causal encoder), in eval mode, on the device to use.
      cuts: the test set, with features (or audio for ``features="online"``).
      lang_dir: ``bpe.model`` (H) or ``words.txt`` and ``HL.pt``/``HLG.pt``.
      out_dir: where the files go.
      options: chunking, beams and finals; an unset ``redecode_final`` is
        decided for the graph (:meth:`StreamingOptions.for_graph`).
      graph_name: ``H``, ``HL`` or ``HLG``.
      test_set: name used in the file names.
      chunk_sizes: chunk sizes to run, each in place of ``options.chunk_size``;
        empty: just ``options.chunk_size``.
      num_streams: cuts in flight, batched (see :func:`stream_decode_cuts`).
      features: ``precomputed`` or ``online`` (fbank from the audio).
      num_threads: torch intra-op threads during the run (restored after);
        per-chunk ops are tiny, and on 2 busy cores extra threads made a
        chunk ~100x slower in our tests. None leaves torch's setting.
    Returns:
      Per key: ``wer`` (%), ``rtf``, ``latency_mean_ms``, ``latency_p95_ms``
      (latencies per decoding step).
    """
    threads: ContextManager[None] = contextlib.nullcontext()
    if num_threads is not None:
        threads = torch_threads(num_threads)
    with threads:
        device = next(iter(model.parameters())).device
        graph, to_words = load_streaming_graph(
            lang_dir, graph_name, device, options.hotwords, options.graph_weights
        )
        out_dir, rows = Path(out_dir), {}
        for chunk in chunk_sizes or [options.chunk_size]:
            opts = replace(options.for_graph(graph_name), chunk_size=chunk)
            report = stream_decode_cuts(
                model, graph, cuts, opts, to_words, num_streams, features
            )
            key = f"streaming-{graph_name}-chunk{chunk}"
            rows[key] = _write_scores(report, out_dir, f"{test_set}-{key}")
    summary = {k: v["wer"] for k, v in rows.items()}
    write_wer_summary(out_dir / f"wer-summary-{test_set}-streaming.txt", summary)
    return rows


def with_causal_convs(model: CtcModel) -> CtcModel:
    """``model`` with causal convolutions (the same weights), for timing only.

    A model trained with ``causal: false`` then runs the streaming path; its
    WER is meaningless, since its convolutions were trained to look ahead.
    Causality only changes the conv padding, so the weights fit as they are.
    """
    encoder = model.config.encoder
    if encoder.causal:
        return model
    config = replace(model.config, encoder=replace(encoder, causal=True))
    causal = CtcModel(config)
    causal.load_state_dict(model.state_dict())
    return causal.eval()


def _write_scores(
    report: StreamingReport, out_dir: Path, name: str
) -> Dict[str, float]:
    """Writes ``recogs-{name}.txt`` and ``errs-{name}.txt``; returns the row."""
    stats = compute_wer(report.results)
    write_recogs(out_dir / f"recogs-{name}.txt", report.results)
    write_errs(out_dir / f"errs-{name}.txt", report.results, stats)
    latencies = report.chunk_latencies
    return {
        "wer": stats.wer,
        "rtf": report.rtf,
        "latency_mean_ms": 1000.0 * sum(latencies) / max(len(latencies), 1),
        "latency_p95_ms": report.latency_ms(0.95),
    }
