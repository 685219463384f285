"""Streaming decoding: a chunk-mode encoder with caches and an online k2 search.

Features go through :meth:`CtcModel.forward_chunk` (a true streaming encoder:
attention and convolution caches carried in a :class:`StreamingState`), and
the CTC log-probs of each chunk through ``k2.OnlineDenseIntersecter``, which
carries the graph search (H, HL or HLG) across chunks. After every chunk the
best path so far is the partial hypothesis; after the last one it is final.

Partial hypotheses are the best path *as if the stream ended there*. With H
(greedy CTC) each one is a prefix of the next; with HL/HLG a later chunk may
revise earlier words (e.g. ``A`` becomes ``AC``), as in Kaldi's online decoders.

:class:`MultiStreamDecoder` keeps streams that start, stop and end at any
time (a server's clients, a test set), each with its own encoder and search
state, and batches whatever is ready at each :meth:`~MultiStreamDecoder.step`.
Decoding a whole test set this way is :mod:`asrk2.decode.stream_eval`.

Example::

    streams = MultiStreamDecoder(model, H, StreamingOptions(chunk_size=16))
    streams.add_stream("a")
    streams.accept_features("a", feats)    # (T, C), any T, any number of calls
    streams.input_finished("a")
    while not streams.is_final("a"):
        partials = streams.step()          # {key: ids} of the streams that moved
    ids = streams.result("a")
"""

from dataclasses import dataclass, field, replace
from typing import Dict, Hashable, List, Optional, Tuple

import k2
import torch

from asrk2.beams import SearchBeams
from asrk2.decode.alignment import best_path_alignments
from asrk2.decode.ctc_decode import get_lattice
from asrk2.decode.endpoint import EndpointConfig, SegmentClock
from asrk2.decode.graph_weights import GraphWeights
from asrk2.decode.hotwords import HotwordOptions
from asrk2.decode.methods import needs_redecode_final
from asrk2.decode.stream_state import (
    FrameQueue,
    Segment,
    StreamState,
    split_states,
    stack_states,
)
from asrk2.features.online import OnlineFbankExtractor
from asrk2.frames import subsampled_lengths
from asrk2.model.ctc_model import CtcModel

__all__ = [
    "StreamingOptions",
    "Segment",
    "MultiStreamDecoder",
    "stack_states",
    "split_states",
]


@dataclass
class StreamingOptions(SearchBeams):
    """Chunking and online search options.

    The inherited :class:`~asrk2.beams.SearchBeams` prune the online search
    (and the final redecoding); the command-line tools and the server start
    from the checkpoint's ``decode`` beams, as offline decoding does.

    Attributes:
      chunk_size: output frames (after x4 subsampling) per chunk, e.g. 16.
      left_context_frames: attention cache in output frames; None for the
        encoder config's value, < 0 unbounded.
      redecode_final: (:class:`MultiStreamDecoder` only) keep each stream's
        log-probs and take its final result from one offline pruned
        intersection of all of them, the result of offline chunked decoding.
        Needed for correct HL/HLG finals with k2 1.23.4, whose online
        intersecter keeps at each chunk end only the states that can end
        there, so a word that spans a chunk boundary is lost (fixed upstream
        in k2 #1125/#1198, 2023, after the last PyPI release). H is not
        affected (every CTC state can end). Partial results stay online.
        None: as :meth:`for_graph` decides (on for HL/HLG, off for H); a
        :class:`MultiStreamDecoder` given None keeps it off.
      endpoint: endpointing rules; with ``endpoint.endpointing`` on, every
        stream is cut into segments (see :class:`MultiStreamDecoder`).
      hotwords: phrases the graph is biased with, by whoever loads it
        (:func:`~asrk2.decode.methods.load_streaming_graph`); the decoder
        itself takes the graph as given.
      graph_weights: graph scale and word bonus of HL/HLG, applied by
        whoever loads the graph, as ``hotwords``
        (:mod:`asrk2.decode.graph_weights`).
    """

    chunk_size: int = 16
    left_context_frames: Optional[int] = None
    redecode_final: Optional[bool] = None
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    hotwords: HotwordOptions = field(default_factory=HotwordOptions)
    graph_weights: GraphWeights = field(default_factory=GraphWeights)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")

    def for_graph(self, graph_name: str) -> "StreamingOptions":
        """These options with an unset ``redecode_final`` decided for the graph.

        Args:
          graph_name: ``H``, ``HL`` or ``HLG`` (see
            :func:`~asrk2.decode.methods.needs_redecode_final`).
        """
        if self.redecode_final is not None:
            return self
        return replace(self, redecode_final=needs_redecode_final(graph_name))


