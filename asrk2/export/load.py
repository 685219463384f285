"""Loading an exported model: needs only torch (and k2 / sentencepiece for graphs).

Nothing here imports ``asrk2.model`` or ``asrk2.train``: the TorchScript file
carries the network's code, ``meta.json`` everything else a decoder needs, so
a deployment can run without the training code.

Example::

    model = load_exported("exp/demo/export")       # or .to("cuda") for float
    log_probs, lens = model(features, feature_lens)  # (N, T', V), (N,)
    state = model.init_state(batch_size=1)
    y, state = model.forward_chunk(features[:, :67], state)  # chunk of 16
"""

import functools
import json
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, TypeVar, Union

import torch

from asrk2.frames import chunk_input_frames

__all__ = [
    "ENCODER_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "META_FILE",
    "ExportedModel",
    "ExportedState",
    "load_exported",
    "read_meta",
]

FORMAT = "asrk2-ctc-torchscript"
FORMAT_VERSION = 1
ENCODER_FILE = "encoder.pt"
META_FILE = "meta.json"

PathLike = Union[str, Path]
F = TypeVar("F", bound=Callable[..., Any])


def _inference(method: F) -> F:
    """Runs ``method`` without autograd and with TorchScript's graph optimiser off.

    The profiling executor re-optimises a method for every new input shape
    it sees, and streaming and variable-length batches keep changing shapes:
    that cost 1-4 s per call for the first calls (tiny model, 1 thread),
    while the unoptimised interpreter ran as fast as eager mode, since the
    CPU has no fuser to gain from. The switch is thread-local and restored.
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.no_grad(), torch.jit.optimized_execution(False):
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class ExportedState(NamedTuple):
    """The streaming caches of an exported encoder, as plain tensors.

    Same layout as ``asrk2.model.StreamingState``.

    Attributes:
      features: buffered input frames, (N, F, C), F < 7.
      attn: per layer, cached normalised attention inputs, (num_layers, N, L, d_model).
      conv: per layer, the last ``K - 1`` depthwise conv inputs,
        (num_layers, N, d_model, K - 1).
    """

    features: torch.Tensor
    attn: torch.Tensor
    conv: torch.Tensor


class ExportedModel:
    """An exported encoder + CTC layer with the interface decoders use on ``CtcModel``.

    ``forward``/``__call__``, ``encode``, ``ctc_log_probs``, ``init_state``,
    ``forward_chunk``, ``decoder`` (always None: the attention decoder is not
    exported) and ``encoder.chunk_input_frames`` behave like those of
    ``asrk2.model.CtcModel`` in eval mode under ``torch.no_grad()`` (an
    export is for inference only; see :func:`_inference`), so
    ``asrk2.decode.offline.decode_methods`` and
    ``asrk2.decode.streaming.MultiStreamDecoder`` accept either.

    Args:
      module: the TorchScript module of ``encoder.pt``.
      meta: the contents of ``meta.json``.
      export_dir: the export directory; also a lang dir (``bpe.model``,
        ``tokens.txt``, graphs) for the decoders.
    """

    decoder = None
    r2l_decoder = None

    def __init__(
        self, module: torch.jit.ScriptModule, meta: Dict[str, Any], export_dir: Path
    ) -> None:
        self.module = module
        self.meta = meta
        self.export_dir = Path(export_dir)
        self.device = torch.device("cpu")

    @property
    def lang_dir(self) -> Path:
        """Where the copied ``bpe.model``, ``tokens.txt`` and graphs are."""
        return self.export_dir

    @property
    def subsampling_factor(self) -> int:
        """Input frames per output frame (4)."""
        return int(self.meta["subsampling_factor"])

    @property
    def num_features(self) -> int:
        """C, the input feature dimension."""
        return int(self.meta["num_features"])

    @property
    def vocab_size(self) -> int:
        """V, the CTC output units including the blank (id 0)."""
        return int(self.meta["vocab_size"])

    @property
    def encoder(self) -> "ExportedModel":
        """This object: code written for ``CtcModel`` calls
        ``model.encoder.chunk_input_frames``."""
        return self

    def chunk_input_frames(self, chunk_size: int, first: bool) -> int:
        """See :func:`asrk2.frames.chunk_input_frames`."""
        return chunk_input_frames(chunk_size, first, self.subsampling_factor)

    def to(self, device: Union[str, torch.device]) -> "ExportedModel":
        """Moves the model to ``device`` (in place; returns self).

        Raises:
          ValueError: for an int8 model and a non-CPU device (dynamic int8
            kernels exist for the CPU only).
        """
        device = torch.device(device)
        if self.meta["int8"] and device.type != "cpu":
            raise ValueError(
                f"{self.export_dir}: an int8 export runs on the CPU only, "
                f"not on {device}"
            )
        self.module.to(device)
        self.device = device
        return self

    def eval(self) -> "ExportedModel":
        """No-op (an export is always in eval mode); returns self."""
        return self

    def __call__(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        chunk_size: Optional[int] = None,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Same as :meth:`forward`."""
        return self.forward(features, feature_lens, chunk_size, left_context_frames)

    @_inference
    def forward(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        chunk_size: Optional[int] = None,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probs of a padded batch.

        Args:
          features: (N, T, C) fbank features, padded.
          feature_lens: (N,) valid frames per utterance.
          chunk_size: attention chunk in output frames; None or <= 0 for
            full context.
          left_context_frames: visible frames before a chunk; None for the
            model's default (``meta.json``), < 0 for all.
        Returns:
          ``(log_probs (N, T', V), out_lens (N,))``.
        """
        if chunk_size is None or chunk_size <= 0:
            return self.module(features, feature_lens)
        encoder_out, out_lens = self.encode(
            features, feature_lens, chunk_size, left_context_frames
        )
        return self.ctc_log_probs(encoder_out), out_lens

    @_inference
    def encode(
        self,
        features: torch.Tensor,
        feature_lens: torch.Tensor,
        chunk_size: Optional[int] = None,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encoder output of a padded batch; arguments as for :meth:`forward`.

        Returns:
          ``(encoder_out (N, T', d_model), out_lens (N,))``.
        """
        return self.module.encode(
            features,
            feature_lens,
            -1 if chunk_size is None else chunk_size,
            self._left_context(left_context_frames),
        )

    @_inference
    def ctc_log_probs(self, encoder_out: torch.Tensor) -> torch.Tensor:
        """Maps encoder output (N, T', d_model) to CTC log-probs (N, T', V)."""
        return self.module.ctc_log_probs(encoder_out)

    @_inference
    def init_state(
        self, batch_size: int = 1, device: Optional[torch.device] = None
    ) -> ExportedState:
        """The streaming caches before the first chunk of ``batch_size`` streams.

        Args:
          batch_size: N.
          device: where the caches live; default the model's device.
        """
        caches = self.module.init_cache(batch_size)
        return ExportedState(*(c.to(device or self.device) for c in caches))

    @_inference
    def forward_chunk(
        self,
        features: torch.Tensor,
        state: ExportedState,
        left_context_frames: Optional[int] = None,
    ) -> Tuple[torch.Tensor, ExportedState]:
        """CTC log-probs of the next feature frames of N streams.

        Args:
          features: new frames (N, T, C); :meth:`chunk_input_frames` per call
            reproduces the offline chunked output of a causal encoder.
          state: from :meth:`init_state` or the previous call.
          left_context_frames: attention cache size; None for the default.
        Returns:
          ``(log_probs (N, T', V), new_state)``; T' may be 0.
        """
        log_probs, *caches = self.module.forward_chunk(
            features, *state, self._left_context(left_context_frames)
        )
        return log_probs, ExportedState(*caches)

    def _left_context(self, left_context_frames: Optional[int]) -> int:
        if left_context_frames is None:
            return int(self.meta["left_context_frames"])
        return left_context_frames

    def load_bpe(self) -> Any:
        """The ``SentencePieceProcessor`` of the export's ``bpe.model``."""
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor()
        sp.load(str(self._file("bpe.model")))
        return sp

    def _file(self, name: str) -> Path:
        path = self.export_dir / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: not in the export (exported: {self.meta['files']})"
            )
        return path


def read_meta(export_dir: PathLike) -> Dict[str, Any]:
    """Reads and checks ``meta.json`` of an export directory.

    Raises:
      FileNotFoundError: no ``meta.json`` (not an export, or an interrupted one:
        it is written last).
      ValueError: another format or a newer format version.
    """
    path = Path(export_dir) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; is {export_dir} an export?")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT or meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path}: format {meta.get('format')!r} version "
            f"{meta.get('format_version')}, expected {FORMAT!r} <= {FORMAT_VERSION}"
        )
    return meta


def load_exported(
    export_dir: PathLike, device: Union[str, torch.device] = "cpu"
) -> ExportedModel:
    """Loads a directory written by ``asrk2.export.export_model``.

    Args:
      export_dir: holds ``encoder.pt``, ``meta.json`` and the lang files.
      device: where to run; int8 exports need ``cpu``.
    Returns:
      The model, in eval mode, on ``device``.
    """
    export_dir = Path(export_dir)
    meta = read_meta(export_dir)
    module = torch.jit.load(str(export_dir / ENCODER_FILE), map_location="cpu")
    return ExportedModel(module.eval(), meta, export_dir).to(device)
