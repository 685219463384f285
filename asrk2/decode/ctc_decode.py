"""1-best decoding of CTC outputs by intersecting them with a k2 decoding graph.

The same :func:`get_lattice` serves every graph: with the CTC topology H the
lattice's aux_labels are token ids, with HLG they are word ids, and
:func:`one_best_token_ids` reads whichever the graph carries.

Example::

    H = build_ctc_topo(max_token_id=499)
    hyps = ctc_greedy_decode(log_probs, out_lens, H)  # List[List[int]], batch order
"""

from typing import List, Optional, Union

import k2
import torch

from asrk2.beams import GREEDY_BEAMS, SearchBeams

__all__ = [
    "build_ctc_topo",
    "ctc_argmax_decode",
    "ctc_greedy_decode",
    "get_lattice",
    "one_best_token_ids",
]


def build_ctc_topo(
    max_token_id: int,
    modified: bool = False,
    device: Optional[Union[str, torch.device]] = None,
) -> k2.Fsa:
    """Builds the CTC topology H, arc-sorted as intersection requires.

    Args:
      max_token_id:
        The largest token id (inclusive); ids run from 1 to ``max_token_id``
        and 0 is the blank.
      modified:
        If False, the standard topology, where a blank must separate two
        identical neighbouring tokens. If True, the modified topology
        (k2 issue #746), which has no such constraint and far fewer arcs
        (linear rather than quadratic in the vocabulary size).
      device:
        Where to put the FSA; None means CPU.

    Returns:
      H, a single FSA whose labels are token ids (0 = blank, -1 on final
      arcs) and whose aux_labels are the emitted token ids (0 = epsilon).
    """
    if max_token_id < 1:
        raise ValueError(f"max_token_id must be >= 1, got {max_token_id}")
    H = k2.ctc_topo(max_token_id, modified=modified, device=device)
    return k2.arc_sort(H)


def _check_inputs(
    log_probs: torch.Tensor, out_lens: torch.Tensor, subsampling_factor: int
) -> torch.Tensor:
    """Validates decoder inputs; returns the lengths as a CPU int64 tensor."""
    if log_probs.ndim != 3:
        raise ValueError(f"log_probs must be (N, T, V), got {tuple(log_probs.shape)}")
    if subsampling_factor < 1:
        raise ValueError(f"subsampling_factor must be >= 1, got {subsampling_factor}")
    lens = out_lens.detach().to("cpu", torch.int64).reshape(-1)
    N, T, _ = log_probs.shape
    if lens.numel() != N:
        raise ValueError(f"out_lens has {lens.numel()} entries for a batch of {N}")
    if N > 0 and int(lens.min()) < 1:
        raise ValueError(
            f"every utterance needs >= 1 frame, got out_lens={lens.tolist()}"
        )
    # DenseFsaVec truncates at most allow_truncate frames past the end.
    if N > 0 and int(lens.max()) > T + subsampling_factor - 1:
        raise ValueError(
            f"out_lens max {int(lens.max())} exceeds T={T} "
            f"(+{subsampling_factor - 1} allowed by subsampling_factor)"
        )
    return lens


def get_lattice(
    log_probs: torch.Tensor,
    out_lens: torch.Tensor,
    decoding_graph: k2.Fsa,
    beams: SearchBeams = SearchBeams(),
    subsampling_factor: int = 1,
) -> k2.Fsa:
    """Intersects CTC outputs with a decoding graph (H, HLG, ...) into lattices.

    k2 wants supervision segments ordered by decreasing duration, so they
    are sorted (stably, so ties keep batch order) before intersection; the
    lattice k2 returns follows that sorted order. It is then put back into
    batch order with ``k2.index_fsa`` and the inverse permutation, so the
    returned ``lattice[i]`` always belongs to ``log_probs[i]`` and no
    permutation has to travel alongside it.

    Args:
      log_probs:
        Log-softmax network output of shape (N, T, V); V = max token id + 1
        with blank at 0. Detached and cast to float32 (decoding needs no grad).
      out_lens:
        Number of valid frames per utterance, shape (N,), any order.
      decoding_graph:
        An arc-sorted FSA on the same device as ``log_probs``, e.g. from
        :func:`build_ctc_topo`, or an HLG whose aux_labels are word ids.
      beams:
        Pruning of the search (:class:`~asrk2.beams.SearchBeams`).
      subsampling_factor:
        The model's frame subsampling factor; lengths computed from input
        frames may then overshoot T by up to ``subsampling_factor - 1``
        frames, which are truncated (as icefall does).

    Returns:
      An FsaVec of N lattices in batch order. Its aux_labels are those of
      ``decoding_graph`` (token ids for H, word ids for HLG).
    """
    lens = _check_inputs(log_probs, out_lens, subsampling_factor)
    if decoding_graph.device != log_probs.device:
        raise ValueError(
            f"decoding_graph is on {decoding_graph.device}, "
            f"log_probs on {log_probs.device}"
        )
    order = torch.sort(lens, descending=True, stable=True).indices
    segments = torch.stack([order, torch.zeros_like(order), lens[order]], dim=1).to(
        torch.int32
    )
    dense = k2.DenseFsaVec(
        log_probs.detach().to(torch.float32),
        segments,
        allow_truncate=subsampling_factor - 1,
    )
    lattice = k2.intersect_dense_pruned(decoding_graph, dense, **beams.kwargs())
    if torch.equal(order, torch.arange(order.numel())):
        return lattice
    # lattice[j] is utterance order[j]; inverse[i] is where utterance i sits.
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel())
    return k2.index_fsa(lattice, inverse.to(torch.int32).to(lattice.device))


