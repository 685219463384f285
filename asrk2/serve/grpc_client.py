"""A Python client of the gRPC service (asr.proto), like :mod:`asrk2.serve.client`.

Example::

    result = asyncio.run(recognize("127.0.0.1:6007", samples, segments=True))
    print(result.text, [s["text"] for s in result.segments])

Results come back as the WebSocket client's :class:`StreamResult` (segment
finals as the same dicts), so a test compares both transports directly; a
refusal is reported in ``status``/``error`` (the gRPC status code name and
its details), not raised.
"""

import time
from typing import AsyncIterator, Dict, Optional, Sequence, Union

import grpc
import numpy as np

from asrk2.serve import asr_pb2, asr_pb2_grpc
from asrk2.serve.client import Partial, SendClock, StreamResult, paced_pieces
from asrk2.serve.protocol import float_to_pcm16

__all__ = ["recognize"]


async def _requests(
    config: asr_pb2.StreamConfig,
    pcm: bytes,
    sample_rate: int,
    message_seconds: float,
    realtime: bool,
    clock: SendClock,
    sent: Dict[str, float],
) -> AsyncIterator[asr_pb2.RecognizeRequest]:
    yield asr_pb2.RecognizeRequest(config=config)
    async for piece, end_sample in paced_pieces(
        pcm, sample_rate, message_seconds, realtime
    ):
        yield asr_pb2.RecognizeRequest(audio=piece)
        clock.sent(end_sample)
    yield asr_pb2.RecognizeRequest(end=asr_pb2.End())
    sent["end"] = time.perf_counter()


def _final_dict(final: asr_pb2.Final) -> dict:
    """A segment final as the WebSocket client reports it."""
    return {
        "segment": final.segment,
        "text": final.text,
        "seconds": final.seconds,
        "start": final.start,
        "end": final.end,
        "words": [
            {"word": w.word, "start": w.start, "end": w.end} for w in final.words
        ],
        "last": final.last,
    }


async def recognize(
    target: str,
    samples: Union[np.ndarray, bytes],
    sample_rate: int = 16000,
    realtime: bool = False,
    message_seconds: float = 0.1,
    partials: bool = True,
    segments: bool = False,
    timeout: Optional[float] = None,
    hotwords: Sequence[str] = (),
) -> StreamResult:
    """Streams audio to the gRPC service and collects its results.

    Args:
      target: ``host:port``.
      samples: mono audio, float in [-1, 1] or 16-bit PCM bytes.
      sample_rate: its rate in Hz, sent in the config.
      realtime: pace the messages as a live microphone would.
      message_seconds: audio per request.
      partials: ask for partial results.
      segments: ask for segments at endpoints, with word times.
      timeout: deadline of the whole call in seconds; None: none.
      hotwords: phrases to bias this stream towards (``"ZURICH :3.0"``).
    """
    pcm = samples if isinstance(samples, bytes) else float_to_pcm16(samples)
    config = asr_pb2.StreamConfig(
        sample_rate=sample_rate,
        no_partials=not partials,
        segments=segments,
        hotwords=list(hotwords),
    )
    result, clock = StreamResult(), SendClock()
    sent: Dict[str, float] = {}
    async with grpc.aio.insecure_channel(target) as channel:
        stub = asr_pb2_grpc.StreamingAsrStub(channel)
        call = stub.Recognize(
            _requests(config, pcm, sample_rate, message_seconds, realtime, clock, sent),
            timeout=timeout,
        )
        try:
            async for response in call:
                now = time.perf_counter()
                kind = response.WhichOneof("response")
                if kind == "partial":
                    p = response.partial
                    latency = now - clock.time_of(int(round(p.seconds * sample_rate)))
                    result.partials.append(Partial(p.text, p.seconds, latency))
                elif kind == "final" and response.final.segment >= 0:
                    result.segments.append(_final_dict(response.final))
                    texts = [s["text"] for s in result.segments if s["text"]]
                    result.text, result.seconds = (
                        " ".join(texts),
                        response.final.seconds,
                    )
                    if response.final.last:
                        result.final_latency = now - sent.get("end", now)
                elif kind == "final":
                    result.text = response.final.text
                    result.seconds = response.final.seconds
                    result.final_latency = now - sent.get("end", now)
            result.status = "OK"
        except grpc.aio.AioRpcError as e:
            result.status = e.code().name
            result.error, result.error_message = e.code().name, e.details() or ""
    return result
