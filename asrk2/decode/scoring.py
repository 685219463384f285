"""Word (or character) error rates, Kaldi/icefall-style result files.

Alignments and edit distances come from kaldialign, so the counts match
Kaldi's ``compute-wer`` and icefall's ``errs-*.txt``.

Example::

    results = [("utt1", ["A", "B"], ["A", "C"])]  # (cut_id, ref_words, hyp_words)
    stats = compute_wer(results)
    print(stats.wer_line())  # %WER 50.00 [ 1 / 2, 0 ins, 0 del, 1 sub ]
    write_errs("exp/errs-test.txt", results, stats)
"""
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import kaldialign

from asrk2.utils import atomic_write_text

__all__ = [
    "ErrorStats",
    "Result",
    "compute_wer",
    "merge_wer_summaries",
    "read_text_results",
    "read_wer_summary",
    "score_text_files",
    "write_ctm",
    "write_errs",
    "write_recogs",
    "write_wer_summary",
]

# (cut_id, ref_words, hyp_words)
Result = Tuple[str, List[str], List[str]]
PathLike = Union[str, Path]

# How many ids a warning or error message lists before it says "... N more".
_MAX_IDS_SHOWN = 20


@dataclass
class ErrorStats:
    """Error counts summed over a test set.

    Attributes:
      num_ref_words: Number of reference words (or characters).
      subs: Substitutions.
      ins: Insertions.
      dels: Deletions.
    """

    num_ref_words: int = 0
    subs: int = 0
    ins: int = 0
    dels: int = 0

    @property
    def errors(self) -> int:
        """Total number of errors, subs + ins + dels."""
        return self.subs + self.ins + self.dels

    @property
    def wer(self) -> float:
        """Error rate in percent; inf if there are errors but no reference words."""
        if self.num_ref_words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.num_ref_words

    def wer_line(self, label: str = "WER") -> str:
        """Kaldi compute-wer's summary line.

        Args:
          label: "WER" or "CER".

        Returns:
          E.g. ``%WER 12.34 [ 12 / 100, 3 ins, 4 del, 5 sub ]``.
        """
        return (
            f"%{label} {self.wer:.2f} [ {self.errors} / {self.num_ref_words}, "
            f"{self.ins} ins, {self.dels} del, {self.subs} sub ]"
        )


def _eps_for(ref: Sequence[str], hyp: Sequence[str]) -> str:
    """Picks an epsilon symbol that occurs in neither sequence."""
    eps = "*"
    present = set(ref) | set(hyp)
    while eps in present:
        eps += "*"
    return eps


def _align(ref: Sequence[str], hyp: Sequence[str]) -> Tuple[List[Tuple[str, str]], str]:
    """Aligns ref with hyp; returns the (ref, hyp) pairs and the epsilon used."""
    eps = _eps_for(ref, hyp)
    return kaldialign.align(list(ref), list(hyp), eps), eps


def compute_wer(results: Sequence[Result]) -> ErrorStats:
    """Sums substitutions, insertions and deletions over utterances.

    Args:
      results:
        (cut_id, ref_words, hyp_words) per utterance.

    Returns:
      The summed :class:`ErrorStats`.
    """
    stats = ErrorStats()
    for _, ref, hyp in results:
        pairs, eps = _align(ref, hyp)
        stats.num_ref_words += len(ref)
        for r, h in pairs:
            if r == eps:
                stats.ins += 1
            elif h == eps:
                stats.dels += 1
            elif r != h:
                stats.subs += 1
    return stats


def write_ctm(
    path: PathLike,
    words_per_utt: Sequence[Tuple[str, Sequence[Any]]],
    channel: str = "1",
) -> None:
    """Writes a Kaldi CTM file: ``utt channel start duration word [confidence]``.

    Args:
      path: the file (written atomically).
      words_per_utt: ``(utterance id, words)`` in output order; each word has
        ``word``, ``start`` and ``end`` in seconds and a ``confidence``
        (None: the column is left out), e.g. :class:`~asrk2.decode.alignment.
        WordTime`.
      channel: the channel column (Kaldi's is ``1`` or ``A``).
    """
    lines = []
    for utt, words in words_per_utt:
        for w in words:
            line = f"{utt} {channel} {w.start:.2f} {w.end - w.start:.2f} {w.word}"
            if w.confidence is not None:
                line += f" {w.confidence:.3f}"
            lines.append(line)
    atomic_write_text(Path(path), "".join(line + "\n" for line in lines))


