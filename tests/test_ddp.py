"""DDP on CPU (gloo): 2 processes step exactly like 1 process on the combined batch,
and resume exactly.

This file is also the torchrun worker: ``python -m torch.distributed.run
--nproc_per_node 2 tests/test_ddp.py OUT_DIR`` trains one step per rank on its
half of a fixed batch (rank 0 saves the parameters), then trains 2N steps in
one go and N + resume + N steps in ``OUT_DIR/exp-a`` and ``OUT_DIR/exp-b``.
"""

import copy
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
import torch
from lhotse import CutSet
from lhotse.dataset import K2SpeechRecognitionDataset

from asrk2.checkpoint import latest_checkpoint, load_checkpoint
from asrk2.config import from_dict
from asrk2.experiment import ExperimentConfig
from asrk2.testing.toy_data import make_toy_corpus
from asrk2.train.distributed import cleanup_distributed
from asrk2.train.trainer import Trainer

TINY: Dict[str, Any] = {
    "data": {
        "max_duration": 10.0, "num_buckets": 2, "spec_augment": {"enabled": False}
    },
    "model": {
        "encoder": {
            "d_model": 32, "num_heads": 2, "ffn_dim": 64, "num_layers": 2,
            "conv_kernel_size": 7, "dropout": 0.0, "subsampling_channels": 8,
        },
        "decoder": {"num_layers": 1, "num_heads": 2, "ffn_dim": 64, "dropout": 0.0},
    },
    "loss": {"ctc_weight": 0.5, "att_weight": 0.3, "mmi_weight": 0.2},
    "optim": {"peak_lr": 0.01, "warmup_steps": 1},
    "train": {"num_threads": 1, "tensorboard": False},
}  # fmt: skip
NUM_CUTS = 4  # of the one-step comparison; the corpus has 8
RESUME_STEPS = 3  # N
Params = Dict[str, torch.Tensor]


def one_step(corpus_dir: Path, exp_dir: Path) -> Tuple[Params, Params]:
    """One training step of this process's share of the fixed batch.

    Rank r of W takes cuts r, r+W, ...; one process takes them all.
    Returns the parameters before and after the step.
    """
    cuts = CutSet.from_file(corpus_dir / "cuts.jsonl.gz").to_eager()
    config = from_dict(ExperimentConfig, copy.deepcopy(TINY))
    trainer = Trainer(config, cuts, cuts, corpus_dir / "lang", exp_dir, "cpu")
    # AdamW's first update is lr * g / (|g| + eps): for gradients that are 0 in
    # exact arithmetic (e.g. attention key biases) it turns float noise into
    # +-lr. SGD keeps parameter differences proportional to gradient ones.
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.1)
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(
        trainer.optimizer, lambda _: 1.0
    )
    rank, world = trainer.dist.rank, trainer.dist.world_size
    mine = CutSet.from_cuts(list(cuts)[rank:NUM_CUTS:world])
    batch = K2SpeechRecognitionDataset(return_cuts=True)[mine]
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.train_step(batch)
    assert result is not None, "the step was skipped"
    after = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    return before, after


def train_steps(corpus_dir: Path, exp_dir: Path, max_steps: int, resume: bool) -> Path:
    """Trains (or resumes) up to ``max_steps``, with dropout and SpecAugment on."""
    cuts = CutSet.from_file(corpus_dir / "cuts.jsonl.gz").to_eager()
    data = copy.deepcopy(TINY)
    data["model"]["encoder"]["dropout"] = 0.1
    data["data"]["spec_augment"] = {"enabled": True}
    data["train"].update(max_steps=max_steps, num_epochs=5)
    config = from_dict(ExperimentConfig, data)
    trainer = Trainer(config, cuts, cuts, corpus_dir / "lang", exp_dir, "cpu")
    if resume:
        latest = latest_checkpoint(exp_dir)
        assert latest is not None
        trainer.resume(latest)
    last = trainer.fit()
    assert last is not None  # there are steps left to train
    return last


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    cuts, _ = make_toy_corpus(tmp_path, num_cuts=8, nbpe=40)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        __file__, str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(tmp_path / "ddp_params.pt")

    torch.set_num_threads(1)
    init, single = one_step(tmp_path, tmp_path / "exp-single")
    changed = 0
    for name, value in single.items():
        assert torch.allclose(ddp[name], value, rtol=1e-4, atol=1e-6), name
        changed += int(not torch.equal(value, init[name]))
    assert changed > 0.9 * len(single)

    a = load_checkpoint(tmp_path / "exp-a" / f"checkpoint-{2 * RESUME_STEPS}.pt")
    b = load_checkpoint(tmp_path / "exp-b" / f"checkpoint-{2 * RESUME_STEPS}.pt")
    assert len(a["rank_states"]) == 2 and a["world_size"] == 2
    for state in (a["train_state"], b["train_state"]):
        del state["sums"]["seconds"]  # wall-clock time
    assert a["train_state"] == b["train_state"] and a["train_state"]["epoch"] >= 2
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name


def _worker(out_dir: Path) -> None:
    """Entry point of each torchrun process."""
    _, after = one_step(out_dir, out_dir / "exp-ddp")
    if int(os.environ["RANK"]) == 0:
        torch.save(after, out_dir / "ddp_params.pt")
    train_steps(out_dir, out_dir / "exp-a", 2 * RESUME_STEPS, resume=False)
    train_steps(out_dir, out_dir / "exp-b", RESUME_STEPS, resume=False)
    train_steps(out_dir, out_dir / "exp-b", 2 * RESUME_STEPS, resume=True)
    cleanup_distributed()


def _shar_worker(out_dir: Path) -> None:
    """Two epochs from Shar shards that split unevenly between the 2 ranks."""
    cuts = CutSet.from_file(out_dir / "cuts.jsonl.gz").to_eager()
    data = copy.deepcopy(TINY)
    data["data"]["shar_dir"] = str(out_dir / "shar")
    data["train"].update(num_epochs=2)
    config = from_dict(ExperimentConfig, data)
    trainer = Trainer(config, cuts, cuts, out_dir / "lang", out_dir / "exp-shar", "cpu")
    trainer.fit()
    cleanup_distributed()


@pytest.mark.slow
def test_ddp_from_shar_with_uneven_shards_ends_every_epoch_together(tmp_path: Path):
    from asrk2.data.shar import export_shar

    cuts, _ = make_toy_corpus(tmp_path, num_cuts=12, nbpe=40)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    # 3 shards: rank 0 reads 2 of them, rank 1 one; without agreeing when an
    # epoch ends, rank 0 would wait forever in the gradient all-reduce.
    assert export_shar(cuts, tmp_path / "shar", shard_size=4) == 3
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        __file__, str(tmp_path), "shar",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ends with another rank's data" in proc.stderr
    last = load_checkpoint(tmp_path / "exp-shar" / "epoch-2.pt")
    assert last["train_state"]["epoch_done"] and last["world_size"] == 2


if __name__ == "__main__":
    if sys.argv[2:] == ["shar"]:
        _shar_worker(Path(sys.argv[1]))
    else:
        _worker(Path(sys.argv[1]))
