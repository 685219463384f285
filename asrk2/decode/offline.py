"""Offline decoding of a test set with a trained model, and its scoring."""

import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.utils import compute_num_frames
from tqdm import tqdm

from asrk2.data.datamodule import make_eval_loader, unpack_batch
from asrk2.beams import SearchBeams
from asrk2.decode.alignment import WordTime, best_path_alignments, word_times
from asrk2.decode.ctc_decode import get_lattice
from asrk2.decode.attention_search import BeamSearchOptions, attention_beam_search
from asrk2.decode.methods import (
    TOKEN_METHODS,
    DecoderScorer,
    DecoderSearch,
    MethodOptions,
    check_methods,
    decode_batch,
    is_token_result,
    load_graphs,
)
from asrk2.decode.scoring import (
    Result,
    compute_wer,
    write_ctm,
    write_errs,
    write_recogs,
    write_wer_summary,
)
from asrk2.experiment import ExperimentConfig
from asrk2.frames import FRAME_SHIFT, MIN_INPUT_FRAMES
from asrk2.lang.bpe import load_bpe
from asrk2.lang.lexicon import read_symbol_table
from asrk2.model.ctc_model import CtcModel

__all__ = [
    "TIMED_METHODS",
    "decode_methods",
    "decode_word_times",
    "decode_dataset",
    "decode_and_score",
    "split_too_short",
    "reference_words",
    "encoded_batches",
]

log = logging.getLogger(__name__)

# Methods whose hypothesis is a lattice's best path, so that it has word times.
TIMED_METHODS = ("ctc-greedy", "hl-1best", "hlg-1best")


def _decoder_scorer(
    model: CtcModel,
    encoder_out: torch.Tensor,
    out_lens: torch.Tensor,
    reverse_weight: float = 0.0,
) -> Optional[DecoderScorer]:
    """Scores hypotheses of a batch with ``model.decoder`` (and with
    ``reverse_weight``, its right-to-left decoder); None without a decoder.

    Args:
      model: the model whose attention decoder scores.
      encoder_out: (N, T, d_model) encoder output of the batch.
      out_lens: (N,) valid encoder frames.
      reverse_weight: see :meth:`CtcModel.attention_scores`.
    """
    if model.decoder is None:
        return None

    def score(tokens: List[List[int]], utt: torch.Tensor) -> torch.Tensor:
        if not tokens:
            return torch.zeros(0)
        index = utt.to(encoder_out.device)
        return model.attention_scores(
            encoder_out[index], out_lens[index], tokens, reverse_weight
        )

    return score


def _decoder_search(
    model: CtcModel,
    encoder_out: torch.Tensor,
    out_lens: torch.Tensor,
    log_probs: torch.Tensor,
) -> Optional[DecoderSearch]:
    """Beam search of a batch with ``model.decoder`` (jointly with the CTC
    ``log_probs`` when the options give CTC a weight); None without one."""
    if model.decoder is None:
        return None
    decoder = model.decoder

    def search(options: BeamSearchOptions) -> List[List[int]]:
        return attention_beam_search(
            decoder, encoder_out, out_lens, options, ctc_log_probs=log_probs
        )

    return search


def _options(
    options: Optional[MethodOptions], config: ExperimentConfig
) -> MethodOptions:
    """``options`` (default ones if None); unset beams from ``config.decode``."""
    opts = options or MethodOptions()
    if opts.beams is None:
        opts = replace(opts, beams=config.decode.beams())
    return opts


def _frames(cut: Cut) -> int:
    """Feature frames of a cut: stored ones, or those fbank would compute."""
    if cut.has_features:
        return cut.num_frames
    return compute_num_frames(cut.duration, FRAME_SHIFT, cut.sampling_rate)


def split_too_short(cuts: CutSet) -> Tuple[CutSet, List[Cut]]:
    """Separates the cuts too short to give one encoder frame.

    A cut of fewer than :data:`MIN_INPUT_FRAMES` feature frames (about
    0.07 s) has no encoder output, so no method can decode it; streaming
    gives such a cut an empty hypothesis, and offline decoding does the same.

    Returns:
      The decodable cuts (lazy filter of ``cuts``) and the too-short ones.
    """
    too_short = [cut for cut in cuts if _frames(cut) < MIN_INPUT_FRAMES]
    ids = {cut.id for cut in too_short}
    return cuts.filter(lambda cut: cut.id not in ids), too_short


def reference_words(cut: Cut) -> List[str]:
    """The words of all the cut's supervisions, in order."""
    return " ".join(sup.text or "" for sup in cut.supervisions).split()


