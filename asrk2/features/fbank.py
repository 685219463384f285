"""80-dim log-mel filterbank features with kaldifeat, stored with lilcom."""
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from lhotse import CutSet, LilcomChunkyWriter
from lhotse.features.kaldifeat import KaldifeatFbank, KaldifeatFbankConfig, KaldifeatMelOptions

from asrk2.utils import atomic_path

__all__ = ["FbankConfig", "make_fbank_extractor", "compute_fbank", "resolve_device"]

log = logging.getLogger(__name__)


@dataclass
class FbankConfig:
    """Options of the fbank front end.

    Attributes:
      num_mel_bins: number of mel filters (the feature dimension).
      device: ``cpu``, ``cuda`` or ``auto`` (CUDA when torch sees a GPU).
      batch_duration: seconds of audio per extraction batch.
      num_workers: audio-reading worker processes during extraction.
    """

    num_mel_bins: int = 80
    device: str = "auto"
    batch_duration: float = 600.0
    num_workers: int = 1


def resolve_device(device: str) -> str:
    """Maps ``auto`` to ``cuda`` when available, else ``cpu``; checks ``cuda``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but torch sees no CUDA device")
    return device


def make_fbank_extractor(config: FbankConfig) -> KaldifeatFbank:
    """A lhotse feature extractor that runs kaldifeat on the configured device.

    Kaldi defaults (25 ms window, 10 ms shift, povey window, no dither so
    features are reproducible, ``snip_edges=False`` as in lhotse/icefall).
    """
    return KaldifeatFbank(
        KaldifeatFbankConfig(
            mel_opts=KaldifeatMelOptions(num_bins=config.num_mel_bins),
            device=resolve_device(config.device),
        )
    )


def compute_fbank(
    cuts: CutSet, storage_path: Path, manifest_path: Path, config: FbankConfig
) -> CutSet:
    """Extracts fbank for ``cuts`` in batches and writes the cut manifest.

    Extraction is batched (many cuts per kaldifeat call), which is what makes
    the GPU path fast; on CPU the same code runs with the CPU extractor.
    The cut manifest is written atomically, so a crash never leaves one that
    points at missing feature arrays.

    Args:
      cuts: cuts with recordings (typically trimmed to supervisions, so long
        recordings are never loaded whole).
      storage_path: lilcom chunky archive prefix for the feature matrices.
      manifest_path: where the cuts-with-features manifest goes.
      config: fbank options.
    Returns:
      The cuts with features attached.
    """
    extractor = make_fbank_extractor(config)
    log.info("Computing fbank for %d cuts on %s", len(cuts), extractor.config.device)
    with atomic_path(manifest_path) as tmp_manifest:
        cuts = cuts.compute_and_store_features_batch(
            extractor=extractor,
            storage_path=storage_path,
            manifest_path=tmp_manifest,
            batch_duration=config.batch_duration,
            num_workers=config.num_workers,
            storage_type=LilcomChunkyWriter,
            overwrite=True,
        )
    return CutSet.from_file(manifest_path)
