"""Kaldi data directories <-> lhotse manifests, both ways.

Import (:func:`import_kaldi_dir`) reads ``wav.scp`` (files, and ``cmd |`` pipes
as lhotse supports them), ``segments``, ``text``, ``utt2spk``, ``reco2dur``,
``spk2gender`` and ``utt2lang`` through lhotse's own loader, after a check of
every entry: recordings whose audio is missing or undecodable and utterances
whose transcript is empty or holds unknown characters are skipped and counted
with their ids; audio at another sampling rate is resampled. The report is
written beside the manifests.

Export (:func:`export_kaldi_dir`) writes any CutSet with recordings back as a
Kaldi data dir: non-wav, multi-channel, resampled or speed-perturbed audio
becomes an ffmpeg pipe in ``wav.scp``, which Kaldi runs itself.
"""

import logging
import math
import shlex
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, cast

from lhotse import CutSet, Recording
from lhotse.cut import Cut, MonoCut
from lhotse.kaldi import load_kaldi_data_dir
from lhotse.utils import compute_num_samples, fastcopy

from asrk2.data.audio import AudioInfo, probe_audio
from asrk2.data.manifests import CorpusWriter, manifest_path
from asrk2.data.report import ImportReport
from asrk2.data.text import clean_text
from asrk2.utils import atomic_dir, atomic_write_text

__all__ = [
    "ImportReport",
    "export_kaldi_dir",
    "import_kaldi_dir",
    "manifest_path",
    "read_kaldi_table",
    "wav_scp_entry",
]

log = logging.getLogger(__name__)

# Files of a data dir keyed by recording id, by utterance id and by speaker id.
_PER_UTT = ("utt2lang",)
_PER_SPK = ("spk2gender",)


def read_kaldi_table(path: Path) -> Dict[str, str]:
    """Reads ``key rest-of-line`` lines; a line with only a key maps to ``""``.

    Args:
      path: a Kaldi table such as ``text`` or ``wav.scp``.
    Returns:
      key -> value, in file order; an empty dict if the file does not exist.
    """
    table: Dict[str, str] = {}
    if not Path(path).is_file():
        return table
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split(maxsplit=1)
        if parts:
            if parts[0] in table:
                log.warning("%s: duplicate key %s; the last line wins", path, parts[0])
            table[parts[0]] = parts[1] if len(parts) > 1 else ""
    return table


def _write_table(path: Path, table: Mapping[str, object]) -> None:
    lines = [f"{k} {v}".rstrip() for k, v in sorted(table.items())]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def _probe_entry(
    job: Tuple[str, Optional[float]]
) -> Tuple[Optional[AudioInfo], Optional[str]]:
    """Probes one ``wav.scp`` entry; a pipe with a known duration is not run."""
    entry, duration = job
    if entry.endswith("|") and duration is not None:
        program = shlex.split(entry[:-1])[0] if entry[:-1].strip() else ""
        if not program or shutil.which(program) is None and not Path(program).is_file():
            return None, "audio command not found"
        return AudioInfo(duration, 0, 1), None  # rate 0: as declared
    return probe_audio(entry)


def _line_numbers(path: Path) -> Dict[str, int]:
    """Key -> 1-based line number of a Kaldi table (the last line of a key)."""
    numbers: Dict[str, int] = {}
    if Path(path).is_file():
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            parts = line.split(maxsplit=1)
            if parts:
                numbers[parts[0]] = number
    return numbers


