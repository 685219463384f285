"""The experiment configuration: one typed dataclass tree loaded from YAML.

A recipe's YAML, a resolved ``config.yaml`` beside the checkpoints and the
config stored in each checkpoint are all an :class:`ExperimentConfig`. The
stored ones carry a ``version``; a config written by an older asrk2 is
migrated when read (:func:`experiment_config_from_checkpoint`), so renamed
fields never break decoding an old experiment.
"""

import copy
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Literal, Tuple

from asrk2.beams import SearchBeams
from asrk2.config import ConfigError, from_dict
from asrk2.data.datamodule import DataConfig
from asrk2.features.fbank import FbankConfig
from asrk2.losses.combiner import LossConfig
from asrk2.model.ctc_model import CtcModel, CtcModelConfig

__all__ = [
    "LangConfig",
    "OptimConfig",
    "TrainConfig",
    "DecodeConfig",
    "ExperimentConfig",
    "LossConfig",
    "CONFIG_VERSION",
    "build_model",
    "experiment_config_from_checkpoint",
]

log = logging.getLogger(__name__)

# Version 2: LF-MMI options nested under loss.mmi (were loss.mmi_*/den_scale).
CONFIG_VERSION = 2


@dataclass
class LangConfig:
    """Token inventory. ``nbpe`` counts every piece incl. ``<blk>`` and ``<unk>``."""

    nbpe: int = 500
    bpe_model_type: Literal["unigram", "bpe"] = "unigram"


@dataclass
class OptimConfig:
    """AdamW with linear warm-up, then a Noam, cosine or step decay.

    Attributes:
      peak_lr: learning rate reached at the end of warm-up.
      warmup_steps: optimizer steps of linear warm-up.
      weight_decay: AdamW weight decay.
      grad_clip: max global gradient norm (<= 0 disables clipping).
      scheduler: after warm-up, ``noam`` decays as 1/sqrt(step), ``cosine``
        follows a half cosine to ``min_lr_ratio * peak_lr`` at ``total_steps``,
        ``step`` multiplies by ``step_gamma`` every ``step_size`` steps.
      total_steps: length of the cosine schedule in optimizer steps.
      min_lr_ratio: cosine floor as a fraction of ``peak_lr``.
      step_size: optimizer steps between decays of the step schedule.
      step_gamma: decay factor of the step schedule.
    """

    peak_lr: float = 2e-3
    warmup_steps: int = 500
    weight_decay: float = 1e-3
    grad_clip: float = 5.0
    scheduler: Literal["noam", "cosine", "step"] = "noam"
    total_steps: int = 0
    min_lr_ratio: float = 0.0
    step_size: int = 10000
    step_gamma: float = 0.5

    def __post_init__(self) -> None:
        if self.warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {self.warmup_steps}")
        if self.scheduler == "cosine" and self.total_steps <= self.warmup_steps:
            raise ValueError(
                "the cosine schedule needs optim.total_steps > warmup_steps, got "
                f"{self.total_steps}"
            )
        if self.scheduler == "step" and self.step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {self.step_size}")


