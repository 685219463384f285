"""Modified Kneser-Ney estimation on integer arrays: text of 100M words in a few GiB.

The model is the one :mod:`asrk2.lang.ngram` documents (interpolated modified
KN after Chen & Goodman, as KenLM's ``lmplz``); this module computes it
without a Python object per n-gram. Dicts of word tuples cost about 0.6 GB
per million words of text (5.4 GB for 8M words), which puts GigaSpeech XL's
100M words far beyond a 24 GiB machine; here an n-gram costs a few integers
and floats (about 30 bytes) and text a 4-byte token.

Layout (a trie in flat arrays, as SRILM and KenLM store counts):

- words get ids in sorted string order, so that sorting n-grams by ids sorts
  them as the ARPA file lists them;
- order 1 holds every word of the vocabulary, its index is the word id;
- an n-gram of order n > 1 is ``(prefix, word)``: ``prefix`` the index of its
  first n-1 words in order n-1. The n-grams of an order are sorted by
  ``prefix * V + word``, which is lexicographic order, and ``suffix`` (the
  index of its last n-1 words in order n-1) links each to its back-off.

Counting goes one order at a time over the token stream
``<s> w1 .. wk </s> <s> ...``: the n-gram starting at each position is its
(n-1)-gram's index and the next word, one int64 key, and ``np.unique`` of the
keys gives the n-grams, their raw counts and, per position, the index that
the next order builds on. Peak memory is about 30 bytes per token of the
order being counted, plus about 24 bytes per n-gram kept.

Example::

    train_arpa("transcripts.txt", "lm_4.arpa", order=4, max_ngrams=[0, 5e6, 8e6, 8e6])
    # which is, step by step:
    lm = count_ngrams_in_text(lines, order=4)   # NgramArrays
    estimate_kneser_ney(lm)
    prune_ngrams(lm, min_counts=[1, 1, 2, 2])
    write_arpa_arrays(lm, "lm_4.arpa")
"""

import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    Callable,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from asrk2.lang.lm_text import BOS, EOS, UNK, TextStats, encode_text, read_text_lines
from asrk2.utils import atomic_path

__all__ = [
    "OrderArrays",
    "NgramArrays",
    "count_ngrams_in_text",
    "discounts_from_counts",
    "estimate_kneser_ney",
    "thresholds_for_size",
    "prune_ngrams",
    "write_arpa_arrays",
    "ngram_tuples",
    "train_arrays",
    "train_arpa",
]

log = logging.getLogger(__name__)

LOG10_ZERO = -99.0
Discounts = Tuple[float, float, float]
# Rows per slice of estimation and of the ARPA writer: bounds their temporaries.
_SLICE_ROWS = 1 << 20


@dataclass
class OrderArrays:
    """The n-grams of one order, sorted (see the module docstring).

    Attributes:
      word: (M,) int32 id of the last word.
      prefix: (M,) int32 index of the first n-1 words in the order below
        (order 1: all -1).
      suffix: (M,) int32 index of the last n-1 words in the order below
        (order 1: all -1).
      raw: (M,) int32 raw counts in the text.
      log10_prob: (M,) float64 ``log10 p(w | h)`` once estimated.
      log10_backoff: (M,) float64 back-off weight of the n-gram as a history;
        NaN where it is the history of no n-gram of the next order; empty
        for the highest order.
    """

    word: np.ndarray
    prefix: np.ndarray
    suffix: np.ndarray
    raw: np.ndarray
    log10_prob: np.ndarray = field(default_factory=lambda: np.zeros(0))
    log10_backoff: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.word.size)

    def select(self, keep: np.ndarray, lower_index: Optional[np.ndarray]) -> None:
        """Keeps the rows where ``keep``; ``lower_index`` maps the order below's
        old indices to its new ones (None for order 1)."""
        for name in ("word", "prefix", "suffix", "raw", "log10_prob", "log10_backoff"):
            values = getattr(self, name)
            if values.size:
                setattr(self, name, values[keep])
        if lower_index is not None:
            self.prefix = lower_index[self.prefix]
            self.suffix = lower_index[self.suffix]


