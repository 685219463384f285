"""Choosing the graph weights of the lattice 1-best on a dev set.

What Kaldi's ``score.sh`` does with ``LMWT`` and ``word_ins_penalty``: decode
a dev set once into lattices, take the best path of each under every pair of
a grid, and keep the pair with the lowest WER. The encoder and the pruned
intersection run once per batch; a pair costs one shortest path. Decoding
then applies the chosen pair to the graph itself
(:func:`~asrk2.decode.graph_weights.weight_graph`), so that streaming and the
server search with it too.

Example::

    batches = encode_for_tuning(model, dev_cuts, config, device)
    beams = config.decode.beams()
    stats = weight_grid_stats(batches, HLG, id2word, beams, WeightGrid())
    weights = best_graph_weights(stats)
"""

import logging
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Sequence

import k2
import torch
import yaml
from lhotse import CutSet
from tqdm import tqdm

from asrk2.beams import SearchBeams
from asrk2.config import to_dict
from asrk2.decode.ctc_decode import get_lattice, one_best_token_ids
from asrk2.decode.graph_weights import GraphWeights, words_per_arc
from asrk2.decode.rescore import add_lm_scores
from asrk2.decode.offline import encoded_batches, reference_words, split_too_short
from asrk2.decode.scoring import ErrorStats, Result, compute_wer
from asrk2.experiment import ExperimentConfig
from asrk2.model.ctc_model import CtcModel

__all__ = [
    "WeightGrid",
    "TuningBatch",
    "encode_for_tuning",
    "weight_grid_stats",
    "best_graph_weights",
    "tuned_options_yaml",
]

log = logging.getLogger(__name__)


