"""Shared fixtures: tiny audio corpora written on the fly (no espeak needed)."""

import os

# Before any test imports grpc: see asrk2/serve/__init__.py (gRPC's fork
# handlers abort children that tests fork after a gRPC server ran).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import pytest
import soundfile as sf

SAMPLE_RATE = 16000


def write_tone(
    path: Path, seconds: float, freq: float, sample_rate: int = SAMPLE_RATE
) -> None:
    """Writes a short chirp-like tone with a little noise (deterministic)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(int(freq))
    wave = 0.3 * np.sin(
        2 * np.pi * freq * t * (1 + 0.2 * t)
    ) + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), sample_rate, subtype="PCM_16")


def write_kaldi_dir(root: Path, utts: Dict[str, str], speaker: str = "spk1") -> Path:
    """A Kaldi data dir with one tone per utterance; returns the dir."""
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    wav_scp, text, utt2spk = [], [], []
    for i, (utt, transcript) in enumerate(sorted(utts.items())):
        wav = root / "wav" / f"{utt}.wav"
        write_tone(wav, 0.8 + 0.3 * i, 200.0 + 50 * i)
        wav_scp.append(f"{utt} {wav}")
        text.append(f"{utt} {transcript}")
        utt2spk.append(f"{utt} {speaker}")
    (data_dir / "wav.scp").write_text("\n".join(wav_scp) + "\n")
    (data_dir / "text").write_text("\n".join(text) + "\n")
    (data_dir / "utt2spk").write_text("\n".join(utt2spk) + "\n")
    (data_dir / "spk2utt").write_text(f"{speaker} " + " ".join(sorted(utts)) + "\n")
    return data_dir


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word lists: a reference for the scorer,
    independent of kaldialign (which it uses)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


@pytest.fixture
def tiny_kaldi_dir(tmp_path: Path) -> Path:
    return write_kaldi_dir(
        tmp_path,
        {
            "spk1-u1": "turn on the lights",
            "spk1-u2": "What time is it?",
            "spk1-u3": "call mom at five",
        },
    )
