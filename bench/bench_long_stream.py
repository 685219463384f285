"""One hour-long stream with endpointing: constant cost, flat memory, its WER.

The demo model's test utterances (held-out voices) are joined into one
stream of ``STREAM_SECONDS``, with ``PAUSE_SECONDS`` of near-silence (the
fbank of quiet noise) after each, the test set repeated as often as needed.
One :class:`~asrk2.decode.streaming.MultiStreamDecoder` stream decodes it
chunk by chunk (chunk 16, left context 64, HLG with each segment's final
from one intersection of its log-probs, as ``make stream-decode``), with
endpointing on (sherpa-onnx's rules: 2.4 s / 1.2 s / 20 s), as fast as it
decodes, in a fresh process so that its RSS is its own.

Rows: decoding time of the stream's second half against its first (k2
1.23.4's online intersecter rebuilds a segment's lattice at every chunk, so
without endpointing the second half of even a 300 s stream is 2.5-3x slower,
see the ``streaming`` section); RSS growth in the second half against the
first; the WER of the whole stream against the joined references (segment
boundaries are free: one alignment of all words) next to the WER of the same
utterances streamed one per stream in the same run. The gap between the two
is the acoustic model's: a segment starts inside the pause, and the demo
model, trained on utterances with 0.1 s of leading silence, loses words after
longer silence (0.8 s of it before each utterance streamed alone: 8.4% ->
12.7% WER on 60 test utterances).

Usage:
    python bench/run.py --only long_stream
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from lhotse import load_manifest

from asrk2.checkpoint import load_model
from asrk2.decode.endpoint import EndpointConfig
from asrk2.decode.methods import load_streaming_graph
from asrk2.decode.scoring import compute_wer
from asrk2.decode.stream_eval import stream_decode_cuts
from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
from asrk2.features.fbank import make_fbank_extractor
from bench.common import ROOT, Row, cwd, demo_model

STREAM_SECONDS = 3600.0
# Longer than rule 2's 1.2 s plus one chunk (0.64 s): rules are checked at
# chunk ends, so every pause ends a segment.
PAUSE_SECONDS = 2.0
GRAPH = "HLG"
OPTIONS = StreamingOptions(
    chunk_size=16,
    left_context_frames=64,
    redecode_final=True,
    endpoint=EndpointConfig(endpointing=True),
)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def _pause_features(fbank_config, seconds: float) -> torch.Tensor:
    """fbank of quiet white noise (-60 dBFS), ``seconds`` long."""
    rng = np.random.default_rng(0)
    samples = (1e-3 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    return torch.from_numpy(make_fbank_extractor(fbank_config).extract(samples, 16000))


def decode_long_stream(seconds: float) -> Dict[str, float]:
    """Decodes the joined stream; timings, RSS and WER (run in a fresh process)."""
    demo = demo_model()
    assert demo is not None, "no demo model (make demo)"
    torch.set_num_threads(1)
    model, config = load_model(demo.exp_dir, demo.epoch, demo.avg)
    graph, to_words = load_streaming_graph(demo.lang_dir, GRAPH, torch.device("cpu"))
    pause = _pause_features(config.fbank, PAUSE_SECONDS)
    pieces, refs, total = [], [], 0
    with cwd(demo.recipe):
        cuts = list(load_manifest(demo.test_cuts))
        while total < seconds * 100:
            for cut in cuts:
                pieces += [torch.as_tensor(cut.load_features()), pause]
                refs += " ".join(s.text for s in cut.supervisions).split()
                total += pieces[-2].size(0) + pause.size(0)
                if total >= seconds * 100:
                    break
    stream = torch.cat(pieces)
    decoder = MultiStreamDecoder(model, graph, OPTIONS, max_batch_streams=1)
    decoder.add_stream("long")
    step, n = decoder.chunk_step, stream.size(0)
    half_s = [0.0, 0.0]
    rss = {"start": 0.0, "half": 0.0, "end": 0.0}
    hyp: List[str] = []
    segments = 0
    for i, pos in enumerate(range(0, n, step)):
        decoder.accept_features("long", stream[pos : pos + step])
        if pos + step >= n:
            decoder.input_finished("long")
        start = time.perf_counter()
        while decoder.ready_keys():
            decoder.step()
        half_s[2 * pos >= n] += time.perf_counter() - start
        for segment in decoder.pop_segments("long"):
            hyp += to_words(segment.ids)
            segments += 1
        # RSS after the first minute (the first segments allocate the caches).
        if pos <= 6000 < pos + step:
            rss["start"] = _rss_mb()
        if pos <= n // 2 < pos + step:
            rss["half"] = _rss_mb()
    rss["end"] = _rss_mb()
    stats = compute_wer([("stream", refs, hyp)])
    return {
        "audio_s": n / 100,
        "first_half_s": half_s[0],
        "second_half_s": half_s[1],
        "rss_growth_first_half_mb": rss["half"] - rss["start"],
        "rss_growth_second_half_mb": rss["end"] - rss["half"],
        "rss_end_mb": rss["end"],
        "wer": stats.wer,
        "segments": segments,
        "utterances": len(pieces) // 2,
    }


def _per_utterance_wer() -> float:
    """The test set streamed one stream per utterance, same options."""
    demo = demo_model()
    assert demo is not None
    model, _ = load_model(demo.exp_dir, demo.epoch, demo.avg)
    graph, to_words = load_streaming_graph(demo.lang_dir, GRAPH, torch.device("cpu"))
    with cwd(demo.recipe):
        cuts = load_manifest(demo.test_cuts).to_eager()
        report = stream_decode_cuts(model, graph, cuts, OPTIONS, to_words, 8)
    return compute_wer(report.results).wer


def run(workdir: Path) -> List[Row]:
    if demo_model() is None:
        raise RuntimeError("no demo model: run `make demo` first (`make bench` does)")
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_long_stream", "--seconds",
         str(STREAM_SECONDS)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    r = json.loads(out.stdout.strip().splitlines()[-1])
    torch.set_num_threads(1)
    per_utt = _per_utterance_wer()
    what = (
        f"{r['audio_s']:.0f} s: {r['utterances']} test utterances with "
        f"{PAUSE_SECONDS} s pauses, {GRAPH}, chunk 16, left context 64, 1 thread"
    )
    name = f"one {STREAM_SECONDS:.0f} s stream with endpointing"
    return [
        Row(f"decoding time, 2nd half of {name}", r["second_half_s"], "s",
            "1st half", r["first_half_s"], f"{what}; goal: ratio <= 1.15"),
        Row(f"RSS growth, {name}", r["rss_growth_second_half_mb"], "MiB",
            "growth in the 1st half (after its first minute)",
            r["rss_growth_first_half_mb"],
            f"fresh process; RSS at the end {r['rss_end_mb']:.0f} MiB"),
        Row(f"WER of {name}", r["wer"], "% WER",
            "the same utterances, one stream each", per_utt,
            f"{r['segments']} segments for {r['utterances']} utterances; scored "
            "as one word sequence against the joined references"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description="one long stream, endpointed")
    parser.add_argument("--seconds", type=float, default=STREAM_SECONDS)
    args = parser.parse_args()
    print(json.dumps(decode_long_stream(args.seconds)))


if __name__ == "__main__":
    main()
