"""VoxPopuli English ASR (~540 h of European Parliament speech) as CutSets.

lhotse's recipe (``lhotse.recipes.voxpopuli``, task ``asr``, language ``en``)
reads the session recordings ``raw_audios/en/<year>/<session>_{en,original}.ogg``
and the segment table ``asr_en.tsv.gz`` (``|``-separated; it uses the columns
``session_id, start_time, end_time, split, speaker_id, gender, normed_text,
original_text``). The recipe downloads that table into its output directory
when it is not there, so we place it there first from a local copy.

Before the recipe runs, every session file is checked; the recipe aborts on
the first undecodable one, so it sees a shadow directory of links to the
readable files only (the manifests point at the real files). Undecodable and
missing sessions, empty transcripts and transcripts with unknown characters are
skipped and counted with their ids; sessions at another rate are resampled.
Output per split: ``voxpopuli_{recordings,supervisions,cuts}_{split}.jsonl.gz``
with cuts trimmed to utterances, and ``voxpopuli_report_{split}.json``.
"""

import csv
import gzip
import logging
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

from lhotse import Recording
from lhotse.recipes.voxpopuli import RecordingIdFn
from lhotse.utils import fastcopy

from asrk2.data.audio import probe_audio
from asrk2.data.manifests import CorpusWriter, manifests_exist, report_path
from asrk2.data.report import ImportReport

__all__ = ["VOXPOPULI_SPLITS", "find_annotations", "prepare_voxpopuli"]

log = logging.getLogger(__name__)

VOXPOPULI_SPLITS = ("train", "dev", "test")
_PREFIX = "voxpopuli"
_LANG = "en"
_TSV = f"asr_{_LANG}.tsv.gz"
_URL = f"https://dl.fbaipublicfiles.com/voxpopuli/annotations/asr/{_TSV}"


def find_annotations(corpus_dir: Path, annotations: Optional[Path] = None) -> Path:
    """Finds ``asr_en.tsv.gz``: the given path, or in the corpus dir.

    Raises:
      FileNotFoundError: with the download URL, when there is none.
    """
    candidates = (
        [annotations]
        if annotations
        else [
            corpus_dir / _TSV,
            corpus_dir / "annotations" / _TSV,
            corpus_dir / "transcribed_data" / _LANG / _TSV,
        ]
    )
    for path in candidates:
        if path is not None and Path(path).is_file():
            return Path(path)
    raise FileNotFoundError(
        f"no {_TSV} at {', '.join(map(str, candidates))}; download it from {_URL}"
    )


def _audio_dir(corpus_dir: Path) -> Path:
    """``raw_audios/en``, or ``raw_audios/original`` (VoxPopuli's "asr" download)."""
    for name in (_LANG, "original"):
        path = corpus_dir / "raw_audios" / name
        if path.is_dir():
            return path
    raise FileNotFoundError(
        f"{corpus_dir} has no raw_audios/{_LANG} (or raw_audios/original)"
    )


def _sessions_by_split(tsv: Path, splits: Sequence[str]) -> Dict[str, Set[str]]:
    """The session ids each split of the segment table refers to."""
    sessions: Dict[str, Set[str]] = {s: set() for s in splits}
    with gzip.open(tsv, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="|"):
            if row["split"] in sessions:
                sessions[row["split"]].add(row["session_id"])
    return sessions


def _shadow_audio(
    audio_dir: Path, shadow: Path
) -> Tuple[Dict[str, Path], Dict[str, Optional[str]]]:
    """Links the readable ``*.ogg`` files under ``shadow/raw_audios/en``.

    Returns:
      link -> real file for the readable sessions, and session id -> problem
      for every session file found (None when readable).
    """
    to_id = RecordingIdFn(language=_LANG)
    links: Dict[str, Path] = {}
    status: Dict[str, Optional[str]] = {}
    for path in sorted(audio_dir.rglob("*.ogg")):
        rec_id = to_id(path)
        _, status[rec_id] = probe_audio(str(path))
        if status[rec_id]:
            log.warning("Session %s is unusable (%s): %s", rec_id, status[rec_id], path)
            continue
        link = shadow / "raw_audios" / _LANG / path.relative_to(audio_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path.resolve(), link)
        links[str(link)] = path.resolve()
    return links, status


