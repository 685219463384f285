#!/usr/bin/env python3
"""Prepare lang dirs from the transcripts of a training cut manifest.

Usage:
    python local/prepare_lang.py --cuts data/manifests/synth_cuts_train.jsonl.gz \
        --lang-dir data/lang_bpe_500 --nbpe 500 [--phone-lang-dir data/lang_phone]

Writes into the BPE lang dir: transcripts.txt, bpe.model, tokens.txt, words.txt,
lexicon.txt, lexicon_disambig.txt, tokens_disambig.txt, L.pt, L_disambig.pt,
lm_3.arpa, lm_4.arpa, G_3_gram.fst.txt, G_3_gram.pt, G_4_gram.fst.txt,
G_4_gram.pt; the phone lang dir (CMUdict, optional) gets the same minus the
BPE model, plus oov.txt. Steps whose outputs are up to date are skipped.
Decoding graphs come next: local/compile_graphs.py.
"""

import argparse
import logging
import sys
from pathlib import Path

from asrk2.data.manifests import load_cuts_or_exit
from asrk2.data.text import normalize_text
from asrk2.lang.prepare import (
    prepare_bpe_lang,
    prepare_lms,
    prepare_phone_lang,
    write_transcripts,
)
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cuts", type=Path, required=True, help="training cuts")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--nbpe", type=int, default=500)
    parser.add_argument("--model-type", default="unigram", choices=["unigram", "bpe"])
    parser.add_argument(
        "--phone-lang-dir",
        type=Path,
        default=None,
        help="also a CMUdict phone lang dir",
    )
    parser.add_argument(
        "--lm-orders",
        type=int,
        nargs="*",
        default=[3, 4],
        help="n-gram orders to train",
    )
    parser.add_argument(
        "--max-ngrams", action="append", default=[], metavar="ORDER=N1,N2,..",
        help="prune the ORDER-gram LM to at most N_k k-grams (unigrams: any "
        "value), e.g. 3=0,5000000,10000000 for an XL-size HLG; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--extra-words",
        type=Path,
        default=None,
        help="file of words to add to the vocabulary",
    )
    args = parser.parse_args()
    setup_logging()
    max_ngrams = {}
    for item in args.max_ngrams:
        order, _, sizes = item.partition("=")
        try:
            max_ngrams[int(order)] = [int(float(x)) for x in sizes.split(",")]
        except ValueError:
            sys.exit(f"error: --max-ngrams {item!r} is not ORDER=N1,N2,...")
        if len(max_ngrams[int(order)]) != int(order):
            sys.exit(f"error: --max-ngrams {item!r} needs {order} sizes")
    texts = [
        normalize_text(s.text or "")
        for cut in load_cuts_or_exit(args.cuts)
        for s in cut.supervisions
    ]
    extra = args.extra_words.read_text().split() if args.extra_words else []
    write_transcripts(texts, args.lang_dir)
    prepare_bpe_lang(args.lang_dir, args.nbpe, args.model_type, extra)
    prepare_lms(args.lang_dir, args.lm_orders, max_ngrams=max_ngrams)
    if args.phone_lang_dir:
        write_transcripts(texts, args.phone_lang_dir)
        oovs = prepare_phone_lang(args.phone_lang_dir, extra)
        prepare_lms(args.phone_lang_dir, args.lm_orders, max_ngrams=max_ngrams)
        logging.info("%s: %d OOV word(s) in oov.txt", args.phone_lang_dir, len(oovs))
    logging.info("Lang dir ready: %s", args.lang_dir)


if __name__ == "__main__":
    main()