def write_recogs(path: PathLike, results: Sequence[Result]) -> None:
    """Writes icefall-style ``recogs-*.txt``: a ref and a hyp line per cut.

    Args:
      path:
        Output file, written atomically.
      results:
        (cut_id, ref_words, hyp_words) per utterance; written sorted by cut id.
    """
    lines = []
    for cut_id, ref, hyp in sorted(results, key=lambda r: r[0]):
        lines.append(f"{cut_id}:\tref={list(ref)}")
        lines.append(f"{cut_id}:\thyp={list(hyp)}")
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def _utterance_line(cut_id: str, ref: Sequence[str], hyp: Sequence[str]) -> str:
    """Formats one alignment: correct words as is, errors as ``(ref->hyp)``."""
    pairs, eps = _align(ref, hyp)
    tokens = [
        r if r == h else f"({'*' if r == eps else r}->{'*' if h == eps else h})"
        for r, h in pairs
    ]
    return f"{cut_id}:\t" + " ".join(tokens)


def _count_errors(results: Sequence[Result]) -> Tuple[Counter, Counter, Counter]:
    """Counts substitution pairs, deleted words and inserted words."""
    subs: Counter = Counter()
    dels: Counter = Counter()
    ins: Counter = Counter()
    for _, ref, hyp in results:
        pairs, eps = _align(ref, hyp)
        for r, h in pairs:
            if r == eps:
                ins[h] += 1
            elif h == eps:
                dels[r] += 1
            elif r != h:
                subs[(r, h)] += 1
    return subs, dels, ins


