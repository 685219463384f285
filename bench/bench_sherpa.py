"""sherpa-onnx (k2-fsa's deployment runtime) against asrk2, side by side.

The demo model (``make demo``) exported with ``local/export.py --format
onnx`` and run by sherpa-onnx's Python API (its C++ recogniser: kaldi-native-
fbank, onnxruntime, kaldi-decoder for HLG), against asrk2's own offline path
on the same audio: kaldifeat fbank, the eager PyTorch model, k2 search with
the demo config's beams; streaming, sherpa-onnx's online recogniser on the
streaming export against asrk2's MultiStreamDecoder with H (chunk 16, same
attention cache). Both get one utterance at a time and one thread, on the
whole test set (held-out voices), audio already in memory. RTF counts
features + network + search; asrk2's parts are also timed alone (note of the
greedy row) to show where its time goes.

Usage:
    python bench/run.py --only sherpa
"""

import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import sherpa_onnx
import torch
from lhotse import load_manifest

from asrk2.checkpoint import load_model
from asrk2.decode.methods import MethodOptions, decode_batch, load_graphs
from asrk2.decode.scoring import Result, compute_wer
from asrk2.decode.streaming import MultiStreamDecoder, StreamingOptions
from asrk2.export.onnx import (
    HLG_FST,
    MODEL_FILE,
    MODEL_INT8_FILE,
    STREAMING_MODEL_FILE,
    export_onnx,
)
from asrk2.features.fbank import make_fbank_extractor
from asrk2.lang.bpe import load_bpe
from asrk2.lang.lexicon import read_symbol_table
from bench.common import Row, demo_model

# (cut id, reference words, samples)
Utterance = Tuple[str, List[str], np.ndarray]


def _test_audio(test_cuts: Path) -> List[Utterance]:
    cuts = load_manifest(test_cuts)
    return [(c.id, " ".join(s.text for s in c.supervisions).split(),
             c.load_audio()[0].astype(np.float32)) for c in cuts]  # fmt: skip


def _sherpa(out: Path, model_file: str, graph: str, utts: List[Utterance]):
    recognizer = sherpa_onnx.OfflineRecognizer.from_zipformer_ctc(
        model=str(out / model_file), tokens=str(out / "tokens.txt"),
        num_threads=1, ctc_graph=graph,
    )  # fmt: skip
    hyps, start = [], time.perf_counter()
    for _, _, samples in utts:
        stream = recognizer.create_stream()
        stream.accept_waveform(16000, samples)
        recognizer.decode_stream(stream)
        hyps.append(stream.result.text.split())
    return hyps, time.perf_counter() - start


def _asrk2(demo, method: str, utts: List[Utterance]):
    """asrk2's offline path per utterance; seconds per stage."""
    model, config = load_model(demo.exp_dir, demo.epoch, demo.avg)
    model.eval()
    extractor = make_fbank_extractor(config.fbank)
    sp = load_bpe(demo.lang_dir / "bpe.model")
    graphs = load_graphs(demo.lang_dir, [method], torch.device("cpu"),
                         max_token_id=sp.get_piece_size() - 1)  # fmt: skip
    opts = MethodOptions(beams=config.decode.beams())
    words = {i: w for w, i in read_symbol_table(demo.lang_dir / "words.txt").items()}
    stages = {"fbank": 0.0, "network": 0.0, "search": 0.0}
    hyps = []

    def clock(stage: str, fn: Callable):
        start = time.perf_counter()
        value = fn()
        stages[stage] += time.perf_counter() - start
        return value

    with torch.no_grad():
        for _, _, samples in utts:
            feats = clock("fbank", lambda: torch.from_numpy(
                extractor.extract(samples, 16000))[None])  # fmt: skip

            def network():
                out, lens = model.encode(feats, torch.tensor([feats.size(1)]), -1)
                return model.ctc_log_probs(out), lens.to(torch.int32)

            log_probs, lens = clock("network", network)
            ids = clock("search", lambda: decode_batch(
                [method], log_probs, lens, graphs, opts)[method][0])  # fmt: skip
            hyps.append(sp.decode(ids).split() if method == "ctc-greedy"
                        else [words[i] for i in ids])  # fmt: skip
    return hyps, stages