class MultiStreamDecoder:
    """Decodes streams of any lengths that join and leave at any time, batched.

    Each stream has its own encoder caches and k2 search state. :meth:`step`
    advances every stream that has a full chunk of input ready (or has
    finished with a remainder) by one chunk: their chunks and states are
    stacked, run through the encoder, and the log-probs of all of them go
    through one online intersection, ``max_batch_streams`` streams at a time.

    Batching rules, and why:

    * The encoder's attention cache has no padding mask, so only streams whose
      caches have the same length share a ``forward_chunk`` (exact, no
      padding). With a bounded left context (``left_context_frames >= 0``)
      every stream reaches the full cache after ``left_context / chunk``
      chunks and all of them batch together; with an unbounded one only
      streams that started at the same step do.
    * Each stream's unconsumed input frames are kept here, not in the encoder
      state, so a stream's first chunk (``4 * chunk + 3`` new frames) and a
      later one (3 look-ahead frames + ``4 * chunk`` new) have the same shape
      and batch together.
    * ``k2.OnlineDenseIntersecter`` only accepts a batch of exactly its
      ``num_streams`` (a C++ check fails otherwise). Search states are not
      tied to an intersecter, so one intersecter is kept per batch size used
      (built on first use: 0.04 ms for 1 stream to 10 ms for 32 with the demo
      HLG); padding a batch with dummy streams instead cost more per step
      (see the report of issue 6).

    Endpointing (``options.endpoint``, or per stream in :meth:`add_stream`):
    after every chunk the rules of :class:`~asrk2.decode.endpoint.
    EndpointConfig` are checked on the stream's CTC output. At an endpoint
    the segment gets its final ids (from one offline intersection of its
    log-probs with ``redecode_final``, as a stream's end does), is queued
    for :meth:`pop_segments` unless it decoded nothing, and the stream starts
    the next segment with a fresh search state and fresh encoder caches, so
    neither the k2 lattice (which k2 1.23.4 rebuilds from the segment's
    start at every chunk) nor any cache grows with the stream. The stream's
    end finishes the last segment. Without endpointing a stream is one
    utterance, as before.

    Not thread-safe: call it from one thread (e.g. an asyncio loop, with
    :meth:`step` in an executor and nothing else running meanwhile).

    Args:
      model: the CTC model (causal encoder), in eval mode, on the graph's device.
      graph: arc-sorted H (token ids out) or HL/HLG (word ids out).
      options: chunk size, left context and beams.
      max_batch_streams: most streams per ``forward_chunk`` and per
        intersecter call.
    """

    def __init__(
        self,
        model: CtcModel,
        graph: k2.Fsa,
        options: StreamingOptions,
        max_batch_streams: int = 32,
    ) -> None:
        if max_batch_streams < 1:
            raise ValueError(f"max_batch_streams must be >= 1, got {max_batch_streams}")
        self.model = model
        self.options = options
        self.max_batch_streams = max_batch_streams
        self.device = graph.device
        self.num_features = model.num_features
        if graph.arcs.num_axes() == 2:  # the C++ side wants an FsaVec
            graph = k2.create_fsa_vec([graph])
        self.graph = graph
        encoder = model.encoder
        # A chunk reads the 3 look-ahead frames again, so it needs "first
        # chunk" many frames every time and consumes "later chunk" many.
        self.chunk_frames = encoder.chunk_input_frames(options.chunk_size, True)
        self.chunk_step = encoder.chunk_input_frames(options.chunk_size, False)
        self._streams: Dict[Hashable, StreamState] = {}
        self._intersecters: Dict[int, k2.OnlineDenseIntersecter] = {}

    # ----- streams -----

    @property
    def num_streams(self) -> int:
        """Streams currently held (final or not)."""
        return len(self._streams)

    def add_stream(
        self,
        key: Hashable,
        endpointing: Optional[bool] = None,
        graph: Optional[k2.Fsa] = None,
    ) -> None:
        """Starts a new stream.

        Args:
          key: names the stream.
          endpointing: cut it into segments at endpoints; None: as
            ``options.endpoint.endpointing``.
          graph: a graph of its own (the decoder's biased with the stream's
            hotwords, :func:`asrk2.decode.hotwords.bias_graph`), arc-sorted,
            on the decoder's device, with the same output units; the stream
            is then searched by itself. None: the decoder's graph.
        Raises:
          ValueError: if a stream ``key`` exists already.
        """
        if key in self._streams:
            raise ValueError(f"stream {key!r} exists already")
        stream = StreamState(
            self.model.init_state(1, self.device), FrameQueue(self.num_features)
        )
        rules = self.options.endpoint
        if rules.endpointing if endpointing is None else endpointing:
            stream.clock = SegmentClock(rules)
        if graph is not None:
            if graph.arcs.num_axes() == 2:
                graph = k2.create_fsa_vec([graph])
            stream.graph = graph
            stream.own_intersecter = k2.OnlineDenseIntersecter(
                decoding_graph=graph, num_streams=1, **self.options.kwargs()
            )
        self._streams[key] = stream

    def remove_stream(self, key: Hashable) -> None:
        """Forgets a stream and frees its state, whether final or not.

        Raises:
          KeyError: for an unknown key.
        """
        self._get(key)
        del self._streams[key]

    def accept_features(self, key: Hashable, features: torch.Tensor) -> None:
        """Appends input frames to a stream.

        Args:
          key: the stream.
          features: (T, C) float tensor, any T >= 0, C the model's input dim.
        Raises:
          KeyError: for an unknown key.
          ValueError: on a wrong shape, after :meth:`input_finished`, or for a
            stream fed audio with :meth:`accept_waveform`.
        """
        stream = self._get(key)
        if stream.fbank is not None:
            raise ValueError(f"stream {key!r} is fed audio; cannot mix in features")
        self._push(key, stream, features)
        stream.got_features = True

    def accept_waveform(
        self, key: Hashable, samples: torch.Tensor, sample_rate: int
    ) -> None:
        """Appends audio to a stream; its own online fbank turns it into frames.

        Args:
          key: the stream.
          samples: 1-D float waveform in [-1, 1], any length.
          sample_rate: must be the fbank's (16 kHz).
        Raises:
          KeyError: for an unknown key.
          ValueError: on bad audio (see
            :meth:`OnlineFbankExtractor.accept_waveform`), after
            :meth:`input_finished`, or for a stream fed features directly.
        """
        stream = self._get(key)
        if stream.got_features:
            raise ValueError(f"stream {key!r} is fed features; cannot mix in audio")
        if stream.finished:
            raise ValueError(f"stream {key!r}: audio after input_finished")
        if stream.fbank is None:
            stream.fbank = OnlineFbankExtractor(self.num_features)
        try:
            stream.fbank.accept_waveform(samples, sample_rate)
        except ValueError as e:
            raise ValueError(f"stream {key!r}: {e}") from None
        self._push(key, stream, stream.fbank.pop_frames())

    def input_finished(self, key: Hashable) -> None:
        """Marks the end of a stream's input; later steps decode what is left.

        Raises:
          KeyError: for an unknown key.
        """
        stream = self._get(key)
        if stream.fbank is not None and not stream.fbank.finished:
            stream.fbank.input_finished()
            self._push(key, stream, stream.fbank.pop_frames())
        stream.finished = True

    def is_final(self, key: Hashable) -> bool:
        """True once the stream is finished and all its input is decoded."""
        return self._get(key).final

    def result(self, key: Hashable) -> List[int]:
        """The best ids of the stream's current segment so far (final once
        :meth:`is_final`); without endpointing the segment is the stream."""
        return list(self._get(key).hyp)

    def pop_segments(self, key: Hashable) -> List[Segment]:
        """The segments the stream finished since the last call, in order.

        With endpointing, the last segment of a stream is here once
        :meth:`is_final`; segments that decoded nothing (silence) are not.
        Without endpointing there are none: :meth:`result` is the stream's.
        """
        stream = self._get(key)
        segments, stream.segments = stream.segments, []
        return segments

    def current_segment(self, key: Hashable) -> Segment:
        """The stream's current (unfinished) segment: index, frames, partial ids."""
        stream = self._get(key)
        frames = len(stream.alignment.labels) if stream.alignment else 0
        if stream.clock is not None:
            frames = stream.clock.frames
        return Segment(
            stream.segment_index,
            list(stream.hyp),
            stream.segment_start,
            frames,
            stream.alignment,
        )

    def ready_keys(self) -> List[Hashable]:
        """Streams that the next :meth:`step` advances, in the order they were added."""
        return [k for k, s in self._streams.items() if self._is_ready(s)]

    def _get(self, key: Hashable) -> StreamState:
        """The stream ``key``; KeyError naming it if there is none."""
        try:
            return self._streams[key]
        except KeyError:
            raise KeyError(f"unknown stream {key!r}") from None

    def _push(self, key: Hashable, stream: StreamState, features: torch.Tensor) -> None:
        """Checks and queues (T, C) frames of ``stream``."""
        if stream.finished:
            raise ValueError(f"stream {key!r}: features after input_finished")
        if features.dim() != 2 or features.size(1) != self.num_features:
            raise ValueError(
                f"stream {key!r}: expected features (T, {self.num_features}), got "
                f"shape {tuple(features.shape)}"
            )
        if not features.is_floating_point():
            raise ValueError(
                f"stream {key!r}: expected float features, got {features.dtype}"
            )
        stream.frames.push(features.detach().to("cpu", torch.float32))

    def _is_ready(self, stream: StreamState) -> bool:
        """A full chunk is queued, or the stream finished and is not yet final."""
        if stream.final:
            return False
        return stream.finished or stream.frames.num_frames >= self.chunk_frames

    # ----- decoding -----

    @torch.no_grad()
    def step(self) -> Dict[Hashable, List[int]]:
        """Advances every ready stream by one chunk.

        A finished stream's remainder (shorter than a chunk) is decoded as its
        last chunk, after which it is final.

        Returns:
          ``{key: best ids so far}`` for the streams that advanced, including
          those that became final; empty if none was ready.
        """
        chunks: List[Tuple[Hashable, torch.Tensor]] = []
        ending: List[StreamState] = []
        for key in self.ready_keys():
            stream = self._streams[key]
            queued = stream.frames.num_frames
            if queued >= self.chunk_frames:
                frames = stream.frames.take(self.chunk_frames, self.chunk_step)
                chunks.append((key, frames))
            else:  # finished: the remainder is the last chunk
                chunks.append((key, stream.frames.take(queued, queued)))
                ending.append(stream)
        log_probs = self._encode(chunks)
        self._search(log_probs)
        if self.options.redecode_final:
            for key, lp in log_probs:
                self._streams[key].log_probs.append(lp)
            self._redecode([s for s in ending if s.log_probs])
        for key, lp in log_probs:
            clock = self._streams[key].clock
            if clock is not None:
                clock.advance(lp)
        ended = {id(s) for s in ending}
        endpoints = [
            s
            for s in (self._streams[key] for key, _ in log_probs)
            if s.clock is not None
            and id(s) not in ended
            and s.clock.endpoint()
        ]
        if self.options.redecode_final:
            self._redecode([s for s in endpoints if s.log_probs])
        for stream in endpoints:
            self._close_segment(stream)
            self._start_segment(stream)
        for stream in ending:
            stream.final = True
            if stream.clock is not None:
                self._close_segment(stream)
        return {key: list(self._streams[key].hyp) for key, _ in chunks}

    def _close_segment(self, stream: StreamState) -> None:
        """Queues the stream's current segment (unless empty) as finished."""
        assert stream.clock is not None
        if stream.hyp:
            stream.segments.append(
                Segment(
                    stream.segment_index,
                    list(stream.hyp),
                    stream.segment_start,
                    stream.clock.frames,
                    stream.alignment,
                )
            )
            stream.segment_index += 1

    def _start_segment(self, stream: StreamState) -> None:
        """Resets search state, encoder caches and counts after an endpoint."""
        assert stream.clock is not None
        stream.segment_start += stream.clock.frames
        stream.clock.reset()
        stream.decode_state = None
        stream.hyp, stream.alignment, stream.log_probs = [], None, []
        stream.state = self.model.init_state(1, self.device)

    def _encode(
        self, chunks: List[Tuple[Hashable, torch.Tensor]]
    ) -> List[Tuple[Hashable, torch.Tensor]]:
        """Runs the encoder on each stream's chunk, batching equal shapes.

        Args:
          chunks: ``(key, frames (T_i, C))`` per ready stream.
        Returns:
          ``(key, log_probs (T'_i, V))`` for the chunks with T'_i > 0 output
          frames (a remainder of under 7 frames gives none).
        """
        groups: Dict[Tuple[int, int], List[Tuple[Hashable, torch.Tensor]]] = {}
        for key, frames in chunks:
            if int(subsampled_lengths(torch.tensor(frames.size(0)))) == 0:
                continue
            cache_len = self._streams[key].state.attn.size(2)
            groups.setdefault((frames.size(0), cache_len), []).append((key, frames))
        out = []
        for group in groups.values():
            for i in range(0, len(group), self.max_batch_streams):
                out.extend(self._encode_batch(group[i : i + self.max_batch_streams]))
        return out

    def _encode_batch(
        self, batch: List[Tuple[Hashable, torch.Tensor]]
    ) -> List[Tuple[Hashable, torch.Tensor]]:
        """One ``forward_chunk`` over chunks of equal length and cache length."""
        streams = [self._streams[key] for key, _ in batch]
        frames = torch.stack([f for _, f in batch]).to(self.device)  # (B, T, C)
        state = stack_states([s.state for s in streams])
        log_probs, state = self.model.forward_chunk(
            frames, state, self.options.left_context_frames
        )
        no_frames = state.features[:, :0]  # input frames stay queued here
        for stream, own in zip(streams, split_states(state)):
            stream.state = replace(own, features=no_frames[:1])
        return [(key, lp) for (key, _), lp in zip(batch, log_probs)]

    def _search(self, log_probs: List[Tuple[Hashable, torch.Tensor]]) -> None:
        """Advances the online search of each stream by its (T'_i, V) log-probs.

        Streams on the shared graph are searched ``max_batch_streams`` at a
        time; a stream with a graph of its own (its hotwords) by itself.
        """
        shared = [(k, lp) for k, lp in log_probs if self._streams[k].graph is None]
        for key, lp in log_probs:
            stream = self._streams[key]
            if stream.graph is not None:
                self._search_batch([(key, lp)], stream.own_intersecter)
        for i in range(0, len(shared), self.max_batch_streams):
            batch = shared[i : i + self.max_batch_streams]
            self._search_batch(batch, self._intersecter(len(batch)))

    def _search_batch(
        self,
        batch: List[Tuple[Hashable, torch.Tensor]],
        intersecter: k2.OnlineDenseIntersecter,
    ) -> None:
        """One online intersection step of streams on the same graph."""
        streams = [self._streams[key] for key, _ in batch]
        lengths = [lp.size(0) for _, lp in batch]
        padded = torch.nn.utils.rnn.pad_sequence([lp for _, lp in batch], True)
        segments = torch.tensor(
            [[j, 0, n] for j, n in enumerate(lengths)], dtype=torch.int32
        )
        dense = k2.DenseFsaVec(padded.to(torch.float32), segments)
        lattice, states = intersecter.decode(
            dense, [s.decode_state for s in streams]
        )
        alignments = best_path_alignments(lattice)
        for stream, state, alignment in zip(streams, states, alignments):
            stream.decode_state, stream.alignment = state, alignment
            stream.hyp = alignment.ids

    def _redecode(self, streams: List[StreamState]) -> None:
        """Sets the final ids of ending streams from all their log-probs at once.

        The same pruned intersection as offline decoding (see
        ``StreamingOptions.redecode_final``), ``max_batch_streams`` at a time.
        """
        own = [[s] for s in streams if s.graph is not None]
        shared = [s for s in streams if s.graph is None]
        batches = own + [
            shared[i : i + self.max_batch_streams]
            for i in range(0, len(shared), self.max_batch_streams)
        ]
        for batch in batches:
            utts = [torch.cat(s.log_probs) for s in batch]
            lens = torch.tensor([u.size(0) for u in utts])
            padded = torch.nn.utils.rnn.pad_sequence(utts, batch_first=True)
            graph = batch[0].graph if batch[0].graph is not None else self.graph
            lattice = get_lattice(padded, lens, graph, self.options.beams())
            for stream, alignment in zip(batch, best_path_alignments(lattice)):
                stream.hyp, stream.alignment = alignment.ids, alignment
                stream.log_probs = []

    def _intersecter(self, batch_size: int) -> k2.OnlineDenseIntersecter:
        """The intersecter for batches of exactly ``batch_size`` streams."""
        if batch_size not in self._intersecters:
            self._intersecters[batch_size] = k2.OnlineDenseIntersecter(
                decoding_graph=self.graph,
                num_streams=batch_size,
                **self.options.kwargs(),
            )
        return self._intersecters[batch_size]
