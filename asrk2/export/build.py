"""Writing an export: averaged checkpoints -> TorchScript encoder + graphs + meta.

The scripted module is :class:`ScriptableCtcModel`: the trained conformer and
CTC output layer, with methods for offline batches and for chunk-wise
streaming with explicit caches. The conformer's own methods are compiled
(``torch.jit.script``), not traced, so any batch size, length and chunk size
work and the numerics are those of the eager model.

``--int8`` applies dynamic int8 quantisation (weights int8, activations
quantised per call) to every ``nn.Linear`` before scripting: the attention,
feed-forward, subsampling projection and CTC layers; convolutions stay float.
"""

import json
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from asrk2.checkpoint import epoch_checkpoints, load_model
from asrk2.config import save_yaml
from asrk2.experiment import ExperimentConfig
from asrk2.export.load import ENCODER_FILE, FORMAT, FORMAT_VERSION, META_FILE
from asrk2.frames import chunk_input_frames
from asrk2.lang.lexicon import read_symbol_table
from asrk2.model.conformer import Conformer
from asrk2.model.ctc_model import CtcModel
from asrk2.utils import atomic_path, atomic_write_text

__all__ = [
    "LANG_FILES",
    "ExportSummary",
    "ScriptableCtcModel",
    "export_model",
    "quantize_int8",
    "script_model",
]

log = logging.getLogger(__name__)

# Copied from the lang dir when present; bpe.model and tokens.txt are required.
LANG_FILES = ("bpe.model", "tokens.txt", "words.txt", "HLG.pt", "HL.pt")
_REQUIRED_LANG_FILES = ("bpe.model", "tokens.txt")

PathLike = Union[str, Path]


