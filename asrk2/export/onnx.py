"""ONNX export in the layout sherpa-onnx loads, and the HLG as an OpenFst graph.

sherpa-onnx (k2-fsa's deployment runtime: C++, Python, Android, iOS,
WebAssembly, ...) runs CTC models of a few fixed interfaces. asrk2 exports
the offline one of its ``zipformer_ctc`` models, chosen over ``wenet_ctc``
because of what the runtime does before the model:

* For ``zipformer_ctc`` models sherpa-onnx computes 80-bin Kaldi fbank from
  samples in [-1, 1] with no dither, ``snip_edges=False``, low/high frequency
  20 Hz / -400 Hz: exactly the kaldifeat options asrk2 trains with. For
  ``wenet_ctc`` it scales samples to the 16-bit range and, offline, adds
  dither.
* Only ``OfflineRecognizer.from_zipformer_ctc`` takes a decoding graph
  (``ctc_graph``) in sherpa-onnx's Python API, so greedy and HLG decoding
  both work with its documented calls.

The ONNX graph takes ``x`` (N, T, 80) float fbank and ``x_lens`` (N,) int64,
and returns ``log_probs`` (N, T', V) (log-softmax) and ``log_probs_len``
(N,) int64. The vocabulary size is the static last dimension of
``log_probs``, which is where sherpa-onnx reads it. Global CMVN is inside the
graph (the encoder's :class:`~asrk2.model.conformer.FeatureNormalizer`),
because sherpa-onnx normalises nothing itself.

The streaming model (``model-streaming.onnx``, causal models only) has the
interface of sherpa-onnx's online ``wenet_ctc`` models, the one streaming CTC
layout its Python API offers: inputs ``x`` (1, 4c + 3, 80) for a chunk of c
output frames, ``offset``, ``required_cache_size``, ``attn_cache`` (layers,
heads, R, 2 d_model / heads), ``conv_cache`` (layers, 1, d_model, K - 1),
``attn_mask`` (1, 1, R + c); outputs ``log_probs`` and the two caches. sherpa-
onnx feeds overlapping windows of 4c + 3 frames every 4c frames, which is
exactly what asrk2's streaming encoder reads (its feature cache holds the 3
frames of overlap), and a cache of R = c * num_left_chunks frames, zeros
masked out until filled: asrk2's attention cache (the normalised inputs of
each layer, d_model per frame) is kept in the first half of each frame's
slot. For these models sherpa-onnx scales samples to the 16-bit range before
fbank, which adds 2 ln 32768 to every log-mel value except at Kaldi's energy
floor; the graph subtracts it and re-applies the floor, which reproduces the
fbank asrk2 trains on.

``HLG.fst`` is the k2 HLG converted to an OpenFst vector FST. sherpa-onnx's
CTC FST decoder (kaldi-decoder) reads token ``t`` as input label ``t + 1``:
0 is epsilon in OpenFst, so blank (token 0) is label 1. Output labels are
word ids (words.txt); weights are costs (minus k2's log scores).

Layout facts are from sherpa-onnx's sources
(``offline-zipformer-ctc-model.cc``, ``offline-ctc-fst-decoder.cc``,
``features.h``, ``offline-recognizer-ctc-impl.h``) and are checked by
``tests/test_sherpa_onnx.py``, which runs sherpa-onnx itself on the export.
"""

import json
import logging
import math
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import k2
import torch
from torch import nn

from asrk2.checkpoint import load_model
from asrk2.lang.graphs import load_fsa
from asrk2.lang.lexicon import read_symbol_table
from asrk2.model.conformer import Conformer
from asrk2.model.ctc_model import CtcModel
from asrk2.utils import atomic_dir

__all__ = [
    "HLG_FST",
    "MODEL_FILE",
    "MODEL_INT8_FILE",
    "OfflineCtcForOnnx",
    "OnnxExportSummary",
    "STREAMING_MODEL_FILE",
    "StreamingCtcForOnnx",
    "export_onnx",
    "k2_to_openfst",
    "quantize_onnx_int8",
    "write_offline_onnx",
    "write_streaming_onnx",
]

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
MODEL_INT8_FILE = "model.int8.onnx"
STREAMING_MODEL_FILE = "model-streaming.onnx"
HLG_FST = "HLG.fst"
TOKENS_FILE = "tokens.txt"
# The opset sherpa-onnx's own exporters use; onnxruntime runs every later one.
DEFAULT_OPSET = 13
# torch 1.13's exporter writes opsets up to 17.
_TORCH_MAX_OPSET = 17

