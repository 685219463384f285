"""The training loop: conformer + k2 CTC / attention / LF-MMI, single process or DDP.

One process per device under torchrun (gloo on CPUs, nccl on GPUs), or a
plain single process. Each rank reads its own share of every batch from a
per-rank lhotse sampler; rank 0 alone logs, writes TensorBoard, metrics and
checkpoints. A checkpoint holds everything needed to continue exactly where it
was taken: model, optimizer, scheduler, grad scaler, loop counters, and every
rank's sampler position and random generator states.
"""

import dataclasses
import logging
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union, cast

import torch
from lhotse import CutSet
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from asrk2 import checkpoint as ckpt
from asrk2.config import save_yaml, to_dict
from asrk2.data.augment import BatchSpecAugment, describe_augmentation
from asrk2.data.datamodule import (
    ctc_alignable,
    filter_cuts,
    make_eval_loader,
    make_train_loader,
    set_train_epoch,
    train_sampler,
    unpack_batch,
)
from asrk2.data.shar import SharCuts
from asrk2.experiment import ExperimentConfig, build_model
from asrk2.lang.bpe import load_bpe
from asrk2.lang.graph_compiler import CtcTrainingGraphCompiler
from asrk2.lang.mmi_graphs import MmiGraphCompiler
from asrk2.losses.combiner import LossModule
from asrk2.losses.mmi import LfMmiLoss
from asrk2.train.distributed import (
    all_gather_objects,
    all_reduce,
    barrier,
    cleanup_distributed,
    init_distributed,
    until_any_rank_ends,
)
from asrk2.train.metrics import append_metrics
from asrk2.train.schedulers import make_scheduler, noam_lambda
from asrk2.train.shared_files import shared_global_cmvn, shared_token_bigram
from asrk2.train.validation import PARTS, validation_result, validation_sums
from asrk2.utils import remove_stale_temporaries

__all__ = [
    "NonFiniteError",
    "Trainer",
    "TrainState",
    "noam_lambda",
    "train",
]

log = logging.getLogger(__name__)

# Feature statistics in the experiment directory (model.encoder.global_cmvn).
CMVN_FILE = "global_cmvn.json"
# Order of the per-step statistics that are summed over ranks.
STATS = ("frames", "bad", "audio") + PARTS


class NonFiniteError(RuntimeError):
    """Too many batches had a non-finite loss or gradient."""


@dataclass
class TrainState:
    """Loop counters, saved in checkpoints.

    Attributes:
      epoch: the current epoch (1-based).
      step: batches taken so far, skipped ones included.
      epoch_done: the current epoch is finished and validated.
      bad_batches: batches skipped for a non-finite loss or gradient.
      consecutive_bad: batches skipped in a row, up to now.
      sums: this epoch's training sums over all ranks (``STATS`` and seconds).
    """

    epoch: int = 1
    step: int = 0
    epoch_done: bool = False
    bad_batches: int = 0
    consecutive_bad: int = 0
    sums: Dict[str, float] = field(default_factory=dict)