@dataclass
class NgramArrays:
    """Counts (and, once estimated, the model) of every order.

    Attributes:
      words: the word of each id, sorted; includes ``<s>``, ``</s>``, ``unk``.
      orders: ``orders[n - 1]`` holds the n-grams of order n.
      unk: the unknown word.
      stats: what reading the text kept and skipped.
    """

    words: List[str]
    orders: List[OrderArrays]
    unk: str = UNK
    stats: TextStats = field(default_factory=TextStats)

    @property
    def order(self) -> int:
        return len(self.orders)

    def ngram_ids(self, n: int, rows: np.ndarray) -> np.ndarray:
        """Word ids (len(rows), n) of the given rows of order n."""
        out = np.empty((rows.size, n), dtype=np.int64)
        index = rows
        for k in range(n, 0, -1):
            level = self.orders[k - 1]
            out[:, k - 1] = level.word[index]
            index = level.prefix[index]
        return out


def count_ngrams_in_text(
    lines: Iterable[str],
    order: int,
    vocabulary: Optional[Iterable[str]] = None,
    unk: str = UNK,
    stats: Optional[TextStats] = None,
) -> NgramArrays:
    """Counts every n-gram up to ``order`` (see :func:`encode_text` for the args).

    Raises:
      ValueError: ``order < 1``, or no sentence left to count.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    tokens, words, stats = encode_text(lines, vocabulary, unk, stats)
    if not stats.sentences:
        raise ValueError("cannot train an LM on no sentences")
    num_words = len(words)
    bos, eos = words.index(BOS), words.index(EOS)
    none = np.full(num_words, -1, dtype=np.int32)
    orders = [
        OrderArrays(
            word=np.arange(num_words, dtype=np.int32), prefix=none, suffix=none,
            raw=np.bincount(tokens, minlength=num_words).astype(np.int32),
        )
    ]  # fmt: skip
    # at[i]: index of the (n-1)-gram starting at token i in its order, -1 if none.
    at = tokens
    for n in range(2, order + 1):
        level, at = _count_order(tokens, at, n, num_words, bos, eos)
        orders.append(level)
        log.info("order %d: %d n-grams; peak RSS %.2f GiB", n, len(level), _peak_gib())
    return NgramArrays(words, orders, unk, stats)


def _count_order(
    tokens: np.ndarray, at: np.ndarray, n: int, num_words: int, bos: int, eos: int
) -> Tuple[OrderArrays, np.ndarray]:
    """The n-grams of order n, from the (n-1)-gram index of each token position.

    ``np.unique`` would do, but holds about five arrays of the keys' size at
    once; this holds two and a sort buffer (keys and their permutation; the
    keys are sorted in place), and indexes with int32.

    Returns:
      The n-grams of order n (sorted, with counts and suffixes), and the
      index of the n-gram starting at each position (-1: none), int32.
    """
    length = tokens.size - n + 1
    valid = at[:length] >= 0
    valid &= tokens[n - 2 : n - 2 + length] != eos
    valid &= tokens[n - 1 :] != bos
    starts = np.flatnonzero(valid).astype(np.int32)
    del valid
    if starts.size >= 2**31:
        raise ValueError(
            f"{starts.size:,} n-grams of order {n}: more than int32 indices hold; "
            "train on a part of the text"
        )
    keys = at[starts].astype(np.int64)
    keys *= num_words
    keys += tokens[n - 1 :][starts]
    perm = np.argsort(keys, kind="stable")
    keys.sort(kind="stable")  # == keys[perm], without a third array
    new = np.empty(keys.size, dtype=bool)
    new[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    uniq = keys[new]
    del keys
    bounds = np.flatnonzero(new)
    level = OrderArrays(
        word=(uniq % num_words).astype(np.int32),
        prefix=(uniq // num_words).astype(np.int32),
        suffix=at[starts[perm[new]] + 1],
        raw=np.diff(bounds, append=new.size).astype(np.int32),
    )
    del uniq, bounds
    index = np.empty(starts.size, dtype=np.int32)
    index[perm] = np.cumsum(new, dtype=np.int32) - 1
    del perm, new
    next_at = np.full(length, -1, dtype=np.int32)
    next_at[starts] = index
    return level, next_at


def _peak_gib() -> float:
    """This process's peak resident memory so far, for the progress log."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def discounts_from_counts(t1: int, t2: int, t3: int, t4: int) -> Discounts:
    """Modified Kneser-Ney discounts ``(D1, D2, D3+)`` from counts of counts.

    Chen & Goodman's estimates; when some ``tk`` is 0 or an estimate falls
    outside ``(0, k)``, the single absolute discount ``t1 / (t1 + 2 t2)``
    (0.5 if undefined) for all three.
    """
    if t1 and t2 and t3 and t4:
        y = t1 / (t1 + 2 * t2)
        d = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
        if all(0 < dk < k for k, dk in enumerate(d, 1)):
            return d
    y = t1 / (t1 + 2 * t2) if t1 and t2 else 0.5
    return (y, y, y)


