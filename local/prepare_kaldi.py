#!/usr/bin/env python3
"""Import a Kaldi data dir as lhotse manifests (recordings, supervisions, cuts).

Usage:
    python local/prepare_kaldi.py --data-dir data/synth/train --output-dir data/manifests \
        --prefix synth --split train
"""
import argparse
import logging
from pathlib import Path

from asrk2.data.kaldi_dir import import_kaldi_dir, manifest_path
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="Kaldi data dir")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--prefix", default="kaldi", help="corpus name in manifest file names")
    parser.add_argument("--split", required=True, help="e.g. train, dev, test")
    parser.add_argument("--sampling-rate", type=int, default=16000)
    parser.add_argument("--num-jobs", type=int, default=1)
    args = parser.parse_args()
    setup_logging()
    cuts = import_kaldi_dir(
        args.data_dir, args.output_dir, args.split, args.prefix, args.sampling_rate, args.num_jobs
    )
    out = manifest_path(args.output_dir, args.prefix, "cuts", args.split)
    logging.info("Wrote %d cuts to %s", len(cuts), out)


if __name__ == "__main__":
    main()
