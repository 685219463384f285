"""asrk2.lang.kneser_ney: the array estimation, its pruning, its text reader.

The estimate itself is checked against the textbook reference in
test_ngram.py (through ``train_kneser_ney``, which runs on these arrays).
"""

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from asrk2.data.sentences import SentenceGenerator
from asrk2.lang import kneser_ney
from asrk2.lang.ngram import (
    UNK,
    arrays_to_lm,
    compute_backoffs,
    count_ngrams,
    read_arpa,
    train_kneser_ney,
    write_arpa,
)

GEN = SentenceGenerator(seed=3)
TEXT = [GEN.sentence() for _ in range(500)]


def test_counts_equal_counting_tuples():
    lm = kneser_ney.count_ngrams_in_text(TEXT, 4)
    expected = count_ngrams([t.split() for t in TEXT], 4)
    for n in range(1, 5):
        got = dict(zip(kneser_ney.ngram_tuples(lm, n), lm.orders[n - 1].raw.tolist()))
        got = {g: c for g, c in got.items() if c}  # unigrams hold every word
        assert got == dict(expected[n - 1]), n
    # Sorted by ids is sorted by strings: the order ARPA files list them in.
    trigrams = kneser_ney.ngram_tuples(lm, 3)
    assert trigrams == sorted(trigrams)


def test_arpa_file_equals_the_dict_models_file(tmp_path: Path):
    vocab = sorted({w for t in TEXT for w in t.split()})[5:] + ["NEVERSEEN"]
    kneser_ney.train_arpa(TEXT, tmp_path / "a.arpa", 3, vocab, [1, 2, 2])
    write_arpa(train_kneser_ney(TEXT, 3, vocab, [1, 2, 2]), tmp_path / "b.arpa")
    assert (tmp_path / "a.arpa").read_text() == (tmp_path / "b.arpa").read_text()
    lm = read_arpa(tmp_path / "a.arpa")
    assert ("NEVERSEEN",) in lm.logprobs[0] and (UNK,) in lm.logprobs[0]


@pytest.mark.parametrize("min_counts", [[1, 2, 2], [1, 1, 3], [1, 3, 2, 4]])
def test_pruned_backoffs_renormalise_like_the_dict_computation(min_counts):
    order = len(min_counts)
    lm = arrays_to_lm(kneser_ney.train_arrays(TEXT, order, min_counts=min_counts))
    expected = compute_backoffs(lm)
    for n in range(order - 1):
        assert set(lm.backoffs[n]) == set(expected[n])
        for h, bow in lm.backoffs[n].items():
            assert bow == pytest.approx(expected[n][h], abs=1e-9), h


def test_thresholds_for_size_are_the_smallest_that_fit():
    lm = kneser_ney.count_ngrams_in_text(TEXT, 3)
    raw = lm.orders[2].raw
    for target in (10, 500, 3000, 10**9):
        thresholds = kneser_ney.thresholds_for_size(lm, [0, 10**9, target])
        t = thresholds[2]
        assert int((raw >= t).sum()) <= target
        assert t == 1 or int((raw >= t - 1).sum()) > target
        assert thresholds[:2] == [1, 1]
    pruned = kneser_ney.train_arrays(TEXT, 3, max_ngrams=[0, 10**9, 500])
    # The closure (prefixes and suffixes of kept 3-grams) adds none at the top.
    assert len(pruned.orders[2]) <= 500 < len(lm.orders[2])


def test_bad_lines_are_skipped_counted_and_named(tmp_path: Path, caplog):
    path = tmp_path / "text.txt"
    clean = TEXT[:50]
    lines = [line.encode() for line in clean[:20]]
    lines += [b"", b"   ", f"{UNK} {UNK}".encode(), b"TURN \xff\xfe ON"]
    lines += [line.encode() for line in clean[20:]]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with caplog.at_level(logging.INFO):
        lm = kneser_ney.train_arrays(path, 3)
    assert (lm.stats.sentences, lm.stats.empty, lm.stats.unk_only) == (50, 2, 1)
    assert lm.stats.bad_utf8 == 1
    assert f"{path}:24 is not UTF-8" in caplog.text
    assert "2 empty, 1 only <unk>, 1 not UTF-8" in caplog.text
    reference = kneser_ney.train_arrays(clean, 3)
    for a, b in zip(lm.orders, reference.orders):
        np.testing.assert_array_equal(a.log10_prob, b.log10_prob)


def test_words_outside_the_vocabulary_count_as_unk():
    lm = kneser_ney.count_ngrams_in_text(["A B C", "A X"], 2, vocabulary=["A", "B"])
    assert lm.words == sorted(["<s>", "</s>", UNK, "A", "B"])
    bigrams = Counter(
        dict(zip(kneser_ney.ngram_tuples(lm, 2), lm.orders[1].raw.tolist()))
    )
    assert bigrams[("B", UNK)] == 1 and bigrams[("A", UNK)] == 1


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="order must be >= 1"):
        kneser_ney.count_ngrams_in_text(TEXT, 0)
    with pytest.raises(ValueError, match="no sentences"):
        kneser_ney.count_ngrams_in_text(["", UNK], 2)
    with pytest.raises(ValueError, match="need 3 max_ngrams"):
        kneser_ney.train_arrays(TEXT, 3, max_ngrams=[10, 10])


def test_prepare_lms_prunes_to_the_size_asked_and_retrains_when_it_changes(tmp_path):
    from asrk2.lang.lexicon import write_symbol_table
    from asrk2.lang.prepare import prepare_lms

    (tmp_path / "transcripts.txt").write_text("\n".join(TEXT) + "\n")
    words = ["<eps>", "!SIL", UNK] + sorted({w for t in TEXT for w in t.split()})
    write_symbol_table({w: i for i, w in enumerate(words + ["#0"])},
                       tmp_path / "words.txt")  # fmt: skip
    prepare_lms(tmp_path, orders=(3,))
    full = read_arpa(tmp_path / "lm_3.arpa")
    prepare_lms(tmp_path, orders=(3,), max_ngrams={3: [0, 10**9, 300]})
    pruned = read_arpa(tmp_path / "lm_3.arpa")
    assert len(pruned.logprobs[2]) <= 300 < len(full.logprobs[2])
    assert len(pruned.logprobs[0]) == len(full.logprobs[0])