class Trainer:
    """Sets up model, data, optimizer and logging, then runs epochs.

    Args:
      config: the experiment configuration (saved into every checkpoint).
      train_cuts: training cuts with features and one supervision each.
      valid_cuts: validation cuts, scored at the end of each epoch.
      lang_dir: holds ``bpe.model``.
      exp_dir: output directory, shared by all ranks.
      device: ``cpu``/``cuda``; default CUDA when available.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        train_cuts: CutSet,
        valid_cuts: CutSet,
        lang_dir: Path,
        exp_dir: Path,
        device: Optional[str] = None,
    ) -> None:
        self.config = config
        self.exp_dir = Path(exp_dir)
        use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")) != "cpu"
        self.dist = init_distributed(config.train.ddp_backend, use_cuda)
        self.device = (
            torch.device("cuda", self.dist.local_rank)
            if use_cuda
            else torch.device("cpu")
        )
        self._set_threads()
        ckpt.set_seed(config.train.seed + self.dist.rank)
        if self.dist.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
            for pattern in ("checkpoint-*.pt", "epoch-*.pt", CMVN_FILE, "config.yaml"):
                remove_stale_temporaries(self.exp_dir, pattern)
        self.state = TrainState()
        self._pending_rng: Optional[Dict[str, Any]] = None
        self._build_model(Path(lang_dir), train_cuts)
        if self.dist.is_main:
            # Saved only now: building the model resolves the vocabulary size.
            save_yaml(self.config, self.exp_dir / "config.yaml")
        self._build_data(train_cuts, valid_cuts)
        self._build_augment()
        self._build_optim()
        self.writer = None
        if self.dist.is_main and config.train.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.exp_dir / "tensorboard"))

    def _set_threads(self) -> None:
        """Divides the machine's (or the configured) threads among local ranks."""
        per_machine = self.config.train.num_threads
        if per_machine <= 0 and self.dist.local_world_size > 1:
            per_machine = torch.get_num_threads()
        if per_machine > 0:
            torch.set_num_threads(max(1, per_machine // self.dist.local_world_size))

    def _build_model(self, lang_dir: Path, train_cuts: CutSet) -> None:
        """Model, loss module (with LF-MMI graphs) and the DDP wrapper."""
        sp = load_bpe(lang_dir / "bpe.model")
        self.sp = sp
        compiler = CtcTrainingGraphCompiler(lang_dir / "bpe.model")
        model, self.config = build_model(self.config, sp.get_piece_size())
        self.model = model.to(self.device)
        if self.config.model.encoder.global_cmvn:
            stats = shared_global_cmvn(
                self.exp_dir / CMVN_FILE,
                train_cuts,
                self.config.train.cmvn_max_cuts,
                self.dist.is_main,
            )
            self.model.encoder.feature_norm.set_stats(
                torch.tensor(stats.mean), torch.tensor(stats.std)
            )
        mmi = None
        if self.config.loss.mmi_weight > 0:
            if self.config.data.shar_dir:  # transcripts only: no feature tars
                shar = self.config.data.shar_dir
                train_cuts = CutSet(SharCuts(shar, 0, False, split=False, fields=()))
            mmi = LfMmiLoss(
                MmiGraphCompiler(
                    lang_dir / "bpe.model",
                    shared_token_bigram(
                        self.exp_dir / "P_bigram.txt",
                        compiler,
                        train_cuts,
                        self.config.loss.mmi.bigram_smoothing,
                        self.dist.is_main,
                    ),
                ),
                self.config.loss.mmi,
            )
        self.loss_module = LossModule(self.model, self.config.loss, compiler, mmi)
        self.ddp_module: torch.nn.Module = self.loss_module
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            loss = self.config.loss
            # Without CTC and MMI the CTC output layer gets no gradient.
            unused = loss.ctc_weight == 0 and loss.mmi_weight == 0
            self.ddp_module = DistributedDataParallel(
                self.loss_module, device_ids=ids, find_unused_parameters=unused
            )
        if self.dist.is_main:
            log.info("Model: %.2f M parameters", self.model.num_params() / 1e6)

    def _build_data(self, train_cuts: CutSet, valid_cuts: CutSet) -> None:
        """Per-rank training loader and this rank's share of the validation cuts."""
        fits = ctc_alignable(self.sp.encode)
        source = None
        if self.config.data.shar_dir:  # each rank and worker reads its own shards
            source = SharCuts(self.config.data.shar_dir, self.config.train.seed)
            source.check_split(self.dist.world_size, self.config.data.num_workers)
            train_cuts = CutSet(source)
        train_cuts, _ = filter_cuts(train_cuts, self.config.data, fits)
        world, rank = self.dist.world_size, self.dist.rank
        self.train_loader = make_train_loader(
            train_cuts, self.config.data, seed=self.config.train.seed,
            world_size=world, rank=rank, fits=fits, shar_source=source,
        )  # fmt: skip
        shard = CutSet.from_cuts(
            c for i, c in enumerate(valid_cuts) if i % world == rank
        )
        # lhotse wants at least as many cuts as buckets; a rank's share may be small.
        eval_config = dataclasses.replace(
            self.config.data,
            num_buckets=max(1, min(self.config.data.num_buckets, len(shard))),
        )
        self.valid_loader = make_eval_loader(shard, eval_config) if len(shard) else None

    def _build_augment(self) -> None:
        """SpecAugment of training batches; masks take the global CMVN mean."""
        data = self.config.data
        fill = None
        if self.config.model.encoder.global_cmvn:
            fill = self.model.encoder.feature_norm.mean.detach().cpu().clone()
        self.spec_augment = BatchSpecAugment(data.spec_augment, fill)
        if self.dist.is_main:
            log.info("%s", describe_augmentation(data.augment, data.spec_augment))

    def _build_optim(self) -> None:
        cfg = self.config.optim
        self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.peak_lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = make_scheduler(self.optimizer, cfg)
        self.amp = self.config.train.amp and self.device.type == "cuda"
        self.scaler = torch.cuda.amp.GradScaler(enabled=self.amp)

    # ----------------------------------------------------------- checkpoints

    def _checkpoint(self) -> Dict[str, Any]:
        """Everything needed to continue; collective (every rank must call)."""
        rank_state = {
            "rng": ckpt.rng_state(),
            "sampler": train_sampler(self.train_loader).state_dict(),
        }
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "train_state": asdict(self.state),
            "rank_states": all_gather_objects(rank_state),
            "world_size": self.dist.world_size,
            "epoch": self.state.epoch,
            "step": self.state.step,
            "config": to_dict(self.config),
        }

    def save(self, path: Path) -> None:
        """Saves a checkpoint from rank 0 and marks it as the latest; collective."""
        state = self._checkpoint()
        if self.dist.is_main:
            ckpt.save_checkpoint(path, state)
            ckpt.mark_latest(path)
            ckpt.prune_step_checkpoints(self.exp_dir, self.config.train.keep_last_n)
        barrier()

    def resume(self, path: Union[str, Path]) -> None:
        """Loads a checkpoint so that :meth:`fit` continues exactly from it.

        Args:
          path: a checkpoint of this trainer, saved with the same world size.
        """
        state = ckpt.load_checkpoint(Path(path))
        if state.get("world_size") != self.dist.world_size:
            raise ValueError(
                f"{path} was saved by {state.get('world_size')} processes, this job "
                f"has {self.dist.world_size}; resume with the same world size"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["grad_scaler"])
        self.state = TrainState(**state["train_state"])
        mine = state["rank_states"][self.dist.rank]
        if self.state.epoch_done:
            ckpt.set_rng_state(mine["rng"])
        else:
            sampler = train_sampler(self.train_loader)
            sampler.load_state_dict(mine["sampler"])
            # Restored after the epoch's DataLoader iterator exists, because
            # creating it draws a seed from torch's generator.
            self._pending_rng = mine["rng"]
        log.info(
            "Resumed from %s at epoch %d, step %d",
            path,
            self.state.epoch,
            self.state.step,
        )

    # ------------------------------------------------------------- training

    def _record_bad(self, what: str, cut_ids: List[str], bad_here: bool) -> None:
        """Counts a skipped batch; stops when it keeps happening."""
        cfg = self.config.train
        self.state.bad_batches += 1
        self.state.consecutive_bad += 1
        if bad_here:
            log.warning(
                "Step %d: non-finite %s; batch skipped (%d so far). Cuts: %s",
                self.state.step, what, self.state.bad_batches, " ".join(cut_ids),
            )  # fmt: skip
        if (
            self.state.bad_batches > cfg.max_bad_batches
            or self.state.consecutive_bad >= cfg.max_consecutive_bad
        ):
            state = self.state
            raise NonFiniteError(
                f"stopping at step {state.step}: {state.bad_batches} batches skipped "
                f"for non-finite loss/gradients ({state.consecutive_bad} in a row; "
                f"limits train.max_bad_batches={cfg.max_bad_batches}, "
                f"train.max_consecutive_bad={cfg.max_consecutive_bad}). Check the "
                "logged cut ids (corrupt features, transcripts longer than the "
                "audio) or lower optim.peak_lr."
            )

    def _tensor(self, values: List[float]) -> torch.Tensor:
        """float64 tensor on the training device: nccl reduces only CUDA tensors."""
        return torch.tensor(values, dtype=torch.float64, device=self.device)

    def _skip_backward(self) -> None:
        """Zero gradients that every rank must still all-reduce under DDP."""
        if self.dist.distributed:
            # DDP expects a backward after its forward on every rank; this one
            # gives all-zero gradients, so the skipped step changes nothing.
            total = sum(p.sum() for p in self.ddp_module.parameters())
            dummy = cast(torch.Tensor, total) * 0.0  # the model has parameters
            dummy.backward()
        self.optimizer.zero_grad(set_to_none=True)

    def _forward(self, batch: Dict[str, Any]):
        features, feature_lens, texts, cut_ids = unpack_batch(batch)
        features = self.spec_augment(features, feature_lens, self.state.step)
        with torch.cuda.amp.autocast(enabled=self.amp):
            out = self.ddp_module(
                features.to(self.device), feature_lens.to(self.device), texts
            )
        audio = sum(c.duration for c in batch["supervisions"]["cut"])
        return out, audio, cut_ids

    def train_step(self, batch: Dict[str, Any]) -> Optional[Dict[str, float]]:
        """One optimizer step on this rank's share of a batch.

        The loss is normalised by the encoder frames of the whole global batch,
        so N ranks step exactly like one process on the concatenated batch.

        Args:
          batch: a lhotse K2SpeechRecognitionDataset batch.
        Returns:
          Statistics summed over ranks (``STATS`` plus ``grad_norm``), or None
          when the batch was skipped for a non-finite loss or gradient.
        """
        out, audio, cut_ids = self._forward(batch)
        loss = out["loss"]
        bad_here = not bool(torch.isfinite(loss.detach()))
        local = {"frames": float(out["frames"]), "bad": float(bad_here), "audio": audio}
        local.update({p: float(out[p].detach()) if p in out else 0.0 for p in PARTS})
        summed = all_reduce(self._tensor([local[k] for k in STATS])).cpu().tolist()
        stats = dict(zip(STATS, summed))
        if stats["bad"] > 0:
            self._skip_backward()
            self._record_bad("loss", cut_ids, bad_here)
            return None
        scale = self.dist.world_size / stats["frames"]
        self.scaler.scale(loss * scale).backward()
        self.scaler.unscale_(self.optimizer)
        clip = self.config.optim.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), clip if clip > 0 else math.inf
        )
        if not torch.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            if self.amp:
                # fp16 overflow: the scaler lowers its scale and skips the step.
                self.scaler.update()
                return None
            self._record_bad("gradient", cut_ids, True)
            return None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.consecutive_bad = 0
        return {**stats, "grad_norm": float(norm)}

    def _log_step(self, result: Dict[str, float]) -> None:
        if not self.dist.is_main or self.state.step % self.config.train.log_interval:
            return
        frames = max(result["frames"], 1.0)
        lr = self.scheduler.get_last_lr()[0]
        log.info(
            "epoch %d step %d: loss/frame %.4f, lr %.2e, grad norm %.2f",
            self.state.epoch, self.state.step, result["loss"] / frames, lr,
            result["grad_norm"],
        )  # fmt: skip
        if self.writer is not None:
            step = self.state.step
            for part in PARTS:
                if result[part]:
                    self.writer.add_scalar(f"train/{part}", result[part] / frames, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/grad_norm", result["grad_norm"], step)
            self.writer.add_scalar("train/bad_batches", self.state.bad_batches, step)

    def _batches(self) -> Iterator[Dict[str, Any]]:
        """This epoch's remaining batches, with the resumed RNG state in place."""
        set_train_epoch(self.train_loader, self.state.epoch)
        iterator = iter(self.train_loader)
        if self._pending_rng is not None:
            ckpt.set_rng_state(self._pending_rng)
            self._pending_rng = None
        if self.config.data.shar_dir and self.dist.distributed:
            # Ranks read different shards, so their batch counts differ.
            return until_any_rank_ends(iterator, self.device, self.state.epoch)
        return iterator

    def run_epoch(self) -> bool:
        """Trains until the epoch ends (True) or ``max_steps`` is reached (False)."""
        cfg = self.config.train
        sums = self.state.sums
        self.ddp_module.train()
        start = time.time()
        progress = tqdm(
            self._batches(), desc=f"epoch {self.state.epoch}", leave=False,
            disable=not self.dist.is_main,
        )  # fmt: skip
        for batch in progress:
            self.state.step += 1
            result = self.train_step(batch)
            if result is not None:
                for key in STATS:
                    sums[key] = sums.get(key, 0.0) + result[key]
                self._log_step(result)
            # Seconds count data loading and steps, not checkpoint writing.
            sums["seconds"] = sums.get("seconds", 0.0) + time.time() - start
            step = self.state.step
            saved = cfg.save_every_n > 0 and step % cfg.save_every_n == 0
            if saved:
                self.save(self.exp_dir / f"checkpoint-{step}.pt")
            if cfg.max_steps > 0 and step >= cfg.max_steps:
                if not saved:
                    self.save(self.exp_dir / f"checkpoint-{step}.pt")
                return False
            start = time.time()
        return True

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """Per-frame losses and greedy-CTC WER over the validation cuts of all ranks.

        See :func:`asrk2.train.validation.validation_sums`; the WER (%, key
        ``wer``) tracks progress without building any graph.
        """
        sums = validation_sums(
            self.loss_module, self.valid_loader, self.sp, self.device, self.amp
        )
        names = list(sums)
        total = all_reduce(self._tensor([sums[k] for k in names])).cpu().tolist()
        return validation_result(dict(zip(names, total)))

    def _end_epoch(self) -> Path:
        """Validates, logs the epoch's metrics and saves ``epoch-N.pt``."""
        valid = self.validate()
        sums = self.state.sums
        frames = max(sums.get("frames", 0.0), 1.0)
        row = {
            "epoch": self.state.epoch,
            "step": self.state.step,
            "train_loss": sums.get("loss", 0.0) / frames,
            "valid_loss": valid["loss"],
            "valid_wer": round(valid["wer"], 2),
            "skipped_batches": self.state.bad_batches,
            "seconds": round(sums.get("seconds", 0.0), 1),
            "audio_seconds": round(sums.get("audio", 0.0), 1),
            "audio_seconds_per_second": sums.get("audio", 0.0)
            / max(sums.get("seconds", 0.0), 1e-9),
            "world_size": self.dist.world_size,
            "max_rss_mb": self._peak_memory_mb(),
        }
        for part in PARTS[1:]:
            if sums.get(part):
                row[f"train_{part}"] = sums[part] / frames
                row[f"valid_{part}"] = valid[part]
        if self.dist.is_main:
            log.info("Epoch %d: %s", self.state.epoch, row)
            if self.writer is not None:
                self.writer.add_scalar("valid/loss", valid["loss"], self.state.step)
                self.writer.add_scalar("valid/wer", valid["wer"], self.state.step)
            append_metrics(self.exp_dir, row)
        self.state.epoch_done = True
        path = self.exp_dir / f"epoch-{self.state.epoch}.pt"
        self.save(path)
        return path

    def _peak_memory_mb(self) -> float:
        """Largest peak resident memory over ranks (GPU memory on CUDA), in MiB."""
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return float(all_reduce(self._tensor([peak]), "max")[0])

    def fit(self) -> Optional[Path]:
        """Runs the remaining epochs (or up to ``max_steps``).

        Returns:
          The last checkpoint written by this call (None if nothing was left).
        """
        cfg = self.config.train
        last = None
        while self.state.epoch <= cfg.num_epochs:
            if cfg.max_steps > 0 and self.state.step >= cfg.max_steps:
                break
            if self.state.epoch_done:
                self.state = TrainState(
                    epoch=self.state.epoch + 1, step=self.state.step,
                    bad_batches=self.state.bad_batches,
                    consecutive_bad=self.state.consecutive_bad,
                )  # fmt: skip
                continue
            if not self.run_epoch():
                last = self.exp_dir / f"checkpoint-{self.state.step}.pt"
                break
            last = self._end_epoch()
        return last

    def close(self) -> None:
        """Flushes TensorBoard and leaves the process group."""
        if self.writer is not None:
            self.writer.close()
        cleanup_distributed()


def train(
    config: ExperimentConfig,
    train_cuts: CutSet,
    valid_cuts: CutSet,
    lang_dir: Path,
    exp_dir: Path,
    device: Optional[str] = None,
    resume: Union[bool, str, Path, None] = None,
) -> Optional[Path]:
    """Trains a model; run under torchrun for DDP, or as a single process.

    Args:
      config: the experiment configuration (saved into every checkpoint).
      train_cuts: training cuts with features and one supervision each.
      valid_cuts: validation cuts, scored once per epoch.
      lang_dir: holds ``bpe.model``.
      exp_dir: output directory (checkpoints, metrics, TensorBoard, curves).
      device: ``cpu``/``cuda``; default: CUDA when available.
      resume: a checkpoint path, or True for the newest readable one in
        ``exp_dir`` (a corrupt newer one is named in a warning and passed
        over; starting afresh when there is none).
    Returns:
      Path of the last checkpoint written, or of the experiment's latest one
      when nothing was left to train (a finished run resumed); None if
      ``exp_dir`` then has no marked checkpoint.
    """
    trainer = Trainer(config, train_cuts, valid_cuts, lang_dir, exp_dir, device)
    try:
        if resume is True:
            resume = ckpt.latest_intact_checkpoint(Path(exp_dir))
            if resume is None:
                log.info("No checkpoint in %s: starting afresh", exp_dir)
        if resume:
            trainer.resume(resume)
        last = trainer.fit()
    finally:
        trainer.close()
    return last if last is not None else ckpt.latest_checkpoint(Path(exp_dir))
