"""Small helpers shared by every stage: atomic writes and logging set-up."""

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

__all__ = ["atomic_path", "atomic_write_text", "setup_logging"]


@contextlib.contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it into place on success.

    On an exception the temporary file is removed and ``path`` is untouched, so
    an interrupted stage never leaves a half-written artefact behind.
    The temporary name keeps the suffix(es), so writers that dispatch on the
    file extension (lhotse's ``.jsonl.gz``, torch, sentencepiece) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix="".join(path.suffixes)
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp makes 0600 files; give the artefact the usual umask mode.
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Union[str, Path], text: str) -> None:
    """Writes ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def setup_logging(level: int = logging.INFO) -> None:
    """Configures a timestamped log format for command-line entry points."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s [%(name)s] %(message)s"
    )
