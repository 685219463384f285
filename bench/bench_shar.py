"""Training batches/s from lhotse Shar shards against the jsonl manifest.

The demo's training cuts with their precomputed lilcom fbank (6,000 cuts)
are exported to Shar (features re-encoded as lilcom in tars, 500 cuts per
shard); both are read through the training loader as the demo config sets
it, but with precomputed features and no audio augmentation (Shar carries
the features; the comparison is of reading them): from the manifest, each
cut's features are read from the lilcom archive by offset; from Shar,
shards are read front to back. 0 and 2 dataloader workers; the first
5 batches are not timed, then ``BATCHES`` are, best of ``REPEATS``.

Usage:
    python bench/run.py --only shar
"""

import dataclasses
import time
from pathlib import Path
from typing import List, Optional

import torch
from lhotse import CutSet, load_manifest_lazy

from asrk2.config import load_yaml
from asrk2.data.augment import AudioAugmentConfig
from asrk2.data.datamodule import make_train_loader
from asrk2.data.shar import SharCuts, export_shar
from asrk2.experiment import ExperimentConfig
from bench.bench_loading import timed_batches
from bench.common import DEMO_RECIPE, Row, cwd

BATCHES = 150
REPEATS = 3
TRAIN_CUTS = DEMO_RECIPE / "data/fbank/synth_cuts_train.jsonl.gz"


def batches_per_second(num_workers: int, shar_dir: Optional[Path]) -> float:
    config = load_yaml(ExperimentConfig, DEMO_RECIPE / "conf/demo.yaml")
    data = dataclasses.replace(
        config.data, num_workers=num_workers, on_the_fly_features=False,
        augment=AudioAugmentConfig(), shar_dir=str(shar_dir or ""),
    )  # fmt: skip
    source = SharCuts(shar_dir, seed=0) if shar_dir else None
    cuts = CutSet(source) if source else load_manifest_lazy(TRAIN_CUTS)
    loader = make_train_loader(cuts, data, seed=0, world_size=1, rank=0,
                               shar_source=source)  # fmt: skip
    return timed_batches(loader, BATCHES)


def run(workdir: Path) -> List[Row]:
    if not TRAIN_CUTS.is_file():
        raise RuntimeError("no demo training cuts: run `make demo` first")
    torch.set_num_threads(1)
    shar_dir = workdir / "shar"
    with cwd(DEMO_RECIPE):
        start = time.perf_counter()
        shards = export_shar(load_manifest_lazy(TRAIN_CUTS), shar_dir, shard_size=500)
        export_s = time.perf_counter() - start
        batches_per_second(0, None)  # warms the page cache
        rows = []
        for workers in (0, 2):
            manifest = max(batches_per_second(workers, None) for _ in range(REPEATS))
            shar = max(batches_per_second(workers, shar_dir) for _ in range(REPEATS))
            rows.append(
                Row(f"training batches/s from Shar, {workers} dataloader worker(s)",
                    shar, "batches/s", "jsonl manifest + lilcom archive", manifest,
                    f"demo training cuts, precomputed fbank, {shards} shards; best "
                    f"of {REPEATS} x {BATCHES} batches; 2 cores")
            )  # fmt: skip
    size = sum(p.stat().st_size for p in shar_dir.iterdir()) / 2**20
    rows.append(Row("Shar export, demo training cuts with fbank", export_s, "s",
                    note=f"{shards} shards, {size:.0f} MiB"))  # fmt: skip
    return rows
