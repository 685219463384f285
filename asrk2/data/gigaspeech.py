"""GigaSpeech (10,000 h of English podcasts, YouTube and audiobooks) as CutSets.

lhotse's recipe (``lhotse.recipes.gigaspeech``, which reads ``GigaSpeech.json``
with speechcolab) makes one cut per long recording. This module then applies
the text conventions of GigaSpeech's own scoring (``utils/gigaspeech_scoring.py``
in the GigaSpeech repository, followed by icefall's recipe):

* punctuation tags ``<COMMA> <PERIOD> <QUESTIONMARK> <EXCLAMATIONPOINT>`` are
  dropped from transcripts;
* utterances holding a garbage tag ``<SIL> <MUSIC> <NOISE> <OTHER>`` are not
  speech to learn from and are removed, counted with their ids;
* conversational fillers (``UH``, ``UM``, ...) stay in the training text;
  scoring removes them from both sides (:data:`CONVERSATIONAL_FILLERS`).

The result is written per subset as ``gigaspeech_{recordings,supervisions,
cuts}_{SUBSET}.jsonl.gz`` with cuts trimmed to utterances, streaming one
recording at a time, so the XL subset (38k recordings, 8M utterances) never
sits in memory. lhotse's raw per-recording manifests are kept in ``raw/``.
"""

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

from lhotse import CutSet, SupervisionSegment

from asrk2.data.audio import probe_audio
from asrk2.data.manifests import CorpusWriter, manifests_exist, report_path
from asrk2.data.report import ImportReport
from asrk2.data.text import clean_text

__all__ = [
    "CONVERSATIONAL_FILLERS",
    "GARBAGE_TAGS",
    "GIGASPEECH_SUBSETS",
    "PUNCTUATION_TAGS",
    "gigaspeech_text",
    "prepare_gigaspeech",
]

log = logging.getLogger(__name__)

GIGASPEECH_SUBSETS = ("XS", "S", "M", "L", "XL", "DEV", "TEST")
PUNCTUATION_TAGS = ("<COMMA>", "<PERIOD>", "<QUESTIONMARK>", "<EXCLAMATIONPOINT>")
GARBAGE_TAGS = ("<SIL>", "<MUSIC>", "<NOISE>", "<OTHER>")
CONVERSATIONAL_FILLERS = (
    "UH",
    "UHH",
    "UM",
    "EH",
    "MM",
    "HM",
    "AH",
    "HUH",
    "HA",
    "ER",
    "OOF",
    "HEE",
    "ACH",
    "EEE",
    "EW",
)
_PUNCTUATION = re.compile("|".join(map(re.escape, PUNCTUATION_TAGS)))
_GARBAGE = re.compile("|".join(map(re.escape, GARBAGE_TAGS)))
_PREFIX = "gigaspeech"


def gigaspeech_text(text_tn: Optional[str]) -> Optional[str]:
    """GigaSpeech's ``text_tn`` as training text, or None for a garbage utterance.

    Args:
      text_tn: e.g. ``"AS THEY'RE LEAVING <COMMA> CAN KASH PULL ZAHRA ASIDE <PERIOD>"``.
    Returns:
      e.g. ``"AS THEY'RE LEAVING CAN KASH PULL ZAHRA ASIDE"``; None when the
      text holds ``<SIL>``, ``<MUSIC>``, ``<NOISE>`` or ``<OTHER>``.
    """
    if _GARBAGE.search(text_tn or ""):
        return None
    return _PUNCTUATION.sub(" ", text_tn or "")


def _clean_gigaspeech(sup: SupervisionSegment, report: ImportReport) -> Optional[str]:
    text = gigaspeech_text(sup.text)
    if text is None:
        report.skip("garbage utterance", sup.id)
        return None
    cleaned = clean_text(text)
    if cleaned.problem:
        report.skip(cleaned.problem, sup.id)
        return None
    return cleaned.text


