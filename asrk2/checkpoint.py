"""Checkpoints: atomic save, load, finding the latest, RNG state, averaging.

Also :func:`load_model`, the one way decoding, export and serving get a
trained model: rebuilt from the resolved config stored in the checkpoint.
Training, decoding and export all sit above this module; none of them
imports another to read a checkpoint.
"""

import logging
import random
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from asrk2.experiment import ExperimentConfig, experiment_config_from_checkpoint
from asrk2.model.ctc_model import CtcModel
from asrk2.utils import atomic_path, atomic_write_text

__all__ = [
    "CorruptCheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "average_checkpoints",
    "epoch_checkpoints",
    "step_checkpoints",
    "latest_checkpoint",
    "latest_intact_checkpoint",
    "mark_latest",
    "prune_step_checkpoints",
    "rng_state",
    "set_seed",
    "set_rng_state",
    "load_model",
    "load_model_or_exit",
    "checkpoint_config",
]

log = logging.getLogger(__name__)

LATEST = "latest-checkpoint.txt"


def save_checkpoint(path: Path, state: Dict[str, Any]) -> None:
    """Writes ``state`` with ``torch.save`` to a temp file, then renames it."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    log.info("Saved %s", path)


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file (named in the message) exists but cannot be read."""


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Loads a checkpoint onto the CPU.

    Raises:
      FileNotFoundError: when ``path`` does not exist.
      CorruptCheckpointError: when it is truncated or otherwise unreadable.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        # Explicit because torch >= 2.6 defaults to weights_only=True, which
        # refuses the numpy RNG state and plain objects a training checkpoint
        # holds.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises RuntimeError, EOFError, pickle errors
        raise CorruptCheckpointError(
            f"checkpoint {path} cannot be read (truncated or corrupt): "
            f"{type(e).__name__}: {e}"
        ) from e


def epoch_checkpoints(exp_dir: Path) -> List[Path]:
    """``epoch-N.pt`` files of an experiment dir, in epoch order."""
    paths = [
        p
        for p in Path(exp_dir).glob("epoch-*.pt")
        if re.fullmatch(r"epoch-\d+", p.stem)
    ]
    return sorted(paths, key=lambda p: int(p.stem.split("-")[1]))


def step_checkpoints(exp_dir: Path) -> List[Path]:
    """``checkpoint-STEP.pt`` files of an experiment dir, in step order."""
    paths = [
        p
        for p in Path(exp_dir).glob("checkpoint-*.pt")
        if re.fullmatch(r"checkpoint-\d+", p.stem)
    ]
    return sorted(paths, key=lambda p: int(p.stem.split("-")[1]))


def mark_latest(path: Path) -> None:
    """Records ``path`` (by name) as the experiment's newest checkpoint."""
    atomic_write_text(Path(path).parent / LATEST, Path(path).name + "\n")


def latest_checkpoint(exp_dir: Path) -> Optional[Path]:
    """The checkpoint last recorded by :func:`mark_latest`, or None."""
    marker = Path(exp_dir) / LATEST
    if not marker.is_file():
        return None
    path = Path(exp_dir) / marker.read_text().strip()
    return path if path.is_file() else None


def latest_intact_checkpoint(exp_dir: Path) -> Optional[Path]:
    """The newest checkpoint of ``exp_dir`` that loads, for resuming.

    Tries the one :func:`mark_latest` recorded, then every step and epoch
    checkpoint, newest file first. A file that cannot be read (a disk that
    filled up, a copy cut short) is named in a warning and passed over.

    Returns:
      The path, or None when there is no readable checkpoint.
    """
    candidates = step_checkpoints(exp_dir) + epoch_checkpoints(exp_dir)
    candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    marked = latest_checkpoint(exp_dir)
    if marked is not None:
        candidates = [marked] + [p for p in candidates if p != marked]
    for path in candidates:
        try:
            load_checkpoint(path)
        except CorruptCheckpointError as e:
            log.warning("%s; trying the previous checkpoint", e)
            continue
        return path
    return None


def prune_step_checkpoints(exp_dir: Path, keep: int) -> None:
    """Deletes all but the newest ``keep`` step checkpoints (``keep <= 0``: none)."""
    if keep <= 0:
        return
    latest = latest_checkpoint(exp_dir)
    for path in step_checkpoints(exp_dir)[:-keep]:
        if path != latest:
            path.unlink()


def rng_state() -> Dict[str, Any]:
    """The state of every random generator training draws from."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_seed(seed: int) -> None:
    """Seeds python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restores a state returned by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def average_checkpoints(paths: Sequence[Union[str, Path]]) -> Dict[str, torch.Tensor]:
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


def load_model(
    exp_dir: Path, epoch: Optional[int] = None, avg: int = 1
) -> Tuple[CtcModel, ExperimentConfig]:
    """Loads the model of ``epoch`` (default: the last), averaged over ``avg`` epochs.

    Raises FileNotFoundError if ``epoch-{epoch}.pt`` (or any checkpoint) is
    missing, and ValueError if ``avg`` is below 1 or above the epochs there are.

    The model is rebuilt from the resolved config stored in the checkpoint, so
    decoding never depends on a recipe file that may have changed since.
    """
    if avg < 1:
        raise ValueError(f"avg must be >= 1 (epochs to average), got {avg}")
    paths = epoch_checkpoints(exp_dir)
    if epoch is not None:
        paths = [p for p in paths if int(p.stem.split("-")[1]) <= epoch]
        # Asked for epoch N, never silently average older epochs instead.
        if paths and paths[-1].stem != f"epoch-{epoch}":
            raise FileNotFoundError(f"no epoch-{epoch}.pt in {exp_dir}")
    if not paths:
        raise FileNotFoundError(
            f"no epoch-N.pt checkpoints in {exp_dir} (epoch <= {epoch})"
        )
    if avg > len(paths):
        last = paths[-1].stem.split("-")[1]
        raise ValueError(
            f"avg {avg} asks for more epochs than {exp_dir} has up to epoch {last} "
            f"({len(paths)})"
        )
    chosen = paths[-avg:]
    config = checkpoint_config(chosen[-1])
    model = CtcModel(config.model)
    model.load_state_dict(average_checkpoints(chosen))
    log.info("Loaded %s", ", ".join(p.name for p in chosen))
    return model.eval(), config


def checkpoint_config(path: Path) -> ExperimentConfig:
    """The resolved experiment config stored in a checkpoint.

    Configs of older asrk2 versions are migrated (see
    :func:`asrk2.experiment.experiment_config_from_checkpoint`).

    Raises:
      ConfigError: naming ``path``, for a config this asrk2 cannot read.
    """
    state = load_checkpoint(path)
    if "config" not in state:
        raise CorruptCheckpointError(f"checkpoint {path} has no config")
    return experiment_config_from_checkpoint(state["config"], str(path))


def load_model_or_exit(
    exp_dir: Path, epoch: Optional[int] = None, avg: int = 1
) -> Tuple[CtcModel, ExperimentConfig]:
    """:func:`load_model` for a command-line script: a bad request exits with one line.

    A missing or corrupt checkpoint, an ``avg`` out of range or a config this
    asrk2 cannot read ends the program with a message naming the experiment
    (no traceback).
    """
    try:
        return load_model(exp_dir, epoch, avg)
    except (FileNotFoundError, CorruptCheckpointError, ValueError) as e:
        sys.exit(f"error: {exp_dir}: {e}")
