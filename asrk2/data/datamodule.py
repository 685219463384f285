"""Batches for training and evaluation: filtering, bucketing, augmentation.

Training batches come from lhotse's ``DynamicBucketingSampler`` (cuts of
similar duration batched together, up to ``max_duration`` seconds of audio per
batch, DDP-aware through ``world_size``/``rank``) feeding a
``K2SpeechRecognitionDataset``; or, with ``shar_dir``, from lhotse Shar shards
split between ranks and workers (:mod:`asrk2.data.shar`). Features are read
from the precomputed lilcom archives, or computed in the dataloader workers
(``on_the_fly_features``), which also allows audio augmentation (speed,
volume, noise, reverberation; :mod:`asrk2.data.augment`). SpecAugment is
applied by the trainer. The sampler is :func:`train_sampler` of the loader:
call :func:`set_train_epoch` every epoch, and save the sampler's
``state_dict()`` with checkpoints for an exact resume.
"""

import itertools
import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import (
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
    cast,
)

import torch
from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.dataset import (
    DynamicBucketingSampler,
    IterableDatasetWrapper,
    K2SpeechRecognitionDataset,
    OnTheFlyFeatures,
    PrecomputedFeatures,
    SimpleCutSampler,
)
from lhotse.dataset.sampling.base import CutSampler
from lhotse.utils import compute_num_frames

from asrk2.data.augment import (
    AudioAugmentConfig,
    SpecAugmentConfig,
    make_cut_transforms,
)
from asrk2.data.shar import SharCuts
from asrk2.features.fbank import FbankConfig, make_fbank_extractor
from asrk2.frames import FRAME_SHIFT, subsampled_lengths

