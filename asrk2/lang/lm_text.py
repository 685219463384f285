"""The text an n-gram LM is trained on: read, checked, encoded as integers.

Bad lines are skipped and counted, never fatal: blank lines, lines of only
``<unk>`` (or only words outside the vocabulary), and lines that are not
UTF-8 (the first is named in the log). :func:`encode_text` turns sentences
into one int32 stream ``<s> w1 .. wk </s> <s> ...`` with word ids in sorted
string order, what :mod:`asrk2.lang.kneser_ney` counts.
"""

import logging
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

__all__ = ["BOS", "EOS", "UNK", "TextStats", "read_text_lines", "encode_text"]

log = logging.getLogger(__name__)

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"


@dataclass
class TextStats:
    """What reading the LM text kept and skipped.

    Attributes:
      sentences: lines used.
      words: words in them (``<s>``/``</s>`` not counted).
      empty: blank lines skipped.
      unk_only: lines skipped because every word was ``<unk>`` (or OOV).
      bad_utf8: lines skipped because they were not UTF-8.
    """

    sentences: int = 0
    words: int = 0
    empty: int = 0
    unk_only: int = 0
    bad_utf8: int = 0

    def log_summary(self, where: str = "LM text") -> None:
        log.info("%s: %d sentences, %d words", where, self.sentences, self.words)
        skipped = {"empty": self.empty, "only <unk>": self.unk_only,
                   "not UTF-8": self.bad_utf8}  # fmt: skip
        if any(skipped.values()):
            log.warning("%s: skipped lines: %s", where, ", ".join(
                f"{n} {what}" for what, n in skipped.items() if n))  # fmt: skip


def read_text_lines(path: Union[str, Path], stats: TextStats) -> Iterator[str]:
    """The lines of a text file; lines that are not UTF-8 are counted in
    ``stats.bad_utf8`` and skipped (with the first one's line number logged)."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                if not stats.bad_utf8:
                    log.warning("%s:%d is not UTF-8 (%s): skipped", path, number, e)
                stats.bad_utf8 += 1


def encode_text(
    lines: Iterable[str],
    vocabulary: Optional[Iterable[str]] = None,
    unk: str = UNK,
    stats: Optional[TextStats] = None,
) -> Tuple[np.ndarray, List[str], TextStats]:
    """Maps sentences to one int32 stream ``<s> w.. </s> <s> ...``.

    Args:
      lines: sentences, words separated by white space.
      vocabulary: if given, the words the model predicts; others become ``unk``.
      unk: the unknown word.
      stats: counts to add to (e.g. those of :func:`read_text_lines`).
    Returns:
      ``(tokens, words, stats)``: the stream, the word of each id (sorted),
      and what was kept and skipped (blank lines, lines of only ``unk``).
    """
    stats = stats or TextStats()
    fixed = vocabulary is not None
    ids = {w: i for i, w in enumerate(sorted(set(vocabulary or ()) | {BOS, EOS, unk}))}
    bos, eos, unk_id = ids[BOS], ids[EOS], ids[unk]
    tokens = array("i")
    for line in lines:
        words = line.split()
        if not words:
            stats.empty += 1
            continue
        if fixed:
            seq = [ids.get(w, unk_id) for w in words]
        else:
            seq = [ids.setdefault(w, len(ids)) for w in words]
        if seq.count(unk_id) == len(seq):
            stats.unk_only += 1
            continue
        tokens.append(bos)
        tokens.extend(seq)
        tokens.append(eos)
        stats.sentences += 1
        stats.words += len(seq)
    words_sorted = sorted(ids, key=ids.__getitem__)
    stream = np.frombuffer(tokens, dtype=np.int32)
    if not fixed:
        # Ids were given in order of appearance: renumber in string order.
        order = sorted(range(len(words_sorted)), key=words_sorted.__getitem__)
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        words_sorted = [words_sorted[i] for i in order]
        stream = rank[stream]
    return stream, words_sorted, stats
