from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecognizeRequest(_message.Message):
    __slots__ = ("config", "audio", "end")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    audio: bytes
    end: End
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., audio: _Optional[bytes] = ..., end: _Optional[_Union[End, _Mapping]] = ...) -> None: ...

class StreamConfig(_message.Message):
    __slots__ = ("sample_rate", "no_partials", "segments", "hotwords", "hotwords_score")
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    NO_PARTIALS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    HOTWORDS_FIELD_NUMBER: _ClassVar[int]
    HOTWORDS_SCORE_FIELD_NUMBER: _ClassVar[int]
    sample_rate: int
    no_partials: bool
    segments: bool
    hotwords: _containers.RepeatedScalarFieldContainer[str]
    hotwords_score: float
    def __init__(self, sample_rate: _Optional[int] = ..., no_partials: bool = ..., segments: bool = ..., hotwords: _Optional[_Iterable[str]] = ..., hotwords_score: _Optional[float] = ...) -> None: ...

class End(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RecognizeResponse(_message.Message):
    __slots__ = ("ready", "partial", "final")
    READY_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    ready: Ready
    partial: Partial
    final: Final
    def __init__(self, ready: _Optional[_Union[Ready, _Mapping]] = ..., partial: _Optional[_Union[Partial, _Mapping]] = ..., final: _Optional[_Union[Final, _Mapping]] = ...) -> None: ...

class Ready(_message.Message):
    __slots__ = ("protocol", "sample_rate", "max_message_bytes", "chunk_seconds", "hotwords_kept", "hotwords_skipped")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOTWORDS_KEPT_FIELD_NUMBER: _ClassVar[int]
    HOTWORDS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    protocol: int
    sample_rate: int
    max_message_bytes: int
    chunk_seconds: float
    hotwords_kept: int
    hotwords_skipped: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, protocol: _Optional[int] = ..., sample_rate: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., chunk_seconds: _Optional[float] = ..., hotwords_kept: _Optional[int] = ..., hotwords_skipped: _Optional[_Iterable[str]] = ...) -> None: ...

class Partial(_message.Message):
    __slots__ = ("text", "seconds", "segment", "words")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    text: str
    seconds: float
    segment: int
    words: _containers.RepeatedCompositeFieldContainer[Word]
    def __init__(self, text: _Optional[str] = ..., seconds: _Optional[float] = ..., segment: _Optional[int] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("word", "start", "end")
    WORD_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    word: str
    start: float
    end: float
    def __init__(self, word: _Optional[str] = ..., start: _Optional[float] = ..., end: _Optional[float] = ...) -> None: ...

class Final(_message.Message):
    __slots__ = ("text", "seconds", "segment", "start", "end", "words", "last")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    text: str
    seconds: float
    segment: int
    start: float
    end: float
    words: _containers.RepeatedCompositeFieldContainer[Word]
    last: bool
    def __init__(self, text: _Optional[str] = ..., seconds: _Optional[float] = ..., segment: _Optional[int] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ..., last: bool = ...) -> None: ...
