#!/usr/bin/env python3
"""Tune the graph scale and word bonus of HL/HLG decoding on a dev set.

Usage:
    python local/tune_graph_weights.py --exp-dir exp/demo --lang-dir data/lang_bpe_100 \
        --cuts data/fbank/synth_cuts_dev.jsonl.gz --avg 2 \
        --out exp/demo/decode/graph-weights-dev.yaml

Decodes the cuts once into lattices on --graph (HLG by default), takes each
lattice's best path under every pair of --graph-scales x --word-bonuses
(Kaldi's LMWT / word_ins_penalty sweep of score.sh; see
asrk2/decode/graph_weights.py and asrk2/decode/tuning.py) and writes the pair
with the lowest WER as a YAML file with a ``decode`` and a ``streaming`` section,
which local/decode.py and local/stream_decode.py read with --config:

    python local/decode.py ... --config exp/demo/decode/graph-weights-dev.yaml

The file lists every pair's WER in comments. Tune on a dev set, never on the
test set whose WER you report.
"""
import argparse
import logging
import sys
from pathlib import Path

import torch

from asrk2.checkpoint import load_model_or_exit
from asrk2.config import add_config_flags, config_from_flags
from asrk2.data.manifests import load_cuts_or_exit
from asrk2.decode.tuning import (
    WeightGrid,
    best_graph_weights,
    encode_for_tuning,
    tuned_options_yaml,
    weight_grid_stats,
)
from asrk2.lang.graphs import load_fsa
from asrk2.lang.lexicon import read_symbol_table
from asrk2.utils import atomic_write_text, children_die_with_parent, setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--cuts", type=Path, required=True, help="a dev set")
    parser.add_argument("--graph", choices=("HL", "HLG"), default="HLG")
    parser.add_argument("--epoch", type=int, default=None, help="default: the last")
    parser.add_argument("--avg", type=int, default=1, help="average the last N epochs")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, required=True, help="the YAML to write")
    add_config_flags(parser, WeightGrid)
    return parser


def main() -> None:
    args = _parser().parse_args()
    setup_logging()
    children_die_with_parent()
    try:
        grid = config_from_flags(WeightGrid, args)
    except ValueError as e:  # an empty grid or a scale <= 0
        sys.exit(f"error: {e}")
    device = torch.device(
        args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    )
    cuts = load_cuts_or_exit(args.cuts)
    model, config = load_model_or_exit(args.exp_dir, args.epoch, args.avg)
    graph_path = args.lang_dir / f"{args.graph}.pt"
    if not graph_path.is_file():
        sys.exit(f"error: no {graph_path} (local/compile_graphs.py writes it)")
    graph = load_fsa(graph_path).to(device)
    table = read_symbol_table(args.lang_dir / "words.txt")
    id2word = {i: w for w, i in table.items()}
    batches = encode_for_tuning(model.to(device), cuts, config, device)
    stats = weight_grid_stats(batches, graph, id2word, config.decode.beams(), grid)
    weights = best_graph_weights(stats)
    if grid.on_edge(weights):
        logging.warning(
            "graph_scale %g, word_bonus %g is on the edge of the grid: a wider one "
            "(--graph-scales, --word-bonuses) may do better",
            weights.graph_scale,
            weights.word_bonus,
        )
    text = tuned_options_yaml(
        weights, stats, f"the {args.graph} 1-best on {args.cuts.name}"
    )
    atomic_write_text(args.out, text)
    print(
        f"{args.graph} 1-best on {args.cuts.name}: "
        f"graph_scale {weights.graph_scale:g}, word_bonus {weights.word_bonus:g}: "
        f"{stats[weights].wer_line()}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
