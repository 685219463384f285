"""The gRPC service on loopback, served beside the WebSocket one from one decoder.

Same audio, same results over both transports; and every limit and error
case of the WebSocket server mapped to its gRPC status code, the server
staying up for the next client.
"""

import asyncio
import time
from typing import AsyncIterator, Iterator, List

import grpc
import numpy as np
import pytest
from tone_model import AUDIO, EXPECTED, PIECES, SAMPLE_RATE, V, ToneModel, words

from asrk2.decode.streaming import StreamingOptions
from asrk2.lang.graphs import build_H
from asrk2.serve import asr_pb2
from asrk2.serve.client import stream_audio
from asrk2.serve.grpc_client import recognize
from asrk2.serve.protocol import float_to_pcm16
from asrk2.serve.recognizer import make_recognizer
from asrk2.serve.server import ServerConfig, ServerThread

MAX_MESSAGE_BYTES = 8000
METHOD = "/asrk2.StreamingAsr/Recognize"


def server_thread(**overrides: object) -> ServerThread:
    options = StreamingOptions(chunk_size=4, left_context_frames=8)
    recognizer = make_recognizer(
        ToneModel(), build_H(V - 1), words, options, 4, PIECES  # type: ignore[arg-type]
    )
    settings = dict(
        port=0, grpc_port=0, streaming=options, max_clients=4,
        max_message_bytes=MAX_MESSAGE_BYTES, max_buffered_seconds=2.0,
    )  # fmt: skip
    settings.update(overrides)
    return ServerThread(recognizer, ServerConfig(**settings))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with server_thread() as running:
        yield running


def target(server: ServerThread) -> str:
    assert server.server is not None
    return server.server.grpc_target


def config_request(rate: int = SAMPLE_RATE) -> asr_pb2.RecognizeRequest:
    return asr_pb2.RecognizeRequest(config=asr_pb2.StreamConfig(sample_rate=rate))


def audio_request(samples: np.ndarray) -> asr_pb2.RecognizeRequest:
    return asr_pb2.RecognizeRequest(audio=float_to_pcm16(samples))


async def _call(address: str, requests: List[object], raw: bool = False) -> str:
    """Sends ``requests`` (protobufs, or bytes with ``raw``); the status name."""

    async def stream() -> AsyncIterator[object]:
        for r in requests:
            yield r
        await asyncio.sleep(30)  # keep the stream open: the server must answer

    serialize = (lambda b: b) if raw else asr_pb2.RecognizeRequest.SerializeToString
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            METHOD, request_serializer=serialize,
            response_deserializer=asr_pb2.RecognizeResponse.FromString,
        )(stream())  # fmt: skip
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as e:
            return f"{e.code().name}: {e.details()}"
    return "OK"


def call(address: str, requests: List[object], raw: bool = False) -> str:
    return asyncio.run(asyncio.wait_for(_call(address, requests, raw), 20))


@pytest.mark.parametrize("segments", [False, True])
def test_grpc_and_websocket_give_the_same_results(server, segments):
    over_grpc = asyncio.run(recognize(target(server), AUDIO, segments=segments))
    over_ws = asyncio.run(stream_audio(server.url, AUDIO, segments=segments))
    assert over_grpc.ok and over_ws.ok, (over_grpc, over_ws)
    assert over_grpc.text == over_ws.text == "A C B D"
    if segments:
        texts = [[s["text"] for s in r.segments] for r in (over_grpc, over_ws)]
        assert texts[0] == texts[1]
        assert [t.split() for t in texts[0] if t] == EXPECTED
        for a, b in zip(over_grpc.segments, over_ws.segments):
            assert a["start"] == pytest.approx(b["start"], abs=1e-3)
            assert [w["word"] for w in a["words"]] == [w["word"] for w in b["words"]]
            ends = [[w["end"] for w in r["words"]] for r in (a, b)]
            assert np.allclose(ends[0], ends[1], atol=1e-3)
    assert over_grpc.partials and over_grpc.final_latency is not None


@pytest.mark.parametrize(
    "requests, status",
    [
        ([config_request(8000)], "INVALID_ARGUMENT: sample_rate 8000 Hz"),
        ([audio_request(AUDIO[:1600])], "FAILED_PRECONDITION: audio before config"),
        ([config_request(), config_request()], "INVALID_ARGUMENT: config sent twice"),
        ([config_request(), asr_pb2.RecognizeRequest(audio=b"\x01\x02\x03")],
         "INVALID_ARGUMENT: binary message of 3 bytes"),
        ([config_request(), audio_request(AUDIO[: MAX_MESSAGE_BYTES])],
         "RESOURCE_EXHAUSTED"),
    ],
)  # fmt: skip
def test_bad_requests_get_their_status_code(server, requests, status):
    assert call(target(server), requests).startswith(status)
    # The server goes on serving.
    assert asyncio.run(recognize(target(server), AUDIO[:8000])).status == "OK"


def test_a_malformed_message_is_an_error_not_a_crash(server):
    status = call(target(server), [b"\xff\xff\xff garbage"], raw=True)
    assert status.startswith("INVALID_ARGUMENT: malformed request")
    assert asyncio.run(recognize(target(server), AUDIO[:8000])).status == "OK"


def test_start_and_idle_timeouts():
    with server_thread(start_timeout=0.3, idle_timeout=0.3) as short:
        assert call(target(short), []).startswith("DEADLINE_EXCEEDED: no config")
        idle = [config_request(), audio_request(AUDIO[:1600])]
        assert call(target(short), idle).startswith("DEADLINE_EXCEEDED: no audio")


def test_client_limit_counts_both_transports():
    with server_thread(max_clients=1) as one:

        async def run() -> List[str]:
            # A WebSocket client holds the only place while gRPC asks for one.
            ws = asyncio.ensure_future(
                stream_audio(one.url, AUDIO, realtime=True, message_seconds=0.2)
            )
            await asyncio.sleep(0.5)
            refused = await _call(target(one), [config_request()])
            await ws
            return [refused, (await ws).text]

        refused, text = asyncio.run(run())
        assert refused.startswith("RESOURCE_EXHAUSTED: the server already serves 1")
        assert text == "A C B D"


def test_shutdown_gives_open_streams_their_final():
    running = server_thread(shutdown_timeout=5.0)
    running.__enter__()

    async def run():
        call = asyncio.ensure_future(
            recognize(target(running), AUDIO, realtime=True, message_seconds=0.2)
        )
        await asyncio.sleep(1.2)  # into the first pause: "A" was heard
        await asyncio.get_running_loop().run_in_executor(None, running.stop)
        return await call

    start = time.perf_counter()
    result = asyncio.run(run())
    assert time.perf_counter() - start < 10
    assert result.status == "OK" and result.text.startswith("A"), result


def test_the_command_line_client_over_both_transports(server, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import soundfile as sf

    wav = tmp_path / "tones.wav"
    sf.write(str(wav), AUDIO, SAMPLE_RATE, subtype="PCM_16")
    script = Path(__file__).resolve().parent.parent / "local" / "stream_client.py"
    for transport in (["--url", server.url], ["--grpc", target(server)]):
        command = [sys.executable, str(script), str(wav), "--segments", "--quiet"]
        run = subprocess.run(
            command + transport, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert lines[0] == f"{wav}: A C B D"
        assert [line.split("] ")[1] for line in lines[1:]] == ["A", "C B", "D"]
