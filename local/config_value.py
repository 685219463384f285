#!/usr/bin/env python3
"""Print one value of a resolved experiment config (for Makefiles).

Usage:
    python local/config_value.py conf/demo.yaml lang.nbpe
"""
import argparse
from pathlib import Path

from asrk2.config import load_yaml, to_dict
from asrk2.experiment import ExperimentConfig


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("key", help="dotted key, e.g. lang.nbpe")
    args = parser.parse_args()
    node = to_dict(load_yaml(ExperimentConfig, args.config))
    for part in args.key.split("."):
        if not isinstance(node, dict) or part not in node:
            parser.error(f"no key {args.key!r} in {args.config}")
        node = node[part]
    print(node)


if __name__ == "__main__":
    main()
