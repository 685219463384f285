#!/usr/bin/env python3
"""Train and decode variants of one recipe config, one after another.

Usage (from a recipe directory, as ``make compare`` runs it):
    python local/train_variants.py --config conf/demo.yaml \
        --variants conf/variants/compare.yaml --exp-root exp/compare --epochs 3 \
        --train-cuts data/fbank/synth_cuts_train.jsonl.gz \
        --valid-cuts data/fbank/synth_cuts_dev.jsonl.gz \
        --test-cuts data/fbank/synth_cuts_test.jsonl.gz

Each variant (a name and overrides of --config, see conf/variants/compare.yaml) trains
in <exp-root>/<name> for --epochs epochs with local/train.py and is decoded on
the test cuts with the methods that fit it: ctc-greedy and hlg-1best when CTC
or MMI trained the CTC output layer, attention-beam-search when there is an
attention decoder, and attention-rescoring when there are both. Its lang dir
is --lang-dir-pattern with the variant's lang.nbpe. A variant already done
with the same config, overrides and training cuts is skipped; a half-trained
one resumes from its last checkpoint. A variant that fails is logged and
counted, the others still run, and the exit status is 1.

--list-nbpe prints the vocabulary sizes the variants need (one lang dir
each); --list-dirs prints their experiment dirs in order.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List

from asrk2.config import ConfigError
from asrk2.train.variants import load_variants, methods_for, run_variant, variant_config
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, required=True, help="base config")
    parser.add_argument("--variants", type=Path, required=True)
    parser.add_argument("--exp-root", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-cuts", type=Path)
    parser.add_argument("--valid-cuts", type=Path)
    parser.add_argument("--test-cuts", type=Path)
    parser.add_argument("--lang-dir-pattern", default="data/lang_bpe_{nbpe}")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME",
        help="run only these variants (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--decode-arg", action="append", default=[], metavar="ARG",
        help="passed to local/decode.py, e.g. --decode-arg=--beam-size=4",
    )  # fmt: skip
    parser.add_argument("--list-nbpe", action="store_true")
    parser.add_argument("--list-dirs", action="store_true")
    args = parser.parse_args()
    setup_logging()
    try:
        variants = load_variants(args.variants)
        unknown = sorted(set(args.only) - {v.name for v in variants})
        if unknown:
            raise ConfigError(f"--only names unknown variants {unknown}")
        if args.only:
            variants = [v for v in variants if v.name in args.only]
        configs = [variant_config(args.config, v) for v in variants]
    except ConfigError as e:
        sys.exit(f"error: {e}")
    if args.list_nbpe:
        print(" ".join(str(n) for n in sorted({c.lang.nbpe for c in configs})))
        return
    if args.list_dirs:
        print(" ".join(str(args.exp_root / v.name) for v in variants))
        return
    missing = [
        f"--{name.replace('_', '-')}"
        for name in ("train_cuts", "valid_cuts", "test_cuts")
        if getattr(args, name) is None
    ]
    if missing:
        sys.exit(f"error: {', '.join(missing)} required to train")
    failed: List[str] = []
    for i, (variant, config) in enumerate(zip(variants, configs), 1):
        methods = methods_for(config)
        lang_dir = Path(args.lang_dir_pattern.format(nbpe=config.lang.nbpe))
        if not (lang_dir / "bpe.model").is_file():
            logging.error("Variant %s: no %s/bpe.model", variant.name, lang_dir)
            failed.append(variant.name)
            continue
        logging.info(
            "[%d/%d] %s: %s", i, len(variants), variant.name, ", ".join(methods)
        )
        try:
            result = run_variant(
                variant, Path.cwd(), args.config, args.exp_root, args.train_cuts,
                args.valid_cuts, args.test_cuts, lang_dir, args.epochs,
                methods=methods, decode_args=args.decode_arg + variant.decode_args,
                dev_cuts=args.valid_cuts,
            )  # fmt: skip
        except (RuntimeError, OSError, KeyError, ValueError) as e:
            logging.error("Variant %s failed: %s", variant.name, e)
            failed.append(variant.name)
            continue
        logging.info(
            "%s: %s", variant.name,
            ", ".join(f"{k} {v:.2f}%" for k, v in result.wers.items()),
        )  # fmt: skip
    if failed:
        sys.exit(f"{len(failed)} of {len(variants)} variants failed: {failed}")


if __name__ == "__main__":
    main()
