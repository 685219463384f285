"""Lattice-free MMI loss with k2 (icefall's ``LFMMILoss``, built on our graphs).

Per utterance the loss is ``-(num_tot - den_scale * den_tot)``, where the
totals are log-semiring total scores of the network's log-probs intersected
with the numerator graph (the transcript's CTC graph scored by the token
bigram) and with the denominator graph (CTC topology x bigram). With
``den_scale = 1`` and the numerator paths a subset of the denominator's, it is
``-log`` of the transcript's posterior, so it is >= 0 and 0 only when the
model puts all mass on the transcript. See :mod:`asrk2.lang.mmi_graphs`.
"""

import logging
from dataclasses import dataclass
from typing import List, Literal

import k2
import torch

from asrk2.beams import SearchBeams
from asrk2.lang.mmi_graphs import MmiGraphCompiler, build_num_graphs
from asrk2.losses.ctc import check_dense_inputs, reduce_losses, sorted_dense_fsa_vec

__all__ = ["MmiOptions", "mmi_loss", "LfMmiLoss"]

log = logging.getLogger(__name__)


@dataclass
class MmiOptions(SearchBeams):
    """Options of the LF-MMI loss.

    The inherited :class:`~asrk2.beams.SearchBeams` prune the intersections:
    ``output_beam`` both of them (wider than decoding's, since the loss sums
    over the lattice: larger is more exact), the others only ``den_pruned``.

    Attributes:
      den_scale: weight of the denominator total score.
      bigram_smoothing: add-k smoothing of the token bigram "P"; 0 keeps only
        bigrams seen in the training transcripts.
      den_pruned: use ``k2.intersect_dense_pruned`` for the denominator, which
        bounds memory and time on large bigram graphs at the cost of exactness.
    """

    output_beam: float = 10.0
    den_scale: float = 1.0
    bigram_smoothing: float = 0.0
    den_pruned: bool = False


def _tot_scores(lats: k2.Fsa) -> torch.Tensor:
    return lats.get_tot_scores(log_semiring=True, use_double_scores=True)


def mmi_loss(
    log_probs: torch.Tensor,
    out_lens: torch.Tensor,
    num_graphs: k2.Fsa,
    den_graph: k2.Fsa,
    options: MmiOptions = MmiOptions(),
    reduction: Literal["sum", "mean", "none"] = "sum",
) -> torch.Tensor:
    """LF-MMI loss of a padded batch.

    Args:
      log_probs: (N, T, V) network log-probs (log-softmax); blank is 0.
      out_lens: valid frames (N,), each in ``[1, T]``.
      num_graphs: FsaVec of N numerator graphs in batch order.
      den_graph: the single denominator Fsa, on the same device.
      options: den_scale and intersection beams.
      reduction: ``sum``/``mean`` over utterances or ``none`` for (N,) in
        batch order. An utterance whose transcript its graphs cannot align
        (too few frames, or a bigram pair of probability 0) gives ``inf``.
    Returns:
      A scalar or (N,), float (double-precision totals cast to float32).
    """
    lens = check_dense_inputs(log_probs, out_lens, num_graphs)
    dense, order = sorted_dense_fsa_vec(log_probs, lens)
    device = log_probs.device
    num_lats = k2.intersect_dense(
        k2.index_fsa(num_graphs, order.to(torch.int32).to(device)),
        dense,
        output_beam=options.output_beam,
    )
    den_vec = k2.create_fsa_vec([den_graph])
    if options.den_pruned:
        den_lats = k2.intersect_dense_pruned(den_vec, dense, **options.kwargs())
    else:
        zeros = torch.zeros(len(order), dtype=torch.int32, device=device)
        den_lats = k2.intersect_dense(
            k2.index_fsa(den_vec, zeros), dense, output_beam=options.output_beam
        )
    sorted_losses = -(_tot_scores(num_lats) - options.den_scale * _tot_scores(den_lats))
    losses = sorted_losses[torch.argsort(order).to(sorted_losses.device)].float()
    return reduce_losses(losses, reduction)


class LfMmiLoss:
    """Transcripts in, LF-MMI loss out: graph compilation plus :func:`mmi_loss`.

    Args:
      compiler: builds numerator graphs and holds the denominator graph.
      options: den_scale and intersection beams.
    """

    def __init__(self, compiler: MmiGraphCompiler, options: MmiOptions) -> None:
        self.compiler = compiler
        self.options = options
        self.uncovered = 0

    def __call__(
        self,
        log_probs: torch.Tensor,
        out_lens: torch.Tensor,
        token_ids: List[List[int]],
    ) -> torch.Tensor:
        """Per-utterance losses (N,) of a batch; see :func:`mmi_loss`.

        Args:
          log_probs: (N, T, V) network log-probs.
          out_lens: valid frames (N,).
          token_ids: N transcripts as token ids (``compiler.ctc_compiler``'s).
        Returns:
          Losses (N,) in batch order; 0 for a transcript with a token pair the
          bigram never saw (held-out text with ``bigram_smoothing: 0``): no
          path of the denominator graph, so no MMI loss. Those are counted in
          ``uncovered`` and logged.
        """
        device = log_probs.device
        bigram = self.compiler.bigram
        keep = [i for i, ids in enumerate(token_ids) if bigram.covers(ids)]
        losses = log_probs.new_zeros(len(token_ids))
        if len(keep) < len(token_ids):
            before = self.uncovered
            self.uncovered += len(token_ids) - len(keep)
            if before == 0 or self.uncovered // 100 > before // 100:
                log.warning("LF-MMI: %d transcripts so far have token pairs unseen "
                            "in the bigram; they get no MMI loss (set "
                            "loss.mmi.bigram_smoothing > 0 to cover them)",
                            self.uncovered)  # fmt: skip
        if not keep:
            return losses
        index = torch.tensor(keep, device=device)
        num_graphs = build_num_graphs([token_ids[i] for i in keep], bigram, device)
        den_graph = self.compiler.den_graph.to(device)
        losses[index] = mmi_loss(
            log_probs[index], out_lens[index], num_graphs, den_graph, self.options,
            "none",
        )  # fmt: skip
        return losses