@dataclass
class TrainConfig:
    """Loop options.

    A "step" is one batch taken from the sampler, a skipped one included; it
    is the unit of ``max_steps``, ``save_every_n`` and checkpoint names.

    Attributes:
      num_epochs: passes over the training cuts.
      seed: seeds torch, numpy, python (plus the rank) and the sampler.
      log_interval: steps between log lines and TensorBoard points.
      num_threads: torch intra-op threads of the whole job on one machine,
        divided among its processes (0: torch's default, or the cores divided
        among the processes when there are several).
      max_steps: stop (with a checkpoint) after this many steps; 0: no limit.
      save_every_n: also save ``checkpoint-<step>.pt`` every N steps; 0: only
        ``epoch-<N>.pt`` at the end of each epoch.
      keep_last_n: step checkpoints kept (older ones are deleted); 0 keeps all.
      amp: mixed precision (fp16 autocast + grad scaler) on CUDA; no effect on CPU.
      ddp_backend: ``auto`` is nccl on CUDA, gloo on CPU.
      max_bad_batches: stop when more batches than this had a non-finite loss
        or gradient (each one is skipped, counted and logged with its cut ids).
      max_consecutive_bad: stop when this many batches in a row were skipped.
      tensorboard: write TensorBoard events under ``exp_dir/tensorboard``.
      cmvn_max_cuts: global CMVN statistics (``model.encoder.global_cmvn``)
        come from the first this many training cuts.
    """

    num_epochs: int = 10
    seed: int = 42
    log_interval: int = 20
    num_threads: int = 0
    max_steps: int = 0
    save_every_n: int = 0
    keep_last_n: int = 3
    amp: bool = True
    ddp_backend: Literal["auto", "gloo", "nccl"] = "auto"
    max_bad_batches: int = 20
    max_consecutive_bad: int = 5
    tensorboard: bool = True
    cmvn_max_cuts: int = 20000

    def __post_init__(self) -> None:
        if self.num_epochs < 1:
            raise ValueError(f"num_epochs must be >= 1, got {self.num_epochs}")
        if self.log_interval < 1:
            raise ValueError(f"log_interval must be >= 1, got {self.log_interval}")
        for name in ("max_steps", "save_every_n", "keep_last_n", "num_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.cmvn_max_cuts < 1:
            raise ValueError(f"cmvn_max_cuts must be >= 1, got {self.cmvn_max_cuts}")


@dataclass
class DecodeConfig(SearchBeams):
    """The search beams decoding and streaming use by default, and averaging.

    Attributes:
      avg: epochs averaged by the recipe's decode stage.
    """

    avg: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.avg < 1:
            raise ValueError(f"avg must be >= 1, got {self.avg}")


@dataclass
class ExperimentConfig:
    """Everything a recipe configures; saved resolved beside every checkpoint.

    Attributes:
      version: the layout of this config (:data:`CONFIG_VERSION`); recipes
        leave it out.
    """

    version: int = CONFIG_VERSION
    lang: LangConfig = field(default_factory=LangConfig)
    fbank: FbankConfig = field(default_factory=FbankConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: CtcModelConfig = field(default_factory=CtcModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def _v1_to_v2(data: Dict[str, Any]) -> Dict[str, Any]:
    """Nests the flat LF-MMI fields of version 1 under ``loss.mmi``."""
    loss = data.get("loss", {})
    renamed = {
        "den_scale": "den_scale",
        "mmi_bigram_smoothing": "bigram_smoothing",
        "mmi_output_beam": "output_beam",
        "mmi_den_pruned": "den_pruned",
    }
    mmi = {new: loss.pop(old) for old, new in renamed.items() if old in loss}
    if mmi:
        loss["mmi"] = mmi
    return data


# _MIGRATIONS[v] turns a version-v config into a version-(v + 1) one.
_MIGRATIONS: Dict[int, Callable[[Dict[str, Any]], Dict[str, Any]]] = {1: _v1_to_v2}


def experiment_config_from_checkpoint(
    data: Dict[str, Any], where: str = "checkpoint"
) -> ExperimentConfig:
    """The :class:`ExperimentConfig` of a stored config of any version.

    Args:
      data: the config mapping saved in a checkpoint (no ``version``: 1).
      where: names the source in error messages.
    Raises:
      ConfigError: for a config newer than this asrk2, or one that does not
        fit after migration (naming ``where`` and both versions).
    """
    data = copy.deepcopy(data)
    version = data.pop("version", 1)
    if not isinstance(version, int) or version > CONFIG_VERSION:
        raise ConfigError(
            f"{where}: config version {version!r} is newer than this asrk2 reads "
            f"({CONFIG_VERSION}); upgrade asrk2"
        )
    for v in range(version, CONFIG_VERSION):
        data = _MIGRATIONS[v](data)
    try:
        return from_dict(ExperimentConfig, data, where)
    except ConfigError as e:
        raise ConfigError(
            f"{e} (a version-{version} config read by asrk2 config version "
            f"{CONFIG_VERSION})"
        ) from None


def build_model(
    config: ExperimentConfig, vocab_size: int
) -> Tuple[CtcModel, ExperimentConfig]:
    """Builds the model and the resolved config it was built from.

    The resolved config has the vocabulary size of the lang dir and, without
    attention loss (e.g. ``loss.ctc_weight: 1``), no decoder layers (without
    ``loss.reverse_weight``, no right-to-left ones): it is what checkpoints
    store, so that they load. ``config`` is left as it is.

    Returns:
      ``(model, resolved_config)``.
    """
    att = config.loss.attention_weight
    reverse = config.loss.reverse_weight
    decoder = config.model.decoder
    if att == 0 and decoder.num_layers > 0:
        log.info("Attention weight is 0: training without the attention decoder")
        decoder = dataclasses.replace(decoder, num_layers=0, num_r2l_layers=0)
    if att > 0 and decoder.num_layers == 0:
        raise ValueError(
            f"loss attention weight is {att} but model.decoder.num_layers is 0"
        )
    if reverse == 0 and decoder.num_r2l_layers > 0:
        log.info("reverse_weight is 0: training without the right-to-left decoder")
        decoder = dataclasses.replace(decoder, num_r2l_layers=0)
    if reverse > 0 and decoder.num_r2l_layers == 0:
        raise ValueError(
            f"loss.reverse_weight is {reverse} but model.decoder.num_r2l_layers is 0"
        )
    model_config = dataclasses.replace(
        config.model, vocab_size=vocab_size, decoder=decoder
    )
    resolved = dataclasses.replace(config, model=model_config)
    return CtcModel(model_config), resolved
