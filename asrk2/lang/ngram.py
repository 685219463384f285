"""Interpolated modified Kneser-Ney n-gram LMs, written and read as ARPA files.

No package on PyPI trains such a model correctly: the ``kenlm`` wheels carry
only the query module (``lmplz`` is not built), ``nltk.lm`` has no ARPA export,
and ``arpabo``'s Kneser-Ney neither interpolates nor renormalises. This module
follows Chen & Goodman (1998) as KenLM's ``lmplz`` does:

- counts of the highest order are raw counts; a lower-order n-gram gets the
  number of distinct words seen before it (its continuation count), except
  n-grams starting with ``<s>``, which nothing can precede and keep raw counts;
- three discounts per order, ``D1, D2, D3+``, from that order's counts of
  counts ``t1..t4`` (one absolute discount when the data is too small);
- ``p(w | h) = (a(hw) - D(a(hw))) / a(h.) + gamma(h) p(w | h')``, where ``h'``
  drops the oldest word, and unigrams are interpolated with the uniform
  distribution over the vocabulary, so ``<unk>`` and unseen words get mass;
- the ARPA back-off weight of ``h`` is ``gamma(h)``, so every history's
  distribution sums to one over the vocabulary (``<s>`` excluded).

Optional count pruning drops rare higher-order n-grams and recomputes the
back-off weights so that the pruned model is normalised again (as SRILM does).

Example::

    lm = train_kneser_ney(["TURN ON THE LIGHTS", "TURN OFF THE FAN"], order=3)
    write_arpa(lm, "lm_3.arpa")
    lm = read_arpa("lm_3.arpa")
    lm.log10_prob("LIGHTS", ["ON", "THE"])  # log10 p(LIGHTS | ON THE)
"""

import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from asrk2.utils import atomic_path

__all__ = [
    "BOS",
    "EOS",
    "UNK",
    "NgramLM",
    "count_ngrams",
    "kneser_ney_discounts",
    "train_kneser_ney",
    "prune_by_count",
    "compute_backoffs",
    "write_arpa",
    "read_arpa",
]

log = logging.getLogger(__name__)

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
# ARPA's log10 of zero, the probability of predicting <s>.
LOG10_ZERO = -99.0

Ngram = Tuple[str, ...]
Discounts = Tuple[float, float, float]


@dataclass
class NgramLM:
    """A back-off n-gram model, as stored in an ARPA file.

    Attributes:
      logprobs: ``logprobs[n - 1][g]`` is ``log10 p(g[-1] | g[:-1])`` for each
        n-gram ``g`` of order ``n`` in the model.
      backoffs: ``backoffs[n - 1][h]`` is the log10 back-off weight of the
        n-gram ``h`` used as a history; absent means 0 (weight 1).
      unk: the word that out-of-vocabulary words are mapped to.
    """

    logprobs: List[Dict[Ngram, float]]
    backoffs: List[Dict[Ngram, float]] = field(default_factory=list)
    unk: str = UNK

    def __post_init__(self) -> None:
        while len(self.backoffs) < len(self.logprobs):
            self.backoffs.append({})

    @property
    def order(self) -> int:
        """The highest n-gram order."""
        return len(self.logprobs)

    @property
    def vocabulary(self) -> List[str]:
        """The words the model predicts (all unigrams but ``<s>``), sorted."""
        return sorted(g[0] for g in self.logprobs[0] if g[0] != BOS)

    def log10_prob(self, word: str, history: Sequence[str]) -> float:
        """``log10 p(word | history)`` by ARPA back-off.

        Args:
          word: the predicted word; unknown words are scored as ``unk``.
          history: the preceding words, oldest first (``<s>`` may start it).
        Returns:
          The log10 probability; ``LOG10_ZERO`` for ``<s>``.
        """
        if (word,) not in self.logprobs[0]:
            word = self.unk
        total = 0.0
        k = min(len(history), self.order - 1)
        while k >= 0:
            h = tuple(history[len(history) - k :]) if k else ()
            lp = self.logprobs[k].get(h + (word,))
            if lp is not None:
                return total + lp
            if k:
                total += self.backoffs[k - 1].get(h, 0.0)
            k -= 1
        raise KeyError(f"neither {word!r} nor {self.unk!r} is in the model")

    def sentence_log10_prob(self, words: Sequence[str]) -> float:
        """log10 probability of ``<s> words </s>`` (``</s>`` included)."""
        tokens = [BOS, *words, EOS]
        return sum(
            self.log10_prob(tokens[i], tokens[max(0, i - self.order + 1) : i])
            for i in range(1, len(tokens))
        )

    def perplexity(self, sentences: Iterable[str]) -> float:
        """Perplexity over sentences, counting ``</s>`` as a predicted token.

        Args:
          sentences: whitespace-separated words, one sentence per item.
        Returns:
          ``10 ** (-total_log10_prob / num_predicted_tokens)``.
        """
        total, num = 0.0, 0
        for sentence in sentences:
            words = sentence.split()
            total += self.sentence_log10_prob(words)
            num += len(words) + 1
        if num == 0:
            raise ValueError("perplexity of an empty text")
        return 10.0 ** (-total / num)


