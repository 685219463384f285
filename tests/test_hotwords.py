"""Hotwords: the context graph against a plain reference, the file, and biasing."""

import random
from pathlib import Path
from typing import List, Sequence

import k2
import pytest
import torch

from asrk2.decode.ctc_decode import build_ctc_topo, get_lattice, one_best_token_ids
from asrk2.decode.hotwords import (
    Hotword,
    HotwordReport,
    bias_graph,
    context_graph,
    read_hotwords,
)


def reference_bonus(units: Sequence[int], hotwords: Sequence[Hotword]) -> float:
    """Left to right, the longest phrase that matches at each position earns
    boost x length; a phrase counts only if complete (no trie, no graph)."""
    total, i = 0.0, 0
    while i < len(units):
        best = None
        for h in hotwords:
            if tuple(units[i : i + len(h.ids)]) == h.ids:
                if best is None or len(h.ids) > len(best.ids):
                    best = h
        if best is None:
            i += 1
        else:
            total += best.boost * len(best.ids)
            i += len(best.ids)
    return total


def score_of(graph: k2.Fsa, units: Sequence[int]) -> float:
    """Total score of the only path of ``graph`` that reads ``units``."""
    if not units:  # k2 1.23.4 cannot intersect with an empty linear FSA
        arcs = graph.arcs.values()[:, :3].tolist()
        final = [i for i, (src, _, lab) in enumerate(arcs) if src == 0 and lab == -1]
        return float(graph.scores[final[0]])
    linear = k2.linear_fsa(list(units))
    path = k2.connect(k2.intersect(graph, linear, treat_epsilons_specially=False))
    # The graph is deterministic and complete: exactly one path (a linear FSA).
    assert path.num_arcs == len(units) + 1
    return float(path.scores.sum())


@pytest.mark.parametrize("seed", range(4))
def test_context_graph_scores_equal_the_reference(seed: int):
    rng = random.Random(seed)
    # Phrases without a shared prefix and none inside another (the reference
    # has no trie; the graph shares prefixes, tested below).
    hotwords = [Hotword("a b", (1, 2), 1.5), Hotword("c d e", (3, 4, 5), 0.5)]
    graph = context_graph(hotwords, num_units=6)
    for _ in range(200):
        units = [rng.choice([1, 2, 3, 4, 5, 6]) for _ in range(rng.randint(0, 9))]
        assert score_of(graph, units) == pytest.approx(
            reference_bonus(units, hotwords)
        ), units


def test_partial_phrases_are_taken_back_and_restart_where_they_broke():
    hotwords = [Hotword("a b c", (1, 2, 3), 1.0)]
    graph = context_graph(hotwords, num_units=4)
    assert score_of(graph, [1, 2, 3]) == pytest.approx(3.0)
    assert score_of(graph, [1, 2]) == pytest.approx(0.0)  # ends unfinished
    assert score_of(graph, [1, 2, 4, 1, 2, 3]) == pytest.approx(3.0)
    assert score_of(graph, [1, 1, 2, 3]) == pytest.approx(3.0)  # restart at 1
    assert score_of(graph, [1, 2, 3, 1, 2, 3, 1]) == pytest.approx(6.0)


def test_a_phrase_inside_a_longer_one_keeps_its_bonus():
    hotwords = [
        Hotword("new york", (1, 2), 1.0),
        Hotword("new york city", (1, 2, 3), 1.0),
    ]
    graph = context_graph(hotwords, num_units=4)
    assert score_of(graph, [1, 2, 3]) == pytest.approx(3.0)
    assert score_of(graph, [1, 2, 4]) == pytest.approx(2.0)  # "new york" banked
    assert score_of(graph, [1, 2]) == pytest.approx(2.0)


def test_no_hotwords_change_nothing():
    graph = context_graph([], num_units=3)
    assert score_of(graph, [1, 3, 2]) == 0.0 and graph.num_arcs == 4


def test_biasing_H_turns_a_close_call_into_the_hotword():
    # Frame 2 is a near tie between tokens 2 and 3: greedy picks 2.
    probs = torch.tensor(
        [[0.1, 0.8, 0.05, 0.05], [0.9, 0.04, 0.03, 0.03], [0.1, 0.05, 0.45, 0.4]]
    )
    lp = probs.log().unsqueeze(0)
    H = build_ctc_topo(3)

    def decode(graph: k2.Fsa) -> List[int]:
        return one_best_token_ids(get_lattice(lp, torch.tensor([3]), graph))[0]

    assert decode(H) == [1, 2]
    biased = bias_graph(H, context_graph([Hotword("x", (1, 3), 0.5)], 3))
    assert decode(biased) == [1, 3]
    # A boost too small for the acoustic gap changes nothing.
    weak = bias_graph(H, context_graph([Hotword("x", (1, 3), 0.01)], 3))
    assert decode(weak) == [1, 2]


