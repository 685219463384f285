"""Per-epoch metrics: ``metrics.jsonl`` rows and the training-curves PNG."""

import json
import logging
from pathlib import Path
from typing import Any, Dict

from asrk2.train.plot import plot_training_curves
from asrk2.utils import atomic_write_text

__all__ = ["append_metrics"]

log = logging.getLogger(__name__)


def append_metrics(exp_dir: Path, row: Dict[str, Any]) -> None:
    """Appends a row to ``exp_dir/metrics.jsonl`` (atomically) and replots the curves.

    A resumed run may repeat an epoch whose row was written before the
    interruption; the row of the same epoch is then replaced, not duplicated.
    """
    metrics = Path(exp_dir) / "metrics.jsonl"
    rows = []
    if metrics.exists():
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line]
    rows = [r for r in rows if r.get("epoch") != row.get("epoch")] + [row]
    atomic_write_text(metrics, "".join(json.dumps(r) + "\n" for r in rows))
    try:
        plot_training_curves(metrics, Path(exp_dir) / "training-curves.png")
    except ImportError as e:  # matplotlib is optional for training itself
        log.warning("No training-curves plot: %s", e)
