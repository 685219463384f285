"""Streaming decoding: WER, real-time factor and latency against chunk size.

The demo model (``make demo``, a causal encoder trained with dynamic chunks)
streams its whole test set (held-out voices) through
:func:`asrk2.decode.streaming.stream_decode_cuts`: chunk-mode encoder with
caches (left context ``LEFT_CONTEXT`` output frames) and k2's online
intersection, ``NUM_STREAMS`` cuts in flight and batched, one torch thread,
as fast as it goes (not paced in real time). Per graph (H: greedy CTC; HLG:
with the 3-gram LM) and chunk size (output frames of 40 ms):

* WER, compared with offline decoding of the same model with full attention
  on the same graph (ctc-greedy / hlg-1best), measured in this run; HLG
  finals come from one offline intersection of the streamed log-probs
  (``redecode_final``: k2 1.23.4's online intersecter drops words that span
  a chunk boundary, see asrk2.decode.streaming), partials stay online;
* RTF, compute seconds / audio seconds, compared with offline decoding
  (full utterances, batched, same thread count);
* latency of a decoding step (one chunk of every stream in flight), mean
  and p95, compared with the audio duration of a chunk: a step must take
  less than that for the streams to keep up.

Then, at chunk 16 on H: batching (``NUM_STREAMS`` streams vs 1), online
fbank from the audio vs precomputed features, and the peak resident memory of
a streaming run on HLG vs H.

Usage:
    python bench/run.py --only streaming
"""

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import k2
import torch
from lhotse import CutSet, load_manifest

from asrk2.decode.ctc_decode import get_lattice, one_best_token_ids
from asrk2.decode.offline import load_model
from asrk2.decode.scoring import compute_wer
from asrk2.decode.streaming import (
    MultiStreamDecoder,
    StreamingOptions,
    StreamingReport,
    load_streaming_graph,
    stream_decode_cuts,
)
from asrk2.features.fbank import torch_threads
from asrk2.model.ctc_model import CtcModel
from bench.common import DemoModel, Row, cwd, demo_model

CHUNK_SIZES = (4, 8, 16, 32)
LEFT_CONTEXT = 64
NUM_STREAMS = 8
FRAME_MS = 40  # one output frame: 4 fbank frames of 10 ms


def offline(
    model: CtcModel, graph: k2.Fsa, cuts: CutSet, to_words: Callable, opts
) -> Tuple[float, float]:
    """Full-attention decoding of ``cuts`` on ``graph``: ``(WER %, RTF)``."""
    results, seconds, audio = [], 0.0, 0.0
    batch = 16
    cut_list = sorted(cuts, key=lambda c: c.duration)
    for i in range(0, len(cut_list), batch):
        group = cut_list[i : i + batch]
        feats = [torch.as_tensor(c.load_features()) for c in group]
        lens = torch.tensor([f.size(0) for f in feats])
        x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        start = time.perf_counter()
        with torch.no_grad():
            encoder_out, out_lens = model.encode(x, lens)
            log_probs = model.ctc_log_probs(encoder_out)
            lattice = get_lattice(
                log_probs, out_lens, graph, opts.search_beam, opts.output_beam,
                opts.min_active_states, opts.max_active_states,
            )  # fmt: skip
            hyps = one_best_token_ids(lattice)
        seconds += time.perf_counter() - start
        audio += sum(c.duration for c in group)
        for cut, h in zip(group, hyps):
            ref = " ".join(s.text for s in cut.supervisions).split()
            results.append((cut.id, ref, to_words(h)))
    return compute_wer(results).wer, seconds / audio


def _mean_ms(report: StreamingReport) -> float:
    """Mean latency of a decoding step, ms."""
    latencies = report.chunk_latencies
    return 1000.0 * sum(latencies) / max(len(latencies), 1)


