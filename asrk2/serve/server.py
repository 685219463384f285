"""Streaming ASR over WebSockets: many clients batched through one decoder.

Each connection is one stream (protocol: :mod:`asrk2.serve.protocol`). The
handler reads the client's messages, queues audio for the shared
:class:`~asrk2.serve.decode_loop.DecodeLoop` and sends results back; one
decode loop batches the streams of all clients.

Example::

    model, _ = load_model(Path("exp/demo"))
    recognizer = load_recognizer(model, "data/lang_bpe_500", "H", StreamingOptions())
    run_server(ServerConfig(port=6006), recognizer)  # until SIGINT/SIGTERM

Limits that keep the server up under bad or too many clients: ``max_clients``
open connections, ``max_message_bytes`` per message (1009 above it), at most
``max_buffered_seconds`` of undecoded audio per stream (then TCP
back-pressure), ``max_queue`` messages buffered by websockets per connection,
and timeouts for the opening handshake, the ``start`` message and idle
streams.
"""

import asyncio
import itertools
import logging
import signal
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union, cast

import grpc
import k2
import torch
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from asrk2.decode.streaming import StreamingOptions
from asrk2.model.ctc_model import CtcModel
from asrk2.serve.asr_pb2_grpc import add_StreamingAsrServicer_to_server
from asrk2.serve.decode_loop import DecodeLoop
from asrk2.serve.grpc_service import AsrService
from asrk2.serve.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    EndMessage,
    ProtocolError,
    StartMessage,
    error_message,
    parse_text_message,
    pcm16_to_float,
    ready_message,
    result_message,
)
from asrk2.serve.recognizer import StreamingRecognizer, load_recognizer
from asrk2.serve.results import ResultStream, StreamFailed

