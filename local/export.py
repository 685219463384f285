#!/usr/bin/env python3
"""Export averaged checkpoints as a TorchScript encoder plus the decoding files.

Usage:
    python local/export.py --exp-dir exp/demo --epoch 16 --avg 2 \
        --lang-dir data/lang_bpe_100 --out-dir exp/demo/export
    python local/export.py --exp-dir exp/demo --epoch 16 --avg 2 \
        --lang-dir data/lang_bpe_100 --out-dir exp/demo/export-int8 --int8

Writes into --out-dir: encoder.pt (TorchScript: forward, encode, ctc_log_probs,
init_cache, forward_chunk), bpe.model, tokens.txt and, when present in the lang
dir, words.txt, HLG.pt, HL.pt; config.yaml and meta.json. Load it with
asrk2.export.load_exported(out_dir), which needs neither asrk2.model nor
asrk2.train. --int8 quantises the linear layers (dynamic int8, CPU only).
"""
import argparse
from pathlib import Path

from asrk2.export import export_model
from asrk2.utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--epoch", type=int, default=None, help="default: the last")
    parser.add_argument("--avg", type=int, default=1, help="average the last N epochs")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument(
        "--int8", action="store_true", help="dynamic int8 linear layers (CPU only)"
    )
    args = parser.parse_args()
    setup_logging()
    summary = export_model(
        args.exp_dir, args.epoch, args.avg, args.lang_dir, args.out_dir, args.int8
    )
    size = summary.encoder_bytes / 2**20
    print(
        f"wrote {summary.out_dir} (encoder.pt {size:.1f} MiB, "
        f"from {', '.join(summary.checkpoints)})"
    )


if __name__ == "__main__":
    main()