def _parse_seconds(value: str) -> Optional[float]:
    """A non-negative finite number of seconds, or None."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _read_reco2dur(data_dir: Path, report: ImportReport) -> Dict[str, float]:
    """``reco2dur`` as numbers; a bad value is logged with its line and ignored.

    A recording whose duration cannot be read is probed like one without a
    ``reco2dur`` entry, and counted as fixed.
    """
    path = data_dir / "reco2dur"
    durations: Dict[str, float] = {}
    lines = _line_numbers(path)
    for rec_id, value in read_kaldi_table(path).items():
        seconds = _parse_seconds(value)
        if seconds is None:
            log.warning("%s:%d: bad duration %r; probing the audio instead",
                        path, lines[rec_id], value)  # fmt: skip
            report.fix("bad reco2dur value; duration probed", rec_id)
        else:
            durations[rec_id] = seconds
    return durations


def _probe_wav_scp(
    wav_scp: Dict[str, str], reco2dur: Dict[str, float], num_jobs: int
) -> Dict[str, Tuple[Optional[AudioInfo], Optional[str]]]:
    """Probes every recording, in parallel when ``num_jobs > 1``."""
    jobs = [(entry.strip(), reco2dur.get(rec_id)) for rec_id, entry in wav_scp.items()]
    if num_jobs > 1 and len(jobs) > 1:
        chunksize = max(1, len(jobs) // (num_jobs * 8))
        with ProcessPoolExecutor(num_jobs) as ex:
            results = list(ex.map(_probe_entry, jobs, chunksize=chunksize))
    else:
        results = [_probe_entry(job) for job in jobs]
    return dict(zip(wav_scp, results))


def _clean_texts(
    texts: Dict[str, str], utt_ids: Iterable[str], report: ImportReport
) -> Dict[str, str]:
    """Normalised transcripts of ``utt_ids``; bad ones are counted and left out."""
    kept = {}
    for utt in utt_ids:
        if utt not in texts:
            report.skip("no transcript", utt)
            continue
        cleaned = clean_text(texts[utt])
        if cleaned.problem:
            if cleaned.detail:
                log.warning(
                    "%s: %s %r in %r", utt, cleaned.problem, cleaned.detail, texts[utt]
                )
            report.skip(cleaned.problem, utt)
            continue
        kept[utt] = cleaned.text
    return kept


def _select(
    data_dir: Path, probes: Dict, report: ImportReport
) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, Tuple[str, ...]]]:
    """Decides which recordings and utterances survive the checks.

    Returns:
      kept recordings (id -> wav.scp entry), kept utterances (id -> clean
      text) and, when there is a ``segments`` file, utt -> segment fields.
    """
    wav_scp = read_kaldi_table(data_dir / "wav.scp")
    good = set()
    for rec_id, (found, problem) in probes.items():
        if problem:
            log.warning(
                "Skipping recording %s (%s): %s", rec_id, problem, wav_scp[rec_id]
            )
            report.skip(problem, rec_id)
        else:
            good.add(rec_id)
            if found is not None and found.sampling_rate == 0:
                report.note_unchecked("pipe not run: duration from reco2dur", rec_id)
    texts = read_kaldi_table(data_dir / "text")
    segments: Dict[str, Tuple[str, ...]] = {}
    if (data_dir / "segments").is_file():
        path = data_dir / "segments"
        lines = _line_numbers(path)
        for utt, rest in read_kaldi_table(path).items():
            fields = tuple(rest.split())
            times = [_parse_seconds(t) for t in fields[1:]]
            if len(fields) != 3 or None in times:
                log.warning("%s:%d: bad segments line %r; skipped",
                            path, lines[utt], f"{utt} {rest}")  # fmt: skip
                report.skip("bad segments line", utt)
            elif fields[0] in good:
                segments[utt] = fields
            elif fields[0] not in wav_scp:
                report.skip("segment of an unknown recording", utt)
            else:  # its recording was skipped (and counted) above
                report.skip("segment of a skipped recording", utt)
        utts = _clean_texts(texts, segments, report)
        segments = {u: f for u, f in segments.items() if u in utts}
        used = {f[0] for f in segments.values()}
    else:
        utts = _clean_texts(texts, [r for r in wav_scp if r in good], report)
        used = set(utts)
    return {r: e for r, e in wav_scp.items() if r in used}, utts, segments


def _write_clean_copy(
    data_dir: Path,
    out: Path,
    kept: Tuple[Dict, Dict, Dict],
    probes: Dict,
    report: ImportReport,
) -> None:
    """A Kaldi dir lhotse's loader accepts: only good entries, clean text, reco2dur."""
    recs, utts, segments = kept
    out.mkdir(parents=True, exist_ok=True)
    _write_table(out / "wav.scp", recs)
    # Floored to milliseconds as lhotse's own duration reader does.
    durs = {r: math.floor(1000 * probes[r][0].duration) / 1000 for r in recs}
    _write_table(out / "reco2dur", durs)
    _write_table(out / "text", utts)
    if segments:
        _write_table(out / "segments", {u: " ".join(f) for u, f in segments.items()})
    utt2spk = read_kaldi_table(data_dir / "utt2spk")
    speakers = {}
    for utt in utts:
        if utt not in utt2spk:
            report.fix("no speaker; speaker = utterance id", utt)
        speakers[utt] = utt2spk.get(utt) or utt
    _write_table(out / "utt2spk", speakers)
    # Optional per-speaker/per-utterance files are kept only if complete, as
    # lhotse's loader indexes them with every kept key.
    for name, keys in [(n, set(speakers.values())) for n in _PER_SPK] + [
        (n, set(utts)) for n in _PER_UTT
    ]:
        table = read_kaldi_table(data_dir / name)
        if table and keys <= set(table):
            _write_table(out / name, {k: table[k] for k in keys})
        elif table:
            log.warning("%s/%s does not cover every kept item; ignored", data_dir, name)


