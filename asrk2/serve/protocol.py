"""The streaming ASR protocol: messages, their validation, errors and close codes.

Protocol spec (version 2)
=========================

A client opens a WebSocket to ``ws://HOST:PORT/`` (any path). A plain HTTP
``GET /`` without a WebSocket upgrade returns a microphone demo page.

Client to server, in this order:

1. text ``{"type": "start", "sample_rate": 16000}``: the first message, within
   the server's start timeout. Optional fields: ``"partials": false``
   turns partial results off (default: on); ``"segments": true`` asks for
   a long stream cut into segments at endpoints (version 2, below;
   default: off, the whole stream is one utterance as in version 1);
   ``"hotwords": ["JOHN SMITH", "ZURICH :3.0", ...]`` biases this stream's
   search towards those phrases (each optionally with its boost per word;
   ``"hotwords_score"`` is the default boost, the server's if absent):
   phrases with words outside the vocabulary are skipped and listed in
   ``ready``. Unknown fields are errors.
2. binary messages: audio as 16-bit signed little-endian mono PCM at
   ``sample_rate``. Any number of messages of any even size up to the
   ``max_message_bytes`` announced in ``ready`` (an empty one is allowed).
3. text ``{"type": "end"}``: no more audio. The server reads nothing after it.

Server to client, all text (JSON objects):

- ``{"type": "ready", "protocol": 2, "sample_rate": 16000,
  "max_message_bytes": 32000, "chunk_seconds": 0.64}`` after a valid
  ``start``: audio may follow. With hotwords it also has ``"hotwords":
  {"kept": 2, "skipped": ["ZORBLAX"]}``.
- ``{"type": "partial", "text": "...", "seconds": 1.28}``: the best
  hypothesis after ``seconds`` of audio were decoded, sent after every
  decoded chunk. A client that reads slowly gets only the latest one.
  With HL/HLG graphs a later partial may revise earlier words.
- ``{"type": "final", "text": "...", "seconds": 3.1}``: after ``end`` and
  the decoding of all audio; the server then closes with 1000.

With ``"segments": true`` (version 2) the stream stays open across
utterances: the server's endpointer (trailing silence after speech, see
:mod:`asrk2.decode.endpoint`) ends a segment, sends its final and goes on.

- ``{"type": "partial", "segment": 0, "text": "...", "seconds": 1.28,
  "words": [{"word": "...", "start": 0.44, "end": 0.8}, ...]}``: as above,
  for the segment ``segment`` (0, 1, ...), with its words' times so far.
- ``{"type": "final", "segment": 0, "text": "...", "seconds": 4.2,
  "start": 0.4, "end": 3.6, "words": [{"word": "...", "start": 0.44,
  "end": 0.8}, ...], "last": false}``: a segment's final result; ``start``
  and ``end`` are the segment's times and ``words`` its words' times, in
  seconds from the stream's start; ``seconds`` is the audio decoded so
  far. Segments of silence get none. After ``end``, the final of the last
  segment has ``"last": true`` (its text empty if it held no speech), then
  the server closes with 1000.
- ``{"type": "error", "error": NAME, "message": "..."}``: then the server
  closes with the close code of ``NAME``:

=================  ==========  ===============================================
error              close code  when
=================  ==========  ===============================================
bad_json           1007        a text message is not a JSON object
odd_length         1007        a binary message has an odd number of bytes
bad_message        1008        unknown type, unknown, missing or mistyped
                               field, ``start`` twice
no_start           1008        audio or ``end`` before ``start``
timeout            1008        no ``start`` within the start timeout, or no
                               message within the idle timeout
bad_sample_rate    1003        ``sample_rate`` is not the server's
server_full        1013        the server already serves ``max_clients``
internal           1011        decoding of this stream failed
shutting_down      1001        the server stops (SIGINT/SIGTERM)
=================  ==========  ===============================================

A message over ``max_message_bytes`` closes the connection with 1009
(message too big) before it is read; the close reason gives its size. On
shutdown, streams that are open get their final result for the audio
received so far, when it can be decoded within the shutdown timeout, then a
close with 1001 (no error message); connections that never sent ``start``
are closed with 1001 at once.

Flow control: the server reads audio no faster than it decodes plus a
bounded buffer (a few seconds); a client that sends faster waits in
``send`` (TCP back-pressure), it is never dropped for it.
"""