def _real_paths(recording: Recording, links: Dict[str, Path]) -> Recording:
    sources = [
        fastcopy(s, source=str(links.get(s.source, s.source)))
        for s in recording.sources
    ]
    return fastcopy(recording, sources=sources)


def _session_reports(
    tsv: Path, splits: Sequence[str], status: Dict[str, Optional[str]]
) -> Dict[str, ImportReport]:
    """A report per split, starting with its missing and undecodable sessions."""
    reports = {}
    for split, sessions in _sessions_by_split(tsv, splits).items():
        reports[split] = ImportReport()
        for session in sorted(sessions):
            problem = status.get(session, "missing audio file")
            if problem:
                if session not in status:
                    log.warning("Session %s (%s) has no audio file", session, split)
                reports[split].skip(problem, session)
    return reports


def _run_recipe(
    corpus_dir: Path, tsv: Path, splits: Sequence[str], num_jobs: int
) -> Tuple[dict, Dict[str, Path], Dict[str, ImportReport]]:
    """lhotse's recipe on a shadow corpus of readable files.

    Returns:
      Its manifests, the link -> real path map and a report per split.
    """
    from lhotse.recipes.voxpopuli import prepare_voxpopuli as lhotse_prepare

    audio_dir = _audio_dir(corpus_dir)
    with tempfile.TemporaryDirectory(prefix="voxpopuli-") as tmp:
        links, status = _shadow_audio(audio_dir, Path(tmp) / "corpus")
        if not links:
            raise FileNotFoundError(f"no readable .ogg session under {audio_dir}")
        raw_out = Path(tmp) / "raw"
        raw_out.mkdir()
        shutil.copyfile(
            tsv, raw_out / _TSV
        )  # where the recipe looks before downloading
        manifests = lhotse_prepare(
            Path(tmp) / "corpus", raw_out, task="asr", lang=_LANG, num_jobs=num_jobs
        )
    return manifests, links, _session_reports(tsv, splits, status)


def prepare_voxpopuli(
    corpus_dir: Path,
    output_dir: Path,
    annotations: Optional[Path] = None,
    splits: Sequence[str] = VOXPOPULI_SPLITS,
    num_jobs: int = 1,
) -> Dict[str, ImportReport]:
    """Prepares VoxPopuli English ASR train/dev/test as trimmed lhotse manifests.

    Splits whose manifests and report exist already are not redone.

    Args:
      corpus_dir: holds ``raw_audios/en/<year>/*.ogg``.
      output_dir: where ``voxpopuli_*_{split}.jsonl.gz`` and reports go.
      annotations: ``asr_en.tsv.gz``; default: looked up in ``corpus_dir``.
      splits: any of train, dev, test.
      num_jobs: parallel jobs for lhotse's audio scan.
    Returns:
      The import report of each split.
    Raises:
      FileNotFoundError: without audio or without the annotation table.
    """
    corpus_dir, output_dir = Path(corpus_dir).resolve(), Path(output_dir)
    bad = [s for s in splits if s not in VOXPOPULI_SPLITS]
    if bad:
        raise ValueError(
            f"unknown VoxPopuli splits {bad}; choose from {VOXPOPULI_SPLITS}"
        )
    todo = [s for s in splits if not manifests_exist(output_dir, _PREFIX, s)]
    reports = {
        s: ImportReport.read(report_path(output_dir, _PREFIX, s))
        for s in splits
        if s not in todo
    }
    if not todo:
        return reports
    tsv = find_annotations(corpus_dir, annotations)
    manifests, links, split_reports = _run_recipe(corpus_dir, tsv, todo, num_jobs)
    for split in todo:
        report = split_reports[split]
        by_rec: Dict[str, List] = defaultdict(list)
        for sup in manifests[split]["supervisions"]:
            by_rec[sup.recording_id].append(sup)
        with CorpusWriter(output_dir, _PREFIX, split, 16000, report=report) as writer:
            for rec in manifests[split]["recordings"]:
                writer.write(_real_paths(rec, links), by_rec[rec.id])
        reports[split] = report
    return reports
