#!/usr/bin/env python3
"""Compute 80-dim kaldifeat fbank for a cut manifest, stored with lilcom.

Usage:
    python local/compute_fbank.py --cuts data/manifests/synth_cuts_train.jsonl.gz \
        --output-dir data/fbank --device auto
Writes ``<output-dir>/<name>.lca`` (features) and ``<output-dir>/<name>.jsonl.gz``
(cuts with features), where <name> is the input manifest's name.
"""
import argparse
import logging
from pathlib import Path

from lhotse import CutSet

from asrk2.features.fbank import FbankConfig, compute_fbank
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--num-mel-bins", type=int, default=80)
    parser.add_argument("--batch-duration", type=float, default=600.0)
    parser.add_argument("--num-workers", type=int, default=1)
    args = parser.parse_args()
    setup_logging()
    name = args.cuts.name.replace(".jsonl.gz", "")
    config = FbankConfig(args.num_mel_bins, args.device, args.batch_duration, args.num_workers)
    out = args.output_dir / f"{name}.jsonl.gz"
    cuts = compute_fbank(CutSet.from_file(args.cuts), args.output_dir / name, out, config)
    logging.info("Wrote features of %d cuts; manifest %s", len(cuts), out)


if __name__ == "__main__":
    main()