def _kn_counts(lm: NgramArrays, n: int, starts_bos: np.ndarray) -> np.ndarray:
    """Adjusted counts of order n (int32): raw at the top and for n-grams
    starting with ``<s>`` (nothing precedes them), else distinct left
    extensions."""
    level = lm.orders[n - 1]
    if n == lm.order:
        counts = level.raw.copy() if n == 1 else level.raw
    else:
        counts = np.bincount(lm.orders[n].suffix, minlength=len(level))
        counts = counts.astype(np.int32)
        counts[starts_bos] = level.raw[starts_bos]
    if n == 1:
        counts[lm.words.index(BOS)] = 0
    return counts


def _slices(size: int) -> Iterator[slice]:
    for a in range(0, size, _SLICE_ROWS):
        yield slice(a, min(a + _SLICE_ROWS, size))


def _history_sums(
    prefix: np.ndarray, values: Callable[[slice], np.ndarray], size: int
) -> np.ndarray:
    """``bincount(prefix, weights=values)`` over ``size`` histories, in slices.

    ``prefix`` is sorted, so a slice's histories are one contiguous range and
    no temporary of the full size is needed. A history whose terms straddle
    two slices gets two partial sums added, which can differ from one
    ``bincount`` in the last bit.
    """
    out = np.zeros(size)
    for part in _slices(prefix.size):
        h = prefix[part]
        if h.size:
            low = int(h[0])
            out[low : int(h[-1]) + 1] += np.bincount(h - low, weights=values(part))
    return out


def estimate_kneser_ney(lm: NgramArrays) -> None:
    """Fills in ``log10_prob`` and ``log10_backoff`` of every order, in place.

    ``p(w | h) = (a(hw) - D(a(hw))) / a(h.) + gamma(h) p(w | h')``, unigrams
    interpolated with the uniform distribution over the vocabulary (all ids
    but ``<s>``); ``gamma(h)`` is the back-off weight of ``h``. Computed in
    slices of n-grams: besides the model, only the order's counts and the
    order below's probabilities are held whole.
    """
    bos = lm.words.index(BOS)
    uniform = 1.0 / (len(lm.words) - 1)
    starts_bos = lm.orders[0].word == bos
    lower = np.zeros(0)
    for n in range(1, lm.order + 1):
        level = lm.orders[n - 1]
        if n > 1:
            starts_bos = starts_bos[level.prefix]
        counts = _kn_counts(lm, n, starts_bos)
        t = np.zeros(6, dtype=np.int64)
        for part in _slices(counts.size):
            t += np.bincount(np.minimum(counts[part], 5), minlength=6)
        discounts = discounts_from_counts(*(int(x) for x in t[1:5]))
        log.debug("order %d discounts %s", n, discounts)
        table = np.array((0.0,) + discounts)

        def discount(part: slice) -> np.ndarray:
            return table[np.minimum(counts[part], 3)]

        keep_linear = n < lm.order
        prob = np.empty(len(level))
        if n == 1:
            root_total = float(counts.sum())
            root_gamma = float(discount(slice(None)).sum()) / root_total
            prob[:] = (counts - discount(slice(None))) / root_total
            prob += root_gamma * uniform
            prob[bos] = 0.0
        else:
            below = lm.orders[n - 2]
            total = _history_sums(level.prefix, lambda p: counts[p], len(below))
            mass = _history_sums(level.prefix, discount, len(below))
            has = total > 0
            gamma = np.divide(mass, total, out=np.zeros_like(mass), where=has)
            del mass
            for part in _slices(len(level)):
                h = level.prefix[part]
                own = (counts[part] - discount(part)) / total[h]
                prob[part] = own + gamma[h] * lower[level.suffix[part]]
            below.log10_backoff = np.full(len(below), np.nan)
            below.log10_backoff[has] = np.log10(gamma[has])
            del total, gamma, has
        lower = prob if keep_linear else np.zeros(0)
        with np.errstate(divide="ignore"):
            # The top order's linear probabilities are not needed: in place.
            level.log10_prob = np.log10(prob, out=None if keep_linear else prob)
        if n == 1:
            level.log10_prob[bos] = LOG10_ZERO
        # Set by the next order; the top order's n-grams are no histories.
        level.log10_backoff = np.full(len(level) if n < lm.order else 0, np.nan)


