#!/usr/bin/env python3
"""Compile HLG.pt (and HL.pt) for a lang dir made by local/prepare_lang.py.

Usage:
    python local/compile_graphs.py --lang-dir data/lang_bpe_500
    python local/compile_graphs.py --lang-dir data/lang_bpe_500 --modified
    # the latter writes HLG_modified.pt and HL_modified.pt

HLG = H o min(det(L_disambig o G_3_gram)) with disambiguation symbols and
epsilons removed; HL is the same without G. Up-to-date graphs are skipped.
"""

import argparse
import logging
from pathlib import Path

from asrk2.lang.prepare import compile_graphs
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument(
        "--modified", action="store_true", help="modified CTC topology (k2 #746)"
    )
    parser.add_argument(
        "--no-minimize", action="store_true", help="skip LG minimisation"
    )
    parser.add_argument(
        "--lm-order", type=int, default=3, help="which G_<n>_gram.pt to use"
    )
    parser.add_argument("--no-hl", action="store_true", help="do not build HL")
    args = parser.parse_args()
    setup_logging()
    sizes = compile_graphs(
        args.lang_dir,
        args.modified,
        not args.no_minimize,
        args.lm_order,
        not args.no_hl,
    )
    for name, (states, arcs) in sizes.items():
        logging.info("Wrote %s: %d states, %d arcs", args.lang_dir / name, states, arcs)


if __name__ == "__main__":
    main()
