"""Tiny GigaSpeech- and VoxPopuli-layout corpora from synthetic speech.

The real recipes (lhotse's, through :mod:`asrk2.data.gigaspeech` and
:mod:`asrk2.data.voxpopuli`) are exercised on these in tests, not mocks. The
speech comes from :func:`asrk2.data.synth.make_synth_corpus` (espeak-ng);
several utterances are concatenated, with pauses, into one long recording per
podcast/session, as in the real corpora, and encoded as the real ones are:

* GigaSpeech: ``GigaSpeech.json`` (``audios[].{aid, path, sample_rate,
  channels, duration, format, subsets, segments[].{sid, speaker, begin_time,
  end_time, text_tn, subsets}}``) and ``audio/{podcast,youtube,audiobook}/
  P0000/<aid>.opus``. Transcripts carry punctuation tags (``<COMMA>``...), and
  each recording has a garbage segment (``<NOISE>``, ``<MUSIC>``...) over
  noise. The last training recording is in S but not XS.
* VoxPopuli: ``raw_audios/en/<year>/<session>_{en,original}.ogg`` (vorbis) and
  ``asr_en.tsv.gz`` with lower-case ``normed_text`` and punctuated
  ``original_text``.

Each builder returns the expected outcome: for each subset/split, segment id ->
normalised transcript, and the ids of garbage segments.
"""

import csv
import gzip
import json
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf

from asrk2.data.synth import SynthCorpusConfig, make_synth_corpus
from asrk2.utils import atomic_path, atomic_write_text

__all__ = [
    "LayoutConfig",
    "LayoutCorpus",
    "make_gigaspeech_layout",
    "make_voxpopuli_layout",
]

_RATE = 16000
_SPLITS = ("train", "dev", "test")
_GIGA_SPLIT = {"train": None, "dev": "{DEV}", "test": "{TEST}"}
_TRAIN_SUBSETS = ["{XL}", "{L}", "{M}", "{S}", "{XS}"]
_SOURCES = (("podcast", "POD"), ("youtube", "YOU"), ("audiobook", "AUD"))
_GARBAGE = ("<NOISE>", "<MUSIC>", "<SIL>", "<OTHER>")


@dataclass
class LayoutConfig:
    """Size of a layout corpus.

    Attributes:
      seed: seeds the synthetic speech and the transcript decorations.
      num_train, num_dev, num_test: long recordings (podcasts/sessions) per split.
      utts_per_recording: utterances concatenated into each recording.
      gap_seconds: pause between utterances.
      num_jobs: espeak-ng processes.
    """

    seed: int = 0
    num_train: int = 3
    num_dev: int = 1
    num_test: int = 1
    utts_per_recording: int = 3
    gap_seconds: float = 0.3
    num_jobs: int = 1


@dataclass
class LayoutCorpus:
    """A generated corpus and what a correct import of it yields.

    Attributes:
      root: the corpus directory (pass it to the prepare function).
      expected: subset/split name -> segment id -> normalised transcript.
      garbage: subset/split name -> ids of segments a correct import drops.
    """

    root: Path
    expected: Dict[str, Dict[str, str]] = field(default_factory=dict)
    garbage: Dict[str, List[str]] = field(default_factory=dict)


@dataclass
class _Utt:
    utt_id: str
    speaker: str
    text: str
    samples: np.ndarray


def _synth_utterances(config: LayoutConfig, work: Path) -> Dict[str, List[_Utt]]:
    """Synthesises the utterances of every split with espeak-ng."""
    n = config.utts_per_recording
    synth = SynthCorpusConfig(
        seed=config.seed,
        num_train=config.num_train * n,
        num_dev=config.num_dev * n,
        num_test=config.num_test * n,
        num_train_speakers=max(1, min(4, config.num_train * n)),
        num_dev_speakers=1,
        num_test_speakers=1,
        num_jobs=config.num_jobs,
    )
    dirs = make_synth_corpus(work, synth)
    out = {}
    for split, data_dir in dirs.items():
        tables = {}
        for name in ("wav.scp", "text", "utt2spk"):
            lines = (data_dir / name).read_text().splitlines()
            tables[name] = dict(line.split(" ", 1) for line in lines)
        out[split] = [
            _Utt(
                u,
                tables["utt2spk"][u],
                text,
                sf.read(tables["wav.scp"][u], dtype="float32")[0],
            )
            for u, text in sorted(tables["text"].items())
        ]
    return out


