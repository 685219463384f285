"""The training loop: conformer + k2 CTC on dynamically bucketed lhotse batches."""
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from lhotse import CutSet
from tqdm import tqdm

from asrk2.config import to_dict
from asrk2.data.datamodule import filter_cuts, make_eval_loader, make_train_loader, unpack_batch
from asrk2.lang.bpe import load_bpe
from asrk2.lang.graph_compiler import CtcTrainingGraphCompiler
from asrk2.losses.ctc import k2_ctc_loss
from asrk2.model.ctc_model import CtcModel
from asrk2.train.checkpoint import save_checkpoint
from asrk2.train.config import ExperimentConfig
from asrk2.train.plot import plot_training_curves
from asrk2.utils import atomic_write_text

__all__ = ["set_seed", "noam_lambda", "build_model", "train"]

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    """Seeds python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def noam_lambda(warmup_steps: int):
    """LR multiplier: linear warm-up to 1 at ``warmup_steps``, then ``sqrt(warmup/step)``."""

    def factor(step: int) -> float:
        step = max(step, 1)
        return min(step / warmup_steps, math.sqrt(warmup_steps / step))

    return factor


def build_model(config: ExperimentConfig, vocab_size: int) -> CtcModel:
    """Builds the model, filling in the vocabulary size from the lang dir."""
    config.model.vocab_size = vocab_size
    return CtcModel(config.model)


@dataclass
class _Step:
    loss_sum: float
    frames: int
    finite: bool


def _compute_loss(
    model: CtcModel, compiler: CtcTrainingGraphCompiler, batch: dict, device: torch.device
):
    features, feature_lens, texts, _ = unpack_batch(batch)
    log_probs, out_lens = model(features.to(device), feature_lens.to(device))
    graphs = compiler.compile(texts, device=device)
    loss = k2_ctc_loss(log_probs, out_lens, graphs, reduction="sum")
    return loss, int(out_lens.sum())


def _train_step(model, compiler, batch, optimizer, scheduler, config, device) -> _Step:
    loss, frames = _compute_loss(model, compiler, batch, device)
    if not torch.isfinite(loss):
        # Skip rather than poison the weights; the caller counts these.
        optimizer.zero_grad()
        return _Step(float("nan"), frames, False)
    optimizer.zero_grad()
    (loss / frames).backward()
    if config.optim.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    optimizer.step()
    scheduler.step()
    return _Step(loss.item(), frames, True)


@torch.no_grad()
def compute_valid_loss(model, compiler, loader, device) -> float:
    """Per-frame CTC loss over a whole evaluation loader."""
    model.eval()
    total, frames = 0.0, 0
    for batch in loader:
        loss, n = _compute_loss(model, compiler, batch, device)
        if torch.isfinite(loss):
            total, frames = total + loss.item(), frames + n
    model.train()
    return total / max(frames, 1)


def _log_epoch(exp_dir: Path, row: Dict[str, float]) -> None:
    metrics = exp_dir / "metrics.jsonl"
    old = metrics.read_text() if metrics.exists() else ""
    atomic_write_text(metrics, old + json.dumps(row) + "\n")
    plot_training_curves(metrics, exp_dir / "training-curves.png")


def train(
    config: ExperimentConfig,
    train_cuts: CutSet,
    valid_cuts: CutSet,
    lang_dir: Path,
    exp_dir: Path,
    device: Optional[str] = None,
) -> Path:
    """Trains a CTC model and saves ``epoch-N.pt`` checkpoints in ``exp_dir``.

    Args:
      config: the experiment configuration (saved into every checkpoint).
      train_cuts: training cuts with features and one supervision each.
      valid_cuts: validation cuts, scored once per epoch.
      lang_dir: holds ``bpe.model``.
      exp_dir: output directory (checkpoints, metrics, TensorBoard, curves).
      device: ``cpu``/``cuda``; default: CUDA when available.
    Returns:
      Path of the last checkpoint.
    """
    from torch.utils.tensorboard import SummaryWriter

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    set_seed(config.train.seed)
    if config.train.num_threads > 0:
        torch.set_num_threads(config.train.num_threads)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sp = load_bpe(Path(lang_dir) / "bpe.model")
    compiler = CtcTrainingGraphCompiler(Path(lang_dir) / "bpe.model")
    model = build_model(config, sp.get_piece_size()).to(dev)
    log.info("Model: %.2f M parameters", model.num_params() / 1e6)

    def fits(cut) -> bool:
        lens = model.encoder.subsampled_lengths(torch.tensor([cut.num_frames]))
        return len(sp.encode(cut.supervisions[0].text)) <= int(lens[0])

    train_cuts, _ = filter_cuts(train_cuts, config.data, fits)
    train_loader = make_train_loader(train_cuts, config.data, seed=config.train.seed)
    valid_loader = make_eval_loader(valid_cuts, config.data)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.optim.peak_lr, weight_decay=config.optim.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, noam_lambda(config.optim.warmup_steps))
    writer = SummaryWriter(str(exp_dir / "tensorboard"))
    step, skipped, last = 0, 0, exp_dir / "epoch-0.pt"
    for epoch in range(1, config.train.num_epochs + 1):
        train_loader.sampler.set_epoch(epoch)
        start, loss_sum, frames = time.time(), 0.0, 0
        model.train()
        for batch in tqdm(train_loader, desc=f"epoch {epoch}", leave=False):
            result = _train_step(model, compiler, batch, optimizer, scheduler, config, dev)
            step += 1
            if not result.finite:
                skipped += 1
                log.warning("Non-finite loss at step %d; batch skipped (%d so far)", step, skipped)
                continue
            loss_sum, frames = loss_sum + result.loss_sum, frames + result.frames
            if step % config.train.log_interval == 0:
                writer.add_scalar("train/loss", result.loss_sum / result.frames, step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
        valid_loss = compute_valid_loss(model, compiler, valid_loader, dev)
        row = {
            "epoch": epoch,
            "step": step,
            "train_loss": loss_sum / max(frames, 1),
            "valid_loss": valid_loss,
            "skipped_batches": skipped,
            "seconds": round(time.time() - start, 1),
        }
        log.info("Epoch %d: %s", epoch, row)
        writer.add_scalar("valid/loss", valid_loss, step)
        _log_epoch(exp_dir, row)
        last = exp_dir / f"epoch-{epoch}.pt"
        save_checkpoint(
            last,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "sampler": train_loader.sampler.state_dict(),
                "epoch": epoch,
                "step": step,
                "config": to_dict(config),
            },
        )
    writer.close()
    return last
