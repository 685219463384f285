"""asrk2.losses: CTC and LF-MMI with k2, attention losses, and their combination."""

from asrk2.losses.combiner import LossConfig, LossModule
from asrk2.losses.ctc import k2_ctc_loss
from asrk2.losses.dice import dice_loss
from asrk2.losses.focal import ctc_focal_loss, focal_loss, sigmoid_focal_loss
from asrk2.losses.label_smoothing import label_smoothing_loss
from asrk2.losses.mmi import LfMmiLoss, MmiOptions, mmi_loss

__all__ = [
    "LfMmiLoss",
    "LossConfig",
    "LossModule",
    "MmiOptions",
    "ctc_focal_loss",
    "dice_loss",
    "focal_loss",
    "k2_ctc_loss",
    "label_smoothing_loss",
    "mmi_loss",
    "sigmoid_focal_loss",
]