def _as_probed(recording: Recording, info: AudioInfo) -> Recording:
    """The recording with its file's real rate and channels, and absolute path.

    lhotse's Kaldi loader declares one channel and the given rate for every
    entry when ``reco2dur`` exists; a stereo file declared mono would load as
    ``(2, T)`` where ``(1, T)`` is expected (twice the fbank frames). Kaldi's
    relative paths are relative to the recipe directory; made absolute, the
    manifests work from any directory.
    """
    recording = fastcopy(
        recording,
        sources=[
            fastcopy(s, source=str(Path(s.source).resolve()))
            if s.type == "file" else s
            for s in recording.sources
        ],
    )  # fmt: skip
    if info.num_channels > 1:
        channels = list(range(info.num_channels))
        recording = fastcopy(
            recording,
            sources=[fastcopy(s, channels=channels) for s in recording.sources],
            channel_ids=channels,
        )
    if info.sampling_rate in (0, recording.sampling_rate):
        return recording
    rate = info.sampling_rate
    return fastcopy(
        recording,
        sampling_rate=rate,
        num_samples=compute_num_samples(recording.duration, rate),
    )


def import_kaldi_dir(
    data_dir: Path,
    output_dir: Path,
    split: str,
    prefix: str = "kaldi",
    sampling_rate: int = 16000,
    num_jobs: int = 1,
    channel: int = 0,
) -> CutSet:
    """Imports a Kaldi data dir and writes lhotse manifests for it.

    Writes ``{prefix}_{recordings,supervisions,cuts}_{split}.jsonl.gz`` and
    ``{prefix}_report_{split}.json`` into ``output_dir`` (each atomically).
    Recordings whose audio is missing, undecodable or whose pipe fails, and
    utterances whose transcript is missing, empty or has unknown characters,
    are skipped; audio at another rate is resampled to ``sampling_rate``. All
    of these are counted, with ids, in the report and the log.

    Args:
      data_dir: a Kaldi data dir with at least ``wav.scp`` and ``text``.
      output_dir: where manifests go.
      split: name of the split, e.g. ``train``.
      prefix: corpus name used in the file names.
      sampling_rate: the rate of the output (and of pipes without a header).
      num_jobs: parallel jobs for checking the audio.
      channel: the channel used from multi-channel audio (Kaldi's
        ``--channel``); recordings keep all their channels, their cuts use
        this one, and the report counts them as fixed.
    Returns:
      The CutSet, one cut per utterance, trimmed to it.
    Raises:
      FileNotFoundError: when ``wav.scp`` or ``text`` is missing.
      ValueError: when no utterance survives the checks.
    """
    data_dir = Path(data_dir)
    for name in ("wav.scp", "text"):
        if not (data_dir / name).is_file():
            raise FileNotFoundError(f"Kaldi data dir {data_dir} has no {name}")
    report = ImportReport()
    probes = _probe_wav_scp(
        read_kaldi_table(data_dir / "wav.scp"),
        _read_reco2dur(data_dir, report),
        num_jobs,
    )
    kept = _select(data_dir, probes, report)
    if not kept[1]:
        raise ValueError(f"{data_dir}: no usable utterance ({report.summary()})")
    with tempfile.TemporaryDirectory() as tmp:
        _write_clean_copy(data_dir, Path(tmp) / "data", kept, probes, report)
        recordings, supervisions, _ = load_kaldi_data_dir(
            Path(tmp) / "data", sampling_rate=sampling_rate
        )
    by_rec: Dict[str, List] = {}
    for sup in supervisions:
        by_rec.setdefault(sup.recording_id, []).append(sup)
    with CorpusWriter(
        output_dir,
        prefix,
        split,
        sampling_rate,
        text_cleaner=lambda sup, _: sup.text,
        report=report,
        channel=channel,
    ) as writer:
        for rec in recordings:
            info = probes[rec.id][0]
            assert info is not None, rec.id  # only readable recordings are kept
            writer.write(_as_probed(rec, info), by_rec.get(rec.id, []))
    return CutSet.from_file(manifest_path(output_dir, prefix, "cuts", split)).to_eager()