def _concatenate(
    utts: List[_Utt], gap: float, extra: int = 0, seed: int = 0
) -> Tuple[np.ndarray, List[Tuple[float, float]]]:
    """Joins utterances with pauses; ``extra`` noise bursts are appended.

    Returns:
      The samples, shape ``(T,)``, and (begin, end) seconds of every piece.
    """
    rng = np.random.default_rng(seed)
    pause = np.zeros(int(gap * _RATE), dtype=np.float32)
    pieces = [u.samples for u in utts]
    pieces += [
        (0.05 * rng.standard_normal(int(0.6 * _RATE))).astype(np.float32)
    ] * extra
    parts, spans, pos = [pause], [], len(pause)
    for piece in pieces:
        spans.append((pos / _RATE, (pos + len(piece)) / _RATE))
        parts += [piece, pause]
        pos += len(piece) + len(pause)
    return np.concatenate(parts), spans


def _encode(samples: np.ndarray, dst: Path, codec: List[str]) -> float:
    """Encodes 16 kHz samples with ffmpeg into ``dst``; returns its duration."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is needed to write opus/ogg layout corpora")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "in.wav"
        sf.write(str(wav), samples, _RATE, subtype="PCM_16")
        with atomic_path(dst) as out:
            cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav)]
            subprocess.run(cmd + codec + [str(out)], check=True, capture_output=True)
    return sf.info(str(dst)).duration


def _tagged(text: str, rng: random.Random) -> str:
    """GigaSpeech-style ``text_tn``: punctuation as tags."""
    words = text.split()
    if len(words) >= 4:
        words.insert(rng.randint(2, len(words) - 2), "<COMMA>")
    end = (
        "<QUESTIONMARK>"
        if words[0]
        in ("WHAT", "WHEN", "WHAT'S", "IS", "DO", "DID", "HOW", "CAN", "WILL")
        else "<PERIOD>"
    )
    return " ".join(words + [end])


def _giga_segments(
    aid: str,
    spans: List[Tuple[float, float]],
    utts: List[_Utt],
    subsets: List[str],
    rng: random.Random,
    garbage_tag: str,
) -> List[dict]:
    """``segments`` entries: one per utterance, then one garbage segment."""
    segments = []
    for k, (begin, end) in enumerate(spans):
        text = _tagged(utts[k].text, rng) if k < len(utts) else garbage_tag
        segments.append(
            {
                "sid": f"{aid}_S{k:07d}",
                "speaker": "N/A",
                "begin_time": round(begin, 2),
                "end_time": round(end, 2),
                "text_tn": text,
                "subsets": subsets,
            }
        )
    return segments


def _giga_audio(
    out_dir: Path,
    index: int,
    group: List[_Utt],
    subsets: List[str],
    config: LayoutConfig,
    rng: random.Random,
) -> dict:
    """Encodes one recording of ``group`` and returns its ``GigaSpeech.json`` entry."""
    source, letters = _SOURCES[index % len(_SOURCES)]
    aid = f"{letters}{index:010d}"
    samples, spans = _concatenate(group, config.gap_seconds, extra=1, seed=index)
    rel = f"audio/{source}/P0000/{aid}.opus"
    duration = _encode(samples, out_dir / rel, ["-c:a", "libopus", "-b:a", "32k"])
    tag = _GARBAGE[index % len(_GARBAGE)]
    segments = _giga_segments(aid, spans, group, subsets, rng, tag)
    return {
        "title": f"synthetic {source} {index}",
        "aid": aid,
        "path": rel,
        "source": source,
        "sample_rate": _RATE,
        "codec": "opus",
        "format": "opus",
        "channels": 1,
        "duration": round(duration, 4),
        "subsets": subsets,
        "category": "Synthetic",
        "segments": segments,
    }


def _giga_subsets(split: str, r: int, num: int) -> Tuple[List[str], List[str]]:
    """Subsets of recording ``r`` of ``num`` in a split, and our names for them."""
    subset = _GIGA_SPLIT[split]
    if subset:
        return [subset], [subset[1:-1]]
    if r == num - 1 and num > 1:
        return _TRAIN_SUBSETS[:-1], ["S"]  # in S but not XS
    return _TRAIN_SUBSETS, ["XS", "S"]


def make_gigaspeech_layout(
    out_dir: Path, config: Optional[LayoutConfig] = None
) -> LayoutCorpus:
    """Writes a tiny corpus in GigaSpeech's native layout.

    Args:
      out_dir: the corpus directory to create.
      config: its size; :class:`LayoutConfig` defaults when None.
    Returns:
      The corpus and, for XS, S, DEV and TEST, the expected transcripts.
    """
    out_dir, config = Path(out_dir), config or LayoutConfig()
    rng = random.Random(config.seed)
    names = ("XS", "S", "DEV", "TEST")
    corpus = LayoutCorpus(out_dir, {s: {} for s in names}, {s: [] for s in names})
    audios: List[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        utts = _synth_utterances(config, Path(tmp))
    n = config.utts_per_recording
    for split in _SPLITS:
        groups = [utts[split][i : i + n] for i in range(0, len(utts[split]), n)]
        for r, group in enumerate(groups):
            subsets, subset_names = _giga_subsets(split, r, len(groups))
            audio = _giga_audio(out_dir, len(audios) + 1, group, subsets, config, rng)
            audios.append(audio)
            for name in subset_names:
                corpus.garbage[name].append(audio["segments"][-1]["sid"])
                for seg, utt in zip(audio["segments"], group):
                    corpus.expected[name][seg["sid"]] = utt.text
    meta = {
        "dataset": "GigaSpeech",
        "language": "EN",
        "version": "synthetic",
        "description": "asrk2 synthetic GigaSpeech-layout corpus",
        "audios": audios,
    }
    atomic_write_text(out_dir / "GigaSpeech.json", json.dumps(meta, indent=1) + "\n")
    return corpus


def _original_text(text: str) -> str:
    sentence = text.lower().capitalize()
    return sentence.replace(" please", ", please") + "."


def make_voxpopuli_layout(
    out_dir: Path, config: Optional[LayoutConfig] = None
) -> LayoutCorpus:
    """Writes a tiny corpus in VoxPopuli's native layout (English ASR).

    Session audio goes to ``raw_audios/en/2019/<session>_{en,original}.ogg``
    and the segment table to ``out_dir/asr_en.tsv.gz``.

    Args:
      out_dir: the corpus directory to create.
      config: its size; :class:`LayoutConfig` defaults when None.
    Returns:
      The corpus and, for train/dev/test, the expected transcripts keyed by
      the segment ids lhotse's recipe gives (``<session>-<k>``, k from 1).
    """
    out_dir, config = Path(out_dir), config or LayoutConfig()
    corpus = LayoutCorpus(out_dir, {s: {} for s in _SPLITS}, {s: [] for s in _SPLITS})
    with tempfile.TemporaryDirectory() as tmp:
        utts = _synth_utterances(config, Path(tmp))
    rows, n, index = [], config.utts_per_recording, 0
    for split in _SPLITS:
        for i in range(0, len(utts[split]), n):
            index += 1
            group = utts[split][i : i + n]
            session = f"201901{index:02d}-0900-PLENARY-{index}"
            suffix = "_en" if index % 2 else "_original"
            samples, spans = _concatenate(group, config.gap_seconds)
            dst = out_dir / "raw_audios" / "en" / "2019" / f"{session}{suffix}.ogg"
            _encode(samples, dst, ["-c:a", "libvorbis", "-q:a", "5"])
            for k, (utt, (begin, end)) in enumerate(zip(group, spans), start=1):
                speaker = str(1000 + sum(map(ord, utt.speaker)) % 9000)
                rows.append(
                    {
                        "session_id": session,
                        "id_": f"{session}_{k}",
                        "lang": "en",
                        "split": split,
                        "gender": ("female", "male")[index % 2],
                        "speaker_id": speaker,
                        "start_time": f"{begin:.3f}",
                        "end_time": f"{end:.3f}",
                        "vad": f"[[{begin:.3f}, {end:.3f}]]",
                        "original_text": _original_text(utt.text),
                        "normed_text": utt.text.lower(),
                    }
                )
                corpus.expected[split][f"{session}-{k}"] = utt.text
    with atomic_path(out_dir / "asr_en.tsv.gz") as tmp_tsv:
        with gzip.open(tmp_tsv, "wt", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="|")
            writer.writeheader()
            writer.writerows(rows)
    return corpus
