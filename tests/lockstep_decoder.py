"""A reference streaming decoder for the tests: N equal streams in lockstep.

Independent of :class:`asrk2.decode.streaming.MultiStreamDecoder` (no frame
queues, no grouping by cache length, one intersecter), so that the tests can
check the multi-stream decoder's batching against it.
"""

from typing import Iterator, List

import k2
import torch

from asrk2.decode.ctc_decode import one_best_token_ids
from asrk2.decode.streaming import StreamingOptions
from asrk2.model.ctc_model import CtcModel


class StreamingDecoder:
    """Decodes N streams in lockstep, one chunk of features at a time.

    Args:
      model: the CTC model (a causal encoder for streaming = offline chunked).
      graph: arc-sorted decoding graph on the model's device: H (token ids
        out) or HL/HLG (word ids out).
      options: chunking and beams.
      num_streams: N, the number of streams decoded together.
    """

    def __init__(
        self,
        model: CtcModel,
        graph: k2.Fsa,
        options: StreamingOptions,
        num_streams: int = 1,
    ) -> None:
        self.model = model
        self.options = options
        self.num_streams = num_streams
        self.device = graph.device
        if graph.arcs.num_axes() == 2:  # the C++ side wants an FsaVec
            graph = k2.create_fsa_vec([graph])
        self.intersecter = k2.OnlineDenseIntersecter(
            decoding_graph=graph, num_streams=num_streams, **options.kwargs()
        )
        self.state = model.init_state(num_streams, self.device)
        self.decode_states: list = [None] * num_streams
        self.hyps: List[List[int]] = [[] for _ in range(num_streams)]
        self.num_frames = 0

    def split(self, features: torch.Tensor) -> Iterator[torch.Tensor]:
        """Cuts (N, T, C) features into the per-call pieces of ``chunk_size``.

        The first piece is 3 frames longer (the subsampling's look-ahead), so
        that streaming reproduces the offline chunked encoder.
        """
        pos, first = 0, True
        while pos < features.size(1):
            n = self.model.encoder.chunk_input_frames(self.options.chunk_size, first)
            yield features[:, pos : pos + n]
            pos, first = pos + n, False

    @torch.no_grad()
    def accept(self, features: torch.Tensor) -> List[List[int]]:
        """Feeds the next input frames of every stream.

        Args:
          features: new frames (N, T, C), any T >= 0; the encoder buffers what
            it cannot use yet.
        Returns:
          The partial hypothesis of each stream (ids of the graph's
          aux_labels), unchanged if no output frame was produced.
        """
        if features.size(0) != self.num_streams:
            raise ValueError(
                f"expected {self.num_streams} streams, got {features.size(0)}"
            )
        log_probs, self.state = self.model.forward_chunk(
            features.to(self.device), self.state, self.options.left_context_frames
        )
        if log_probs.size(1) > 0:
            self._search(log_probs)
        return self.hyps

    def _search(self, log_probs: torch.Tensor) -> None:
        """Advances the online intersection by the chunk's (N, T', V) log-probs."""
        n, t, _ = log_probs.shape
        segments = torch.tensor([[i, 0, t] for i in range(n)], dtype=torch.int32)
        dense = k2.DenseFsaVec(log_probs.to(torch.float32), segments)
        lattice, self.decode_states = self.intersecter.decode(dense, self.decode_states)
        self.hyps = one_best_token_ids(lattice)
        self.num_frames += t

    def result(self) -> List[List[int]]:
        """The final hypotheses: the best complete paths after the last chunk."""
        return self.hyps


def stream_decode(
    model: CtcModel,
    graph: k2.Fsa,
    features: torch.Tensor,
    options: StreamingOptions,
) -> List[List[List[int]]]:
    """Decodes N equally long streams chunk by chunk.

    Args:
      model: the CTC model, in eval mode.
      graph: H, HL or HLG, on the model's device.
      features: (N, T, C) features of N streams of the same length.
      options: chunking and beams.
    Returns:
      For each chunk, the partial hypotheses of the N streams; the last
      entry is the final result.
    """
    decoder = StreamingDecoder(model, graph, options, features.size(0))
    return [[list(h) for h in decoder.accept(x)] for x in decoder.split(features)]
