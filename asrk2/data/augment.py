"""Training-time augmentation: audio transforms (lhotse) and SpecAugment.

Audio-level augmentation uses lhotse's cut transforms, applied to each
training batch before on-the-fly fbank: speed perturbation
(:class:`~lhotse.dataset.PerturbSpeed`), volume
(:class:`~lhotse.dataset.PerturbVolume`), additive noise at a random SNR
(:class:`~lhotse.dataset.CutMix` over a noise manifest, see
:mod:`asrk2.data.noise`) and reverberation
(:class:`~lhotse.dataset.ReverbWithImpulseResponse`, which synthesises a room
impulse response per cut when no RIR recordings are given).

SpecAugment is applied by the trainer to the feature batch
(:class:`BatchSpecAugment`), not in the dataset, for two reasons:

- lhotse's ``SpecAugment`` fills masks with one scalar, the mean of the whole
  padded matrix, padding (log 1e-10 = -23) included, and may place masks in
  the padding; a short cut in a long bucket then gets masks that look like
  deep silence. Here each cut is augmented on its own valid frames only, and
  masks take the per-bin mean of the training features (the global CMVN
  mean), which the encoder's normaliser maps to exactly 0: "no information".
- its strength can follow the training step (start after warm-up, then ramp
  up), which a dataset in a worker process cannot see.
"""

import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Type, Union

import torch
from lhotse import CutSet, RecordingSet
from lhotse.dataset import (
    CutMix,
    PerturbSpeed,
    PerturbVolume,
    ReverbWithImpulseResponse,
)
from lhotse.dataset.signal_transforms import time_warp

__all__ = [
    "AudioAugmentConfig",
    "BatchSpecAugment",
    "SpecAugmentConfig",
    "describe_augmentation",
    "make_cut_transforms",
]

log = logging.getLogger(__name__)

CutTransform = Callable[[CutSet], CutSet]


@dataclass
class SpecAugmentConfig:
    """SpecAugment (https://arxiv.org/abs/1904.08779) and its schedule.

    Attributes:
      enabled: apply SpecAugment to training batches.
      time_warp_factor: maximum shift of the warp point in frames; 0 disables
        time warping. Warping moves a point by up to this many frames, so it
        must stay well below the length of the shortest cuts.
      num_frame_masks: time masks per cut (at most; see the fraction).
      frames_mask_size: maximum width of a time mask in frames.
      max_frames_mask_fraction: time masks cover at most this fraction of a
        cut's frames in all (lhotse's and icefall's rule), so short cuts get
        fewer and narrower masks.
      num_feature_masks: frequency masks per cut.
      features_mask_size: maximum width of a frequency mask in bins.
      p: probability that a cut is augmented once the ramp is over.
      start_step: optimizer steps with no SpecAugment at all (e.g. until CTC
        has left the all-blank plateau).
      ramp_steps: after ``start_step``, the probability grows linearly from 0
        to ``p`` over this many steps; 0 switches it on at once.
    """

    enabled: bool = True
    time_warp_factor: int = 0
    num_frame_masks: int = 2
    frames_mask_size: int = 20
    max_frames_mask_fraction: float = 0.2
    num_feature_masks: int = 2
    features_mask_size: int = 15
    p: float = 0.9
    start_step: int = 0
    ramp_steps: int = 0

    def __post_init__(self) -> None:
        counts = {
            "time_warp_factor": self.time_warp_factor,
            "num_frame_masks": self.num_frame_masks,
            "frames_mask_size": self.frames_mask_size,
            "num_feature_masks": self.num_feature_masks,
            "features_mask_size": self.features_mask_size,
            "start_step": self.start_step,
            "ramp_steps": self.ramp_steps,
        }
        for name, value in counts.items():
            if value < 0:
                raise ValueError(f"data.spec_augment.{name} must be >= 0, got {value}")
        for name in ("p", "max_frames_mask_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"data.spec_augment.{name} must be in [0, 1], got {value}"
                )

    def probability(self, step: int) -> float:
        """Probability of augmenting a cut at optimizer step ``step``."""
        if not self.enabled or step < self.start_step:
            return 0.0
        if self.ramp_steps == 0:
            return self.p
        return self.p * min(1.0, (step - self.start_step) / self.ramp_steps)


