#!/usr/bin/env python3
"""Average the weights of the last K checkpoints into one model for decoding.

Usage:
    python local/average.py --exp-dir exp/demo --epoch 8 --avg 3   # epochs 6, 7, 8
    python local/average.py --exp-dir exp/demo --steps --avg 4  # last 4 checkpoint-N.pt
Writes <exp-dir>/averaged-epoch-8-avg-3.pt (or --out), with the model and its config.
"""
import argparse
from pathlib import Path

from asrk2.train.average import average_last
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--avg", type=int, required=True, help="number of checkpoints")
    parser.add_argument(
        "--epoch", type=int, default=None, help="last epoch (default: newest)"
    )
    parser.add_argument(
        "--steps",
        action="store_true",
        help="average checkpoint-N.pt instead of epoch-N.pt",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    setup_logging()
    out = average_last(args.exp_dir, args.avg, args.epoch, args.steps, args.out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