PathLike = Union[str, Path]


class OfflineCtcForOnnx(nn.Module):
    """The encoder and CTC layer of a model, with sherpa-onnx's offline interface.

    Shares the modules (and weights) of ``model``: full-context encoder (as
    asrk2's offline decoding), CTC output layer, log-softmax.

    Args:
      model: the trained model; it is put in eval mode.
    """

    def __init__(self, model: CtcModel) -> None:
        super().__init__()
        model.eval()
        self.encoder = model.encoder
        self.ctc_output = model.ctc_output

    def forward(
        self, x: torch.Tensor, x_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probs of a padded batch of fbank features.

        Args:
          x: (N, T, C) float fbank.
          x_lens: (N,) int64 valid frames.
        Returns:
          ``(log_probs (N, T', V), log_probs_len (N,) int64)``.
        """
        encoder_out, out_lens = self.encoder(x, x_lens, -1, -1)
        log_probs = self.ctc_output(encoder_out).log_softmax(dim=-1)
        return log_probs, out_lens.to(torch.int64)


# log(32768 ** 2): fbank of 16-bit-range samples minus fbank of [-1, 1] samples.
_INT16_LOG_ENERGY = 2 * math.log(32768.0)
# Kaldi's fbank takes log(max(energy, FLT_EPSILON)).
_LOG_ENERGY_FLOOR = math.log(float(torch.finfo(torch.float32).eps))


class StreamingCtcForOnnx(nn.Module):
    """A causal model's chunk step, with sherpa-onnx's online WeNet CTC interface.

    See the module docstring for the layout. The weights and the arithmetic
    are those of :meth:`Conformer.forward_chunk_tensors` with a fixed-size
    attention cache; ``offset`` and ``required_cache_size`` are accepted for
    the interface and not needed (positions are relative, the cache size is
    the cache's shape).

    Args:
      model: the trained model (``causal: true``); it is put in eval mode.
    """

    def __init__(self, model: CtcModel) -> None:
        super().__init__()
        model.eval()
        self.encoder = model.encoder
        self.ctc_output = model.ctc_output
        self.d_model = model.config.encoder.d_model

    def forward(
        self,
        x: torch.Tensor,
        offset: torch.Tensor,
        required_cache_size: torch.Tensor,
        attn_cache: torch.Tensor,
        conv_cache: torch.Tensor,
        attn_mask: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """CTC log-probs of one chunk, and the caches for the next.

        Args:
          x: (1, 4c + 3, C) fbank of 16-bit-range samples.
          offset: (1,) int64, unused.
          required_cache_size: (1,) int64, unused.
          attn_cache: (layers, heads, R, 2 d_model / heads).
          conv_cache: (layers, 1, d_model, K - 1).
          attn_mask: (1, 1, R + c) bool, True where a key is valid.
        Returns:
          ``(log_probs (1, c, V), next_attn_cache, next_conv_cache)``, the
          caches shaped like the inputs.
        """
        enc = self.encoder
        feats = (x - _INT16_LOG_ENERGY).clamp(min=_LOG_ENERGY_FLOOR)
        out = enc.embed(enc.feature_norm(feats))
        chunk = out.size(1)
        layers, heads, cache_frames, slot = attn_cache.shape
        # (layers, heads, R, slot) <-> (layers, 1, R, heads * slot): asrk2's
        # d_model values per frame in the first half of the 2 * d_model.
        flat = attn_cache.permute(0, 2, 1, 3).reshape(layers, 1, cache_frames, -1)
        out, pos_emb = enc.pos_enc(out, cache_frames + chunk)
        blocked = ~attn_mask
        next_attn: List[torch.Tensor] = []
        next_conv: List[torch.Tensor] = []
        for i, layer in enumerate(enc.layers):
            cache = flat[i, :, :, : self.d_model]
            out, attn, conv = layer.forward_chunk(
                out, pos_emb, cache, conv_cache[i], -1, blocked
            )
            attn = attn[:, chunk:]  # the newest R frames
            attn = torch.cat([attn, torch.zeros_like(attn)], dim=2)
            next_attn.append(attn.reshape(cache_frames, heads, slot).transpose(0, 1))
            next_conv.append(conv)
        log_probs = self.ctc_output(out).log_softmax(dim=-1)
        return log_probs, torch.stack(next_attn), torch.stack(next_conv)


def _check_opset(opset: int) -> None:
    """Raises ValueError for an opset the installed onnx or torch cannot write."""
    import onnx

    highest = min(onnx.defs.onnx_opset_version(), _TORCH_MAX_OPSET)
    if not 7 <= opset <= highest:
        raise ValueError(
            f"opset {opset} cannot be written here: torch {torch.__version__} "
            f"with onnx {onnx.__version__} writes opsets 7..{highest}"
        )


def _add_metadata(path: Path, metadata: Dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(model, str(path))


def write_offline_onnx(
    model: CtcModel,
    path: PathLike,
    metadata: Optional[Dict[str, str]] = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Traces the offline model into an ONNX file (batch and length dynamic).

    Args:
      model: the trained model.
      path: the ``.onnx`` file to write.
      metadata: extra ``key -> value`` strings for the model's metadata.
      opset: ONNX opset version.
    Returns:
      ``path``.
    """
    _check_opset(opset)
    path = Path(path)
    module = OfflineCtcForOnnx(model).eval()
    num_features = model.config.encoder.num_features
    # Two utterances of different lengths, so no length is baked in as a constant.
    x = torch.zeros(2, 100, num_features)
    x_lens = torch.tensor([100, 71], dtype=torch.int64)
    with torch.no_grad(), warnings.catch_warnings():
        # Known and harmless here: the subsampling's minimum-length check
        # becomes a constant of the trace (inputs under 7 frames give no
        # output frame either way), and torch 1.13's exporter notes slices it
        # does not fold.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        warnings.filterwarnings("ignore", "The shape inference of prim", UserWarning)
        torch.onnx.export(
            module, (x, x_lens), str(path), opset_version=opset,
            input_names=["x", "x_lens"],
            output_names=["log_probs", "log_probs_len"],
            dynamic_axes={"x": {0: "N", 1: "T"}, "x_lens": {0: "N"},
                          "log_probs": {0: "N", 1: "T_out"},
                          "log_probs_len": {0: "N"}},
        )  # fmt: skip
    _add_metadata(path, metadata or {})
    return path


def write_streaming_onnx(
    model: CtcModel,
    path: PathLike,
    metadata: Dict[str, str],
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Traces the chunk step into an ONNX file (chunk and cache sizes dynamic).

    Args:
      model: a trained causal model.
      path: the ``.onnx`` file to write.
      metadata: ``key -> value`` strings for the model's metadata (sherpa-onnx
        reads head, num_blocks, output_size, cnn_module_kernel,
        right_context, subsampling_factor, vocab_size).
      opset: ONNX opset version.
    Returns:
      ``path``.
    """
    _check_opset(opset)
    enc = model.config.encoder
    module = StreamingCtcForOnnx(model).eval()
    chunk, cache = 16, 64
    slot = 2 * enc.d_model // enc.num_heads
    inputs = (
        torch.zeros(1, 4 * chunk + 3, enc.num_features),
        torch.tensor([cache], dtype=torch.int64),
        torch.tensor([cache], dtype=torch.int64),
        torch.zeros(enc.num_layers, enc.num_heads, cache, slot),
        torch.zeros(enc.num_layers, 1, enc.d_model, enc.conv_kernel_size - 1),
        torch.ones(1, 1, cache + chunk, dtype=torch.bool),
    )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)
        warnings.filterwarnings("ignore", "The shape inference of prim", UserWarning)
        torch.onnx.export(
            module, inputs, str(path), opset_version=opset,
            input_names=["x", "offset", "required_cache_size", "attn_cache",
                         "conv_cache", "attn_mask"],
            output_names=["log_probs", "next_att_cache", "next_conv_cache"],
            dynamic_axes={"x": {1: "T"}, "attn_cache": {2: "R"},
                          "attn_mask": {2: "R_plus_c"}, "log_probs": {1: "c"},
                          "next_att_cache": {2: "R"}},
        )  # fmt: skip
    _restore_unused_inputs(Path(path), {"offset": 1, "required_cache_size": 2})
    _add_metadata(Path(path), metadata)
    return Path(path)


def _restore_unused_inputs(path: Path, positions: Dict[str, int]) -> None:
    """Puts back the int64 (1,) inputs the exporter dropped for being unused.

    sherpa-onnx passes the six inputs of the layout by position, so the two
    this model does not need must still be declared, in their places (ONNX
    allows graph inputs no node reads).
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    names = [i.name for i in model.graph.input]
    for name, position in sorted(positions.items(), key=lambda kv: kv[1]):
        if name not in names:
            info = helper.make_tensor_value_info(name, TensorProto.INT64, [1])
            model.graph.input.insert(position, info)
            names.insert(position, name)
    onnx.save(model, str(path))


def quantize_onnx_int8(src: PathLike, dst: PathLike) -> Path:
    """Dynamic int8 quantisation of the MatMuls (the linear layers) with onnxruntime.

    Weights become int8 with a scale; activations are quantised per call, so
    no calibration data is needed. Convolutions stay float, as in the
    TorchScript ``--int8`` export.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(dst), op_types_to_quantize=["MatMul"],
        weight_type=QuantType.QInt8,
    )  # fmt: skip
    return Path(dst)


def k2_to_openfst(fsa: k2.Fsa):  # -> kaldifst.StdVectorFst
    """Converts a k2 decoding graph (H, HL or HLG) to an OpenFst vector FST.

    Label conventions of sherpa-onnx's CTC FST decoder: a k2 arc with token
    ``t >= 0`` (0 = blank) gets input label ``t + 1``; k2's final arcs (label
    -1) become final weights of their source states, and k2's final state is
    left out. Output labels are the
    arc's ``aux_labels`` (word ids for HL/HLG, token ids for H); an arc with
    several becomes a chain, the later ones on epsilon-input arcs. Weights
    are costs: ``-score``.

    Args:
      fsa: a single k2 FSA on the CPU with ``aux_labels`` (tensor or ragged).
    Returns:
      A ``kaldifst.StdVectorFst``.
    """
    import kaldifst

    arcs = fsa.arcs.values()[:, :3].tolist()
    scores = fsa.scores.tolist()
    aux = fsa.aux_labels
    if isinstance(aux, torch.Tensor):
        outputs: List[List[int]] = [[a] if a > 0 else [] for a in aux.tolist()]
    else:
        outputs = [[w for w in ws if w > 0] for ws in aux.tolist()]
    fst = kaldifst.StdVectorFst()
    # k2's final state (the last one) is not needed: only label -1 arcs enter it.
    for _ in range(fsa.shape[0] - 1):
        fst.add_state()
    fst.start = 0
    finals: Dict[int, float] = {}
    for (src, dst, label), score, words in zip(arcs, scores, outputs):
        if label == -1:
            finals[src] = min(finals.get(src, float("inf")), -score)
            continue
        first = words[0] if words else 0
        if len(words) <= 1:
            fst.add_arc(src, kaldifst.StdArc(label + 1, first, -score, dst))
            continue
        state = src
        for i, word in enumerate(words):
            nxt = dst if i == len(words) - 1 else fst.add_state()
            ilabel, cost = (label + 1, -score) if i == 0 else (0, 0.0)
            fst.add_arc(state, kaldifst.StdArc(ilabel, word, cost, nxt))
            state = nxt
    for state, cost in finals.items():
        fst.set_final(state, cost)
    return fst


@dataclass
class OnnxExportSummary:
    """What :func:`export_onnx` wrote.

    Attributes:
      out_dir: the export directory.
      checkpoints: names of the averaged checkpoints.
      files: file names written into ``out_dir``.
      model_bytes: size of ``model.onnx``.
      int8_bytes: size of ``model.int8.onnx`` (0 when not written).
    """

    out_dir: Path
    checkpoints: List[str]
    files: List[str]
    model_bytes: int
    int8_bytes: int


def _check_tokens(lang_dir: Path, vocab_size: int) -> None:
    tokens = lang_dir / TOKENS_FILE
    if not tokens.is_file():
        raise FileNotFoundError(f"{lang_dir} has no {TOKENS_FILE}: wrong --lang-dir?")
    table = read_symbol_table(tokens)
    if max(table.values()) + 1 != vocab_size or table.get("<blk>") != 0:
        raise ValueError(
            f"{tokens} does not fit the model ({vocab_size} outputs, blank "
            "<blk> = 0): wrong --lang-dir?"
        )


def export_onnx(
    exp_dir: PathLike,
    epoch: Optional[int],
    avg: int,
    lang_dir: PathLike,
    out_dir: PathLike,
    int8: bool = True,
    opset: int = DEFAULT_OPSET,
    streaming: Optional[bool] = None,
) -> OnnxExportSummary:
    """Averages checkpoints and writes a sherpa-onnx model directory.

    ``out_dir`` gets ``model.onnx``, ``model.int8.onnx`` (with ``int8``),
    ``model-streaming.onnx`` (with ``streaming``), ``tokens.txt``,
    ``HLG.fst`` when the lang dir has ``HLG.pt``, and
    ``meta.json`` (asrk2's record: checkpoints, feature options). Everything
    is checked first and written into a temporary directory beside
    ``out_dir``, which replaces ``out_dir`` only when complete, so a failed
    export leaves nothing half-made.

    Args:
      exp_dir: holds ``epoch-N.pt`` checkpoints.
      epoch: newest epoch to average; None for the newest there is.
      avg: number of epochs averaged.
      lang_dir: the lang dir the model was trained with.
      out_dir: the export directory (replaced if it exists).
      int8: also write the int8 model.
      opset: ONNX opset version.
      streaming: also write the streaming model; None: when the model is
        causal.
    Returns:
      What was written.
    Raises:
      FileNotFoundError: missing checkpoints, lang dir or tokens.txt.
      ValueError: out-of-range ``avg`` or ``opset``, tokens that do not fit,
        ``streaming`` for a model that is not causal.
    """
    exp_dir, lang_dir, out_dir = Path(exp_dir), Path(lang_dir), Path(out_dir)
    if not lang_dir.is_dir():
        raise FileNotFoundError(f"lang dir {lang_dir} does not exist")
    _check_opset(opset)
    model, config = load_model(exp_dir, epoch, avg)
    vocab_size = config.model.vocab_size
    _check_tokens(lang_dir, vocab_size)
    enc = config.model.encoder
    if streaming and not enc.causal:
        raise ValueError(
            f"{exp_dir}: the model is not causal (model.encoder.causal: false), so "
            "it cannot stream; export it without streaming"
        )
    streaming = enc.causal if streaming is None else streaming
    from asrk2.export.build import _chosen_checkpoints, _feature_options

    checkpoints = [p.name for p in _chosen_checkpoints(exp_dir, epoch, avg)]
    metadata = {
        "model_type": "zipformer2_ctc",  # the sherpa-onnx interface (see above)
        "vocab_size": str(vocab_size),
        "subsampling_factor": str(Conformer.subsampling_factor),
        "blank_id": "0",
        "model_author": "asrk2",
        "comment": f"asrk2 conformer CTC, offline, from {', '.join(checkpoints)}",
    }
    with atomic_dir(out_dir) as tmp:
        files = [MODEL_FILE, TOKENS_FILE]
        write_offline_onnx(model.cpu(), tmp / MODEL_FILE, metadata, opset)
        if int8:
            quantize_onnx_int8(tmp / MODEL_FILE, tmp / MODEL_INT8_FILE)
            files.append(MODEL_INT8_FILE)
        if streaming:
            streaming_meta = {
                **metadata,
                "model_type": "wenet_ctc",
                "comment": metadata["comment"].replace("offline", "streaming"),
                "head": str(enc.num_heads),
                "num_blocks": str(enc.num_layers),
                "output_size": str(enc.d_model),
                "cnn_module_kernel": str(enc.conv_kernel_size),
                # sherpa-onnx feeds (chunk - 1) * 4 + right_context + 1 frames.
                "right_context": "6",
            }
            write_streaming_onnx(model, tmp / STREAMING_MODEL_FILE, streaming_meta,
                                 opset)  # fmt: skip
            files.append(STREAMING_MODEL_FILE)
        shutil.copyfile(lang_dir / TOKENS_FILE, tmp / TOKENS_FILE)
        if (lang_dir / "HLG.pt").is_file():
            k2_to_openfst(load_fsa(lang_dir / "HLG.pt")).write(str(tmp / HLG_FST))
            files.append(HLG_FST)
        meta = {
            "format": "sherpa-onnx-zipformer-ctc",
            "checkpoints": checkpoints,
            "features": _feature_options(config),
            "opset": opset,
            "files": files,
            "torch_version": torch.__version__,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    summary = OnnxExportSummary(
        out_dir=out_dir,
        checkpoints=checkpoints,
        files=files + ["meta.json"],
        model_bytes=(out_dir / MODEL_FILE).stat().st_size,
        int8_bytes=(out_dir / MODEL_INT8_FILE).stat().st_size if int8 else 0,
    )
    log.info("Exported ONNX for sherpa-onnx (%s) to %s", ", ".join(files), out_dir)
    return summary
