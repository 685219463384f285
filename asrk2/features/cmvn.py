"""Global mean/variance normalisation statistics of fbank features (as WeNet's
``global_cmvn``).

Raw log-mel energies sit around -15..+5 with a different offset per bin, and
SpecAugment masks and padding are written in those raw units. Normalising each
bin to zero mean and unit variance over the training set puts the encoder's
input on the scale its initialisation assumes, so that masked frames (filled
with the mean) read as "no information" rather than as loud or silent speech.

The statistics are computed once from the training cuts' precomputed features
and stored as JSON (``global_cmvn.json`` in the experiment directory); the
trainer copies them into buffers of the encoder
(:class:`asrk2.model.conformer.FeatureNormalizer`), so checkpoints, averaged
models, TorchScript exports, streaming decoding and the server all apply the
same statistics without reading the file again.
"""

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
from lhotse import CutSet
from tqdm import tqdm

from asrk2.utils import atomic_write_text

__all__ = ["GlobalCmvn", "compute_global_cmvn"]

log = logging.getLogger(__name__)

# Floor of the standard deviation: a constant bin (e.g. a zero-energy mel
# band of band-limited audio) must not blow up to +-inf after normalisation.
_MIN_STD = 1e-3


@dataclass
class GlobalCmvn:
    """Per-dimension mean and standard deviation of features.

    Attributes:
      mean: C floats.
      std: C floats, each >= a small floor.
      num_frames: frames the statistics were computed from.
      num_cuts: cuts they came from.
    """

    mean: List[float]
    std: List[float]
    num_frames: int
    num_cuts: int

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(
                f"mean and std need the same non-zero length, got {len(self.mean)} "
                f"and {len(self.std)}"
            )
        if not all(math.isfinite(v) for v in self.mean + self.std):
            raise ValueError("global CMVN statistics contain non-finite values")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got min {min(self.std)}")

    @property
    def dim(self) -> int:
        """Feature dimension C."""
        return len(self.mean)

    def save(self, path: Union[str, Path]) -> None:
        """Writes the statistics as JSON (atomically)."""
        atomic_write_text(Path(path), json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "GlobalCmvn":
        """Reads statistics written by :meth:`save`; errors name a bad file."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"cannot read global CMVN statistics {path}: {e}") from e


def compute_global_cmvn(
    cuts: CutSet, max_cuts: Optional[int] = None, progress: bool = True
) -> GlobalCmvn:
    """Accumulates per-bin mean and variance over the cuts' features.

    Sums are accumulated in float64 (sum and sum of squares), so the result
    does not depend on the cut order beyond rounding. A cut whose features
    cannot be read, or hold NaN/inf, is skipped and counted in the log.

    Args:
      cuts: cuts with precomputed features (eager or lazy).
      max_cuts: use only the first ``max_cuts`` cuts (None: all). A few
        thousand utterances pin the statistics down well.
      progress: show a tqdm bar.
    Returns:
      The statistics.
    Raises:
      ValueError: if no cut had readable features.
    """
    total = total_sq = None
    frames = used = skipped = 0
    total_cuts = max_cuts
    if not cuts.is_lazy:
        total_cuts = len(cuts) if max_cuts is None else min(max_cuts, len(cuts))
    iterator = tqdm(cuts, desc="global CMVN", disable=not progress, total=total_cuts)
    for cut in iterator:
        if max_cuts is not None and used >= max_cuts:
            break
        try:
            feats = cut.load_features().astype(np.float64)
        except Exception as e:  # a broken archive must not stop the whole job
            skipped += 1
            log.warning("global CMVN: skipping cut %s: %s", cut.id, e)
            continue
        if not np.isfinite(feats).all():
            skipped += 1
            log.warning("global CMVN: skipping cut %s: non-finite features", cut.id)
            continue
        if total is None:
            total = np.zeros(feats.shape[1])
            total_sq = np.zeros(feats.shape[1])
        total += feats.sum(axis=0)
        total_sq += (feats**2).sum(axis=0)
        frames += feats.shape[0]
        used += 1
    if total is None or frames == 0:
        raise ValueError("global CMVN: no cut with readable features")
    assert total_sq is not None  # set together with total
    mean = total / frames
    var = np.maximum(total_sq / frames - mean**2, 0.0)
    std = np.maximum(np.sqrt(var), _MIN_STD)
    if skipped:
        log.warning("global CMVN: %d cuts skipped (unreadable features)", skipped)
    log.info("Global CMVN from %d cuts, %d frames", used, frames)
    return GlobalCmvn(mean.tolist(), std.tolist(), frames, used)