@torch.no_grad()
def decode_methods(
    model: CtcModel,
    cuts: CutSet,
    lang_dir: Path,
    config: ExperimentConfig,
    device: torch.device,
    methods: Sequence[str] = ("ctc-greedy",),
    options: Optional[MethodOptions] = None,
) -> Dict[str, List[Result]]:
    """Decodes every cut with each of ``methods`` (see :mod:`asrk2.decode.methods`).

    Args:
      model: the acoustic model, in eval mode, on ``device``.
      cuts: the test set.
      lang_dir: holds ``bpe.model`` and the graphs the methods need.
      config: the experiment config (data loading, default beams).
      device: where to decode.
      methods: method names; ``attention-rescoring`` needs ``model.decoder``.
      options: beams, n-best size and scales; unset beams from ``config.decode``.
    Returns:
      ``{key: [(cut_id, ref_words, hyp_words), ...]}`` with keys like
      ``hlg-1best`` or ``whole-lattice-rescoring-lm_scale_0.5``. Cuts too short
      for one encoder frame (:func:`split_too_short`) get an empty hypothesis
      (their words count as deletions) and are named in the log.
    Raises:
      ValueError: when no cut is long enough to decode, or a method or
        ``reverse_weight`` needs a decoder the model lacks.
    """
    check_methods(methods)
    cuts, too_short = split_too_short(cuts)
    if too_short:
        shown = ", ".join(cut.id for cut in too_short[:5])
        log.warning("%d cuts shorter than %d frames get empty hypotheses: %s%s",
                    len(too_short), MIN_INPUT_FRAMES, shown,
                    " ..." if len(too_short) > 5 else "")  # fmt: skip
    for method in ("attention-rescoring", "attention-beam-search"):
        if method in methods and model.decoder is None:
            raise ValueError(f"{method} needs a model with an attention decoder")
    opts = _options(options, config)
    if opts.reverse_weight > 0 and model.r2l_decoder is None:
        raise ValueError(
            f"reverse_weight {opts.reverse_weight} needs a model with a "
            "right-to-left decoder (model.decoder.num_r2l_layers > 0)"
        )
    lang_dir = Path(lang_dir)
    sp = load_bpe(lang_dir / "bpe.model")
    graphs = load_graphs(
        lang_dir,
        methods,
        device,
        max_token_id=sp.get_piece_size() - 1,
        hotwords=opts.hotwords,
        weights=opts.graph_weights,
    )
    id2word: Dict[int, str] = {}
    if set(methods) - TOKEN_METHODS:
        id2word = {i: w for w, i in read_symbol_table(lang_dir / "words.txt").items()}
    results: Dict[str, List[Result]] = defaultdict(list)
    for cut_ids, texts, encoder_out, out_lens in encoded_batches(
        model, cuts, config, device
    ):
        log_probs = model.ctc_log_probs(encoder_out)
        scorer = _decoder_scorer(model, encoder_out, out_lens, opts.reverse_weight)
        searcher = _decoder_search(model, encoder_out, out_lens, log_probs)
        hyps = decode_batch(
            methods, log_probs, out_lens, graphs, opts, scorer, searcher
        )
        for key, ids in hyps.items():
            for cut_id, text, h in zip(cut_ids, texts, ids):
                if is_token_result(key):  # BPE token ids; the others word ids
                    words = sp.decode(h).split()
                else:
                    words = [id2word[i] for i in h]
                results[key].append((cut_id, text.split(), words))
    if not results:
        raise ValueError(
            f"no cut is long enough to decode ({len(too_short)} shorter than "
            f"{MIN_INPUT_FRAMES} frames)"
        )
    for key in results:
        for cut in too_short:
            results[key].append((cut.id, reference_words(cut), []))
    return dict(results)


def encoded_batches(
    model: CtcModel, cuts: CutSet, config: ExperimentConfig, device: torch.device
) -> Iterator[Tuple[List[str], List[str], torch.Tensor, torch.Tensor]]:
    """``(cut_ids, texts, encoder_out (N, T, d), out_lens (N,))`` per batch."""
    for batch in tqdm(
        make_eval_loader(cuts, config.data), desc="decoding", leave=False
    ):
        features, feature_lens, texts, cut_ids = unpack_batch(batch)
        encoder_out, out_lens = model.encode(
            features.to(device), feature_lens.to(device)
        )
        yield cut_ids, texts, encoder_out, out_lens


