"""Encoded minimisation of k2 FSAs, which k2 itself does not offer.

Kaldi builds LG as ``fstminimizeencoded(fstdeterminizestar(L o G))``: each
arc's (label, output labels, weight) is treated as one symbol and equivalent
states are merged. k2 has ``determinize`` but no ``minimize``; this module
adds it by partition refinement (Moore's algorithm) on numpy arrays:

1. Start with two blocks, the final state and all other states.
2. Give each state the signature "its block, and the multiset of
   (arc symbol, block of the destination)" over its leaving arcs; states with
   equal signatures form the new blocks. Repeat until the number of blocks
   stops growing.
3. Keep one state per block and redirect arcs to block representatives.

Signatures are hashed to 64 bits so each round is a few vectorised passes;
the final partition is then checked exactly (each state's sorted arcs equal
those of its block's representative), so a hash collision can never merge
non-equivalent states. On a deterministic FSA this gives the minimal
encoded FSA; on any FSA it merges bisimilar states, which preserves the
weighted relation exactly. Weights are compared after rounding to 1/1024
(as Kaldi's encode does); merged arcs keep the representative's weight.

Example::

    LG = k2.determinize(k2.connect(k2.compose(L, G)))
    LG = minimize_encoded(LG)
"""

import logging
from typing import Dict, Tuple

import k2
import numpy as np
import torch

__all__ = ["minimize_encoded"]

log = logging.getLogger(__name__)

_WEIGHT_QUANTUM = 1024.0
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX3 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of uint64 values."""
    with np.errstate(over="ignore"):
        x = (x + _MIX1).astype(np.uint64)
        x = (x ^ (x >> np.uint64(30))) * _MIX2
        x = (x ^ (x >> np.uint64(27))) * _MIX3
        return x ^ (x >> np.uint64(31))


def _aux_keys(fsa: k2.Fsa) -> np.ndarray:
    """One int64 per arc that is equal exactly when the arcs' aux_labels are."""
    num_arcs = fsa.num_arcs
    if not hasattr(fsa, "aux_labels"):
        return np.zeros(num_arcs, dtype=np.int64)
    aux = fsa.aux_labels
    if isinstance(aux, torch.Tensor):
        return aux.numpy().astype(np.int64)
    splits = aux.shape.row_splits(1).numpy().astype(np.int64)
    values = aux.values.numpy().astype(np.int64)
    lengths = np.diff(splits)
    # Short sequences encode directly; longer ones get ids past that range.
    keys = np.full(num_arcs, -2, dtype=np.int64)
    keys[lengths == 1] = values[splits[:-1][lengths == 1]]
    offset = int(values.max(initial=0)) + 2
    long_arcs = np.nonzero(lengths > 1)[0]
    seen: Dict[Tuple[int, ...], int] = {}
    for a in long_arcs.tolist():
        seq = tuple(values[splits[a] : splits[a + 1]].tolist())
        keys[a] = offset + seen.setdefault(seq, len(seen))
    return keys


def _dense_ids(*keys: np.ndarray) -> np.ndarray:
    """Exact ids 0..K-1 of the distinct rows of equal-length int64 columns."""
    order = np.lexsort(keys[::-1])
    change = np.zeros(order.size, dtype=bool)
    for key in keys:
        sorted_key = key[order]
        change[1:] |= sorted_key[1:] != sorted_key[:-1]
    ids = np.empty(order.size, dtype=np.int64)
    ids[order] = np.cumsum(change)
    return ids