import json
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

__all__ = [
    "CLOSE_CODES",
    "ProtocolError",
    "StartMessage",
    "EndMessage",
    "parse_text_message",
    "pcm16_to_float",
    "float_to_pcm16",
    "ready_message",
    "WordTiming",
    "PartialResult",
    "FinalResult",
    "result_message",
    "error_message",
    "PROTOCOL_VERSION",
]

# Error name -> WebSocket close code (RFC 6455 section 7.4.1).
CLOSE_CODES: Dict[str, int] = {
    "bad_json": 1007,  # invalid frame payload data
    "odd_length": 1007,
    "bad_message": 1008,  # policy violation
    "no_start": 1008,
    "timeout": 1008,
    "bad_sample_rate": 1003,  # unsupported data
    "server_full": 1013,  # try again later
    "internal": 1011,  # internal error
    "shutting_down": 1001,  # going away
}
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009


class ProtocolError(Exception):
    """A client error, sent as an ``error`` message and a close code.

    Args:
      error: one of the names of :data:`CLOSE_CODES`.
      message: what was wrong, for a human.
    """

    def __init__(self, error: str, message: str) -> None:
        if error not in CLOSE_CODES:
            raise ValueError(f"unknown protocol error name {error!r}")
        super().__init__(message)
        self.error = error
        self.message = message

    @property
    def close_code(self) -> int:
        """The WebSocket close code that follows the error message."""
        return CLOSE_CODES[self.error]


PROTOCOL_VERSION = 2


@dataclass(frozen=True)
class StartMessage:
    """``{"type": "start", ...}``: opens a stream.

    Attributes:
      sample_rate: the audio's sampling rate in Hz.
      partials: whether the client wants partial results.
      segments: whether the stream is cut into segments at endpoints.
      hotwords: phrases to bias this stream towards (none: the server's graph).
      hotwords_score: their default boost; None: the server's.
    """

    sample_rate: int
    partials: bool = True
    segments: bool = False
    hotwords: Tuple[str, ...] = ()
    hotwords_score: Optional[float] = None


