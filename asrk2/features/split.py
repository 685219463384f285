"""Feature extraction for 10,000-hour manifests: split, extract per piece, combine.

A GigaSpeech XL cut manifest has ~8 million cuts. It is streamed into pieces
of ``chunk_size`` cuts (never loaded whole); each piece is extracted on its
own, so jobs can share the work (``start``/``stop`` piece ranges, one per GPU
or machine), an interrupted run resumes at the first unfinished piece, and a
crash costs at most one piece. The piece manifests are finally concatenated,
again streaming, into one manifest that lhotse reads lazily.
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional

from lhotse import CutSet

from asrk2.features.fbank import FbankConfig, compute_fbank
from asrk2.utils import atomic_path

__all__ = ["combine_pieces", "compute_fbank_pieces", "manifest_name", "split_cuts"]

log = logging.getLogger(__name__)


def manifest_name(path: Path) -> str:
    """``dir/gigaspeech_cuts_XL.jsonl.gz -> gigaspeech_cuts_XL``."""
    name = Path(path).name
    for suffix in (".jsonl.gz", ".jsonl", ".json.gz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def _pieces(split_dir: Path) -> List[Path]:
    return sorted(split_dir.glob("cuts.*.jsonl.gz"))


def split_cuts(cuts_path: Path, split_dir: Path, chunk_size: int) -> List[Path]:
    """Streams a cut manifest into pieces ``split_dir/cuts.NNNNNN.jsonl.gz``.

    The pieces are written into a scratch directory that is renamed to
    ``split_dir`` when complete, so concurrent or interrupted runs never see a
    partial split; an existing ``split_dir`` is reused as is.

    Args:
      cuts_path: the (large) cut manifest.
      split_dir: where the pieces go.
      chunk_size: cuts per piece.
    Returns:
      The piece manifests, in order.
    """
    split_dir = Path(split_dir)
    if split_dir.is_dir() and _pieces(split_dir):
        return _pieces(split_dir)
    split_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=split_dir.parent, prefix=f".{split_dir.name}."))
    try:
        writer, index, count = None, 0, 0
        for cut in CutSet.from_jsonl_lazy(cuts_path):
            if writer is None or count == chunk_size:
                if writer is not None:
                    writer.close()
                writer = CutSet.open_writer(
                    scratch / f"cuts.{index:06d}.jsonl.gz", overwrite=True
                )
                index, count = index + 1, 0
            writer.write(cut)
            count += 1
        if writer is not None:
            writer.close()
        try:
            os.rename(scratch, split_dir)
        except OSError:  # another job finished the same split first
            log.info("%s was split by another job; using its pieces", cuts_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info(
        "Split %s into %d pieces of <= %d cuts",
        cuts_path,
        len(_pieces(split_dir)),
        chunk_size,
    )
    return _pieces(split_dir)


def _output_of(piece: Path) -> Path:
    return piece.with_name(piece.name.replace("cuts.", "fbank.", 1))


def combine_pieces(pieces: List[Path], out_path: Path) -> Path:
    """Concatenates piece manifests into ``out_path`` (streaming, atomically)."""
    with atomic_path(out_path) as tmp, CutSet.open_writer(
        tmp, overwrite=True
    ) as writer:
        for piece in pieces:
            for cut in CutSet.from_jsonl_lazy(piece):
                writer.write(cut)
    return out_path


def compute_fbank_pieces(
    cuts_path: Path,
    output_dir: Path,
    config: FbankConfig,
    chunk_size: int = 10000,
    start: int = 0,
    stop: Optional[int] = None,
) -> Optional[Path]:
    """Extracts fbank for a large manifest piece by piece.

    Pieces live in ``output_dir/<name>_split/``: ``cuts.N.jsonl.gz`` (input),
    ``fbank.N.lca`` (features) and ``fbank.N.jsonl.gz`` (cuts with features).
    Finished pieces are skipped. When every piece is done (by this job or
    others), ``output_dir/<name>.jsonl.gz`` is written.

    Args:
      cuts_path: the cut manifest, e.g. ``gigaspeech_cuts_XL.jsonl.gz``.
      output_dir: where features and manifests go.
      config: fbank options.
      chunk_size: cuts per piece.
      start, stop: the piece range this job works on (``stop`` exclusive;
        None = to the end), to share the work between jobs.
    Returns:
      The combined manifest, or None while other pieces are still missing.
    """
    name = manifest_name(cuts_path)
    pieces = split_cuts(cuts_path, Path(output_dir) / f"{name}_split", chunk_size)
    stop = len(pieces) if stop is None else min(stop, len(pieces))
    for index in range(start, stop):
        out = _output_of(pieces[index])
        if out.is_file():
            continue
        log.info("Piece %d/%d: %s", index + 1, len(pieces), pieces[index])
        compute_fbank(
            CutSet.from_jsonl_lazy(pieces[index]),
            out.with_suffix("").with_suffix(".lca"),
            out,
            config,
        )
    outputs = [_output_of(p) for p in pieces]
    todo = [p.name for p in outputs if not p.is_file()]
    if todo:
        log.info(
            "%d pieces still to do (e.g. %s); not combining yet", len(todo), todo[0]
        )
        return None
    return combine_pieces(outputs, Path(output_dir) / f"{name}.jsonl.gz")
