"""Offline decoding speed per method, and how hlg-1best scales with the beam.

The demo model (``make demo``: ``egs/synth/ASR/exp/demo``, last epochs
averaged as the demo decodes) on its whole test set (held-out voices), in the
batches ``local/decode.py`` uses, on the CPU with torch's default threads
(both cores). The encoder runs once per batch and is timed on its own; each
method's graph search then runs on the same log-probs and is timed alone, so
the rows share one encoder figure:

    RTF(method) = (encoder seconds + search seconds of the method) / audio seconds

The comparison of each method is ctc-greedy (k2 1-best on the CTC topology H,
no lexicon), measured in the same run. The rescoring methods time all their LM
scales (0.3, 0.5, 0.7, 1.0) in one search and report the best scale's WER.
The beam rows rerun hlg-1best with other search beams (output beam and state
limits as the demo config) against the config's beam.

Usage:
    python bench/run.py --only decode
"""

import dataclasses
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
from lhotse import load_manifest

from asrk2.checkpoint import load_model
from asrk2.data.datamodule import make_eval_loader, unpack_batch
from asrk2.decode.methods import METHODS as ALL_METHODS
from asrk2.decode.methods import MethodOptions, decode_batch, load_graphs
from asrk2.decode.scoring import compute_wer
from asrk2.experiment import ExperimentConfig
from asrk2.lang.bpe import load_bpe
from asrk2.lang.lexicon import read_symbol_table
from bench.common import DemoModel, Row, cwd, demo_model

# Every method but attention-rescoring: the demo model has no attention decoder.
METHODS = tuple(m for m in ALL_METHODS if m != "attention-rescoring")
SEARCH_BEAMS = (4.0, 8.0, 12.0, 30.0)

# (log_probs (N, T, V), out_lens (N,), reference texts) per batch
Batch = Tuple[torch.Tensor, torch.Tensor, List[str]]


def encode_test_set(
    demo: DemoModel,
) -> Tuple[List[Batch], float, float, ExperimentConfig]:
    """CTC log-probs of every test batch.

    Returns:
      ``(batches, encoder_seconds, audio_seconds, config)``; the encoder time
      excludes loading the features.
    """
    model, config = load_model(demo.exp_dir, demo.epoch, demo.avg)
    model.eval()
    batches: List[Batch] = []
    seconds = 0.0
    with cwd(demo.recipe), torch.no_grad():
        cuts = load_manifest(demo.test_cuts)
        audio = sum(c.duration for c in cuts)
        for batch in make_eval_loader(cuts, config.data):
            features, feature_lens, texts, _ = unpack_batch(batch)
            start = time.perf_counter()
            encoder_out, out_lens = model.encode(features, feature_lens)
            log_probs = model.ctc_log_probs(encoder_out)
            seconds += time.perf_counter() - start
            batches.append((log_probs, out_lens, texts))
    return batches, seconds, audio, config


def search(
    demo: DemoModel,
    batches: List[Batch],
    methods: Sequence[str],
    opts: MethodOptions,
) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Runs each method alone over all batches.

    Returns:
      ``(seconds per method, best WER per method)``; the WER of a method with
      scales is that of its best scale.
    """
    sp = load_bpe(demo.lang_dir / "bpe.model")
    id2word = {i: w for w, i in read_symbol_table(demo.lang_dir / "words.txt").items()}
    max_token_id = sp.get_piece_size() - 1
    cpu = torch.device("cpu")
    graphs = load_graphs(demo.lang_dir, methods, cpu, max_token_id=max_token_id)
    seconds: Dict[str, float] = {}
    wers: Dict[str, float] = {}
    for method in methods:
        results: Dict[str, list] = {}
        start = time.perf_counter()
        for log_probs, out_lens, texts in batches:
            hyps = decode_batch([method], log_probs, out_lens, graphs, opts)
            for key, ids in hyps.items():
                for i, (text, h) in enumerate(zip(texts, ids)):
                    words = (
                        sp.decode(h).split()
                        if key == "ctc-greedy"
                        else [id2word[w] for w in h]
                    )
                    results.setdefault(key, []).append((str(i), text.split(), words))
        seconds[method] = time.perf_counter() - start
        wers[method] = min(compute_wer(r).wer for r in results.values())
    return seconds, wers


def run(workdir: Path) -> List[Row]:
    demo = demo_model()
    if demo is None:
        raise RuntimeError("no demo model: run `make demo` first (`make bench` does)")
    batches, encoder_s, audio, config = encode_test_set(demo)
    d = config.decode
    opts = MethodOptions(beams=d.beams())
    seconds, wers = search(demo, batches, METHODS, opts)
    what = (
        f"demo model epochs {demo.epoch - demo.avg + 1}-{demo.epoch} averaged, "
        f"{sum(len(b[2]) for b in batches)} test cuts, {audio:.0f} s; "
        f"encoder {encoder_s / audio:.4f} RTF of it"
    )
    greedy_rtf = (encoder_s + seconds["ctc-greedy"]) / audio
    rows = [
        Row("decode RTF, encoder only", encoder_s / audio, "RTF (2 threads)",
            "", None, what),
    ]  # fmt: skip
    for method in METHODS:
        rtf = (encoder_s + seconds[method]) / audio
        rows.append(
            Row(f"decode RTF, {method}", rtf, "RTF (2 threads)", "ctc-greedy",
                greedy_rtf, f"search beam {d.search_beam}, output beam "
                f"{d.output_beam}; WER {wers[method]:.2f}%")
        )  # fmt: skip
    base_rtf = (encoder_s + seconds["hlg-1best"]) / audio
    for beam in SEARCH_BEAMS:
        beam_opts = MethodOptions(
            beams=dataclasses.replace(d.beams(), search_beam=beam)
        )
        s, w = search(demo, batches, ["hlg-1best"], beam_opts)
        rows.append(
            Row(f"hlg-1best RTF, search beam {beam:g}", (encoder_s + s["hlg-1best"])
                / audio, "RTF (2 threads)", f"search beam {d.search_beam:g}",
                base_rtf, f"WER {w['hlg-1best']:.2f}% vs {wers['hlg-1best']:.2f}%")
        )  # fmt: skip
    return rows
