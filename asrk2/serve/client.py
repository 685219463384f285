"""Client of the streaming ASR server: streams audio, collects results and latencies.

Example::

    result = stream_file("ws://127.0.0.1:6006/", "utt.wav", realtime=True)
    print(result.text, result.final_latency)

Latencies are measured against the time the audio was sent: a partial
result that covers ``seconds`` of audio is late by ``now - t``, where ``t``
is when the message holding sample ``seconds * sample_rate`` was sent; the
final result is late by the time since ``end`` was sent.
"""

import asyncio
import bisect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import soundfile as sf
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from asrk2.serve.protocol import float_to_pcm16

__all__ = [
    "Partial",
    "StreamResult",
    "ServerError",
    "stream_audio",
    "stream_file",
    "read_wav",
]


@dataclass
class Partial:
    """One partial result as received.

    Attributes:
      text: the hypothesis.
      seconds: audio decoded for it.
      latency: seconds since the audio up to ``seconds`` was sent.
    """

    text: str
    seconds: float
    latency: float


@dataclass
class StreamResult:
    """What one stream produced.

    Attributes:
      text: the final text ("" if none came); with segments, the texts of
        all segments joined.
      seconds: audio duration the server decoded for the final.
      partials: partial results in order of arrival.
      final_latency: seconds from sending ``end`` to the final result.
      close_code: the server's WebSocket close code (1006 if the
        connection dropped without one).
      close_reason: the close reason.
      error: the server's error name (see :mod:`asrk2.serve.protocol`).
      error_message: its message.
      segments: with ``segments=True``, every segment final as received
        (``segment``, ``text``, ``start``, ``end``, ``words``, ``last``).
      status: the gRPC status name (``OK``, ``INVALID_ARGUMENT``, ...) of a
        gRPC stream (:mod:`asrk2.serve.grpc_client`); None over WebSocket.
    """

    text: str = ""
    seconds: float = 0.0
    partials: List[Partial] = field(default_factory=list)
    final_latency: Optional[float] = None
    close_code: Optional[int] = None
    close_reason: str = ""
    error: Optional[str] = None
    error_message: str = ""
    segments: List[Dict[str, Any]] = field(default_factory=list)
    status: Optional[str] = None

    @property
    def first_partial_latency(self) -> Optional[float]:
        """Latency of the first partial result, None if there was none."""
        return self.partials[0].latency if self.partials else None

    @property
    def ok(self) -> bool:
        """A final result came and the server closed normally."""
        closed_normally = self.close_code == 1000 or self.status == "OK"
        return self.error is None and closed_normally


class ServerError(RuntimeError):
    """The server refused a stream (an ``error`` message or a close code)."""

    def __init__(self, result: StreamResult, what: str) -> None:
        detail = result.error_message or result.close_reason or "no reason given"
        super().__init__(
            f"{what}: server error {result.error or '-'} "
            f"(close code {result.close_code}): {detail}"
        )
        self.result = result


class SendClock:
    """When each sample offset was sent, for latency measurements."""

    def __init__(self) -> None:
        self.ends: List[int] = []  # sample offset after each message
        self.times: List[float] = []

    def sent(self, end_sample: int) -> None:
        self.ends.append(end_sample)
        self.times.append(time.perf_counter())

    def time_of(self, sample: int) -> float:
        """Send time of the message holding ``sample`` (the last one if beyond)."""
        if not self.times:
            return time.perf_counter()
        i = bisect.bisect_left(self.ends, sample)
        return self.times[min(i, len(self.times) - 1)]


async def paced_pieces(
    pcm: bytes, sample_rate: int, message_seconds: float, realtime: bool
) -> AsyncIterator[Tuple[bytes, int]]:
    """The audio in messages of ``message_seconds``, with the sample offset
    after each; with ``realtime`` each comes once its last sample was "spoken"."""
    step = 2 * max(1, int(round(message_seconds * sample_rate)))
    start = time.perf_counter()
    for offset in range(0, len(pcm), step):
        end_sample = min(offset + step, len(pcm)) // 2
        if realtime:
            due = start + end_sample / sample_rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        yield pcm[offset : offset + step], end_sample


async def _send_audio(
    ws: ClientConnection,
    pcm: bytes,
    sample_rate: int,
    message_seconds: float,
    realtime: bool,
    clock: SendClock,
) -> float:
    """Sends the audio and ``end``; returns the time ``end`` was sent."""
    async for piece, end_sample in paced_pieces(
        pcm, sample_rate, message_seconds, realtime
    ):
        await ws.send(piece)
        clock.sent(end_sample)
    await ws.send(json.dumps({"type": "end"}))
    return time.perf_counter()