__all__ = [
    "ServerConfig",
    "AsrServer",
    "ServerThread",
    "run_server",
    "serve_model",
]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class ServerConfig:
    """Network, limits and decoding options of the server.

    Attributes:
      host: interface to listen on; the default only serves this machine.
      port: TCP port of the WebSocket server; 0 picks a free one (see
        :attr:`AsrServer.port`).
      grpc_port: also serve gRPC (:mod:`asrk2.serve.grpc_service`) on this
        port, from the same decoder; 0 picks a free one; None: no gRPC.
      max_clients: open connections served at once; more get ``server_full``.
      max_message_bytes: largest message accepted (1 s of 16 kHz audio).
      sample_rate: the only audio rate accepted, in Hz.
      graph: decoding graph, ``H``, ``HL`` or ``HLG``.
      streaming: chunk size, attention cache, beams and finals of the
        decoder. The left context is bounded by default (64 frames): the
        cache of an unbounded one grows with the stream, and the decoder only
        batches streams with equal cache lengths, i.e. with a bounded cache
        all streams after their first ``left_context_frames / chunk_size``
        chunks. ``local/serve.py`` starts from the checkpoint's beams.
      max_batch_streams: most streams the decoder batches in one step.
      max_buffered_seconds: per stream, undecoded audio above which the
        server stops reading from that client.
      max_queue: messages websockets buffers per connection before it stops
        reading the socket.
      open_timeout: seconds for the opening handshake.
      start_timeout: seconds from connecting to the ``start`` message.
      idle_timeout: seconds without a message in a stream before ``timeout``.
      shutdown_timeout: seconds open streams get to finish on shutdown.
      num_threads: torch intra-op threads of the decoder's worker thread.
      device: where the model runs (``cpu``, ``cuda``).
    """

    host: str = "127.0.0.1"
    port: int = 6006
    grpc_port: Optional[int] = None
    max_clients: int = 32
    max_message_bytes: int = 32000
    sample_rate: int = 16000
    graph: str = "H"
    streaming: StreamingOptions = field(
        default_factory=lambda: StreamingOptions(left_context_frames=64)
    )
    max_batch_streams: int = 32
    max_buffered_seconds: float = 10.0
    max_queue: int = 16
    open_timeout: float = 10.0
    start_timeout: float = 10.0
    idle_timeout: float = 30.0
    shutdown_timeout: float = 10.0
    num_threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("max_clients", "max_message_bytes", "sample_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.graph not in ("H", "HL", "HLG"):
            raise ValueError(f"graph must be H, HL or HLG, got {self.graph!r}")


class AsrServer:
    """The WebSocket server; create and use it inside one event loop.

    Args:
      recognizer: decoder and output mapping shared by all streams.
      config: network, limits and timeouts.
    """

    def __init__(self, recognizer: StreamingRecognizer, config: ServerConfig) -> None:
        self.recognizer = recognizer
        self.config = config
        self.decoding = DecodeLoop(
            recognizer.decoder,
            config.sample_rate,
            recognizer.timing.chunk_seconds,
            recognizer.timing.lookahead_seconds,
            config.max_buffered_seconds,
            config.num_threads,
        )
        self.num_clients = 0
        self._keys = itertools.count()
        self._server: Optional[Server] = None
        self._stopping: Optional[asyncio.Event] = None
        self._page: Optional[str] = None
        self._port: Optional[int] = None
        self._grpc: Optional[grpc.aio.Server] = None
        self._grpc_port: Optional[int] = None

    @property
    def port(self) -> int:
        """The TCP port listened on (useful with ``port=0``)."""
        assert self._port is not None, "start() first"
        return self._port

    @property
    def url(self) -> str:
        """``ws://host:port/`` of the server."""
        return f"ws://{self.config.host}:{self.port}/"

    @property
    def grpc_target(self) -> str:
        """``host:port`` of the gRPC service (with ``config.grpc_port`` set)."""
        assert self._grpc_port is not None, "no gRPC port configured"
        return f"{self.config.host}:{self._grpc_port}"

    @property
    def stopping(self) -> asyncio.Event:
        """Set once shutdown began (for the transports' handlers)."""
        assert self._stopping is not None, "start() first"
        return self._stopping

    async def stream_graph(
        self, start: StartMessage
    ) -> Tuple[Optional[k2.Fsa], Optional[Dict[str, Any]]]:
        """The graph of a stream with hotwords of its own, and the report for ``ready``.

        Built in a worker thread (a composition with the decoding graph), so
        the event loop keeps serving the other clients meanwhile.

        Returns:
          ``(graph, report)``; both None without hotwords.
        Raises:
          ProtocolError: ``bad_message`` for a bad boost or a server without
            per-stream hotwords.
        """
        if not start.hotwords:
            return None, None
        boost = start.hotwords_score or self.config.streaming.hotwords.hotwords_score
        loop = asyncio.get_running_loop()
        try:
            graph, report = await loop.run_in_executor(
                None, self.recognizer.stream_graph, start.hotwords, boost
            )
        except ValueError as e:
            raise ProtocolError("bad_message", f"hotwords: {e}") from None
        skipped = [text for _, text, _ in report.skipped]
        return graph, {"kept": report.kept, "skipped": skipped}

    def next_stream_key(self) -> int:
        """A key for a new stream in the decode loop, unique across transports."""
        return next(self._keys)

    async def start(self) -> None:
        """Starts the decode loop and listens."""
        self._stopping = asyncio.Event()
        self.decoding.start()
        cfg = self.config
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            process_request=self._process_request,
            open_timeout=cfg.open_timeout,
            max_size=cfg.max_message_bytes,
            max_queue=cfg.max_queue,
        )
        # websockets types ``sockets`` as an Iterable; it is asyncio's tuple.
        sockets = cast(Sequence[socket.socket], self._server.sockets)
        self._port = sockets[0].getsockname()[1]
        log.info("serving on %s (max %d clients)", self.url, cfg.max_clients)
        if cfg.grpc_port is not None:
            self._grpc = grpc.aio.server(
                options=AsrService.options(cfg.max_message_bytes)
            )
            add_StreamingAsrServicer_to_server(AsrService(self), self._grpc)
            address = f"{cfg.host}:{cfg.grpc_port}"
            self._grpc_port = self._grpc.add_insecure_port(address)
            await self._grpc.start()
            log.info("serving gRPC on %s", self.grpc_target)

    async def shutdown(self) -> None:
        """Stops accepting; lets open streams finish, then closes them with 1001.

        Streams that sent ``start`` get the final result of the audio
        received so far if it is decoded within ``shutdown_timeout``.
        """
        if self._server is None or self._stopping is None:
            return
        log.info("shutting down: %d open connections", self.num_clients)
        self._stopping.set()
        self._server.close(close_connections=False)
        grpc_stopped = None
        if self._grpc is not None:
            # Open gRPC streams finish within the grace time, then are cancelled.
            grpc_stopped = asyncio.ensure_future(
                self._grpc.stop(self.config.shutdown_timeout)
            )
        try:
            await asyncio.wait_for(
                self._server.wait_closed(), self.config.shutdown_timeout
            )
        except asyncio.TimeoutError:
            log.warning("shutdown timeout: closing the remaining connections")
            await asyncio.gather(
                *[
                    ws.close(CLOSE_GOING_AWAY, "server shutting down")
                    for ws in self._server.connections
                ]
            )
            await self._server.wait_closed()
        if grpc_stopped is not None:
            await grpc_stopped
        await self.decoding.close()
        log.info("server stopped")

    # ----- HTTP ------------------------------------------------------------

    def _process_request(
        self, ws: ServerConnection, request: Request
    ) -> Optional[Response]:
        """Serves the microphone page on plain ``GET /``; WebSocket otherwise."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        if request.path.split("?")[0] not in ("/", "/index.html"):
            return ws.respond(404, "Not found\n")
        if self._page is None:
            self._page = (STATIC_DIR / "index.html").read_text()
        response = ws.respond(200, self._page)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response

    # ----- one connection ------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        """Serves one connection from ``start`` to its close."""
        if self.num_clients >= self.config.max_clients:
            await _close_with_error(
                ws,
                ProtocolError(
                    "server_full",
                    f"the server already serves {self.config.max_clients} "
                    "clients; try again later",
                ),
            )
            return
        self.num_clients += 1
        key = self.next_stream_key()
        try:
            await self._serve_stream(ws, key)
        except ProtocolError as e:
            log.info("client %s stream %d: %s: %s", _peer(ws), key, e.error, e)
            await _close_with_error(ws, e)
        except ConnectionClosed:
            log.info("client %s stream %d: connection lost", _peer(ws), key)
        except Exception as e:  # a bug: this client fails, the server stays
            log.exception("client %s stream %d failed", _peer(ws), key)
            await _close_with_error(ws, ProtocolError("internal", repr(e)))
        finally:
            self.num_clients -= 1
            self.decoding.remove(key)

    async def _serve_stream(self, ws: ServerConnection, key: int) -> None:
        """Start handshake, then audio in and results out concurrently."""
        message = await self._next_message(ws, self.config.start_timeout, "'start'")
        if message is None:
            await ws.close(CLOSE_GOING_AWAY, "server shutting down")
            return
        if isinstance(message, bytes):
            raise ProtocolError("no_start", "audio before the 'start' message")
        start = parse_text_message(message, self.config.sample_rate)
        if not isinstance(start, StartMessage):
            raise ProtocolError("no_start", "'end' before the 'start' message")
        graph, hotwords = await self.stream_graph(start)
        results = ResultStream(self.recognizer, start.partials, start.segments)
        self.decoding.open(key, results, segments=start.segments, graph=graph)
        await ws.send(
            ready_message(
                self.config.sample_rate,
                self.config.max_message_bytes,
                self.recognizer.timing.chunk_seconds,
                hotwords,
            )
        )
        reader = asyncio.ensure_future(self._read_audio(ws, key))
        sender = asyncio.ensure_future(self._send_results(ws, results))
        try:
            await asyncio.gather(reader, sender)
        finally:
            reader.cancel()
            sender.cancel()
        assert self._stopping is not None
        if self._stopping.is_set():
            await ws.close(CLOSE_GOING_AWAY, "server shutting down")
        else:
            await ws.close(CLOSE_NORMAL)

    async def _send_results(self, ws: ServerConnection, results: ResultStream) -> None:
        """Sends the stream's results as they come, until its last final."""
        try:
            async for result in results.results():
                await ws.send(result_message(result))
        except StreamFailed as e:
            raise ProtocolError("internal", str(e)) from None

    async def _read_audio(self, ws: ServerConnection, key: int) -> None:
        """Feeds the client's audio to the decode loop until ``end`` or shutdown."""
        while True:
            message = await self._next_message(ws, self.config.idle_timeout, "audio")
            if message is None:
                break
            if isinstance(message, bytes):
                await self.decoding.feed(key, pcm16_to_float(message))
                continue
            parsed = parse_text_message(message, self.config.sample_rate)
            if isinstance(parsed, EndMessage):
                break
            raise ProtocolError("bad_message", "'start' sent twice")
        self.decoding.finish(key)

    async def _next_message(
        self, ws: ServerConnection, timeout: float, what: str
    ) -> Optional[Union[str, bytes]]:
        """The client's next message; None on shutdown.

        Raises:
          ProtocolError: ``timeout`` after ``timeout`` seconds without one.
          ConnectionClosed: the client went away.
        """
        assert self._stopping is not None
        if self._stopping.is_set():
            return None
        receive = asyncio.ensure_future(ws.recv())
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait(
            {receive, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        # Cancelling recv() loses no data (websockets guarantees it).
        receive.cancel()
        stop.cancel()
        if receive in done:
            return receive.result()
        if stop in done:
            return None
        raise ProtocolError("timeout", f"no {what} message within {timeout:g} s")


def _peer(ws: ServerConnection) -> str:
    address = ws.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"


async def _close_with_error(ws: ServerConnection, error: ProtocolError) -> None:
    """Sends the error message and closes with its code (reason <= 123 bytes)."""
    reason = error.message.encode("utf-8")[:120].decode("utf-8", "ignore")
    try:
        await ws.send(error_message(error))
        await ws.close(error.close_code, reason)
    except ConnectionClosed:
        pass


class ServerThread:
    """Runs an :class:`AsrServer` in a background thread with its own loop.

    For tests and benchmarks: ``with ServerThread(recognizer, config) as s:``
    then connect to ``s.url``; leaving the block shuts the server down.

    Args:
      recognizer: passed to :class:`AsrServer`.
      config: passed to :class:`AsrServer`; ``port=0`` picks a free port.
    """

    def __init__(self, recognizer: StreamingRecognizer, config: ServerConfig) -> None:
        self.recognizer = recognizer
        self.config = config
        self.server: Optional[AsrServer] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError("server failed to start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Shuts the server down (as on SIGTERM) and joins the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # reported to __enter__ if start failed
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server = AsrServer(self.recognizer, self.config)
        await self.server.start()
        self._ready.set()
        await self._stop.wait()
        await self.server.shutdown()


def run_server(config: ServerConfig, recognizer: StreamingRecognizer) -> AsrServer:
    """Serves until SIGINT or SIGTERM, then shuts down gracefully.

    Prints ``listening on ws://HOST:PORT/`` (and ``listening on
    grpc://HOST:PORT`` with a gRPC port) once ready (the actual port, so
    ``port=0`` can be used by a parent process).

    Returns:
      The stopped server (its ``decoding`` holds step statistics).
    """

    async def main() -> AsrServer:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = AsrServer(recognizer, config)
        await server.start()
        print(f"listening on {server.url}", flush=True)
        if config.grpc_port is not None:
            print(f"listening on grpc://{server.grpc_target}", flush=True)
        await stop.wait()
        await server.shutdown()
        return server

    return asyncio.run(main())


def serve_model(
    config: ServerConfig, model: CtcModel, lang_dir: Union[str, Path]
) -> None:
    """Serves a trained streaming model until SIGINT/SIGTERM.

    Args:
      config: server options (graph, streaming options, device, limits).
      model: e.g. from :func:`asrk2.checkpoint.load_model`.
      lang_dir: ``bpe.model`` (H) or ``words.txt`` and ``HL.pt``/``HLG.pt``.
    Raises:
      ValueError: the model's encoder is not causal.
    """
    torch.set_num_threads(config.num_threads)
    recognizer = load_recognizer(
        model, lang_dir, config.graph, config.streaming,
        config.max_batch_streams, config.device,
    )  # fmt: skip
    run_server(config, recognizer)
