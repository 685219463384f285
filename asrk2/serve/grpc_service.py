"""The streaming ASR service over gRPC, beside the WebSocket one (asr.proto).

It serves from the same :class:`~asrk2.serve.decode_loop.DecodeLoop` as the
WebSocket server (one process may serve both; streams of both transports
batch together), with the same limits. Protocol errors map to gRPC status
codes:

=================  ======================  ===================================
error              status                  when
=================  ======================  ===================================
bad_message        INVALID_ARGUMENT        config twice, no config, a request
                                           that is not a RecognizeRequest
odd_length         INVALID_ARGUMENT        audio of an odd number of bytes
bad_sample_rate    INVALID_ARGUMENT        ``sample_rate`` is not the server's
no_start           FAILED_PRECONDITION     audio or ``end`` before ``config``
timeout            DEADLINE_EXCEEDED       no config within the start timeout,
                                           no message within the idle timeout
server_full        RESOURCE_EXHAUSTED      ``max_clients`` streams are open
(too big)          RESOURCE_EXHAUSTED      a message over ``max_message_bytes``
                                           (gRPC's own receive limit)
internal           INTERNAL                decoding of this stream failed
shutting_down      UNAVAILABLE             shutdown before ``config``
=================  ======================  ===================================

On shutdown a stream that sent its config gets the final result of the audio
received so far (within the shutdown timeout), then status OK.
"""

import asyncio
import logging
from typing import TYPE_CHECKING, AsyncIterator, Dict, Optional, Union

import grpc
from google.protobuf.message import DecodeError

from asrk2.serve import asr_pb2, asr_pb2_grpc
from asrk2.serve.protocol import (
    PROTOCOL_VERSION,
    FinalResult,
    PartialResult,
    ProtocolError,
    StartMessage,
    pcm16_to_float,
)
from asrk2.serve.results import ResultStream, StreamFailed

if TYPE_CHECKING:  # the server owns the service; no import cycle at run time
    from asrk2.serve.server import AsrServer

__all__ = ["STATUS_CODES", "AsrService", "response_of"]

log = logging.getLogger(__name__)

STATUS_CODES: Dict[str, grpc.StatusCode] = {
    "bad_json": grpc.StatusCode.INVALID_ARGUMENT,
    "odd_length": grpc.StatusCode.INVALID_ARGUMENT,
    "bad_message": grpc.StatusCode.INVALID_ARGUMENT,
    "no_start": grpc.StatusCode.FAILED_PRECONDITION,
    "timeout": grpc.StatusCode.DEADLINE_EXCEEDED,
    "bad_sample_rate": grpc.StatusCode.INVALID_ARGUMENT,
    "server_full": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "internal": grpc.StatusCode.INTERNAL,
    "shutting_down": grpc.StatusCode.UNAVAILABLE,
}
# Bytes a RecognizeRequest adds around its audio (field tag and length).
_ENVELOPE_BYTES = 16


def response_of(result: Union[PartialResult, FinalResult]) -> asr_pb2.RecognizeResponse:
    """The protobuf response of a result."""
    segment = -1 if result.segment is None else result.segment
    words = [asr_pb2.Word(word=w.word, start=w.start, end=w.end) for w in result.words]
    if isinstance(result, PartialResult):
        partial = asr_pb2.Partial(
            text=result.text, seconds=result.seconds, segment=segment, words=words
        )
        return asr_pb2.RecognizeResponse(partial=partial)
    final = asr_pb2.Final(
        text=result.text,
        seconds=result.seconds,
        segment=segment,
        start=result.start,
        end=result.end,
        words=words,
        last=result.last,
    )
    return asr_pb2.RecognizeResponse(final=final)


