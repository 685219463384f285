#!/usr/bin/env python3
"""Export a cut manifest to lhotse Shar shards, for training on many nodes.

Usage:
    python local/export_shar.py --cuts data/fbank/gigaspeech_cuts_XL.jsonl.gz \
        --out-dir data/shar/XL --shard-size 1000 [--audio]

Writes cuts.NNNNNN.jsonl.gz and features.NNNNNN.tar (lilcom) per shard, and
with --audio recording.NNNNNN.tar (FLAC), into a temporary directory renamed
to --out-dir when complete. Train from it with --set data.shar_dir=<out-dir>
(local/train.py). With N nodes x W dataloader workers, make at least N x W
shards (more shuffle and balance better).
"""
import argparse
import sys
from pathlib import Path

from asrk2.data.manifests import load_cuts_or_exit
from asrk2.data.shar import export_shar
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--audio", action="store_true", help="also the recordings")
    parser.add_argument(
        "--no-features", action="store_true", help="no features (with --audio)"
    )
    args = parser.parse_args()
    setup_logging()
    fields = ([] if args.no_features else ["features"]) + (
        ["recording"] if args.audio else []
    )
    if not fields or args.shard_size < 1:
        sys.exit("error: nothing to export (--no-features without --audio), "
                 "or --shard-size < 1")  # fmt: skip
    cuts = load_cuts_or_exit(args.cuts)
    try:
        shards = export_shar(cuts, args.out_dir, args.shard_size, fields)
    except (FileExistsError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"{args.out_dir}: {shards} shards of {', '.join(fields)}")


if __name__ == "__main__":
    main()
