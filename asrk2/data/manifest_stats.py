"""Statistics of a manifest, read lazily: hours, durations, speakers, words, OOVs.

Works on cut, supervision and recording manifests (``.jsonl.gz``) of any size:
items are streamed one at a time and only per-item durations (4 bytes each) and
the word counts are kept, so a GigaSpeech XL manifest (8M cuts) needs a few
hundred MB at most. :func:`estimate_padding` replays the training sampler on
the manifest to show how much padding a ``max_duration``/``num_buckets``
choice would cost.
"""

import itertools
import logging
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Set

import numpy as np
from lhotse import CutSet, RecordingSet, SupervisionSet, load_manifest_lazy

from asrk2.data.datamodule import DataConfig, PaddingStats, make_sampler, padding_stats
from asrk2.utils import atomic_path

__all__ = [
    "ManifestStats",
    "compute_manifest_stats",
    "estimate_padding",
    "format_stats",
    "plot_durations",
    "read_lexicon_words",
]

log = logging.getLogger(__name__)

PERCENTILES = (0, 1, 5, 25, 50, 75, 95, 99, 100)


@dataclass
class ManifestStats:
    """What :func:`compute_manifest_stats` found.

    Attributes:
      path: the manifest.
      kind: ``cuts``, ``supervisions`` or ``recordings``.
      num_items: cuts/supervisions/recordings in it.
      num_supervisions: supervisions (utterances) in it.
      total_seconds: summed duration of the items.
      durations: per-item durations in seconds, shape ``(num_items,)``.
      speakers: distinct speaker labels.
      words: word -> count over all transcripts.
      num_empty: supervisions with no text.
      lexicon_size: words in the lexicon (0 if none was given).
      oov: OOV word -> count, when a lexicon was given.
    """

    path: Path
    kind: str
    num_items: int = 0
    num_supervisions: int = 0
    total_seconds: float = 0.0
    durations: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    speakers: Set[str] = field(default_factory=set)
    words: Counter = field(default_factory=Counter)
    num_empty: int = 0
    lexicon_size: int = 0
    oov: Counter = field(default_factory=Counter)

    @property
    def num_words(self) -> int:
        """Running words over all transcripts."""
        return sum(self.words.values())

    @property
    def oov_rate(self) -> float:
        """Fraction of running words not in the lexicon (0 without a lexicon)."""
        return sum(self.oov.values()) / self.num_words if self.num_words else 0.0

    def percentiles(self) -> Dict[int, float]:
        """Duration percentiles in seconds, keyed 0, 1, 5, ..., 100."""
        if not len(self.durations):
            return {}
        values = np.percentile(self.durations, PERCENTILES)
        return dict(zip(PERCENTILES, map(float, values)))


def read_lexicon_words(path: Path) -> Set[str]:
    """The words of a lexicon: the first field of each line.

    Reads Kaldi ``lexicon.txt`` (``WORD p1 p2 ...``), ``words.txt``
    (``WORD id``) or a plain word list alike.
    """
    words = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split(maxsplit=1)
            if parts:
                words.add(parts[0])
    return words


def _kind(manifest) -> str:
    for cls, name in (
        (CutSet, "cuts"),
        (SupervisionSet, "supervisions"),
        (RecordingSet, "recordings"),
    ):
        if isinstance(manifest, cls):
            return name
    raise ValueError(f"unsupported manifest type {type(manifest).__name__}")


def _add_supervision(stats: ManifestStats, sup, lexicon: Optional[Set[str]]) -> None:
    stats.num_supervisions += 1
    if sup.speaker:
        stats.speakers.add(sup.speaker)
    words = (sup.text or "").split()
    if not words:
        stats.num_empty += 1
    stats.words.update(words)
    if lexicon is not None:
        stats.oov.update(w for w in words if w not in lexicon)