def _rss_mb() -> float:
    """Resident memory of this process now, MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


def peak_rss_during(fn: Callable[[], StreamingReport]) -> Tuple[StreamingReport, float]:
    """Runs ``fn``, sampling RSS after every decoder step.

    Returns:
      ``(fn's result, peak RSS growth over the start in MiB)``.
    """
    start = _rss_mb()
    peak = [start]
    step = MultiStreamDecoder.step

    def sampled(self):
        out = step(self)
        peak[0] = max(peak[0], _rss_mb())
        return out

    MultiStreamDecoder.step = sampled  # type: ignore[assignment]
    try:
        return fn(), peak[0] - start
    finally:
        MultiStreamDecoder.step = step  # type: ignore[assignment]


def run(workdir: Path) -> List[Row]:
    demo = demo_model()
    if demo is None:
        raise RuntimeError("no demo model: run `make demo` first (`make bench` does)")
    return _rows(demo)


def _rows(demo: DemoModel) -> List[Row]:
    model, _ = load_model(demo.exp_dir, demo.epoch, demo.avg)
    model.eval()
    if not model.config.encoder.causal:
        raise RuntimeError("the demo model is not causal: it cannot stream")
    cpu = torch.device("cpu")
    base = StreamingOptions(left_context_frames=LEFT_CONTEXT)
    rows: List[Row] = []
    what = (
        f"demo model epochs {demo.epoch - demo.avg + 1}-{demo.epoch}, left context "
        f"{LEFT_CONTEXT * FRAME_MS} ms, {NUM_STREAMS} streams batched, 1 thread"
    )
    with cwd(demo.recipe), torch_threads(1):
        cuts = load_manifest(demo.test_cuts).to_eager()
        reports: Dict[Tuple[str, int], StreamingReport] = {}
        for graph_name in ("H", "HLG"):
            graph, to_words = load_streaming_graph(demo.lang_dir, graph_name, cpu)
            opts = replace(base, redecode_final=graph_name != "H")
            offline_wer, offline_rtf = offline(model, graph, cuts, to_words, opts)
            for chunk in CHUNK_SIZES:
                report = stream_decode_cuts(
                    model, graph, cuts, replace(opts, chunk_size=chunk),
                    to_words, NUM_STREAMS,
                )  # fmt: skip
                reports[graph_name, chunk] = report
                wer = compute_wer(report.results).wer
                name = f"{graph_name}, chunk {chunk} ({chunk * FRAME_MS} ms)"
                rows += [
                    Row(f"streaming WER, {name}", wer, "% WER",
                        "offline, full attention", offline_wer, what),
                    Row(f"streaming RTF, {name}", report.rtf, "RTF",
                        "offline, full attention", offline_rtf, what),
                    Row(f"step latency mean, {name}", _mean_ms(report),
                        "ms", "chunk duration", chunk * FRAME_MS, ""),
                    Row(f"step latency p95, {name}", report.latency_ms(0.95),
                        "ms", "chunk duration", chunk * FRAME_MS, ""),
                ]  # fmt: skip
        H, to_words = load_streaming_graph(demo.lang_dir, "H", cpu)
        opts16 = replace(base, chunk_size=16)
        single = stream_decode_cuts(model, H, cuts, opts16, to_words, num_streams=1)
        online = stream_decode_cuts(
            model, H, cuts, opts16, to_words, NUM_STREAMS, features="online"
        )
        _, peak_h = peak_rss_during(
            lambda: stream_decode_cuts(model, H, cuts, opts16, to_words, NUM_STREAMS)
        )
        HLG, hlg_words = load_streaming_graph(demo.lang_dir, "HLG", cpu)
        _, peak_hlg = peak_rss_during(
            lambda: stream_decode_cuts(model, HLG, cuts, opts16, hlg_words, NUM_STREAMS)
        )
    batched = reports["H", 16]
    rows += [
        Row(f"streaming RTF, H, chunk 16, {NUM_STREAMS} streams batched", batched.rtf,
            "RTF", "1 stream at a time", single.rtf,
            f"same WER: {compute_wer(batched.results).wer:.2f}% vs "
            f"{compute_wer(single.results).wer:.2f}%"),
        Row("streaming RTF, H, chunk 16, online fbank from audio", online.rtf, "RTF",
            "precomputed fbank", batched.rtf,
            f"WER {compute_wer(online.results).wer:.2f}% vs "
            f"{compute_wer(batched.results).wer:.2f}% (stored fbank is lilcom-lossy)"),
        Row("peak RSS growth, streaming on HLG, chunk 16", peak_hlg, "MiB",
            "same on H", peak_h,
            f"{NUM_STREAMS} streams, online finals; k2 online intersecter state"),
    ]  # fmt: skip
    return rows
