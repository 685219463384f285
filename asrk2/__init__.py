"""asrk2: a Kaldi-compatible speech recognition pipeline on k2 and lhotse."""

from asrk2 import _compat  # noqa: F401  (must run before lhotse samplers are built)

__version__ = "0.1.0"
