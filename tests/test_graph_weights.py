"""Graph scale and word bonus (asrk2.decode.graph_weights, asrk2.decode.tuning).

The reference is brute force: every frame labelling of a few frames, collapsed
by CTC's rule and parsed into words of the 3-word inline lexicon of
test_decode_methods, scored ``acoustic + scale * log P_G(words) + bonus * #words``.
"""

import argparse
import itertools
import math
from pathlib import Path
from typing import List, Optional, Tuple

import k2
import pytest
import torch
from test_decode_methods import ID2WORD, UNIGRAM, WIDE_BEAMS, WORDS, make_graphs

from asrk2.config import config_from_flags
from asrk2.decode.ctc_decode import get_lattice
from asrk2.decode.graph_weights import GraphWeights, weight_graph, words_per_arc
from asrk2.decode.methods import MethodOptions, load_streaming_graph
from asrk2.decode.scoring import (
    ErrorStats,
    compute_wer,
    merge_wer_summaries,
    write_wer_summary,
)
from asrk2.decode.streaming import StreamingOptions
from asrk2.decode.tuning import (
    TuningBatch,
    WeightGrid,
    best_graph_weights,
    tuned_options_yaml,
    weight_grid_stats,
)
from asrk2.lang.graphs import save_fsa

# Token ids of the inline lexicon: A = a, AC = a c, B = b.
A, B, C = 1, 2, 3


def parse_words(tokens: List[int]) -> Optional[List[str]]:
    """The lexicon's words for a token sequence, None if it spells none."""
    words, i = [], 0
    while i < len(tokens):
        if tokens[i] == A and i + 1 < len(tokens) and tokens[i + 1] == C:
            words.append("AC")
            i += 2
        elif tokens[i] in (A, B):
            words.append("A" if tokens[i] == A else "B")
            i += 1
        else:  # a lone c is no word
            return None
    return words


def collapse(labels: Tuple[int, ...]) -> List[int]:
    """CTC: merge repeats, then drop blanks."""
    merged = [x for i, x in enumerate(labels) if i == 0 or x != labels[i - 1]]
    return [x for x in merged if x != 0]


def brute_force_best(
    log_probs: torch.Tensor, weights: GraphWeights
) -> Tuple[float, List[str]]:
    """Max over all labellings of the weighted score, and its words."""
    best: Tuple[float, List[str]] = (-math.inf, [])
    T, V = log_probs.shape
    for labels in itertools.product(range(V), repeat=T):
        words = parse_words(collapse(labels))
        if words is None:
            continue
        acoustic = float(log_probs[torch.arange(T), torch.tensor(labels)].sum())
        lm = sum(math.log(UNIGRAM[w]) for w in words)
        score = acoustic + weights.graph_scale * lm + weights.word_bonus * len(words)
        if score > best[0]:
            best = (score, words)
    return best


def random_log_probs(seed: int, T: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, 4, generator=g) * 2).log_softmax(-1)


WEIGHTS = [
    GraphWeights(),
    GraphWeights(0.5, 0.0),
    GraphWeights(1.0, 3.0),
    GraphWeights(2.0, -1.0),
]


@pytest.mark.parametrize("weights", WEIGHTS, ids=str)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_hlg_best_path_equals_brute_force(
    weights: GraphWeights, seed: int
) -> None:
    _, HLG, _ = make_graphs(UNIGRAM)
    lp = random_log_probs(seed)
    lattice = get_lattice(
        lp.unsqueeze(0), torch.tensor([5]), weight_graph(HLG, weights), WIDE_BEAMS
    )
    best = k2.shortest_path(lattice, use_double_scores=True)
    score = float(best.get_tot_scores(use_double_scores=True, log_semiring=False))
    ref_score, ref_words = brute_force_best(lp, weights)
    assert score == pytest.approx(ref_score, abs=1e-4)
    aux = best.aux_labels
    ids = (aux.values if hasattr(aux, "values") else aux).tolist()
    assert [ID2WORD[i] for i in ids if i > 0] == ref_words
    # The lattice's lm_scores stay the graph part: the rest is acoustic.
    acoustic = float((best.scores - best.lm_scores).sum())
    lm = sum(math.log(UNIGRAM[w]) for w in ref_words)
    bonus = weights.word_bonus * len(ref_words)
    assert acoustic == pytest.approx(
        ref_score - weights.graph_scale * lm - bonus, abs=1e-4
    )


def test_a_word_bonus_restores_a_word_the_lm_deletes() -> None:
    # B is clear in the audio but improbable under G: the 1-best drops it.
    _, HLG, _ = make_graphs({"A": 0.9, "AC": 0.0999, "B": 0.0001})
    logits = torch.tensor([[0.0, -10.0, 3.0, -10.0], [3.0, -10.0, 2.9, -10.0]])
    batch = TuningBatch(["u"], [["B"]], logits.log_softmax(-1)[None], torch.tensor([2]))
    grid = WeightGrid([1.0], [0.0, 10.0])
    stats = weight_grid_stats([batch], HLG, ID2WORD, WIDE_BEAMS, grid)
    assert stats[GraphWeights()].dels == 1
    assert stats[GraphWeights(1.0, 10.0)].errors == 0
    assert best_graph_weights(stats) == GraphWeights(1.0, 10.0)


