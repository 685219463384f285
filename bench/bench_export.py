"""Exported models on CPU: dynamic int8 vs float TorchScript vs eager, 1 thread.

With the trained demo model (``egs/synth/ASR/exp/demo``, its test features
and ``data/lang_bpe_<nbpe>``), the last two epochs are exported twice with
:func:`asrk2.export.export_model`, float and ``quantize=True``, loaded back
with :func:`asrk2.export.load_exported`, and run over the whole test set
(300 cuts, held-out voices) in length-sorted batches of up to 60 s. Timed:
encoder + CTC layer (``model(features, lens)``), one torch thread, best of
three passes (the models take turns) after a warm-up batch; RTF = CPU
seconds of the process / audio seconds (CPU time, since the machine is shared).
WER: ctc-greedy (H 1-best) on each model's log-probs.

Without the demo model, a random-weight model of ``conf/demo.yaml`` runs on
random features instead (no export directory: scripted in memory); WER is
then replaced by the token disagreement of int8 with float greedy outputs.

Usage:
    python bench/run.py --only export
"""

import time
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import torch
from torch import nn

from asrk2.config import load_yaml
from asrk2.decode.ctc_decode import build_ctc_topo, ctc_greedy_decode
from asrk2.decode.scoring import compute_wer
from asrk2.experiment import ExperimentConfig
from asrk2.export import export_model, load_exported, script_model
from asrk2.features.fbank import torch_threads
from asrk2.model import CtcModel
from bench.common import DEMO_RECIPE, DemoModel, Row, cwd, demo_model

BATCH_FRAMES = 6000  # 60 s of 10 ms frames per batch
FRAME_SHIFT = 0.01

# (features (N, T, C), lens (N,), reference transcripts)
Batch = Tuple[torch.Tensor, torch.Tensor, List[str]]
Model = Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


def _batches(items: Sequence[Tuple[torch.Tensor, str]]) -> List[Batch]:
    """Length-sorted, zero-padded batches of at most :data:`BATCH_FRAMES` frames."""
    items = sorted(items, key=lambda it: it[0].size(0))
    batches: List[List[Tuple[torch.Tensor, str]]] = []
    current: List[Tuple[torch.Tensor, str]] = []
    for item in items:
        if current and sum(f.size(0) for f, _ in current) + item[0].size(0) > (
            BATCH_FRAMES
        ):
            batches.append(current)
            current = []
        current.append(item)
    batches.append(current)
    return [
        (
            nn.utils.rnn.pad_sequence([f for f, _ in b], batch_first=True),
            torch.tensor([f.size(0) for f, _ in b]),
            [t for _, t in b],
        )
        for b in batches
    ]


def _demo_test_set(demo: DemoModel) -> List[Batch]:
    from lhotse import load_manifest

    with cwd(demo.recipe):
        cuts = load_manifest(demo.test_cuts)
        items = [
            (torch.from_numpy(c.load_features()), c.supervisions[0].text) for c in cuts
        ]
    return _batches(items)


def _run(
    models: Sequence[Model], batches: List[Batch], passes: int = 3
) -> Tuple[List[float], List[List[Tuple[torch.Tensor, torch.Tensor]]]]:
    """Best CPU seconds per model over ``passes`` passes, and each model's outputs.

    CPU time of this (single-threaded) process, not wall time: on a shared
    machine, waiting for a core is not the model's cost. The models also take
    turns within every pass, so that cache and memory contention hit all alike.
    """
    best = [float("inf")] * len(models)
    outputs: List[list] = [[] for _ in models]
    for i, model in enumerate(models):
        model(*batches[0][:2])  # warm-up
    for _ in range(passes):
        for i, model in enumerate(models):
            start, outputs[i] = time.process_time(), []
            for features, lens, _ in batches:
                outputs[i].append(model(features, lens))
            best[i] = min(best[i], time.process_time() - start)
    return best, outputs


def _greedy(outputs, H) -> List[List[int]]:
    return [ids for log_probs, lens in outputs for ids in ctc_greedy_decode(
        log_probs, lens, H)]  # fmt: skip


def _wer(hyps: List[List[int]], refs: List[str], sp) -> float:
    results = [
        (str(i), ref.split(), sp.decode(h).split())
        for i, (ref, h) in enumerate(zip(refs, hyps))
    ]
    return compute_wer(results).wer


