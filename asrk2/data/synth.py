"""A synthetic speech corpus: everyday sentences spoken by espeak-ng voices.

Each speaker is an espeak-ng accent plus a voice variant (``en-gb-x-rp+f2``).
Train, dev and test use disjoint speakers, so dev/test measure generalisation
to unseen voices. Every utterance gets its own speaking rate and pitch. The
output is Kaldi data dirs (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``)
over 16-bit mono wavs, ready for :func:`asrk2.data.kaldi_dir.import_kaldi_dir`.

Everything is a function of the config: utterance ``i`` of a split is drawn
from a random generator seeded by ``(seed, split, i)``, so the corpus does not
depend on ``num_jobs`` and growing ``num_train`` keeps the existing utterances.
"""
import dataclasses
import functools
import json
import logging
import multiprocessing
import random
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Sequence, Set, Tuple

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asrk2.data.sentences import SentenceGenerator
from asrk2.utils import atomic_path, atomic_write_text

if TYPE_CHECKING:
    import torchaudio

__all__ = [
    "SPLITS",
    "SynthCorpusConfig",
    "SynthUtterance",
    "make_synth_corpus",
    "plan_corpus",
    "speaker_splits",
]

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
# Bump when the sentence templates, speaker pool or audio processing change, so
# an old corpus is not mistaken for a current one.
_FORMAT_VERSION = 2
_ESPEAK = "espeak-ng"

# espeak-ng's own English accents (no MBROLA voices: those need extra packages).
_ACCENTS = (
    "en-us", "en-us-nyc", "en-gb", "en-gb-x-rp", "en-gb-scotland",
    "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
)  # fmt: skip
# Human-sounding variants only; robots, whispers, croaks and effects are left
# out. Grouped by the gender espeak-ng lists for them (``--voices=variant``).
# Names are case-sensitive: espeak-ng silently falls back on an unknown one.
_FEMALE_VARIANTS = (
    "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty",
    "belinda", "grandma", "linda", "steph", "steph2", "steph3",
)  # fmt: skip
_MALE_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "AnxiousAndy",
    "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco",
    "Mario", "Michael", "Mike", "Mr", "Nguyen", "adam", "announcer", "antonio",
    "benjamin", "boris", "caleb", "david", "ed", "edward", "edward2", "grandpa",
    "gustave", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta", "klatt",
    "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "marcelo", "max", "michel",
    "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert",
    "sandro", "shelby", "travis", "victor", "zac",
)  # fmt: skip
# espeak-ng's SSML pitch ranges (how much the intonation moves).
_PITCH_RANGES = ("x-low", "low", "medium", "high", "x-high")

# Samples quieter than this (about -54 dBFS) count as silence when trimming.
_SILENCE_LEVEL = 64 / 32768
# espeak-ng reads some words differently from how the transcript spells them.
_SPOKEN_FORM = {"am": "a.m.", "pm": "p.m."}


@dataclass
class SynthCorpusConfig:
    """How to build the synthetic corpus.

    Attributes:
      seed: seeds sentences, speaker assignment, rate and pitch.
      num_train, num_dev, num_test: utterances per split.
      num_train_speakers, num_dev_speakers, num_test_speakers: voices per
        split; the three sets are disjoint.
      sample_rate: output sampling rate in Hz.
      min_wpm, max_wpm: range of the speaking rate, words per minute.
      min_pitch, max_pitch: range of espeak-ng's pitch (0-99).
      max_word_gap: pause between words drawn from 0 to this, in espeak-ng's
        units of 10 ms.
      min_amplitude, max_amplitude: range of espeak-ng's amplitude (0-200).
      pad_seconds: silence kept before and after the speech after trimming.
      num_jobs: parallel synthesis processes; does not change the output.
    """

    seed: int = 0
    num_train: int = 1000
    num_dev: int = 100
    num_test: int = 100
    num_train_speakers: int = 40
    num_dev_speakers: int = 6
    num_test_speakers: int = 6
    sample_rate: int = 16000
    min_wpm: int = 140
    max_wpm: int = 190
    min_pitch: int = 30
    max_pitch: int = 70
    max_word_gap: int = 4
    min_amplitude: int = 60
    max_amplitude: int = 160
    pad_seconds: float = 0.1
    num_jobs: int = 1


