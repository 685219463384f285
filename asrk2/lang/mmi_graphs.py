"""LF-MMI graphs: a token bigram "P", its CTC denominator graph, numerator graphs.

Lattice-free MMI (https://www.danielpovey.com/files/2016_interspeech_mmi.pdf;
icefall's ``conformer_mmi``) maximises ``log p(x|W) P(W) - log sum_W' p(x|W')
P(W')``: the numerator graph accepts the CTC alignments of the transcript W,
the denominator graph those of every token sequence, both scored by a bigram
LM ``P`` over tokens (BPE pieces, or phones when the ids come from a lexicon).

Both graphs are built directly, without composing a CTC topology with ``P``:
with state "last token a, now in a" / "last token a, now in blank", the
standard CTC topology (blank 0, a blank needed between two equal tokens, as
:func:`k2.ctc_graph` with ``modified=False``) composed with a bigram has just
``2 |tokens| + 2`` states, and an arc ``a -> b`` carries ``log P(b | a)``.

Every arc of a k2 dense intersection consumes a frame, so ``P`` cannot use
epsilon back-off arcs; it keeps the bigrams seen in training, plus add-k
smoothing over all pairs of seen tokens when ``smoothing > 0`` (V^2 arcs).
Id 0 doubles as sentence start (as history) and end (as next token), since
the blank never occurs in a token sequence.
"""

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import k2
import torch

from asrk2.lang.graph_compiler import CtcTrainingGraphCompiler, TextToIds
from asrk2.utils import atomic_write_text

__all__ = [
    "TokenBigram",
    "estimate_token_bigram",
    "build_den_graph",
    "build_num_graphs",
    "MmiGraphCompiler",
]

BOS_EOS = 0
Arc = Tuple[int, int, int, float]