class ScriptableCtcModel(nn.Module):
    """The inference part of a ``CtcModel`` (encoder + CTC layer) in a scriptable form.

    Shares the modules (and weights) of ``model``; the attention decoder and
    the CTC dropout (a no-op in eval mode) are left out.

    Args:
      model: the trained model, in eval mode.
    """

    def __init__(self, model: CtcModel) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.ctc_output = model.ctc_output
        self.vocab_size = model.config.vocab_size

    def forward(
        self, features: torch.Tensor, feature_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Full-context CTC log-probs of a padded batch.

        Args:
          features: (N, T, C) fbank features, padded.
          feature_lens: (N,) valid frames per utterance.
        Returns:
          ``(log_probs (N, T', V), out_lens (N,))``.
        """
        encoder_out, out_lens = self.encode(features, feature_lens, -1, -1)
        return self.ctc_log_probs(encoder_out), out_lens

    @torch.jit.export
    def encode(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        chunk_size: int,
        left_context_frames: int,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encoder output of a padded batch (``Conformer.forward``).

        Args:
          features: (N, T, C).
          feature_lens: (N,).
          chunk_size: attention chunk in output frames; <= 0 for full context.
          left_context_frames: frames before a chunk that stay visible; < 0 all.
        Returns:
          ``(encoder_out (N, T', d_model), out_lens (N,))``.
        """
        return self.encoder(features, feature_lens, chunk_size, left_context_frames)

    @torch.jit.export
    def ctc_log_probs(self, encoder_out: torch.Tensor) -> torch.Tensor:
        """Maps (N, T', d_model) to CTC log-probs (N, T', V)."""
        if encoder_out.size(1) == 0:
            # Dynamic int8 linears cannot quantise an empty input.
            n = encoder_out.size(0)
            return encoder_out.new_zeros(n, 0, self.vocab_size)
        return self.ctc_output(encoder_out).log_softmax(dim=-1)

    @torch.jit.export
    def init_cache(
        self, batch_size: int
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Caches before the first chunk of ``batch_size`` streams, on the CPU.

        Returns:
          ``(feature_cache (N, 0, C), attn_cache (layers, N, 0, d_model),
          conv_cache (layers, N, d_model, K - 1))``.
        """
        return self.encoder.init_caches(batch_size, torch.device("cpu"))

    @torch.jit.export
    def forward_chunk(
        self,
        features: torch.Tensor,
        feature_cache: torch.Tensor,
        attn_cache: torch.Tensor,
        conv_cache: torch.Tensor,
        left_context_frames: int,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """CTC log-probs of the next frames of N streams, caches in and out.

        Args:
          features: new input frames (N, T, C).
          feature_cache, attn_cache, conv_cache: from :meth:`init_cache` or
            the previous call.
          left_context_frames: attention cache in output frames; < 0 all.
        Returns:
          ``(log_probs (N, T', V), feature_cache, attn_cache, conv_cache)``.
        """
        out, feature_cache, attn_cache, conv_cache = self.encoder.forward_chunk_tensors(
            features, feature_cache, attn_cache, conv_cache, left_context_frames
        )
        return self.ctc_log_probs(out), feature_cache, attn_cache, conv_cache


def quantize_int8(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with dynamic int8 ``nn.Linear`` (and ``nn.LSTM``) layers.

    Weights are stored as int8 with a per-tensor scale; activations are
    quantised on the fly at each call, so no calibration data is needed.
    CPU only (fbgemm/qnnpack kernels).
    """
    return torch.quantization.quantize_dynamic(
        module, {nn.Linear, nn.LSTM}, dtype=torch.qint8, inplace=False
    )


def script_model(model: CtcModel, int8: bool = False) -> torch.jit.ScriptModule:
    """Compiles the inference part of ``model`` with ``torch.jit.script``.

    Args:
      model: the trained model; it is put in eval mode.
      int8: quantise the linear layers first (:func:`quantize_int8`).
    Returns:
      The scripted :class:`ScriptableCtcModel`, in eval mode.
    """
    module: nn.Module = ScriptableCtcModel(model.eval()).eval()
    if int8:
        module = quantize_int8(module)
    return torch.jit.script(module)


@dataclass
class ExportSummary:
    """What :func:`export_model` wrote.

    Attributes:
      out_dir: the export directory.
      checkpoints: names of the averaged checkpoints.
      files: file names written into ``out_dir``.
      encoder_bytes: size of ``encoder.pt``.
    """

    out_dir: Path
    checkpoints: List[str]
    files: List[str]
    encoder_bytes: int


def _chosen_checkpoints(exp_dir: Path, epoch: Optional[int], avg: int) -> List[Path]:
    """The ``avg`` newest ``epoch-N.pt`` with N <= ``epoch`` (as ``load_model``)."""
    if avg < 1:
        raise ValueError(f"avg must be >= 1, got {avg}")
    paths = epoch_checkpoints(exp_dir)
    if epoch is not None:
        paths = [p for p in paths if int(p.stem.split("-")[1]) <= epoch]
    if len(paths) < avg:
        raise FileNotFoundError(
            f"{exp_dir}: need {avg} epoch-N.pt checkpoints with N <= {epoch}, "
            f"found {[p.name for p in paths]}"
        )
    return paths[-avg:]


def _check_lang_dir(lang_dir: Path, vocab_size: int) -> List[str]:
    """Names of the :data:`LANG_FILES` present; checks the vocabulary matches.

    Raises:
      FileNotFoundError: ``bpe.model`` or ``tokens.txt`` missing.
      ValueError: ``tokens.txt`` does not have ``vocab_size`` ids.
    """
    missing = [n for n in _REQUIRED_LANG_FILES if not (lang_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{lang_dir}: missing {missing}")
    num_tokens = max(read_symbol_table(lang_dir / "tokens.txt").values()) + 1
    if num_tokens != vocab_size:
        raise ValueError(
            f"{lang_dir / 'tokens.txt'} has {num_tokens} tokens but the model "
            f"{vocab_size} outputs; wrong --lang-dir?"
        )
    return [n for n in LANG_FILES if (lang_dir / n).is_file()]


def _feature_options(config: ExperimentConfig) -> Dict[str, Any]:
    """The kaldifeat fbank options the model was trained on, as a plain dict."""
    from asrk2.features.fbank import make_fbank_extractor

    extractor = make_fbank_extractor(replace(config.fbank, device="cpu"))
    options = extractor.config.to_dict()
    # Where and in how many pieces features are computed does not change them.
    options.pop("device", None)
    options.pop("chunk_size", None)
    return {"extractor": extractor.name, **json.loads(json.dumps(options, default=str))}


def _meta(
    config: ExperimentConfig,
    checkpoints: List[Path],
    int8: bool,
    files: List[str],
) -> Dict[str, Any]:
    """The contents of ``meta.json``: everything a decoder needs besides weights."""
    enc = config.model.encoder
    factor = Conformer.subsampling_factor
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "encoder": ENCODER_FILE,
        "int8": int8,
        "vocab_size": config.model.vocab_size,
        "blank_id": 0,
        "num_features": enc.num_features,
        "d_model": enc.d_model,
        "num_layers": enc.num_layers,
        "conv_cache_frames": enc.conv_kernel_size - 1,
        "subsampling_factor": factor,
        "causal": enc.causal,
        "left_context_frames": enc.left_context_frames,
        "chunk": {
            "unit": f"encoder output frames ({factor} input frames each)",
            "first_call_input_frames": f"{factor} * chunk_size + 3",
            "later_call_input_frames": f"{factor} * chunk_size",
            "example_chunk_16": [
                chunk_input_frames(16, True, factor),
                chunk_input_frames(16, False, factor),
            ],
            "equals_offline_chunked": enc.causal,
        },
        "features": _feature_options(config),
        "source": {
            "checkpoints": [p.name for p in checkpoints],
            "avg": len(checkpoints),
        },
        "files": files,
        "torch_version": torch.__version__,
    }


def export_model(
    exp_dir: PathLike,
    epoch: Optional[int],
    avg: int,
    lang_dir: PathLike,
    out_dir: PathLike,
    quantize: bool = False,
) -> ExportSummary:
    """Averages checkpoints and writes a self-contained TorchScript export.

    ``out_dir`` gets ``encoder.pt`` (a :class:`ScriptableCtcModel`), the lang
    files of :data:`LANG_FILES` present in ``lang_dir``, ``config.yaml`` (the
    resolved experiment config of the newest averaged checkpoint) and, last,
    ``meta.json``. Load it with :func:`asrk2.export.load_exported`.

    Args:
      exp_dir: holds ``epoch-N.pt`` checkpoints.
      epoch: newest epoch to average; None for the newest there is.
      avg: number of epochs averaged.
      lang_dir: the lang dir the model was trained with.
      out_dir: the export directory (created; existing files are replaced).
      quantize: dynamic int8 quantisation of the linear layers (CPU only).
    Returns:
      What was written.
    """
    exp_dir, lang_dir, out_dir = Path(exp_dir), Path(lang_dir), Path(out_dir)
    checkpoints = _chosen_checkpoints(exp_dir, epoch, avg)
    model, config = load_model(exp_dir, epoch, avg)
    lang_files = _check_lang_dir(lang_dir, config.model.vocab_size)
    # meta.json comes last: until then the directory is no (complete) export.
    (out_dir / META_FILE).unlink(missing_ok=True)
    scripted = script_model(model.cpu(), int8=quantize)
    with atomic_path(out_dir / ENCODER_FILE) as tmp:
        torch.jit.save(scripted, str(tmp))
    for name in lang_files:
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(lang_dir / name, tmp)
    save_yaml(config, out_dir / "config.yaml")
    files = [ENCODER_FILE, *lang_files, "config.yaml"]
    meta = _meta(config, checkpoints, quantize, files)
    atomic_write_text(out_dir / META_FILE, json.dumps(meta, indent=2) + "\n")
    summary = ExportSummary(
        out_dir=out_dir,
        checkpoints=[p.name for p in checkpoints],
        files=files + [META_FILE],
        encoder_bytes=(out_dir / ENCODER_FILE).stat().st_size,
    )
    log.info(
        "Exported %s (%s) to %s",
        ", ".join(summary.checkpoints),
        "int8" if quantize else "float",
        out_dir,
    )
    return summary
