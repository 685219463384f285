"""Fbank throughput: kaldifeat vs torchaudio vs lhotse's Fbank, and the whole stage.

Run with ``python bench/run.py --only fbank``. All figures are x real time
(seconds of audio per second of wall time) on the same synthetic 8 s
waveforms, measured in one process. Extraction alone is timed one waveform
at a time with one torch thread (the setting asrk2 uses on CPU, see
``asrk2.features.fbank``) and with torch's default threads. The stage
(decode wav + kaldifeat + lilcom write + manifest) is :func:`compute_fbank` as
``local/compute_fbank.py`` runs it; its parts are timed alone to show what
limits it.
"""

import math
import os
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import soundfile as sf
import torch
import torchaudio
from lhotse import (
    CutSet,
    Fbank,
)
from lhotse import FbankConfig as LhotseFbankConfig
from lhotse import (
    LilcomChunkyWriter,
    Recording,
)
from lhotse.cut import MonoCut

from asrk2.features.fbank import (
    FbankConfig,
    compute_fbank,
    make_fbank_extractor,
    torch_threads,
)
from bench.common import Row

RATE = 16000
NUM_STAGE = 160  # 21 minutes of audio for the stage
NUM_EXTRACT = 30  # 4 minutes for extraction alone
SECONDS = 8.0


def _waves(num: int, seed: int = 0) -> List[np.ndarray]:
    """Speech-like audio: harmonics under a syllable-rate envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SECONDS * RATE)) / RATE
    out = []
    for _ in range(num):
        f0 = rng.uniform(90, 250)
        voiced = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
        env = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        out.append(
            (0.2 * env * voiced + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
        )
    return out


def _cuts(workdir: Path, waves: List[np.ndarray]) -> CutSet:
    cuts = []
    for i, wave in enumerate(waves):
        path = workdir / "wav" / f"u{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), wave, RATE, subtype="PCM_16")
        rec = Recording.from_file(path, recording_id=f"u{i:04d}")
        cuts.append(MonoCut(rec.id, 0.0, rec.duration, 0, recording=rec))
    return CutSet.from_cuts(cuts)


def _interleaved_xrt(
    seconds: float, fns: Dict[str, Callable[[], object]], repeats: int = 3
) -> Dict[str, float]:
    """x real time of each function: its fastest of ``repeats`` rounds.

    The functions take turns within each round (after one warm-up round), so
    a burst of load from other processes hits all of them alike.
    """
    best = {name: math.inf for name in fns}
    for round_ in range(repeats + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_:
                best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds / t for name, t in best.items()}


def _threads(num_threads: int, fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> None:
        with torch_threads(num_threads):
            fn()

    return run


def _extraction_rows(waves: List[np.ndarray]) -> List[Row]:
    kaldifeat = make_fbank_extractor(FbankConfig(device="cpu"))
    lhotse_fbank = Fbank(LhotseFbankConfig(num_filters=80))
    tensors = [torch.from_numpy(w) for w in waves]

    def ours() -> None:
        for w in waves:
            kaldifeat.extract(w, RATE)

    def torchaudio_all() -> None:
        for w in tensors:
            torchaudio.compliance.kaldi.fbank(
                w.unsqueeze(0),
                num_mel_bins=80,
                dither=0.0,
                snip_edges=False,
                low_freq=20.0,
                high_freq=-400.0,
            )

    def lhotse_all() -> None:
        for w in waves:
            lhotse_fbank.extract(w, RATE)

    default = torch.get_num_threads()
    xrt = _interleaved_xrt(
        len(waves) * SECONDS,
        {
            "kaldifeat": _threads(1, ours),
            "torchaudio": _threads(1, torchaudio_all),
            "lhotse": _threads(1, lhotse_all),
            "kaldifeat default threads": _threads(default, ours),
        },
    )
    note = "single 8 s waveforms, 1 torch thread each"
    return [
        Row(
            "fbank extraction x real-time (kaldifeat)",
            xrt["kaldifeat"],
            "x RT",
            "torchaudio.compliance.kaldi.fbank",
            xrt["torchaudio"],
            note,
        ),
        Row(
            "fbank extraction x real-time (kaldifeat)",
            xrt["kaldifeat"],
            "x RT",
            "lhotse Fbank",
            xrt["lhotse"],
            note,
        ),
        Row(
            "fbank extraction x real-time (kaldifeat, 1 thread)",
            xrt["kaldifeat"],
            "x RT",
            f"kaldifeat, torch default {default} threads",
            xrt["kaldifeat default threads"],
            "why compute_fbank uses one thread on CPU",
        ),
    ]


def _stage_functions(cuts: CutSet, out: Path) -> Dict[str, Callable[[], object]]:
    """The stage (with 1 and 0 decoding workers) and each of its parts alone."""
    waves = [c.load_audio()[0] for c in cuts]
    kaldifeat = make_fbank_extractor(FbankConfig(device="cpu"))
    feats = [kaldifeat.extract(w, RATE) for w in waves]
    out.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        with LilcomChunkyWriter(out / "w.lca", mode="w") as writer:
            for i, f in enumerate(feats):
                writer.write(str(i), f)

    def stage(num_workers: int) -> Callable[[], object]:
        config = FbankConfig(device="cpu", num_workers=num_workers)
        return lambda: compute_fbank(cuts, out / "f", out / "f.jsonl.gz", config)

    return {
        "decode": lambda: [c.load_audio() for c in cuts],
        "extract": _threads(1, lambda: [kaldifeat.extract(w, RATE) for w in waves]),
        "write": write,
        "stage, 1 worker": stage(1),
        "stage, 0 workers": stage(0),
    }


def _stage_rows(workdir: Path, waves: List[np.ndarray]) -> List[Row]:
    cuts = _cuts(workdir, waves)
    audio = sum(c.duration for c in cuts)
    xrt = _interleaved_xrt(audio, _stage_functions(cuts, workdir / "fbank"), 2)
    ceiling = 1.0 / sum(1.0 / xrt[k] for k in ("decode", "extract", "write"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        Row(
            "fbank stage x real-time (decode+extract+lilcom write)",
            xrt["stage, 1 worker"],
            "x RT",
            "same, audio decoded in the main process",
            xrt["stage, 0 workers"],
            f"compute_fbank on {audio / 60:.0f} min of 8 s wavs; "
            "1 dataloader worker vs 0; "
            f"load average {load} on {os.cpu_count()} cores",
        ),
        Row(
            "stage part alone: wav decode",
            xrt["decode"],
            "x RT",
            "stage part alone: lilcom write",
            xrt["write"],
            "one thread each",
        ),
        Row(
            "stage part alone: kaldifeat (1 thread)",
            xrt["extract"],
            "x RT",
            "one core doing all three parts in turn",
            ceiling,
            "CPU-bound: 2 free cores give at most ~2x the one-core figure",
        ),
    ]


def run(workdir: Path) -> List[Row]:
    """Measures extraction alone and the whole stage; see the module docstring."""
    waves = _waves(NUM_STAGE)
    rows = _extraction_rows(waves[:NUM_EXTRACT])
    return rows + _stage_rows(Path(workdir), waves)