def test_biasing_a_graph_with_word_outputs_keeps_its_paths():
    # A 2-word "HLG": tokens 1 -> word 10, tokens 2 -> word 20 (ragged aux).
    text = "\n".join(["0 0 0 0 0.0", "0 1 1 10 0.0", "0 2 2 20 0.0", "0 3 -1 -1 0.0",
                      "1 1 1 0 0.0", "1 0 0 0 0.0", "2 2 2 0 0.0", "2 0 0 0 0.0",
                      "3"])  # fmt: skip
    hlg = k2.arc_sort(k2.Fsa.from_str(text, acceptor=False))
    hlg.convert_attr_to_ragged_("aux_labels", remove_eps=True)  # as HLG's
    assert isinstance(hlg.aux_labels, k2.RaggedTensor)
    biased = bias_graph(hlg, context_graph([Hotword("W20", (20,), 2.0)], 20))
    lp = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]]).log().unsqueeze(0)
    words = one_best_token_ids(get_lattice(lp, torch.tensor([2]), biased))[0]
    assert words == [20]
    assert one_best_token_ids(get_lattice(lp, torch.tensor([2]), hlg))[0] == [10]


def test_the_hotword_file(tmp_path: Path):
    path = tmp_path / "hot.txt"
    path.write_text("# names\nJohn Smith :2.5\n\nmary\nZORBLAX ONE\n")
    vocab = {"JOHN": 1, "SMITH": 2, "MARY": 3, "ONE": 4}
    report = HotwordReport()

    def to_ids(words: List[str]):
        ids = [vocab.get(w) for w in words]
        return None if None in ids else ids

    hotwords = read_hotwords(path, 1.0, to_ids, report)
    assert hotwords == [Hotword("JOHN SMITH", (1, 2), 2.5), Hotword("MARY", (3,), 1.0)]
    assert report.kept == 2 and report.skipped == [
        (5, "ZORBLAX ONE", "a word outside the vocabulary")
    ]
    assert "1 skipped" in report.summary()
    (tmp_path / "empty.txt").write_text("")
    assert read_hotwords(tmp_path / "empty.txt", 1.0, to_ids) == []
    (tmp_path / "neg.txt").write_text("JOHN :-1\n")
    with pytest.raises(ValueError, match="neg.txt:1: boost must be > 0"):
        read_hotwords(tmp_path / "neg.txt", 1.0, to_ids)
    with pytest.raises(ValueError, match="boost must be > 0"):
        read_hotwords(path, -2.0, to_ids)


def test_streaming_and_offline_loaders_bias_their_graphs(tmp_path: Path):
    from asrk2.decode.hotwords import HotwordOptions
    from asrk2.decode.methods import load_graphs, load_streaming_graph
    from asrk2.lang.bpe import load_bpe
    from asrk2.testing.toy_data import make_toy_corpus

    cuts, lang = make_toy_corpus(tmp_path, num_cuts=4, nbpe=40)
    word = cuts[0].supervisions[0].text.split()[0]
    (tmp_path / "hot.txt").write_text(f"{word} :3.0\n")
    hot = HotwordOptions(str(tmp_path / "hot.txt"))
    cpu = torch.device("cpu")
    plain, _ = load_streaming_graph(lang, "H", cpu)
    biased, to_words = load_streaming_graph(lang, "H", cpu, hot)
    assert biased.num_arcs > plain.num_arcs
    offline = load_graphs(lang, ["ctc-greedy"], cpu, hotwords=hot).H
    assert offline is not None and offline.num_arcs == biased.num_arcs
    # A frame sequence that spells the hotword's pieces scores 3.0 per piece
    # more on the biased graph than on the plain one.
    pieces = load_bpe(lang / "bpe.model").encode(word)
    frames = [t for p in pieces for t in (p, 0)]
    lp = torch.full((1, len(frames), 40), -5.0)
    lp[0, torch.arange(len(frames)), torch.tensor(frames)] = 0.0
    lens = torch.tensor([len(frames)])

    def best_score(graph: k2.Fsa) -> float:
        lattice = get_lattice(lp, lens, graph)
        best = k2.shortest_path(lattice, use_double_scores=True)
        return float(best.get_tot_scores(True, False))

    assert best_score(biased) - best_score(plain) == pytest.approx(3.0 * len(pieces))
    assert to_words(one_best_token_ids(get_lattice(lp, lens, biased))[0]) == [word]


def test_a_stream_with_its_own_hotwords_beside_one_without():
    from test_endpoint import V, ScriptedModel, features_for

    from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
    from asrk2.lang.graphs import build_H

    H = build_H(V - 1)
    decoder = MultiStreamDecoder(
        ScriptedModel(),
        H,
        StreamingOptions(chunk_size=2, left_context_frames=4),
    )
    # Token 3 in place of 2 costs log(0.97 / 0.0075) = 4.9 on that frame; the
    # phrase (1, 3) earns 2 x 3.0 (a lone 3 earns nothing, so it is not
    # inserted on other frames).
    biased = bias_graph(H, context_graph([Hotword("t1 t3", (1, 3), 3.0)], V - 1))
    decoder.add_stream("hot", graph=biased)
    decoder.add_stream("plain")
    x = features_for([0, 1, 2, 0, 0, 0, 0, 0])
    for key in ("hot", "plain"):
        decoder.accept_features(key, x)
        decoder.input_finished(key)
    while not (decoder.is_final("hot") and decoder.is_final("plain")):
        decoder.step()
    assert decoder.result("plain") == [1, 2]
    assert decoder.result("hot") == [1, 3]