def test_grid_stats_count_the_errors_of_the_brute_force_best() -> None:
    _, HLG, _ = make_graphs(UNIGRAM)
    lps = [random_log_probs(seed) for seed in range(4)]
    refs = [["A", "B"], ["AC"], ["B", "A"], ["A"]]
    batch = TuningBatch(
        [f"u{i}" for i in range(4)], refs, torch.stack(lps), torch.tensor([5] * 4)
    )
    grid = WeightGrid([0.5, 1.0], [0.0, 2.0])
    before = HLG.scores.clone()
    stats = weight_grid_stats([batch], HLG, ID2WORD, WIDE_BEAMS, grid)
    assert torch.equal(HLG.scores, before)  # the graph given is not modified
    assert list(stats) == grid.weights()
    for weights, got in stats.items():
        hyps = [brute_force_best(lp, weights)[1] for lp in lps]
        expected = compute_wer(
            [(f"u{i}", r, h) for i, (r, h) in enumerate(zip(refs, hyps))]
        )
        assert got == expected


def test_best_weights_prefer_the_compiled_graph_on_ties() -> None:
    def errs(n: int) -> ErrorStats:
        return ErrorStats(num_ref_words=10, subs=n)

    stats = {
        GraphWeights(0.5, 2.0): errs(1),
        GraphWeights(): errs(1),
        GraphWeights(1.2, 0): errs(3),
    }
    assert best_graph_weights(stats) == GraphWeights()
    stats[GraphWeights(0.7, 1.0)] = errs(0)
    assert best_graph_weights(stats) == GraphWeights(0.7, 1.0)
    with pytest.raises(ValueError):
        best_graph_weights({})


@pytest.mark.parametrize(
    "scales, bonuses", [([], [0.0]), ([1.0], []), ([0.0], [0.0]), ([1.0, -0.5], [1.0])]
)
def test_a_grid_without_pairs_or_with_a_scale_not_above_zero_is_refused(
    scales: List[float], bonuses: List[float]
) -> None:
    with pytest.raises(ValueError, match="graph_scale|at least one"):
        WeightGrid(scales, bonuses)


def test_words_per_arc_counts_ragged_and_tensor_labels() -> None:
    _, HLG, _ = make_graphs(UNIGRAM)
    counts = words_per_arc(HLG)
    aux = HLG.aux_labels
    assert counts.shape == HLG.scores.shape
    if isinstance(aux, torch.Tensor):
        assert torch.equal(counts, (aux > 0).float())
    else:
        per_arc = aux.tolist()
        assert counts.tolist() == [sum(1 for x in arc if x > 0) for arc in per_arc]
    assert float(counts.sum()) > 0


def test_tuned_yaml_gives_both_tools_the_weights(tmp_path: Path) -> None:
    chosen = GraphWeights(0.85, 4.0)
    stats = {GraphWeights(): ErrorStats(100, 5, 0, 9), chosen: ErrorStats(100, 5, 1, 2)}
    path = tmp_path / "graph-weights-dev.yaml"
    path.write_text(tuned_options_yaml(chosen, stats, "the HLG 1-best on dev"))
    text = path.read_text()
    assert "chosen: %WER 8.00" in text and "scale 1, bonus 0): %WER 14.00" in text
    none = argparse.Namespace()
    decode = config_from_flags(MethodOptions, none, None, path, "decode")
    streaming = config_from_flags(StreamingOptions, none, None, path, "streaming")
    assert decode.graph_weights == chosen and streaming.graph_weights == chosen


def test_streaming_graph_gets_the_weights(tmp_path: Path) -> None:
    _, HLG, _ = make_graphs(UNIGRAM)
    del HLG.lm_scores  # as saved by compile_graphs
    save_fsa(HLG, tmp_path / "HLG.pt")
    (tmp_path / "words.txt").write_text("".join(f"{w} {i}\n" for w, i in WORDS.items()))
    weights = GraphWeights(0.5, 2.0)
    graph, _ = load_streaming_graph(tmp_path, "HLG", torch.device("cpu"), None, weights)
    expected = weight_graph(HLG.clone(), weights).scores
    assert torch.allclose(graph.scores, expected)


def test_dev_chooses_the_scale_of_the_test_table(tmp_path: Path) -> None:
    test = {
        "ctc-greedy": 30.0,
        "nbest-rescoring-lm_scale_0.3": 6.0,
        "nbest-rescoring-lm_scale_0.5": 7.0,
    }
    write_wer_summary(tmp_path / "test.txt", test)
    dev = {"nbest-rescoring-lm_scale_0.3": 3.0, "nbest-rescoring-lm_scale_0.5": 2.0}
    # The test set's own best would be 0.3; dev picks 0.5, and its test WER is kept.
    assert merge_wer_summaries([tmp_path / "test.txt"], True, dev) == {
        "ctc-greedy": 30.0,
        "nbest-rescoring-lm_scale_0.5": 7.0,
    }
    assert (
        merge_wer_summaries([tmp_path / "test.txt"], True)[
            "nbest-rescoring-lm_scale_0.3"
        ]
        == 6.0
    )
    with pytest.raises(ValueError, match="lm_scale_0.5"):
        merge_wer_summaries(
            [tmp_path / "test.txt"], True, {"nbest-rescoring-lm_scale_0.3": 1.0}
        )


def test_the_grid_says_when_the_best_pair_is_on_its_edge() -> None:
    grid = WeightGrid([0.5, 1.0, 1.5], [0.0, 2.0, 4.0])
    assert not grid.on_edge(GraphWeights(1.0, 2.0))
    assert grid.on_edge(GraphWeights(1.0, 4.0)) and grid.on_edge(GraphWeights(0.5, 2.0))
    # An axis of one value has no edge to widen.
    assert not WeightGrid([1.0], [0.0, 2.0, 4.0]).on_edge(GraphWeights(1.0, 2.0))