def _most_common(counter: Counter) -> List[Tuple[Any, int]]:
    """Items by count descending, ties by key, so files are reproducible."""
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def write_errs(
    path: PathLike, results: Sequence[Result], stats: ErrorStats, label: str = "WER"
) -> None:
    """Writes an icefall/Kaldi-style ``errs-*.txt`` report.

    Layout: the ``%WER`` summary line, per-utterance alignments sorted by
    cut id (``(a->b)`` substitution, ``(a->*)`` deletion, ``(*->b)``
    insertion), then substitutions, deletions and insertions with counts,
    most frequent first.

    Args:
      path:
        Output file, written atomically.
      results:
        (cut_id, ref_words, hyp_words) per utterance.
      stats:
        Totals for the header, normally ``compute_wer(results)``.
      label:
        Name in the header, "WER" or "CER".
    """
    subs, dels, ins = _count_errors(results)
    lines = [stats.wer_line(label), "", "PER-UTT DETAILS: corr or (ref->hyp)"]
    for cut_id, ref, hyp in sorted(results, key=lambda r: r[0]):
        lines.append(_utterance_line(cut_id, ref, hyp))
    lines += ["", "SUBSTITUTIONS: count ref -> hyp"]
    lines += [f"{n}   {r} -> {h}" for (r, h), n in _most_common(subs)]
    lines += ["", "DELETIONS: count ref"]
    lines += [f"{n}   {w}" for w, n in _most_common(dels)]
    lines += ["", "INSERTIONS: count hyp"]
    lines += [f"{n}   {w}" for w, n in _most_common(ins)]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def write_wer_summary(path: PathLike, rows: Dict[str, float]) -> None:
    """Writes a ``settings<TAB>WER`` table, best (lowest WER) first.

    Args:
      path:
        Output file, written atomically.
      rows:
        WER in percent per decoding method/setting, e.g. ``{"ctc-greedy": 7.1}``.
    """
    lines = ["settings\tWER"]
    for name, wer in sorted(rows.items(), key=lambda kv: (kv[1], kv[0])):
        lines.append(f"{name}\t{wer:.2f}")
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_wer_summary(path: PathLike) -> Dict[str, float]:
    """Reads a file written by :func:`write_wer_summary`.

    Args:
      path:
        A ``settings<TAB>WER`` file.

    Returns:
      WER in percent per setting, in file order.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: a bad header, a line that is not ``name<TAB>number`` or a
        repeated name, naming ``path:line``.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["settings", "WER"]:
        raise ValueError(f"{path}:1: expected the header 'settings<TAB>WER'")
    rows: Dict[str, float] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        try:
            if len(fields) != 2 or not fields[0]:
                raise ValueError
            wer = float(fields[1])
        except ValueError:
            raise ValueError(
                f"{path}:{lineno}: expected 'setting<TAB>WER', got {line!r}"
            ) from None
        if fields[0] in rows:
            raise ValueError(f"{path}:{lineno}: repeated setting {fields[0]!r}")
        rows[fields[0]] = wer
    return rows


# ``nbest-rescoring-lm_scale_0.5`` -> ``nbest-rescoring``: the scale sweeps
# of :mod:`asrk2.decode.methods` (``-lm_scale_X``, ``-scale_X``).
_SCALE_SUFFIX = re.compile(r"^(?P<method>.+)-(?:lm_)?scale_[-+0-9.e]+$")


def _method_of(setting: str) -> str:
    """The method a setting belongs to: its name without a scale suffix."""
    match = _SCALE_SUFFIX.match(setting)
    return match.group("method") if match else setting


def merge_wer_summaries(
    paths: Sequence[PathLike],
    best_scale_only: bool = False,
    choose_on: Optional[Dict[str, float]] = None,
) -> Dict[str, float]:
    """Merges several ``wer-summary-*.txt`` files into one table.

    Args:
      paths:
        Files written by :func:`write_wer_summary`, e.g. the offline and the
        streaming summary of one test set.
      best_scale_only:
        Keep, of the settings that differ only in a scale suffix
        (``nbest-rescoring-lm_scale_0.3``, ``...-lm_scale_0.5``), just the one
        with the lowest WER (ties: the first in name order).
      choose_on:
        With ``best_scale_only``, the WERs that pick the scale instead of the
        merged ones: a dev set's summary, so that the test WER reported is not
        chosen on the test set. A method with one setting needs none.

    Returns:
      WER in percent per setting; write it with :func:`write_wer_summary`.

    Raises:
      ValueError: a setting appears in two files (naming both), a file
        is malformed (see :func:`read_wer_summary`), or ``choose_on`` lacks a
        setting it has to choose between (named).
    """
    merged: Dict[str, float] = {}
    origin: Dict[str, PathLike] = {}
    for path in paths:
        for setting, wer in read_wer_summary(path).items():
            if setting in merged:
                raise ValueError(
                    f"setting {setting!r} is in both {origin[setting]} and {path}"
                )
            merged[setting], origin[setting] = wer, path
    if not best_scale_only:
        return merged
    by_method: Dict[str, List[str]] = {}
    for setting in sorted(merged):
        by_method.setdefault(_method_of(setting), []).append(setting)
    rank = merged if choose_on is None else choose_on
    kept: Dict[str, float] = {}
    for method, settings in by_method.items():
        missing = [s for s in settings if s not in rank]
        if len(settings) > 1 and missing:
            raise ValueError(
                f"cannot choose the scale of {method}: no WER to choose on for "
                f"{', '.join(missing)}"
            )
        best = min(settings, key=lambda s: rank.get(s, 0.0))  # ties: name order
        kept[best] = merged[best]
    return kept


def _read_kaldi_text(path: PathLike) -> Dict[str, List[str]]:
    """Reads a Kaldi ``text`` file (``utt_id word word ...``) into a dict.

    An id alone on a line is an empty transcript; empty lines and repeated
    ids raise ValueError naming ``path:line``.
    """
    texts: Dict[str, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                raise ValueError(f"{path}:{lineno}: empty line")
            if fields[0] in texts:
                raise ValueError(
                    f"{path}:{lineno}: duplicate utterance id {fields[0]!r}"
                )
            texts[fields[0]] = fields[1:]
    return texts


def _show_ids(ids: Sequence[str]) -> str:
    """Joins ids for a message, eliding all but the first few."""
    shown = " ".join(ids[:_MAX_IDS_SHOWN])
    more = len(ids) - _MAX_IDS_SHOWN
    return shown + (f" ... ({more} more)" if more > 0 else "")


def read_text_results(
    ref_path: PathLike, hyp_path: PathLike, char_level: bool = False
) -> List[Result]:
    """Pairs up a reference and a hypothesis Kaldi ``text`` file.

    Utterances in ref but not in hyp are kept with an empty hypothesis
    (all deletions) and logged as a warning with their ids. Utterances in
    hyp but not in ref raise ValueError: they cannot be scored, and they
    usually mean the wrong reference file.

    Args:
      ref_path:
        Reference ``text`` file.
      hyp_path:
        Hypothesis ``text`` file.
      char_level:
        If True, split transcripts into characters (spaces dropped) for CER.

    Returns:
      (utt_id, ref_units, hyp_units) sorted by utterance id.
    """
    refs = _read_kaldi_text(ref_path)
    hyps = _read_kaldi_text(hyp_path)
    extra = sorted(set(hyps) - set(refs))
    if extra:
        raise ValueError(
            f"{len(extra)} utterance(s) in {hyp_path} are not in {ref_path}: "
            f"{_show_ids(extra)}"
        )
    missing = sorted(set(refs) - set(hyps))
    if missing:
        logging.warning(
            "%d utterance(s) of %s missing from %s, scored as deletions: %s",
            len(missing),
            ref_path,
            hyp_path,
            _show_ids(missing),
        )
    results = []
    for utt in sorted(refs):
        ref, hyp = refs[utt], hyps.get(utt, [])
        if char_level:
            ref, hyp = list("".join(ref)), list("".join(hyp))
        results.append((utt, ref, hyp))
    return results


def score_text_files(
    ref_path: PathLike, hyp_path: PathLike, char_level: bool = False
) -> ErrorStats:
    """Scores a hypothesis ``text`` file against a reference one.

    Args:
      ref_path:
        Reference ``text`` file (``utt_id word word ...``).
      hyp_path:
        Hypothesis ``text`` file, same format.
      char_level:
        If True, count character errors (CER) instead of word errors.

    Returns:
      The summed :class:`ErrorStats`; see :func:`read_text_results` for
      how missing and extra utterances are treated.
    """
    return compute_wer(read_text_results(ref_path, hyp_path, char_level))
