"""Noise and room impulse responses made on the spot, for augmentation.

No noise corpus (MUSAN and the like) can be downloaded here, so the noise is
generated: white, pink (1/f power) and brown (1/f^2 power) noise, and babble,
the sum of several training utterances by different speakers. The result is a
directory of 16-bit wavs and a lhotse cut manifest (``noise_cuts.jsonl.gz``)
that :class:`asrk2.data.augment.AudioAugmentConfig` mixes into training cuts
at a random SNR. Babble is made from training speech only, so no test
speaker's voice leaks into training.

Room impulse responses come from lhotse's own simulator
(:class:`lhotse.augmentation.FastRandomRIRGenerator`, random rooms with T60
up to 0.8 s). Simulating one per training cut costs more than the rest of the
data pipeline together (about 30x real time on one core, measured), so a bank
of them is simulated once and written as ``rirs.jsonl.gz``, from which
:class:`~lhotse.dataset.ReverbWithImpulseResponse` draws.
"""

import logging
import random
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import soundfile as sf
from lhotse import CutSet, Recording, RecordingSet
from tqdm import tqdm

from asrk2.utils import atomic_path

__all__ = [
    "NOISE_KINDS", "colored_noise", "make_babble", "make_noise_corpus", "make_rir_bank",
]  # fmt: skip

log = logging.getLogger(__name__)

# Power spectrum exponent of each colour: P(f) ~ 1 / f**exponent.
_COLOURS: Dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}
NOISE_KINDS = tuple(_COLOURS) + ("babble",)
# Peak level of the written noise; CutMix rescales it to the drawn SNR anyway.
_PEAK = 0.5


def colored_noise(kind: str, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a 1/f^k power spectrum, scaled to a peak of 0.5.

    White noise is shaped in the frequency domain (amplitude ~ f^(-k/2)); the
    DC bin is zeroed so the result has no offset.

    Args:
      kind: ``white``, ``pink`` or ``brown``.
      num_samples: length of the output.
      rng: numpy generator.
    Returns:
      float32 samples, shape (num_samples,).
    """
    if kind not in _COLOURS:
        raise ValueError(f"unknown noise colour {kind!r}; known: {sorted(_COLOURS)}")
    if num_samples < 2:
        raise ValueError(f"need at least 2 samples, got {num_samples}")
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    spectrum *= freqs ** (-_COLOURS[kind] / 2)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=num_samples)
    return (noise * _PEAK / max(np.abs(noise).max(), 1e-12)).astype(np.float32)


def make_babble(
    speech: List[np.ndarray], num_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Overlaps utterances into babble: each looped to the length, randomly offset.

    Args:
      speech: float waveforms of different utterances (ideally speakers).
      num_samples: length of the output.
      rng: numpy generator.
    Returns:
      float32 samples, shape (num_samples,), peak 0.5.
    """
    if not speech:
        raise ValueError("babble needs at least one utterance")
    out = np.zeros(num_samples, dtype=np.float64)
    for wave in speech:
        wave = wave / max(np.abs(wave).max(), 1e-12)  # equal loudness
        reps = int(np.ceil(num_samples / len(wave))) + 1
        looped = np.tile(wave, reps)
        start = int(rng.integers(0, len(wave)))
        out += looped[start : start + num_samples]
    return (out * _PEAK / max(np.abs(out).max(), 1e-12)).astype(np.float32)


def _write(path: Path, samples: np.ndarray, sample_rate: int) -> Recording:
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, sample_rate, subtype="PCM_16")
    return Recording.from_file(path.resolve(), recording_id=path.stem)


