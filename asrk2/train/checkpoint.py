"""Checkpoints: atomic save, load, and averaging of the last K."""
import logging
from pathlib import Path
from typing import Any, Dict, List

import torch

from asrk2.utils import atomic_path

__all__ = ["save_checkpoint", "load_checkpoint", "average_checkpoints", "epoch_checkpoints"]

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, state: Dict[str, Any]) -> None:
    """Writes ``state`` with ``torch.save`` to a temp file, then renames it."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    log.info("Saved %s", path)


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """Loads a checkpoint onto the CPU."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location="cpu")


def epoch_checkpoints(exp_dir: Path) -> List[Path]:
    """``epoch-N.pt`` files of an experiment dir, in epoch order."""
    paths = list(Path(exp_dir).glob("epoch-*.pt"))
    return sorted(paths, key=lambda p: int(p.stem.split("-")[1]))


def average_checkpoints(paths: List[Path]) -> Dict[str, torch.Tensor]:
    """Element-wise mean of the model weights of several checkpoints.

    Integer buffers (e.g. BatchNorm's ``num_batches_tracked``) are taken from
    the last checkpoint, since averaging counters is meaningless.

    Args:
      paths: checkpoints saved by the trainer (with a ``model`` entry).
    Returns:
      A model ``state_dict``.
    """
    if not paths:
        raise ValueError("no checkpoints to average")
    avg: Dict[str, torch.Tensor] = {}
    for path in paths:
        state = load_checkpoint(path)["model"]
        for name, value in state.items():
            if not value.is_floating_point():
                avg[name] = value.clone()
            elif name in avg:
                avg[name] += value.double()
            else:
                avg[name] = value.double().clone()
    ref = load_checkpoint(paths[-1])["model"]
    return {
        name: (v / len(paths)).to(ref[name].dtype) if v.is_floating_point() else v
        for name, v in avg.items()
    }
