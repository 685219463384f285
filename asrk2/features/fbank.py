"""80-dim log-mel filterbank features with kaldifeat, stored with lilcom.

Extraction is batched (:meth:`lhotse.CutSet.compute_and_store_features_batch`):
dataloader workers decode audio, one kaldifeat call handles a whole batch of
waveforms (on the GPU with ``device="cuda"``), and a background thread
compresses and writes the matrices. Cuts should be trimmed to utterances first
(every importer in :mod:`asrk2.data` does that), so an hours-long recording is
never decoded whole; kaldifeat also works in chunks of ``chunk_size`` frames.
"""

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Union

import numpy as np
import torch
from lhotse import CutSet, Features, LilcomChunkyWriter
from lhotse.cut import Cut
from lhotse.features.kaldifeat import (
    KaldifeatFbank,
    KaldifeatFbankConfig,
    KaldifeatMelOptions,
)
from lhotse.utils import fastcopy

from asrk2.data.report import ImportReport
from asrk2.utils import atomic_path, remove_stale_temporaries

__all__ = [
    "BatchKaldifeatFbank",
    "FbankConfig",
    "SPEED_FACTORS",
    "compute_fbank",
    "fbank_report_path",
    "make_fbank_extractor",
    "perturb_speed",
    "resolve_device",
    "torch_threads",
]

log = logging.getLogger(__name__)

SPEED_FACTORS = (0.9, 1.1)
# kaldifeat chunk on CPU: 10 s of frames stay in cache (see make_fbank_extractor).
_CPU_CHUNK_FRAMES = 1000


@dataclass
class FbankConfig:
    """Options of the fbank front end.

    Attributes:
      num_mel_bins: number of mel filters (the feature dimension).
      device: ``cpu``, ``cuda`` (``cuda:N``) or ``auto`` (CUDA when torch sees a GPU).
      batch_duration: seconds of audio per extraction batch.
      num_workers: audio-decoding worker processes during extraction.
      speed_perturb: also extract features of 0.9x and 1.1x speed copies of
        every cut (ids suffixed ``_sp0.9``/``_sp1.1``), tripling the data.
    """

    num_mel_bins: int = 80
    device: str = "auto"
    batch_duration: float = 600.0
    num_workers: int = 1
    speed_perturb: bool = False


