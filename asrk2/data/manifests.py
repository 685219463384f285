"""Writing a corpus split as lhotse manifests, streaming and atomically.

Every corpus importer (Kaldi dirs, GigaSpeech, VoxPopuli) ends the same way:
recordings with their supervisions go in, and three manifests come out,
``{prefix}_{recordings,supervisions,cuts}_{split}.jsonl.gz``, where the cuts are
already trimmed to supervisions (one cut per utterance), so later stages never
load a whole hours-long recording. :class:`CorpusWriter` does this one
recording at a time, so memory does not grow with the corpus, and renames the
files into place only when the split is complete.
"""

import contextlib
import logging
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from lhotse import (
    CutSet,
    MonoCut,
    Recording,
    RecordingSet,
    SupervisionSegment,
    SupervisionSet,
)
from lhotse.utils import fastcopy

from asrk2.data.report import ImportReport
from asrk2.data.text import clean_text
from asrk2.utils import atomic_path

__all__ = [
    "CorpusWriter", "TextCleaner", "load_cuts_or_exit", "manifest_path",
    "manifests_exist",
]  # fmt: skip

log = logging.getLogger(__name__)

KINDS = ("recordings", "supervisions", "cuts")
# A segment may end this far past the end of its audio (rounding in corpus
# metadata) and is then clipped; further out it is dropped.
_END_TOLERANCE = 0.05

TextCleaner = Callable[[SupervisionSegment, ImportReport], Optional[str]]


def manifest_path(output_dir: Path, prefix: str, kind: str, split: str) -> Path:
    """Where a manifest lives (icefall style): ``{prefix}_{kind}_{split}.jsonl.gz``."""
    return Path(output_dir) / f"{prefix}_{kind}_{split}.jsonl.gz"


def report_path(output_dir: Path, prefix: str, split: str) -> Path:
    """Where the import report of a split lives: ``{prefix}_report_{split}.json``."""
    return Path(output_dir) / f"{prefix}_report_{split}.json"


def manifests_exist(output_dir: Path, prefix: str, split: str) -> bool:
    """True when all three manifests and the report of a split are written."""
    paths = [manifest_path(output_dir, prefix, k, split) for k in KINDS]
    return all(p.is_file() for p in paths + [report_path(output_dir, prefix, split)])


def default_text_cleaner(
    sup: SupervisionSegment, report: ImportReport
) -> Optional[str]:
    """Normalises ``sup.text``; returns None (and counts it) when unusable."""
    cleaned = clean_text(sup.text)
    if cleaned.problem is not None:
        if cleaned.detail:
            log.warning(
                "%s: %s %r in %r", sup.id, cleaned.problem, cleaned.detail, sup.text
            )
        report.skip(cleaned.problem, sup.id)
        return None
    return cleaned.text


