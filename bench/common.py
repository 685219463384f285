"""What every benchmark returns, and how the results file is written.

A benchmark is a module ``bench/bench_<name>.py`` with a function
``run(workdir: Path) -> List[Row]``. Each row compares a figure with a
comparison figure measured in the same run (same data, same process), so the
ratio is meaningful even on a noisy machine.
"""

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from asrk2.utils import machine_info

__all__ = [
    "Row", "DemoModel", "demo_model", "cwd", "machine_info", "timed", "best_of",
]  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent
DEMO_RECIPE = ROOT / "egs/synth/ASR"


@dataclass
class Row:
    """One line of ``bench/RESULTS.md``.

    Attributes:
      benchmark: what is measured, e.g. ``fbank x real-time``.
      value: the figure for asrk2's way.
      unit: unit of ``value`` and ``comparison_value``.
      comparison: what it is compared with, e.g. ``torchaudio.compliance.kaldi``.
      comparison_value: that figure, measured in the same run; None if none.
      note: anything needed to read the row.
    """

    benchmark: str
    value: float
    unit: str
    comparison: str = ""
    comparison_value: Optional[float] = None
    note: str = ""

    @property
    def ratio(self) -> Optional[float]:
        if self.comparison_value is None or self.comparison_value == 0:
            return None
        return self.value / self.comparison_value


@contextmanager
def timed() -> Iterator[List[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    out: List[float] = []
    start = time.perf_counter()
    yield out
    out.append(time.perf_counter() - start)


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass
class DemoModel:
    """Where ``make demo`` leaves the trained demo model and its test set.

    Attributes:
      recipe: ``egs/synth/ASR``; the cuts' feature paths are relative to it.
      exp_dir: the checkpoints (``exp/demo``).
      lang_dir: ``data/lang_bpe_<nbpe>`` of ``conf/demo.yaml``.
      test_cuts: test-set cuts with fbank.
      epoch: the newest epoch.
      avg: epochs averaged, as the demo decodes.
    """

    recipe: Path
    exp_dir: Path
    lang_dir: Path
    test_cuts: Path
    epoch: int
    avg: int


def demo_model() -> Optional[DemoModel]:
    """The demo model of ``make demo``; None if it has not been trained yet."""
    from asrk2.checkpoint import epoch_checkpoints
    from asrk2.config import load_yaml
    from asrk2.experiment import ExperimentConfig

    config = load_yaml(ExperimentConfig, DEMO_RECIPE / "conf/demo.yaml")
    exp_dir = DEMO_RECIPE / "exp/demo"
    lang_dir = DEMO_RECIPE / f"data/lang_bpe_{config.lang.nbpe}"
    test_cuts = DEMO_RECIPE / "data/fbank/synth_cuts_test.jsonl.gz"
    checkpoints = epoch_checkpoints(exp_dir) if exp_dir.is_dir() else []
    needed = (test_cuts, lang_dir / "bpe.model", lang_dir / "HLG.pt")
    if len(checkpoints) < config.decode.avg or not all(p.is_file() for p in needed):
        return None
    epoch = int(checkpoints[-1].stem.split("-")[1])
    avg = config.decode.avg
    return DemoModel(DEMO_RECIPE, exp_dir, lang_dir, test_cuts, epoch, avg)


@contextmanager
def cwd(path: Path) -> Iterator[None]:
    """Runs a block in ``path`` (the recipe's feature paths are relative)."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