def resolve_device(device: str) -> str:
    """Maps ``auto`` to ``cuda`` when available, else ``cpu``; checks ``cuda``.

    Args:
      device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    Returns:
      The device to use.
    Raises:
      RuntimeError: if CUDA is requested but torch sees no CUDA device.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but torch sees no CUDA device")
    return device


class BatchKaldifeatFbank(KaldifeatFbank):
    """KaldifeatFbank whose batch extraction suits the device it runs on.

    kaldifeat cuts waveforms into overlapping frames (2.5x the audio in size)
    on the device of its input, concatenates the frames of every waveform of
    a call, and only then moves them to its own device. lhotse hands it CPU
    arrays, so:

    * on CUDA, the waveforms are moved to the GPU first, so framing and
      concatenation run there and only the audio crosses the bus;
    * on CPU, each waveform is its own call: concatenating a 600 s batch of
      frames is a large copy that measured ~15-20% of the stage's time.

    The extractor name (``kaldifeat-fbank``) and the features are unchanged.

    Args:
      config: lhotse's kaldifeat config (device, mel bins, chunk size).
    """

    def __init__(self, config: Optional[KaldifeatFbankConfig] = None) -> None:
        super().__init__(config)
        # The CUDA way (whole batch on the device); settable so tests can run
        # that code path with CPU tensors.
        self.batch_on_device = torch.device(self.config.device).type == "cuda"

    def extract_batch(
        self,
        samples: Union[
            np.ndarray, torch.Tensor, Sequence[np.ndarray], Sequence[torch.Tensor]
        ],
        sampling_rate: int,
        lengths: Optional[Union[np.ndarray, torch.Tensor]] = None,
    ) -> List[Union[np.ndarray, torch.Tensor]]:
        """Features of each waveform, ``(T_i, num_mel_bins)`` each.

        Args:
          samples: waveforms, each ``(num_samples,)`` or ``(1, num_samples)``.
          sampling_rate: their rate; must match the extractor's.
          lengths: valid samples per waveform when ``samples`` is padded.
        Returns:
          One feature matrix per waveform: tensors on the GPU for CUDA (lhotse's
          writer copies them back), arrays for numpy input on CPU.
        """
        if lengths is not None:
            samples = [x[..., :n] for x, n in zip(samples, lengths)]
        mono = [_mono(x) for x in samples]
        if self.batch_on_device:
            device = torch.device(self.config.device)
            waves = [torch.as_tensor(x).to(device) for x in mono]
            return list(self.extract(waves, sampling_rate))
        return [self.extract(x, sampling_rate) for x in mono]


def _mono(samples: Union[np.ndarray, torch.Tensor]) -> Union[np.ndarray, torch.Tensor]:
    """``(num_samples,)`` audio: channels of a ``(C, num_samples)`` array averaged.

    Flattening a ``(2, T)`` array would give one ``2T`` waveform and twice the
    frames a cut declares. Cuts of multi-channel recordings made by asrk2's
    importers load one channel; cuts from elsewhere (a lhotse ``MultiCut``)
    are down-mixed here.
    """
    if samples.ndim == 2 and samples.shape[0] > 1:
        return samples.mean(0)
    return samples.reshape(-1)


def make_fbank_extractor(config: FbankConfig) -> BatchKaldifeatFbank:
    """A lhotse feature extractor that runs kaldifeat on the configured device.

    Kaldi defaults (25 ms window, 10 ms shift, povey window, no dither so
    features are reproducible, ``snip_edges=False`` as in lhotse/icefall).
    On CPU, long waveforms are computed in chunks of ``_CPU_CHUNK_FRAMES``
    frames, which stay in cache (one matrix for 10 minutes of audio measured
    3-4x slower); on CUDA lhotse's default chunk (20 minutes) is kept. See
    :class:`BatchKaldifeatFbank` for how batches are handled.

    Args:
      config: the fbank options; ``device`` is resolved here.
    Returns:
      The extractor; its ``name`` (``kaldifeat-fbank``) is recorded in manifests.
    """
    device = resolve_device(config.device)
    mel_opts = KaldifeatMelOptions(num_bins=config.num_mel_bins)
    chunk = {} if device.startswith("cuda") else {"chunk_size": _CPU_CHUNK_FRAMES}
    return BatchKaldifeatFbank(
        KaldifeatFbankConfig(mel_opts=mel_opts, device=device, **chunk)
    )


@contextlib.contextmanager
def torch_threads(num_threads: int) -> Iterator[None]:
    """Runs a block with ``num_threads`` intra-op threads, then restores them."""
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def perturb_speed(cuts: CutSet, factors=SPEED_FACTORS) -> CutSet:
    """The cuts plus one speed-perturbed copy per factor (lazy if ``cuts`` is).

    Args:
      cuts: cuts with recordings.
      factors: speed factors, e.g. ``(0.9, 1.1)``; 1.1 is faster and shorter.
    Returns:
      ``cuts`` followed by each perturbed copy (ids get ``_sp<factor>``).
    """
    out = cuts
    for factor in factors:
        out = out + cuts.perturb_speed(factor)
    return out


def fbank_report_path(manifest_path: Path) -> Path:
    """Where :func:`compute_fbank` reports the cuts it skipped."""
    manifest_path = Path(manifest_path)
    name = manifest_path.name.split(".")[0]
    return manifest_path.with_name(f"{name}_fbank_report.json")


def _store_features(
    cut: Cut, extractor: BatchKaldifeatFbank, storage: LilcomChunkyWriter
) -> Cut:
    """Extracts and stores one cut's fbank; the cut with its features attached."""
    from lhotse.qa import validate_features

    feats = extractor.extract(_mono(cut.load_audio()), cut.sampling_rate)
    manifest = Features(
        start=cut.start,
        duration=cut.duration,
        type=extractor.name,
        num_frames=feats.shape[0],
        num_features=feats.shape[1],
        frame_shift=extractor.frame_shift,
        sampling_rate=cut.sampling_rate,
        channels=cut.channel,
        storage_type=storage.name,
        storage_path=str(storage.storage_path),
        storage_key=storage.write(cut.id, feats),
        recording_id=cut.recording_id,
    )
    validate_features(manifest, feats_data=feats)
    return fastcopy(cut, features=manifest)