def compute_manifest_stats(
    path: Path, lexicon: Optional[Path] = None, max_items: Optional[int] = None
) -> ManifestStats:
    """Streams a manifest once and collects its statistics.

    Args:
      path: a lhotse cuts/supervisions/recordings manifest (jsonl or jsonl.gz).
      lexicon: optional lexicon/word list for the OOV rate.
      max_items: stop after this many items (a quick look at a huge manifest).
    Returns:
      The statistics.
    """
    name = Path(path).name
    if not (name.endswith(".jsonl") or name.endswith(".jsonl.gz")):
        raise ValueError(
            f"{path} is not a lhotse manifest (expected a .jsonl or .jsonl.gz "
            "file of cuts, supervisions or recordings)"
        )
    try:
        manifest = load_manifest_lazy(path)
    except Exception as e:  # lhotse asserts or fails to construct an item
        raise ValueError(
            f"{path} is not a lhotse manifest of cuts, supervisions or "
            f"recordings: {type(e).__name__}: {e}"
        ) from None
    if manifest is None:
        raise ValueError(f"{path} is not a lhotse jsonl manifest")
    stats = ManifestStats(Path(path), _kind(manifest))
    words = read_lexicon_words(lexicon) if lexicon else None
    stats.lexicon_size = len(words) if words is not None else 0
    durations = array("f")
    for item in itertools.islice(manifest, max_items):
        stats.num_items += 1
        durations.append(item.duration)
        stats.total_seconds += item.duration
        if stats.kind == "cuts":
            for sup in item.supervisions:
                _add_supervision(stats, sup, words)
        elif stats.kind == "supervisions":
            _add_supervision(stats, item, words)
    stats.durations = np.frombuffer(durations, dtype=np.float32).copy()
    return stats


class _Head:
    """The first ``n`` items of a lazy manifest, itself lazy (re-iterable)."""

    def __init__(self, items: Iterable, n: int) -> None:
        self.items, self.n = items, n

    def __iter__(self) -> Iterator:
        return itertools.islice(iter(self.items), self.n)


def estimate_padding(
    path: Path, max_duration: float, num_buckets: int, max_cuts: Optional[int] = 200000
) -> PaddingStats:
    """Padding the training sampler would produce on a cut manifest.

    Replays one epoch of :func:`asrk2.data.datamodule.make_sampler` over the
    (first ``max_cuts``) cuts, read lazily.

    Args:
      path: a cut manifest.
      max_duration: seconds of audio per batch.
      num_buckets: buckets of the dynamic bucketing sampler.
      max_cuts: cap on the cuts replayed (None: all).
    Returns:
      The padding of that epoch.
    """
    cuts = CutSet.from_jsonl_lazy(path)
    if max_cuts is not None:
        cuts = CutSet(_Head(cuts, max_cuts))
    config = DataConfig(max_duration=max_duration, num_buckets=num_buckets)
    return padding_stats(make_sampler(cuts, config, shuffle=True))


def format_stats(stats: ManifestStats, top_oov: int = 10) -> str:
    """A human-readable multi-line summary of ``stats``."""
    lines = [
        f"{stats.path} ({stats.kind})",
        f"  items: {stats.num_items:,}   supervisions: {stats.num_supervisions:,}",
        f"  total: {stats.total_seconds / 3600:.2f} h   "
        f"mean: {stats.total_seconds / max(stats.num_items, 1):.2f} s",
    ]
    pct = stats.percentiles()
    if pct:
        lines.append(
            "  duration percentiles (s): "
            + "  ".join(f"p{p}={v:.2f}" for p, v in pct.items())
        )
    if stats.kind != "recordings":
        lines.append(
            f"  speakers: {len(stats.speakers):,}   words: {stats.num_words:,} "
            f"({len(stats.words):,} distinct)   empty transcripts: {stats.num_empty}"
        )
    if stats.lexicon_size:
        common: List[str] = [f"{w} ({n})" for w, n in stats.oov.most_common(top_oov)]
        lines.append(
            f"  OOV rate: {100 * stats.oov_rate:.2f}% of running words "
            f"({len(stats.oov):,} distinct OOV words; lexicon {stats.lexicon_size:,})"
        )
        if common:
            lines.append("  most frequent OOVs: " + ", ".join(common))
    return "\n".join(lines)


def plot_durations(stats: ManifestStats, out_png: Path, bins: int = 60) -> Path:
    """Draws the duration histogram into a PNG file.

    Args:
      stats: from :func:`compute_manifest_stats`.
      out_png: the image to write.
      bins: histogram bins.
    Returns:
      ``out_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(stats.durations, bins=bins, color="tab:blue")
    ax.set_xlabel("duration (s)")
    ax.set_ylabel(f"{stats.kind}")
    ax.set_title(
        f"{stats.path.name}: {stats.num_items:,} items, "
        f"{stats.total_seconds / 3600:.2f} h"
    )
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(out_png)
