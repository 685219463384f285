#!/usr/bin/env python3
"""Compute 80-dim kaldifeat fbank for a cut manifest, stored with lilcom.

Usage:
    python local/compute_fbank.py --cuts data/manifests/synth_cuts_train.jsonl.gz \\
        --output-dir data/fbank --device auto [--speed-perturb]
Large corpora (e.g. GigaSpeech XL), split into pieces of --chunk-size cuts and
shared between jobs (one per GPU), each taking a range of pieces:
    python local/compute_fbank.py --cuts data/manifests/gigaspeech_cuts_XL.jsonl.gz \\
        --output-dir data/fbank --device cuda --chunk-size 10000 --start 0 --stop 400

Writes <output-dir>/<name>.lca (features) and <output-dir>/<name>.jsonl.gz (cuts
with features), where <name> is the input manifest's name. With --chunk-size,
pieces go to <output-dir>/<name>_split/, finished pieces are skipped on a rerun,
and <name>.jsonl.gz is written once every piece is done. --device cuda runs
kaldifeat on the GPU in batches of --batch-duration seconds; cpu otherwise.
"""
import argparse
import logging
from pathlib import Path

from lhotse import CutSet

from asrk2.features.fbank import FbankConfig, compute_fbank
from asrk2.features.split import compute_fbank_pieces, manifest_name
from asrk2.utils import children_die_with_parent, setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser; defaults come from FbankConfig."""
    default = FbankConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--device", default=default.device, help="cpu, cuda or auto")
    parser.add_argument("--num-mel-bins", type=int, default=default.num_mel_bins)
    parser.add_argument("--batch-duration", type=float, default=default.batch_duration)
    parser.add_argument(
        "--num-workers",
        type=int,
        default=default.num_workers,
        help="audio-decoding processes",
    )
    parser.add_argument(
        "--speed-perturb",
        action="store_true",
        help="add 0.9x and 1.1x speed copies of every cut",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=0,
        help="split into pieces of this many cuts (0: no split)",
    )
    parser.add_argument("--start", type=int, default=0, help="first piece of this job")
    parser.add_argument("--stop", type=int, default=None, help="end piece (exclusive)")
    return parser


def main() -> None:
    """Parses arguments and extracts the features."""
    args = get_parser().parse_args()
    setup_logging()
    children_die_with_parent()
    config = FbankConfig(
        args.num_mel_bins,
        args.device,
        args.batch_duration,
        args.num_workers,
        args.speed_perturb,
    )
    name = manifest_name(args.cuts)
    if args.chunk_size > 0:
        out = compute_fbank_pieces(
            args.cuts, args.output_dir, config, args.chunk_size, args.start, args.stop
        )
        logging.info("Combined manifest: %s", out or "not yet (pieces left)")
        return
    out = args.output_dir / f"{name}.jsonl.gz"
    compute_fbank(
        CutSet.from_jsonl_lazy(args.cuts), args.output_dir / name, out, config
    )
    logging.info("Wrote features; manifest %s", out)


if __name__ == "__main__":
    main()
