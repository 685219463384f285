"""Real-time streams sustained: sherpa-onnx's WebSocket server against asrk2's.

Both servers serve the demo model (sherpa-onnx: its streaming ONNX export,
``sherpa-onnx-online-websocket-server`` from the ``sherpa-onnx-bin`` wheel;
asrk2: ``local/serve.py``'s server as ``bench_serve`` runs it), greedy CTC,
chunks of 16 frames (0.64 s) with 64 frames of left context, one compute
thread each, on loopback. For N = 1, 2, 4, ... clients at once (starts spread
over the first second), each streams about 6 s of joined test utterances at
real-time pace in 0.1 s messages, then ends the stream; the final latency is
from the end message to the final result. N is sustained when every stream
ends normally and the p95 final latency stays under 1 s; the levels stop
after the first N that is not. Only final latencies are compared, because
sherpa-onnx's server sends partial results without saying which audio they
cover.

Usage:
    python bench/run.py --only sherpa_server
"""

import asyncio
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from websockets.asyncio.client import connect

from asrk2.export.onnx import STREAMING_MODEL_FILE, export_onnx
from bench import bench_serve
from bench.common import Row, demo_model

NUM_STREAMS = bench_serve.NUM_STREAMS
# sherpa-onnx's server goes further; above 256 the clients (one Python
# process) would be what is measured.
SHERPA_NUM_STREAMS = NUM_STREAMS + (192, 256)
LIMIT_S = 1.0
SAMPLE_RATE = 16000
MESSAGE_SECONDS = 0.1
Level = Tuple[int, List[float], int]  # (streams, final latencies, failed)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SherpaServer:
    """``sherpa-onnx-online-websocket-server`` on the streaming export."""

    def __init__(self, onnx_dir: Path) -> None:
        binary = shutil.which("sherpa-onnx-online-websocket-server") or str(
            Path(sys.executable).parent / "sherpa-onnx-online-websocket-server"
        )
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [binary, f"--port={self.port}", f"--tokens={onnx_dir / 'tokens.txt'}",
             f"--wenet-ctc-model={onnx_dir / STREAMING_MODEL_FILE}",
             "--wenet-ctc-chunk-size=16", "--wenet-ctc-num-left-chunks=4",
             "--num-work-threads=1", "--num-io-threads=1", "--num-threads=1",
             "--max-batch-size=32", "--enable-endpoint=false"],
            # It writes log.txt into its working directory.
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=onnx_dir,
        )  # fmt: skip
        self.url = f"ws://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("sherpa-onnx-online-websocket-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def _sherpa_stream(url: str, audio: np.ndarray, delay: float) -> Optional[float]:
    """One real-time client of sherpa-onnx's protocol (float32 samples, "Done").

    Returns:
      The final latency in seconds, or None if the stream failed.
    """
    await asyncio.sleep(delay)
    step = int(MESSAGE_SECONDS * SAMPLE_RATE)
    try:
        async with connect(url, max_size=2**20) as ws:
            start = time.perf_counter()

            async def receive() -> float:
                # Results as the text changes; after "Done" the final one,
                # then "Done!" (the connection stays open).
                async for message in ws:
                    if message == "Done!":
                        return time.perf_counter()
                raise ConnectionError("closed before the final result")

            receiver = asyncio.ensure_future(receive())
            for i, pos in enumerate(range(0, audio.size, step)):
                await asyncio.sleep(max(0.0, start + i * MESSAGE_SECONDS
                                        - time.perf_counter()))  # fmt: skip
                await ws.send(audio[pos : pos + step].astype(np.float32).tobytes())
            ended = time.perf_counter()
            await ws.send("Done")
            return await asyncio.wait_for(receiver, 60) - ended
    except Exception:  # a refused or dropped stream counts as failed
        return None


def _sherpa_level(url: str, audios: Sequence[np.ndarray]) -> Tuple[List[float], int]:
    rng = random.Random(len(audios))

    async def main() -> List[Optional[float]]:
        return await asyncio.gather(
            *[_sherpa_stream(url, a, rng.random()) for a in audios]
        )

    latencies = asyncio.run(main())
    ok = [x for x in latencies if x is not None]
    return ok, len(latencies) - len(ok)


def _p95(values: Sequence[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("inf")


def _sustained(levels: List[Level]) -> int:
    good = [n for n, final, failed in levels if not failed and _p95(final) < LIMIT_S]
    return max(good, default=0)


def _describe(levels: List[Level]) -> str:
    parts = []
    for n, final, failed in levels:
        failures = f" ({failed} failed)" if failed else ""
        parts.append(f"{n}: p95 {_p95(final) * 1000:.0f} ms{failures}")
    return ", ".join(parts)


def _run_levels(serve_level, counts: Sequence[int]) -> List[Level]:
    levels = []
    for n in counts:
        final, failed = serve_level(bench_serve.client_audio(True, n, seed=n))
        levels.append((n, final, failed))
        if failed or _p95(final) >= LIMIT_S:
            break
    return levels


def run(workdir: Path) -> List[Row]:
    """A few minutes: load levels on each server until one is not real time."""
    demo = demo_model()
    if demo is None:
        raise RuntimeError("the demo model is missing: run make demo")
    onnx = export_onnx(demo.exp_dir, demo.epoch, demo.avg, demo.lang_dir,
                       workdir / "onnx", int8=False, streaming=True)  # fmt: skip
    sherpa = SherpaServer(onnx.out_dir)
    try:
        theirs = _run_levels(lambda audios: _sherpa_level(sherpa.url, audios),
                             SHERPA_NUM_STREAMS)  # fmt: skip
    finally:
        sherpa.stop()
    server = bench_serve.ServerProcess(use_demo=True)

    def asrk2_level(audios: Sequence[np.ndarray]) -> Tuple[List[float], int]:
        results = bench_serve.run_clients(server.url, audios)
        final = [r.final_latency for r in results if r.ok and r.final_latency]
        return final, sum(not r.ok for r in results)

    try:
        ours = _run_levels(asrk2_level, NUM_STREAMS)
    finally:
        server.stop()
    top = ("; every level tried was sustained, so the limit is higher"
           if _sustained(theirs) == SHERPA_NUM_STREAMS[-1] else "")  # fmt: skip
    return [Row(
        "max real-time streams sustained, sherpa-onnx WebSocket server",
        float(_sustained(theirs)), "streams", "asrk2 WebSocket server",
        float(_sustained(ours)),
        f"demo model, greedy, chunk 16, 1 compute thread each, 2 cores{top}; p95 "
        f"final latency < {LIMIT_S:g} s; sherpa-onnx {_describe(theirs)}; "
        f"asrk2 {_describe(ours)}",
    )]  # fmt: skip
