#!/usr/bin/env python3
"""Stream audio files to the ASR server; print partial results and the final text.

Usage:
    python local/stream_client.py utt.wav                   # as fast as possible
    python local/stream_client.py utt.wav --realtime        # paced like a microphone
    python local/stream_client.py a.wav b.wav --url ws://127.0.0.1:6006/ --quiet

Each file must be mono at the server's rate (16 kHz by default): no
resampling is done; a file at another rate is refused, naming the file. Prints
``PATH: TEXT`` per file, with partial results (``~ TEXT``) on stderr unless
--quiet, then the first-partial and final latencies.
"""
import argparse
import sys
from pathlib import Path

from asrk2.serve.client import Partial, ServerError, stream_file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", type=Path, nargs="+", help="mono wav/flac files")
    parser.add_argument("--url", default="ws://127.0.0.1:6006/")
    parser.add_argument(
        "--realtime", action="store_true", help="send audio at real-time pace"
    )
    parser.add_argument(
        "--message-seconds", type=float, default=0.1, help="audio per message"
    )
    parser.add_argument("--quiet", action="store_true", help="no partial results")
    return parser


def _show_partial(partial: Partial) -> None:
    print(f"  ~ {partial.text}", file=sys.stderr, flush=True)


def main() -> None:
    args = _parser().parse_args()
    failed = 0
    for path in args.files:
        try:
            result = stream_file(
                args.url,
                path,
                realtime=args.realtime,
                message_seconds=args.message_seconds,
                on_partial=None if args.quiet else _show_partial,
            )
        except (ServerError, OSError, ValueError) as e:
            print(f"{path}: ERROR {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: {result.text}", flush=True)
        first = result.first_partial_latency
        print(
            f"  {result.seconds:.2f} s audio, {len(result.partials)} partials, "
            f"first-partial latency {first * 1000 if first is not None else 0:.0f} ms, "
            f"final latency {(result.final_latency or 0) * 1000:.0f} ms",
            file=sys.stderr,
        )
    if failed:
        sys.exit(f"{failed} of {len(args.files)} files failed")


if __name__ == "__main__":
    main()