def _extract_one_at_a_time(
    cuts: CutSet,
    extractor: BatchKaldifeatFbank,
    storage_path: Path,
    manifest_path: Path,
    failures: Dict[str, str],
) -> None:
    """Extracts the cuts not yet in ``manifest_path``, each on its own.

    The fallback after a batch failed: lhotse's batch loop stops at the first
    cut whose features cannot be stored and names none, so the remaining cuts
    go one by one here, and a cut that fails is recorded in ``failures``
    (id -> error) instead of ending the stage.
    """
    with CutSet.open_writer(manifest_path, overwrite=False) as cut_writer:
        done = set(cut_writer.ignore_ids)
        with LilcomChunkyWriter(storage_path, mode="a") as storage:
            for cut in cuts:
                if cut.id in done:
                    continue
                try:
                    with_features = _store_features(cut, extractor, storage)
                    cut_writer.write(with_features, flush=True)
                except Exception as e:  # one bad cut must not end the stage
                    failures[cut.id] = f"{type(e).__name__}: {e}"
                    log.warning("Skipping cut %s: %s", cut.id, failures[cut.id])


def compute_fbank(
    cuts: CutSet, storage_path: Path, manifest_path: Path, config: FbankConfig
) -> CutSet:
    """Extracts fbank for ``cuts`` in batches and writes the cut manifest.

    The cut manifest is written atomically, so a crash never leaves one that
    points at missing feature arrays. Cuts whose audio fails to decode are
    left out by lhotse (with a warning); a cut whose features cannot be
    stored stops lhotse's batch loop, after which the remaining cuts are
    extracted one at a time and the failing ones left out. Every cut left out
    is counted and named in the log and in :func:`fbank_report_path`
    (``<name>_fbank_report.json`` beside the manifest).

    Args:
      cuts: cuts with recordings (typically trimmed to supervisions, so long
        recordings are never loaded whole); eager or lazy.
      storage_path: lilcom chunky archive (``.lca``) for the feature matrices;
        the manifest records it as an absolute path.
      manifest_path: where the cuts-with-features manifest goes.
      config: fbank options.
    Returns:
      The cuts with features attached: eager if ``cuts`` was eager, else a
      lazy CutSet over ``manifest_path``.
    """
    # Absolute, so the manifest works from any directory, not only the
    # recipe's (where a relative path would be resolved).
    storage_path = Path(storage_path).resolve()
    extractor = make_fbank_extractor(config)
    remove_stale_temporaries(Path(manifest_path).parent, Path(manifest_path).name)
    was_lazy = cuts.is_lazy
    if config.speed_perturb:
        cuts = perturb_speed(cuts)
    device = str(extractor.config.device)
    log.info("Computing fbank on %s into %s", device, storage_path)
    # Per-call work is small, so intra-op threads mostly wait on each other;
    # one thread was 5-10x faster than two on a 2-core machine, whose other
    # core then decodes audio (dataloader worker) and compresses (writer).
    threads = torch.get_num_threads() if device.startswith("cuda") else 1
    failures: Dict[str, str] = {}
    with atomic_path(manifest_path) as tmp_manifest, torch_threads(threads):
        try:
            cuts.compute_and_store_features_batch(
                extractor=extractor,
                storage_path=storage_path,
                manifest_path=tmp_manifest,
                batch_duration=config.batch_duration,
                num_workers=config.num_workers,
                storage_type=LilcomChunkyWriter,
                overwrite=True,
            )
        except Exception as e:
            log.warning(
                "Batch extraction stopped (%s: %s); the remaining cuts go one by one",
                type(e).__name__,
                e,
            )
            _extract_one_at_a_time(
                cuts, extractor, storage_path, tmp_manifest, failures
            )
    written = CutSet.from_jsonl_lazy(manifest_path)
    _report_skipped(cuts, written, failures, manifest_path)
    return written if was_lazy else written.to_eager()


def _report_skipped(
    cuts: CutSet, written: CutSet, failures: Dict[str, str], manifest_path: Path
) -> ImportReport:
    """Counts and names the cuts of ``cuts`` missing from ``written``."""
    report = ImportReport()
    for cut in written:
        report.num_cuts += 1
        report.num_seconds += cut.duration
    done: Set[str] = set(written.ids)
    for cut_id in cuts.ids:
        if cut_id not in done:
            reason = "fbank failed" if cut_id in failures else "undecodable audio"
            report.skip(reason, cut_id)
    report.write(fbank_report_path(manifest_path))
    if report.skipped:
        log.warning("fbank of %s: %s", manifest_path, report.summary())
    return report
