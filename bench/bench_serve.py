"""Load on the streaming server: N concurrent real-time clients on loopback.

For N = 1, 2, 4, 8, 12, 16, 24, ... 128 (stopping after the first N that is
not served in real time), one server process (``python -m bench.bench_serve
--serve``, so that clients do not share its GIL) decodes N clients of this
process, each streaming about 6 s of audio at real-time pace in 0.1 s
messages, their starts spread over the first second. Per N: first-partial
latency (from sending the audio that completes the first chunk to receiving
its partial result) and final latency (from sending ``end`` to the final
result), mean and p95 over the streams, each compared with the single-stream
figure; the notes add the mean batch (streams per decoder step). N is
"sustained in real time" when every stream ends normally and the p95 of all
partial-result latencies and of the final latencies stay under
``REALTIME_LIMIT_S``.

The last WebSocket row compares the largest sustained N with ``1 / RTF`` of
one stream decoded alone as fast as possible (in this process, no network):
the streams one core could serve one after another, i.e. without batching.

Then the same load over the gRPC service of the same server process
(:mod:`asrk2.serve.grpc_service`, same decode loop): each gRPC row is
compared with the WebSocket figure at the same N, measured in this run.

Model: the demo model (egs/synth/ASR/exp/demo, causal, trained with dynamic
chunks) with its BPE lang dir and test wavs if present (a model trained with
``causal: false`` would be loaded into a causal encoder of the same size: same
compute, meaningless text); else a tiny random model on tones, said so in the
notes. Chunks of 16 frames (0.64 s), left context 64 frames,
greedy CTC graph H, one torch thread in the server.

Usage:
    python bench/run.py --only serve
"""

import argparse
import asyncio
import dataclasses
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from asrk2.decode.streaming import StreamingOptions
from asrk2.serve.client import StreamResult, read_wav, stream_audio
from asrk2.serve.grpc_client import recognize
from asrk2.serve.recognizer import StreamingRecognizer, make_recognizer
from asrk2.serve.server import AsrServer, ServerConfig
from bench.common import DEMO_RECIPE, Row, demo_model

ROOT = Path(__file__).resolve().parent.parent
DEMO_WAVS = DEMO_RECIPE / "data/corpus/test/wav.scp"
NUM_STREAMS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
STREAM_SECONDS = 6.0
REALTIME_LIMIT_S = 1.0
STREAMING = StreamingOptions(chunk_size=16, left_context_frames=64)
SAMPLE_RATE = 16000


def _use_demo() -> bool:
    return demo_model() is not None and DEMO_WAVS.exists()


def build_recognizer(use_demo: bool) -> StreamingRecognizer:
    """The demo model's weights in a causal encoder, or a tiny random model."""
    from asrk2.checkpoint import load_model
    from asrk2.decode.methods import load_streaming_graph
    from asrk2.lang.graphs import build_H
    from asrk2.model import ConformerConfig, CtcModel, CtcModelConfig

    if use_demo:
        demo = demo_model()
        assert demo is not None, "no demo model (make demo)"
        trained, _ = load_model(demo.exp_dir, demo.epoch, demo.avg)
        encoder = dataclasses.replace(trained.config.encoder, causal=True)
        model = CtcModel(dataclasses.replace(trained.config, encoder=encoder))
        model.load_state_dict(trained.state_dict())
        graph, to_words = load_streaming_graph(demo.lang_dir, "H", torch.device("cpu"))
    else:
        torch.manual_seed(0)
        encoder = ConformerConfig(
            d_model=96, num_heads=4, ffn_dim=384, num_layers=4,
            conv_kernel_size=15, dropout=0.0, causal=True, subsampling_channels=32,
        )  # fmt: skip
        model = CtcModel(CtcModelConfig(encoder=encoder, vocab_size=200))
        graph = build_H(199)

        def to_words(ids: List[int]) -> List[str]:
            return [str(i) for i in ids]

    return make_recognizer(
        model.eval(), graph, to_words, STREAMING, max_batch_streams=64
    )


