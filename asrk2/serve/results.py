"""One stream's results, independent of the transport (WebSocket or gRPC).

:class:`ResultStream` is the decode loop's sink for one client: it turns
ids into words, builds segment finals with word times and marks the
stream's last final, and hands the transport the ``PartialResult`` and
``FinalResult`` objects of :mod:`asrk2.serve.protocol` in order. Only the
newest partial waits to be sent (a client that reads slowly costs one
partial of memory, not a queue); finals are never dropped.
"""

import asyncio
from typing import AsyncGenerator, List, Optional, Tuple, Union

from asrk2.decode.alignment import word_times
from asrk2.decode.streaming import Segment
from asrk2.serve.protocol import FinalResult, PartialResult, WordTiming
from asrk2.serve.recognizer import StreamingRecognizer

__all__ = ["StreamFailed", "ResultStream"]


class StreamFailed(Exception):
    """Decoding of this stream failed in the decoder (message for the client)."""


class ResultStream:
    """Collects one stream's results from the decode loop (a ``StreamSink``).

    Args:
      recognizer: its ``to_words`` and ``pieces`` make words and word times.
      partials: pass partial results on.
      segments: the stream is endpointed.
    """

    def __init__(
        self, recognizer: StreamingRecognizer, partials: bool, segments: bool
    ) -> None:
        self.recognizer = recognizer
        self.partials = partials
        self.segments = segments
        self._partial: Optional[PartialResult] = None
        self._finals: List[FinalResult] = []
        self._done = False
        self._error: Optional[str] = None
        self._changed = asyncio.Event()
        # Segments not yet made finals: the newest waits, in case it is the last.
        self._pending: List[Tuple[Segment, float]] = []
        self._last_index, self._last_end = -1, 0.0

    # ----- StreamSink (called on the event loop by the decode loop) -----

    def on_partial(
        self, ids: List[int], seconds: float, segment: Optional[Segment]
    ) -> None:
        if self.partials:
            words = self.recognizer.to_words(ids)
            if segment is None or not self.segments:
                self._partial = PartialResult(" ".join(words), seconds)
            else:
                timed = self._timed(segment, words)
                self._partial = PartialResult(
                    " ".join(words), seconds, segment.index, timed
                )
            self._changed.set()

    def _timed(self, segment: Segment, words: List[str]) -> Tuple[WordTiming, ...]:
        """The words of a segment with their times (from its alignment)."""
        if segment.alignment is None:
            return tuple(WordTiming(w, segment.start, segment.end) for w in words)
        times = word_times(
            segment.alignment, words, self.recognizer.pieces, segment.start_frame
        )
        return tuple(WordTiming(w.word, w.start, w.end) for w in times)

    def on_segment(self, segment: Segment, seconds: float) -> None:
        self._flush(last=False)
        self._pending.append((segment, seconds))
        self._changed.set()

    def on_final(self, ids: List[int], seconds: float) -> None:
        if self.segments:
            if not self._pending:  # the last segment held no speech
                empty = Segment(self._last_index + 1, [], 0, 0)
                self._pending.append((empty, seconds))
            self._flush(last=True, stream_end=seconds)
        else:
            text = " ".join(self.recognizer.to_words(ids))
            self._finals.append(FinalResult(text, seconds))
        self._done = True
        self._changed.set()

    def on_error(self, message: str) -> None:
        self._error = message
        self._changed.set()

    # ----- the transport's side -----

    async def results(self) -> AsyncGenerator[Union[PartialResult, FinalResult], None]:
        """Results in order, until the stream's last final.

        Raises:
          StreamFailed: the decoder failed on this stream.
        """
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._error is not None:
                raise StreamFailed(self._error)
            if self._partial is not None:
                partial, self._partial = self._partial, None
                yield partial
            if self._pending and not self._done:
                self._flush(last=False)
            while self._finals:
                yield self._finals.pop(0)
            if self._done:
                return

    def _flush(self, last: bool, stream_end: float = 0.0) -> None:
        """Makes finals of the pending segments (the last one last if ``last``)."""
        for i, (segment, seconds) in enumerate(self._pending):
            words = self.recognizer.to_words(segment.ids)
            start, end = segment.start, segment.end
            timed = self._timed(segment, words)
            if not segment.ids:  # an empty last segment: from the last end on
                start, end = self._last_end, max(self._last_end, stream_end)
            is_last = last and i == len(self._pending) - 1
            text = " ".join(words)
            self._finals.append(
                FinalResult(text, seconds, segment.index, start, end, timed, is_last)
            )
            self._last_index, self._last_end = segment.index, end
        self._pending = []
