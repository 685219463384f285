#!/usr/bin/env python3
"""Compare experiments side by side: one table and one plot of their valid WER.

Usage:
    python local/compare.py exp/ctc exp/ctc-att exp/mmi --out RESULTS.md \
        --plot compare.png

For each experiment dir (as local/train.py and local/decode.py left it):
losses and their settings, parameters, training time, epochs, final train
and valid loss per frame, skipped batches, and the test WER of ctc-greedy,
hlg-1best, attention-beam-search and attention-rescoring (best scale) from
decode/wer-summary-<test-set>*.txt; "–" where a method was not run.
"""
import argparse
import sys
from pathlib import Path

from asrk2.train.compare import markdown_table, plot_valid_wer, summarize
from asrk2.utils import atomic_write_text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("exp_dirs", type=Path, nargs="+")
    parser.add_argument("--test-set", default="test")
    parser.add_argument("--out", type=Path, help="also write the table here")
    parser.add_argument("--plot", type=Path, help="PNG of the valid WER curves")
    args = parser.parse_args()
    try:
        rows = [summarize(d, args.test_set) for d in args.exp_dirs]
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    table = markdown_table(rows)
    print(table, end="")
    if args.out:
        atomic_write_text(args.out, table)
    if args.plot:
        plot_valid_wer(rows, args.plot)


if __name__ == "__main__":
    main()