@dataclass(frozen=True)
class SynthUtterance:
    """One utterance to synthesise: who says what, and how (rate, pitch,
    intonation range, pauses between words, loudness)."""

    utt_id: str
    speaker: str
    voice: str
    text: str
    wpm: int
    pitch: int
    pitch_range: str = "medium"
    word_gap: int = 0
    amplitude: int = 100


def _validate(config: SynthCorpusConfig) -> None:
    """Raises ValueError on a config that cannot produce a sensible corpus."""
    for split in SPLITS:
        num_utts = getattr(config, f"num_{split}")
        num_spk = getattr(config, f"num_{split}_speakers")
        if num_utts < 0:
            raise ValueError(f"num_{split} must be >= 0, got {num_utts}")
        if num_spk < 1:
            raise ValueError(f"num_{split}_speakers must be >= 1, got {num_spk}")
    variants = len(_FEMALE_VARIANTS) + len(_MALE_VARIANTS)
    held_out = config.num_dev_speakers + config.num_test_speakers
    if held_out >= variants:
        raise ValueError(
            f"{held_out} dev and test speakers requested, but only {variants} voice "
            "variants exist and training needs some"
        )
    pool = len(_ACCENTS) * (variants - held_out)
    if config.num_train_speakers > pool:
        raise ValueError(
            f"{config.num_train_speakers} training speakers requested but only "
            f"{pool} voices remain after holding out the dev and test variants"
        )
    if not 0 < config.min_wpm <= config.max_wpm:
        raise ValueError(
            f"need 0 < min_wpm <= max_wpm, got {config.min_wpm}, {config.max_wpm}"
        )
    if not 0 <= config.min_pitch <= config.max_pitch <= 99:
        raise ValueError(
            "need 0 <= min_pitch <= max_pitch <= 99, "
            f"got {config.min_pitch}, {config.max_pitch}"
        )
    if not 0 <= config.max_word_gap <= 100:
        raise ValueError(f"need 0 <= max_word_gap <= 100, got {config.max_word_gap}")
    if not 0 < config.min_amplitude <= config.max_amplitude <= 200:
        raise ValueError(
            "need 0 < min_amplitude <= max_amplitude <= 200, "
            f"got {config.min_amplitude}, {config.max_amplitude}"
        )
    if config.sample_rate < 8000:
        raise ValueError(f"sample_rate must be >= 8000, got {config.sample_rate}")
    if config.pad_seconds < 0:
        raise ValueError(f"pad_seconds must be >= 0, got {config.pad_seconds}")
    if config.num_jobs < 1:
        raise ValueError(f"num_jobs must be >= 1, got {config.num_jobs}")


def _speaker_id(accent: str, variant: str) -> str:
    # Lower case letters, digits and "-" only before the "_", so utterance ids
    # "<speaker>-<index>" sort in the same order as their speakers (Kaldi).
    return f"{accent}_{variant.lower()}"


def _variant_family(variant: str) -> str:
    """``iven3`` -> ``iven``: numbered versions of one voice are one family,
    held out together; espeak-ng's plain ``f1``..``f5``, ``m1``..``m8`` are
    distinct voices."""
    if re.fullmatch(r"[fm]\d", variant):
        return variant
    return variant.rstrip("0123456789").lower()


def speaker_splits(config: SynthCorpusConfig) -> Dict[str, List[Tuple[str, str]]]:
    """Assigns disjoint voices to the splits, alternating female and male.

    Dev and test voices are built from voice variants that training never
    hears, in any accent: a test voice differs from every training voice in
    its variant (timbre, formants, pitch contour), not only in the pairing of
    an accent with a variant the model has heard elsewhere. Each dev and test
    variant is used once, with a random accent; training gets the remaining
    variants in all accents, less the numbered versions of a held-out one
    (``steph2`` held out keeps ``steph`` and ``steph3`` out of training too).

    Args:
      config: the corpus config (seed and speakers per split are used).
    Returns:
      For each split, a list of ``(speaker_id, espeak_voice)`` such as
      ``("en-gb_f2", "en-gb+f2")``.
    """
    rng = random.Random(config.seed)
    genders = [list(_FEMALE_VARIANTS), list(_MALE_VARIANTS)]
    for variants in genders:
        rng.shuffle(variants)
    # Interleaving keeps every split close to half female, half male.
    longest = max(map(len, genders))
    order = [g[i] for i in range(longest) for g in genders if i < len(g)]
    splits, start = {}, 0
    for split in ("test", "dev"):
        num = getattr(config, f"num_{split}_speakers")
        chosen = [(rng.choice(_ACCENTS), v) for v in order[start : start + num]]
        start += num
        splits[split] = chosen
    held_out = {_variant_family(v) for v in order[:start]}
    pools = []
    for variants in genders:
        pool = [
            (a, v) for a in _ACCENTS for v in variants
            if _variant_family(v) not in held_out
        ]  # fmt: skip
        rng.shuffle(pool)
        pools.append(pool)
    longest = max(map(len, pools))
    train_order = [p[i] for i in range(longest) for p in pools if i < len(p)]
    splits["train"] = train_order[: config.num_train_speakers]
    return {
        split: sorted((_speaker_id(a, v), f"{a}+{v}") for a, v in splits[split])
        for split in SPLITS
    }


