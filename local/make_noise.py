#!/usr/bin/env python3
"""Generates noise recordings (white, pink, brown, babble) and simulated room
impulse responses for augmentation.

Usage::

    python local/make_noise.py --speech-cuts data/manifests/synth_cuts_train.jsonl.gz \\
        --out-dir data/noise --num-per-kind 10 --duration 10

Writes ``<out-dir>/<kind>-NNN.wav`` and ``<out-dir>/noise_cuts.jsonl.gz`` (the
manifest ``data.augment.noise_cuts`` names), and ``<out-dir>/rir-NNN.wav`` with
``<out-dir>/rirs.jsonl.gz`` (for ``data.augment.rir_recordings``). Babble comes
from the given (training) cuts only.
"""
import argparse
import logging
from pathlib import Path
from typing import List, Optional

from asrk2.data.manifests import load_cuts_or_exit
from asrk2.data.noise import make_noise_corpus, make_rir_bank
from asrk2.utils import setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speech-cuts", type=Path, required=True,
                        help="training cuts with audio (babble source)")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--num-per-kind", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds each")
    parser.add_argument("--babble-speakers", type=int, default=4)
    parser.add_argument("--num-rirs", type=int, default=100,
                        help="simulated room impulse responses")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Parses ``argv`` and writes the noise recordings."""
    args = get_parser().parse_args(argv)
    setup_logging()
    cuts = load_cuts_or_exit(args.speech_cuts)
    sample_rate = next(iter(cuts)).sampling_rate
    make_noise_corpus(
        args.out_dir, cuts, num_per_kind=args.num_per_kind, duration=args.duration,
        babble_speakers=args.babble_speakers, sample_rate=sample_rate, seed=args.seed,
    )  # fmt: skip
    make_rir_bank(args.out_dir, args.num_rirs, sample_rate, args.seed)
    logging.info("Noise manifest: %s", args.out_dir / "noise_cuts.jsonl.gz")
    logging.info("RIR manifest: %s", args.out_dir / "rirs.jsonl.gz")


if __name__ == "__main__":
    main()
