#!/usr/bin/env python3
"""Synthesises an everyday-English speech corpus with espeak-ng.

Usage (from the repository root)::

    python local/make_synth_corpus.py --out-dir data/synth \\
        --num-train 1000 --num-dev 100 --num-test 100 --seed 0 --num-jobs 2

Writes ``<out-dir>/wav/<speaker>/<utt>.wav`` and a Kaldi data dir per split
(``<out-dir>/{train,dev,test}``). Rerunning with the same options is a no-op;
an interrupted run resumes. Needs ``apt-get install espeak-ng``.
"""
import argparse
import logging
from pathlib import Path
from typing import List, Optional

from asrk2.data.synth import SynthCorpusConfig, make_synth_corpus
from asrk2.utils import children_die_with_parent, setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser; defaults come from SynthCorpusConfig."""
    default = SynthCorpusConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="corpus directory")
    parser.add_argument("--seed", type=int, default=default.seed)
    for split in ("train", "dev", "test"):
        parser.add_argument(
            f"--num-{split}",
            type=int,
            default=getattr(default, f"num_{split}"),
            help=f"utterances in {split}",
        )
        parser.add_argument(
            f"--num-{split}-speakers",
            type=int,
            default=getattr(default, f"num_{split}_speakers"),
            help=f"voices in {split}, disjoint from the other splits",
        )
    parser.add_argument("--sample-rate", type=int, default=default.sample_rate)
    parser.add_argument("--num-jobs", type=int, default=default.num_jobs)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Parses ``argv`` and builds the corpus."""
    args = get_parser().parse_args(argv)
    setup_logging()
    children_die_with_parent()
    config = SynthCorpusConfig(
        seed=args.seed,
        num_train=args.num_train,
        num_dev=args.num_dev,
        num_test=args.num_test,
        num_train_speakers=args.num_train_speakers,
        num_dev_speakers=args.num_dev_speakers,
        num_test_speakers=args.num_test_speakers,
        sample_rate=args.sample_rate,
        num_jobs=args.num_jobs,
    )
    dirs = make_synth_corpus(args.out_dir, config)
    for split, data_dir in dirs.items():
        logging.info("%s: %s", split, data_dir)
    print(f"Synthetic corpus written to {args.out_dir.resolve()}")


if __name__ == "__main__":
    main()
