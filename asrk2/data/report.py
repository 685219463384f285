"""What an import kept, skipped and repaired, with the ids of the items."""

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

from asrk2.utils import atomic_write_text

__all__ = ["ImportReport"]

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """Counts of skipped and repaired items, each with (up to) their ids.

    ``skipped`` items are left out of the manifests (missing or undecodable
    audio, empty transcripts, ...); ``fixed`` items are kept but changed
    (resampled audio, clipped segments); ``unchecked`` items are kept without
    their audio having been read (pipes whose duration came from
    ``reco2dur``), so a later stage may still drop them. Counts are exact; at most
    ``max_ids`` ids are kept per reason, so a 10,000-hour corpus with many bad
    items does not hold millions of ids in memory.

    Attributes:
      num_cuts: cuts written.
      num_seconds: their total duration.
      skipped: reason -> ids of the skipped items (at most ``max_ids``).
      fixed: what was done -> ids of the repaired items (at most ``max_ids``).
      unchecked: why -> ids of the items kept unverified (at most ``max_ids``).
      counts: reason -> exact number of items, for every table.
      max_ids: the cap on stored ids per reason.
    """

    num_cuts: int = 0
    num_seconds: float = 0.0
    skipped: Dict[str, List[str]] = field(default_factory=dict)
    fixed: Dict[str, List[str]] = field(default_factory=dict)
    unchecked: Dict[str, List[str]] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    max_ids: int = 10000

    def _add(self, table: Dict[str, List[str]], reason: str, item_id: str) -> None:
        self.counts[reason] += 1
        ids = table.setdefault(reason, [])
        if len(ids) < self.max_ids:
            ids.append(item_id)

    def skip(self, reason: str, item_id: str) -> None:
        """Records that ``item_id`` was left out because of ``reason``."""
        self._add(self.skipped, reason, item_id)

    def fix(self, what: str, item_id: str) -> None:
        """Records that ``item_id`` was kept after a repair (``what``)."""
        self._add(self.fixed, what, item_id)

    def note_unchecked(self, why: str, item_id: str) -> None:
        """Records that ``item_id`` was kept without reading its audio (``why``)."""
        self._add(self.unchecked, why, item_id)

    def summary(self) -> str:
        """One line, e.g. ``"3 cuts kept; 1 skipped (missing audio file: u2)"``."""
        parts = [f"{self.num_cuts} cuts kept ({self.num_seconds / 3600:.2f} h)"]
        for label, table in self._tables():
            for reason, ids in sorted(table.items()):
                shown = ", ".join(ids[:5]) + (" ..." if self.counts[reason] > 5 else "")
                parts.append(f"{self.counts[reason]} {label} ({reason}: {shown})")
        return "; ".join(parts)

    def _tables(self) -> List[Tuple[str, Dict[str, List[str]]]]:
        return [
            ("skipped", self.skipped),
            ("fixed", self.fixed),
            ("unchecked", self.unchecked),
        ]

    def to_dict(self) -> dict:
        """A JSON-serialisable form: counts and ids per reason."""
        data: dict = {
            "num_cuts": self.num_cuts,
            "num_seconds": round(self.num_seconds, 3),
        }
        for label, table in self._tables():
            data[label] = {
                r: {"count": self.counts[r], "ids": ids} for r, ids in table.items()
            }
        return data

    @staticmethod
    def from_dict(data: dict) -> "ImportReport":
        """Inverse of :meth:`to_dict`."""
        report = ImportReport(
            num_cuts=data["num_cuts"], num_seconds=data["num_seconds"]
        )
        for name in ("skipped", "fixed", "unchecked"):
            for reason, entry in data.get(name, {}).items():
                getattr(report, name)[reason] = list(entry["ids"])
                report.counts[reason] = entry["count"]
        return report

    def write(self, path: Path) -> None:
        """Writes the report as JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @staticmethod
    def read(path: Path) -> "ImportReport":
        """Reads a report written by :meth:`write`."""
        return ImportReport.from_dict(json.loads(Path(path).read_text()))