def plan_corpus(config: SynthCorpusConfig) -> Dict[str, List[SynthUtterance]]:
    """Draws every utterance of every split, without synthesising anything.

    Args:
      config: the corpus config.
    Returns:
      For each split, its utterances sorted by id.
    """
    _validate(config)
    plan = {}
    for split, speakers in speaker_splits(config).items():
        utts = []
        for index in range(getattr(config, f"num_{split}")):
            # A string seed is hashed with SHA-512 by `random`, so it is stable
            # across processes and Python runs (unlike hash()).
            rng = random.Random(f"{config.seed}/{split}/{index}")
            speaker, voice = speakers[index % len(speakers)]
            utts.append(
                SynthUtterance(
                    utt_id=f"{speaker}-{split}{index:06d}",
                    speaker=speaker,
                    voice=voice,
                    text=SentenceGenerator(rng.getrandbits(64)).sentence(),
                    wpm=rng.randint(config.min_wpm, config.max_wpm),
                    pitch=rng.randint(config.min_pitch, config.max_pitch),
                    pitch_range=rng.choice(_PITCH_RANGES),
                    word_gap=rng.randint(0, config.max_word_gap),
                    amplitude=rng.randint(config.min_amplitude, config.max_amplitude),
                )
            )
        plan[split] = sorted(utts, key=lambda u: u.utt_id)
    return plan


def _check_espeak(voices: Set[str]) -> str:
    """Fails early if espeak-ng or one of the voices is missing.

    Returns:
      The absolute path of the espeak-ng executable.
    """
    espeak = shutil.which(_ESPEAK)
    if espeak is None:
        raise RuntimeError(
            "espeak-ng was not found on PATH; "
            "install it with `apt-get install espeak-ng`"
        )
    accents: Set[str] = set()
    variants: Set[str] = set()
    for kind, names in (("en", accents), ("variant", variants)):
        listing = subprocess.run(
            [espeak, f"--voices={kind}"], capture_output=True, text=True, check=True
        ).stdout
        for line in listing.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 5:
                names.add(fields[1] if kind == "en" else fields[4].split("/")[-1])
    missing = []
    for voice in sorted(voices):
        accent, variant = voice.split("+")
        if accent not in accents or variant not in variants:
            missing.append(voice)
    if missing:
        raise RuntimeError(f"espeak-ng lacks these voices (too old?): {missing}")
    return espeak


def _parse_wav(data: bytes, where: str) -> Tuple[np.ndarray, int]:
    """Reads espeak-ng's ``--stdout`` wav: 16-bit mono PCM.

    espeak-ng streams, so the sizes in the RIFF header are placeholders; the
    samples are simply everything after the ``data`` chunk header.

    Returns:
      Samples as float32 in [-1, 1), shape ``(T,)``, and the sampling rate.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError(f"{where}: espeak-ng did not produce a wav")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        chunk = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", data[pos + 8 : pos + 16])
            bits = struct.unpack("<H", data[pos + 22 : pos + 24])[0]
            if (fmt, channels, bits) != (1, 1, 16):
                got = (fmt, channels, bits)
                raise RuntimeError(f"{where}: unexpected wav format {got}")
        elif chunk == b"data":
            if rate is None:
                raise RuntimeError(f"{where}: wav has no fmt chunk")
            body = data[pos + 8 :]
            samples = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")
            return samples.astype(np.float32) / 32768, rate
        pos += 8 + size + size % 2
    raise RuntimeError(f"{where}: wav has no data chunk")


@functools.lru_cache(maxsize=None)
def _resampler(orig_rate: int, new_rate: int) -> "torchaudio.transforms.Resample":
    # Imported here so planning and no-op reruns do not pay for importing torch;
    # the cached transform keeps its filter kernel (measured ~1.5 ms per
    # utterance vs ~19 ms for a sox subprocess).
    import torch
    import torchaudio

    torch.set_num_threads(1)  # one process per core already
    return torchaudio.transforms.Resample(orig_rate, new_rate)


def _trim_and_pad(samples: np.ndarray, pad: int, where: str) -> np.ndarray:
    """Cuts espeak-ng's variable leading/trailing silence to exactly ``pad``."""
    loud = np.flatnonzero(np.abs(samples) > _SILENCE_LEVEL)
    if loud.size == 0:
        raise RuntimeError(f"{where}: espeak-ng produced only silence")
    speech = samples[loud[0] : loud[-1] + 1]
    return np.pad(speech, (pad, pad))


