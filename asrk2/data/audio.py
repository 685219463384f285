"""Checking and converting the audio people bring: any format -> 16 kHz PCM wav.

:func:`probe_audio` says whether a file (or a Kaldi ``wav.scp`` pipe) can be
decoded, and at what rate, without raising; importers use it to skip and count
bad recordings instead of failing half-way through feature extraction.
:func:`convert_audio` turns m4a/mp3/ogg/opus/flac/... into 16-bit mono wav with
ffmpeg (or lhotse's audio backends when ffmpeg is missing), atomically.
"""

import io
import logging
import shlex
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf

from asrk2.data.report import ImportReport
from asrk2.utils import atomic_path

__all__ = [
    "AUDIO_SUFFIXES",
    "AudioDecodeError",
    "AudioInfo",
    "convert_audio",
    "convert_audio_files",
    "find_audio_files",
    "probe_audio",
]

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (
    ".wav",
    ".flac",
    ".mp3",
    ".m4a",
    ".aac",
    ".ogg",
    ".opus",
    ".sph",
    ".webm",
    ".wma",
)
_COMMAND_TIMEOUT = 600.0


class AudioDecodeError(RuntimeError):
    """An audio file (named in the message) could not be decoded."""


@dataclass(frozen=True)
class AudioInfo:
    """What a decodable recording is: duration (s), sampling rate, channels."""

    duration: float
    sampling_rate: int
    num_channels: int