def _arc_symbols(fsa: k2.Fsa) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, symbol) per arc; a symbol encodes label, aux_labels and weight."""
    arcs = fsa.arcs.values()[:, :3].numpy().astype(np.int64)
    scores = fsa.scores.detach().numpy().astype(np.float64)
    finite = np.isfinite(scores)
    weights = np.round(np.where(finite, scores, 0) * _WEIGHT_QUANTUM)
    # -inf scores get their own code, distinct from every finite weight.
    weights = np.where(finite, weights, np.iinfo(np.int64).min).astype(np.int64)
    symbols = _dense_ids(arcs[:, 2], _aux_keys(fsa), weights)
    return arcs[:, 0], arcs[:, 1], symbols


def _refine(
    src: np.ndarray, dst: np.ndarray, sym: np.ndarray, num_states: int, salt: int
) -> np.ndarray:
    """Moore refinement with hashed signatures; returns the block of each state.

    ``src`` must be sorted (k2 keeps arcs in order of their source state).
    """
    block = np.zeros(num_states, dtype=np.int64)
    block[num_states - 1] = 1  # k2's final state is the last one
    num_blocks = 2
    sym_hash = _mix(sym.astype(np.uint64) + np.uint64(salt))
    starts = np.searchsorted(src, np.arange(num_states))
    has_arcs = np.bincount(src, minlength=num_states) > 0
    rounds = 0
    while True:
        rounds += 1
        arc_hash = _mix(sym_hash ^ _mix(block[dst].astype(np.uint64)))
        # Sum per state: an order-free hash of the multiset of its arcs.
        state_hash = np.zeros(num_states, dtype=np.uint64)
        with np.errstate(over="ignore"):
            state_hash[has_arcs] = np.add.reduceat(arc_hash, starts[has_arcs])
            key = _mix(state_hash ^ _mix(block.astype(np.uint64) + np.uint64(7)))
        _, new_block = np.unique(key, return_inverse=True)
        new_num = int(new_block.max()) + 1
        block = new_block.reshape(-1).astype(np.int64)
        if new_num == num_blocks:
            break
        num_blocks = new_num
    log.debug("minimize: %d rounds, %d -> %d states", rounds, num_states, num_blocks)
    return block


def _representatives(block: np.ndarray) -> np.ndarray:
    """The smallest state of each block (blocks are numbered 0..B-1)."""
    _, first = np.unique(block, return_index=True)
    return first.astype(np.int64)


def _is_exact(
    src: np.ndarray, dst: np.ndarray, sym: np.ndarray, block: np.ndarray
) -> bool:
    """Whether each state's sorted (symbol, dest block) arcs equal its block head's."""
    num_states = block.size
    rep = _representatives(block)
    state_rep = rep[block]
    dblock = block[dst]
    order = np.lexsort((dblock, sym, src))
    src_s, sym_s, dblock_s = src[order], sym[order], dblock[order]
    degree = np.bincount(src, minlength=num_states)
    if not np.array_equal(degree, degree[state_rep]):
        return False
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    pos = np.arange(src_s.size) - start[src_s]
    twin = start[state_rep[src_s]] + pos
    return bool(
        np.array_equal(sym_s, sym_s[twin]) and np.array_equal(dblock_s, dblock_s[twin])
    )


def minimize_encoded(fsa: k2.Fsa) -> k2.Fsa:
    """Merges equivalent states of a single, connected FSA.

    Args:
      fsa: one FSA (not an FsaVec) on CPU, e.g. a determinised LG; its
        ``aux_labels`` may be a tensor or a ragged tensor.
    Returns:
      An equivalent FSA with no more states, state 0 still the start state and
      the last state final. ``aux_labels`` is carried over; other attributes
      are dropped.
    Raises:
      RuntimeError: if three hash seeds in a row collide (never observed).
    """
    if len(fsa.shape) != 2:
        raise ValueError("minimize_encoded takes a single FSA, not an FsaVec")
    num_states = fsa.shape[0]
    if num_states <= 2:
        return fsa
    src, dst, sym = _arc_symbols(fsa)
    for salt in (0, 12345, 987654321):
        block = _refine(src, dst, sym, num_states, salt)
        if _is_exact(src, dst, sym, block):
            break
    else:
        raise RuntimeError("minimize_encoded: hash collisions in three rounds")
    return _merge(fsa, src, dst, block)


def _merge(fsa: k2.Fsa, src: np.ndarray, dst: np.ndarray, block: np.ndarray) -> k2.Fsa:
    """Builds the quotient FSA: one state per block, numbered by first member."""
    num_states = block.size
    rep = _representatives(block)
    # Number blocks in the order of their representatives: start stays 0 and
    # the final state (alone in its block, the largest id) stays last.
    new_id = np.empty_like(rep)
    new_id[np.argsort(rep, kind="stable")] = np.arange(rep.size)
    keep = np.nonzero(rep[block[src]] == src)[0]
    keep = keep[np.argsort(new_id[block[src[keep]]], kind="stable")]
    arcs = fsa.arcs.values()[torch.from_numpy(keep)].clone()
    arcs[:, 0] = torch.from_numpy(new_id[block[src[keep]]]).to(torch.int32)
    arcs[:, 1] = torch.from_numpy(new_id[block[dst[keep]]]).to(torch.int32)
    aux = None
    if hasattr(fsa, "aux_labels"):
        index = torch.from_numpy(keep).to(torch.int32)
        if isinstance(fsa.aux_labels, torch.Tensor):
            aux = fsa.aux_labels[index.long()]
        else:
            aux = fsa.aux_labels.index(index, axis=0)[0]
    out = k2.Fsa(arcs, aux_labels=aux)
    log.info(
        "minimize_encoded: %d -> %d states, %d -> %d arcs",
        num_states,
        rep.size,
        fsa.num_arcs,
        out.num_arcs,
    )
    return out
