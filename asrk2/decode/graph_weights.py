"""The weight of the decoding graph against the acoustic model, and a word bonus.

A CTC lattice's score is the acoustic log-probs plus the graph's scores
(HL: lexicon; HLG: lexicon and LM). Kaldi's scoring sweeps the same two
knobs (``LMWT`` and ``word_ins_penalty`` in ``score.sh``): how much the
graph counts, and a constant per word. With an n-gram over open-grammar
text, the LM favours short hypotheses, and the 1-best loses words
(deletions); a bonus per word puts them back.

The weights are applied to the graph itself, not to each lattice: every
arc's score becomes ``graph_scale * score + word_bonus * (words on the
arc)``. A path's score is then ``acoustic + graph_scale * graph + word_bonus
* words``, in offline decoding, streaming and the server alike, and the
pruning of the search sees the weighted scores.

Example::

    HLG = weight_graph(load_fsa("data/lang_bpe_500/HLG.pt"), GraphWeights(0.8, 2.0))
"""

from dataclasses import dataclass

import k2
import torch

__all__ = ["GraphWeights", "words_per_arc", "weight_graph"]


@dataclass(frozen=True)
class GraphWeights:
    """How the graph's scores and its words count in the search.

    Attributes:
      graph_scale: factor of the graph's scores (lexicon and LM) against the
        acoustic log-probs; Kaldi's ``LMWT`` times its acoustic scale. 1 is
        the graph as compiled.
      word_bonus: added to a path's score for each word it emits; negative
        values are a penalty (Kaldi's ``word_ins_penalty`` is its negation).
    """

    graph_scale: float = 1.0
    word_bonus: float = 0.0

    def __post_init__(self) -> None:
        if not self.graph_scale > 0:
            raise ValueError(f"graph_scale must be > 0, got {self.graph_scale}")

    def apply(self, graph_scores: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """``graph_scale * graph_scores + word_bonus * words``, per arc.

        Args:
          graph_scores: (num_arcs,) the graph's (lexicon + LM) part of each arc.
          words: (num_arcs,) words on each arc (:func:`words_per_arc`).
        """
        return self.graph_scale * graph_scores + self.word_bonus * words

    @property
    def is_identity(self) -> bool:
        """Whether these weights leave a graph as it is."""
        return self.graph_scale == 1.0 and self.word_bonus == 0.0


def words_per_arc(fsa: k2.Fsa) -> torch.Tensor:
    """The number of words (aux labels > 0) on each arc.

    Args:
      fsa: an Fsa or FsaVec with word ``aux_labels``, a tensor (one label
        per arc) or ragged (several per arc, as on HLG after determinization).
    Returns:
      (num_arcs,) counts, in the dtype of ``fsa.scores``.
    """
    aux = fsa.aux_labels
    if isinstance(aux, torch.Tensor):
        return (aux > 0).to(fsa.scores.dtype)
    splits = aux.remove_values_leq(0).shape.row_splits(1)
    return (splits[1:] - splits[:-1]).to(fsa.scores.dtype)


def weight_graph(graph: k2.Fsa, weights: GraphWeights) -> k2.Fsa:
    """Applies ``weights`` to a decoding graph's arc scores, in place.

    In place because an XL HLG has tens of millions of arcs; clone first to
    keep the original. Identity weights return the graph untouched.

    Args:
      graph: HL or HLG (word aux labels); with an ``lm_scores`` attribute,
        it is scaled too and gets the bonus, so that ``scores - lm_scores``
        stays the acoustic part of a lattice.
      weights: the scale and the bonus.
    Returns:
      ``graph``, whose arc scores are now ``graph_scale * scores +
      word_bonus * words_per_arc``.
    """
    if weights.is_identity:
        return graph
    words = words_per_arc(graph)
    graph.scores = weights.apply(graph.scores.detach(), words)
    if hasattr(graph, "lm_scores"):
        graph.lm_scores = weights.apply(graph.lm_scores, words)
    return graph
