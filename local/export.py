#!/usr/bin/env python3
"""Export averaged checkpoints: TorchScript (asrk2) or ONNX (for sherpa-onnx).

Usage:
    python local/export.py --exp-dir exp/demo --epoch 9 --avg 2 \
        --lang-dir data/lang_bpe_100 --out-dir exp/demo/export [--int8]
    python local/export.py --format onnx --exp-dir exp/demo --epoch 9 --avg 2 \
        --lang-dir data/lang_bpe_100 --out-dir exp/demo/onnx

TorchScript (default) writes into --out-dir: encoder.pt (forward, encode,
ctc_log_probs, init_cache, forward_chunk), bpe.model, tokens.txt and, when
present in the lang dir, words.txt, HLG.pt, HL.pt; config.yaml and meta.json.
Load it with asrk2.export.load_exported(out_dir), which needs neither
asrk2.model nor asrk2.train. --int8 quantises the linear layers (dynamic int8,
CPU only).

--format onnx writes model.onnx, model.int8.onnx (unless --no-int8),
tokens.txt, HLG.fst (OpenFst, from the lang dir's HLG.pt) and meta.json, in
the layout sherpa-onnx runs unchanged, e.g.:
    sherpa-onnx-offline --zipformer-ctc-model=exp/demo/onnx/model.onnx \
        --tokens=exp/demo/onnx/tokens.txt [--ctc.graph=exp/demo/onnx/HLG.fst] a.wav
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
    parser.add_argument("--format", choices=["torchscript", "onnx"],
                        default="torchscript")  # fmt: skip
    parser.add_argument(
        "--int8", action="store_true",
        help="torchscript: dynamic int8 linear layers (CPU only)",
    )  # fmt: skip
    parser.add_argument("--no-int8", action="store_true",
                        help="onnx: do not write model.int8.onnx")  # fmt: skip
    parser.add_argument("--opset", type=int, default=13, help="onnx opset")
    args = parser.parse_args()
    setup_logging()
    if args.format == "onnx":
        from asrk2.export.onnx import export_onnx

        try:
            onnx = export_onnx(args.exp_dir, args.epoch, args.avg, args.lang_dir,
                               args.out_dir, not args.no_int8, args.opset)  # fmt: skip
        except (FileNotFoundError, ValueError) as e:
            parser.exit(1, f"error: {e}\n")
        print(f"wrote {onnx.out_dir} ({', '.join(onnx.files)}; model.onnx "
              f"{onnx.model_bytes / 2**20:.1f} MiB, from "
              f"{', '.join(onnx.checkpoints)})")  # fmt: skip
        return
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
