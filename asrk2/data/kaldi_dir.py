"""Kaldi data directories (wav.scp, text, utt2spk, segments) as lhotse CutSets."""
import logging
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional

from lhotse import CutSet, SupervisionSet
from lhotse.audio import info as audio_info
from lhotse.kaldi import load_kaldi_data_dir
from lhotse.qa import fix_manifests, validate_recordings_and_supervisions

from asrk2.data.text import normalize_text
from asrk2.utils import atomic_path

__all__ = ["ImportReport", "import_kaldi_dir", "manifest_path"]

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What was kept and what was skipped (with ids) while importing a corpus."""

    num_cuts: int = 0
    skipped: Dict[str, List[str]] = field(default_factory=dict)

    def skip(self, reason: str, item_id: str) -> None:
        self.skipped.setdefault(reason, []).append(item_id)

    def summary(self) -> str:
        parts = [f"{self.num_cuts} cuts kept"]
        for reason, ids in sorted(self.skipped.items()):
            shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            parts.append(f"{len(ids)} skipped ({reason}: {shown})")
        return "; ".join(parts)


def manifest_path(output_dir: Path, prefix: str, kind: str, split: str) -> Path:
    """Where a manifest lives, icefall/lhotse style: ``{prefix}_{kind}_{split}.jsonl.gz``."""
    return Path(output_dir) / f"{prefix}_{kind}_{split}.jsonl.gz"


def _audio_problem(path: str) -> Optional[str]:
    """Why a wav.scp entry cannot be read, or None when it can."""
    if path.endswith("|"):
        return None  # a piped command; lhotse runs it when loading
    if not Path(path).is_file():
        return "missing audio file"
    try:
        audio_info(path)
    except Exception:  # any backend failure means the file is unusable
        return "unreadable audio"
    return None


def _readable_copy(data_dir: Path, tmp_dir: Path, report: ImportReport) -> Path:
    """Copies a Kaldi dir to ``tmp_dir`` without recordings whose audio is unusable.

    lhotse's Kaldi loader aborts on the first missing file; checking first lets
    us skip and count them instead (with ids in the log).
    """
    bad = set()
    for line in (data_dir / "wav.scp").read_text().splitlines():
        if not line.strip():
            continue
        rec_id, _, path = line.strip().partition(" ")
        problem = _audio_problem(path.strip())
        if problem:
            report.skip(problem, rec_id)
            log.warning("Skipping recording %s (%s): %s", rec_id, problem, path)
            bad.add(rec_id)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    segments = data_dir / "segments"
    bad_utts = set(bad)
    if segments.is_file():
        bad_utts = {
            ln.split()[0] for ln in segments.read_text().splitlines() if ln.split()[1:2] and ln.split()[1] in bad
        }
    for src in data_dir.iterdir():
        if not src.is_file():
            continue
        drop = bad if src.name in ("wav.scp", "reco2dur", "reco2num_samples") else bad_utts
        kept = [ln for ln in src.read_text().splitlines() if ln.split(" ", 1)[0] not in drop]
        (tmp_dir / src.name).write_text("\n".join(kept) + ("\n" if kept else ""))
    return tmp_dir


def _normalize_supervisions(sups: SupervisionSet, report: ImportReport) -> SupervisionSet:
    kept = []
    for sup in sups:
        text = normalize_text(sup.text or "")
        if not text:
            report.skip("empty transcript", sup.id)
            continue
        kept.append(replace(sup, text=text))
    return SupervisionSet.from_segments(kept)


def import_kaldi_dir(
    data_dir: Path,
    output_dir: Path,
    split: str,
    prefix: str = "kaldi",
    sampling_rate: int = 16000,
    num_jobs: int = 1,
) -> CutSet:
    """Imports a Kaldi data dir and writes lhotse manifests for it.

    Writes ``{prefix}_{recordings,supervisions,cuts}_{split}.jsonl.gz`` into
    ``output_dir`` (each atomically). Recordings whose audio file is missing and
    utterances whose normalised transcript is empty are skipped and counted;
    the ids are logged.

    Args:
      data_dir: a Kaldi data dir with at least ``wav.scp``, ``text``, ``utt2spk``.
      output_dir: where manifests go.
      split: name of the split, e.g. ``train``.
      prefix: corpus name used in the file names.
      sampling_rate: the sampling rate of the audio in ``wav.scp``.
      num_jobs: parallel jobs for reading durations.
    Returns:
      The CutSet, one cut per supervision.
    """
    data_dir = Path(data_dir)
    for name in ("wav.scp", "text"):
        if not (data_dir / name).is_file():
            raise FileNotFoundError(f"Kaldi data dir {data_dir} has no {name}")
    report = ImportReport()
    with tempfile.TemporaryDirectory() as tmp:
        readable = _readable_copy(data_dir, Path(tmp) / "data", report)
        recordings, supervisions, _ = load_kaldi_data_dir(
            readable, sampling_rate=sampling_rate, num_jobs=num_jobs
        )
    if supervisions is None:
        raise ValueError(f"{data_dir}: no supervisions (text/segments) found")
    supervisions = _normalize_supervisions(supervisions, report)
    recordings, supervisions = fix_manifests(recordings, supervisions)
    validate_recordings_and_supervisions(recordings, supervisions)
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    cuts = cuts.trim_to_supervisions(keep_overlapping=False).to_eager()
    report.num_cuts = len(cuts)
    log.info("%s/%s: %s", prefix, split, report.summary())
    for kind, manifest in (
        ("recordings", recordings),
        ("supervisions", supervisions),
        ("cuts", cuts),
    ):
        with atomic_path(manifest_path(output_dir, prefix, kind, split)) as tmp:
            manifest.to_file(tmp)
    return cuts