@torch.no_grad()
def decode_word_times(
    model: CtcModel,
    cuts: CutSet,
    lang_dir: Path,
    config: ExperimentConfig,
    device: torch.device,
    methods: Sequence[str] = ("hlg-1best",),
    options: Optional[MethodOptions] = None,
) -> Dict[str, List[Tuple[str, List[WordTime]]]]:
    """Words of the 1-best methods with times and confidences, for CTM files.

    The best path of each method's lattice gives the times (CTC frames of
    the word's pieces, :func:`asrk2.decode.alignment.word_times`) and the
    posterior of the arc that emits each word its confidence; for
    ``ctc-greedy`` the lattice is H's with the decode beams (tight beams
    would leave no alternative), a word's confidence that of its least sure
    piece. The hypotheses equal those of :func:`decode_methods`.

    Args:
      methods: among :data:`TIMED_METHODS`; others are ignored.
      others: as :func:`decode_methods`.
    Returns:
      ``{method: [(cut_id, words), ...]}`` in the order of ``cuts``; cuts too
      short for one encoder frame have no words.
    """
    timed = [m for m in methods if m in TIMED_METHODS]
    opts = _options(options, config)
    cuts, too_short = split_too_short(cuts)
    sp = load_bpe(Path(lang_dir) / "bpe.model")
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    graphs = load_graphs(
        Path(lang_dir),
        timed,
        device,
        max_token_id=sp.get_piece_size() - 1,
        hotwords=opts.hotwords,
        weights=opts.graph_weights,
    )
    id2word = {}
    if set(timed) - {"ctc-greedy"}:
        table = read_symbol_table(Path(lang_dir) / "words.txt")
        id2word = {i: w for w, i in table.items()}
    graph_of = {"ctc-greedy": graphs.H, "hl-1best": graphs.HL, "hlg-1best": graphs.HLG}
    out: Dict[str, List[Tuple[str, List[WordTime]]]] = {m: [] for m in timed}
    for cut_ids, _, encoder_out, out_lens in encoded_batches(
        model, cuts, config, device
    ):
        log_probs = model.ctc_log_probs(encoder_out)
        for method in timed:
            beams = opts.beams or SearchBeams()
            lattice = get_lattice(log_probs, out_lens, graph_of[method], beams)
            for cut_id, alignment in zip(
                cut_ids, best_path_alignments(lattice, posteriors=True)
            ):
                if method == "ctc-greedy":
                    words = sp.decode(alignment.ids).split()
                else:
                    words = [id2word[i] for i in alignment.ids]
                out[method].append((cut_id, word_times(alignment, words, pieces)))
    for method in timed:
        out[method] += [(cut.id, []) for cut in too_short]
    return out


def decode_dataset(
    model: CtcModel,
    cuts: CutSet,
    lang_dir: Path,
    config: ExperimentConfig,
    device: torch.device,
) -> List[Result]:
    """CTC 1-best (k2 H topology, no LM) over every cut.

    With the standard topology every frame-label sequence is exactly one path,
    so the best path survives any beam; tight beams give the exact 1-best at a
    fraction of the time and memory of wide ones.

    Returns:
      (cut_id, ref_words, hyp_words) per cut.
    """
    return decode_methods(model, cuts, lang_dir, config, device)["ctc-greedy"]


def decode_and_score(
    model: CtcModel,
    config: ExperimentConfig,
    cuts: CutSet,
    lang_dir: Path,
    out_dir: Path,
    test_set: str = "test",
    methods: Sequence[str] = ("ctc-greedy",),
    options: Optional[MethodOptions] = None,
    ctm: bool = False,
) -> Dict[str, float]:
    """Decodes a test set and writes ``recogs-``, ``errs-`` and ``wer-summary-`` files.

    One ``recogs-{test_set}-{key}.txt`` and ``errs-...`` per method and scale,
    and one ``wer-summary-{test_set}.txt`` with a line per key, best first.

    Args:
      model: the acoustic model in eval mode, on the device to decode on
        (e.g. from :func:`asrk2.checkpoint.load_model`).
      config: its experiment config (data loading, default beams).
      cuts: the test set.
      lang_dir: the lang dir (``bpe.model``, graphs for the methods).
      out_dir: where the files go.
      test_set: name used in the file names.
      methods: names from :data:`asrk2.decode.methods.METHODS`.
      options: beams, n-best size and scales; unset beams from the config.
      ctm: also write ``ctm-{test_set}-{method}.ctm`` (Kaldi CTM with word
        confidences) for each of the 1-best methods (:data:`TIMED_METHODS`).
    Returns:
      WER (percent) per method/scale, e.g. ``{"ctc-greedy": 4.2}``.
    """
    device = next(iter(model.parameters())).device
    all_results = decode_methods(
        model, cuts, lang_dir, config, device, methods, options
    )
    out_dir = Path(out_dir)
    summary: Dict[str, float] = {}
    for key, results in all_results.items():
        stats = compute_wer(results)
        write_recogs(out_dir / f"recogs-{test_set}-{key}.txt", results)
        write_errs(out_dir / f"errs-{test_set}-{key}.txt", results, stats)
        summary[key] = stats.wer
        log.info("%s %s: %s", test_set, key, stats.wer_line())
    write_wer_summary(out_dir / f"wer-summary-{test_set}.txt", summary)
    if ctm:
        if not set(methods) & set(TIMED_METHODS):
            log.warning("--ctm: only %s have word times", ", ".join(TIMED_METHODS))
        times = decode_word_times(
            model, cuts, lang_dir, config, device, methods, options
        )
        for method, words in times.items():
            write_ctm(out_dir / f"ctm-{test_set}-{method}.ctm", words)
    return summary
