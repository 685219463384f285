"""Learning-rate schedules: linear warm-up, then Noam, cosine or step decay."""

import math
from typing import Callable

import torch

from asrk2.experiment import OptimConfig

__all__ = ["noam_lambda", "lr_factor", "make_scheduler"]


def noam_lambda(warmup_steps: int) -> Callable[[int], float]:
    """Noam: linear warm-up to 1 at ``warmup_steps``, then sqrt(warmup / step)."""

    def factor(step: int) -> float:
        step = max(step, 1)
        return min(step / warmup_steps, math.sqrt(warmup_steps / step))

    return factor


def lr_factor(config: OptimConfig) -> Callable[[int], float]:
    """The multiplier of ``peak_lr`` as a function of the optimizer step.

    Args:
      config: schedule type and its parameters.
    Returns:
      ``step -> factor``, rising linearly from ``1 / warmup_steps`` to 1 at
      ``warmup_steps``, then decaying as configured.
    """
    warmup = config.warmup_steps
    if config.scheduler == "noam":
        return noam_lambda(warmup)

    def factor(step: int) -> float:
        step = max(step, 1)
        if step < warmup:
            return step / warmup
        if config.scheduler == "step":
            return config.step_gamma ** ((step - warmup) // config.step_size)
        progress = min(1.0, (step - warmup) / (config.total_steps - warmup))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine

    return factor


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR over ``optimizer`` (lr = ``peak_lr``), stepped once per update."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