def thresholds_for_size(lm: NgramArrays, max_ngrams: Sequence[int]) -> List[int]:
    """Smallest raw-count threshold per order that leaves at most
    ``max_ngrams[n - 1]`` n-grams of order n (unigrams: always 1). The
    n-grams that pruning keeps for the closure of the ARPA file can add a
    few back."""
    if len(max_ngrams) != lm.order:
        raise ValueError(f"need {lm.order} max_ngrams, got {list(max_ngrams)}")
    thresholds = [1]
    for n in range(2, lm.order + 1):
        raw = lm.orders[n - 1].raw
        if raw.size == 0:  # e.g. 4-grams of one-word sentences
            thresholds.append(1)
            continue
        # at_least[t]: n-grams with raw count >= t.
        at_least = np.bincount(raw)[::-1].cumsum()[::-1]
        fits = np.flatnonzero(at_least[1:] <= max_ngrams[n - 1])
        thresholds.append(int(fits[0]) + 1 if fits.size else int(raw.max()) + 1)
    return thresholds


def prune_ngrams(lm: NgramArrays, min_counts: Sequence[int]) -> None:
    """Drops n-grams seen fewer than ``min_counts[n - 1]`` times and
    recomputes the back-off weights, in place (after :func:`estimate_kneser_ney`).

    A prefix or suffix of a kept n-gram is kept too, as the ARPA format needs
    its history and back-off states; unigrams are never dropped. The weights
    make every history's distribution sum to one again (as SRILM does):
    ``bow(h) = (1 - sum_w p(w | h)) / (1 - sum_w p(w | h'))`` over the kept
    ``hw``.
    """
    if len(min_counts) != lm.order:
        raise ValueError(f"need {lm.order} min_counts, got {list(min_counts)}")
    if all(c <= 1 for c in list(min_counts)[1:]):
        return
    before = [len(x) for x in lm.orders]
    keeps: List[np.ndarray] = [np.ones(before[0], dtype=bool)]
    needed = np.zeros(0, dtype=bool)
    for n in range(lm.order, 1, -1):
        level = lm.orders[n - 1]
        keep = level.raw >= min_counts[n - 1]
        if n < lm.order:
            keep |= needed
        keeps.insert(1, keep)
        needed = np.zeros(before[n - 2], dtype=bool)
        needed[level.prefix[keep]] = True
        needed[level.suffix[keep]] = True
    index: Optional[np.ndarray] = None
    for n, keep in enumerate(keeps, 1):
        lm.orders[n - 1].select(keep, index)
        index = np.cumsum(keep) - 1
    for n in range(1, lm.order):
        below, level = lm.orders[n - 1], lm.orders[n]
        # The suffix h'w of a kept hw is kept, so p(w | h') is its own entry.
        num = np.bincount(level.prefix, weights=10.0**level.log10_prob,
                          minlength=len(below))  # fmt: skip
        den = np.bincount(level.prefix, weights=10.0 ** below.log10_prob[level.suffix],
                          minlength=len(below))  # fmt: skip
        has = np.bincount(level.prefix, minlength=len(below)) > 0
        bow = np.log10(np.maximum(1.0 - num, 1e-300)) - np.log10(
            np.maximum(1.0 - den, 1e-300)
        )
        below.log10_backoff = np.where(has, bow, np.nan)
    log.info("pruned n-grams per order %s -> %s", before, [len(x) for x in lm.orders])


def _fmt(values: np.ndarray) -> List[str]:
    return [f"{x:.7g}" for x in values.tolist()]