def make_noise_corpus(
    out_dir: Path,
    speech_cuts: CutSet,
    num_per_kind: int = 10,
    duration: float = 10.0,
    babble_speakers: int = 4,
    sample_rate: int = 16000,
    seed: int = 0,
    max_speech_cuts: Optional[int] = 2000,
) -> CutSet:
    """Writes ``num_per_kind`` recordings of each kind and their cut manifest.

    Args:
      out_dir: where the wavs and ``noise_cuts.jsonl.gz`` go.
      speech_cuts: training cuts with audio; babble is drawn from them.
      num_per_kind: recordings per kind (white, pink, brown, babble).
      duration: seconds per recording.
      babble_speakers: utterances (of distinct speakers when there are enough)
        overlapped in each babble recording.
      sample_rate: must match the speech the noise is mixed into.
      seed: seeds everything.
      max_speech_cuts: babble draws from the first this many cuts (None: all).
    Returns:
      The noise cuts, also saved as ``out_dir/noise_cuts.jsonl.gz``.
    """
    if num_per_kind < 1 or duration <= 0 or babble_speakers < 1:
        raise ValueError(
            "need num_per_kind >= 1, duration > 0 and babble_speakers >= 1, got "
            f"{num_per_kind}, {duration}, {babble_speakers}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    num_samples = int(round(duration * sample_rate))
    by_speaker: Dict[str, List] = {}
    for i, cut in enumerate(speech_cuts):
        if max_speech_cuts is not None and i >= max_speech_cuts:
            break
        if cut.has_recording and cut.sampling_rate == sample_rate:
            speaker = cut.supervisions[0].speaker if cut.supervisions else cut.id
            by_speaker.setdefault(speaker or cut.id, []).append(cut)
    if not by_speaker:
        raise ValueError(
            f"no speech cuts with audio at {sample_rate} Hz to make babble from"
        )
    recordings = []
    jobs = [(kind, i) for kind in NOISE_KINDS for i in range(num_per_kind)]
    for kind, i in tqdm(jobs, desc="noise"):
        path = out_dir / f"{kind}-{i:03d}.wav"
        if kind == "babble":
            num = min(babble_speakers, len(by_speaker))
            speakers = pick.sample(sorted(by_speaker), num)
            waves = []
            for speaker in speakers:
                cut = pick.choice(by_speaker[speaker])
                waves.append(cut.load_audio()[0].astype(np.float64))
            samples = make_babble(waves, num_samples, rng)
        else:
            samples = colored_noise(kind, num_samples, rng)
        recordings.append(_write(path, samples, sample_rate))
    cuts = CutSet.from_cuts(
        r.to_cut() for r in recordings
    )
    manifest = out_dir / "noise_cuts.jsonl.gz"
    with atomic_path(manifest) as tmp:
        cuts.to_file(tmp)
    log.info("Wrote %d noise recordings to %s", len(cuts), out_dir)
    return cuts


def make_rir_bank(
    out_dir: Path, num_rirs: int = 100, sample_rate: int = 16000, seed: int = 0
) -> RecordingSet:
    """Simulates ``num_rirs`` room impulse responses; writes wavs and a manifest.

    Args:
      out_dir: where ``rir-NNN.wav`` and ``rirs.jsonl.gz`` go.
      num_rirs: how many rooms.
      sample_rate: must match the speech they are applied to.
      seed: seeds the rooms and source positions.
    Returns:
      The recordings, also saved as ``out_dir/rirs.jsonl.gz``.
    """
    from lhotse.augmentation import FastRandomRIRGenerator

    if num_rirs < 1:
        raise ValueError(f"num_rirs must be >= 1, got {num_rirs}")
    out_dir = Path(out_dir)
    recordings = []
    for i in tqdm(range(num_rirs), desc="RIRs"):
        generator = FastRandomRIRGenerator(
            sr=sample_rate, room_seed=seed * 100003 + i, source_seed=seed * 100019 + i
        )
        rir = np.asarray(generator(nsource=1), dtype=np.float32)[0]
        path = out_dir / f"rir-{i:03d}.wav"
        with atomic_path(path) as tmp:
            # float wav: an impulse response's tail is far below 16-bit's step.
            sf.write(str(tmp), rir, sample_rate, subtype="FLOAT")
        recordings.append(Recording.from_file(path.resolve(), recording_id=path.stem))
    rirs = RecordingSet.from_recordings(recordings)
    manifest = out_dir / "rirs.jsonl.gz"
    with atomic_path(manifest) as tmp:
        rirs.to_file(tmp)
    log.info("Wrote %d room impulse responses to %s", len(rirs), out_dir)
    return rirs
