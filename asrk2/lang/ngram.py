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

Training runs on integer arrays (:mod:`asrk2.lang.kneser_ney`, which also
writes ARPA files of 100M-word text directly); this module holds the model
as Python dicts, to query it, and reads and writes ARPA files of it.

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
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from asrk2.lang import kneser_ney
from asrk2.lang.kneser_ney import discounts_from_counts
from asrk2.lang.lm_text import BOS, EOS, UNK
from asrk2.utils import atomic_path

__all__ = [
    "BOS",
    "EOS",
    "UNK",
    "NgramLM",
    "count_ngrams",
    "kneser_ney_discounts",
    "train_kneser_ney",
    "arrays_to_lm",
    "compute_backoffs",
    "write_arpa",
    "read_arpa",
]

log = logging.getLogger(__name__)

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


def kneser_ney_discounts(counts: Iterable[int]) -> Discounts:
    """Modified Kneser-Ney discounts ``(D1, D2, D3+)`` of one order.

    Args:
      counts: the (adjusted) counts of every n-gram of that order.
    Returns:
      See :func:`asrk2.lang.kneser_ney.discounts_from_counts`.
    """
    t = Counter(c for c in counts if c <= 4)
    return discounts_from_counts(t[1], t[2], t[3], t[4])


def train_kneser_ney(
    sentences: Iterable[str],
    order: int = 3,
    vocabulary: Optional[Iterable[str]] = None,
    min_counts: Optional[Sequence[int]] = None,
    unk: str = UNK,
) -> NgramLM:
    """Trains an interpolated modified Kneser-Ney LM, as a model in memory.

    The estimation is :mod:`asrk2.lang.kneser_ney`'s; this returns it as an
    :class:`NgramLM` (one dict entry per n-gram), for models small enough to
    query in Python. For large text write the ARPA file directly with
    :func:`asrk2.lang.kneser_ney.train_arpa`.

    Args:
      sentences: normalised sentences, words separated by white space; blank
        lines and lines of only ``unk`` are skipped (and counted in the log).
      order: the n-gram order, e.g. 3 for the decoding graph, 4 for rescoring.
      vocabulary: if given, the words the model predicts: words outside it
        are counted as ``unk``, and words in it never seen get the uniform
        share of the unigram distribution. By default, the words of the text.
      min_counts: optional raw-count threshold per order (``min_counts[n-1]``
        for order n; unigrams are never pruned), see
        :func:`asrk2.lang.kneser_ney.prune_ngrams`.
      unk: the unknown word, always in the model.
    Returns:
      The model, normalised: each history's probabilities sum to one over
      the vocabulary plus ``</s>`` and ``unk``.
    """
    arrays = kneser_ney.train_arrays(sentences, order, vocabulary, min_counts, unk=unk)
    return arrays_to_lm(arrays)


def arrays_to_lm(arrays: "kneser_ney.NgramArrays") -> NgramLM:
    """An estimated :class:`~asrk2.lang.kneser_ney.NgramArrays` as an NgramLM."""
    logprobs: List[Dict[Ngram, float]] = []
    backoffs: List[Dict[Ngram, float]] = []
    for n, level in enumerate(arrays.orders, 1):
        grams = kneser_ney.ngram_tuples(arrays, n)
        logprobs.append(dict(zip(grams, level.log10_prob.tolist())))
        bows = level.log10_backoff.tolist() if n < arrays.order else []
        backoffs.append({g: b for g, b in zip(grams, bows) if not math.isnan(b)})
    return NgramLM(logprobs, backoffs[:-1], arrays.unk)


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
