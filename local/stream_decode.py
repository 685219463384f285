#!/usr/bin/env python3
"""Decode a test set in streaming mode (chunked encoder + online k2 search).

Usage:
    python local/stream_decode.py --exp-dir exp/demo --lang-dir data/lang_bpe_500 \
        --cuts data/fbank/synth_cuts_test.jsonl.gz --graph HLG \
        --chunk-size 16 --chunk-size 8 --left-context-frames 64 \
        --num-streams 8 --online-fbank

Needs a model trained with ``causal: true`` (--force-causal runs any model
that way, for timing only). --graph is H (tokens, bpe.model), HL or HLG
(words.txt and HL.pt/HLG.pt in --lang-dir). One stream per cut, up to
--num-streams of them in flight and batched; features are the cuts'
precomputed fbank, or with --online-fbank computed from the audio as it is
fed. Writes recogs-*.txt and errs-*.txt per chunk size and
wer-summary-<test-set>-streaming.txt into <exp-dir>/decode, and prints WER,
real-time factor and the latency of a decoding step (one chunk of every
stream in flight).

Streaming options start from the checkpoint's decode beams (as offline
decoding), then the ``streaming`` section of --config (YAML; unknown keys are
errors), then the flags. --redecode-final defaults to true for HL/HLG (k2
1.23.4's online finals drop words across chunks) and false for H.
"""
import argparse
from pathlib import Path

import torch

from asrk2.checkpoint import load_model_or_exit
from asrk2.config import add_config_flags, config_from_flags
from asrk2.data.manifests import load_cuts_or_exit
from asrk2.decode.stream_eval import stream_decode_and_score, with_causal_convs
from asrk2.decode.streaming import StreamingOptions
from asrk2.utils import children_die_with_parent, setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--test-set", default="test")
    parser.add_argument("--graph", choices=("H", "HL", "HLG"), default="H")
    parser.add_argument(
        "--chunk-size",
        type=int,
        action="append",
        help="repeatable: one run per chunk size; default: the options' (16)",
    )
    parser.add_argument("--epoch", type=int, default=None, help="default: the last")
    parser.add_argument("--avg", type=int, default=1, help="average the last N epochs")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="default: <exp-dir>/decode"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument(
        "--num-streams", type=int, default=8, help="cuts decoded together"
    )
    parser.add_argument(
        "--online-fbank", action="store_true", help="fbank from the audio, online"
    )
    parser.add_argument(
        "--force-causal",
        action="store_true",
        help="run a causal: false model with causal convs (timing only)",
    )
    parser.add_argument("--config", type=Path, help="YAML with a 'streaming' section")
    add_config_flags(parser, StreamingOptions, skip=["chunk_size"])
    return parser


def main() -> None:
    args = _parser().parse_args()
    setup_logging()
    children_die_with_parent()
    cuts = load_cuts_or_exit(args.cuts)
    model, config = load_model_or_exit(args.exp_dir, args.epoch, args.avg)
    if args.force_causal:
        model = with_causal_convs(model)
    base = StreamingOptions(**config.decode.beams().kwargs())
    options = config_from_flags(StreamingOptions, args, base, args.config, "streaming")
    rows = stream_decode_and_score(
        model.to(torch.device(args.device)),
        cuts,
        args.lang_dir,
        args.out_dir or args.exp_dir / "decode",
        options,
        graph_name=args.graph,
        test_set=args.test_set,
        chunk_sizes=args.chunk_size or [],
        num_streams=args.num_streams,
        features="online" if args.online_fbank else "precomputed",
        num_threads=args.num_threads,
    )
    print("setting\tWER%\tRTF\tstep latency mean/p95 ms")
    for key, r in rows.items():
        print(
            f"{key}\t{r['wer']:.2f}\t{r['rtf']:.3f}\t"
            f"{r['latency_mean_ms']:.1f}/{r['latency_p95_ms']:.1f}"
        )


if __name__ == "__main__":
    main()
