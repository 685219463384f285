"""Tests for asrk2.lang.graph_compiler against brute-force CTC alignment enumeration."""
import itertools
from pathlib import Path
from typing import List, Sequence

import k2
import pytest
import torch

from asrk2.lang.bpe import train_bpe
from asrk2.lang.graph_compiler import CtcTrainingGraphCompiler

CHARS = {c: i + 3 for i, c in enumerate("abcdefgh")}


def char_ids(text: str) -> List[int]:
    """A toy tokenizer: one token per letter (ids from 3), spaces dropped."""
    return [CHARS.get(c, 2) for c in text if c != " "]


def ctc_collapse(labels: Sequence[int]) -> List[int]:
    """Merges repeated frame labels, then drops blanks (0)."""
    merged = [x for i, x in enumerate(labels) if i == 0 or x != labels[i - 1]]
    return [x for x in merged if x != 0]


def accepted(graph: k2.Fsa, sequences: List[List[int]]) -> List[bool]:
    """Whether ``graph`` accepts each label sequence, via k2 intersection."""
    linear = k2.linear_fsa(sequences)
    # Blank (0) is a real symbol here, not an epsilon.
    inter = k2.intersect(k2.arc_sort(graph), linear, treat_epsilons_specially=False)
    scores = inter.get_tot_scores(use_double_scores=True, log_semiring=False)
    return (scores > float("-inf")).tolist()


@pytest.mark.parametrize("tokens", [[1, 2], [1, 1], [3], [2, 1, 2]])
@pytest.mark.parametrize("num_frames", [1, 3, 5])
def test_graph_accepts_exactly_ctc_alignments(
    tokens: List[int], num_frames: int
) -> None:
    compiler = CtcTrainingGraphCompiler(lambda text: tokens)
    graph = compiler.compile(["x"])[0]
    sequences = [list(s) for s in itertools.product(range(4), repeat=num_frames)]
    expected = [ctc_collapse(s) == tokens for s in sequences]
    assert accepted(graph, sequences) == expected
    # Sanity: the shortest alignments exist exactly when frames suffice.
    min_frames = len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:]))
    assert any(expected) == (num_frames >= min_frames)


def test_graph_has_zero_scores_and_token_aux_labels() -> None:
    graph = CtcTrainingGraphCompiler(char_ids).compile(["ab"])
    assert torch.all(graph.scores == 0)
    # A token is output on the arc that enters it, not on its self-loop.
    emitting = graph.aux_labels > 0
    assert sorted(set(graph.aux_labels[emitting].tolist())) == [3, 4]
    assert torch.equal(graph.aux_labels[emitting], graph.labels[emitting])
    assert torch.all(graph.aux_labels[~emitting] <= 0)


def test_compile_batch_order_and_device() -> None:
    compiler = CtcTrainingGraphCompiler(char_ids)
    texts = ["abc", "h", "ga bd"]
    assert compiler.texts_to_ids(texts) == [[3, 4, 5], [10], [9, 3, 4, 6]]
    graphs = compiler.compile(texts, device=torch.device("cpu"))
    assert graphs.shape[0] == 3 and graphs.device == torch.device("cpu")
    for i, ids in enumerate(compiler.texts_to_ids(texts)):
        assert accepted(graphs[i], [ids]) == [True]


@pytest.mark.parametrize("bad_index", [0, 2])
@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_transcript_raises_with_index(bad_index: int, empty: str) -> None:
    texts = ["ab", "cd", "ef"]
    texts[bad_index] = empty
    with pytest.raises(ValueError, match=f"text {bad_index} .*empty transcript"):
        CtcTrainingGraphCompiler(char_ids).compile(texts)


def test_invalid_ids_and_unk() -> None:
    with pytest.raises(ValueError, match="text 0 .*invalid token ids \\[0\\]"):
        CtcTrainingGraphCompiler(lambda t: [3, 0]).texts_to_ids(["x"])
    with pytest.raises(ValueError, match="text 0 .*empty transcript"):
        CtcTrainingGraphCompiler(lambda t: []).texts_to_ids(["x"])
    strict = CtcTrainingGraphCompiler(char_ids, allow_unk=False, unk_id=2)
    with pytest.raises(ValueError, match="text 1 \\('az'\\) has unknown tokens"):
        strict.texts_to_ids(["ab", "az"])
    assert CtcTrainingGraphCompiler(char_ids, unk_id=2).texts_to_ids(["az"]) == [[3, 2]]
    with pytest.raises(TypeError):
        strict.texts_to_ids("ab")


def test_sentencepiece_model(tmp_path: Path) -> None:
    sentences = ["the cat sat on the mat", "a dog ate the hat", "cats and dogs"] * 20
    model = train_bpe(sentences, tmp_path, vocab_size=20)
    compiler = CtcTrainingGraphCompiler(model)
    assert compiler.vocab_size == 20 and compiler.unk_id == 2
    ids = compiler.texts_to_ids(["the cat", "dogs"])
    assert all(0 < i < 20 for seq in ids for i in seq)
    graphs = compiler.compile(["the cat", "dogs"])
    for i, seq in enumerate(ids):
        assert accepted(graphs[i], [seq]) == [True]
    strict = CtcTrainingGraphCompiler(str(model), allow_unk=False)
    with pytest.raises(ValueError, match="text 0 .*unknown tokens"):
        strict.texts_to_ids(["zzz"])
