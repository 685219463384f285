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

Then, at chunk 16 on H: batching (``NUM_STREAMS`` streams vs 1) and online
fbank from the audio vs precomputed features. Last, memory: the RSS growth of
a fresh process decoding one ``LONG_STREAM_SECONDS`` stream (the test cuts
joined) on H and on HLG, at its end vs half-way: k2's online intersecter keeps
state for every frame of a stream, so a long-lived stream's memory grows
with its length (k2's known limit with large HLGs).

Usage:
    python bench/run.py --only streaming
"""

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from lhotse import load_manifest

from asrk2.checkpoint import load_model
from asrk2.decode.methods import MethodOptions, load_streaming_graph
from asrk2.decode.scoring import compute_wer
from asrk2.decode.stream_eval import StreamingReport, stream_decode_cuts
from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
from asrk2.features.fbank import torch_threads
from bench.bench_decode import encode_test_set, search
from bench.common import ROOT, DemoModel, Row, cwd, demo_model

CHUNK_SIZES = (4, 8, 16, 32)
LEFT_CONTEXT = 64
NUM_STREAMS = 8
FRAME_MS = 40  # one output frame: 4 fbank frames of 10 ms
LONG_STREAM_SECONDS = 300.0


def offline(demo: DemoModel, beams: StreamingOptions) -> Dict[str, Tuple[float, float]]:
    """Full-attention decoding of the test set as ``bench_decode`` times it.

    Returns:
      ``{graph name: (WER %, RTF)}`` for H (ctc-greedy) and HLG (hlg-1best).
    """
    batches, encoder_s, audio, _ = encode_test_set(demo)
    opts = MethodOptions(beams=beams.beams())
    methods = {"H": "ctc-greedy", "HLG": "hlg-1best"}
    seconds, wers = search(demo, batches, list(methods.values()), opts)
    return {
        g: (wers[m], (encoder_s + seconds[m]) / audio) for g, m in methods.items()
    }


def _mean_ms(report: StreamingReport) -> float:
    """Mean latency of a decoding step, ms."""
    latencies = report.chunk_latencies
    return 1000.0 * sum(latencies) / max(len(latencies), 1)


def _rss_mb() -> float:
    """Resident memory of this process now, MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


def long_stream_memory(graph_name: str, seconds: float) -> Dict[str, float]:
    """RSS growth while one stream of ``seconds`` of test audio is decoded.

    Run in a fresh process (see ``main``), so that earlier work's freed memory
    does not hide the growth. The stream is the test cuts' features joined,
    decoded at chunk 16 with online finals (no ``redecode_final``, which would
    also keep the log-probs).

    Returns:
      ``growth_mb`` (peak RSS growth) and ``half_mb`` (growth after half the
      stream), both over the RSS after the first chunk; ``first_half_s`` and
      ``second_half_s``, decoding time of each half of the stream.
    """
    demo = demo_model()
    assert demo is not None, "no demo model (make demo)"
    torch.set_num_threads(1)
    model, _ = load_model(demo.exp_dir, demo.epoch, demo.avg)
    model.eval()
    graph, _ = load_streaming_graph(demo.lang_dir, graph_name, torch.device("cpu"))
    with cwd(demo.recipe):
        feats, total = [], 0
        for cut in load_manifest(demo.test_cuts):
            feats.append(torch.as_tensor(cut.load_features()))
            total += feats[-1].size(0)
            if total >= seconds * 100:
                break
    stream = torch.cat(feats)
    opts = StreamingOptions(chunk_size=16, left_context_frames=LEFT_CONTEXT)
    decoder = MultiStreamDecoder(model, graph, opts)
    decoder.add_stream("long")
    step = decoder.chunk_step
    base = peak = half = 0.0
    seconds_per_half = [0.0, 0.0]
    for i, pos in enumerate(range(0, stream.size(0), step)):
        decoder.accept_features("long", stream[pos : pos + step])
        start = time.perf_counter()
        decoder.step()
        seconds_per_half[2 * pos >= stream.size(0)] += time.perf_counter() - start
        rss = _rss_mb()
        if i == 0:
            base = peak = rss
        peak = max(peak, rss)
        if pos <= stream.size(0) // 2 < pos + step:
            half = rss - base
    return {
        "growth_mb": peak - base,
        "half_mb": half,
        "first_half_s": seconds_per_half[0],
        "second_half_s": seconds_per_half[1],
    }


def _memory_in_fresh_process(graph_name: str, seconds: float) -> Dict[str, float]:
    """:func:`long_stream_memory` in a new Python process."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_streaming", "--memory", graph_name,
         "--seconds", str(seconds)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    with torch_threads(1):
        offline_scores = offline(demo, base)
    with cwd(demo.recipe), torch_threads(1):
        cuts = load_manifest(demo.test_cuts).to_eager()
        reports: Dict[Tuple[str, int], StreamingReport] = {}
        for graph_name in ("H", "HLG"):
            graph, to_words = load_streaming_graph(demo.lang_dir, graph_name, cpu)
            opts = base.for_graph(graph_name)
            offline_wer, offline_rtf = offline_scores[graph_name]
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
    ]  # fmt: skip
    memory = {g: _memory_in_fresh_process(g, LONG_STREAM_SECONDS) for g in ("H", "HLG")}
    for g in ("H", "HLG"):
        rows += [
            Row(f"RSS growth, one {LONG_STREAM_SECONDS:.0f} s stream on {g}",
                memory[g]["growth_mb"], "MiB", "after half of it",
                memory[g]["half_mb"], "fresh process, chunk 16, online finals; "
                "growth with stream length = state kept per frame"),
            Row(f"decoding time, 2nd half of one {LONG_STREAM_SECONDS:.0f} s stream "
                f"on {g}", memory[g]["second_half_s"], "s", "1st half",
                memory[g]["first_half_s"], "a ratio > 1: a step costs more the "
                "longer the stream has run"),
        ]  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="memory of one long stream")
    parser.add_argument("--memory", required=True, choices=["H", "HL", "HLG"])
    parser.add_argument("--seconds", type=float, default=LONG_STREAM_SECONDS)
    args = parser.parse_args()
    print(json.dumps(long_stream_memory(args.memory, args.seconds)))


if __name__ == "__main__":
    main()
