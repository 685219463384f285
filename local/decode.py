#!/usr/bin/env python3
"""Decode a test set with a trained model (k2 CTC topology, 1-best) and score it.

Usage:
    python local/decode.py --exp-dir exp/demo --lang-dir data/lang_bpe_500 \
        --cuts data/fbank/synth_cuts_test.jsonl.gz --test-set test --avg 2
Writes recogs-*.txt, errs-*.txt and wer-summary-*.txt into <exp-dir>/decode.
"""
import argparse
from pathlib import Path

from lhotse import CutSet

from asrk2.decode.offline import decode_and_score
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--test-set", default="test")
    parser.add_argument("--epoch", type=int, default=None, help="default: the last")
    parser.add_argument("--avg", type=int, default=1, help="average the last N epochs")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="default: <exp-dir>/decode"
    )
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    setup_logging()
    summary = decode_and_score(
        args.exp_dir,
        CutSet.from_file(args.cuts),
        args.lang_dir,
        args.out_dir or args.exp_dir / "decode",
        args.test_set,
        args.epoch,
        args.avg,
        args.device,
    )
    for method, wer in summary.items():
        print(f"{args.test_set}\t{method}\tWER {wer:.2f}%")


if __name__ == "__main__":
    main()
