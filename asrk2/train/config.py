"""The experiment configuration: one typed dataclass tree loaded from YAML."""
from dataclasses import dataclass, field
from typing import Literal

from asrk2.data.datamodule import DataConfig
from asrk2.features.fbank import FbankConfig
from asrk2.model.ctc_model import CtcModelConfig

__all__ = ["LangConfig", "OptimConfig", "TrainConfig", "DecodeConfig", "ExperimentConfig"]


@dataclass
class LangConfig:
    """Token inventory. ``nbpe`` counts every piece incl. ``<blk>`` and ``<unk>``."""

    nbpe: int = 500
    bpe_model_type: Literal["unigram", "bpe"] = "unigram"


@dataclass
class OptimConfig:
    """AdamW with a Noam-style schedule: linear warm-up, then 1/sqrt(step) decay.

    Attributes:
      peak_lr: learning rate reached at the end of warm-up.
      warmup_steps: optimizer steps of linear warm-up.
      weight_decay: AdamW weight decay.
      grad_clip: max global gradient norm (<= 0 disables clipping).
    """

    peak_lr: float = 2e-3
    warmup_steps: int = 500
    weight_decay: float = 1e-3
    grad_clip: float = 5.0


@dataclass
class TrainConfig:
    """Loop options.

    Attributes:
      num_epochs: passes over the training cuts.
      seed: seeds torch, numpy, python and the sampler.
      log_interval: steps between log lines.
      num_threads: torch intra-op threads (0 keeps torch's default).
    """

    num_epochs: int = 10
    seed: int = 42
    log_interval: int = 20
    num_threads: int = 0


@dataclass
class DecodeConfig:
    """k2 pruned-intersection options and checkpoint averaging for decoding."""

    search_beam: float = 20.0
    output_beam: float = 8.0
    min_active_states: int = 30
    max_active_states: int = 10000
    avg: int = 1


@dataclass
class ExperimentConfig:
    """Everything a recipe configures; saved resolved beside every checkpoint."""

    lang: LangConfig = field(default_factory=LangConfig)
    fbank: FbankConfig = field(default_factory=FbankConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: CtcModelConfig = field(default_factory=CtcModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
