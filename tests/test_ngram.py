"""Tests for asrk2.lang.ngram: a naive Kneser-Ney reference and ARPA invariants."""

import math
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import pytest

from asrk2.data.sentences import SentenceGenerator
from asrk2.lang.ngram import (
    BOS,
    EOS,
    UNK,
    NgramLM,
    compute_backoffs,
    count_ngrams,
    kneser_ney_discounts,
    read_arpa,
    train_kneser_ney,
    write_arpa,
)


def sentences(seed: int, num: int) -> List[str]:
    gen = SentenceGenerator(seed=seed)
    return [gen.sentence() for _ in range(num)]


TRAIN = sentences(0, 400)
DEV = sentences(1, 100)


def arpa_round_trip(lm: NgramLM, tmp_path: Path) -> NgramLM:
    write_arpa(lm, tmp_path / "lm.arpa")
    return read_arpa(tmp_path / "lm.arpa")


class ReferenceKN:
    """Interpolated modified KN straight from the textbook formulas.

    Continuation counts are sets of left neighbours, histories are looked up
    in explicit follower lists: slow, but shares no code with the module.
    """

    def __init__(self, texts: Sequence[str], order: int) -> None:
        self.order = order
        self.grams: Counter = Counter()
        for text in texts:
            tokens = [BOS] + text.split() + [EOS]
            for n in range(1, order + 1):
                for i in range(len(tokens) - n + 1):
                    self.grams[tuple(tokens[i : i + n])] += 1
        self.left: Dict[Tuple[str, ...], set] = {}
        self.followers: Dict[Tuple[str, ...], list] = {}
        for g in self.grams:
            if len(g) > 1:
                self.left.setdefault(g[1:], set()).add(g[0])
            if g != (BOS,):
                self.followers.setdefault(g[:-1], []).append(g)
        self.vocab = {g[0] for g in self.grams if len(g) == 1} - {BOS} | {UNK}
        self.cache: Dict[Tuple[str, ...], Tuple[int, float]] = {}
        self.discounts = {
            n: kneser_ney_discounts(
                self.count(g) for g in self.grams if len(g) == n and g != (BOS,)
            )
            for n in range(1, order + 1)
        }

    def count(self, g: Tuple[str, ...]) -> int:
        if len(g) == self.order or g[0] == BOS:
            return self.grams[g]
        return len(self.left.get(g, ()))

    def prob(self, w: str, h: Tuple[str, ...]) -> float:
        lower = self.prob(w, h[1:]) if h else 1.0 / len(self.vocab)
        if h not in self.followers:
            return lower
        d = self.discounts[len(h) + 1]
        if h not in self.cache:
            counts = [self.count(g) for g in self.followers[h]]
            self.cache[h] = (sum(counts), sum(d[min(c, 3) - 1] for c in counts))
        total, mass = self.cache[h]
        gamma = mass / total
        c = self.count(h + (w,)) if h + (w,) in self.grams else 0
        own = (c - d[min(c, 3) - 1]) / total if c else 0.0
        return own + gamma * lower


def test_discounts_follow_chen_goodman() -> None:
    counts = [1] * 10 + [2] * 5 + [3] * 3 + [4] * 2 + [9] * 7
    d1, d2, d3 = kneser_ney_discounts(counts)
    y = 10 / (10 + 2 * 5)
    assert d1 == pytest.approx(1 - 2 * y * 5 / 10)
    assert d2 == pytest.approx(2 - 3 * y * 3 / 5)
    assert d3 == pytest.approx(3 - 4 * y * 2 / 3)
    # No count of 4: one absolute discount t1 / (t1 + 2 t2).
    assert kneser_ney_discounts([1, 1, 2, 3]) == pytest.approx((0.5,) * 3)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_matches_reference_kneser_ney(order: int, tmp_path: Path) -> None:
    texts = TRAIN[:60]
    lm = arpa_round_trip(train_kneser_ney(texts, order), tmp_path)
    ref = ReferenceKN(texts, order)
    histories = {(), (BOS,), ("THE",), ("ZORBLAX",)}
    for text in DEV[:5] + texts[:5]:
        tokens = [BOS] + text.split()
        histories.update(
            tuple(tokens[max(0, i - order + 1) : i]) for i in range(1, len(tokens))
        )
    for h in histories:
        for w in sorted(ref.vocab | {EOS}):
            expected = math.log10(ref.prob(w, h))
            assert lm.log10_prob(w, h) == pytest.approx(expected, abs=2e-6), (h, w)


def history_sums(lm: NgramLM, histories) -> Dict[Tuple[str, ...], float]:
    vocab = lm.vocabulary
    assert BOS not in vocab and EOS in vocab and UNK in vocab
    return {h: sum(10 ** lm.log10_prob(w, h) for w in vocab) for h in histories}