# ---------------------------------------------------------------------------
# Export


def _transform_filters(recording: Recording) -> Tuple[List[str], int]:
    """ffmpeg filters redoing a recording's transforms, and the output rate."""
    filters: List[str] = []
    transforms = [
        t if isinstance(t, dict) else t.to_dict() for t in recording.transforms or []
    ]
    # The transforms apply to the source audio, whose rate is the first
    # Resample's source rate if there is one.
    rate = recording.sampling_rate
    for t in transforms:
        if t["name"] == "Resample":
            rate = int(t["kwargs"]["source_sampling_rate"])
            break
    for t in transforms:
        name, kwargs = t["name"], t.get("kwargs", {})
        if name == "Resample":
            rate = int(kwargs["target_sampling_rate"])
            filters.append(f"aresample={rate}")
        elif name == "Speed":
            # Speed perturbation as Kaldi/lhotse do it: play faster, keep the rate.
            filters.append(
                f"asetrate={rate * float(kwargs['factor']):g},aresample={rate}"
            )
        else:
            raise ValueError(
                f"recording {recording.id}: transform {name} has no wav.scp "
                "equivalent; "
                "save the audio first (CutSet.save_audios)"
            )
    return filters, int(rate)


def wav_scp_entry(recording: Recording, channel: int = 0) -> str:
    """The ``wav.scp`` value that makes Kaldi read this recording's channel.

    A plain single-channel wav file is its path; anything else (another
    format, several channels, a resampling or speed transform, a pipe) becomes
    an ffmpeg pipe ending in ``|`` producing 16-bit wav.

    Args:
      recording: a lhotse recording with ``file`` or ``command`` sources.
      channel: which channel the Kaldi entry holds.
    Returns:
      A path or a shell pipeline ending in ``" |"``.
    Raises:
      ValueError: for URL/in-memory sources or transforms ffmpeg cannot redo.
    """
    sources = [s for s in recording.sources if channel in s.channels]
    if not sources:
        raise ValueError(f"recording {recording.id} has no channel {channel}")
    src = sources[0]
    if src.type not in ("file", "command"):
        raise ValueError(
            f"recording {recording.id}: {src.type} audio sources cannot go into "
            "wav.scp; "
            "save the audio to files first"
        )
    filters, rate = _transform_filters(recording)
    simple = not filters and len(src.channels) == 1
    if src.type == "file" and simple and src.source.lower().endswith(".wav"):
        if not any(c.isspace() for c in src.source):
            return src.source
    if src.type == "command" and simple:
        return f"{src.source} |"
    if len(src.channels) > 1:
        filters.insert(0, f"pan=mono|c0=c{src.channels.index(channel)}")
    args = ["-af", ",".join(filters)] if filters else []
    ffmpeg = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i"]
    head = "" if src.type == "file" else f"{src.source} | "
    inp = src.source if src.type == "file" else "pipe:0"
    tail = args + ["-ac", "1", "-ar", str(rate), "-c:a", "pcm_s16le", "-f", "wav", "-"]
    return head + " ".join(shlex.quote(a) for a in ffmpeg + [inp] + tail) + " |"