async def _receive(
    ws: ClientConnection,
    result: StreamResult,
    clock: SendClock,
    sample_rate: int,
    on_partial: Optional[Callable[[Partial], None]],
) -> None:
    """Collects partial/final/error messages until the server closes."""
    try:
        async for message in ws:
            obj = json.loads(message)
            kind = obj.get("type")
            now = time.perf_counter()
            if kind == "partial":
                sent = clock.time_of(int(round(obj["seconds"] * sample_rate)))
                partial = Partial(obj["text"], obj["seconds"], now - sent)
                result.partials.append(partial)
                if on_partial is not None:
                    on_partial(partial)
            elif kind == "final" and "segment" in obj:
                result.segments.append(obj)
                texts = [seg["text"] for seg in result.segments if seg["text"]]
                result.text, result.seconds = " ".join(texts), obj["seconds"]
                if obj.get("last"):
                    result.final_latency = now
            elif kind == "final":
                result.text, result.seconds = obj["text"], obj["seconds"]
                result.final_latency = now  # made relative to `end` by the caller
            elif kind == "error":
                result.error, result.error_message = obj["error"], obj["message"]
    except ConnectionClosed:
        pass  # dropped without a closing handshake: close_code is 1006


async def stream_audio(
    url: str,
    samples: Union[np.ndarray, bytes],
    sample_rate: int = 16000,
    realtime: bool = False,
    message_seconds: float = 0.1,
    partials: bool = True,
    on_partial: Optional[Callable[[Partial], None]] = None,
    open_timeout: float = 10.0,
    segments: bool = False,
    hotwords: Sequence[str] = (),
) -> StreamResult:
    """Streams audio to the server and waits for its final result(s).

    Args:
      url: ``ws://host:port/``.
      samples: mono audio, float in [-1, 1] (num_samples,) or 16-bit PCM bytes.
      sample_rate: its rate in Hz, sent in ``start``.
      realtime: pace the messages as a live microphone would; else send as
        fast as the server reads.
      message_seconds: audio per binary message.
      partials: ask for partial results.
      on_partial: called with each partial result as it arrives.
      open_timeout: seconds to connect.
      segments: ask for segments at endpoints (protocol version 2): one final
        per utterance of a long stream, with word times.
      hotwords: phrases to bias this stream towards (``"ZURICH :3.0"``).
    Returns:
      The result; refusals are reported in ``error``/``close_code``, not raised.
    """
    pcm = samples if isinstance(samples, bytes) else float_to_pcm16(samples)
    result = StreamResult()
    clock = SendClock()
    async with connect(url, open_timeout=open_timeout, max_size=2**20) as ws:
        start: Dict[str, Any] = {
            "type": "start",
            "sample_rate": sample_rate,
            "partials": partials,
        }
        if segments:
            start["segments"] = True
        if hotwords:
            start["hotwords"] = list(hotwords)
        end_sent = None
        try:
            await ws.send(json.dumps(start))
            ready = json.loads(await ws.recv())  # or an error, then a close
        except ConnectionClosed:
            ready = {}
        if ready.get("type") == "ready":
            receiver = asyncio.ensure_future(
                _receive(ws, result, clock, sample_rate, on_partial)
            )
            try:
                end_sent = await _send_audio(
                    ws, pcm, sample_rate, message_seconds, realtime, clock
                )
            except ConnectionClosed:
                pass  # the server closed early: the receiver has the reason
            await receiver
        elif ready.get("type") == "error":
            result.error, result.error_message = ready["error"], ready["message"]
        await ws.wait_closed()
        result.close_code, result.close_reason = _close_info(ws)
    if result.final_latency is not None and end_sent is not None:
        result.final_latency -= end_sent
    return result


def _close_info(ws: ClientConnection) -> Tuple[Optional[int], str]:
    # 1006 (abnormal closure) when the connection dropped without a close frame.
    return ws.close_code, ws.close_reason or ""


def read_wav(path: Union[str, Path]) -> Tuple[np.ndarray, int]:
    """``(samples float32 (num_samples,), sample_rate)`` of a mono audio file.

    Raises:
      ValueError: the file has more than one channel.
    """
    samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if samples.shape[1] != 1:
        raise ValueError(f"{path}: {samples.shape[1]} channels, the server takes mono")
    return samples[:, 0], rate


def stream_file(
    url: str,
    path: Union[str, Path],
    realtime: bool = False,
    message_seconds: float = 0.1,
    on_partial: Optional[Callable[[Partial], None]] = None,
) -> StreamResult:
    """Streams a mono audio file (blocking); see :func:`stream_audio`.

    Raises:
      ServerError: the server refused the stream (e.g. ``bad_sample_rate``:
        the file's rate is not the server's; the message names the file).
    """
    samples, rate = read_wav(path)
    result = asyncio.run(
        stream_audio(
            url, samples, rate, realtime, message_seconds, on_partial=on_partial
        )
    )
    if not result.ok:
        raise ServerError(result, str(path))
    return result