CHUNK, LEFT_CHUNKS = 16, 4
# One chunk's input (4 * 16 + 3 frames) of silence.
TAIL_PADDING = np.zeros((4 * CHUNK + 3) * 160, dtype=np.float32)


def _sherpa_streaming(out: Path, utts: List[Utterance]):
    """sherpa-onnx's online recogniser, whole file in, chunk by chunk out."""
    recognizer = sherpa_onnx.OnlineRecognizer.from_wenet_ctc(
        tokens=str(out / "tokens.txt"), model=str(out / STREAMING_MODEL_FILE),
        chunk_size=CHUNK, num_left_chunks=LEFT_CHUNKS, num_threads=1,
    )  # fmt: skip
    hyps, chunk_seconds, start = [], [], time.perf_counter()
    for _, _, samples in utts:
        stream = recognizer.create_stream()
        stream.accept_waveform(16000, samples)
        # As sherpa-onnx's own examples do: silence after the end, so that the
        # last frames fill a chunk (it never decodes a partial one).
        stream.accept_waveform(16000, TAIL_PADDING)
        stream.input_finished()
        while recognizer.is_ready(stream):
            t = time.perf_counter()
            recognizer.decode_stream(stream)
            chunk_seconds.append(time.perf_counter() - t)
        hyps.append(recognizer.get_result(stream).split())
    return hyps, time.perf_counter() - start, chunk_seconds


def _asrk2_streaming(demo, utts: List[Utterance]):
    """asrk2's MultiStreamDecoder with H: chunk 16, the same attention cache."""
    model, config = load_model(demo.exp_dir, demo.epoch, demo.avg)
    model.eval()
    extractor = make_fbank_extractor(config.fbank)
    sp = load_bpe(demo.lang_dir / "bpe.model")
    graph = load_graphs(demo.lang_dir, ["ctc-greedy"], torch.device("cpu"),
                        max_token_id=sp.get_piece_size() - 1).H  # fmt: skip
    options = StreamingOptions(chunk_size=CHUNK,
                               left_context_frames=CHUNK * LEFT_CHUNKS)  # fmt: skip
    decoder = MultiStreamDecoder(model, graph, options, max_batch_streams=1)
    search = decoder._search
    search_seconds = [0.0]

    def timed_search(log_probs, search=search):  # where a chunk's time goes
        t = time.perf_counter()
        search(log_probs)
        search_seconds[0] += time.perf_counter() - t

    decoder._search = timed_search  # type: ignore[method-assign]
    hyps, chunk_seconds, start = [], [], time.perf_counter()
    for i, (_, _, samples) in enumerate(utts):
        feats = torch.from_numpy(extractor.extract(samples, 16000))
        decoder.add_stream(i)
        decoder.accept_features(i, feats)
        decoder.input_finished(i)
        while not decoder.is_final(i):
            t = time.perf_counter()
            decoder.step()
            chunk_seconds.append(time.perf_counter() - t)
        hyps.append(sp.decode(decoder.result(i)).split())
        decoder.remove_stream(i)
    return hyps, time.perf_counter() - start, chunk_seconds, search_seconds[0]


def _streaming_rows(demo, out: Path, utts: List[Utterance], audio: float) -> List[Row]:
    theirs, t_sec, t_chunks = _sherpa_streaming(out, utts)
    ours, o_sec, o_chunks, o_search = _asrk2_streaming(demo, utts)
    search_ms = 1000 * o_search / len(o_chunks)
    network_ms = 1000 * sum(o_chunks) / len(o_chunks) - search_ms
    where = (f"chunk {CHUNK} ({CHUNK * 40} ms), {LEFT_CHUNKS} left chunks; "
             "one utterance at a time, 1 thread")  # fmt: skip
    return [
        Row("sherpa-onnx streaming RTF, greedy", t_sec / audio, "RTF",
            "asrk2 MultiStreamDecoder with H", o_sec / audio,
            f"{where}; includes fbank"),
        Row("sherpa-onnx streaming per-chunk latency p95",
            1000 * float(np.percentile(t_chunks, 95)), "ms",
            "asrk2 MultiStreamDecoder with H",
            1000 * float(np.percentile(o_chunks, 95)),
            f"{where}; one decode call (network + search), fbank excluded; "
            f"asrk2's mean chunk: {network_ms:.1f} ms eager conformer, "
            f"{search_ms:.1f} ms k2 OnlineDenseIntersecter"),
        Row("sherpa-onnx streaming WER, greedy", _wer(utts, theirs), "% WER",
            "asrk2 MultiStreamDecoder with H", _wer(utts, ours),
            f"{_agreement(theirs, ours)}; sherpa-onnx gets "
            f"{len(TAIL_PADDING) / 16000:.2f} s of silence after each utterance "
            "(it decodes only full chunks), asrk2 decodes the last partial one"),
    ]  # fmt: skip


