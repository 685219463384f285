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

Every field of the server's config (asrk2.serve.server.ServerConfig, with
its ``streaming`` options) is a flag below; the values start from its
defaults and the checkpoint's decode beams, then the ``server`` section of
--config (YAML; unknown keys are errors), then the flags.
"""
import argparse
import sys
from dataclasses import replace
from pathlib import Path

from asrk2.checkpoint import load_model_or_exit
from asrk2.config import ConfigError, add_config_flags, config_from_flags
from asrk2.serve.server import ServerConfig, serve_model
from asrk2.utils import setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--epoch", type=int, default=None, help="default: the last")
    parser.add_argument("--avg", type=int, default=1, help="average the last N epochs")
    parser.add_argument("--config", type=Path, help="YAML with a 'server' section")
    # Endpointing is per client (the start message's "segments"), so the
    # server offers the rules' flags but not the switch.
    add_config_flags(parser, ServerConfig, skip=["endpointing"])
    return parser


def main() -> None:
    args = _parser().parse_args()
    setup_logging()
    model, experiment = load_model_or_exit(args.exp_dir, args.epoch, args.avg)
    defaults = ServerConfig()
    base = replace(
        defaults,
        streaming=replace(defaults.streaming, **experiment.decode.beams().kwargs()),
    )
    try:
        config = config_from_flags(ServerConfig, args, base, args.config, "server")
        serve_model(config, model, args.lang_dir)
    except (ConfigError, ValueError) as e:
        sys.exit(f"serve.py: {args.exp_dir}: {e}")


if __name__ == "__main__":
    main()
