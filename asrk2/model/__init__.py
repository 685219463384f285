"""asrk2.model: the conformer encoder, the attention decoder and the acoustic model."""

from asrk2.model.conformer import Conformer, ConformerConfig, StreamingState
from asrk2.model.ctc_model import CtcModel, CtcModelConfig
from asrk2.model.decoder import AttentionDecoder, DecoderConfig

__all__ = [
    "AttentionDecoder",
    "Conformer",
    "ConformerConfig",
    "CtcModel",
    "CtcModelConfig",
    "DecoderConfig",
    "StreamingState",
]
