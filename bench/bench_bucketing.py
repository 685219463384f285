"""Padding of dynamic bucketing vs simple sampling, on the same lazily read cuts.

Run with ``python bench/run.py --only bucketing``. The cuts are dummies whose
durations follow a GigaSpeech-like distribution (log-normal, median 3.5 s,
clipped to 1-20 s), written to a jsonl.gz manifest and read lazily, as the
training loader reads a large corpus. The padding ratio is the share of
frames in the batch tensors that are padding (rows padded to the longest cut).
"""

import time
from pathlib import Path
from typing import List, Tuple

import numpy as np
from lhotse import CutSet, SupervisionSegment
from lhotse.dataset import SimpleCutSampler
from lhotse.testing.dummies import dummy_cut

from asrk2.data.datamodule import DataConfig, PaddingStats, make_sampler, padding_stats
from bench.common import Row

NUM_CUTS = 20000
SETTINGS = ((200.0, 30), (200.0, 10), (600.0, 30))


def _write_cuts(path: Path, seed: int = 0) -> float:
    """Writes the dummy cuts; returns their total duration in hours."""
    rng = np.random.default_rng(seed)
    durations = np.exp(rng.normal(np.log(3.5), 0.6, NUM_CUTS)).clip(1.0, 20.0).round(2)
    with CutSet.open_writer(path) as writer:
        for i, d in enumerate(durations):
            rec_id = f"dummy-recording-{i:04d}"
            sup = SupervisionSegment(f"s{i}", rec_id, 0.0, float(d), text="A")
            writer.write(dummy_cut(i, duration=float(d), supervisions=[sup]))
    return float(durations.sum()) / 3600


def _epoch(sampler) -> Tuple[PaddingStats, float]:
    start = time.perf_counter()
    stats = padding_stats(sampler)
    return stats, time.perf_counter() - start


def run(workdir: Path) -> List[Row]:
    """Padding ratio and sampling speed of both samplers for a few settings."""
    path = Path(workdir) / "cuts.jsonl.gz"
    hours = _write_cuts(path)
    rows = []
    for max_duration, num_buckets in SETTINGS:
        cuts = CutSet.from_jsonl_lazy(path)
        config = DataConfig(max_duration=max_duration, num_buckets=num_buckets)
        bucketed, t_bucketed = _epoch(make_sampler(cuts, config, shuffle=True))
        simple, t_simple = _epoch(
            SimpleCutSampler(cuts, max_duration=max_duration, shuffle=True)
        )
        setting = f"max_duration={max_duration:g} s, num_buckets={num_buckets}"
        rows.append(
            Row(
                "padding ratio, DynamicBucketingSampler",
                100 * bucketed.ratio,
                "% of frames",
                "SimpleCutSampler (shuffled)",
                100 * simple.ratio,
                f"{setting}; {NUM_CUTS} cuts, {hours:.1f} h, lazy jsonl.gz",
            )
        )
        rows.append(
            Row(
                "sampling speed, DynamicBucketingSampler",
                NUM_CUTS / t_bucketed,
                "cuts/s",
                "SimpleCutSampler (shuffled)",
                NUM_CUTS / t_simple,
                f"{setting}; one epoch, {bucketed.num_batches} vs "
                f"{simple.num_batches} batches",
            )
        )
    return rows
