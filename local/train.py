#!/usr/bin/env python3
"""Train a conformer CTC model (k2 CTC loss) from a YAML experiment config.

Usage:
    python local/train.py --config conf/demo.yaml \
        --train-cuts data/fbank/synth_cuts_train.jsonl.gz \
        --valid-cuts data/fbank/synth_cuts_dev.jsonl.gz \
        --lang-dir data/lang_bpe_500 --exp-dir exp/demo [--set train.num_epochs=5]
"""
import argparse
import logging
from pathlib import Path

from lhotse import CutSet

from asrk2.config import load_yaml, save_yaml
from asrk2.train.config import ExperimentConfig
from asrk2.train.trainer import train
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--train-cuts", type=Path, required=True)
    parser.add_argument("--valid-cuts", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. train.num_epochs=3")
    args = parser.parse_args()
    setup_logging()
    config = load_yaml(ExperimentConfig, args.config, args.set)
    save_yaml(config, args.exp_dir / "config.yaml")
    last = train(
        config,
        CutSet.from_file(args.train_cuts),
        CutSet.from_file(args.valid_cuts),
        args.lang_dir,
        args.exp_dir,
        args.device,
    )
    logging.info("Done; last checkpoint %s", last)


if __name__ == "__main__":
    main()
