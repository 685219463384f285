"""One decode loop that batches the streams of all clients through one decoder.

The loop owns a multi-stream decoder (:class:`StreamDecoder`, e.g.
:class:`asrk2.decode.streaming.MultiStreamDecoder`). Connection handlers on
the event loop only queue work for it (:meth:`DecodeLoop.open`,
:meth:`DecodeLoop.feed`, :meth:`DecodeLoop.finish`, :meth:`DecodeLoop.remove`);
each round of the loop hands everything queued since the last round to a
single worker thread, which applies it and runs one batched ``step()``. The
decoder is therefore only ever touched by that thread (it needs no locks) and
the event loop stays free to read sockets while a chunk is decoded.

Batching adapts to load: while a step runs, more streams fill a chunk, so the
next step takes them all. Results come back to each stream's
:class:`StreamSink` on the event loop.

Memory is bounded per stream: :meth:`DecodeLoop.feed` waits while the stream
holds more than ``max_buffered_seconds`` of audio not yet decoded (queued
here or buffered in the decoder), so a client sending faster than real time
is slowed down by TCP back-pressure instead of filling memory.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Iterable, List, Optional

import numpy as np
import torch

from asrk2.decode.streaming import Segment

try:  # Python 3.8+
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore

__all__ = ["StreamDecoder", "StreamSink", "DecodeLoop"]

log = logging.getLogger(__name__)


class StreamDecoder(Protocol):
    """What the loop needs of a decoder (the ``MultiStreamDecoder`` API)."""

    def add_stream(
        self, key: Hashable, endpointing: Optional[bool] = None, graph: Any = None
    ) -> None:
        ...

    def accept_waveform(
        self, key: Hashable, samples: torch.Tensor, sample_rate: int
    ) -> None:
        ...

    def input_finished(self, key: Hashable) -> None:
        ...

    def step(self) -> Dict[Hashable, List[int]]:
        ...

    def is_final(self, key: Hashable) -> bool:
        ...

    def result(self, key: Hashable) -> List[int]:
        ...

    def remove_stream(self, key: Hashable) -> None:
        ...

    def ready_keys(self) -> Iterable[Hashable]:
        ...

    def pop_segments(self, key: Hashable) -> List[Segment]:
        ...

    def current_segment(self, key: Hashable) -> Segment:
        ...


class StreamSink(Protocol):
    """Receives the results of one stream, on the event loop."""

    def on_partial(
        self, ids: List[int], seconds: float, segment: Optional[Segment]
    ) -> None:
        """Best ids after ``seconds`` of audio were decoded; ``segment`` is the
        current segment (index, frames, alignment) of an endpointed stream,
        None for a stream without endpointing."""

    def on_segment(self, segment: Segment, seconds: float) -> None:
        """A finished segment of an endpointed stream, ``seconds`` decoded so far."""

    def on_final(self, ids: List[int], seconds: float) -> None:
        """Final ids of a stream of ``seconds`` of audio (its last segment's,
        with endpointing; :meth:`on_segment` came first for each segment)."""

    def on_error(self, message: str) -> None:
        """Decoding of this stream failed; it was removed from the decoder."""


@dataclass
class _Stream:
    """Event-loop side bookkeeping of one stream."""

    sink: StreamSink
    segments: bool = False
    graph: Any = None  # a k2.Fsa of the stream's own (its hotwords)
    queued: List[np.ndarray] = field(default_factory=list)
    queued_samples: int = 0
    fed_samples: int = 0
    chunks_decoded: int = 0
    added: bool = False
    finish: bool = False
    finish_sent: bool = False
    done: bool = False  # final or error delivered
    room: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Command:
    """What the worker applies to one stream before a step, in this order."""

    key: Hashable
    add: bool = False
    segments: bool = False
    graph: Any = None
    audio: Optional[np.ndarray] = None
    finish: bool = False
    remove: bool = False


@dataclass
class _Outcome:
    """What one round of the worker produced."""

    advanced: Dict[Hashable, List[int]] = field(default_factory=dict)
    current: Dict[Hashable, Segment] = field(default_factory=dict)
    segments: Dict[Hashable, List[Segment]] = field(default_factory=dict)
    finals: Dict[Hashable, List[int]] = field(default_factory=dict)
    errors: Dict[Hashable, str] = field(default_factory=dict)
    busy: bool = False  # some stream can already decode another chunk


class DecodeLoop:
    """Runs a :class:`StreamDecoder` for many concurrent streams.

    Args:
      decoder: the multi-stream decoder; from now on used only by the loop's
        worker thread.
      sample_rate: rate of the audio given to :meth:`feed`, in Hz.
      chunk_seconds: audio consumed by one decoder step of a stream (for the
        ``seconds`` of partial results and the buffer bound).
      lookahead_seconds: extra audio the first chunk needs (feature window and
        subsampling look-ahead).
      max_buffered_seconds: per stream, audio not yet decoded above which
        :meth:`feed` waits; must exceed ``2 * chunk_seconds + lookahead_seconds``
        or a stream could wait for a chunk that never fills.
      num_threads: torch intra-op threads of the worker (per-chunk ops are
        small: more threads mostly contend on a busy machine).
    """

    def __init__(
        self,
        decoder: StreamDecoder,
        sample_rate: int,
        chunk_seconds: float,
        lookahead_seconds: float = 0.0,
        max_buffered_seconds: float = 10.0,
        num_threads: int = 1,
    ) -> None:
        if max_buffered_seconds <= 2 * chunk_seconds + lookahead_seconds:
            raise ValueError(
                f"max_buffered_seconds={max_buffered_seconds} must exceed two chunks "
                f"plus look-ahead ({2 * chunk_seconds + lookahead_seconds:.3f} s)"
            )
        self.decoder = decoder
        self.sample_rate = sample_rate
        self.chunk_seconds = chunk_seconds
        self.lookahead_seconds = lookahead_seconds
        self.max_buffered_seconds = max_buffered_seconds
        self.num_threads = num_threads
        self._streams: Dict[Hashable, _Stream] = {}
        self._dirty: Dict[Hashable, None] = {}  # keys with queued work, in order
        self._removed: List[Hashable] = []
        # Created in start(): Python 3.9 binds an Event to the current loop.
        self._wakeup: Optional[asyncio.Event] = None
        self._closing = False
        self._task: Optional[asyncio.Task] = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="asr-decode")
        # Worker thread only: streams in the decoder, and those whose input
        # finished but whose final result was not collected yet.
        self._in_decoder: Dict[Hashable, None] = {}
        self._finishing: Dict[Hashable, None] = {}
        self._segmented: Dict[Hashable, None] = {}  # endpointed streams
        self.steps = 0
        self.stream_chunks = 0  # sum of batch sizes over steps

    # ----- event-loop API --------------------------------------------------

    def start(self) -> None:
        """Starts the loop task on the running event loop."""
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._executor.submit(torch.set_num_threads, self.num_threads).result()
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def num_streams(self) -> int:
        """Streams opened and not removed."""
        return len(self._streams)

    def open(
        self, key: Hashable, sink: StreamSink, segments: bool = False, graph: Any = None
    ) -> None:
        """Adds a stream; its results go to ``sink``.

        Args:
          key: names the stream.
          sink: gets its results.
          segments: cut it into segments at endpoints (the decoder's rules).
          graph: a decoding graph of its own (e.g. biased with its hotwords).
        """
        if key in self._streams:
            raise KeyError(f"stream {key!r} is already open")
        self._streams[key] = _Stream(sink, segments, graph)
        self._mark(key)

    async def feed(self, key: Hashable, samples: np.ndarray) -> None:
        """Queues audio of a stream, first waiting while its buffer is full.

        Args:
          key: an open stream.
          samples: float32 samples in [-1, 1], shape (num_samples,).
        """
        stream = self._streams[key]
        limit = self.max_buffered_seconds
        while not stream.done and self.buffered_seconds(key) >= limit:
            stream.room.clear()
            await stream.room.wait()
        if stream.done or key not in self._streams or samples.size == 0:
            return
        stream.queued.append(samples)
        stream.queued_samples += samples.size
        self._mark(key)

    def finish(self, key: Hashable) -> None:
        """No more audio for ``key``: its final result will follow."""
        stream = self._streams[key]
        if stream.finish or stream.done:
            return
        stream.finish = True
        if stream.fed_samples + stream.queued_samples == 0:
            # No audio, nothing to decode: answer here rather than make the
            # decoder run an empty last chunk.
            stream.done = True
            stream.sink.on_final([], 0.0)
            return
        self._mark(key)

    def remove(self, key: Hashable) -> None:
        """Forgets a stream (done, or its client vanished); no more results."""
        stream = self._streams.pop(key, None)
        if stream is None:
            return
        stream.done = True
        stream.room.set()
        self._dirty.pop(key, None)
        if stream.added:
            self._removed.append(key)
            self._wake()

    def buffered_seconds(self, key: Hashable) -> float:
        """Audio of ``key`` queued or buffered in the decoder, not yet decoded."""
        stream = self._streams[key]
        decoded = self.chunks_to_seconds(stream.chunks_decoded) * self.sample_rate
        in_decoder = max(0.0, stream.fed_samples - decoded)
        return (stream.queued_samples + in_decoder) / self.sample_rate

    def chunks_to_seconds(self, num_chunks: int) -> float:
        """Audio consumed by the first ``num_chunks`` chunks of a stream."""
        if num_chunks == 0:
            return 0.0
        return num_chunks * self.chunk_seconds + self.lookahead_seconds

    async def close(self) -> None:
        """Stops the loop after the work queued so far; removes every stream."""
        for key in list(self._streams):
            self.remove(key)
        self._closing = True
        self._wake()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    # ----- the loop ----------------------------------------------------------

    def _mark(self, key: Hashable) -> None:
        self._dirty[key] = None
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        busy = False
        while True:
            if not (busy or self._dirty or self._removed):
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            commands = self._take_commands()
            try:
                outcome = await loop.run_in_executor(
                    self._executor, self._work, commands
                )
            except Exception:  # a bug in the loop itself: never kill the server
                log.exception("decode round failed")
                outcome = _Outcome(errors={c.key: "decoder failure" for c in commands})
            busy = outcome.busy
            self._dispatch(outcome)

    def _take_commands(self) -> List[_Command]:
        """Turns everything queued since the last round into worker commands."""
        commands = [_Command(key, remove=True) for key in self._removed]
        self._removed = []
        for key in self._dirty:
            stream = self._streams[key]
            cmd = _Command(key, not stream.added, stream.segments, stream.graph)
            stream.added = True
            if stream.queued:
                cmd.audio = np.concatenate(stream.queued)
                stream.fed_samples += stream.queued_samples
                stream.queued, stream.queued_samples = [], 0
            if stream.finish and not stream.finish_sent:
                cmd.finish = stream.finish_sent = True
            commands.append(cmd)
        self._dirty = {}
        return commands

    def _dispatch(self, outcome: _Outcome) -> None:
        """Delivers one round's results to the sinks of streams still open."""
        self.steps += bool(outcome.advanced)
        self.stream_chunks += len(outcome.advanced)
        for key, message in outcome.errors.items():
            stream = self._streams.get(key)
            if stream is not None and not stream.done:
                stream.done = True
                stream.room.set()
                stream.sink.on_error(message)
        for key, ids in outcome.advanced.items():
            stream = self._streams.get(key)
            if stream is None or stream.done:
                continue
            stream.chunks_decoded += 1
            stream.room.set()
            seconds = self.chunks_to_seconds(stream.chunks_decoded)
            decoded = min(seconds, stream.fed_samples / self.sample_rate)
            for segment in outcome.segments.get(key, []):
                stream.sink.on_segment(segment, decoded)
            if key not in outcome.finals:
                current = outcome.current.get(key)
                stream.sink.on_partial(list(ids), decoded, current)
        for key, ids in outcome.finals.items():
            stream = self._streams.get(key)
            if stream is not None and not stream.done:
                stream.done = True
                stream.room.set()
                stream.sink.on_final(list(ids), stream.fed_samples / self.sample_rate)

    # ----- the worker thread ---------------------------------------------------

    def _work(self, commands: List[_Command]) -> _Outcome:
        """Applies the commands, runs one batched step, collects final results."""
        out = _Outcome()
        dec = self.decoder
        for cmd in commands:
            try:
                self._apply(cmd)
            except Exception as e:
                log.exception("stream %r: decoder rejected its input", cmd.key)
                out.errors[cmd.key] = f"decoder error: {e}"
                self._drop(cmd.key)
        if any(True for _ in dec.ready_keys()):
            ready = list(dec.ready_keys())
            try:
                out.advanced = dict(dec.step())
                for key in out.advanced:
                    if key in self._segmented:
                        out.segments[key] = dec.pop_segments(key)
                        out.current[key] = dec.current_segment(key)
            except Exception as e:
                log.exception("decoder step failed for streams %s", ready)
                for key in ready:
                    out.errors[key] = f"decoder error: {e}"
                    self._drop(key)
        for key in list(self._finishing):
            if dec.is_final(key):
                out.finals[key] = list(dec.result(key))
                del self._finishing[key]
        out.busy = any(True for _ in dec.ready_keys())
        return out

    def _apply(self, cmd: _Command) -> None:
        dec = self.decoder
        if cmd.add:
            own = {} if cmd.graph is None else {"graph": cmd.graph}
            dec.add_stream(cmd.key, endpointing=cmd.segments, **own)
            self._in_decoder[cmd.key] = None
            if cmd.segments:
                self._segmented[cmd.key] = None
        if cmd.audio is not None:
            dec.accept_waveform(cmd.key, torch.from_numpy(cmd.audio), self.sample_rate)
        if cmd.finish:
            dec.input_finished(cmd.key)
            self._finishing[cmd.key] = None
        if cmd.remove:
            self._drop(cmd.key)

    def _drop(self, key: Hashable) -> None:
        """Removes a stream from the decoder, if it is there (worker thread)."""
        self._finishing.pop(key, None)
        self._segmented.pop(key, None)
        if key not in self._in_decoder:
            return
        del self._in_decoder[key]
        try:
            self.decoder.remove_stream(key)
        except Exception:
            log.exception("stream %r: remove_stream failed", key)