def _aux_labels_per_fsa(paths: k2.Fsa) -> List[List[int]]:
    """Collects the positive aux_labels of each FSA in an FsaVec, in arc order.

    Args:
      paths:
        An FsaVec whose aux_labels are a tensor (one label per arc) or a
        ragged tensor (zero or more labels per arc, as in HLG).

    Returns:
      One list per FSA, with 0 (epsilon) and -1 (final arcs) removed.
    """
    # (fsa, state, arc) -> (fsa, arc)
    arcs_per_fsa = paths.arcs.shape().remove_axis(1)
    aux = paths.aux_labels
    if isinstance(aux, k2.RaggedTensor):
        # (fsa, arc) composed with (arc, label) -> (fsa, arc, label) -> (fsa, label)
        shape = arcs_per_fsa.compose(aux.shape)
        labels = k2.RaggedTensor(shape, aux.values).remove_axis(1)
    else:
        labels = k2.RaggedTensor(arcs_per_fsa, aux.to(torch.int32))
    return labels.remove_values_leq(0).tolist()


def one_best_token_ids(lattice: k2.Fsa) -> List[List[int]]:
    """Reads the best path's output labels from each lattice.

    Order is preserved by construction: ``k2.shortest_path`` maps FSA i of
    its input to FSA i of its output, and :func:`get_lattice` already
    returns lattices in the original batch order, so entry i of the result
    belongs to utterance i of the batch given to :func:`get_lattice`.

    Args:
      lattice:
        An FsaVec, e.g. from :func:`get_lattice`.

    Returns:
      For each FSA, the aux_labels along its best path without 0 and -1:
      token ids when decoding with H, word ids with HLG. A lattice pruned
      to nothing gives an empty list.
    """
    best = k2.shortest_path(lattice, use_double_scores=True)
    return _aux_labels_per_fsa(best)


def ctc_greedy_decode(
    log_probs: torch.Tensor,
    out_lens: torch.Tensor,
    H: k2.Fsa,
    beams: SearchBeams = GREEDY_BEAMS,
) -> List[List[int]]:
    """Decodes CTC outputs to token ids with the topology H (no LM).

    With the standard topology this equals per-frame argmax, collapse
    repeats, drop blanks (see tests/test_ctc_decode.py for why). The best
    partial path is then the best state on every frame, so even very tight
    beams cannot prune it; hence :data:`~asrk2.beams.GREEDY_BEAMS`. With 500 tokens
    (standard H has 250k arcs) :func:`get_lattice`'s lattice-sized defaults
    are ~100x slower on CPU and need GBs of memory per batch.

    Args:
      log_probs:
        Log-softmax network output of shape (N, T, V), blank at 0.
      out_lens:
        Number of valid frames per utterance, shape (N,).
      H:
        CTC topology from :func:`build_ctc_topo`, on log_probs' device.
      beams:
        Pruning of the search; only the best path is read, so tight is fine.

    Returns:
      N lists of token ids, in batch order.
    """
    return one_best_token_ids(get_lattice(log_probs, out_lens, H, beams))


def ctc_argmax_decode(
    log_probs: torch.Tensor, out_lens: torch.Tensor
) -> List[List[int]]:
    """Per-frame argmax, repeats collapsed, blanks dropped: no graph needed.

    Equals :func:`ctc_greedy_decode` with the standard H (checked in
    tests/test_ctc_decode.py); cheap enough to run on every validation batch.

    Args:
      log_probs: (N, T, V) CTC log-probs, blank at 0.
      out_lens: (N,) valid frames.
    Returns:
      N lists of token ids, in batch order.
    """
    best = log_probs.argmax(dim=-1).cpu()
    hyps = []
    for ids, n in zip(best, out_lens.tolist()):
        ids = torch.unique_consecutive(ids[:n])
        hyps.append([int(i) for i in ids if i != 0])
    return hyps
