#!/usr/bin/env python3
"""Train a sentencepiece BPE model on the transcripts of a cut manifest.

Usage:
    python local/prepare_lang.py --cuts data/manifests/synth_cuts_train.jsonl.gz \
        --lang-dir data/lang_bpe_500 --nbpe 500
Writes ``bpe.model`` and ``tokens.txt`` into the lang dir.
"""
import argparse
import logging
from pathlib import Path

from lhotse import CutSet

from asrk2.lang.bpe import train_bpe
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuts", type=Path, required=True, help="training cuts")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--nbpe", type=int, default=500)
    parser.add_argument("--model-type", default="unigram", choices=["unigram", "bpe"])
    args = parser.parse_args()
    setup_logging()
    texts = (s.text for cut in CutSet.from_file(args.cuts) for s in cut.supervisions)
    model = train_bpe(texts, args.lang_dir, args.nbpe, args.model_type)
    logging.info("Wrote %s and %s", model, args.lang_dir / "tokens.txt")


if __name__ == "__main__":
    main()
