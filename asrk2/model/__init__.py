"""asrk2.model: the conformer encoder and the CTC acoustic model."""
from asrk2.model.conformer import Conformer, ConformerConfig
from asrk2.model.ctc_model import CtcModel, CtcModelConfig
from asrk2.model.subsampling import SUBSAMPLING_FACTOR, subsampled_lengths

__all__ = [
    "SUBSAMPLING_FACTOR",
    "Conformer",
    "ConformerConfig",
    "CtcModel",
    "CtcModelConfig",
    "subsampled_lengths",
]