def _synthesize(
    utt: SynthUtterance, wav_path: Path, config: SynthCorpusConfig, espeak: str
) -> float:
    """Synthesises one utterance into ``wav_path`` (atomically).

    Args:
      utt: what to say and how.
      wav_path: the output file.
      config: gives the sample rate and the silence padding.
      espeak: absolute path of the espeak-ng executable.
    Returns:
      The duration of the written audio in seconds.
    """
    where = f"utterance {utt.utt_id} ({utt.voice}: {utt.text!r})"
    spoken = " ".join(_SPOKEN_FORM.get(w, w) for w in utt.text.lower().split())
    # Lower case: espeak-ng spells out some all-capital words letter by letter.
    cmd = [espeak, "-v", utt.voice, "-s", str(utt.wpm), "-p", str(utt.pitch)]
    cmd += ["-g", str(utt.word_gap), "-a", str(utt.amplitude), "-m", "--stdout"]
    # SSML for the intonation range, which has no command-line option; the
    # text holds only letters, apostrophes, periods and spaces.
    cmd.append(f'<speak><prosody range="{utt.pitch_range}">{spoken}</prosody></speak>')
    # An absolute path and close_fds=False let Python use posix_spawn instead
    # of fork: with torch loaded that saves ~1/3 of the CPU per utterance.
    # Python's own fds are non-inheritable, so nothing leaks into espeak-ng.
    proc = subprocess.run(cmd, capture_output=True, close_fds=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise RuntimeError(
            f"espeak-ng failed on {where}: exit {proc.returncode}: {stderr}"
        )
    samples, rate = _parse_wav(proc.stdout, where)
    sample_rate = config.sample_rate
    if rate != sample_rate:
        import torch

        samples = _resampler(rate, sample_rate)(torch.from_numpy(samples)).numpy()
    pad = int(round(config.pad_seconds * sample_rate))
    audio = _trim_and_pad(samples, pad, where)
    with atomic_path(wav_path) as tmp:
        audio = np.clip(audio, -1.0, 32767 / 32768)
        sf.write(str(tmp), audio, sample_rate, subtype="PCM_16")
    return len(audio) / sample_rate


def _synthesize_job(job: Tuple[SynthUtterance, Path, SynthCorpusConfig, str]) -> float:
    """Pool entry point; an already written wav is kept (resuming a run)."""
    utt, wav_path, config, espeak = job
    if wav_path.is_file():
        return sf.info(str(wav_path)).duration
    return _synthesize(utt, wav_path, config, espeak)


def _wav_path(out_dir: Path, utt: SynthUtterance) -> Path:
    return out_dir / "wav" / utt.speaker / f"{utt.utt_id}.wav"


def _synthesize_all(
    utts: Sequence[SynthUtterance],
    out_dir: Path,
    config: SynthCorpusConfig,
    espeak: str,
) -> float:
    """Synthesises every utterance with ``config.num_jobs`` processes.

    Returns:
      Total duration in seconds.
    """
    jobs = [(u, _wav_path(out_dir, u), config, espeak) for u in utts]
    bar = tqdm(total=len(jobs), desc="Synthesising", unit="utt")
    total = 0.0
    if config.num_jobs == 1:
        for job in jobs:
            total += _synthesize_job(job)
            bar.update()
    else:
        with multiprocessing.Pool(config.num_jobs) as pool:
            for duration in pool.imap_unordered(_synthesize_job, jobs, chunksize=8):
                total += duration
                bar.update()
    bar.close()
    return total


def _check_sort_order(utts: Sequence[SynthUtterance]) -> None:
    # Kaldi needs utt2spk sorted by utterance to also be sorted by speaker.
    by_utt = [u.speaker for u in sorted(utts, key=lambda u: u.utt_id)]
    if by_utt != sorted(by_utt):
        raise AssertionError("utterance ids do not sort in speaker order")


def _write_kaldi_dir(
    data_dir: Path, utts: Sequence[SynthUtterance], out_dir: Path
) -> None:
    """Writes ``wav.scp``, ``text``, ``utt2spk`` and ``spk2utt``, sorted."""
    _check_sort_order(utts)
    utts = sorted(utts, key=lambda u: u.utt_id)
    spk2utt: Dict[str, List[str]] = {}
    for u in utts:
        spk2utt.setdefault(u.speaker, []).append(u.utt_id)
    files = {
        "wav.scp": [f"{u.utt_id} {_wav_path(out_dir, u)}" for u in utts],
        "text": [f"{u.utt_id} {u.text}" for u in utts],
        "utt2spk": [f"{u.utt_id} {u.speaker}" for u in utts],
        "spk2utt": [f"{s} {' '.join(ids)}" for s, ids in sorted(spk2utt.items())],
    }
    for name, lines in files.items():
        atomic_write_text(data_dir / name, "".join(line + "\n" for line in lines))


def _fingerprint(config: SynthCorpusConfig) -> str:
    # num_jobs does not change the output, so it is not part of the identity.
    fields = dataclasses.asdict(config)
    del fields["num_jobs"]
    fields["format_version"] = _FORMAT_VERSION
    return json.dumps(fields, indent=2, sort_keys=True) + "\n"


def _claim(out_dir: Path, fingerprint: str, name: str) -> bool:
    """True if ``out_dir/name`` holds ``fingerprint``; raises if it holds another."""
    path = out_dir / name
    if not path.is_file():
        return False
    if path.read_text() != fingerprint:
        raise ValueError(
            f"{out_dir} holds a synthetic corpus made with a different config "
            f"(see {path}); remove the directory or choose another one"
        )
    return True


def make_synth_corpus(out_dir: Path, config: SynthCorpusConfig) -> Dict[str, Path]:
    """Synthesises the corpus and writes a Kaldi data dir per split.

    Layout: ``out_dir/wav/<speaker>/<utt_id>.wav`` and
    ``out_dir/<split>/{wav.scp,text,utt2spk,spk2utt}`` with absolute wav paths.
    ``out_dir/.done`` records the config once everything is written; a rerun
    with the same config is then a no-op, and an interrupted run resumes,
    keeping the wavs already written.

    Args:
      out_dir: where the corpus goes; created if missing.
      config: what to generate.
    Returns:
      The Kaldi data dir of each split, keyed by ``"train"``, ``"dev"``, ``"test"``.
    Raises:
      ValueError: on a bad config, or if ``out_dir`` holds a corpus made with
        another config.
      RuntimeError: if espeak-ng is missing or fails on an utterance (the
        message names the utterance).
    """
    out_dir = Path(out_dir).resolve()
    dirs = {split: out_dir / split for split in SPLITS}
    fingerprint = _fingerprint(config)
    _validate(config)
    if _claim(out_dir, fingerprint, ".done"):
        log.info("%s is complete already; nothing to do", out_dir)
        return dirs
    plan = plan_corpus(config)
    all_utts = [u for utts in plan.values() for u in utts]
    espeak = _check_espeak({u.voice for u in all_utts})
    _claim(out_dir, fingerprint, ".config")
    atomic_write_text(out_dir / ".config", fingerprint)
    seconds = _synthesize_all(all_utts, out_dir, config, espeak)
    for split, utts in plan.items():
        _write_kaldi_dir(dirs[split], utts, out_dir)
        num_spk = len({u.speaker for u in utts})
        log.info("%s: %d utterances, %d speakers", split, len(utts), num_spk)
    log.info("Synthesised %.2f hours of audio into %s", seconds / 3600, out_dir)
    atomic_write_text(out_dir / ".done", fingerprint)
    return dirs
