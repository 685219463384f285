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

from asrk2.train.compare import (
    markdown_table,
    plot_valid_wer,
    results_document,
    summarize,
)
from asrk2.utils import atomic_write_text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("exp_dirs", type=Path, nargs="+")
    parser.add_argument("--test-set", default="test")
    parser.add_argument(
        "--choose-set",
        default="dev",
        help="the set whose wer-summary chooses the scale of a method with "
        "several ('' for the test set itself)",
    )
    parser.add_argument(
        "--out", type=Path, help="also write a results file (header and table)"
    )
    parser.add_argument("--plot", type=Path, help="PNG of the valid WER curves")
    parser.add_argument(
        "--command", default="local/compare.py", help="what made the runs, for --out"
    )
    parser.add_argument(
        "--skip-missing", action="store_true",
        help="list dirs without a finished epoch instead of failing on them",
    )  # fmt: skip
    args = parser.parse_args()
    rows, missing = [], []
    for exp_dir in args.exp_dirs:
        try:
            rows.append(summarize(exp_dir, args.test_set, args.choose_set or None))
        except (FileNotFoundError, ValueError) as e:
            if not args.skip_missing:
                sys.exit(f"error: {e}")
            print(f"skipped: {e}", file=sys.stderr)
            missing.append(str(exp_dir))
    if not rows:
        sys.exit("error: no experiment has a finished epoch")
    print(markdown_table(rows), end="")
    if args.out:
        text = results_document(rows, args.command, missing, args.test_set)
        atomic_write_text(args.out, text)
    if args.plot:
        plot_valid_wer(rows, args.plot)


if __name__ == "__main__":
    main()
