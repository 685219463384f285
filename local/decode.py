#!/usr/bin/env python3
"""Decode a test set with a trained model and score it, with one or more methods.

Usage:
    python local/decode.py --exp-dir exp/demo --lang-dir data/lang_bpe_500 \
        --cuts data/fbank/synth_cuts_test.jsonl.gz --test-set test --avg 2 \
        --method ctc-greedy --method hlg-1best --method whole-lattice-rescoring \
        --lm-scale 0.3 --lm-scale 0.5

Methods (default ctc-greedy): ctc-greedy, hl-1best, hlg-1best, hlg-nbest,
nbest-rescoring, whole-lattice-rescoring, attention-rescoring. --lang-dir must
hold bpe.model, and as the methods need: HL.pt, HLG.pt, words.txt and
G_4_gram.pt (local/prepare_lang.py and local/compile_graphs.py write them).
Writes recogs-*.txt and errs-*.txt per method/scale and one wer-summary-*.txt
into <exp-dir>/decode.
"""
import argparse
from pathlib import Path

from asrk2.data.manifests import load_cuts_or_exit
from asrk2.decode.methods import METHODS, MethodOptions
from asrk2.decode.offline import decode_and_score
from asrk2.utils import children_die_with_parent, setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, required=True)
    parser.add_argument("--test-set", default="test")
    parser.add_argument("--epoch", type=int, default=None, help="default: the last")
    parser.add_argument("--avg", type=int, default=1, help="average the last N epochs")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="default: <exp-dir>/decode"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--method", action="append", choices=METHODS, help="repeatable")
    d = MethodOptions()
    # Unset beams come from the decode section of the checkpoint's config.
    parser.add_argument("--search-beam", type=float)
    parser.add_argument("--output-beam", type=float)
    parser.add_argument("--min-active-states", type=int)
    parser.add_argument("--max-active-states", type=int)
    parser.add_argument("--num-paths", type=int, default=d.num_paths)
    parser.add_argument("--nbest-scale", type=float, default=d.nbest_scale)
    parser.add_argument(
        "--lm-scale", type=float, action="append", help="repeatable; default 0.3..1.0"
    )
    parser.add_argument(
        "--attention-scale",
        type=float,
        action="append",
        help="repeatable; default 0.5, 1.0, 2.0",
    )
    return parser


def main() -> None:
    args = _parser().parse_args()
    setup_logging()
    children_die_with_parent()
    defaults = MethodOptions()
    options = MethodOptions(
        search_beam=args.search_beam,
        output_beam=args.output_beam,
        min_active_states=args.min_active_states,
        max_active_states=args.max_active_states,
        num_paths=args.num_paths,
        nbest_scale=args.nbest_scale,
        lm_scales=tuple(args.lm_scale or defaults.lm_scales),
        attention_scales=tuple(args.attention_scale or defaults.attention_scales),
    )
    summary = decode_and_score(
        args.exp_dir,
        load_cuts_or_exit(args.cuts),
        args.lang_dir,
        args.out_dir or args.exp_dir / "decode",
        args.test_set,
        args.epoch,
        args.avg,
        args.device,
        methods=args.method or ["ctc-greedy"],
        options=options,
    )
    for method, wer in summary.items():
        print(f"{args.test_set}\t{method}\tWER {wer:.2f}%")


if __name__ == "__main__":
    main()
