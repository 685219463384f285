"""CTC loss computed by k2 from per-utterance training graphs."""

from typing import Literal, Optional, Tuple

import k2
import torch

__all__ = ["k2_ctc_loss", "check_dense_inputs", "sorted_dense_fsa_vec", "reduce_losses"]


def check_dense_inputs(
    log_probs: torch.Tensor, out_lens: torch.Tensor, graphs: k2.Fsa
) -> torch.Tensor:
    """Validates shapes and devices; returns the lengths as a CPU int64 tensor."""
    if log_probs.dim() != 3:
        raise ValueError(
            f"log_probs must be (N, T, V), got shape {tuple(log_probs.shape)}"
        )
    n, t, _ = log_probs.shape
    if out_lens.shape != (n,):
        raise ValueError(
            f"out_lens must have shape ({n},), got {tuple(out_lens.shape)}"
        )
    if len(graphs.shape) != 3 or graphs.shape[0] != n:
        raise ValueError(
            f"graphs must be an FsaVec of {n} FSAs, got shape {graphs.shape}"
        )
    if graphs.device != log_probs.device:
        raise ValueError(
            f"graphs are on {graphs.device}, log_probs on {log_probs.device}"
        )
    lens = out_lens.detach().to("cpu", torch.int64)
    if n and (int(lens.min()) < 1 or int(lens.max()) > t):
        raise ValueError(f"out_lens must be in [1, {t}], got {lens.tolist()}")
    return lens


def sorted_dense_fsa_vec(
    log_probs: torch.Tensor, lens: torch.Tensor
) -> Tuple[k2.DenseFsaVec, torch.Tensor]:
    """Wraps a padded batch as a DenseFsaVec with segments longest first.

    k2 wants supervision segments sorted by duration, longest first; the sort is
    stable, so ties keep their batch order.

    Args:
      log_probs: (N, T, V) log-probs; cast to float32, which k2 requires.
      lens: valid frames per utterance, (N,) int64 on the CPU.
    Returns:
      ``(dense, order)``: the DenseFsaVec whose segment ``i`` is utterance
      ``order[i]``; ``order`` is (N,) int64 on the CPU.
    """
    order = torch.sort(lens, descending=True, stable=True).indices
    segments = torch.stack([order, torch.zeros_like(order), lens[order]], dim=1)
    dense = k2.DenseFsaVec(log_probs.float(), segments.to(torch.int32))
    return dense, order


def reduce_losses(
    losses: torch.Tensor,
    reduction: str,
    target_lengths: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Applies ``sum``/``mean``/``none`` to per-utterance losses (N,)."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if target_lengths is not None:
        losses = losses / target_lengths.to(losses.device, losses.dtype)
    return losses.mean()


def k2_ctc_loss(
    log_probs: torch.Tensor,
    out_lens: torch.Tensor,
    graphs: k2.Fsa,
    reduction: Literal["sum", "mean", "none"] = "sum",
    output_beam: float = 10.0,
    target_lengths: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """CTC loss of a padded batch against its training graphs, via k2.

    k2 wants the supervision segments of a ``DenseFsaVec`` sorted by duration,
    longest first; this sorts them (stably), re-orders the graphs to match and
    puts the per-utterance losses back in batch order, so callers may pass
    utterances in any order. The loss is k2's negated total log-likelihood
    ``-log sum_paths exp(score)`` over the intersection of each graph with the
    log-probs, which for ``k2.ctc_graph`` graphs equals
    ``torch.nn.functional.ctc_loss`` with ``blank=0``. Infeasible utterances
    (too few frames for their tokens) give ``inf``.

    Args:
      log_probs: log-softmax outputs, shape (N, T, V); blank is token 0. Any
        float dtype; k2 computes in float32 (totals in float64).
      out_lens: valid frames per utterance, shape (N,), each in ``[1, T]``.
      graphs: FsaVec of N training graphs in batch order on ``log_probs``'s
        device, e.g. from :class:`asrk2.lang.graph_compiler.CtcTrainingGraphCompiler`.
      reduction: ``sum`` over utterances; ``mean`` over utterances (after
        dividing each by its target length when ``target_lengths`` is given,
        which is what torch's ``mean`` does); ``none`` for a (N,) tensor in the
        original batch order.
      output_beam: lattice pruning beam relative to the best path, as k2's
        ``ctc_loss``; paths further below are dropped from the sum, so larger is
        more exact and slower.
      target_lengths: tokens per utterance, shape (N,); used by ``mean`` only.
    Returns:
      A scalar (``sum``/``mean``) or shape (N,) (``none``), float32.
    """
    if reduction not in ("sum", "mean", "none"):
        raise ValueError(
            f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}"
        )
    lens = check_dense_inputs(log_probs, out_lens, graphs)
    # k2 only takes float32; the cast inside also lets fp16/AMP models call this.
    dense, order = sorted_dense_fsa_vec(log_probs, lens)
    sorted_graphs = k2.index_fsa(graphs, order.to(torch.int32).to(graphs.device))
    sorted_losses = k2.ctc_loss(
        sorted_graphs,
        dense,
        output_beam=output_beam,
        reduction="none",
        use_double_scores=True,
    )
    losses = sorted_losses[torch.argsort(order).to(sorted_losses.device)]
    return reduce_losses(losses, reduction, target_lengths)
