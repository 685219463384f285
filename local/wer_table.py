#!/usr/bin/env python3
"""Merge wer-summary files (offline and streaming) into one WER table.

Usage:
    python local/wer_table.py --out exp/demo/decode/wer-table-test.txt \
        --best-scale-only exp/demo/decode/wer-summary-test.txt \
        exp/demo/decode/wer-summary-test-streaming.txt

Writes (atomically) and prints a ``settings<TAB>WER`` table, best first. With
--best-scale-only, of the settings that differ only in an LM or attention scale
(``nbest-rescoring-lm_scale_0.3``, ``...-lm_scale_0.5``) only the best is kept:
the best in the summaries themselves, or with --choose-on the best in those
files (a dev set's summary: the scale is chosen on dev, the test WER
reported). A setting found in two files is an error.
"""
import argparse
from pathlib import Path

from asrk2.decode.scoring import merge_wer_summaries, write_wer_summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("summaries", type=Path, nargs="+", help="wer-summary files")
    parser.add_argument("--out", type=Path, required=True, help="the merged table")
    parser.add_argument(
        "--best-scale-only", action="store_true", help="best scale of each method"
    )
    parser.add_argument(
        "--choose-on",
        type=Path,
        nargs="+",
        help="wer-summary files (a dev set) that choose the scale",
    )
    return parser


def main() -> None:
    args = _parser().parse_args()
    missing = [
        str(p) for p in args.summaries + (args.choose_on or []) if not p.is_file()
    ]
    if missing:
        raise SystemExit(f"no such wer-summary file: {', '.join(missing)}")
    if args.choose_on and not args.best_scale_only:
        raise SystemExit("--choose-on chooses scales: it needs --best-scale-only")
    try:
        choose_on = merge_wer_summaries(args.choose_on) if args.choose_on else None
        rows = merge_wer_summaries(args.summaries, args.best_scale_only, choose_on)
    except ValueError as e:  # a malformed file or a clash, named in the message
        raise SystemExit(str(e)) from None
    write_wer_summary(args.out, rows)
    print(args.out.read_text(), end="")


if __name__ == "__main__":
    main()
