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
"""
import argparse
from pathlib import Path

from asrk2.data.manifests import load_cuts_or_exit
from asrk2.decode.streaming import StreamingOptions, stream_decode_and_score
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
        "--chunk-size", type=int, action="append", help="repeatable; default 16"
    )
    parser.add_argument(
        "--left-context-frames", type=int, default=None, help="default: config's"
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
        "--redecode-final",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="final result from all log-probs at once; default: on for HL/HLG "
        "(k2 1.23.4's online finals drop words across chunks), off for H",
    )
    parser.add_argument(
        "--force-causal",
        action="store_true",
        help="run a causal: false model with causal convs (timing only)",
    )
    d = StreamingOptions()
    parser.add_argument("--search-beam", type=float, default=d.search_beam)
    parser.add_argument("--output-beam", type=float, default=d.output_beam)
    parser.add_argument("--min-active-states", type=int, default=d.min_active_states)
    parser.add_argument("--max-active-states", type=int, default=d.max_active_states)
    return parser


def main() -> None:
    args = _parser().parse_args()
    setup_logging()
    children_die_with_parent()
    options = StreamingOptions(
        left_context_frames=args.left_context_frames,
        search_beam=args.search_beam,
        output_beam=args.output_beam,
        min_active_states=args.min_active_states,
        max_active_states=args.max_active_states,
    )
    rows = stream_decode_and_score(
        args.exp_dir,
        load_cuts_or_exit(args.cuts),
        args.lang_dir,
        args.out_dir or args.exp_dir / "decode",
        args.test_set,
        args.graph,
        args.chunk_size or [16],
        options,
        args.epoch,
        args.avg,
        args.device,
        args.num_threads,
        num_streams=args.num_streams,
        features="online" if args.online_fbank else "precomputed",
        force_causal=args.force_causal,
        redecode_final=args.redecode_final,
    )
    print("setting\tWER%\tRTF\tstep latency mean/p95 ms")
    for key, r in rows.items():
        print(
            f"{key}\t{r['wer']:.2f}\t{r['rtf']:.3f}\t"
            f"{r['latency_mean_ms']:.1f}/{r['latency_p95_ms']:.1f}"
        )


if __name__ == "__main__":
    main()