def _wer(utts: List[Utterance], hyps: List[List[str]]) -> float:
    results: List[Result] = [(u[0], u[1], h) for u, h in zip(utts, hyps)]
    return compute_wer(results).wer


def _agreement(a: List[List[str]], b: List[List[str]]) -> str:
    same = sum(x == y for x, y in zip(a, b))
    return f"same text on {same}/{len(a)} utterances"


def run(workdir: Path) -> List[Row]:
    """About two minutes: 300 test utterances, eight passes, one thread."""
    demo = demo_model()
    if demo is None:
        raise RuntimeError("the demo model is missing: run make demo")
    torch.set_num_threads(1)
    onnx = export_onnx(demo.exp_dir, demo.epoch, demo.avg, demo.lang_dir,
                       workdir / "onnx")  # fmt: skip
    out = onnx.out_dir
    utts = _test_audio(demo.test_cuts)
    audio = sum(len(u[2]) for u in utts) / 16000
    rows: List[Row] = []
    asrk2: Dict[str, Tuple[List[List[str]], Dict[str, float]]] = {}
    for method in ("ctc-greedy", "hlg-1best"):
        asrk2[method] = _asrk2(demo, method, utts)
    runs = {
        ("float", "greedy"): _sherpa(out, MODEL_FILE, "", utts),
        ("float", "HLG"): _sherpa(out, MODEL_FILE, str(out / HLG_FST), utts),
        ("int8", "greedy"): _sherpa(out, MODEL_INT8_FILE, "", utts),
        ("int8", "HLG"): _sherpa(out, MODEL_INT8_FILE, str(out / HLG_FST), utts),
    }
    for search, method in (("greedy", "ctc-greedy"), ("HLG", "hlg-1best")):
        ours, stages = asrk2[method]
        theirs, seconds = runs[("float", search)]
        parts = ", ".join(f"{k} {v / audio:.4f}" for k, v in stages.items())
        rows.append(Row(
            f"sherpa-onnx offline RTF, {search} (1 thread, one utterance at a time)",
            seconds / audio, "RTF", f"asrk2 {method} (kaldifeat + torch + k2)",
            sum(stages.values()) / audio,
            f"{len(utts)} test utterances, {audio:.0f} s; asrk2 RTF by part: {parts}",
        ))  # fmt: skip
        rows.append(Row(
            f"sherpa-onnx offline WER, {search}", _wer(utts, theirs), "% WER",
            f"asrk2 {method}", _wer(utts, ours), _agreement(theirs, ours),
        ))  # fmt: skip
    for search in ("greedy", "HLG"):
        q_hyps, q_sec = runs[("int8", search)]
        f_hyps, f_sec = runs[("float", search)]
        rows.append(Row(f"sherpa-onnx int8 offline RTF, {search}", q_sec / audio,
                        "RTF", "sherpa-onnx float", f_sec / audio,
                        "onnxruntime dynamic int8 MatMuls"))  # fmt: skip
        rows.append(Row(f"sherpa-onnx int8 offline WER, {search}",
                        _wer(utts, q_hyps), "% WER", "sherpa-onnx float",
                        _wer(utts, f_hyps), _agreement(q_hyps, f_hyps)))  # fmt: skip
    rows += _streaming_rows(demo, out, utts, audio)
    rows.append(Row("ONNX model size, int8", onnx.int8_bytes / 2**20, "MiB",
                    "float", onnx.model_bytes / 2**20,
                    f"demo model, epochs {', '.join(onnx.checkpoints)}"))  # fmt: skip
    return rows
