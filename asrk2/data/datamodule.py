"""Batches for training and evaluation: filtering, bucketing, SpecAugment."""
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.dataset import DynamicBucketingSampler, K2SpeechRecognitionDataset, SpecAugment

__all__ = ["DataConfig", "filter_cuts", "make_train_loader", "make_eval_loader", "unpack_batch"]

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Sampling and augmentation options.

    Attributes:
      max_duration: seconds of audio per batch (before padding).
      num_buckets: duration buckets of the dynamic bucketing sampler.
      shuffle: shuffle training cuts (within buckets) every epoch.
      drop_last: drop the last incomplete batch.
      num_workers: dataloader worker processes.
      spec_augment: apply SpecAugment to training batches.
      min_cut_duration: shorter cuts are dropped (seconds).
      max_cut_duration: longer cuts are dropped (seconds).
    """

    max_duration: float = 200.0
    num_buckets: int = 10
    shuffle: bool = True
    drop_last: bool = False
    num_workers: int = 0
    spec_augment: bool = True
    min_cut_duration: float = 0.3
    max_cut_duration: float = 20.0


def filter_cuts(
    cuts: CutSet,
    config: DataConfig,
    fits: Optional[Callable[[Cut], bool]] = None,
) -> Tuple[CutSet, Counter]:
    """Drops cuts that would break or waste training; counts why.

    The ``fits`` check is for cuts whose token sequence is longer than the
    subsampled frame sequence: CTC cannot align them and the loss is infinite,
    the most common cause of inf/NaN losses in k2/icefall training.

    Args:
      cuts: an eager CutSet.
      config: duration limits.
      fits: optional predicate, e.g. "number of tokens <= subsampled frames".
    Returns:
      The kept cuts and a Counter of reasons for the dropped ones.
    """
    reasons: Counter = Counter()

    def keep(cut: Cut) -> bool:
        if cut.duration < config.min_cut_duration:
            reasons["too short"] += 1
            return False
        if cut.duration > config.max_cut_duration:
            reasons["too long"] += 1
            return False
        if fits is not None and not fits(cut):
            reasons["more tokens than frames"] += 1
            return False
        return True

    kept = cuts.filter(keep).to_eager()
    if reasons:
        log.warning("Dropped cuts: %s (kept %d)", dict(reasons), len(kept))
    return kept, reasons


def make_train_loader(
    cuts: CutSet,
    config: DataConfig,
    seed: int = 0,
    world_size: Optional[int] = None,
    rank: Optional[int] = None,
) -> torch.utils.data.DataLoader:
    """A training DataLoader over precomputed features with dynamic bucketing.

    The sampler lives on ``loader.sampler``; call ``set_epoch`` on it each epoch
    and save its ``state_dict`` with checkpoints for exact resumption.
    """
    transforms = []
    if config.spec_augment:
        transforms.append(
            SpecAugment(
                time_warp_factor=80,
                num_frame_masks=2,
                features_mask_size=27,
                num_feature_masks=2,
                frames_mask_size=40,
            )
        )
    dataset = K2SpeechRecognitionDataset(return_cuts=True, input_transforms=transforms)
    sampler = DynamicBucketingSampler(
        cuts,
        max_duration=config.max_duration,
        num_buckets=config.num_buckets,
        shuffle=config.shuffle,
        drop_last=config.drop_last,
        world_size=world_size,
        rank=rank,
        seed=seed,
    )
    return torch.utils.data.DataLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=config.num_workers
    )


def make_eval_loader(cuts: CutSet, config: DataConfig) -> torch.utils.data.DataLoader:
    """An evaluation DataLoader: no shuffling, no augmentation, every cut once."""
    dataset = K2SpeechRecognitionDataset(return_cuts=True)
    sampler = DynamicBucketingSampler(
        cuts, max_duration=config.max_duration, num_buckets=config.num_buckets, shuffle=False
    )
    return torch.utils.data.DataLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=config.num_workers
    )


def unpack_batch(batch: dict) -> Tuple[torch.Tensor, torch.Tensor, List[str], List[str]]:
    """Features, lengths, texts and cut ids of a batch, all in the same order.

    lhotse orders supervisions differently from the feature rows
    (``sequence_idx`` maps one to the other); this puts texts in row order.

    Returns:
      features: (N, T, C) float tensor.
      feature_lens: (N,) int tensor of valid frames per row.
      texts: N transcripts.
      cut_ids: N cut ids.
    """
    features = batch["inputs"]
    sups = batch["supervisions"]
    n = features.size(0)
    if len(sups["text"]) != n:
        raise ValueError("expected exactly one supervision per cut; trim cuts to supervisions")
    feature_lens = torch.zeros(n, dtype=torch.int32)
    texts = [""] * n
    cut_ids = [""] * n
    for k in range(n):
        row = int(sups["sequence_idx"][k])
        feature_lens[row] = int(sups["start_frame"][k]) + int(sups["num_frames"][k])
        texts[row] = sups["text"][k]
        cut_ids[row] = sups["cut"][k].id
    return features, feature_lens, texts, cut_ids
