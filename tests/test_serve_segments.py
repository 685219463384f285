"""Protocol version 2 on loopback: a long stream cut into segments at endpoints.

The acoustic model is scripted on the real online fbank of tones: an output
frame is blank when its feature frame holds no tone (all mel bins at the
floor), else the token of the tone's mel band. So a stream of tones and
pauses has known segments, texts and times, and the whole path (PCM,
online fbank, chunked decoding, endpointing, segment finals with word
times, the protocol) is exercised without a trained model.
"""

import asyncio
import json
from typing import Iterator, List

import numpy as np
import pytest
from tone_model import (
    AUDIO,
    EXPECTED,
    PIECES,
    SAMPLE_RATE,
    WORD_TIMES,
    V,
    ToneModel,
    silence,
    words,
)

from asrk2.decode.endpoint import EndpointConfig
from asrk2.decode.streaming import StreamingOptions
from asrk2.lang.graphs import build_H
from asrk2.serve.client import stream_audio
from asrk2.serve.recognizer import make_recognizer
from asrk2.serve.server import ServerConfig, ServerThread


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    options = StreamingOptions(
        chunk_size=4, left_context_frames=8, endpoint=EndpointConfig()
    )
    recognizer = make_recognizer(
        ToneModel(), build_H(V - 1), words, options, 4, PIECES  # type: ignore[arg-type]
    )
    config = ServerConfig(port=0, streaming=options, max_buffered_seconds=2.0)
    with ServerThread(recognizer, config) as running:
        yield running


def test_a_long_stream_gives_one_final_per_segment_with_word_times(server):
    result = asyncio.run(stream_audio(server.url, AUDIO, segments=True))
    assert result.ok, result
    finals = result.segments
    assert [f["segment"] for f in finals] == list(range(len(finals)))
    spoken = [f for f in finals if f["text"]]
    assert [f["text"].split() for f in spoken] == EXPECTED
    assert finals[-1]["last"] and not any(f["last"] for f in finals[:-1])
    for final, expected in zip(spoken, WORD_TIMES):
        got = [(w["start"], w["end"]) for w in final["words"]]
        assert np.allclose(got, expected, atol=0.081), (got, expected)
        assert final["start"] <= got[0][0] and got[-1][1] <= final["end"]
    # Segments tile the stream: each starts where the previous one ended.
    assert all(b["start"] == a["end"] for a, b in zip(spoken, spoken[1:]))
    assert result.text == "A C B D"
    assert result.partials, "partials carry the segment they belong to"


def test_partials_name_their_segment(server):
    async def run() -> List[dict]:
        from websockets.asyncio.client import connect

        from asrk2.serve.protocol import float_to_pcm16

        start = {"type": "start", "sample_rate": SAMPLE_RATE, "segments": True}
        async with connect(server.url) as ws:
            await ws.send(json.dumps(start))
            ready = json.loads(await ws.recv())
            assert ready["protocol"] == 2
            pcm = float_to_pcm16(AUDIO)
            for offset in range(0, len(pcm), 16000):  # 0.5 s per message
                await ws.send(pcm[offset : offset + 16000])
            await ws.send(json.dumps({"type": "end"}))
            return [json.loads(m) async for m in ws]

    messages = asyncio.run(run())
    partials = [m for m in messages if m["type"] == "partial"]
    assert {m["segment"] for m in partials} >= {0, 1}
    # Partials carry their words' times too, inside the audio decoded so far.
    for m in partials:
        assert [w["word"] for w in m["words"]] == m["text"].split()
        assert all(0 <= w["start"] < w["end"] <= m["seconds"] + 0.2 for w in m["words"])
    assert any(m["words"] for m in partials)
    finals = [m for m in messages if m["type"] == "final"]
    # A partial of segment k comes before its final, never after.
    for final in finals:
        k = final["segment"]
        later = messages[messages.index(final) + 1 :]
        assert not any(m["type"] == "partial" and m["segment"] == k for m in later)


def test_a_version_1_client_gets_one_final_for_the_whole_stream(server):
    result = asyncio.run(stream_audio(server.url, AUDIO))
    assert result.ok and result.segments == []
    assert result.text == "A C B D"
    assert all("segment" not in str(p) for p in result.partials)


def test_silence_only_gives_one_empty_last_final(server):
    result = asyncio.run(stream_audio(server.url, silence(5.0), segments=True))
    assert result.ok
    assert [(f["text"], f["last"]) for f in result.segments] == [("", True)]
