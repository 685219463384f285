"""asrk2.export: a trained model as TorchScript + graphs, and loading it back.

Writing (:mod:`asrk2.export.build`, needs the training code)::

    export_model("exp/demo", epoch=16, avg=2, lang_dir="data/lang_bpe_100",
                 out_dir="exp/demo/export", quantize=False)

Loading (:mod:`asrk2.export.load`, needs only torch, plus k2/sentencepiece
for graphs and BPE)::

    model = load_exported("exp/demo/export")

The writing side is imported on first use, so that loading never imports
``asrk2.model`` or ``asrk2.train``.
"""

from typing import Any

from asrk2.export.load import (
    ExportedModel,
    ExportedState,
    load_exported,
    read_meta,
)

__all__ = [
    "ExportSummary",
    "ExportedModel",
    "ExportedState",
    "ScriptableCtcModel",
    "export_model",
    "load_exported",
    "quantize_int8",
    "read_meta",
    "script_model",
]

_BUILD_NAMES = {
    "ExportSummary",
    "ScriptableCtcModel",
    "export_model",
    "quantize_int8",
    "script_model",
}


def __getattr__(name: str) -> Any:
    """Imports the writing side (and with it the model code) only when asked for."""
    if name in _BUILD_NAMES:
        from asrk2.export import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
