"""Training throughput with 1 and 2 DDP processes, peak memory, k2 vs torch CTC.

The demo model (``egs/synth/ASR/conf/demo.yaml``) trains one epoch of a toy
corpus (random 80-dim features, real sentences, BPE 200, about 2-4 s per cut)
through ``local/train.py`` under torchrun: once as 1 process with 2 threads,
once as 2 gloo DDP processes with 1 thread each. Throughput is the trainer's
own figure: seconds of audio per second of training loop (data loading and
optimizer steps included; start-up, validation and checkpoints excluded).
The loss rows time forward+backward of each loss alone on one demo-sized batch.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import k2
import torch
import torch.nn.functional as F

from asrk2.lang.bpe import load_bpe
from asrk2.lang.mmi_graphs import (
    build_den_graph,
    build_num_graphs,
    estimate_token_bigram,
)
from asrk2.losses.ctc import k2_ctc_loss
from asrk2.losses.mmi import MmiOptions, mmi_loss
from asrk2.testing.toy_data import make_toy_corpus
from bench.bench_ablation import NO_AUDIO_AUGMENT
from bench.common import Row, best_of

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "egs/synth/ASR/conf/demo.yaml"
NUM_CUTS = 100
MAX_DURATION = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(workdir: Path, cuts: Path, lang: Path, nproc: int) -> Dict[str, float]:
    """One epoch of the demo model under torchrun; returns its metrics row."""
    exp = workdir / f"exp-{nproc}"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(ROOT / "local/train.py"), "--config", str(DEMO), "--device", "cpu",
        "--train-cuts", str(cuts),
        "--valid-cuts", str(cuts.with_name("valid.jsonl.gz")),
        "--lang-dir", str(lang), "--exp-dir", str(exp),
        "--set", "train.num_epochs=1", "--set", "train.num_threads=2",
        "--set", "train.tensorboard=false", "--set", "lang.nbpe=200",
        "--set", f"data.max_duration={MAX_DURATION}",
    ]  # fmt: skip
    # The toy corpus has features but no audio: the model's step, not the
    # augmentation pipeline (bench_ablation covers the recipe as a whole).
    for item in NO_AUDIO_AUGMENT:
        cmd += ["--set", item]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(
            f"training with {nproc} processes failed:\n{proc.stderr[-3000:]}"
        )
    return json.loads((exp / "metrics.jsonl").read_text().splitlines()[-1])


def _loss_rows(cuts, lang: Path) -> List[Row]:
    """k2 vs torch CTC, and LF-MMI, forward+backward on one demo-sized batch."""
    sp = load_bpe(lang / "bpe.model")
    ids = [sp.encode(c.supervisions[0].text) for c in cuts]
    n, t, v = 20, 150, sp.get_piece_size()  # ~6 s utterances after x4 subsampling
    batch = ids[:n]
    torch.manual_seed(0)
    logits = torch.randn(n, t, v, requires_grad=True)
    lens = torch.full((n,), t)
    graphs = k2.ctc_graph(batch)
    targets = torch.tensor(sum(batch, []))
    target_lens = torch.tensor([len(b) for b in batch])

    def k2_ctc() -> None:
        k2_ctc_loss(logits.log_softmax(-1), lens, graphs, "sum").backward()

    def torch_ctc() -> None:
        lp = logits.log_softmax(-1).transpose(0, 1)
        F.ctc_loss(lp, targets, lens, target_lens, reduction="sum").backward()

    bigram = estimate_token_bigram(ids)
    den = build_den_graph(bigram)

    def mmi() -> None:
        num = build_num_graphs(batch, bigram)
        mmi_loss(logits.log_softmax(-1), lens, num, den, MmiOptions(), "sum").backward()

    k2_s, torch_s = best_of(k2_ctc, 5), best_of(torch_ctc, 5)
    mmi_s = best_of(mmi, 1)
    shape = f"N={n}, T={t}, V={v}, random log-probs"
    return [
        Row("CTC loss fwd+bwd, k2 (asrk2.losses.k2_ctc_loss)", 1000 * k2_s, "ms",
            "torch.nn.functional.ctc_loss", 1000 * torch_s, shape),
        Row(f"LF-MMI loss fwd+bwd (den graph {den.num_arcs} arcs)", 1000 * mmi_s, "ms",
            "k2 CTC loss", 1000 * k2_s, shape + "; seen-bigram P"),
    ]  # fmt: skip


def run(workdir: Path) -> List[Row]:
    """Runs the benchmark in ``workdir``; about 1.5 minutes on 2 cores."""
    cuts, lang = make_toy_corpus(workdir / "corpus", NUM_CUTS, 200, 80, 25, seed=0)
    cuts.to_file(workdir / "corpus/train.jsonl.gz")
    cuts.subset(first=4).to_file(workdir / "corpus/valid.jsonl.gz")
    audio = sum(c.duration for c in cuts)
    one = _train(workdir, workdir / "corpus/train.jsonl.gz", lang, 1)
    two = _train(workdir, workdir / "corpus/train.jsonl.gz", lang, 2)
    note = f"demo.yaml, {audio:.0f} s of audio, batches of {MAX_DURATION:.0f} s"
    rows = [
        Row("training throughput, 2 DDP processes x 1 thread (gloo)",
            two["audio_seconds_per_second"], "audio s / s",
            "1 process x 2 threads", one["audio_seconds_per_second"], note),
        Row("peak RSS per process, 2 DDP processes", two["max_rss_mb"], "MiB",
            "1 process", one["max_rss_mb"], "ru_maxrss, largest rank"),
    ]  # fmt: skip
    return rows + _loss_rows(cuts, lang)
