"""Per-stream hotwords over WebSocket and gRPC: a graph of the stream's own.

The scripted tone model (``tone_model``) puts P(blank) = 0.99 on silent
frames, so a boost of 20 per token for the phrase "D" makes the search put
a D on many silent frames: a blunt effect, but one that shows exactly which
streams were biased. A stream without hotwords, decoded at the same time by
the same decoder, keeps the plain result.
"""

import asyncio
import json
from typing import Iterator, List, Optional

import pytest
from tone_model import AUDIO, PIECES, SAMPLE_RATE, V, ToneModel, words
from websockets.asyncio.client import connect

from asrk2.decode.hotwords import HotwordUnits
from asrk2.decode.streaming import StreamingOptions
from asrk2.lang.graphs import build_H
from asrk2.serve.client import stream_audio
from asrk2.serve.grpc_client import recognize
from asrk2.serve.recognizer import make_recognizer
from asrk2.serve.server import ServerConfig, ServerThread

LETTERS = {p[1:]: i for i, p in enumerate(PIECES) if i > 0}


def to_ids(phrase: List[str]) -> Optional[List[int]]:
    ids = [LETTERS.get(w) for w in phrase]
    return None if None in ids else ids  # type: ignore[return-value]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    options = StreamingOptions(chunk_size=4, left_context_frames=8)
    recognizer = make_recognizer(
        ToneModel(),  # type: ignore[arg-type]
        build_H(V - 1), words, options, 4, PIECES, HotwordUnits(to_ids, V - 1),
    )  # fmt: skip
    config = ServerConfig(port=0, grpc_port=0, streaming=options)
    with ServerThread(recognizer, config) as running:
        yield running


async def ready_of(url: str, start: dict) -> dict:
    async with connect(url) as ws:
        message = {"type": "start", "sample_rate": SAMPLE_RATE, **start}
        await ws.send(json.dumps(message))
        return json.loads(await ws.recv())


def test_only_the_stream_with_hotwords_is_biased(server):
    async def both():
        return await asyncio.gather(
            stream_audio(server.url, AUDIO, hotwords=["D :20"]),
            stream_audio(server.url, AUDIO),
        )

    biased, plain = asyncio.run(both())
    assert plain.ok and plain.text == "A C B D"
    assert biased.ok and biased.text.split().count("D") > 3
    # The D's split the repeated frames of a tone into several tokens.
    assert set(biased.text.split()) == {"A", "B", "C", "D"}


def test_grpc_streams_get_the_same_hotwords(server):
    assert server.server is not None
    over_grpc = asyncio.run(
        recognize(server.server.grpc_target, AUDIO, hotwords=["D :20"])
    )
    over_ws = asyncio.run(stream_audio(server.url, AUDIO, hotwords=["D :20"]))
    assert over_grpc.status == "OK" and over_grpc.text == over_ws.text


def test_ready_reports_skipped_phrases(server):
    ready = asyncio.run(ready_of(server.url, {"hotwords": ["D :2", "ZORBLAX", " "]}))
    assert ready["type"] == "ready"
    assert ready["hotwords"] == {"kept": 1, "skipped": ["ZORBLAX"]}  # " ": ignored


@pytest.mark.parametrize(
    "start, message",
    [
        ({"hotwords": "D"}, "must be list"),
        ({"hotwords": ["D", 3]}, "list of strings"),
        ({"hotwords": ["D :-1"]}, "boost must be > 0"),
        ({"hotwords": ["D"], "hotwords_score": 0}, "hotwords_score must be > 0"),
    ],
)
def test_bad_hotwords_are_bad_messages(server, start, message):
    reply = asyncio.run(ready_of(server.url, start))
    assert reply["type"] == "error" and reply["error"] == "bad_message"
    assert message in reply["message"]
