"""Streaming decoding: a chunk-mode encoder with caches and an online k2 search.

Features go through :meth:`CtcModel.forward_chunk` (a true streaming encoder:
attention and convolution caches carried in a :class:`StreamingState`), and
the CTC log-probs of each chunk through ``k2.OnlineDenseIntersecter``, which
carries the graph search (H, HL or HLG) across chunks. After every chunk the
best path so far is the partial hypothesis; after the last one it is final.

Partial hypotheses are the best path *as if the stream ended there*. With H
(greedy CTC) each one is a prefix of the next; with HL/HLG a later chunk may
revise earlier words (e.g. ``A`` becomes ``AC``), as in Kaldi's online decoders.

Example::

    decoder = StreamingDecoder(model, H, StreamingOptions(chunk_size=16))
    for chunk in decoder.split(features):  # features (N, T, C)
        partial = decoder.accept(chunk)    # ids per stream
    final = decoder.result()
"""

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import k2
import torch
from lhotse import CutSet

from asrk2.decode.ctc_decode import build_ctc_topo, one_best_token_ids
from asrk2.decode.offline import load_model
from asrk2.decode.scoring import (
    Result,
    compute_wer,
    write_errs,
    write_recogs,
    write_wer_summary,
)
from asrk2.lang.bpe import load_bpe
from asrk2.lang.graphs import load_fsa
from asrk2.lang.lexicon import read_symbol_table
from asrk2.model.ctc_model import CtcModel

__all__ = [
    "StreamingOptions",
    "StreamingDecoder",
    "StreamingReport",
    "stream_decode",
    "stream_decode_cuts",
    "stream_decode_and_score",
]


@dataclass
class StreamingOptions:
    """Chunking and online search options.

    Attributes:
      chunk_size: output frames (after x4 subsampling) per chunk, e.g. 16.
      left_context_frames: attention cache in output frames; None for the
        encoder config's value, < 0 unbounded.
      search_beam, output_beam, min_active_states, max_active_states: as in
        :func:`asrk2.decode.ctc_decode.get_lattice`.
    """

    chunk_size: int = 16
    left_context_frames: Optional[int] = None
    search_beam: float = 20.0
    output_beam: float = 8.0
    min_active_states: int = 30
    max_active_states: int = 10000


class StreamingDecoder:
    """Decodes N streams in lockstep, one chunk of features at a time.

    Args:
      model: the CTC model (a causal encoder for streaming = offline chunked).
      graph: arc-sorted decoding graph on the model's device: H (token ids
        out) or HL/HLG (word ids out).
      options: chunking and beams.
      num_streams: N, the number of streams decoded together.
    """

    def __init__(
        self,
        model: CtcModel,
        graph: k2.Fsa,
        options: StreamingOptions,
        num_streams: int = 1,
    ) -> None:
        if options.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {options.chunk_size}")
        self.model = model
        self.options = options
        self.num_streams = num_streams
        self.device = graph.device
        if graph.arcs.num_axes() == 2:  # the C++ side wants an FsaVec
            graph = k2.create_fsa_vec([graph])
        self.intersecter = k2.OnlineDenseIntersecter(
            decoding_graph=graph,
            num_streams=num_streams,
            search_beam=options.search_beam,
            output_beam=options.output_beam,
            min_active_states=options.min_active_states,
            max_active_states=options.max_active_states,
        )
        self.state = model.init_state(num_streams, self.device)
        self.decode_states: list = [None] * num_streams
        self.hyps: List[List[int]] = [[] for _ in range(num_streams)]
        self.num_frames = 0

    def split(self, features: torch.Tensor) -> Iterator[torch.Tensor]:
        """Cuts (N, T, C) features into the per-call pieces of ``chunk_size``.

        The first piece is 3 frames longer (the subsampling's look-ahead), so
        that streaming reproduces the offline chunked encoder.
        """
        pos, first = 0, True
        while pos < features.size(1):
            n = self.model.encoder.chunk_input_frames(self.options.chunk_size, first)
            yield features[:, pos : pos + n]
            pos, first = pos + n, False

    @torch.no_grad()
    def accept(self, features: torch.Tensor) -> List[List[int]]:
        """Feeds the next input frames of every stream.

        Args:
          features: new frames (N, T, C), any T >= 0; the encoder buffers what
            it cannot use yet.
        Returns:
          The partial hypothesis of each stream (ids of the graph's
          aux_labels), unchanged if no output frame was produced.
        """
        if features.size(0) != self.num_streams:
            raise ValueError(
                f"expected {self.num_streams} streams, got {features.size(0)}"
            )
        log_probs, self.state = self.model.forward_chunk(
            features.to(self.device), self.state, self.options.left_context_frames
        )
        if log_probs.size(1) > 0:
            self._search(log_probs)
        return self.hyps

    def _search(self, log_probs: torch.Tensor) -> None:
        """Advances the online intersection by the chunk's (N, T', V) log-probs."""
        n, t, _ = log_probs.shape
        segments = torch.tensor([[i, 0, t] for i in range(n)], dtype=torch.int32)
        dense = k2.DenseFsaVec(log_probs.to(torch.float32), segments)
        lattice, self.decode_states = self.intersecter.decode(dense, self.decode_states)
        self.hyps = one_best_token_ids(lattice)
        self.num_frames += t

    def result(self) -> List[List[int]]:
        """The final hypotheses: the best complete paths after the last chunk."""
        return self.hyps


