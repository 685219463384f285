"""The training sampler at GigaSpeech XL size: 8,000,000 cuts, rank 0 of 8.

A lazy manifest of 8,000,000 synthetic cuts (no audio; durations drawn like
GigaSpeech's segments: log-normal around 3.5 s, within 1-20 s; one
supervision each, with a recording entry as the prepared manifests have)
goes through ``filter_cuts`` and ``make_sampler`` exactly as the datamodule
configures them for ``egs/gigaspeech/ASR/conf/conformer_ctc.yaml``
(``DynamicBucketingSampler``, 30 buckets, 200 s per batch), as rank 0 of a
simulated world of 8. In a fresh process (``ru_maxrss`` its own): time to
the first batch (bucket estimation and the first buffer), batches/s over
the next ``BATCHES``, then the sampler state saved there, restored into a
new sampler, and the time to its next batch, which must be the batch the
first sampler gives next.

Usage:
    python bench/run.py --only sampler
"""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from tqdm import tqdm

from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent

NUM_CUTS = int(os.environ.get("SAMPLER_BENCH_CUTS", "8000000"))
WORLD_SIZE = 8
BATCHES = 2000
CONFIG = ROOT / "egs/gigaspeech/ASR/conf/conformer_ctc.yaml"


def write_manifest(path: Path, num_cuts: int, seed: int = 0) -> float:
    """Writes the synthetic cuts as jsonl.gz; returns their total hours."""
    rng = np.random.default_rng(seed)
    total = 0.0
    with gzip.open(path, "wt", compresslevel=1) as f:
        for start in tqdm(range(0, num_cuts, 100_000), desc="manifest", unit="100k"):
            n = min(100_000, num_cuts - start)
            durations = np.clip(rng.lognormal(np.log(3.5), 0.6, n), 1.0, 20.0)
            durations = np.round(durations, 2)
            total += float(durations.sum())
            lines = []
            for i, d in zip(range(start, start + n), durations.tolist()):
                cut_id = f"POD{i // 1000:07d}_S{i % 1000:04d}"
                lines.append(json.dumps({
                    "id": cut_id, "start": 0.0, "duration": d, "channel": 0,
                    "supervisions": [{
                        "id": cut_id, "recording_id": cut_id, "start": 0.0,
                        "duration": d, "channel": 0, "speaker": f"POD{i // 1000:07d}",
                        "language": "English",
                        "text": "AS THEY SAY IN THE TRADE THE NUMBERS ARE IN",
                    }],
                    "recording": {
                        "id": cut_id, "sampling_rate": 16000,
                        "num_samples": int(round(d * 16000)), "duration": d,
                        "channel_ids": [0],
                        "sources": [{"type": "file", "channels": [0],
                                     "source": f"audio/{cut_id}.opus"}],
                    },
                    "type": "MonoCut",
                }))  # fmt: skip
            f.write("\n".join(lines) + "\n")
    return total / 3600


def _measure_worker(manifest: str, batches: int) -> Dict[str, Any]:
    """Runs in a fresh process: the timings and peak RSS of rank 0's sampler."""
    import resource
    import time

    from lhotse import load_manifest_lazy

    from asrk2.config import load_yaml
    from asrk2.data.datamodule import filter_cuts, make_sampler
    from asrk2.experiment import ExperimentConfig

    data = load_yaml(ExperimentConfig, CONFIG).data

    def sampler():
        cuts, _ = filter_cuts(load_manifest_lazy(manifest), data)
        return make_sampler(cuts, data, shuffle=True, seed=0,
                            world_size=WORLD_SIZE, rank=0)  # fmt: skip

    start = time.perf_counter()
    first = sampler()
    it = iter(first)
    next(it)
    to_first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches / (time.perf_counter() - start)
    state = first.state_dict()
    expected = [c.id for c in next(it)]
    start = time.perf_counter()
    second = sampler()
    second.load_state_dict(state)
    got = [c.id for c in next(iter(second))]
    restore = time.perf_counter() - start
    return {
        "to_first": to_first, "batches_per_s": rate, "restore_s": restore,
        "same_batch": got == expected, "batch_cuts": len(expected),
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }  # fmt: skip


def run(workdir: Path) -> List[Row]:
    manifest = workdir / "cuts_xl.jsonl.gz"
    hours = write_manifest(manifest, NUM_CUTS)
    code = (
        "import json, sys; from bench.bench_sampler import _measure_worker; "
        "print(json.dumps(_measure_worker(sys.argv[1], int(sys.argv[2]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(manifest), str(BATCHES)],
        cwd=ROOT, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"sampler benchmark failed:\n{proc.stderr[-3000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if not r["same_batch"]:
        raise RuntimeError("the restored sampler gave another batch than the original")
    what = f"{NUM_CUTS:,} cuts ({hours:,.0f} h, lazy jsonl.gz), rank 0 of {WORLD_SIZE}"
    note = "DynamicBucketingSampler as conformer_ctc.yaml sets it (30 buckets, 200 s)"
    return [
        Row(f"sampler time to first batch, {what}", r["to_first"], "s", note=note),
        Row(f"sampler batches/s, {what}", r["batches_per_s"], "batches/s",
            note=f"over {BATCHES} batches after the first; {r['batch_cuts']} cuts "
            "per batch"),
        Row(f"sampler state restore to next batch, {what}", r["restore_s"], "s",
            "time to first batch from the start", r["to_first"],
            f"state saved after {BATCHES + 1} batches; the restored sampler's next "
            "batch equals the original's"),
        Row(f"sampler peak RSS, {what}", r["peak_gib"], "GiB",
            note="fresh process: lazy manifest, 20,000-cut bucketing buffer"),
    ]  # fmt: skip
