#!/usr/bin/env python3
"""Import a Kaldi data dir as lhotse manifests, or export cuts to a Kaldi dir.

Usage (import: wav.scp files or "cmd |" pipes, segments, text, utt2spk, reco2dur):
    python local/prepare_kaldi.py --data-dir data/synth/train \\
        --output-dir data/manifests --prefix synth --split train
Usage (export a cut manifest as a Kaldi data dir):
    python local/prepare_kaldi.py \\
        --export-cuts data/manifests/synth_cuts_train.jsonl.gz \\
        --data-dir data/kaldi/train [--prefix-speaker] [--overwrite]

Import writes <prefix>_{recordings,supervisions,cuts}_<split>.jsonl.gz and
<prefix>_report_<split>.json (ids of skipped recordings/utterances) in --output-dir.
"""
import argparse
import logging
from pathlib import Path

from lhotse import CutSet

from asrk2.data.kaldi_dir import export_kaldi_dir, import_kaldi_dir, manifest_path
from asrk2.utils import children_die_with_parent, setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="Kaldi data dir (input of an import, output of an export)",
    )
    parser.add_argument("--output-dir", type=Path, help="import: where manifests go")
    parser.add_argument(
        "--prefix", default="kaldi", help="corpus name in manifest file names"
    )
    parser.add_argument("--split", help="import: e.g. train, dev, test")
    parser.add_argument("--sampling-rate", type=int, default=16000)
    parser.add_argument("--num-jobs", type=int, default=1)
    parser.add_argument(
        "--channel",
        type=int,
        default=0,
        help="import: the channel of multi-channel audio to use (as Kaldi's "
        "--channel; default 0)",
    )
    parser.add_argument(
        "--export-cuts",
        type=Path,
        default=None,
        help="export this cut manifest to --data-dir instead of importing",
    )
    parser.add_argument(
        "--prefix-speaker",
        action="store_true",
        help="export: prefix utterance ids with the speaker id",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="export: replace --data-dir"
    )
    return parser


def main() -> None:
    """Parses arguments and imports or exports."""
    parser = get_parser()
    args = parser.parse_args()
    setup_logging()
    children_die_with_parent()
    if args.export_cuts is not None:
        cuts = CutSet.from_jsonl_lazy(args.export_cuts)
        out = export_kaldi_dir(cuts, args.data_dir, args.prefix_speaker, args.overwrite)
        logging.info("Wrote Kaldi data dir %s", out)
        return
    if args.output_dir is None or args.split is None:
        parser.error("an import needs --output-dir and --split")
    cuts = import_kaldi_dir(
        args.data_dir,
        args.output_dir,
        args.split,
        args.prefix,
        args.sampling_rate,
        args.num_jobs,
        args.channel,
    )
    out = manifest_path(args.output_dir, args.prefix, "cuts", args.split)
    logging.info("Wrote %d cuts to %s", len(cuts), out)


if __name__ == "__main__":
    main()
