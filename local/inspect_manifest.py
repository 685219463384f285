#!/usr/bin/env python3
"""Print statistics of a lhotse manifest (read lazily, any size).

Usage:
    python local/inspect_manifest.py data/manifests/gigaspeech_cuts_XS.jsonl.gz \\
        --lexicon data/lang/lexicon.txt --max-duration 200 --num-buckets 30 \\
        --plot durations.png

Shows counts, hours, duration percentiles, speakers, words, the OOV rate
against a lexicon (first field of each line), and for cut manifests the share
of padding that batches of --max-duration seconds in --num-buckets buckets
would have (DynamicBucketingSampler, replayed on the first --padding-cuts cuts).
"""
import argparse
import sys
from pathlib import Path

from asrk2.data.manifest_stats import (
    compute_manifest_stats,
    estimate_padding,
    format_stats,
    plot_durations,
)
from asrk2.utils import setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "manifest", type=Path, help="cuts/supervisions/recordings jsonl(.gz)"
    )
    parser.add_argument("--lexicon", type=Path, default=None)
    parser.add_argument("--max-duration", type=float, default=200.0)
    parser.add_argument("--num-buckets", type=int, default=30)
    parser.add_argument(
        "--padding-cuts",
        type=int,
        default=200000,
        help="cuts replayed for the padding estimate (0: skip it)",
    )
    parser.add_argument(
        "--max-items", type=int, default=None, help="read only the first N"
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="duration histogram PNG"
    )
    return parser


def main() -> None:
    """Parses arguments, prints the statistics."""
    args = get_parser().parse_args()
    setup_logging()
    try:
        stats = compute_manifest_stats(args.manifest, args.lexicon, args.max_items)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(format_stats(stats))
    if stats.kind == "cuts" and args.padding_cuts > 0:
        pad = estimate_padding(
            args.manifest, args.max_duration, args.num_buckets, args.padding_cuts
        )
        print(
            f"  padding with max_duration={args.max_duration:g} s, "
            f"num_buckets={args.num_buckets}: {100 * pad.ratio:.1f}% of frames "
            f"({pad.num_batches} batches of {pad.num_cuts} cuts)"
        )
    if args.plot:
        print(f"  histogram: {plot_durations(stats, args.plot)}")


if __name__ == "__main__":
    main()