def _cut_fields(cut: Cut, prefix_speaker: bool) -> Tuple[str, str, str, Optional[str]]:
    """Utterance id, speaker, text and gender of one cut."""
    if not isinstance(cut, MonoCut) or not cut.has_recording:
        raise ValueError(f"cut {cut.id} has no single recording; Kaldi dirs need audio")
    sups = sorted(cut.supervisions, key=lambda s: s.start)
    speaker = (sups[0].speaker if sups else None) or cut.id
    utt = cut.id
    if prefix_speaker and not utt.startswith(speaker):
        utt = f"{speaker}-{utt}"
    text = " ".join(s.text for s in sups if s.text)
    gender = sups[0].gender if sups else None
    return utt, speaker, text, gender


def _fmt_time(t: float) -> str:
    return f"{t:.4f}".rstrip("0").rstrip(".") or "0"


def _export_tables(cuts: CutSet, prefix_speaker: bool) -> Dict[str, Dict[str, str]]:
    tables: Dict[str, Dict[str, str]] = {
        n: {} for n in ("wav.scp", "segments", "text", "utt2spk", "reco2dur", "utt2dur")
    }
    genders: Dict[str, Optional[str]] = {}
    for cut in cuts:
        utt, spk, text, gender = _cut_fields(cut, prefix_speaker)
        if utt in tables["text"]:
            raise ValueError(f"two cuts map to the Kaldi utterance id {utt}")
        rec = cut.recording
        key = rec.id if rec.num_channels == 1 else f"{rec.id}-ch{cut.channel}"
        if key not in tables["wav.scp"]:
            tables["wav.scp"][key] = wav_scp_entry(rec, cut.channel)
            tables["reco2dur"][key] = _fmt_time(rec.duration)
        tables["segments"][utt] = f"{key} {_fmt_time(cut.start)} {_fmt_time(cut.end)}"
        tables["text"][utt] = text
        tables["utt2spk"][utt] = spk
        tables["utt2dur"][utt] = _fmt_time(cut.duration)
        genders.setdefault(spk, gender)
    if genders and all(g in ("m", "f", "male", "female") for g in genders.values()):
        # None is not among the genders checked just above.
        tables["spk2gender"] = {s: cast(str, g)[0] for s, g in genders.items()}
    return tables


def export_kaldi_dir(
    cuts: CutSet, data_dir: Path, prefix_speaker: bool = False, overwrite: bool = False
) -> Path:
    """Writes cuts as a Kaldi data dir (the inverse of :func:`import_kaldi_dir`).

    Each cut becomes one utterance (id = cut id, a ``segments`` line into its
    recording, the texts of its supervisions joined). Writes ``wav.scp``,
    ``segments``, ``text``, ``utt2spk``, ``spk2utt``, ``reco2dur``,
    ``utt2dur`` and, when every speaker has one, ``spk2gender``. The directory
    is assembled beside ``data_dir`` and renamed into place when complete.

    Args:
      cuts: cuts with recordings (e.g. from :func:`import_kaldi_dir`).
      data_dir: the Kaldi dir to create.
      prefix_speaker: prefix utterance ids with ``<speaker>-`` so that Kaldi's
        sort order (by utterance = by speaker) holds.
      overwrite: replace an existing ``data_dir``.
    Returns:
      ``data_dir``.
    Raises:
      FileExistsError: if ``data_dir`` exists and ``overwrite`` is False.
      ValueError: for cuts without a recording, or audio Kaldi cannot read.
    """
    data_dir = Path(data_dir)
    if data_dir.exists() and not overwrite:
        raise FileExistsError(f"{data_dir} exists; pass overwrite=True to replace it")
    tables = _export_tables(cuts, prefix_speaker)
    spk2utt: Dict[str, List[str]] = {}
    for utt, spk in sorted(tables["utt2spk"].items()):
        spk2utt.setdefault(spk, []).append(utt)
    tables["spk2utt"] = {s: " ".join(u) for s, u in spk2utt.items()}
    by_utt = [tables["utt2spk"][u] for u in sorted(tables["utt2spk"])]
    if by_utt != sorted(by_utt):
        log.warning(
            "%s: utterance order differs from speaker order, which Kaldi's "
            "validate_data_dir.sh rejects; use prefix_speaker=True",
            data_dir,
        )
    with atomic_dir(data_dir) as tmp:
        for name, table in tables.items():
            _write_table(tmp / name, table)
    return data_dir
