"""The streaming WebSocket server on loopback: results against offline decoding,
and every kind of bad client against its documented error and close code."""

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union, cast

import numpy as np
import pytest
import soundfile as sf
import torch
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asrk2.decode.ctc_decode import get_lattice, one_best_token_ids
from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
from asrk2.features.fbank import FbankConfig, make_fbank_extractor
from asrk2.lang.graphs import build_H
from asrk2.model import ConformerConfig, CtcModel, CtcModelConfig
from asrk2.serve.client import ServerError, stream_audio, stream_file
from asrk2.serve.decode_loop import DecodeLoop, StreamDecoder
from asrk2.serve.protocol import float_to_pcm16
from asrk2.serve.recognizer import make_recognizer
from asrk2.serve.server import ServerConfig, ServerThread

SAMPLE_RATE = 16000
ENC = ConformerConfig(
    num_features=80, d_model=16, num_heads=2, ffn_dim=32, num_layers=2,
    conv_kernel_size=3, dropout=0.0, causal=True, subsampling_channels=8,
)  # fmt: skip
VOCAB = 6
CHUNK, LEFT = 4, 8  # 0.16 s chunks: several partial results per second
MAX_CLIENTS = 8
MAX_MESSAGE_BYTES = 8000
START = json.dumps({"type": "start", "sample_rate": SAMPLE_RATE})
END = json.dumps({"type": "end"})


def words(ids: List[int]) -> List[str]:
    return [f"t{i}" for i in ids]


@pytest.fixture(scope="module")
def model() -> CtcModel:
    torch.manual_seed(0)
    model = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=VOCAB)).eval()
    with torch.no_grad():  # sharper outputs, so that hypotheses are not empty
        model.ctc_output.weight.mul_(4.0)
    return model


