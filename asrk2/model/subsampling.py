"""Conv2d front end that subsamples fbank frames by 4 before the conformer."""

from typing import Final

import torch
from torch import nn

from asrk2.frames import MIN_INPUT_FRAMES

__all__ = ["Conv2dSubsampling"]


class Conv2dSubsampling(nn.Module):
    """Two stride-2 Conv2d + ReLU layers over (time, freq), then a linear projection.

    Args:
      num_features: input feature dimension C, e.g. 80 fbank bins.
      d_model: output dimension.
      channels: conv channels; default ``d_model``. The second conv runs at a
        quarter of the frame rate on ``channels**2`` weights per position and
        dominates the cost of small models, so fewer channels buy speed.
    """

    # A class constant, since TorchScript cannot read module-level globals.
    min_input_frames: Final[int] = MIN_INPUT_FRAMES

    def __init__(self, num_features: int, d_model: int, channels: int = 0) -> None:
        super().__init__()
        if num_features < MIN_INPUT_FRAMES:
            # The frequency axis is subsampled like time and must not vanish.
            raise ValueError(
                f"num_features must be >= {MIN_INPUT_FRAMES}, got {num_features}"
            )
        channels = channels if channels > 0 else d_model
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=2),
            nn.ReLU(),
        )
        freq_out = ((num_features - 1) // 2 - 1) // 2
        self.out = nn.Linear(channels * freq_out, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Subsamples a padded batch.

        Args:
          x: features, shape (N, T, C), with ``T >= MIN_INPUT_FRAMES``.
        Returns:
          Shape (N, T', d_model) with ``T' = subsampled_lengths(T)``.
        """
        if x.size(1) < self.min_input_frames:
            raise ValueError(
                f"need at least {self.min_input_frames} input frames for one "
                f"output frame, got {x.size(1)}"
            )
        x = self.conv(x.unsqueeze(1))  # (N, channels, T', C')
        n, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(n, t, c * f))