@dataclass
class WeightGrid:
    """The pairs of graph scale and word bonus to try (every combination).

    The defaults span what helped on the synthetic demo (graph scale 0.85,
    bonus 5 there) with room on both sides; 1.0 and 0.0 are included so that
    the graph as compiled is always a candidate.
    """

    graph_scales: List[float] = field(
        default_factory=lambda: [0.5, 0.7, 0.85, 1.0, 1.2]
    )
    word_bonuses: List[float] = field(
        default_factory=lambda: [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    )

    def __post_init__(self) -> None:
        if not self.graph_scales or not self.word_bonuses:
            raise ValueError(
                "the grid needs at least one graph scale and one word bonus, got "
                f"graph_scales {self.graph_scales}, word_bonuses {self.word_bonuses}"
            )
        for scale in self.graph_scales:
            GraphWeights(graph_scale=scale)  # raises on a scale <= 0

    def on_edge(self, weights: GraphWeights) -> bool:
        """Whether ``weights`` lie on the grid's border (where a wider grid
        might do better), on an axis with more than one value."""
        edges = [
            (self.graph_scales, weights.graph_scale),
            (self.word_bonuses, weights.word_bonus),
        ]
        return any(
            len(set(axis)) > 1 and value in (min(axis), max(axis))
            for axis, value in edges
        )

    def weights(self) -> List[GraphWeights]:
        """Every pair, graph scale major, each once."""
        pairs = [
            GraphWeights(scale, bonus)
            for scale in self.graph_scales
            for bonus in self.word_bonuses
        ]
        return list(dict.fromkeys(pairs))


class TuningBatch(NamedTuple):
    """One batch of CTC outputs with its references.

    Attributes:
      cut_ids: N cut ids.
      refs: N reference word lists.
      log_probs: (N, T, V) CTC log-probs.
      out_lens: (N,) valid frames.
    """

    cut_ids: List[str]
    refs: List[List[str]]
    log_probs: torch.Tensor
    out_lens: torch.Tensor


@torch.no_grad()
def encode_for_tuning(
    model: CtcModel, cuts: CutSet, config: ExperimentConfig, device: torch.device
) -> List[TuningBatch]:
    """Runs the encoder over ``cuts`` once, keeping the CTC log-probs.

    Cuts too short for one encoder frame become a batch without frames: their
    words count as deletions for every pair, as in offline decoding.

    Returns:
      The batches, in the loader's order.
    """
    cuts, too_short = split_too_short(cuts)
    batches = [
        TuningBatch(ids, [t.split() for t in texts], model.ctc_log_probs(enc), lens)
        for ids, texts, enc, lens in encoded_batches(model, cuts, config, device)
    ]
    if too_short:
        refs = [reference_words(c) for c in too_short]
        empty = torch.zeros(len(too_short), 0, 1)
        batches.append(
            TuningBatch([c.id for c in too_short], refs, empty, torch.zeros(0))
        )
    return batches


def _reweighted_words(
    lattice: k2.Fsa,
    acoustic: torch.Tensor,
    graph_scores: torch.Tensor,
    words: torch.Tensor,
    weights: GraphWeights,
    id2word: Dict[int, str],
) -> List[List[str]]:
    """The best path's words of each lattice under ``weights``."""
    lattice.scores = acoustic + weights.apply(graph_scores, words)
    return [[id2word[i] for i in hyp] for hyp in one_best_token_ids(lattice)]


def weight_grid_stats(
    batches: Sequence[TuningBatch],
    graph: k2.Fsa,
    id2word: Dict[int, str],
    beams: SearchBeams,
    grid: WeightGrid,
) -> Dict[GraphWeights, ErrorStats]:
    """Errors of the lattice 1-best for every pair of ``grid``.

    Each batch is intersected once, with the graph as compiled; every pair
    then re-scores the lattice's arcs (acoustic + scale * graph + bonus *
    words) and takes its best path, as Kaldi's ``lattice-scale`` and
    ``lattice-add-penalty`` do before ``lattice-best-path``. Decoding with
    the weighted graph (:func:`weight_graph`) gives the same path when it
    survives the pruning of the unweighted search, which the output beam
    keeps.

    Args:
      batches: from :func:`encode_for_tuning`.
      graph: HL or HLG as compiled (word aux labels); it is not modified.
      id2word: the word table, id to word.
      beams: the pruned intersection's beams, as in decoding.
      grid: the pairs to try.
    Returns:
      ``{weights: errors}`` in the grid's order.
    """
    pairs = grid.weights()
    results: Dict[GraphWeights, List[Result]] = {w: [] for w in pairs}
    graph = add_lm_scores(graph.clone())
    for batch in tqdm(batches, desc="graph weights", leave=False):
        if batch.log_probs.size(1) == 0:  # cuts too short to decode
            for w in pairs:
                results[w] += [(c, r, []) for c, r in zip(batch.cut_ids, batch.refs)]
            continue
        lattice = get_lattice(batch.log_probs, batch.out_lens, graph, beams)
        graph_scores = lattice.lm_scores.detach().clone()
        acoustic = lattice.scores.detach() - graph_scores
        words = words_per_arc(lattice)
        for w in pairs:
            hyps = _reweighted_words(lattice, acoustic, graph_scores, words, w, id2word)
            results[w] += list(zip(batch.cut_ids, batch.refs, hyps))
    stats = {w: compute_wer(results[w]) for w in pairs}
    for w in pairs:
        log.info(
            "graph_scale %g, word_bonus %g: %s",
            w.graph_scale,
            w.word_bonus,
            stats[w].wer_line(),
        )
    return stats


def best_graph_weights(stats: Dict[GraphWeights, ErrorStats]) -> GraphWeights:
    """The pair with the fewest errors; of equals, the one nearest the graph
    as compiled (``|scale - 1| + |bonus|``), so that a flat dev set changes
    nothing."""
    if not stats:
        raise ValueError("no graph weights were scored")

    def key(w: GraphWeights) -> tuple:
        return (stats[w].errors, abs(w.graph_scale - 1.0) + abs(w.word_bonus))

    return min(stats, key=key)


def tuned_options_yaml(
    weights: GraphWeights, stats: Dict[GraphWeights, ErrorStats], tuned_on: str
) -> str:
    """A YAML text with ``weights`` for offline decoding and streaming.

    Its ``decode`` section is read by ``local/decode.py --config`` (into
    :class:`~asrk2.decode.methods.MethodOptions`), its ``streaming`` section
    by ``local/stream_decode.py --config`` (``StreamingOptions``); comments
    give every pair's WER.

    Args:
      weights: the chosen pair, a key of ``stats``.
      stats: errors per pair (:func:`weight_grid_stats`).
      tuned_on: what was decoded, for the header, e.g. ``the HLG 1-best on dev``.
    """
    lines = [
        f"# Graph weights tuned with {tuned_on} (local/tune_graph_weights.py).",
        f"# chosen: {stats[weights].wer_line()}",
    ]
    identity = stats.get(GraphWeights())
    if identity is not None:
        lines.append(f"# graph as compiled (scale 1, bonus 0): {identity.wer_line()}")
    lines.append("# graph_scale word_bonus WER")
    lines += [
        f"#   {w.graph_scale:g} {w.word_bonus:g} {s.wer:.2f}" for w, s in stats.items()
    ]
    sections = {
        tool: {"graph_weights": to_dict(weights)} for tool in ("decode", "streaming")
    }
    return "\n".join(lines) + "\n" + yaml.safe_dump(sections, sort_keys=False)