def client_audio(use_demo: bool, count: int, seed: int = 0) -> List[np.ndarray]:
    """``count`` waveforms of about STREAM_SECONDS: test wavs joined, or tones."""
    rng = random.Random(seed)
    if not use_demo:
        t = np.arange(int(STREAM_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
        return [
            (0.3 * np.sin(2 * np.pi * (150 + 10 * i) * t * (1 + 0.3 * t))).astype(
                np.float32
            )
            for i in range(count)
        ]
    wavs = [line.split()[1] for line in DEMO_WAVS.read_text().splitlines()]
    out = []
    for _ in range(count):
        pieces: List[np.ndarray] = []
        while sum(p.size for p in pieces) < STREAM_SECONDS * SAMPLE_RATE:
            pieces.append(read_wav(rng.choice(wavs))[0])
        out.append(np.concatenate(pieces))
    return out


def single_stream_rtf(recognizer: StreamingRecognizer, audio: np.ndarray) -> float:
    """Decoding time over audio time of one stream alone, no network."""
    dec = recognizer.decoder
    torch.set_num_threads(1)
    for key in ("warm-up", "timed"):
        start = time.perf_counter()
        dec.add_stream(key)
        dec.accept_waveform(key, torch.from_numpy(audio), SAMPLE_RATE)
        dec.input_finished(key)
        while not dec.is_final(key):
            dec.step()
        dec.remove_stream(key)
        elapsed = time.perf_counter() - start
    return elapsed / (audio.size / SAMPLE_RATE)


class ServerProcess:
    """The bench server in a child process, so clients do not share its GIL."""

    def __init__(self, use_demo: bool) -> None:
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
        command = [sys.executable, "-m", "bench.bench_serve", "--serve"]
        self.proc = subprocess.Popen(
            command + ([] if use_demo else ["--tiny"]),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        match = re.search(r"listening on (\S+)", self._line())
        grpc_match = re.search(r"listening on grpc://(\S+)", self._line())
        if match is None or grpc_match is None:
            self.proc.kill()
            raise RuntimeError("bench server did not start")
        self.url = match.group(1)
        self.grpc_target = grpc_match.group(1)

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def step_counts(self) -> Tuple[int, int]:
        """``(decoder steps, stream chunks decoded)`` so far (asks by SIGUSR1)."""
        self.proc.send_signal(signal.SIGUSR1)
        match = re.search(r"steps=(\d+) stream_chunks=(\d+)", self._line())
        assert match is not None, "bad statistics line from the bench server"
        return int(match.group(1)), int(match.group(2))

    def stop(self) -> None:
        """SIGTERM: the server's graceful shutdown."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)


async def _delayed_stream(
    target: str, audio: np.ndarray, delay: float, grpc: bool
) -> StreamResult:
    await asyncio.sleep(delay)
    if grpc:
        return await recognize(target, audio, SAMPLE_RATE, realtime=True)
    return await stream_audio(target, audio, SAMPLE_RATE, realtime=True)


def run_clients(
    target: str, audios: Sequence[np.ndarray], grpc: bool = False
) -> List[StreamResult]:
    """All clients at once, starts spread uniformly over the first second."""
    rng = random.Random(len(audios))

    async def main() -> List[StreamResult]:
        return await asyncio.gather(
            *[_delayed_stream(target, a, rng.random(), grpc) for a in audios]
        )

    return asyncio.run(main())


@dataclasses.dataclass
class LoadResult:
    """Latencies of one load level, in seconds.

    Attributes:
      num_streams: N.
      first_partial: per stream.
      final: per stream.
      partials: every partial result of every stream.
      failed: streams that did not end normally.
      mean_batch: mean streams per decoder step, from the server.
    """

    num_streams: int
    first_partial: List[float]
    final: List[float]
    partials: List[float]
    failed: int
    mean_batch: Optional[float]

    @property
    def realtime(self) -> bool:
        return (
            self.failed == 0
            and _p95(self.partials) < REALTIME_LIMIT_S
            and _p95(self.final) < REALTIME_LIMIT_S
        )


def _p95(values: Sequence[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("inf")


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("inf")


def run_level(
    server: ServerProcess, use_demo: bool, num_streams: int, grpc: bool = False
) -> LoadResult:
    """``num_streams`` real-time clients of ``server`` at once (WebSocket or gRPC)."""
    audios = client_audio(use_demo, num_streams, seed=num_streams)
    steps_before, chunks_before = server.step_counts()
    target = server.grpc_target if grpc else server.url
    results = run_clients(target, audios, grpc)
    steps, chunks = server.step_counts()
    ok = [r for r in results if r.ok]
    return LoadResult(
        num_streams,
        [r.first_partial_latency for r in ok if r.first_partial_latency is not None],
        [r.final_latency for r in ok if r.final_latency is not None],
        [p.latency for r in ok for p in r.partials],
        len(results) - len(ok),
        (chunks - chunks_before) / max(1, steps - steps_before),
    )


def _rows(levels: List[LoadResult], rtf: float, model_note: str) -> List[Row]:
    base = levels[0]
    rows = []
    for level in levels:
        n = level.num_streams
        state = "real time" if level.realtime else "NOT real time"
        note = (
            f"{state}; partial latency p95 {_p95(level.partials) * 1000:.0f} ms; "
            f"mean batch {level.mean_batch or 0:.1f} streams/step; "
            f"{level.failed} failed; {model_note}"
        )
        for name, values, base_values in (
            ("first-partial", level.first_partial, base.first_partial),
            ("final", level.final, base.final),
        ):
            for stat, fn in (("mean", _mean), ("p95", _p95)):
                rows.append(
                    Row(
                        f"{name} latency {stat}, {n} real-time "
                        + ("streams" if n > 1 else "stream"),
                        fn(values) * 1000,
                        "ms",
                        "1 stream",
                        fn(base_values) * 1000,
                        note,
                    )
                )
    sustained = [lv.num_streams for lv in levels if lv.realtime]
    rows.append(
        Row(
            "max real-time streams sustained (of "
            + ", ".join(str(lv.num_streams) for lv in levels)
            + ")",
            float(max(sustained, default=0)),
            "streams",
            "1 / RTF of one stream alone (no batching, no network)",
            1.0 / rtf,
            f"real time: p95 partial and final latency < {REALTIME_LIMIT_S:g} s; "
            f"single-stream RTF {rtf:.3f}; {model_note}",
        )
    )
    return rows


def run(workdir: Path) -> List[Row]:
    """Load levels until one is not served in real time; see the module doc."""
    use_demo = _use_demo()
    model_note = (
        "demo model (causal), greedy H"
        if use_demo
        else "no demo model: random model of the demo size on tones"
    )
    rtf = single_stream_rtf(build_recognizer(use_demo), client_audio(use_demo, 1)[0])
    server = ServerProcess(use_demo)
    levels: List[LoadResult] = []
    grpc_levels: List[LoadResult] = []
    try:
        for n in NUM_STREAMS:
            levels.append(run_level(server, use_demo, n))
            if not levels[-1].realtime:
                break
        for n in NUM_STREAMS:
            grpc_levels.append(run_level(server, use_demo, n, grpc=True))
            if not grpc_levels[-1].realtime:
                break
    finally:
        server.stop()
    return _rows(levels, rtf, model_note) + _grpc_rows(grpc_levels, levels, model_note)


def _grpc_rows(
    levels: List[LoadResult], ws_levels: List[LoadResult], model_note: str
) -> List[Row]:
    """gRPC latencies and the streams sustained, each beside WebSocket's."""
    ws = {level.num_streams: level for level in ws_levels}
    rows = []
    for level in levels:
        n = level.num_streams
        other = ws.get(n)
        state = "real time" if level.realtime else "NOT real time"
        for name, values, ws_values in (
            ("first-partial", level.first_partial, other and other.first_partial),
            ("final", level.final, other and other.final),
        ):
            for stat, fn in (("mean", _mean), ("p95", _p95)):
                rows.append(
                    Row(f"gRPC {name} latency {stat}, {n} real-time "
                        + ("streams" if n > 1 else "stream"),
                        fn(values) * 1000, "ms", "WebSocket, same N",
                        fn(ws_values) * 1000 if ws_values else None,
                        f"{state}; {level.failed} failed; {model_note}")
                )  # fmt: skip
    sustained = [lv.num_streams for lv in levels if lv.realtime]
    ws_sustained = [lv.num_streams for lv in ws_levels if lv.realtime]
    rows.append(
        Row("gRPC max real-time streams sustained", float(max(sustained, default=0)),
            "streams", "WebSocket", float(max(ws_sustained, default=0)),
            f"same server process and decode loop; {model_note}")
    )  # fmt: skip
    return rows


def _serve(use_demo: bool) -> None:
    """The server process: port 0; SIGUSR1 prints step statistics."""
    torch.set_num_threads(1)
    config = ServerConfig(
        port=0,
        grpc_port=0,
        max_clients=1000,
        streaming=STREAMING,
        max_batch_streams=64,
    )
    recognizer = build_recognizer(use_demo)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        server = AsrServer(recognizer, config)

        def print_counts() -> None:
            decoding = server.decoding
            print(f"steps={decoding.steps} stream_chunks={decoding.stream_chunks}")
            sys.stdout.flush()

        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, print_counts)
        await server.start()
        print(f"listening on {server.url}", flush=True)
        print(f"listening on grpc://{server.grpc_target}", flush=True)
        await stop.wait()
        await server.shutdown()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="bench server process")
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--tiny", action="store_true", help="tiny random model")
    _serve(not parser.parse_args().tiny)
