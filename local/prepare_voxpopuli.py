#!/usr/bin/env python3
"""Prepare VoxPopuli English ASR (train/dev/test) as lhotse manifests.

Usage:
    python local/prepare_voxpopuli.py --corpus-dir /data/voxpopuli \\
        --output-dir data/manifests [--annotations /data/asr_en.tsv.gz]

<corpus-dir> holds raw_audios/en/<year>/*.ogg (or raw_audios/original/...).
The segment table asr_en.tsv.gz is looked up in <corpus-dir> unless given
(download: https://dl.fbaipublicfiles.com/voxpopuli/annotations/asr/asr_en.tsv.gz).
Writes voxpopuli_{recordings,supervisions,cuts}_<split>.jsonl.gz and
voxpopuli_report_<split>.json with the ids of everything skipped.
"""
import argparse
from pathlib import Path

from asrk2.data.voxpopuli import VOXPOPULI_SPLITS, prepare_voxpopuli
from asrk2.utils import setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--annotations", type=Path, default=None, help="asr_en.tsv.gz")
    parser.add_argument(
        "--splits", nargs="+", default=list(VOXPOPULI_SPLITS), choices=VOXPOPULI_SPLITS
    )
    parser.add_argument("--num-jobs", type=int, default=1)
    return parser


def main() -> None:
    """Parses arguments and prepares the splits."""
    args = get_parser().parse_args()
    setup_logging()
    reports = prepare_voxpopuli(
        args.corpus_dir, args.output_dir, args.annotations, args.splits, args.num_jobs
    )
    for split, report in reports.items():
        print(f"{split}: {report.summary()}")
    print(f"Manifests in {args.output_dir}")


if __name__ == "__main__":
    main()