def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> List[Counter]:
    """Counts the n-grams of ``<s> words </s>`` for every order up to ``order``.

    Args:
      sentences: word sequences.
      order: the highest order, >= 1.
    Returns:
      ``counts[n - 1]``: a Counter of n-gram tuples.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    counts: List[Counter] = [Counter() for _ in range(order)]
    for words in sentences:
        tokens = (BOS, *words, EOS)
        for n in range(1, order + 1):
            counts[n - 1].update(zip(*(tokens[i:] for i in range(n))))
    return counts


def _adjusted_counts(raw: List[Counter]) -> List[Dict[Ngram, int]]:
    """Kneser-Ney counts: raw at the top order, continuation counts below."""
    order = len(raw)
    adjusted: List[Dict[Ngram, int]] = [dict() for _ in range(order)]
    adjusted[-1] = dict(raw[-1])
    for n in range(order - 1, 0, -1):
        # Keys of raw[n] are distinct (n+1)-grams, so this counts distinct
        # left extensions of each n-gram.
        cont = Counter(g[1:] for g in raw[n])
        for g, c in raw[n - 1].items():
            if g[0] == BOS:
                cont[g] = c
        adjusted[n - 1] = dict(cont)
    adjusted[0].pop((BOS,), None)
    return adjusted


def kneser_ney_discounts(counts: Iterable[int]) -> Discounts:
    """Modified Kneser-Ney discounts ``(D1, D2, D3+)`` of one order.

    Args:
      counts: the (adjusted) counts of every n-gram of that order.
    Returns:
      Chen & Goodman's estimates from the counts of counts ``t1..t4``; when
      some ``tk`` is 0 or an estimate falls outside ``(0, k)``, the single
      absolute discount ``t1 / (t1 + 2 t2)`` (0.5 if undefined) for all three.
    """
    t = Counter(c for c in counts if c <= 4)
    t1, t2, t3, t4 = (t[k] for k in (1, 2, 3, 4))
    if t1 and t2 and t3 and t4:
        y = t1 / (t1 + 2 * t2)
        d = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
        if all(0 < dk < k for k, dk in enumerate(d, 1)):
            return d
    y = t1 / (t1 + 2 * t2) if t1 and t2 else 0.5
    return (y, y, y)


def _interpolate(
    adjusted: Dict[Ngram, int],
    discounts: Discounts,
    lower: Dict[Ngram, float],
    uniform: float,
) -> Tuple[Dict[Ngram, float], Dict[Ngram, float]]:
    """One order of interpolated KN: probabilities and gammas of the histories.

    Args:
      adjusted: KN counts of this order's n-grams.
      discounts: ``(D1, D2, D3+)`` of this order.
      lower: interpolated probabilities of the order below (empty for unigrams).
      uniform: ``1 / |V|``, the distribution below unigrams.
    Returns:
      ``(probs, gammas)``: ``p(w | h)`` per n-gram and ``gamma(h)`` per history.
    """
    total: Dict[Ngram, int] = defaultdict(int)
    mass: Dict[Ngram, float] = defaultdict(float)
    for g, c in adjusted.items():
        total[g[:-1]] += c
        mass[g[:-1]] += discounts[min(c, 3) - 1]
    gammas = {h: mass[h] / total[h] for h in total}
    probs: Dict[Ngram, float] = {}
    for g, c in adjusted.items():
        h = g[:-1]
        below = lower[g[1:]] if len(g) > 1 else uniform
        probs[g] = (c - discounts[min(c, 3) - 1]) / total[h] + gammas[h] * below
    return probs, gammas


def _map_oovs(
    sentences: Iterable[str], vocabulary: Optional[Set[str]], unk: str
) -> Iterable[List[str]]:
    for sentence in sentences:
        words = sentence.split()
        if vocabulary is not None:
            words = [w if w in vocabulary else unk for w in words]
        yield words


def train_kneser_ney(
    sentences: Iterable[str],
    order: int = 3,
    vocabulary: Optional[Iterable[str]] = None,
    min_counts: Optional[Sequence[int]] = None,
    unk: str = UNK,
) -> NgramLM:
    """Trains an interpolated modified Kneser-Ney LM.

    Args:
      sentences: normalised sentences, words separated by white space.
      order: the n-gram order, e.g. 3 for the decoding graph, 4 for rescoring.
      vocabulary: if given, the words the model predicts: words outside it
        are counted as ``unk``, and words in it never seen get the uniform
        share of the unigram distribution. By default, the words of the text.
      min_counts: optional raw-count threshold per order (``min_counts[n-1]``
        for order n; unigrams are never pruned), see :func:`prune_by_count`.
      unk: the unknown word, always in the model.
    Returns:
      The model, normalised: each history's probabilities sum to one over
      the vocabulary plus ``</s>`` and ``unk``.
    """
    if min_counts is not None and len(min_counts) != order:
        raise ValueError(f"need {order} min_counts, got {list(min_counts)}")
    vocab = set(vocabulary) - {BOS, EOS} if vocabulary is not None else None
    raw = count_ngrams(_map_oovs(sentences, vocab, unk), order)
    if not raw[0]:
        raise ValueError("cannot train an LM on no sentences")
    adjusted = _adjusted_counts(raw)
    words = {g[0] for g in adjusted[0]} | {EOS, unk} | (vocab or set())
    uniform = 1.0 / len(words)
    probs: List[Dict[Ngram, float]] = []
    gammas: List[Dict[Ngram, float]] = []
    for n in range(1, order + 1):
        discounts = kneser_ney_discounts(adjusted[n - 1].values())
        log.debug("order %d discounts %s", n, discounts)
        p, g = _interpolate(
            adjusted[n - 1], discounts, probs[-1] if probs else {}, uniform
        )
        probs.append(p)
        gammas.append(g)
    root_gamma = gammas[0][()]
    for w in words:
        probs[0].setdefault((w,), root_gamma * uniform)
    logprobs = [{g: math.log10(p) for g, p in level.items()} for level in probs]
    logprobs[0][(BOS,)] = LOG10_ZERO
    backoffs = [
        {h: math.log10(x) for h, x in gammas[n].items()} for n in range(1, order)
    ]
    lm = NgramLM(logprobs, backoffs, unk)
    if min_counts is not None and any(c > 1 for c in list(min_counts)[1:]):
        lm = prune_by_count(lm, raw, min_counts)
    return lm


def prune_by_count(
    lm: NgramLM, raw_counts: List[Counter], min_counts: Sequence[int]
) -> NgramLM:
    """Drops n-grams seen fewer than ``min_counts[n-1]`` times, renormalising.

    An n-gram that is a prefix or suffix of a kept higher-order n-gram is
    kept too, as the ARPA format needs its history and back-off states.
    Unigrams are never dropped.

    Args:
      lm: a model trained on ``raw_counts``.
      raw_counts: from :func:`count_ngrams`, one Counter per order.
      min_counts: one threshold per order (the unigram one is ignored).
    Returns:
      A new model with recomputed back-off weights.
    """
    if len(min_counts) != lm.order:
        raise ValueError(f"need {lm.order} min_counts, got {list(min_counts)}")
    kept: List[Dict[Ngram, float]] = [dict(x) for x in lm.logprobs]
    needed: Set[Ngram] = set()
    for n in range(lm.order, 1, -1):
        counts, threshold = raw_counts[n - 1], min_counts[n - 1]
        kept[n - 1] = {
            g: lp
            for g, lp in lm.logprobs[n - 1].items()
            if counts[g] >= threshold or g in needed
        }
        needed = {g[:-1] for g in kept[n - 1]} | {g[1:] for g in kept[n - 1]}
    pruned = NgramLM(kept, [], lm.unk)
    pruned.backoffs = compute_backoffs(pruned)
    log.info(
        "pruned n-grams per order %s -> %s",
        [len(x) for x in lm.logprobs],
        [len(x) for x in kept],
    )
    return pruned


def compute_backoffs(lm: NgramLM) -> List[Dict[Ngram, float]]:
    """Back-off weights that make every history's distribution sum to one.

    ``bow(h) = (1 - sum_w p(w | h)) / (1 - sum_w p(w | h'))`` over the words
    ``w`` with ``hw`` in the model, computed from low to high orders so that
    ``p(w | h')`` already uses the new lower-order weights. For an unpruned
    KN model this reproduces ``gamma(h)``.

    Args:
      lm: a model whose ``logprobs`` are set; its ``backoffs`` are ignored.
    Returns:
      ``backoffs`` for every order, log10.
    """
    work = NgramLM(lm.logprobs, [], lm.unk)
    for n in range(2, lm.order + 1):
        num: Dict[Ngram, float] = defaultdict(float)
        den: Dict[Ngram, float] = defaultdict(float)
        for g, lp in lm.logprobs[n - 1].items():
            h = g[:-1]
            num[h] += 10.0**lp
            den[h] += 10.0 ** work.log10_prob(g[-1], h[1:])
        work.backoffs[n - 2] = {
            h: math.log10(max(1.0 - num[h], 1e-300))
            - math.log10(max(1.0 - den[h], 1e-300))
            for h in num
        }
    return work.backoffs


def _fmt(x: float) -> str:
    return f"{x:.7g}"


def write_arpa(lm: NgramLM, path: Union[str, Path]) -> None:
    """Writes the model as an ARPA file, atomically.

    Args:
      lm: the model.
      path: output path, e.g. ``lang_dir/lm_3.arpa``.
    """
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("\\data\\\n")
        for n, level in enumerate(lm.logprobs, 1):
            f.write(f"ngram {n}={len(level)}\n")
        for n, level in enumerate(lm.logprobs, 1):
            f.write(f"\n\\{n}-grams:\n")
            bows = lm.backoffs[n - 1] if n < lm.order else {}
            for g in sorted(level):
                line = f"{_fmt(level[g])}\t{' '.join(g)}"
                if g in bows:
                    line += f"\t{_fmt(bows[g])}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")


def read_arpa(path: Union[str, Path], unk: str = UNK) -> NgramLM:
    """Reads an ARPA file (as written by this module, KenLM or SRILM).

    Args:
      path: the ARPA file.
      unk: the unknown word of the model.
    Returns:
      The model.
    Raises:
      ValueError: if the header and the sections disagree.
    """
    expected: Dict[int, int] = {}
    logprobs: List[Dict[Ngram, float]] = []
    backoffs: List[Dict[Ngram, float]] = []
    n = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line == "\\data\\" or line == "\\end\\":
                continue
            if line.startswith("ngram ") and "=" in line:
                k, v = line[6:].split("=")
                expected[int(k)] = int(v)
            elif line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:].split("-")[0])
                logprobs.append({})
                backoffs.append({})
            else:
                fields = line.split()
                g = tuple(fields[1 : 1 + n])
                logprobs[n - 1][g] = float(fields[0])
                if len(fields) > n + 1:
                    backoffs[n - 1][g] = float(fields[n + 1])
    found = {k: len(level) for k, level in enumerate(logprobs, 1)}
    if found != expected:
        raise ValueError(f"{path}: header says {expected}, sections have {found}")
    return NgramLM(logprobs, backoffs, unk)
