"""Averaging the last K checkpoints of an experiment into one decodable model."""

import logging
from pathlib import Path
from typing import Optional

from asrk2.checkpoint import (
    average_checkpoints,
    epoch_checkpoints,
    load_checkpoint,
    save_checkpoint,
    step_checkpoints,
)

__all__ = ["average_last"]

log = logging.getLogger(__name__)


def average_last(
    exp_dir: Path,
    avg: int,
    last: Optional[int] = None,
    steps: bool = False,
    out: Optional[Path] = None,
) -> Path:
    """Averages the ``avg`` newest checkpoints up to ``last`` and saves the model.

    Args:
      exp_dir: the experiment directory.
      avg: how many checkpoints to average (>= 1).
      last: newest epoch (or step, with ``steps``) to include; default: newest.
      steps: use ``checkpoint-STEP.pt`` files instead of ``epoch-N.pt``.
      out: output path; default ``averaged-{epoch|step}-LAST-avg-K.pt`` in exp_dir.
    Returns:
      The output path; it holds ``model``, ``config`` and ``averaged_from``.
    """
    if avg < 1:
        raise ValueError(f"avg must be >= 1, got {avg}")
    exp_dir = Path(exp_dir)
    paths = step_checkpoints(exp_dir) if steps else epoch_checkpoints(exp_dir)
    if last is not None:
        paths = [p for p in paths if int(p.stem.split("-")[1]) <= last]
    if len(paths) < avg:
        kind = "step" if steps else "epoch"
        raise FileNotFoundError(
            f"need {avg} {kind} checkpoints in {exp_dir} (<= {last}), "
            f"found {len(paths)}"
        )
    chosen = paths[-avg:]
    newest = int(chosen[-1].stem.split("-")[1])
    kind = "step" if steps else "epoch"
    out = Path(out) if out else exp_dir / f"averaged-{kind}-{newest}-avg-{avg}.pt"
    state = {
        "model": average_checkpoints(chosen),
        "config": load_checkpoint(chosen[-1])["config"],
        "averaged_from": [p.name for p in chosen],
    }
    save_checkpoint(out, state)
    log.info("Averaged %s", ", ".join(p.name for p in chosen))
    return out
