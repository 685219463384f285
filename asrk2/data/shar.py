"""Training cuts from lhotse Shar: sequentially read shards for many nodes.

A Shar directory (``lhotse shar export``, or :func:`export_shar`) holds shards
``cuts.000000.jsonl.gz``, ``features.000000.tar``, ``recording.000000.tar``,
... : one cut manifest and one tar per field, item for item in the same
order. Training reads whole shards front to back, so a node needs no random
access to a shared file system, and the shards can sit in object storage.

:class:`SharCuts` is what the datamodule reads when ``data.shar_dir`` is set.
Every epoch it shuffles the shard list with ``seed + epoch`` (the same order
on every node), then gives DDP rank ``r`` of ``R`` the shards ``r::R`` and,
within a rank, dataloader worker ``w`` of ``W`` every ``W``-th of those
(lhotse's ``split_by_node``/``split_by_worker``, which read ``RANK`` and
``WORLD_SIZE`` as torchrun sets them). So each cut is read by exactly one
worker of one rank per epoch; under DDP the ranks end the epoch together when
the first runs out, so the others' last few batches go unused that epoch
(:func:`asrk2.train.distributed.until_any_rank_ends`).

Shards are checked when the directory is opened (every field has every
shard number, numbers are contiguous) and while read (a truncated or corrupt
tar, or one with fewer items than its manifest has cuts, is an error naming
the shard, never a silently short epoch).

Example::

    export_shar(CutSet.from_file("data/fbank/cuts_train.jsonl.gz"), "data/shar/train")
    cuts = CutSet(SharCuts("data/shar/train", seed=42))
"""

import gzip
import logging
import random
import re
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

from lhotse import CutSet
from lhotse.cut import Cut
from lhotse.shar.readers.lazy import LazySharIterator
from lhotse.shar.readers.utils import split_by_node, split_by_worker

from asrk2.utils import atomic_dir

__all__ = ["SharError", "SharCuts", "find_shards", "export_shar"]

log = logging.getLogger(__name__)

_SHARD_NAME = re.compile(r"^(?P<field>[A-Za-z_]+)\.(?P<index>\d{6})\.(?P<ext>.+)$")


class SharError(ValueError):
    """A Shar directory or shard that cannot be read as it should."""


def find_shards(shar_dir: Union[str, Path]) -> List[Dict[str, Path]]:
    """The shards of a Shar directory, each ``{field: path}`` with ``cuts``.

    Raises:
      SharError: no cut shards, a gap in the numbering, or a field that lacks
        a shard that ``cuts`` has (or has one ``cuts`` lacks); the message
        names the missing files.
    """
    shar_dir = Path(shar_dir)
    if not shar_dir.is_dir():
        raise SharError(f"{shar_dir}: no such Shar directory")
    by_field: Dict[str, Dict[int, Path]] = defaultdict(dict)
    for path in sorted(shar_dir.iterdir()):
        m = _SHARD_NAME.match(path.name)
        if m is None or (m["field"] == "cuts" and ".jsonl" not in path.name):
            continue
        by_field[m["field"]][int(m["index"])] = path
    cuts = by_field.pop("cuts", {})
    if not cuts:
        raise SharError(f"{shar_dir}: no cuts.NNNNNN.jsonl.gz shards")
    expected = set(range(max(cuts) + 1))
    problems = []
    if set(cuts) != expected:
        missing = sorted(expected - set(cuts))
        shown = ", ".join(f"{i:06d}" for i in missing)
        problems.append(f"cuts shards missing: {shown}")
    for field, paths in sorted(by_field.items()):
        missing = sorted(set(cuts) - set(paths))
        extra = sorted(set(paths) - set(cuts))
        if missing:
            problems.append(f"{field}.{missing[0]:06d} (and {len(missing) - 1} more) "
                            f"missing for existing cut shards")  # fmt: skip
        if extra:
            problems.append(f"{field}.{extra[0]:06d} has no cuts shard")
    if problems:
        raise SharError(f"{shar_dir}: " + "; ".join(problems))
    return [
        {"cuts": cuts[i], **{field: paths[i] for field, paths in by_field.items()}}
        for i in sorted(cuts)
    ]


def _num_cuts(manifest: Path) -> int:
    opener = gzip.open if manifest.suffix == ".gz" else open
    with opener(manifest, "rt") as f:
        return sum(1 for line in f if line.strip())


