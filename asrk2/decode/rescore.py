"""N-best lists from k2 lattices, and rescoring with an n-gram G or a decoder.

Lattices come from :func:`asrk2.decode.ctc_decode.get_lattice` on HL or HLG:
labels are token ids, ragged aux_labels word ids, ``tokens`` the emitted
(CTC-collapsed) token ids, and ``lm_scores`` the graph part of the scores when
the graph was prepared with :func:`add_lm_scores`. The acoustic score of a
path is then ``scores - lm_scores``.

Example::

    nbest = sample_nbest(lattice, num_paths=100)
    word_ids = [p.words for p in nbest.best(nbest.scores)]
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import k2
import torch

from asrk2.decode.ctc_decode import one_best_token_ids

__all__ = [
    "Nbest",
    "add_lm_scores",
    "sample_nbest",
    "word_seq_lm_scores",
    "rescore_whole_lattice",
]


def add_lm_scores(graph: k2.Fsa) -> k2.Fsa:
    """Marks all scores of a decoding graph as LM scores (as icefall does for HLG).

    H has zero scores, so the graph scores of HLG are those of L and G; lattices
    then carry ``lm_scores`` and their acoustic part is ``scores - lm_scores``.

    Args:
      graph: HL or HLG.
    Returns:
      The same FSA, with an ``lm_scores`` attribute added if it had none.
    """
    if not hasattr(graph, "lm_scores"):
        graph.lm_scores = graph.scores.clone()
    return graph


@dataclass
class Nbest:
    """Unique word sequences sampled from each lattice of a batch.

    Attributes:
      words: ``words[i][j]``: word ids of hypothesis j of utterance i.
      tokens: emitted token ids of the same paths (for decoder rescoring).
      scores: (P,) total lattice score of each hypothesis' best sampled path,
        P the number of hypotheses over the whole batch, utterance-major.
      lm_scores: (P,) the graph (LM) part of ``scores``; zeros if none.
      utt: (P,) the utterance of each hypothesis.
    """

    words: List[List[List[int]]]
    tokens: List[List[List[int]]]
    scores: torch.Tensor
    lm_scores: torch.Tensor
    utt: torch.Tensor

    @property
    def am_scores(self) -> torch.Tensor:
        """(P,) acoustic part of the scores."""
        return self.scores - self.lm_scores

    def flat_words(self) -> List[List[int]]:
        """The P word sequences, utterance-major."""
        return [w for utt in self.words for w in utt]

    def flat_tokens(self) -> List[List[int]]:
        """The P token sequences, utterance-major."""
        return [t for utt in self.tokens for t in utt]

    def best(self, scores: torch.Tensor) -> List[List[int]]:
        """Word ids of the hypothesis with the highest ``scores`` per utterance.

        Args:
          scores: (P,) one score per hypothesis.
        Returns:
          One word-id list per utterance, in batch order; empty if the
          utterance has no hypothesis (lattice pruned to nothing).
        """
        out: List[List[int]] = []
        start = 0
        for hyps in self.words:
            if not hyps:
                out.append([])
                continue
            j = int(torch.argmax(scores[start : start + len(hyps)]))
            out.append(hyps[j])
            start += len(hyps)
        return out


def _labels_along(lattice: k2.Fsa, name: str, paths: k2.RaggedTensor) -> list:
    """Positive values of a (tensor or ragged) arc attribute along each path.

    Returns:
      Nested list ``[utt][path][label]``.
    """
    attr = getattr(lattice, name)
    if isinstance(attr, k2.RaggedTensor):
        labels = attr.index(paths)
        labels = labels.remove_axis(labels.num_axes - 2)
    else:
        labels = k2.ragged.index(attr, paths)
    return labels.remove_values_leq(0).tolist()


def _path_sums(values: torch.Tensor, paths: k2.RaggedTensor) -> torch.Tensor:
    """(num_paths,) sums of per-arc ``values`` along each path, in float64."""
    arc_ids = paths.values.long()
    row_ids = paths.shape.row_ids(2).long()
    num_paths = paths.shape.tot_size(1)
    sums = torch.zeros(num_paths, dtype=torch.float64, device=values.device)
    return sums.index_add_(0, row_ids, values.to(torch.float64)[arc_ids])


def sample_nbest(lattice: k2.Fsa, num_paths: int, nbest_scale: float = 0.5) -> Nbest:
    """Samples ``num_paths`` paths per lattice and keeps the unique word sequences.

    Paths are drawn with ``k2.random_paths`` on the lattice with its scores
    scaled by ``nbest_scale`` (flatter, so more distinct paths). Each unique
    word sequence keeps the best total (unscaled) score among its sampled
    alignments, so with ``num_paths = 1`` there is one hypothesis each.

    Args:
      lattice: FsaVec of N lattices (HL/HLG or H), in batch order.
      num_paths: paths sampled per lattice.
      nbest_scale: scale on scores while sampling.
    Returns:
      The n-best lists, utterance i at ``words[i]``.
    """
    if num_paths < 1:
        raise ValueError(f"num_paths must be >= 1, got {num_paths}")
    scaled = lattice.clone()
    scaled.scores = lattice.scores * nbest_scale
    paths = k2.random_paths(scaled, num_paths=num_paths, use_double_scores=True)
    words = _labels_along(lattice, "aux_labels", paths)
    has_tokens = hasattr(lattice, "tokens")
    tokens = _labels_along(lattice, "tokens", paths) if has_tokens else words
    tot = _path_sums(lattice.scores, paths).cpu()
    lm = getattr(lattice, "lm_scores", torch.zeros_like(lattice.scores))
    lm_tot = _path_sums(lm, paths).cpu()
    return _unique(words, tokens, tot, lm_tot)


def _unique(
    words: list, tokens: list, tot: torch.Tensor, lm_tot: torch.Tensor
) -> Nbest:
    """Keeps, per utterance, the best-scoring path of each word sequence."""
    out_w: List[List[List[int]]] = []
    out_t: List[List[List[int]]] = []
    keep: List[int] = []
    utt: List[int] = []
    k = 0
    for i, (utt_words, utt_tokens) in enumerate(zip(words, tokens)):
        best: Dict[Tuple[int, ...], int] = {}
        for w in utt_words:
            key = tuple(w)
            if key not in best or tot[k] > tot[best[key]]:
                best[key] = k
            k += 1
        chosen = list(best.values())
        first = k - len(utt_words)
        out_w.append([words[i][j - first] for j in chosen])
        out_t.append([utt_tokens[j - first] for j in chosen])
        keep.extend(chosen)
        utt.extend([i] * len(chosen))
    index = torch.tensor(keep, dtype=torch.long)
    return Nbest(out_w, out_t, tot[index], lm_tot[index], torch.tensor(utt))


def _as_vec(fsa: k2.Fsa) -> k2.Fsa:
    """A single FSA as an FsaVec of one; an FsaVec unchanged."""
    return k2.create_fsa_vec([fsa]) if fsa.arcs.num_axes() == 2 else fsa


def word_seq_lm_scores(G: k2.Fsa, word_seqs: Sequence[Sequence[int]]) -> torch.Tensor:
    """Best-path score of each word sequence in an n-gram acceptor.

    Args:
      G: arc-sorted word acceptor from
        :func:`asrk2.lang.graphs.G_for_rescoring` (back-off arcs epsilon).
      word_seqs: P word-id sequences.
    Returns:
      (P,) float64 natural-log scores (max over back-off paths, as Kaldi's
      lattice rescoring); -inf where G does not accept the sequence.
    """
    if not word_seqs:
        return torch.zeros(0, dtype=torch.float64)
    fsas = k2.add_epsilon_self_loops(
        k2.linear_fsa([list(w) for w in word_seqs], device=G.device)
    )
    b_to_a = torch.zeros(len(word_seqs), dtype=torch.int32, device=G.device)
    out = k2.intersect_device(_as_vec(G), fsas, b_to_a, sorted_match_a=True)
    out = k2.top_sort(k2.connect(out))
    return out.get_tot_scores(use_double_scores=True, log_semiring=False).cpu()


def _rescoring_lattice(lattice: k2.Fsa, G: k2.Fsa) -> k2.Fsa:
    """Replaces the lattice's LM scores by those of G; keeps ``lm_scores`` of G."""
    lat = lattice.clone()
    if hasattr(lat, "lm_scores"):
        lat.scores = lat.scores - lat.lm_scores
        del lat.lm_scores
    inv = k2.arc_sort(k2.invert(lat))
    G = k2.arc_sort(k2.add_epsilon_self_loops(G.clone()))
    G.lm_scores = G.scores.clone()
    b_to_a = torch.zeros(inv.shape[0], dtype=torch.int32, device=inv.device)
    resc = k2.intersect_device(_as_vec(G), inv, b_to_a, sorted_match_a=True)
    return k2.invert(k2.top_sort(k2.connect(resc)))


def rescore_whole_lattice(
    lattice: k2.Fsa, G: k2.Fsa, lm_scales: Sequence[float]
) -> Dict[float, List[List[int]]]:
    """Composes each lattice with G and reads the 1-best at several LM scales.

    The lattice's own LM scores (``lm_scores``) are removed first; the
    rescored path score is ``am + lm_scale * G``.

    Args:
      lattice: FsaVec of N word lattices (aux_labels word ids), batch order.
      G: word acceptor from :func:`asrk2.lang.graphs.G_for_rescoring`.
      lm_scales: LM scales to try.
    Returns:
      ``{lm_scale: word ids per utterance}``, batch order.
    """
    resc = _rescoring_lattice(lattice, G)
    am = resc.scores - resc.lm_scores
    results: Dict[float, List[List[int]]] = {}
    for scale in lm_scales:
        resc.scores = am + scale * resc.lm_scores
        results[scale] = one_best_token_ids(resc)
    return results