class CorpusWriter:
    """Streams one split of a corpus into recordings/supervisions/cuts manifests.

    Use as a context manager; call :meth:`write` once per recording. On a clean
    exit the three manifests and a JSON report are renamed into place; on an
    exception nothing is left behind.

    Args:
      output_dir: where the manifests go.
      prefix: corpus name in the file names, e.g. ``gigaspeech``.
      split: split name, e.g. ``XS`` or ``train``.
      sampling_rate: recordings at another rate are resampled (lazily, by
        lhotse when loading) and counted as fixed.
      text_cleaner: turns a supervision into its final text, or None to skip
        it; by default :func:`asrk2.data.text.clean_text`.
      report: the report to add to; a new one by default.
      channel: the channel of a multi-channel recording its cuts use (as
        Kaldi's ``--channel``; features are computed from one channel); such
        recordings are counted as fixed, and those without that channel are
        skipped.
    """

    def __init__(
        self,
        output_dir: Path,
        prefix: str,
        split: str,
        sampling_rate: int = 16000,
        text_cleaner: TextCleaner = default_text_cleaner,
        report: Optional[ImportReport] = None,
        channel: int = 0,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.channel = channel
        self.prefix, self.split = prefix, split
        self.sampling_rate = sampling_rate
        self.text_cleaner = text_cleaner
        self.report = report if report is not None else ImportReport()
        self._stack: Optional[contextlib.ExitStack] = None

    def __enter__(self) -> "CorpusWriter":
        stack = contextlib.ExitStack()
        classes = (RecordingSet, SupervisionSet, CutSet)
        self._writers = []
        for kind, cls in zip(KINDS, classes):
            tmp = stack.enter_context(
                atomic_path(
                    manifest_path(self.output_dir, self.prefix, kind, self.split)
                )
            )
            self._writers.append(
                stack.enter_context(cls.open_writer(tmp, overwrite=True))
            )
        self._stack = stack
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        stack, self._stack = self._stack, None
        assert stack is not None, "__exit__ without __enter__"
        stack.__exit__(exc_type, exc, tb)
        if exc_type is None:
            self.report.write(report_path(self.output_dir, self.prefix, self.split))
            log.info("%s/%s: %s", self.prefix, self.split, self.report.summary())

    def _fit_to_audio(
        self, recording: Recording, sup: SupervisionSegment
    ) -> Optional[SupervisionSegment]:
        """Clips a segment ending slightly past its audio; None if far past."""
        if sup.start < 0 or sup.duration <= 0 or sup.start >= recording.duration:
            self.report.skip("segment outside audio", sup.id)
            return None
        if sup.end > recording.duration:
            if sup.end > recording.duration + _END_TOLERANCE:
                self.report.skip("segment outside audio", sup.id)
                return None
            self.report.fix("segment clipped to audio end", sup.id)
            return fastcopy(sup, duration=round(recording.duration - sup.start, 6))
        return sup

    def write(
        self, recording: Recording, supervisions: Sequence[SupervisionSegment]
    ) -> int:
        """Cleans and writes one recording with its supervisions.

        Args:
          recording: the recording; resampled to ``sampling_rate`` if needed.
          supervisions: its segments, in any order.
        Returns:
          The number of cuts (utterances) written for it.
        """
        if self.channel not in recording.channel_ids:
            self.report.skip(f"no channel {self.channel}", recording.id)
            return 0
        if recording.num_channels > 1:
            self.report.fix(
                f"{recording.num_channels}-channel audio: channel {self.channel} used",
                recording.id,
            )
        if recording.sampling_rate != self.sampling_rate:
            self.report.fix(
                f"resampled {recording.sampling_rate} -> {self.sampling_rate} Hz",
                recording.id,
            )
            recording = recording.resample(self.sampling_rate)
        kept: List[SupervisionSegment] = []
        for sup in sorted(supervisions, key=lambda s: (s.start, s.id)):
            text = self.text_cleaner(sup, self.report)
            if text is None:
                continue
            sup = self._fit_to_audio(recording, fastcopy(sup, text=text))
            if sup is not None:
                kept.append(sup)
        if not kept:
            return 0
        rec_writer, sup_writer, cut_writer = self._writers
        rec_writer.write(recording)
        cut = MonoCut(
            id=recording.id,
            start=0.0,
            duration=recording.duration,
            channel=self.channel,
            recording=recording,
            supervisions=[fastcopy(sup, channel=self.channel) for sup in kept],
        )
        for sup in kept:
            sup_writer.write(sup)
        for trimmed in cut.trim_to_supervisions(keep_overlapping=False):
            cut_writer.write(trimmed)
            self.report.num_cuts += 1
            self.report.num_seconds += trimmed.duration
        return len(kept)


def load_cuts_or_exit(path: Path) -> CutSet:
    """Reads a cut manifest for a command-line script, or exits with one line.

    lhotse returns None for a manifest with no cuts; a missing, unreadable or
    empty manifest ends the program with a message naming the file (no
    traceback), since no stage can do anything with it.

    Args:
      path: a lhotse cut manifest (``.jsonl.gz``, ``.jsonl``, ...).
    Returns:
      The cuts (eager).
    """
    try:
        cuts = CutSet.from_file(path)
    except FileNotFoundError:
        sys.exit(f"error: {path}: no such cut manifest")
    except Exception as e:  # corrupt gzip, bad JSON: name the file, not a traceback
        sys.exit(f"error: {path}: cannot read the cut manifest: {e}")
    if cuts is None or next(iter(cuts), None) is None:
        sys.exit(f"error: {path}: the cut manifest holds no cuts")
    return cuts