def _demo_rows(demo: DemoModel, workdir: Path) -> List[Row]:
    newest, avg, exp_dir, lang_dir = demo.epoch, demo.avg, demo.exp_dir, demo.lang_dir
    float_dir, int8_dir = workdir / "float", workdir / "int8"
    export_model(exp_dir, newest, avg, lang_dir, float_dir, quantize=False)
    export_model(exp_dir, newest, avg, lang_dir, int8_dir, quantize=True)
    exported_float, exported_int8 = load_exported(float_dir), load_exported(int8_dir)
    from asrk2.checkpoint import load_model

    eager, _ = load_model(exp_dir, newest, avg)
    batches = _demo_test_set(demo)
    audio = sum(float(lens.sum()) for _, lens, _ in batches) * FRAME_SHIFT
    refs = [t for _, _, texts in batches for t in texts]
    with torch_threads(1), torch.no_grad():
        times, outputs = _run([eager, exported_float, exported_int8], batches)
    t_eager, t_float, t_int8 = times
    _, out_float, out_int8 = outputs
    H = build_ctc_topo(exported_float.vocab_size - 1)
    sp = exported_float.load_bpe()
    wer_float = _wer(_greedy(out_float, H), refs, sp)
    wer_int8 = _wer(_greedy(out_int8, H), refs, sp)
    size = [(d / "encoder.pt").stat().st_size / 2**20 for d in (int8_dir, float_dir)]
    what = (
        f"demo model epochs {newest - avg + 1}-{newest} averaged, "
        f"{len(refs)} test cuts, {audio:.0f} s"
    )
    return [
        Row("encoder+CTC RTF, int8 TorchScript", t_int8 / audio, "CPU RTF (1 thread)",
            "float TorchScript", t_float / audio, what),
        Row("ctc-greedy WER, int8 TorchScript", wer_int8, "% WER",
            "float TorchScript", wer_float, what),
        Row("encoder.pt size, int8", size[0], "MiB", "float", size[1],
            "dynamic int8 nn.Linear; convolutions and norms stay float"),
        Row("encoder+CTC RTF, float TorchScript", t_float / audio, "CPU RTF (1 thread)",
            "eager CtcModel", t_eager / audio,
            "graph optimiser off (asrk2.export.load._inference)"),
    ]  # fmt: skip


def _random_rows() -> List[Row]:
    """Fallback: a random-weight demo-config model on random features."""
    config = load_yaml(ExperimentConfig, DEMO_RECIPE / "conf/demo.yaml")
    config.model.vocab_size = config.lang.nbpe
    torch.manual_seed(0)
    eager = CtcModel(config.model).eval()
    scripted = {q: script_model(eager, int8=q) for q in (False, True)}
    lens = torch.tensor([1500, 1200, 900, 600])
    batches = [
        (torch.randn(4, 1500, config.model.encoder.num_features), lens, [""] * 4)
        for _ in range(5)
    ]
    audio = 5 * float(lens.sum()) * FRAME_SHIFT
    model = {q: load_exported_like(s) for q, s in scripted.items()}
    with torch_threads(1):
        (t_float, t_int8), (out_float, out_int8) = _run(
            [model[False], model[True]], batches
        )
    H = build_ctc_topo(config.model.vocab_size - 1)
    results = [
        (str(i), list(map(str, f)), list(map(str, q)))
        for i, (f, q) in enumerate(zip(_greedy(out_float, H), _greedy(out_int8, H)))
    ]
    note = "NO DEMO MODEL: random weights and features (demo.yaml config)"
    return [
        Row("encoder+CTC RTF, int8 TorchScript", t_int8 / audio, "CPU RTF (1 thread)",
            "float TorchScript", t_float / audio, note),
        Row("greedy token disagreement, int8 vs float", compute_wer(results).wer,
            "% tokens", "", None, note),
    ]  # fmt: skip


def load_exported_like(module: torch.jit.ScriptModule) -> Model:
    """Calls a scripted module as :class:`asrk2.export.ExportedModel` does."""

    def call(features: torch.Tensor, lens: torch.Tensor):
        with torch.no_grad(), torch.jit.optimized_execution(False):
            return module(features, lens)

    return call


def run(workdir: Path) -> List[Row]:
    demo = demo_model()
    return _demo_rows(demo, workdir) if demo else _random_rows()
