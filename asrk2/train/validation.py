"""Validation during training: per-frame losses and greedy-CTC WER.

The WER is of per-frame argmax decoding (:func:`~asrk2.decode.ctc_decode.
ctc_argmax_decode`), which equals ctc-greedy decoding with H, scored by the
same :func:`~asrk2.decode.scoring.compute_wer` as test sets; it needs no graph.
"""

from typing import Dict, Iterable, List, Optional, Tuple

import sentencepiece as spm
import torch

from asrk2.data.datamodule import unpack_batch
from asrk2.decode.ctc_decode import ctc_argmax_decode
from asrk2.decode.scoring import compute_wer

__all__ = ["PARTS", "greedy_word_errors", "validation_sums", "validation_result"]

# The loss parts a LossModule returns (those it does not compute count 0).
PARTS = ("loss", "ctc", "att", "dice", "mmi")


def greedy_word_errors(
    sp: "spm.SentencePieceProcessor",
    log_probs: torch.Tensor,
    out_lens: torch.Tensor,
    texts: List[str],
) -> Tuple[int, int]:
    """Word errors of greedy CTC decoding (per-frame argmax) against the transcripts.

    Args:
      sp: the BPE model that maps token ids to words.
      log_probs: (N, T, V) CTC log-probs, blank at 0.
      out_lens: (N,) valid frames.
      texts: N reference transcripts.
    Returns:
      ``(errors, reference_words)``: edit distance and length summed over N.
    """
    hyps = ctc_argmax_decode(log_probs, out_lens)
    stats = compute_wer(
        [("", text.split(), sp.decode(h).split()) for text, h in zip(texts, hyps)]
    )
    return stats.errors, stats.num_ref_words


@torch.no_grad()
def validation_sums(
    module: torch.nn.Module,
    loader: Optional[Iterable[dict]],
    sp: "spm.SentencePieceProcessor",
    device: torch.device,
    amp: bool,
) -> Dict[str, float]:
    """Sums over one pass of ``loader``, for reducing over ranks.

    Args:
      module: the ``LossModule`` (put in eval mode for the pass, then back).
      loader: validation batches (lhotse K2SpeechRecognitionDataset); None
        when this rank has no validation cuts.
      sp: the BPE model, to score words.
      device: where the module runs.
      amp: autocast as in training.
    Returns:
      ``frames`` and each of :data:`PARTS` over batches with a finite loss,
      ``word_errors`` and ``ref_words`` over all batches.
    """
    sums = dict.fromkeys(("frames",) + PARTS + ("word_errors", "ref_words"), 0.0)
    module.eval()
    for batch in loader if loader is not None else []:
        features, feature_lens, texts, _ = unpack_batch(batch)
        with torch.cuda.amp.autocast(enabled=amp):
            out = module(
                features.to(device),
                feature_lens.to(device),
                texts,
                return_log_probs=True,
            )
        if torch.isfinite(out["loss"]):
            sums["frames"] += float(out["frames"])
            for part in PARTS:
                sums[part] += float(out[part]) if part in out else 0.0
        errors, words = greedy_word_errors(sp, out["log_probs"], out["out_lens"], texts)
        sums["word_errors"] += errors
        sums["ref_words"] += words
    module.train()
    return sums


def validation_result(sums: Dict[str, float]) -> Dict[str, float]:
    """Per-frame losses (keys :data:`PARTS`) and ``wer`` (%) from summed sums."""
    frames = max(sums["frames"], 1.0)
    result = {part: sums[part] / frames for part in PARTS}
    result["wer"] = 100.0 * sums["word_errors"] / max(sums["ref_words"], 1.0)
    return result