def write_arpa_arrays(lm: NgramArrays, path: Union[str, Path]) -> None:
    """Writes the estimated model as an ARPA file, atomically, in the same
    format and order as :func:`asrk2.lang.ngram.write_arpa`."""
    words = np.array(lm.words, dtype=object)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("\\data\\\n")
        for n, level in enumerate(lm.orders, 1):
            f.write(f"ngram {n}={len(level)}\n")
        for n, level in enumerate(lm.orders, 1):
            f.write(f"\n\\{n}-grams:\n")
            for part in _slices(len(level)):
                rows = np.arange(part.start, part.stop)
                ids = lm.ngram_ids(n, rows)
                text = words[ids[:, 0]]
                for k in range(1, n):
                    text = text + " " + words[ids[:, k]]
                lines = np.array(_fmt(level.log10_prob[rows]), dtype=object)
                lines = lines + "\t" + text
                bows = level.log10_backoff[rows] if n < lm.order else np.zeros(0)
                has = ~np.isnan(bows)
                if has.any():
                    bow_text = np.array(_fmt(bows[has]), dtype=object)
                    lines[has] = lines[has] + "\t" + bow_text
                f.write("\n".join(lines.tolist()))
                f.write("\n")
        f.write("\n\\end\\\n")


def ngram_tuples(lm: NgramArrays, n: int) -> List[Tuple[str, ...]]:
    """Every n-gram of order n as a word tuple, in index order (small models)."""
    ids = lm.ngram_ids(n, np.arange(len(lm.orders[n - 1])))
    return [tuple(lm.words[i] for i in row) for row in ids.tolist()]


def train_arrays(
    text: Union[Iterable[str], str, Path],
    order: int,
    vocabulary: Optional[Iterable[str]] = None,
    min_counts: Optional[Sequence[int]] = None,
    max_ngrams: Optional[Sequence[int]] = None,
    unk: str = UNK,
) -> NgramArrays:
    """Counts, estimates and prunes a modified Kneser-Ney model.

    Args:
      text: sentences, or the path of a text file of one sentence per line
        (lines that are not UTF-8 are skipped and counted).
      order: the n-gram order.
      vocabulary: the words the model predicts (others count as ``unk``);
        default: the words of the text.
      min_counts: raw-count threshold per order (unigrams never pruned).
      max_ngrams: at most this many n-grams per order (unigrams: any
        value), by raising that order's threshold (:func:`thresholds_for_size`).
      unk: the unknown word.
    Returns:
      The estimated model; ``stats`` says what was skipped (also logged).
    Raises:
      ValueError: bad ``order``/``min_counts``/``max_ngrams``, or no sentence.
    """
    for name, values in (("min_counts", min_counts), ("max_ngrams", max_ngrams)):
        if values is not None and len(values) != order:
            raise ValueError(f"need {order} {name}, got {list(values)}")
    stats = TextStats()
    lines = read_text_lines(text, stats) if isinstance(text, (str, Path)) else text
    start = time.perf_counter()
    lm = count_ngrams_in_text(lines, order, vocabulary, unk, stats)
    stats.log_summary(str(text) if isinstance(text, (str, Path)) else "LM text")
    counted = time.perf_counter()
    estimate_kneser_ney(lm)
    log.info("counted in %.1f s, estimated in %.1f s; peak RSS %.2f GiB",
             counted - start, time.perf_counter() - counted, _peak_gib())  # fmt: skip
    thresholds = list(min_counts) if min_counts is not None else [1] * order
    if max_ngrams is not None:
        by_size = thresholds_for_size(lm, max_ngrams)
        log.info("count thresholds for <= %s n-grams: %s", list(max_ngrams), by_size)
        thresholds = [max(a, b) for a, b in zip(thresholds, by_size)]
    prune_ngrams(lm, thresholds)
    return lm


def train_arpa(
    text: Union[Iterable[str], str, Path],
    arpa: Union[str, Path],
    order: int,
    vocabulary: Optional[Iterable[str]] = None,
    min_counts: Optional[Sequence[int]] = None,
    max_ngrams: Optional[Sequence[int]] = None,
    unk: str = UNK,
) -> NgramArrays:
    """:func:`train_arrays`, then the ARPA file (written atomically)."""
    lm = train_arrays(text, order, vocabulary, min_counts, max_ngrams, unk)
    start = time.perf_counter()
    write_arpa_arrays(lm, arpa)
    log.info("Wrote %s in %.1f s: n-grams per order %s", arpa,
             time.perf_counter() - start, [len(x) for x in lm.orders])  # fmt: skip
    return lm