@pytest.mark.parametrize(
    "order,min_counts",
    [(1, None), (2, None), (3, None), (4, None), (3, [1, 2, 2]), (4, [1, 1, 2, 3])],
)
def test_every_history_sums_to_one(order: int, min_counts, tmp_path: Path) -> None:
    lm = arpa_round_trip(
        train_kneser_ney(TRAIN, order, min_counts=min_counts), tmp_path
    )
    histories = [
        (),
        (BOS,),
        ("THE",),
        ("TURN", "ON"),
        (BOS, "SET"),
        ("ZORBLAX", "THE"),
        ("SET", "THE", "THERMOSTAT"),
        ("DOLLARS",),
    ]
    histories += [tuple(g[:-1]) for g in list(lm.logprobs[-1])[:20]]
    for h, total in history_sums(lm, histories).items():
        assert total == pytest.approx(1.0, abs=1e-5), h


def test_backoff_weights_are_the_kneser_ney_gammas() -> None:
    lm = train_kneser_ney(TRAIN, 3)
    renormalised = compute_backoffs(lm)
    for n in range(2):
        assert set(renormalised[n]) == set(lm.backoffs[n])
        for h, bow in lm.backoffs[n].items():
            assert renormalised[n][h] == pytest.approx(bow, abs=1e-9)
            assert bow < 0.0  # 0 < gamma < 1: discounted mass is a fraction
    # A history is an n-gram of the model, so the ARPA file can hold its weight.
    assert all(h in lm.logprobs[n] for n in range(2) for h in lm.backoffs[n])


def test_pruning_keeps_arpa_closure_and_prunes() -> None:
    full = train_kneser_ney(TRAIN, 3)
    pruned = train_kneser_ney(TRAIN, 3, min_counts=[1, 2, 3])
    assert len(pruned.logprobs[0]) == len(full.logprobs[0])
    assert len(pruned.logprobs[2]) < len(full.logprobs[2]) / 2
    counts = count_ngrams([t.split() for t in TRAIN], 3)
    for g in pruned.logprobs[2]:
        assert counts[2][g] >= 3
        assert g[:-1] in pruned.logprobs[1] and g[1:] in pruned.logprobs[1]


def test_dev_perplexity_beats_unigram_baselines() -> None:
    ppl = {n: train_kneser_ney(TRAIN, n).perplexity(DEV) for n in (1, 2, 3, 4)}
    assert ppl[4] < ppl[3] < ppl[2] < ppl[1]
    # An independent baseline: add-one unigram over the same vocabulary.
    counts = Counter(w for t in TRAIN for w in t.split() + [EOS])
    vocab = set(counts) | {UNK}
    total = sum(counts.values()) + len(vocab)
    log10_sum = sum(
        math.log10((counts.get(w if w in vocab else UNK, 0) + 1) / total)
        for t in DEV
        for w in t.split() + [EOS]
    )
    add_one = 10 ** (-log10_sum / sum(len(t.split()) + 1 for t in DEV))
    # Half the sentences come from an open grammar over ~1,000 words, so the
    # 3-gram's gain is smaller than on templates alone (4.5x here).
    assert ppl[3] < add_one / 4
    assert ppl[1] < add_one * 1.1


def test_vocabulary_and_unk() -> None:
    vocab = {w for t in TRAIN for w in t.split()} | {"NEVERSEEN"}
    lm = train_kneser_ney(TRAIN[:50] + ["TURN ON THE ZORBLAX"], 2, vocabulary=vocab)
    assert "ZORBLAX" not in lm.vocabulary and UNK in lm.vocabulary
    # An OOV is scored as <unk>, which was seen once in training.
    assert lm.log10_prob("QWERTY", ("THE",)) == lm.log10_prob(UNK, ("THE",))
    assert lm.log10_prob("ZORBLAX", ("THE",)) > lm.log10_prob("NEVERSEEN", ("THE",))
    # Unseen vocabulary words get the uniform share of the unigram mass.
    assert lm.logprobs[0][("NEVERSEEN",)] < min(
        lp for (w,), lp in lm.logprobs[0].items() if w in TRAIN[0].split()
    )
    assert lm.log10_prob(BOS, ()) == -99.0


def test_read_arpa_checks_header(tmp_path: Path) -> None:
    lm = train_kneser_ney(TRAIN[:20], 2)
    write_arpa(lm, tmp_path / "lm.arpa")
    text = (tmp_path / "lm.arpa").read_text()
    assert text.startswith("\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    (tmp_path / "bad.arpa").write_text(text.replace("ngram 2=", "ngram 2=1", 1))
    with pytest.raises(ValueError, match="header says"):
        read_arpa(tmp_path / "bad.arpa")