def _run_lhotse_recipe(
    corpus_dir: Path, raw_dir: Path, subset: str, num_jobs: int
) -> Path:
    """Runs lhotse's recipe for one subset; its manifests appear in ``raw_dir`` whole.

    lhotse writes its three files in place and treats existing files as done,
    so an interrupted run would look finished; running it in a scratch
    directory and moving the files afterwards avoids that.

    Returns:
      The raw cuts manifest (one cut per recording).
    """
    from lhotse.recipes.gigaspeech import prepare_gigaspeech as lhotse_prepare

    names = [
        f"{_PREFIX}_{k}_{subset}.jsonl.gz"
        for k in ("recordings", "supervisions", "cuts")
    ]
    if all((raw_dir / n).is_file() for n in names):
        log.info("GigaSpeech %s: reusing lhotse manifests in %s", subset, raw_dir)
        return raw_dir / names[2]
    raw_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=raw_dir, prefix=f".{subset}."))
    try:
        lhotse_prepare(corpus_dir, scratch, dataset_parts=[subset], num_jobs=num_jobs)
        for name in names:
            os.replace(scratch / name, raw_dir / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return raw_dir / names[2]


def _prepare_subset(
    corpus_dir: Path, output_dir: Path, subset: str, num_jobs: int, check_audio: bool
) -> ImportReport:
    raw_cuts = _run_lhotse_recipe(corpus_dir, output_dir / "raw", subset, num_jobs)
    report = ImportReport()
    with CorpusWriter(
        output_dir, _PREFIX, subset, 16000, _clean_gigaspeech, report
    ) as writer:
        for cut in CutSet.from_jsonl_lazy(raw_cuts):
            rec = cut.recording
            if check_audio:
                _, problem = probe_audio(rec.sources[0].source)
                if problem:
                    log.warning(
                        "Skipping %s (%s): %s", rec.id, problem, rec.sources[0].source
                    )
                    report.skip(problem, rec.id)
                    continue
            writer.write(rec, cut.supervisions)
    return report


def prepare_gigaspeech(
    corpus_dir: Path,
    output_dir: Path,
    subsets: Sequence[str] = ("XS", "DEV", "TEST"),
    num_jobs: int = 1,
    check_audio: bool = True,
) -> Dict[str, ImportReport]:
    """Prepares GigaSpeech subsets as trimmed, normalised lhotse manifests.

    A subset whose manifests and report exist already is skipped (reruns are
    cheap; an interrupted run leaves no manifest behind).

    Args:
      corpus_dir: the GigaSpeech dir with ``GigaSpeech.json`` and ``audio/``.
      output_dir: where ``gigaspeech_*_{SUBSET}.jsonl.gz`` and the reports go.
      subsets: any of XS, S, M, L, XL, DEV, TEST.
      num_jobs: parallel jobs for lhotse's JSON parsing.
      check_audio: check that every recording's file exists and decodes (a
        header read per file); unusable ones are skipped and counted.
    Returns:
      The import report of each subset.
    Raises:
      FileNotFoundError: when ``GigaSpeech.json`` is missing.
      ValueError: for an unknown subset name.
    """
    # Absolute, so the manifests' audio paths work from any directory.
    corpus_dir, output_dir = Path(corpus_dir).resolve(), Path(output_dir)
    if not (corpus_dir / "GigaSpeech.json").is_file():
        raise FileNotFoundError(
            f"{corpus_dir} has no GigaSpeech.json; download the corpus with "
            "speechcolab (https://github.com/SpeechColab/GigaSpeech)"
        )
    bad = [s for s in subsets if s not in GIGASPEECH_SUBSETS]
    if bad:
        raise ValueError(
            f"unknown GigaSpeech subsets {bad}; choose from {GIGASPEECH_SUBSETS}"
        )
    reports = {}
    for subset in subsets:
        if manifests_exist(output_dir, _PREFIX, subset):
            log.info("GigaSpeech %s: manifests exist already; skipping", subset)
            reports[subset] = ImportReport.read(
                report_path(output_dir, _PREFIX, subset)
            )
            continue
        reports[subset] = _prepare_subset(
            corpus_dir, output_dir, subset, num_jobs, check_audio
        )
    return reports
