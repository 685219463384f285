#!/usr/bin/env python3
"""Decode a test set with a trained model and score it, with one or more methods.

Usage:
    python local/decode.py --exp-dir exp/demo --lang-dir data/lang_bpe_500 \
        --cuts data/fbank/synth_cuts_test.jsonl.gz --test-set test --avg 2 \
        --method ctc-greedy --method hlg-1best --method whole-lattice-rescoring \
        --lm-scales 0.3 0.5

Methods (default ctc-greedy): ctc-greedy, hl-1best, hlg-1best, hlg-nbest,
nbest-rescoring, whole-lattice-rescoring, attention-rescoring,
attention-beam-search (the attention decoder: --beam-size, --length-penalty,
--max-len-ratio; --ctc-weight 0.3 scores jointly with CTC prefix scores).
--lang-dir must
hold bpe.model, and as the methods need: HL.pt, HLG.pt, words.txt and
G_4_gram.pt (local/prepare_lang.py and local/compile_graphs.py write them).
Writes recogs-*.txt and errs-*.txt per method/scale and one wer-summary-*.txt
into <exp-dir>/decode; with --ctm also Kaldi CTM files
(``utt 1 start duration word confidence``) of the 1-best methods, the times
from the best path's CTC alignment, the confidence the posterior of the arc
that emits the word.

Method options (beams, n-best, scales) come from the checkpoint's decode
beams and MethodOptions' defaults, then the ``decode`` section of --config
(a YAML file; unknown keys are errors), then the flags below.
"""
import argparse
import sys
from pathlib import Path

import torch

from asrk2.checkpoint import load_model_or_exit
from asrk2.config import add_config_flags, config_from_flags
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
    parser.add_argument(
        "--ctm",
        action="store_true",
        help="also write ctm-<test-set>-<method>.ctm (word times, confidences) "
        "for ctc-greedy, hl-1best and hlg-1best",
    )
    parser.add_argument("--config", type=Path, help="YAML with a 'decode' section")
    add_config_flags(parser, MethodOptions)
    return parser


def main() -> None:
    args = _parser().parse_args()
    setup_logging()
    children_die_with_parent()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuts = load_cuts_or_exit(args.cuts)
    model, config = load_model_or_exit(args.exp_dir, args.epoch, args.avg)
    base = MethodOptions(beams=config.decode.beams())
    options = config_from_flags(MethodOptions, args, base, args.config, "decode")
    try:
        summary = decode_and_score(
            model.to(device),
            config,
            cuts,
            args.lang_dir,
            args.out_dir or args.exp_dir / "decode",
            args.test_set,
            methods=args.method or ["ctc-greedy"],
            options=options,
            ctm=args.ctm,
        )
    except ValueError as e:  # a method the model cannot do, or no decodable cut
        sys.exit(f"error: {e}")
    for method, wer in summary.items():
        print(f"{args.test_set}\t{method}\tWER {wer:.2f}%")


if __name__ == "__main__":
    main()
