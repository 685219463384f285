#!/usr/bin/env python3
"""Serve a streaming model over WebSockets (protocol: asrk2/serve/protocol.py).

Usage:
    python local/serve.py --exp-dir exp/demo --lang-dir data/lang_bpe_100 \
        --graph H --avg 2 --port 6006
    # then: python local/stream_client.py utt.wav --realtime
    # or open http://127.0.0.1:6006/ for the microphone page

Needs a model trained with ``causal: true`` (as conf/demo.yaml). --graph is
H (tokens, bpe.model), HL or HLG (words.txt and HL.pt/HLG.pt in --lang-dir).
Listens on 127.0.0.1 unless --host says otherwise; prints
``listening on ws://HOST:PORT/`` when ready (--port 0 picks a free port).
SIGINT/SIGTERM stop accepting, give open streams their final result, then
close them with code 1001.
"""
import argparse
from pathlib import Path
from typing import Optional

from asrk2.serve.server import ServerConfig, serve_model
from asrk2.utils import setup_logging


def _optional_int(text: str) -> Optional[int]:
    return None if text.lower() == "none" else int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = ServerConfig()
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--graph", choices=("H", "HL", "HLG"), default=d.graph)
    parser.add_argument("--epoch", type=int, default=None, help="default: the last")
    parser.add_argument("--avg", type=int, default=1, help="average the last N epochs")
    parser.add_argument("--host", default=d.host)
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--chunk-size", type=int, default=d.chunk_size)
    parser.add_argument(
        "--left-context-frames",
        type=_optional_int,
        default=d.left_context_frames,
        help="attention cache in output frames; -1 unbounded; none: model config's",
    )
    parser.add_argument("--max-clients", type=int, default=d.max_clients)
    parser.add_argument("--max-batch-streams", type=int, default=d.max_batch_streams)
    parser.add_argument("--max-message-bytes", type=int, default=d.max_message_bytes)
    parser.add_argument(
        "--max-buffered-seconds", type=float, default=d.max_buffered_seconds
    )
    parser.add_argument("--start-timeout", type=float, default=d.start_timeout)
    parser.add_argument("--idle-timeout", type=float, default=d.idle_timeout)
    parser.add_argument("--shutdown-timeout", type=float, default=d.shutdown_timeout)
    parser.add_argument("--num-threads", type=int, default=d.num_threads)
    return parser


def main() -> None:
    args = _parser().parse_args()
    setup_logging()
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_clients=args.max_clients,
        max_message_bytes=args.max_message_bytes,
        chunk_size=args.chunk_size,
        left_context_frames=args.left_context_frames,
        graph=args.graph,
        max_batch_streams=args.max_batch_streams,
        max_buffered_seconds=args.max_buffered_seconds,
        start_timeout=args.start_timeout,
        idle_timeout=args.idle_timeout,
        shutdown_timeout=args.shutdown_timeout,
        num_threads=args.num_threads,
        device=args.device,
    )
    serve_model(config, args.exp_dir, args.lang_dir, args.epoch, args.avg)


if __name__ == "__main__":
    main()