@dataclass(frozen=True)
class WordTiming:
    """A word with its times in seconds from the stream's start."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class PartialResult:
    """The best hypothesis so far.

    Attributes:
      text: the words.
      seconds: audio decoded for it.
      segment: its segment, for a segmented stream; None otherwise.
      words: the words with their times so far (segmented streams).
    """

    text: str
    seconds: float
    segment: Optional[int] = None
    words: Tuple[WordTiming, ...] = ()


@dataclass(frozen=True)
class FinalResult:
    """The final result of a stream, or of one segment of a segmented stream.

    Attributes:
      text: the words.
      seconds: audio decoded so far.
      segment: the segment index; None for an unsegmented stream.
      start, end: the segment's times (segmented streams).
      words: the words with their times (segmented streams).
      last: the stream's last result.
    """

    text: str
    seconds: float
    segment: Optional[int] = None
    start: float = 0.0
    end: float = 0.0
    words: Tuple[WordTiming, ...] = ()
    last: bool = True


@dataclass(frozen=True)
class EndMessage:
    """``{"type": "end"}``: no more audio."""


def _field(obj: Dict[str, Any], name: str, kind: type, required: bool) -> Any:
    """``obj[name]`` checked to be a ``kind`` (bools are not ints here)."""
    if name not in obj:
        if required:
            raise ProtocolError("bad_message", f"'start' needs the field {name!r}")
        return None
    value = obj[name]
    accepted = (int, float) if kind is float else kind  # a number is a float
    if not isinstance(value, accepted) or (
        kind in (int, float) and isinstance(value, bool)
    ):
        raise ProtocolError(
            "bad_message",
            f"field {name!r} must be {kind.__name__}, got {json.dumps(value)}",
        )
    return value


def parse_text_message(
    text: str, server_sample_rate: int
) -> Union[StartMessage, EndMessage]:
    """Parses and validates one text message from a client.

    Args:
      text: the message as received.
      server_sample_rate: the only rate the server accepts, in Hz.
    Returns:
      The start or end message.
    Raises:
      ProtocolError: ``bad_json``, ``bad_message`` or ``bad_sample_rate``.
    """
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ProtocolError("bad_json", f"text message is not JSON: {e}") from None
    except RecursionError:  # e.g. 30,000 '[': deeper than the parser's stack
        raise ProtocolError("bad_json", "text message is nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_json", "text message must be a JSON object")
    kind = obj.get("type")
    if kind == "end":
        if len(obj) > 1:
            extra = sorted(k for k in obj if k != "type")
            raise ProtocolError("bad_message", f"'end' takes no fields, got {extra}")
        return EndMessage()
    if kind != "start":
        raise ProtocolError(
            "bad_message", f"message type must be 'start' or 'end', got {kind!r}"
        )
    known = {
        "type", "sample_rate", "partials", "segments", "hotwords", "hotwords_score"
    }  # fmt: skip
    unknown = sorted(set(obj) - known)
    if unknown:
        raise ProtocolError("bad_message", f"unknown field(s) in 'start': {unknown}")
    sample_rate = _field(obj, "sample_rate", int, required=True)
    partials = _field(obj, "partials", bool, required=False)
    segments = _field(obj, "segments", bool, required=False)
    hotwords = _field(obj, "hotwords", list, required=False) or []
    if not all(isinstance(h, str) for h in hotwords):
        raise ProtocolError(
            "bad_message", "field 'hotwords' must be a list of strings"
        )
    score = _field(obj, "hotwords_score", float, required=False)
    if score is not None and not score > 0:
        raise ProtocolError("bad_message", f"hotwords_score must be > 0, got {score}")
    if sample_rate != server_sample_rate:
        raise ProtocolError(
            "bad_sample_rate",
            f"sample_rate {sample_rate} Hz is not supported: this server takes "
            f"{server_sample_rate} Hz mono (resample the audio first)",
        )
    return StartMessage(
        sample_rate,
        True if partials is None else partials,
        bool(segments),
        tuple(hotwords),
        None if score is None else float(score),
    )


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Decodes a binary audio message.

    Args:
      data: 16-bit signed little-endian PCM, an even number of bytes.
    Returns:
      float32 samples in [-1, 1), shape (len(data) // 2,).
    Raises:
      ProtocolError: ``odd_length``.
    """
    if len(data) % 2:
        raise ProtocolError(
            "odd_length",
            f"binary message of {len(data)} bytes: 16-bit PCM needs an even number",
        )
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Encodes float samples in [-1, 1] (clipped) as 16-bit little-endian PCM."""
    scaled = np.clip(np.asarray(samples, dtype=np.float64) * 32768.0, -32768, 32767)
    return np.round(scaled).astype("<i2").tobytes()


def _dumps(obj: Dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


def ready_message(
    sample_rate: int,
    max_message_bytes: int,
    chunk_seconds: float,
    hotwords: Optional[Dict[str, Any]] = None,
) -> str:
    """The ``ready`` message that answers a valid ``start``."""
    obj: Dict[str, Any] = {
        "type": "ready",
        "protocol": PROTOCOL_VERSION,
        "sample_rate": sample_rate,
        "max_message_bytes": max_message_bytes,
        "chunk_seconds": round(chunk_seconds, 4),
    }
    if hotwords is not None:
        obj["hotwords"] = hotwords
    return _dumps(obj)


def result_message(result: Union[PartialResult, FinalResult]) -> str:
    """The ``partial`` or ``final`` message of a result (fields as specified above)."""
    obj: Dict[str, Any] = {
        "type": "partial" if isinstance(result, PartialResult) else "final"
    }
    if result.segment is not None:
        obj["segment"] = result.segment
    obj.update(text=result.text, seconds=round(result.seconds, 3))
    words = [
        {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
        for w in result.words
    ]
    if isinstance(result, PartialResult) and result.segment is not None:
        obj["words"] = words
    if isinstance(result, FinalResult) and result.segment is not None:
        obj.update(
            start=round(result.start, 3),
            end=round(result.end, 3),
            words=words,
            last=result.last,
        )
    return _dumps(obj)


def error_message(error: ProtocolError) -> str:
    """The ``error`` message sent before closing with ``error.close_code``."""
    return _dumps({"type": "error", "error": error.error, "message": error.message})
