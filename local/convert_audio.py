#!/usr/bin/env python3
"""Convert audio files (m4a/mp3/ogg/opus/flac/...) to 16 kHz 16-bit mono wav.

Usage:
    python local/convert_audio.py --out-dir data/wav16k recordings/ extra/talk.m4a
    python local/convert_audio.py --out-dir data/wav16k --wav-scp data/local/wav.scp \\
        --num-jobs 2 recordings/

Directories are searched recursively; their sub-directory structure is kept
under --out-dir. Files that cannot be decoded are listed and skipped; the exit
status is 1 if any file failed. With --wav-scp, a Kaldi wav.scp
(<file stem> <wav path>) of the converted files is written.
"""
import argparse
import sys
from pathlib import Path

from asrk2.data.audio import convert_audio_files, find_audio_files
from asrk2.utils import atomic_write_text, children_die_with_parent, setup_logging


def get_parser() -> argparse.ArgumentParser:
    """Builds the command-line parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "inputs", nargs="+", type=Path, help="audio files or directories"
    )
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--num-jobs", type=int, default=1)
    parser.add_argument("--wav-scp", type=Path, default=None)
    return parser


def main() -> None:
    """Parses arguments, converts, reports failures."""
    args = get_parser().parse_args()
    setup_logging()
    children_die_with_parent()
    written, failed = [], []
    for item in args.inputs:
        files = find_audio_files([item])
        root = item if item.is_dir() else None
        out, report = convert_audio_files(
            files, args.out_dir, args.sample_rate, args.num_jobs, root
        )
        written += out
        failed += report.skipped.get("undecodable audio", [])
    if args.wav_scp:
        lines = sorted(f"{p.stem} {p.resolve()}" for p in written)
        atomic_write_text(args.wav_scp, "".join(line + "\n" for line in lines))
    print(f"Converted {len(written)} files into {args.out_dir}")
    if failed:
        print(f"{len(failed)} files could not be decoded:", *failed, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
