#!/usr/bin/env python3
"""Train a conformer model (k2 CTC, attention, LF-MMI) from a YAML experiment config.

Usage (one process; CUDA if available):
    python local/train.py --config conf/demo.yaml \
        --train-cuts data/fbank/synth_cuts_train.jsonl.gz \
        --valid-cuts data/fbank/synth_cuts_dev.jsonl.gz \
        --lang-dir data/lang_bpe_200 --exp-dir exp/demo [--set train.num_epochs=5]

DDP on one machine (2 processes: 2 GPUs with nccl, or 2 CPU processes with gloo):
    torchrun --standalone --nproc_per_node 2 local/train.py --config ... (same args)

DDP on 2 machines with 4 GPUs each (run on both; exp-dir on a shared filesystem):
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d \
        --rdzv_endpoint HOST_OF_NODE0:29400 --rdzv_id myjob local/train.py ...

From lhotse Shar shards instead of a manifest (local/export_shar.py writes
them; each rank and dataloader worker reads its own shards):
    ... local/train.py --config ... --set data.shar_dir=data/shar/train \
        --valid-cuts ... (no --train-cuts)

Continue an interrupted run exactly where its last checkpoint left it:
    ... local/train.py ... --resume              # latest checkpoint in --exp-dir
    ... local/train.py ... --resume exp/demo/checkpoint-2000.pt
"""
import os

# A busy-waiting OpenMP runtime makes DDP processes sharing few cores crawl;
# this must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from lhotse import CutSet  # noqa: E402

from asrk2.config import ConfigError, load_yaml  # noqa: E402
from asrk2.data.manifests import load_cuts_or_exit  # noqa: E402
from asrk2.data.shar import SharCuts, SharError  # noqa: E402
from asrk2.experiment import ExperimentConfig  # noqa: E402
from asrk2.train.distributed import dist_info_from_env  # noqa: E402
from asrk2.train.trainer import train  # noqa: E402
from asrk2.utils import children_die_with_parent, setup_logging  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument(
        "--train-cuts", type=Path, help="required unless data.shar_dir is set"
    )
    parser.add_argument("--valid-cuts", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: cuda if available)"
    )
    parser.add_argument(
        "--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
        help="continue from CHECKPOINT, or from the latest one in --exp-dir",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. train.num_epochs=3",
    )  # fmt: skip
    args = parser.parse_args()
    rank = dist_info_from_env().rank
    # Only rank 0 reports progress; the others still report problems.
    setup_logging(logging.INFO if rank == 0 else logging.WARNING)
    children_die_with_parent()
    try:
        config = load_yaml(ExperimentConfig, args.config, args.set)
    except ConfigError as e:
        sys.exit(f"error: {e}")
    resume = True if args.resume == "latest" else args.resume
    if config.data.shar_dir:
        try:
            # All shards in order: global CMVN (its first cuts) and the MMI
            # bigram read it; the training loader splits them by rank.
            train_cuts = CutSet(SharCuts(config.data.shar_dir, split=False,
                                         shuffle_shards=False))  # fmt: skip
        except SharError as e:
            sys.exit(f"error: {e}")
    elif args.train_cuts is None:
        sys.exit("error: --train-cuts is required unless data.shar_dir is set")
    else:
        train_cuts = load_cuts_or_exit(args.train_cuts)
    last = train(
        config,
        train_cuts,
        load_cuts_or_exit(args.valid_cuts),
        args.lang_dir,
        args.exp_dir,
        args.device,
        resume=resume,
    )
    if rank == 0:
        logging.info("Done; last checkpoint %s", last)


if __name__ == "__main__":
    main()