def stream_decode(
    model: CtcModel,
    graph: k2.Fsa,
    features: torch.Tensor,
    options: StreamingOptions,
) -> List[List[List[int]]]:
    """Decodes N equally long streams chunk by chunk.

    Args:
      model: the CTC model, in eval mode.
      graph: H, HL or HLG, on the model's device.
      features: (N, T, C) features of N streams of the same length.
      options: chunking and beams.
    Returns:
      For each chunk, the partial hypotheses of the N streams; the last
      entry is the final result.
    """
    decoder = StreamingDecoder(model, graph, options, features.size(0))
    return [[list(h) for h in decoder.accept(x)] for x in decoder.split(features)]


@dataclass
class StreamingReport:
    """Results and timings of a streaming run over a test set.

    Attributes:
      results: ``(cut_id, ref_words, hyp_words)`` per cut.
      chunk_latencies: seconds of compute per chunk (encoder + search).
      audio_seconds: total duration of the cuts.
      compute_seconds: total compute time.
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
        """A quantile (0.5, 0.95, ...) of the per-chunk latency, in ms."""
        if not self.chunk_latencies:
            return 0.0
        return 1000.0 * float(torch.tensor(self.chunk_latencies).quantile(quantile))


def stream_decode_cuts(
    model: CtcModel,
    graph: k2.Fsa,
    cuts: CutSet,
    options: StreamingOptions,
    to_words: Callable[[List[int]], List[str]],
) -> StreamingReport:
    """Streams every cut (one stream each) from its precomputed features.

    Args:
      model: the CTC model, in eval mode, on the graph's device.
      graph: H, HL or HLG.
      cuts: cuts with features.
      options: chunking and beams.
      to_words: maps the graph's output ids of one hypothesis to words.
    Returns:
      Hypotheses, per-chunk latencies and the real-time factor.
    """
    report = StreamingReport([], [], 0.0, 0.0)
    for cut in cuts:
        feats = torch.as_tensor(cut.load_features()).unsqueeze(0)
        decoder = StreamingDecoder(model, graph, options, num_streams=1)
        for chunk in decoder.split(feats):
            start = time.perf_counter()
            decoder.accept(chunk)
            elapsed = time.perf_counter() - start
            report.chunk_latencies.append(elapsed)
            report.compute_seconds += elapsed
        report.audio_seconds += cut.duration
        ref = " ".join(s.text for s in cut.supervisions).split()
        report.results.append((cut.id, ref, to_words(decoder.result()[0])))
    return report


def _graph_and_words(
    lang_dir: Path, graph_name: str, device: torch.device
) -> Tuple[k2.Fsa, Callable[[List[int]], List[str]]]:
    """The decoding graph ``H``, ``HL`` or ``HLG`` and its ids-to-words map."""
    lang_dir = Path(lang_dir)
    if graph_name == "H":
        sp = load_bpe(lang_dir / "bpe.model")
        H = build_ctc_topo(sp.get_piece_size() - 1, device=device)
        return H, lambda ids: sp.decode(ids).split()
    if graph_name not in ("HL", "HLG"):
        raise ValueError(f"graph must be H, HL or HLG, got {graph_name!r}")
    id2word = {i: w for w, i in read_symbol_table(lang_dir / "words.txt").items()}
    graph = load_fsa(lang_dir / f"{graph_name}.pt").to(device)
    return graph, lambda ids: [id2word[i] for i in ids]


def stream_decode_and_score(
    exp_dir: Path,
    cuts: CutSet,
    lang_dir: Path,
    out_dir: Path,
    test_set: str = "test",
    graph_name: str = "H",
    chunk_sizes: Sequence[int] = (16,),
    options: Optional[StreamingOptions] = None,
    epoch: Optional[int] = None,
    avg: int = 1,
    device: str = "cpu",
    num_threads: Optional[int] = 1,
) -> Dict[str, Dict[str, float]]:
    """Streams a test set at several chunk sizes; writes recogs/errs/wer-summary.

    Keys are ``streaming-{graph_name}-chunk{n}``; each gets its own
    ``recogs-``/``errs-`` files, and all share ``wer-summary-{test_set}-streaming.txt``.

    Args:
      exp_dir: holds the ``epoch-N.pt`` checkpoints.
      cuts: the test set, with features.
      lang_dir: ``bpe.model`` (H) or ``words.txt`` and ``HL.pt``/``HLG.pt``.
      out_dir: where the files go.
      test_set: name used in the file names.
      graph_name: ``H``, ``HL`` or ``HLG``.
      chunk_sizes: output frames per chunk to try.
      options: beams and left context; ``chunk_size`` is overridden.
      epoch: last epoch to use; None for the last one.
      avg: number of epochs averaged.
      device: where to run.
      num_threads: torch intra-op threads during the run (restored after);
        per-chunk ops are tiny, and on 2 busy cores extra threads made a
        chunk ~100x slower in our tests. None leaves torch's setting.
    Returns:
      Per key: ``wer`` (%), ``rtf``, ``latency_mean_ms``, ``latency_p95_ms``.
    """
    before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _stream_and_score(
            exp_dir, cuts, lang_dir, out_dir, test_set, graph_name,
            chunk_sizes, options, epoch, avg, device,
        )  # fmt: skip
    finally:
        torch.set_num_threads(before)


def _stream_and_score(
    exp_dir: Path,
    cuts: CutSet,
    lang_dir: Path,
    out_dir: Path,
    test_set: str,
    graph_name: str,
    chunk_sizes: Sequence[int],
    options: Optional[StreamingOptions],
    epoch: Optional[int],
    avg: int,
    device: str,
) -> Dict[str, Dict[str, float]]:
    """:func:`stream_decode_and_score` without the thread setting."""
    dev = torch.device(device)
    model, _ = load_model(exp_dir, epoch, avg)
    model.to(dev)
    graph, to_words = _graph_and_words(lang_dir, graph_name, dev)
    out_dir, rows = Path(out_dir), {}
    for chunk in chunk_sizes:
        opts = replace(options or StreamingOptions(), chunk_size=chunk)
        report = stream_decode_cuts(model, graph, cuts, opts, to_words)
        key = f"streaming-{graph_name}-chunk{chunk}"
        stats = compute_wer(report.results)
        write_recogs(out_dir / f"recogs-{test_set}-{key}.txt", report.results)
        write_errs(out_dir / f"errs-{test_set}-{key}.txt", report.results, stats)
        rows[key] = {
            "wer": stats.wer,
            "rtf": report.rtf,
            "latency_mean_ms": 1000.0
            * report.compute_seconds
            / max(len(report.chunk_latencies), 1),
            "latency_p95_ms": report.latency_ms(0.95),
        }
    summary = {k: v["wer"] for k, v in rows.items()}
    write_wer_summary(out_dir / f"wer-summary-{test_set}-streaming.txt", summary)
    return rows