class SharCuts:
    """A lazy, re-iterable source of training cuts from a Shar directory.

    Args:
      shar_dir: the directory.
      seed: shard shuffling seed; the shard order of epoch ``e`` uses
        ``seed + e`` (:meth:`set_epoch`), the same on every rank.
      shuffle_shards: False keeps the shards in order (evaluation, tests).
      split: give each rank and dataloader worker its own shards (training);
        False reads every shard (e.g. for statistics on one process).
      fields: read only these fields besides the cuts (default: all); ``()``
        reads only the cut manifests, e.g. for the transcripts.
    Raises:
      SharError: see :func:`find_shards`.
    """

    def __init__(
        self,
        shar_dir: Union[str, Path],
        seed: int = 0,
        shuffle_shards: bool = True,
        split: bool = True,
        fields: Optional[Sequence[str]] = None,
    ) -> None:
        self.shar_dir = Path(shar_dir)
        self.shards = find_shards(self.shar_dir)
        if fields is not None:
            keep = {"cuts", *fields}
            self.shards = [
                {k: p for k, p in shard.items() if k in keep} for shard in self.shards
            ]
        self.seed = seed
        self.shuffle_shards = shuffle_shards
        self.split = split
        self.epoch = 0
        log.info("%s: %d shards, fields %s", self.shar_dir, len(self.shards),
                 sorted(set(self.shards[0]) - {"cuts"}))  # fmt: skip

    def set_epoch(self, epoch: int) -> None:
        """Selects epoch ``epoch``'s shard order for the next iteration."""
        self.epoch = epoch

    def check_split(self, world_size: int, num_workers: int) -> None:
        """Fails when a rank would get no shard; warns when a worker would.

        Raises:
          SharError: fewer shards than ranks.
        """
        if len(self.shards) < world_size:
            raise SharError(
                f"{self.shar_dir}: {len(self.shards)} shards for {world_size} ranks; "
                "export with a smaller --shard-size"
            )
        readers = world_size * max(1, num_workers)
        if len(self.shards) < readers:
            log.warning("%s: %d shards for %d ranks x %d workers: some workers "
                        "read nothing", self.shar_dir, len(self.shards), world_size,
                        num_workers)  # fmt: skip

    def my_shards(self) -> List[Dict[str, Path]]:
        """The shards this process reads this epoch, in order."""
        shards = list(self.shards)
        if self.shuffle_shards:
            random.Random(self.seed + self.epoch).shuffle(shards)
        if self.split:
            shards = split_by_worker(split_by_node(shards))
        return shards

    def __iter__(self) -> Iterator[Cut]:
        for shard in self.my_shards():
            yield from self._read(shard)

    @staticmethod
    def _read(shard: Dict[str, Path]) -> Iterator[Cut]:
        name = shard["cuts"]
        expected = _num_cuts(name)
        reader = LazySharIterator(fields={k: [str(v)] for k, v in shard.items()})
        count = 0
        try:
            for cut in reader:
                count += 1
                yield cut
        except (OSError, EOFError, tarfile.TarError, AssertionError, ValueError) as e:
            raise SharError(
                f"shard {name} (and its {sorted(set(shard) - {'cuts'})}): "
                f"unreadable after {count} of {expected} cuts: {e}"
            ) from e
        if count != expected:
            # zip() over the manifest and the tars stops at the shorter one.
            raise SharError(
                f"shard {name}: {count} of its {expected} cuts have data in "
                f"{sorted(set(shard) - {'cuts'})}; a tar is truncated"
            )


def export_shar(
    cuts: CutSet,
    out_dir: Union[str, Path],
    shard_size: int = 1000,
    fields: Sequence[str] = ("features",),
) -> int:
    """Writes ``cuts`` as a Shar directory, atomically (a temporary directory
    renamed into place when complete).

    Args:
      cuts: cuts with what ``fields`` names (precomputed features, audio).
      out_dir: the Shar directory to create; must not exist.
      shard_size: cuts per shard; with N nodes x W workers, at least N x W
        shards are needed for every worker to have data (more: better
        shuffling and balance).
      fields: ``features`` (stored as lilcom) and/or ``recording`` (FLAC).
    Returns:
      The number of shards written.
    Raises:
      FileExistsError: ``out_dir`` exists.
      ValueError: an unknown field.
    """
    formats = {"features": "lilcom", "recording": "flac"}
    unknown = sorted(set(fields) - set(formats))
    if unknown:
        raise ValueError(f"unknown Shar fields {unknown}; known: {sorted(formats)}")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; remove it to export again")
    with atomic_dir(out_dir) as tmp:
        written = cuts.to_shar(
            tmp, fields={f: formats[f] for f in fields}, shard_size=shard_size,
            verbose=True,
        )  # fmt: skip
    return len(written["cuts"])
