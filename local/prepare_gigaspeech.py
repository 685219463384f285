#!/usr/bin/env python3
"""Prepare GigaSpeech subsets as lhotse manifests (lhotse recipe + GigaSpeech text).

Usage:
    python local/prepare_gigaspeech.py --corpus-dir /data/GigaSpeech \\
        --output-dir data/manifests --subsets XS DEV TEST --num-jobs 4

<corpus-dir> holds GigaSpeech.json and audio/{podcast,youtube,audiobook}/.
Writes gigaspeech_{recordings,supervisions,cuts}_<SUBSET>.jsonl.gz (cuts trimmed
to utterances; punctuation tags dropped; <SIL>/<MUSIC>/<NOISE>/<OTHER>
utterances removed) and gigaspeech_report_<SUBSET>.json with the ids of
everything skipped. Subsets already prepared are skipped.
"""
import argparse
from pathlib import Path

from asrk2.data.gigaspeech import GIGASPEECH_SUBSETS, prepare_gigaspeech
from asrk2.utils import setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument(
        "--subsets",
        nargs="+",
        default=["XS", "DEV", "TEST"],
        choices=GIGASPEECH_SUBSETS,
    )
    parser.add_argument("--num-jobs", type=int, default=1)
    parser.add_argument(
        "--no-check-audio",
        action="store_true",
        help="do not check that every audio file exists and decodes",
    )
    return parser


def main() -> None:
    """Parses arguments and prepares the subsets."""
    args = get_parser().parse_args()
    setup_logging()
    reports = prepare_gigaspeech(
        args.corpus_dir,
        args.output_dir,
        args.subsets,
        args.num_jobs,
        not args.no_check_audio,
    )
    for subset, report in reports.items():
        print(f"{subset}: {report.summary()}")
    print(f"Manifests in {args.output_dir}")


if __name__ == "__main__":
    main()