def _probe_command(command: str) -> Tuple[Optional[AudioInfo], Optional[str]]:
    """Runs a Kaldi ``wav.scp`` pipe (without the final ``|``) and reads its wav."""
    program = shlex.split(command)[0] if command.strip() else ""
    if not program or (shutil.which(program) is None and not Path(program).is_file()):
        return None, "audio command not found"
    try:
        proc = subprocess.run(
            command, shell=True, capture_output=True, timeout=_COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return None, "audio command timed out"
    if proc.returncode != 0 or not proc.stdout:
        return None, "audio command failed"
    try:
        samples, rate = sf.read(io.BytesIO(proc.stdout), dtype="int16", always_2d=True)
    except Exception:  # soundfile raises several types for bad data
        return None, "unreadable audio"
    return AudioInfo(samples.shape[0] / rate, int(rate), samples.shape[1]), None


def _wav_data_shortfall(path: str) -> int:
    """Bytes a wav file's ``data`` chunk declares but the file does not hold.

    Decoders read a truncated wav up to its end without complaint, so a file
    cut short (a copy interrupted, a disk full) would become a shorter
    recording that keeps its full transcript. Only the chunk headers are read.
    Sizes 0 and 0xFFFFFFFF are what streaming writers put when the length is
    unknown; they are not counted as truncation.

    Args:
      path: any file; non-RIFF/WAVE files give 0.
    Returns:
      The missing byte count, 0 when the file is complete (or not a wav).
    """
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk = f.read(8)
            chunk_size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                if chunk_size in (0, 0xFFFFFFFF):
                    return 0
                return max(0, offset + 8 + chunk_size - size)
            offset += 8 + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    return 0


def probe_audio(path: str) -> Tuple[Optional[AudioInfo], Optional[str]]:
    """Checks that a file (or ``"cmd |"`` pipe) decodes; never raises.

    Only the header is read for files; a pipe is run once (as Kaldi would).

    Args:
      path: a file path, or a Kaldi pipe ending in ``|``.
    Returns:
      ``(info, None)`` when readable, else ``(None, problem)`` with problem one
      of ``"missing audio file"``, ``"unreadable audio"``, ``"empty audio"``,
      ``"unsupported wav.scp entry"``, ``"audio command not found"``,
      ``"audio command failed"``, ``"truncated audio"`` (a wav file shorter
      than its header says).
    """
    from lhotse.audio import info as audio_info

    path = path.strip()
    if path.endswith("|"):
        found, problem = _probe_command(path[:-1])
    elif ":" in Path(path).name and Path(path).name.rsplit(":", 1)[1].isdigit():
        return None, "unsupported wav.scp entry"  # Kaldi ark:offset, not a file
    elif not Path(path).is_file():
        return None, "missing audio file"
    else:
        try:
            meta = audio_info(path)
            shortfall = _wav_data_shortfall(path)
        except Exception:  # any backend failure means the file is unusable
            return None, "unreadable audio"
        if shortfall:
            log.warning("%s: %d bytes of audio missing (truncated)", path, shortfall)
            return None, "truncated audio"
        found = AudioInfo(
            float(meta.duration), int(meta.samplerate), int(meta.channels)
        )
        problem = None
    if found is not None and found.duration <= 0:
        return None, "empty audio"
    return found, problem


def _ffmpeg_convert(src: Path, tmp: Path, sample_rate: int) -> None:
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(src),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-c:a",
        "pcm_s16le",
        "-f",
        "wav",
        str(tmp),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        raise AudioDecodeError(f"cannot decode {src}: {lines[-1]}")


def _lhotse_convert(src: Path, tmp: Path, sample_rate: int) -> None:
    import torch
    import torchaudio
    from lhotse.audio import read_audio

    try:
        samples, rate = read_audio(str(src))
    except Exception as e:
        raise AudioDecodeError(f"cannot decode {src}: {e}") from e
    mono = torch.from_numpy(np.asarray(samples, dtype=np.float32)).mean(dim=0)
    if rate != sample_rate:
        mono = torchaudio.functional.resample(mono, int(rate), sample_rate)
    sf.write(
        str(tmp),
        np.clip(mono.numpy(), -1.0, 32767 / 32768),
        sample_rate,
        subtype="PCM_16",
        format="WAV",
    )


def convert_audio(src: Path, dst: Path, sample_rate: int = 16000) -> Path:
    """Decodes any audio file into 16-bit mono PCM wav at ``sample_rate``.

    Uses ffmpeg when it is on PATH, else lhotse's audio backends. The output
    appears only when complete (written to a temporary name, then renamed).

    Args:
      src: the input file (wav, flac, mp3, m4a, ogg, opus, ...).
      dst: the output wav path; parent directories are created.
      sample_rate: the output rate in Hz.
    Returns:
      ``dst``.
    Raises:
      FileNotFoundError: if ``src`` does not exist.
      AudioDecodeError: if ``src`` cannot be decoded or holds no audio; the
        message names the file.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"no such audio file: {src}")
    with atomic_path(dst) as tmp:
        if shutil.which("ffmpeg"):
            _ffmpeg_convert(src, tmp, sample_rate)
        else:
            _lhotse_convert(src, tmp, sample_rate)
        try:
            frames = sf.info(str(tmp)).frames
        except Exception:
            frames = 0
        if frames == 0:
            raise AudioDecodeError(f"cannot decode {src}: no audio samples in it")
    return dst


def find_audio_files(inputs: Iterable[Path]) -> List[Path]:
    """Expands directories (recursively) into audio files with known suffixes."""
    found: List[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(
                p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES
            )
        else:
            found.append(item)
    return found


def _convert_job(job: Tuple[Path, Path, int]) -> Optional[str]:
    src, dst, rate = job
    if dst.is_file():
        return None  # done by an earlier, interrupted run
    try:
        convert_audio(src, dst, rate)
    except (AudioDecodeError, FileNotFoundError) as e:
        return str(e)
    return None


def convert_audio_files(
    files: Sequence[Union[str, Path]],
    out_dir: Path,
    sample_rate: int = 16000,
    num_jobs: int = 1,
    root: Optional[Path] = None,
) -> Tuple[List[Path], ImportReport]:
    """Converts many files to wav; undecodable ones are skipped and reported.

    Args:
      files: input audio files.
      out_dir: where the wavs go: ``out_dir/<path relative to root>.wav``, or
        ``out_dir/<stem>.wav`` when ``root`` is None.
      sample_rate: output rate in Hz.
      num_jobs: parallel conversions.
      root: common root of the inputs, to keep their sub-directories.
    Returns:
      The written wav paths (in input order) and a report of the failures,
      keyed ``"undecodable audio"`` with the input paths as ids.
    """
    out_dir = Path(out_dir)
    jobs = []
    for src in map(Path, files):
        rel = src.relative_to(root) if root is not None else Path(src.name)
        jobs.append((src, out_dir / rel.with_suffix(".wav"), sample_rate))
    if num_jobs > 1:
        with ProcessPoolExecutor(num_jobs) as ex:
            errors = list(ex.map(_convert_job, jobs, chunksize=4))
    else:
        errors = [_convert_job(job) for job in jobs]
    report, written = ImportReport(), []
    for (src, dst, _), error in zip(jobs, errors):
        if error is None:
            written.append(dst)
            report.num_cuts += 1
        else:
            log.warning("%s", error)
            report.skip("undecodable audio", str(src))
    return written, report
