#!/usr/bin/env python3
"""Print the states, arcs and file size of every FSA (*.pt) in lang dirs.

Usage:
    python local/show_graph_sizes.py data/lang_bpe_500 [data/lang_phone ...]
"""

import argparse
from pathlib import Path

from asrk2.lang.prepare import graph_sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("lang_dirs", type=Path, nargs="+")
    args = parser.parse_args()
    print(f"{'graph':<44} {'states':>10} {'arcs':>12} {'MiB':>8}")
    for lang_dir in args.lang_dirs:
        for name, (states, arcs, size) in graph_sizes(lang_dir).items():
            print(
                f"{str(lang_dir / name):<44} {states:>10,} {arcs:>12,} "
                f"{size / 2**20:>8.1f}"
            )


if __name__ == "__main__":
    main()