__all__ = [
    "DataConfig",
    "PaddingStats",
    "ctc_alignable",
    "filter_cuts",
    "make_eval_loader",
    "make_sampler",
    "make_train_loader",
    "padding_stats",
    "set_train_epoch",
    "train_sampler",
    "unpack_batch",
]

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Sampling and augmentation options.

    Attributes:
      max_duration: seconds of audio per batch (before padding).
      num_buckets: duration buckets of the dynamic bucketing sampler (30, as
        icefall uses: 10 wasted ~13% of frames to padding in
        ``bench/bench_bucketing.py``, 30 under 5%).
      shuffle: shuffle training cuts (within buckets) every epoch.
      drop_last: drop the last incomplete batch.
      num_workers: dataloader worker processes.
      spec_augment: SpecAugment of training batches and its schedule
        (applied by the trainer).
      min_cut_duration: shorter cuts are dropped (seconds).
      max_cut_duration: longer cuts are dropped (seconds).
      buffer_size: cuts the bucketing sampler holds to fill its buckets; larger
        means less padding and better shuffling, and more memory.
      pin_memory: pin batches in page-locked memory (only when CUDA is there).
      on_the_fly_features: compute fbank in the dataloader workers from audio
        instead of reading precomputed features.
      num_mel_bins: feature dimension of on-the-fly features.
      augment: audio augmentation of training cuts (speed, volume, noise,
        reverberation); needs ``on_the_fly_features``.
      shar_dir: train from this lhotse Shar directory (:mod:`asrk2.data.shar`)
        instead of the training manifest: shards are shuffled per epoch and
        split between DDP ranks and dataloader workers. Empty: the manifest.
    """

    max_duration: float = 200.0
    num_buckets: int = 30
    shuffle: bool = True
    drop_last: bool = False
    num_workers: int = 0
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    min_cut_duration: float = 0.3
    max_cut_duration: float = 20.0
    buffer_size: int = 20000
    pin_memory: bool = True
    on_the_fly_features: bool = False
    num_mel_bins: int = 80
    augment: AudioAugmentConfig = field(default_factory=AudioAugmentConfig)
    shar_dir: str = ""

    def __post_init__(self) -> None:
        if self.max_duration <= 0:
            raise ValueError(
                f"max_duration must be > 0 seconds of audio, got {self.max_duration}"
            )
        if self.num_buckets < 1:
            raise ValueError(f"num_buckets must be >= 1, got {self.num_buckets}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if not 0 <= self.min_cut_duration <= self.max_cut_duration:
            raise ValueError(
                "need 0 <= min_cut_duration <= max_cut_duration, got "
                f"{self.min_cut_duration} and {self.max_cut_duration}"
            )


def _drop_summary(reasons: Counter, examples: Dict[str, List[str]]) -> str:
    return "; ".join(
        f"{n} {r}, e.g. {', '.join(examples[r])}" for r, n in reasons.items()
    )


class _CutFilter:
    """A lazy, re-iterable filter that logs what it dropped after each full pass."""

    def __init__(
        self,
        cuts: Iterable[Cut],
        keep: Callable[[Cut], bool],
        reasons: Counter,
        examples: Dict[str, List[str]],
    ) -> None:
        self.cuts = cuts
        self.keep = keep
        self.reasons = reasons
        self.examples = examples

    def __iter__(self) -> Iterator[Cut]:
        kept = dropped = 0
        for cut in self.cuts:
            if self.keep(cut):
                kept += 1
                yield cut
            else:
                dropped += 1
        if dropped:
            log.warning(
                "Dropped %d cuts in this pass (kept %d): %s",
                dropped,
                kept,
                _drop_summary(self.reasons, self.examples),
            )


def ctc_alignable(text_to_ids: Callable[[str], List[int]]) -> Callable[[Cut], bool]:
    """The predicate "CTC can align this cut's transcript" for :func:`filter_cuts`.

    CTC needs an encoder frame per token plus a blank between repeated
    tokens. Frames are counted from the duration, since a speed-perturbed cut
    has no features yet.

    Args:
      text_to_ids: the tokenizer, e.g. a sentencepiece model's ``encode``.
    """

    def fits(cut: Cut) -> bool:
        frames = compute_num_frames(cut.duration, FRAME_SHIFT, cut.sampling_rate)
        lens = subsampled_lengths(torch.tensor([frames]))
        ids = text_to_ids(cut.supervisions[0].text or "")
        repeats = sum(a == b for a, b in zip(ids, ids[1:]))
        return len(ids) + repeats <= int(lens[0])

    return fits


def filter_cuts(
    cuts: CutSet,
    config: DataConfig,
    fits: Optional[Callable[[Cut], bool]] = None,
) -> Tuple[CutSet, Counter]:
    """Drops cuts that would break or waste training; counts why.

    The ``fits`` check is for cuts whose token sequence is longer than the
    subsampled frame sequence: CTC cannot align them and the loss is infinite,
    the most common cause of inf/NaN losses in k2/icefall training.

    An eager CutSet is filtered at once and the counts are complete on return
    (and logged, with example ids). A lazy CutSet (a 10,000-hour manifest) is
    filtered as it is read: the Counter (of distinct cuts) is complete once
    the first epoch has been read, and each complete pass logs what it dropped.

    Args:
      cuts: the cuts, eager or lazy.
      config: duration limits.
      fits: optional predicate, e.g. "number of tokens <= subsampled frames".
    Returns:
      The kept cuts (eager or lazy, like ``cuts``) and a Counter of reasons
      for the dropped ones.
    """
    reasons: Counter = Counter()
    examples: Dict[str, List[str]] = {}
    seen: Set[str] = set()

    def keep(cut: Cut) -> bool:
        reason = None
        if cut.duration < config.min_cut_duration:
            reason = "too short"
        elif cut.duration > config.max_cut_duration:
            reason = "too long"
        elif fits is not None and not fits(cut):
            reason = "more tokens than frames"
        if reason is None:
            return True
        if cut.id in seen:  # a later epoch (or the sampler's peek) re-reads it
            return False
        seen.add(cut.id)
        reasons[reason] += 1
        if len(examples.setdefault(reason, [])) < 5:
            examples[reason].append(f"{cut.id} ({cut.duration:.2f} s)")
        return False

    if cuts.is_lazy:
        return CutSet(_CutFilter(cuts, keep, reasons, examples)), reasons
    kept = CutSet.from_cuts(c for c in cuts if keep(c))
    if reasons:
        log.warning(
            "Dropped %d of %d cuts: %s",
            sum(reasons.values()),
            len(cuts),
            _drop_summary(reasons, examples),
        )
    return kept, reasons


def make_sampler(
    cuts: CutSet,
    config: DataConfig,
    shuffle: bool,
    seed: int = 0,
    world_size: Optional[int] = None,
    rank: Optional[int] = None,
) -> CutSampler:
    """The dynamic bucketing sampler both loaders use.

    Args:
      cuts: eager or lazy cuts.
      config: ``max_duration``, ``num_buckets``, ``drop_last``, ``buffer_size``.
      shuffle: shuffle within buckets (training).
      seed: shuffling seed; with ``set_epoch`` it fixes every epoch's order.
      world_size, rank: DDP; None reads them from torch.distributed if set up.
    Returns:
      The sampler; it yields CutSets of up to ``max_duration`` seconds. It
      has at most as many buckets as cuts; with one bucket it is a plain
      ``SimpleCutSampler`` (no bucketing).
    """
    # lhotse needs at least as many cuts as buckets; a small set gets fewer.
    num_buckets = sum(1 for _ in itertools.islice(iter(cuts), config.num_buckets))
    if num_buckets <= 1:
        return SimpleCutSampler(
            cuts,
            max_duration=config.max_duration,
            shuffle=shuffle,
            drop_last=config.drop_last if shuffle else False,
            world_size=world_size,
            rank=rank,
            seed=seed,
        )
    with warnings.catch_warnings():
        # lhotse warns that eager CutSets bring no memory benefit; for the
        # small corpora that are read eagerly that is fine.
        warnings.filterwarnings("ignore", message=".*eagerly read CutSet")
        return DynamicBucketingSampler(
            cuts,
            max_duration=config.max_duration,
            num_buckets=num_buckets,
            shuffle=shuffle,
            drop_last=config.drop_last if shuffle else False,
            buffer_size=config.buffer_size,
            num_cuts_for_bins_estimate=min(10000, config.buffer_size),
            world_size=world_size,
            rank=rank,
            seed=seed,
        )


def _check_inputs(cuts: CutSet, config: DataConfig) -> None:
    """Fails early, with a hint, when batches could not be built from ``cuts``."""
    first = next(iter(cuts), None)
    if first is None:
        raise ValueError("no cuts to load")
    if config.on_the_fly_features and not first.has_recording:
        raise ValueError(
            f"on_the_fly_features needs audio, but cut {first.id} has no recording"
        )
    if not config.on_the_fly_features:
        if not first.has_features:
            raise ValueError(
                f"cut {first.id} has no features: run local/compute_fbank.py first, "
                "or set data.on_the_fly_features: true"
            )
        if config.augment.active:
            raise ValueError(
                "data.augment (speed, volume, noise, reverb) needs "
                "data.on_the_fly_features: true; with precomputed features, "
                "perturb speed at extraction (local/compute_fbank.py --speed-perturb)"
            )


def _drop_features(cuts: CutSet) -> CutSet:
    return cuts.drop_features()


class _KeepFitting:
    """Drops cuts that an augmentation made unusable (e.g. a 1.1x speed copy
    with too few frames for its tokens); counts and logs them now and then.
    A batch that would be left empty is kept whole (its loss is then skipped)."""

    def __init__(self, fits: Callable[[Cut], bool]) -> None:
        self.fits = fits
        self.dropped = 0

    def __call__(self, cuts: CutSet) -> CutSet:
        kept = [c for c in cuts if self.fits(c)]
        if not kept or len(kept) == len(cuts):
            return cuts
        before = self.dropped
        self.dropped += len(cuts) - len(kept)
        if self.dropped // 100 > before // 100 or before == 0:
            log.info("Augmented cuts dropped so far (too short for their "
                     "tokens): %d", self.dropped)  # fmt: skip
        return CutSet.from_cuts(kept)


def _dataset(
    config: DataConfig,
    train: bool,
    seed: int,
    fits: Optional[Callable[[Cut], bool]] = None,
) -> K2SpeechRecognitionDataset:
    if config.on_the_fly_features:
        extractor = make_fbank_extractor(
            FbankConfig(num_mel_bins=config.num_mel_bins, device="cpu")
        )
        strategy = OnTheFlyFeatures(extractor)
    else:
        strategy = PrecomputedFeatures()
    cut_transforms = make_cut_transforms(config.augment, seed) if train else []
    if cut_transforms:
        # Features are computed from the audio anyway; dropping the precomputed
        # ones first spares lhotse's "features will be detached" warning per cut.
        cut_transforms.insert(0, _drop_features)
        if fits is not None:
            cut_transforms.append(_KeepFitting(fits))
    return K2SpeechRecognitionDataset(
        return_cuts=True,
        cut_transforms=cut_transforms,
        input_strategy=strategy,
    )


def _loader(dataset, sampler, config: DataConfig) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset,
        sampler=sampler,
        batch_size=None,
        num_workers=config.num_workers,
        pin_memory=config.pin_memory and torch.cuda.is_available(),
    )


class _SharTrainData(IterableDatasetWrapper):
    """The sampler inside the dataloader workers, over their own shards."""

    def __init__(self, dataset, sampler: CutSampler, source: SharCuts) -> None:
        # A fresh sampler pass on every iter(): an epoch that DDP ended early
        # (one rank ran out of shards) must not leave the next one its rest.
        super().__init__(dataset, sampler, reset_on_iter=True)
        self.source = source

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.source.set_epoch(epoch)


def train_sampler(loader: torch.utils.data.DataLoader) -> CutSampler:
    """The sampler of a loader from :func:`make_train_loader` (its state is
    what checkpoints save)."""
    if isinstance(loader.dataset, IterableDatasetWrapper):
        return loader.dataset.sampler
    return cast(CutSampler, loader.sampler)


def set_train_epoch(loader: torch.utils.data.DataLoader, epoch: int) -> None:
    """Selects the shuffling (and, from Shar, the shard order) of an epoch."""
    if isinstance(loader.dataset, IterableDatasetWrapper):
        loader.dataset.set_epoch(epoch)
    else:
        train_sampler(loader).set_epoch(epoch)


def make_train_loader(
    cuts: CutSet,
    config: DataConfig,
    seed: int = 0,
    world_size: Optional[int] = None,
    rank: Optional[int] = None,
    fits: Optional[Callable[[Cut], bool]] = None,
    shar_source: Optional[SharCuts] = None,
) -> torch.utils.data.DataLoader:
    """A training DataLoader with dynamic bucketing and augmentation.

    The sampler is :func:`train_sampler` of the loader; call
    :func:`set_train_epoch` each epoch and save the sampler's ``state_dict``
    with checkpoints for exact resumption.

    From Shar (``shar_source``, whose cuts ``cuts`` are) the data is already
    split between ranks and workers, so each worker runs a sampler over its
    own shards (lhotse's ``IterableDatasetWrapper``); ``world_size`` and
    ``rank`` are not used, and ranks may get a few batches more or fewer.
    The sampler state then lives in the workers: a mid-epoch resume starts
    the epoch again.

    Args:
      cuts: training cuts (eager or lazy), with features unless
        ``config.on_the_fly_features``.
      config: batching and augmentation options.
      seed: seeds shuffling and speed perturbation.
      world_size, rank: DDP settings (None: from torch.distributed, or 1/0).
      fits: predicate applied again after audio augmentation, which can make
        a cut too short for its transcript (see :func:`filter_cuts`).
      shar_source: the Shar source of ``cuts``, if they come from one.
    Returns:
      A DataLoader yielding ``K2SpeechRecognitionDataset`` batches; see
      :func:`unpack_batch`.
    """
    _check_inputs(cuts, config)
    dataset = _dataset(config, train=True, seed=seed, fits=fits)
    if shar_source is None:
        sampler = make_sampler(cuts, config, config.shuffle, seed, world_size, rank)
        return _loader(dataset, sampler, config)
    sampler = make_sampler(cuts, config, config.shuffle, seed, world_size=1, rank=0)
    wrapped = _SharTrainData(dataset, sampler, shar_source)
    return torch.utils.data.DataLoader(
        wrapped,
        batch_size=None,
        num_workers=config.num_workers,
        pin_memory=config.pin_memory and torch.cuda.is_available(),
    )


def make_eval_loader(cuts: CutSet, config: DataConfig) -> torch.utils.data.DataLoader:
    """An evaluation DataLoader: no shuffling, no augmentation, every cut once."""
    _check_inputs(cuts, config)
    sampler = make_sampler(cuts, config, shuffle=False)
    return _loader(_dataset(config, train=False, seed=0), sampler, config)


def unpack_batch(
    batch: dict,
) -> Tuple[torch.Tensor, torch.Tensor, List[str], List[str]]:
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
        raise ValueError(
            "expected exactly one supervision per cut; trim cuts to supervisions"
        )
    feature_lens = torch.zeros(n, dtype=torch.int32)
    texts = [""] * n
    cut_ids = [""] * n
    for k in range(n):
        row = int(sups["sequence_idx"][k])
        feature_lens[row] = int(sups["start_frame"][k]) + int(sups["num_frames"][k])
        texts[row] = sups["text"][k]
        cut_ids[row] = sups["cut"][k].id
    return features, feature_lens, texts, cut_ids


@dataclass
class PaddingStats:
    """How much of the batch tensors is padding.

    Attributes:
      num_batches: batches seen.
      num_cuts: cuts in them.
      speech_seconds: total duration of the cuts.
      padded_seconds: total (rows x longest cut) over the batches.
    """

    num_batches: int = 0
    num_cuts: int = 0
    speech_seconds: float = 0.0
    padded_seconds: float = 0.0

    @property
    def ratio(self) -> float:
        """Fraction of frames in the batch tensors that are padding."""
        return (
            1.0 - self.speech_seconds / self.padded_seconds
            if self.padded_seconds
            else 0.0
        )


def padding_stats(batches: Iterable[CutSet]) -> PaddingStats:
    """Measures the padding of the batches a sampler yields.

    Every row of a batch is padded to its longest cut, so a batch wastes
    ``len(batch) * max_duration - sum(durations)`` seconds of frames.

    Args:
      batches: e.g. a sampler (consumes one epoch of it).
    Returns:
      The totals; ``.ratio`` is the padded fraction.
    """
    stats = PaddingStats()
    for batch in batches:
        durations = [c.duration for c in batch]
        if not durations:
            continue
        stats.num_batches += 1
        stats.num_cuts += len(durations)
        stats.speech_seconds += sum(durations)
        stats.padded_seconds += len(durations) * max(durations)
    return stats
