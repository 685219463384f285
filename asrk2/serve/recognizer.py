"""What the servers decode with: a multi-stream decoder and its output mapping.

:func:`load_recognizer` turns a trained model and a lang dir into a
:class:`StreamingRecognizer`; :func:`make_recognizer` does the same for a
model and graph already in memory (tests, benchmarks). The WebSocket server
(:mod:`asrk2.serve.server`) only sees the recognizer.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import k2
import torch

from asrk2.decode.hotwords import (
    HotwordReport,
    HotwordUnits,
    bias_graph,
    context_graph,
    hotword_units,
    parse_hotwords,
)
from asrk2.decode.methods import load_streaming_graph
from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
from asrk2.frames import ChunkTiming, chunk_timing
from asrk2.lang.bpe import load_bpe
from asrk2.model.ctc_model import CtcModel
from asrk2.serve.decode_loop import StreamDecoder

__all__ = ["StreamingRecognizer", "make_recognizer", "load_recognizer"]


@dataclass
class StreamingRecognizer:
    """A multi-stream decoder and how to read its output.

    Attributes:
      decoder: the ``MultiStreamDecoder`` (or any :class:`StreamDecoder`).
      to_words: maps one hypothesis (graph output ids) to words.
      timing: audio per decoder chunk of one stream, and the extra audio the
        first chunk needs.
      pieces: the BPE pieces by token id, for word times; None: times from
        the frames that emit the words.
      graph: the decoding graph, for streams with hotwords of their own.
      units: how phrases become the graph's output units; None: streams
        cannot have hotwords of their own.
    """

    decoder: StreamDecoder
    to_words: Callable[[List[int]], List[str]]
    timing: ChunkTiming
    pieces: Optional[List[str]] = None
    graph: Optional[k2.Fsa] = None
    units: Optional[HotwordUnits] = None

    def stream_graph(
        self, phrases: Sequence[str], boost: float
    ) -> Tuple[Optional[k2.Fsa], HotwordReport]:
        """The graph biased with one stream's phrases (``parse_hotwords`` lines).

        Slow for big graphs (a composition): call it off the event loop.

        Returns:
          ``(graph, report)``; graph None when no phrase could be used.
        Raises:
          ValueError: a bad boost, or no ``units``/``graph`` to bias.
        """
        if self.units is None or self.graph is None:
            raise ValueError("this server takes no per-stream hotwords")
        report = HotwordReport()
        hotwords = parse_hotwords(phrases, boost, self.units.to_ids, report)
        if not hotwords:
            return None, report
        context = context_graph(hotwords, self.units.num_units)
        return bias_graph(self.graph, context), report


def make_recognizer(
    model: CtcModel,
    graph: k2.Fsa,
    to_words: Callable[[List[int]], List[str]],
    options: StreamingOptions,
    max_batch_streams: int = 32,
    pieces: Optional[List[str]] = None,
    units: Optional[HotwordUnits] = None,
) -> StreamingRecognizer:
    """A :class:`StreamingRecognizer` over a ``MultiStreamDecoder``.

    Args:
      model: CTC model with a causal encoder, in eval mode, on the graph's
        device.
      graph: H (token ids out) or HL/HLG (word ids out).
      to_words: maps the graph's output ids to words.
      options: chunking, beams and finals (``redecode_final`` resolved).
      max_batch_streams: most streams per batched step.
      pieces: BPE pieces by token id (word times of segment finals).
      units: phrases to graph units, for per-stream hotwords.
    Returns:
      The recognizer for :class:`~asrk2.serve.server.AsrServer`.
    Raises:
      ValueError: the encoder is not causal (it cannot stream).
    """
    if not model.config.encoder.causal:
        raise ValueError(
            "the model's encoder has causal: false and cannot stream; train "
            "one with causal: true (e.g. egs/synth/ASR/conf/demo.yaml)"
        )
    decoder = MultiStreamDecoder(model, graph, options, max_batch_streams)
    timing = chunk_timing(options.chunk_size, model.subsampling_factor)
    return StreamingRecognizer(decoder, to_words, timing, pieces, graph, units)


def load_recognizer(
    model: CtcModel,
    lang_dir: Union[str, Path],
    graph_name: str,
    options: StreamingOptions,
    max_batch_streams: int = 32,
    device: str = "cpu",
) -> StreamingRecognizer:
    """A :class:`StreamingRecognizer` of a trained model and a graph of its lang dir.

    Args:
      model: e.g. from :func:`asrk2.checkpoint.load_model`.
      lang_dir: ``bpe.model`` (H) or ``words.txt`` and ``HL.pt``/``HLG.pt``.
      graph_name: ``H``, ``HL`` or ``HLG``; an unset ``redecode_final`` is
        decided for it (:meth:`StreamingOptions.for_graph`).
      options: chunking and beams.
      max_batch_streams: most streams per batched step.
      device: where the model and graph go.
    """
    dev = torch.device(device)
    graph, to_words = load_streaming_graph(
        Path(lang_dir), graph_name, dev, options.hotwords, options.graph_weights
    )
    sp = load_bpe(Path(lang_dir) / "bpe.model")
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    units = hotword_units(Path(lang_dir), word_level=graph_name != "H")
    return make_recognizer(
        model.to(dev),
        graph,
        to_words,
        options.for_graph(graph_name),
        max_batch_streams,
        pieces,
        units,
    )
