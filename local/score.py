#!/usr/bin/env python3
"""Score a hypothesis Kaldi ``text`` file against a reference one.

Usage:
    python local/score.py data/test/text exp/decode_test/hyp.txt
    python local/score.py data/test/text exp/decode_test/hyp.txt --cer \\
        --errs exp/decode_test/errs-test.txt

Prints Kaldi compute-wer's summary line, e.g.
``%WER 12.34 [ 12 / 100, 3 ins, 4 del, 5 sub ]`` (``%CER`` with ``--cer``).
Utterances missing from HYP count as deletions (with a warning); utterances
in HYP but not in REF are an error.
"""
import argparse
from pathlib import Path

from asrk2.decode.scoring import compute_wer, read_text_results, write_errs
from asrk2.utils import setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ref", type=Path, help="Reference text: utt_id word word ...")
    parser.add_argument("hyp", type=Path, help="Hypothesis text, same format.")
    parser.add_argument(
        "--cer", action="store_true", help="Score characters (spaces dropped)."
    )
    parser.add_argument(
        "--errs", type=Path, default=None, help="Also write a per-utterance report."
    )
    return parser


def main() -> None:
    """Parses arguments, scores, prints the summary line."""
    args = get_parser().parse_args()
    setup_logging()
    results = read_text_results(args.ref, args.hyp, char_level=args.cer)
    stats = compute_wer(results)
    label = "CER" if args.cer else "WER"
    if args.errs is not None:
        write_errs(args.errs, results, stats, label=label)
    print(stats.wer_line(label))


if __name__ == "__main__":
    main()