@dataclass
class TokenBigram:
    """A bigram LM over token ids: ``log_probs[(a, b)] = log P(b | a)``.

    ``a == 0`` is the sentence start and ``b == 0`` the sentence end; pairs
    missing from the dict have probability 0.
    """

    log_probs: Dict[Tuple[int, int], float]

    @property
    def tokens(self) -> List[int]:
        """Sorted token ids that can occur (excluding the start/end id 0)."""
        return sorted({b for (_, b) in self.log_probs if b != BOS_EOS})

    def score(self, prev: int, token: int) -> float:
        """``log P(token | prev)``; ``-inf`` for an unseen pair."""
        return self.log_probs.get((prev, token), -math.inf)

    def covers(self, ids: Sequence[int]) -> bool:
        """Whether every pair of ``<s> ids </s>`` has a probability, i.e. the
        transcript is a path of the denominator graph."""
        seq = [BOS_EOS, *ids, BOS_EOS]
        return all(pair in self.log_probs for pair in zip(seq[:-1], seq[1:]))

    def save(self, path: Union[str, Path]) -> None:
        """Writes ``prev next log_prob`` lines, atomically."""
        lines = [f"{a} {b} {lp:.8g}" for (a, b), lp in sorted(self.log_probs.items())]
        atomic_write_text(Path(path), "\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "TokenBigram":
        """Reads a file written by :meth:`save`."""
        log_probs = {}
        for line in Path(path).read_text().splitlines():
            a, b, lp = line.split()
            log_probs[(int(a), int(b))] = float(lp)
        return cls(log_probs)


def estimate_token_bigram(
    sequences: Iterable[Sequence[int]], smoothing: float = 0.0
) -> TokenBigram:
    """Estimates ``P(b | a)`` from token sequences.

    Args:
      sequences: token id sequences (ids > 0), e.g. the training transcripts.
      smoothing: add-k constant; 0 keeps only seen bigrams (maximum
        likelihood), k > 0 gives every pair of seen tokens (and token -> end)
        the extra count k, so unseen pairs in held-out text stay finite.
    Returns:
      The bigram; the start -> end pair (empty sentence) is never included.
    """
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    counts: Counter = Counter()
    for seq in sequences:
        ids = [BOS_EOS] + [int(t) for t in seq] + [BOS_EOS]
        if len(ids) == 2 or min(ids[1:-1]) <= 0:
            raise ValueError(f"token sequences must be non-empty ids > 0: {seq}")
        counts.update(zip(ids[:-1], ids[1:]))
    if not counts:
        raise ValueError("no token sequences to estimate a bigram from")
    tokens = sorted({b for (_, b) in counts if b != BOS_EOS})
    nexts = tokens + [BOS_EOS]
    totals: Counter = Counter()
    for (a, _), c in counts.items():
        totals[a] += c
    log_probs = {}
    for a in [BOS_EOS] + tokens:
        if smoothing > 0:
            denom = totals[a] + smoothing * (len(nexts) - (a == BOS_EOS))
            pairs = [(a, b) for b in nexts if not (a == BOS_EOS and b == BOS_EOS)]
        else:
            denom = totals[a]
            pairs = [(a, b) for b in nexts if counts[(a, b)] > 0]
        for pair in pairs:
            log_probs[pair] = math.log((counts[pair] + smoothing) / denom)
    return TokenBigram(log_probs)


def _fsa_from_arcs(arcs: List[Arc], device: Union[str, torch.device]) -> k2.Fsa:
    """Builds an acceptor from (src, dst, label, score) arcs, sorted by src."""
    arcs.sort(key=lambda arc: arc[0])
    final = max(max(a[0], a[1]) for a in arcs)
    text = "\n".join(f"{s} {d} {lab} {w!r}" for s, d, lab, w in arcs)
    fsa = k2.Fsa.from_str(f"{text}\n{final}", acceptor=True)
    return k2.arc_sort(fsa).to(device)


def build_den_graph(
    bigram: TokenBigram, device: Union[str, torch.device] = "cpu"
) -> k2.Fsa:
    """The denominator graph: CTC topology composed with the bigram.

    States: 0 is the start (blank before the first token); token ``a`` (the
    k-th in ``bigram.tokens``) has "in a" = 2k+1 and "blank after a" = 2k+2;
    the last state is final. A repeat of ``a`` needs a blank in between.

    Args:
      bigram: the token LM; only its tokens get states.
      device: where to put the graph.
    Returns:
      An acceptor (single Fsa) with labels = token ids, 0 = blank.
    """
    tokens = bigram.tokens
    index = {t: k for k, t in enumerate(tokens)}
    final = 2 * len(tokens) + 1
    arcs: List[Arc] = [(0, 0, 0, 0.0)]
    for t, k in index.items():
        in_t, blank_t = 2 * k + 1, 2 * k + 2
        arcs += [(in_t, in_t, t, 0.0), (in_t, blank_t, 0, 0.0)]
        arcs.append((blank_t, blank_t, 0, 0.0))
    for (a, b), lp in bigram.log_probs.items():
        sources = [0] if a == BOS_EOS else [2 * index[a] + 1, 2 * index[a] + 2]
        for src in sources:
            if b == BOS_EOS:
                arcs.append((src, final, -1, lp))
            elif not (src == 2 * index.get(a, -1) + 1 and b == a):
                # From "in a", emitting a again is a repeat, not a new token.
                arcs.append((src, 2 * index[b] + 1, b, lp))
    return _fsa_from_arcs(arcs, device)


def _num_arcs(ids: Sequence[int], bigram: TokenBigram) -> List[Arc]:
    """Arcs of one numerator graph (the structure of :func:`k2.ctc_graph`)."""
    length = len(ids)
    final = 2 * length + 1
    arcs: List[Arc] = [(0, 0, 0, 0.0), (0, 1, ids[0], bigram.score(BOS_EOS, ids[0]))]
    for i, tok in enumerate(ids, start=1):
        in_i, blank_i = 2 * i - 1, 2 * i
        arcs += [(in_i, in_i, tok, 0.0), (in_i, blank_i, 0, 0.0)]
        arcs.append((blank_i, blank_i, 0, 0.0))
        if i == length:
            end = bigram.score(tok, BOS_EOS)
            arcs += [(in_i, final, -1, end), (blank_i, final, -1, end)]
            continue
        nxt = ids[i]
        lp = bigram.score(tok, nxt)
        arcs.append((blank_i, in_i + 2, nxt, lp))
        if nxt != tok:
            arcs.append((in_i, in_i + 2, nxt, lp))
    return arcs


def build_num_graphs(
    token_ids: Sequence[Sequence[int]],
    bigram: TokenBigram,
    device: Union[str, torch.device] = "cpu",
) -> k2.Fsa:
    """Numerator graphs: each transcript's CTC graph scored by the bigram.

    Args:
      token_ids: N non-empty token sequences, each covered by the bigram
        (:meth:`TokenBigram.covers`; :class:`~asrk2.losses.mmi.LfMmiLoss`
        leaves out the others).
      bigram: the same LM as the denominator's.
      device: where to put the graphs.
    Returns:
      An FsaVec of N acceptors, in batch order.
    Raises:
      ValueError: a sequence with a token pair the bigram has never seen.
    """
    for ids in token_ids:
        if not bigram.covers(ids):
            raise ValueError(f"token sequence {list(ids)} has a pair unseen in the "
                             "bigram: no path of the denominator graph")  # fmt: skip
    fsas = [_fsa_from_arcs(_num_arcs(list(ids), bigram), "cpu") for ids in token_ids]
    return k2.create_fsa_vec(fsas).to(device)


class MmiGraphCompiler:
    """Turns transcripts into numerator graphs; holds the denominator graph.

    Args:
      tokenizer: a sentencepiece model path or a text -> ids callable, as for
        :class:`asrk2.lang.graph_compiler.CtcTrainingGraphCompiler`.
      bigram: the token LM "P" (see :func:`estimate_token_bigram`).
      device: where to put the graphs.
    """

    def __init__(
        self,
        tokenizer: Union[str, Path, TextToIds],
        bigram: TokenBigram,
        device: Union[str, torch.device] = "cpu",
    ) -> None:
        self.ctc_compiler = CtcTrainingGraphCompiler(tokenizer)
        self.bigram = bigram
        self.device = torch.device(device)
        self.den_graph = build_den_graph(bigram, self.device)

    def compile(self, texts: Sequence[str]) -> Tuple[k2.Fsa, k2.Fsa]:
        """Numerator graphs of a batch and the (shared) denominator graph.

        Args:
          texts: N normalised transcripts, in batch order.
        Returns:
          ``(num_graphs, den_graph)``: an FsaVec of N and a single Fsa.
        """
        ids = self.ctc_compiler.texts_to_ids(texts)
        return build_num_graphs(ids, self.bigram, self.device), self.den_graph
