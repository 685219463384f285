"""What every benchmark returns, and how the results file is written.

A benchmark is a module ``bench/bench_<name>.py`` with a function
``run(workdir: Path) -> List[Row]``. Each row compares a figure with a
comparison figure measured in the same run (same data, same process), so the
ratio is meaningful even on a noisy machine.
"""

import os
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional

import torch

__all__ = ["Row", "machine_info", "timed", "best_of"]


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
        if self.comparison_value in (None, 0):
            return None
        return self.value / self.comparison_value


def machine_info() -> str:
    """Cores, CPU model and torch threads, for the results header."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {model}, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}"
    )


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