def tone(seconds: float, freq: float) -> np.ndarray:
    """A chirp with noise, on the 16-bit grid so that PCM transport is exact."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(int(freq))
    wave = 0.3 * np.sin(2 * np.pi * freq * t * (1 + 0.7 * t))
    wave += 0.05 * rng.standard_normal(t.size)
    pcm = np.frombuffer(float_to_pcm16(wave), dtype="<i2")
    return (pcm / 32768.0).astype(np.float32)


def offline_text(model: CtcModel, samples: np.ndarray) -> str:
    """Whole-utterance decoding: offline fbank, chunked encoder, k2 search."""
    extractor = make_fbank_extractor(FbankConfig(num_mel_bins=80, device="cpu"))
    feats = torch.as_tensor(extractor.extract(samples, SAMPLE_RATE)).unsqueeze(0)
    with torch.no_grad():
        log_probs, lens = model(feats, torch.tensor([feats.size(1)]), CHUNK, LEFT)
    lattice = get_lattice(log_probs, lens, build_H(VOCAB - 1))
    return " ".join(words(one_best_token_ids(lattice)[0]))


def server_thread(model: CtcModel, **overrides: object) -> ServerThread:
    """A server on a free loopback port with its own decoder."""
    streaming = StreamingOptions(chunk_size=CHUNK, left_context_frames=LEFT)
    recognizer = make_recognizer(
        model, build_H(VOCAB - 1), words, streaming, max_batch_streams=4
    )
    options: Dict[str, object] = dict(
        port=0, max_clients=MAX_CLIENTS, max_message_bytes=MAX_MESSAGE_BYTES,
        streaming=streaming, max_buffered_seconds=2.0,
    )  # fmt: skip
    options.update(overrides)
    return ServerThread(recognizer, ServerConfig(**options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(model: CtcModel) -> Iterator[ServerThread]:
    with server_thread(model) as running:
        yield running


def wait_until_idle(server: ServerThread, timeout: float = 5.0) -> None:
    """Waits until the server holds no client and no decoder stream."""
    assert server.server is not None

    def counts() -> Tuple[int, int, int]:
        return (
            server.server.num_clients,  # type: ignore[union-attr]
            server.server.decoding.num_streams,  # type: ignore[union-attr]
            # Freed in the decoder too (a MultiStreamDecoder here).
            cast(MultiStreamDecoder, server.recognizer.decoder).num_streams,
        )

    deadline = time.time() + timeout
    while time.time() < deadline and counts() != (0, 0, 0):
        time.sleep(0.02)
    assert counts() == (0, 0, 0)


async def exchange(
    url: str, messages: Iterable[Union[str, bytes]]
) -> Tuple[List[dict], Optional[int], str]:
    """Sends raw messages, then reads until the server closes.

    Returns:
      ``(messages received, close code, close reason)``.
    """
    received: List[dict] = []
    async with connect(url) as ws:
        try:
            for message in messages:
                await ws.send(message)
        except ConnectionClosed:
            pass
        try:
            async for message in ws:
                received.append(json.loads(message))
        except ConnectionClosed:
            pass
    return received, ws.close_code, ws.close_reason or ""


def assert_prefixes(texts: List[str]) -> None:
    """With H (greedy CTC), each partial result extends the one before."""
    for before, after in zip(texts, texts[1:]):
        assert after.split()[: len(before.split())] == before.split()


def test_concurrent_clients_get_offline_text(
    model: CtcModel, server: ServerThread
) -> None:
    audios = [tone(s, f) for s, f in ((0.7, 200), (1.3, 300), (2.1, 250), (2.9, 400))]

    async def run() -> list:
        return await asyncio.gather(
            stream_audio(server.url, audios[0], realtime=True),
            *[stream_audio(server.url, a, message_seconds=0.05) for a in audios[1:]],
        )

    results = asyncio.run(run())
    expected = [offline_text(model, a) for a in audios]
    assert sum(bool(e) for e in expected) >= 3
    for audio, result, text in zip(audios, results, expected):
        assert result.ok, result
        assert result.text == text
        assert result.seconds == pytest.approx(audio.size / SAMPLE_RATE, abs=1e-3)
        assert len(result.partials) >= int(audio.size / SAMPLE_RATE / 0.16) - 1
        assert_prefixes([p.text for p in result.partials] + [result.text])
        seconds = [p.seconds for p in result.partials]
        assert seconds == sorted(seconds) and seconds[-1] <= result.seconds
    assert results[0].final_latency is not None and results[0].final_latency < 1.0
    wait_until_idle(server)


def test_partials_can_be_turned_off(model: CtcModel, server: ServerThread) -> None:
    audio = tone(1.0, 320)
    start = json.dumps({"type": "start", "sample_rate": SAMPLE_RATE, "partials": False})
    pcm = float_to_pcm16(audio)
    pieces = [pcm[i : i + 6000] for i in range(0, len(pcm), 6000)]
    received, code, _ = asyncio.run(exchange(server.url, [start, *pieces, END]))
    assert [m["type"] for m in received] == ["ready", "final"]
    assert received[0]["max_message_bytes"] == MAX_MESSAGE_BYTES
    assert received[1]["text"] == offline_text(model, audio)
    assert code == 1000


BAD_CLIENTS: Dict[str, Tuple[List[Union[str, bytes]], str, int]] = {
    "malformed JSON": (["{not json"], "bad_json", 1007),
    "JSON not an object": (["[1, 2]"], "bad_json", 1007),
    # Deeper than the parser's recursion limit, within the message size limit.
    "JSON nested too deeply": (["[" * 5000], "bad_json", 1007),
    "audio before start": ([b"\x00\x00" * 100], "no_start", 1008),
    "end before start": ([END], "no_start", 1008),
    "unknown type": (['{"type": "hello"}'], "bad_message", 1008),
    "no sample rate": (['{"type": "start"}'], "bad_message", 1008),
    "unknown field": (
        ['{"type": "start", "sample_rate": 16000, "rate": 1}'],
        "bad_message",
        1008,
    ),
    "sample rate a string": (
        ['{"type": "start", "sample_rate": "16000"}'],
        "bad_message",
        1008,
    ),
    "wrong sample rate": (
        ['{"type": "start", "sample_rate": 8000}'],
        "bad_sample_rate",
        1003,
    ),
    "odd-length audio": ([START, b"\x00" * 3201], "odd_length", 1007),
    "start twice": ([START, b"\x00" * 3200, START], "bad_message", 1008),
    "bad JSON mid-stream": ([START, b"\x00" * 3200, "{"], "bad_json", 1007),
}


@pytest.mark.parametrize("case", sorted(BAD_CLIENTS))
def test_bad_client_gets_error_and_close_code(server: ServerThread, case: str) -> None:
    messages, error, code = BAD_CLIENTS[case]
    received, close_code, reason = asyncio.run(exchange(server.url, messages))
    assert received[-1]["type"] == "error"
    assert received[-1]["error"] == error
    assert close_code == code
    assert reason and reason in received[-1]["message"]
    assert [m["type"] for m in received[:-1]] in ([], ["ready"])
    wait_until_idle(server)


def test_oversized_message_closes_with_1009(server: ServerThread) -> None:
    too_big = b"\x00" * (MAX_MESSAGE_BYTES + 2)
    received, code, reason = asyncio.run(exchange(server.url, [START, too_big]))
    # websockets reads ahead: the frame may be refused before "ready" is sent.
    assert [m["type"] for m in received] in ([], ["ready"])
    assert code == 1009
    assert str(MAX_MESSAGE_BYTES) in reason
    wait_until_idle(server)


def test_bad_and_vanishing_clients_leave_others_alone(
    model: CtcModel, server: ServerThread
) -> None:
    audios = [tone(1.7, 230), tone(2.3, 350)]

    async def vanish() -> None:
        """Starts a stream, sends some audio, then drops the TCP connection."""
        ws = await connect(server.url)
        await ws.send(START)
        await ws.recv()
        await ws.send(float_to_pcm16(tone(1.0, 500)))
        await asyncio.sleep(0.1)
        ws.transport.abort()

    async def run() -> list:
        return await asyncio.gather(
            *[stream_audio(server.url, a, message_seconds=0.05) for a in audios],
            vanish(),
            exchange(server.url, [START, b"\x00" * 5]),
            exchange(server.url, ["nonsense"]),
        )

    *results, _, odd, nonsense = asyncio.run(run())
    for audio, result in zip(audios, results):
        assert result.ok and result.text == offline_text(model, audio)
    assert (odd[0][-1]["error"], odd[1]) == ("odd_length", 1007)
    assert (nonsense[0][-1]["error"], nonsense[1]) == ("bad_json", 1007)
    wait_until_idle(server)


def test_client_limit(model: CtcModel, server: ServerThread) -> None:
    audio = tone(0.5, 260)

    async def run() -> Tuple[list, tuple, object]:
        held = [await connect(server.url) for _ in range(MAX_CLIENTS)]
        for ws in held:
            await ws.send(START)
            assert json.loads(await ws.recv())["type"] == "ready"
        refused = await exchange(server.url, [START])
        finals = []
        for ws in held:  # the held streams are served normally
            await ws.send(float_to_pcm16(audio[:4000]))
            await ws.send(float_to_pcm16(audio[4000:]))
            await ws.send(END)
            messages = [json.loads(m) async for m in ws]
            finals.append((messages[-1], ws.close_code))
        after = await stream_audio(server.url, audio)  # room again
        return finals, refused, after

    finals, (received, code, _), after = asyncio.run(run())
    assert [m["error"] for m in received] == ["server_full"]
    assert code == 1013
    text = offline_text(model, audio)
    assert finals == [({"type": "final", "text": text, "seconds": 0.5}, 1000)] * 8
    assert after.ok and after.text == text  # type: ignore[attr-defined]
    wait_until_idle(server)


def test_start_and_idle_timeouts(model: CtcModel) -> None:
    with server_thread(model, start_timeout=0.3, idle_timeout=0.5) as srv:
        silent = asyncio.run(exchange(srv.url, []))
        idle = asyncio.run(exchange(srv.url, [START, b"\x00" * 3200]))
    for (received, code, _), what in ((silent, "'start'"), (idle, "audio")):
        assert received[-1]["error"] == "timeout" and code == 1008
        assert what in received[-1]["message"]


def test_wrong_rate_file_is_refused_naming_it(server: ServerThread, tmp_path) -> None:
    path = tmp_path / "narrowband.wav"
    sf.write(path, tone(0.5, 300), 8000, subtype="PCM_16")
    with pytest.raises(ServerError, match="narrowband.wav.*bad_sample_rate"):
        stream_file(server.url, path)


def test_graceful_shutdown(model: CtcModel) -> None:
    audio = tone(3.0, 270)
    srv = server_thread(model).__enter__()

    async def run() -> tuple:
        idle = await connect(srv.url)  # never sends start
        stream = asyncio.ensure_future(stream_audio(srv.url, audio, realtime=True))
        await asyncio.sleep(1.0)
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        result = await stream
        await idle.wait_closed()
        stopper.join()
        return result, idle.close_code

    result, idle_code = asyncio.run(run())
    assert idle_code == 1001
    assert result.close_code == 1001 and result.error is None
    # The final result covers the audio received before the shutdown.
    received = int(round(result.seconds * SAMPLE_RATE))
    assert 0.5 < result.seconds < 2.0
    assert result.text == offline_text(model, audio[:received])
    with pytest.raises(OSError):  # no longer listening
        asyncio.run(stream_audio(srv.url, audio))


def test_microphone_page_over_http(server: ServerThread) -> None:
    http = server.url.replace("ws://", "http://")
    with urllib.request.urlopen(http) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        page = response.read().decode()
    assert "<title>asrk2 streaming ASR</title>" in page and "getUserMedia" in page
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(http + "nothing-here")
    assert error.value.code == 404


class _StalledDecoder:
    """A decoder that accepts audio but never has a chunk ready."""

    def __init__(self) -> None:
        self.samples: Dict[str, int] = {}
        self.total = 0

    def add_stream(self, key: str, endpointing: Optional[bool] = None) -> None:
        self.samples[key] = 0

    def accept_waveform(self, key: str, samples: torch.Tensor, rate: int) -> None:
        self.samples[key] += samples.numel()
        self.total += samples.numel()

    def ready_keys(self) -> List[str]:
        return []

    def remove_stream(self, key: str) -> None:
        del self.samples[key]


def test_feed_waits_while_the_stream_buffer_is_full() -> None:
    decoder = _StalledDecoder()

    async def run() -> None:
        # A partial fake: only the methods the loop calls in this test.
        fake = cast(StreamDecoder, decoder)
        loop = DecodeLoop(fake, SAMPLE_RATE, 0.1, 0.0, max_buffered_seconds=1.0)
        loop.start()
        loop.open("a", sink=None)  # type: ignore[arg-type]
        half_second = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
        for _ in range(2):
            await asyncio.wait_for(loop.feed("a", half_second), 1.0)
        blocked = asyncio.ensure_future(loop.feed("a", half_second))
        await asyncio.sleep(0.3)
        assert not blocked.done()
        assert loop.buffered_seconds("a") == pytest.approx(1.0)
        loop.remove("a")  # e.g. the client vanished: the waiting feed returns
        await asyncio.wait_for(blocked, 1.0)
        await loop.close()

    asyncio.run(run())
    assert decoder.total == SAMPLE_RATE  # 1 s got in, the blocked 0.5 s never did
    assert decoder.samples == {}  # and the stream was removed from the decoder