class BatchSpecAugment:
    """SpecAugment of a padded feature batch, cut by cut on valid frames only.

    Random numbers come from torch's and numpy's global generators (seeded
    by the trainer and saved in its checkpoints), so a resumed run draws the
    same masks.

    Args:
      config: the SpecAugment settings.
      fill: per-bin mask value, shape (C,); None uses each cut's own per-bin
        mean over its valid frames.
    """

    def __init__(
        self, config: SpecAugmentConfig, fill: Optional[torch.Tensor] = None
    ) -> None:
        self.config = config
        self.fill = fill

    def __call__(
        self, features: torch.Tensor, feature_lens: torch.Tensor, step: int
    ) -> torch.Tensor:
        """Augments a batch.

        Args:
          features: (N, T, C) padded features (not modified).
          feature_lens: (N,) valid frames per row.
          step: the optimizer step, for the schedule.
        Returns:
          The augmented features, (N, T, C); padding is left as it was.
        """
        p = self.config.probability(step)
        if p <= 0.0:
            return features
        out = features.clone()
        draws = torch.rand(features.size(0))
        for i, n in enumerate(feature_lens.tolist()):
            if draws[i] < p and n > 0:
                out[i, :n] = self._augment_one(out[i, :n])
        return out

    def _augment_one(self, x: torch.Tensor) -> torch.Tensor:
        """Warps and masks one (T, C) matrix."""
        cfg = self.config
        num_frames, num_bins = x.shape
        if cfg.time_warp_factor > 0:
            x = time_warp(x, factor=cfg.time_warp_factor)
        fill = self.fill if self.fill is not None else x.mean(dim=0)
        fill = fill.to(x.dtype)
        for _ in range(cfg.num_feature_masks):
            width = int(torch.randint(0, cfg.features_mask_size + 1, ()))
            if 0 < width < num_bins:
                start = int(torch.randint(0, num_bins - width + 1, ()))
                x[:, start : start + width] = fill[start : start + width]
        budget = cfg.max_frames_mask_fraction * num_frames
        if cfg.frames_mask_size > 0 and budget >= 1:
            masks = min(cfg.num_frame_masks, math.ceil(budget / cfg.frames_mask_size))
            max_width = int(min(cfg.frames_mask_size, budget // max(masks, 1)))
            for _ in range(masks):
                width = int(torch.randint(0, max_width + 1, ()))
                if 0 < width < num_frames:
                    start = int(torch.randint(0, num_frames - width + 1, ()))
                    x[start : start + width] = fill
        return x


@dataclass
class AudioAugmentConfig:
    """Audio-level augmentation of training cuts (needs on-the-fly features).

    Attributes:
      speed_factors: speed perturbation factors, e.g. ``[0.9, 1.1]``; each is
        as likely as the unchanged 1.0. Empty: off.
      volume_prob: probability of scaling a cut's volume; 0: off.
      volume_range: ``[low, high]`` gain factors of the volume perturbation.
      noise_cuts: manifest of noise cuts (``local/make_noise.py``) mixed into
        training cuts; empty: no additive noise. A relative path is taken from
        the working directory (the recipe directory in ``make``).
      noise_prob: probability of adding noise to a cut.
      snr_range: ``[low, high]`` signal-to-noise ratio in dB, drawn uniformly.
      reverb_prob: probability of reverberating a cut with a room impulse
        response; 0: off.
      rir_recordings: manifest of room impulse responses to draw from
        (``local/make_noise.py`` simulates a bank); empty: lhotse simulates
        one per cut, which is about 30x slower than the rest of the pipeline.
    """

    speed_factors: List[float] = field(default_factory=list)
    volume_prob: float = 0.0
    volume_range: List[float] = field(default_factory=lambda: [0.5, 1.5])
    noise_cuts: str = ""
    noise_prob: float = 0.5
    snr_range: List[float] = field(default_factory=lambda: [10.0, 30.0])
    reverb_prob: float = 0.0
    rir_recordings: str = ""

    def __post_init__(self) -> None:
        where = "data.augment"
        for f in self.speed_factors:
            if not f > 0:
                raise ValueError(f"{where}.speed_factors must all be > 0, got {f}")
        for name in ("volume_prob", "noise_prob", "reverb_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{where}.{name} must be in [0, 1], got {value}")
        for name in ("volume_range", "snr_range"):
            value = getattr(self, name)
            if len(value) != 2 or not value[0] <= value[1]:
                raise ValueError(
                    f"{where}.{name} must be [low, high] with low <= high, got {value}"
                )
        if not self.volume_range[0] > 0:
            raise ValueError(
                f"{where}.volume_range gains must be > 0, got {self.volume_range}"
            )

    @property
    def active(self) -> bool:
        """Whether any audio transform is switched on."""
        return bool(
            self.speed_factors
            or self.volume_prob
            or self.noise_cuts
            or self.reverb_prob
        )


def _load_manifest(
    path: str, setting: str, kind: Union[Type[CutSet], Type[RecordingSet]]
):
    """Reads a noise (CutSet) or RIR (RecordingSet) manifest and checks that its
    audio can be read; a missing, empty or unreadable one is an error naming
    the setting, raised before training starts."""
    where = f"data.augment.{setting} ({path})"
    if not Path(path).is_file():
        raise ValueError(f"{where}: no such file; make it with local/make_noise.py")
    try:
        items = kind.from_file(path)
    except Exception as e:
        raise ValueError(f"{where}: cannot be read: {e}") from e
    items = items.to_eager() if items is not None else kind()
    if len(items) == 0:
        raise ValueError(f"{where}: the manifest holds no entries")
    first = next(iter(items))
    if kind is CutSet and not first.has_recording:
        raise ValueError(f"{where}: cut {first.id} has no audio")
    try:
        first.load_audio()
    except Exception as e:
        raise ValueError(f"{where}: audio of {first.id} unreadable: {e}") from e
    return items


def make_cut_transforms(config: AudioAugmentConfig, seed: int) -> List[CutTransform]:
    """The lhotse cut transforms of ``config``, in the order they are applied.

    Speed first (it changes the duration, and the noise is then mixed over the
    new length), then reverberation, then noise (noise is not reverberated
    with the speech: it comes from elsewhere in the room), then volume.

    Args:
      config: what is active.
      seed: seeds each transform's own random generator.
    Returns:
      Transforms for ``K2SpeechRecognitionDataset(cut_transforms=...)``.
    Raises:
      ValueError: if the noise manifest cannot be used (checked here, before
        training starts, rather than in the middle of an epoch).
    """
    transforms: List[CutTransform] = []
    if config.speed_factors:
        factors = list(config.speed_factors)
        p = len(factors) / (len(factors) + 1)  # 1.0x as likely as each factor
        transforms.append(
            PerturbSpeed(factors=factors, p=p, randgen=random.Random(seed))
        )
    if config.reverb_prob > 0:
        rirs = None
        if config.rir_recordings:
            rirs = _load_manifest(config.rir_recordings, "rir_recordings", RecordingSet)
        transforms.append(
            ReverbWithImpulseResponse(
                rir_recordings=rirs,
                p=config.reverb_prob,
                randgen=random.Random(seed + 1),
            )
        )
    if config.noise_cuts:
        transforms.append(
            CutMix(
                _load_manifest(config.noise_cuts, "noise_cuts", CutSet),
                snr=tuple(config.snr_range),
                p=config.noise_prob,
                pad_to_longest=False,
                seed=random.Random(seed + 2),
                random_mix_offset=True,
            )
        )
    if config.volume_prob > 0:
        low, high = config.volume_range
        transforms.append(
            PerturbVolume(
                p=config.volume_prob,
                scale_low=low,
                scale_high=high,
                randgen=random.Random(seed + 3),
            )
        )
    return transforms


def describe_augmentation(
    audio: AudioAugmentConfig, spec: SpecAugmentConfig
) -> str:
    """One line naming every active augmentation and its main settings."""
    parts = []
    if audio.speed_factors:
        parts.append(f"speed {audio.speed_factors}")
    if audio.reverb_prob:
        source = audio.rir_recordings or "simulated per cut"
        parts.append(f"reverb p={audio.reverb_prob} ({source})")
    if audio.noise_cuts:
        parts.append(
            f"noise p={audio.noise_prob} snr {audio.snr_range} dB "
            f"from {audio.noise_cuts}"
        )
    if audio.volume_prob:
        parts.append(f"volume p={audio.volume_prob} x{audio.volume_range}")
    if spec.enabled:
        parts.append(
            f"SpecAugment p={spec.p} from step {spec.start_step} "
            f"(ramp {spec.ramp_steps}), {spec.num_frame_masks}x{spec.frames_mask_size}"
            f" frames (<= {spec.max_frames_mask_fraction:.0%}), "
            f"{spec.num_feature_masks}x{spec.features_mask_size} bins, "
            f"time warp {spec.time_warp_factor}"
        )
    return "Augmentation: " + ("; ".join(parts) if parts else "none")
