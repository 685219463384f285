#!/usr/bin/env python3
"""Stream audio files to the ASR server; print partial results and the final text.

Usage:
    python local/stream_client.py utt.wav                   # as fast as possible
    python local/stream_client.py utt.wav --realtime        # paced like a microphone
    python local/stream_client.py a.wav b.wav --url ws://127.0.0.1:6006/ --quiet
    python local/stream_client.py long.wav --segments      # one final per utterance
    python local/stream_client.py utt.wav --grpc 127.0.0.1:6007  # the gRPC service

Each file must be mono at the server's rate (16 kHz by default): no
resampling is done; a file at another rate is refused, naming the file. Prints
``PATH: TEXT`` per file, with partial results (``~ TEXT``) on stderr unless
--quiet, then the first-partial and final latencies. With --segments each
utterance of a long file is printed with its times (``[start-end] TEXT``).
"""
import argparse
import asyncio
import sys
from pathlib import Path

from asrk2.serve.client import (
    Partial,
    ServerError,
    StreamResult,
    read_wav,
    stream_audio,
)
from asrk2.serve.grpc_client import recognize


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
    parser.add_argument(
        "--segments", action="store_true", help="a final per utterance (endpoints)"
    )
    parser.add_argument("--grpc", metavar="HOST:PORT", help="use the gRPC service")
    return parser


def _stream(args: argparse.Namespace, path: Path) -> StreamResult:
    """Streams one file over WebSocket or gRPC; raises ServerError if refused."""
    samples, rate = read_wav(path)
    on_partial = None if args.quiet else _show_partial
    if args.grpc:
        result = asyncio.run(
            recognize(
                args.grpc, samples, rate, args.realtime, args.message_seconds,
                partials=not args.quiet, segments=args.segments,
            )
        )  # fmt: skip
        if on_partial is not None:  # gRPC: shown after the call
            for partial in result.partials:
                on_partial(partial)
    else:
        result = asyncio.run(
            stream_audio(
                args.url, samples, rate, args.realtime, args.message_seconds,
                on_partial=on_partial, segments=args.segments,
            )
        )  # fmt: skip
    if not result.ok:
        raise ServerError(result, str(path))
    return result


def _show_partial(partial: Partial) -> None:
    print(f"  ~ {partial.text}", file=sys.stderr, flush=True)


def main() -> None:
    args = _parser().parse_args()
    failed = 0
    for path in args.files:
        try:
            result = _stream(args, path)
        except (ServerError, OSError, ValueError) as e:
            print(f"{path}: ERROR {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: {result.text}", flush=True)
        for segment in result.segments:
            if segment["text"]:
                span = f"{segment['start']:.2f}-{segment['end']:.2f}"
                print(f"  [{span}] {segment['text']}", flush=True)
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