class AsrService(asr_pb2_grpc.StreamingAsrServicer):
    """``StreamingAsr.Recognize`` over an :class:`AsrServer`'s decode loop.

    Args:
      server: the server whose decode loop, limits and client count it shares.
    """

    def __init__(self, server: "AsrServer") -> None:
        self.server = server

    @staticmethod
    def options(max_message_bytes: int) -> list:
        """Channel options for ``grpc.aio.server`` (the message size limit)."""
        limit = max_message_bytes + _ENVELOPE_BYTES
        return [("grpc.max_receive_message_length", limit)]

    async def Recognize(
        self,
        request_iterator: AsyncIterator[asr_pb2.RecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[asr_pb2.RecognizeResponse]:
        server, cfg = self.server, self.server.config
        requests = request_iterator.__aiter__()
        reader: Optional[asyncio.Future] = None
        key: Optional[int] = None
        try:
            # The first message is read before anything is refused: a call
            # aborted before it reads any request is answered unreliably.
            first = await self._next(requests, cfg.start_timeout, "config")
            if server.num_clients >= cfg.max_clients:
                raise ProtocolError(
                    "server_full",
                    f"the server already serves {cfg.max_clients} clients; "
                    "try again later",
                )
            server.num_clients += 1
            key = server.next_stream_key()
            if first is None and server.stopping.is_set():
                raise ProtocolError("shutting_down", "server shutting down")
            if first is None:
                raise ProtocolError("bad_message", "the stream ended before config")
            config = self._check_config(first)
            start = StartMessage(
                config.sample_rate,
                not config.no_partials,
                config.segments,
                tuple(config.hotwords),
                config.hotwords_score or None,
            )
            graph, hotwords = await server.stream_graph(start)
            results = ResultStream(server.recognizer, start.partials, start.segments)
            server.decoding.open(key, results, segments=start.segments, graph=graph)
            yield asr_pb2.RecognizeResponse(
                ready=asr_pb2.Ready(
                    protocol=PROTOCOL_VERSION,
                    sample_rate=cfg.sample_rate,
                    max_message_bytes=cfg.max_message_bytes,
                    chunk_seconds=server.recognizer.timing.chunk_seconds,
                    hotwords_kept=hotwords["kept"] if hotwords else 0,
                    hotwords_skipped=hotwords["skipped"] if hotwords else [],
                )
            )
            reader = asyncio.ensure_future(self._read_audio(requests, key))
            async for result in _until_failure(results, reader):
                yield response_of(result)
        except ProtocolError as e:
            log.info("gRPC stream %s: %s: %s", key, e.error, e)
            await context.abort(STATUS_CODES[e.error], e.message)
        except StreamFailed as e:
            await context.abort(STATUS_CODES["internal"], str(e))
        finally:
            if reader is not None:
                reader.cancel()
            if key is not None:
                server.num_clients -= 1
                server.decoding.remove(key)

    def _check_config(self, request: asr_pb2.RecognizeRequest) -> asr_pb2.StreamConfig:
        kind = request.WhichOneof("request")
        if kind != "config":
            raise ProtocolError(
                "no_start", f"{kind or 'an empty message'} before config"
            )
        rate = self.server.config.sample_rate
        if request.config.sample_rate != rate:
            raise ProtocolError(
                "bad_sample_rate",
                f"sample_rate {request.config.sample_rate} Hz is not supported: this "
                f"server takes {rate} Hz mono (resample the audio first)",
            )
        return request.config

    async def _read_audio(
        self, requests: AsyncIterator[asr_pb2.RecognizeRequest], key: int
    ) -> None:
        """Feeds audio to the decode loop until ``end``, the stream's end or
        shutdown."""
        cfg = self.server.config
        while True:
            request = await self._next(requests, cfg.idle_timeout, "audio")
            if request is None:
                break
            kind = request.WhichOneof("request")
            if kind == "audio":
                await self.server.decoding.feed(key, pcm16_to_float(request.audio))
            elif kind == "end":
                break
            else:
                raise ProtocolError("bad_message", "config sent twice")
        self.server.decoding.finish(key)

    async def _next(
        self,
        requests: AsyncIterator[asr_pb2.RecognizeRequest],
        timeout: float,
        what: str,
    ) -> Optional[asr_pb2.RecognizeRequest]:
        """The next request; None when the client's stream ended or on shutdown."""
        stopping = self.server.stopping
        if stopping.is_set():
            return None
        receive = asyncio.ensure_future(requests.__anext__())
        stop = asyncio.ensure_future(stopping.wait())
        done, _ = await asyncio.wait(
            {receive, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        stop.cancel()
        if receive in done:
            try:
                return receive.result()
            except StopAsyncIteration:
                return None
            except DecodeError as e:  # bytes that are not a RecognizeRequest
                raise ProtocolError("bad_message", f"malformed request: {e}") from None
        receive.cancel()
        if stop in done:
            return None
        raise ProtocolError("timeout", f"no {what} message within {timeout:g} s")


async def _until_failure(
    results: ResultStream, reader: asyncio.Future
) -> AsyncIterator[Union[PartialResult, FinalResult]]:
    """The stream's results; raises the reader's error as soon as it has one."""
    stream = results.results()
    try:
        while True:
            item = asyncio.ensure_future(stream.__anext__())
            done, _ = await asyncio.wait(
                {item, reader}, return_when=asyncio.FIRST_COMPLETED
            )
            if reader in done and reader.exception() is not None:
                item.cancel()
                await asyncio.gather(item, return_exceptions=True)
                raise reader.exception()  # type: ignore[misc]
            try:
                result = await item
            except StopAsyncIteration:
                return
            yield result
    finally:
        await stream.aclose()
