"""Tests for asrk2.lang.fsa_minimize against Myhill-Nerode counts on tiny FSAs."""

from typing import FrozenSet, List, Set, Tuple

import k2
import pytest
import torch

from asrk2.lang.fsa_minimize import minimize_encoded

DIAMOND = """0 1 1 0.5
0 2 2 0.5
1 3 3 0.25
2 3 3 0.25
3 4 -1 0
4"""


def test_merges_equivalent_states() -> None:
    out = minimize_encoded(k2.Fsa.from_str(DIAMOND))
    assert k2.to_str_simple(out).split("\n") == [
        "0 1 1 0.5",
        "0 1 2 0.5",
        "1 2 3 0.25",
        "2 3 -1 0",
        "3",
        "",
    ]


def test_different_weights_or_labels_are_not_merged() -> None:
    for changed in (
        DIAMOND.replace("2 3 3 0.25", "2 3 3 0.75"),
        DIAMOND.replace("2 3 3 0.25", "2 3 4 0.25"),
    ):
        fsa = k2.Fsa.from_str(changed)
        assert minimize_encoded(fsa).shape[0] == fsa.shape[0]


def test_aux_labels_are_part_of_the_symbol() -> None:
    # src dst label aux_label score
    fst = k2.Fsa.from_str(
        "0 1 1 0 0.5\n0 2 2 0 0.5\n1 3 3 7 0.25\n2 3 3 7 0.25\n" "3 4 -1 -1 0\n4",
        acceptor=False,
    )
    assert minimize_encoded(fst).shape[0] == 4
    fst.aux_labels = torch.tensor([0, 0, 7, 8, -1], dtype=torch.int32)
    assert minimize_encoded(fst).shape[0] == 5


def right_languages(fsa: k2.Fsa) -> List[FrozenSet[Tuple]]:
    """Per state, the set of (label, rounded score) strings to the final state."""
    arcs = fsa.arcs.values()[:, :3].tolist()
    scores = fsa.scores.tolist()
    memo = {}

    def lang(s: int) -> FrozenSet[Tuple]:
        if s not in memo:
            out: Set[Tuple] = set()
            for (src, dst, label), score in zip(arcs, scores):
                if src == s:
                    step = (label, round(score * 1024))
                    out.update(
                        (step,) + rest for rest in (lang(dst) if label != -1 else {()})
                    )
            memo[s] = frozenset(out)
        return memo[s]

    return [lang(s) for s in range(fsa.shape[0])]


def random_dfa(seed: int) -> k2.Fsa:
    """A small random acyclic DFA, scores 0 or 1 so that states often merge."""
    torch.manual_seed(seed)
    fsa = k2.random_fsa(acyclic=True, max_symbol=3, min_num_arcs=20, max_num_arcs=60)
    fsa.scores = torch.randint(0, 2, (fsa.num_arcs,)).to(torch.float32)
    return k2.connect(k2.determinize(k2.connect(fsa)))


def test_random_dfas_reach_the_myhill_nerode_size() -> None:
    merged = 0
    for seed in range(30):
        fsa = random_dfa(seed)
        if fsa.shape[0] < 2:
            continue  # the random FSA had no path to the final state
        out = minimize_encoded(fsa)
        assert out.shape[0] == len(set(right_languages(fsa))), seed
        assert k2.is_rand_equivalent(
            fsa, out, log_semiring=False, treat_epsilons_specially=False
        )
        assert minimize_encoded(out).shape[0] == out.shape[0]  # idempotent
        merged += fsa.shape[0] - out.shape[0]
    assert merged > 0


def test_rejects_fsa_vectors() -> None:
    with pytest.raises(ValueError, match="single FSA"):
        minimize_encoded(k2.create_fsa_vec([k2.Fsa.from_str(DIAMOND)]))
