#!/usr/bin/env python3
"""Check kaldifeat fbank on CUDA against CPU and torchaudio; print diffs and speed.

Usage:
    python tools/check_gpu_fbank.py                       # 64 waves of 8 s
    python tools/check_gpu_fbank.py --num-waves 256 --seconds 15 --tolerance 1e-3

Needs only torch, torchaudio, numpy and kaldifeat (no lhotse). The options are
those asrk2 uses (asrk2.features.fbank): 80 mel bins, no dither,
snip_edges=False, low_freq=20, high_freq=-400, samples in [-1, 1].
Prints the max |difference| between kaldifeat on CUDA, kaldifeat on CPU and
torchaudio.compliance.kaldi.fbank, and the speed of each as x real time for
one waveform at a time and for the whole list in one batched call. Exits 1 if
a difference exceeds --tolerance. Without CUDA, only CPU vs torchaudio runs.
"""
import argparse
import sys
import time
from typing import Callable, List

import kaldifeat
import numpy as np
import torch
import torchaudio

RATE = 16000


def make_waves(num: int, seconds: float, seed: int = 0) -> List[torch.Tensor]:
    """Speech-like random audio: noise and harmonics under a syllable-rate envelope."""
    rng = np.random.default_rng(seed)
    waves = []
    for _ in range(num):
        n = int(seconds * RATE * rng.uniform(0.7, 1.0))
        t = np.arange(n) / RATE
        f0 = rng.uniform(90, 250)
        voiced = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
        envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        x = 0.2 * envelope * voiced + 0.02 * rng.standard_normal(n)
        waves.append(torch.from_numpy(x.astype(np.float32)))
    return waves


def kaldifeat_fbank(device: str) -> kaldifeat.Fbank:
    opts = kaldifeat.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    opts.mel_opts.num_bins = 80
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = -400.0
    opts.energy_floor = 1e-10
    opts.device = torch.device(device)
    return kaldifeat.Fbank(opts)


def torchaudio_fbank(wave: torch.Tensor) -> torch.Tensor:
    return torchaudio.compliance.kaldi.fbank(
        wave.unsqueeze(0),
        num_mel_bins=80,
        dither=0.0,
        snip_edges=False,
        low_freq=20.0,
        high_freq=-400.0,
        sample_frequency=RATE,
        energy_floor=0.0,
    )


def best_time(fn: Callable[[], object], repeats: int, cuda: bool) -> float:
    """Fastest of ``repeats`` calls after a warm-up (synchronising CUDA)."""
    fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def max_diff(a: List[torch.Tensor], b: List[torch.Tensor]) -> float:
    return max(float((x.cpu() - y.cpu()).abs().max()) for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-waves", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args()
    waves = make_waves(args.num_waves, args.seconds)
    audio = sum(len(w) for w in waves) / RATE
    print(
        f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, "
        f"{torch.get_num_threads()} CPU threads; "
        f"{len(waves)} waves, {audio:.0f} s of audio"
    )
    cpu = kaldifeat_fbank("cpu")
    ref = [torchaudio_fbank(w) for w in waves]
    on_cpu = cpu(waves)
    diffs = {"kaldifeat cpu vs torchaudio": max_diff(on_cpu, ref)}
    speed = {
        "torchaudio, one wave at a time": best_time(
            lambda: [torchaudio_fbank(w) for w in waves], args.repeats, False
        ),
        "kaldifeat cpu, one wave at a time": best_time(
            lambda: [cpu(w) for w in waves], args.repeats, False
        ),
        "kaldifeat cpu, batched": best_time(lambda: cpu(waves), args.repeats, False),
    }
    if torch.cuda.is_available():
        gpu = kaldifeat_fbank("cuda")
        on_gpu_waves = [w.cuda() for w in waves]
        diffs["kaldifeat cuda vs kaldifeat cpu"] = max_diff(gpu(on_gpu_waves), on_cpu)
        diffs["kaldifeat cuda vs torchaudio"] = max_diff(gpu(on_gpu_waves), ref)
        diffs["kaldifeat cuda (cpu input) vs cpu"] = max_diff(gpu(waves), on_cpu)
        speed["kaldifeat cuda, batched, waves on GPU"] = best_time(
            lambda: gpu(on_gpu_waves), args.repeats, True
        )
        speed["kaldifeat cuda, batched, waves on CPU (as lhotse passes them)"] = (
            best_time(lambda: gpu(waves), args.repeats, True)
        )
        speed["kaldifeat cuda, one wave at a time"] = best_time(
            lambda: [gpu(w) for w in on_gpu_waves], args.repeats, True
        )
        print(f"CUDA device: {torch.cuda.get_device_name(0)}")
    else:
        print("CUDA not available: only CPU checks ran")
    failed = False
    for name, value in diffs.items():
        ok = value < args.tolerance
        failed |= not ok
        print(f"max |diff| {name:40s} {value:.2e}  {'ok' if ok else 'FAIL'}")
    for name, seconds in speed.items():
        print(f"{name:62s} {audio / seconds:10,.0f} x real time")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
