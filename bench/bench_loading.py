"""Data loading: training batches per second against dataloader workers and pinning.

The demo's training cuts go through the training DataLoader exactly as
``conf/demo.yaml`` configures it (dynamic bucketing and its on-the-fly audio
augmentation; SpecAugment is applied to the batch by the trainer, not
here), with 0, 1 and 2 worker processes
and ``pin_memory`` on and off; the first ``WARMUP`` batches (worker start-up)
are not timed, then ``BATCHES`` batches are, best of ``REPEATS`` runs
after one untimed pass (so that no setting pays for a cold page cache).
On a machine without CUDA
``pin_memory`` does nothing (asrk2 pins only when CUDA is there), which the
rows show; with a GPU, pinning speeds up the copy to the device.

Usage:
    python bench/run.py --only loading
"""

import dataclasses
import time
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import torch
from lhotse import load_manifest_lazy

from asrk2.config import load_yaml
from asrk2.data.datamodule import make_train_loader
from asrk2.experiment import ExperimentConfig
from bench.common import DEMO_RECIPE, Row, cwd

WARMUP = 5
BATCHES = 100
REPEATS = 3


def batches_per_second(num_workers: int, pin_memory: bool) -> float:
    config = load_yaml(ExperimentConfig, DEMO_RECIPE / "conf/demo.yaml")
    data = dataclasses.replace(
        config.data, num_workers=num_workers, pin_memory=pin_memory
    )
    cuts = load_manifest_lazy(DEMO_RECIPE / "data/fbank/synth_cuts_train.jsonl.gz")
    loader = make_train_loader(cuts, data, seed=0, world_size=1, rank=0)
    return timed_batches(loader, BATCHES)


def timed_batches(loader: Iterable, batches: int, warmup: int = WARMUP) -> float:
    """Batches/s of ``batches`` batches after ``warmup`` untimed ones."""
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches / (time.perf_counter() - start)


def run(workdir: Path) -> List[Row]:
    cuts = DEMO_RECIPE / "data/fbank/synth_cuts_train.jsonl.gz"
    if not cuts.is_file():
        raise RuntimeError("no demo training cuts: run `make demo` first")
    torch.set_num_threads(1)
    with cwd(DEMO_RECIPE):
        batches_per_second(0, False)  # warms the page cache
        rates: Dict[Tuple[int, bool], float] = {
            (w, pin): max(batches_per_second(w, pin) for _ in range(REPEATS))
            for w in (0, 1, 2)
            for pin in (False, True)
        }
    cuda = "with CUDA" if torch.cuda.is_available() else "no CUDA: pinning is off"
    rows = []
    for workers in (1, 2):
        rows.append(
            Row(f"training batches/s, {workers} dataloader worker(s)",
                rates[workers, False], "batches/s", "0 workers (main process)",
                rates[0, False],
                f"demo training loader as configured; best of {REPEATS} x "
                f"{BATCHES} batches; 2 cores")
        )  # fmt: skip
    for workers in (0, 1, 2):
        rows.append(
            Row(f"training batches/s, {workers} worker(s), pin_memory on",
                rates[workers, True], "batches/s", "pin_memory off",
                rates[workers, False], cuda)
        )  # fmt: skip
    return rows
