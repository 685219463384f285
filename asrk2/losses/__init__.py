"""asrk2.losses: training losses computed with k2."""
from asrk2.losses.ctc import k2_ctc_loss

__all__ = ["k2_ctc_loss"]
