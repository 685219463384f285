"""Small helpers shared by every stage: atomic writes, process hygiene, logging."""

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.util
import os
import platform
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Iterator, List, Union

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_text",
    "children_die_with_parent",
    "machine_info",
    "remove_stale_temporaries",
    "setup_logging",
]

log = logging.getLogger(__name__)


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


@contextlib.contextmanager
def atomic_dir(path: Union[str, Path]) -> Iterator[Path]:
    """Yields a temporary directory beside ``path``; it replaces ``path`` on success.

    The directory version of :func:`atomic_path`: readers see the old
    directory or the complete new one, never a half-written one, and on an
    exception the temporary directory is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove_stale_temporaries(directory: Union[str, Path], pattern: str) -> List[Path]:
    """Deletes the temporary files :func:`atomic_path` left for ``pattern``.

    A process killed while writing (SIGKILL, a lost node) leaves its
    ``.NAME.XXXXXXXX.SUFFIX`` file behind; the next run of the same stage
    calls this before it writes, so they do not pile up. Only call it for
    artefacts no other live process is writing.

    Args:
      directory: where the artefacts go.
      pattern: a glob of the artefacts' final names, e.g. ``checkpoint-*.pt``.
    Returns:
      The removed files.
    """
    removed = []
    for path in Path(directory).glob(f".{pattern}.*"):
        if path.is_file():
            path.unlink()
            removed.append(path)
    if removed:
        names = ", ".join(p.name for p in removed[:3])
        log.info("Removed %d temporary files of an interrupted run in %s: %s",
                 len(removed), directory, names)  # fmt: skip
    return removed


class _AfterFork:
    """The object :func:`multiprocessing.util.register_after_fork` keys on."""


_AFTER_FORK = _AfterFork()
_AFTER_FORK_REGISTERED = False
_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal(_: object) -> None:
    """In a new child process: get SIGKILL when the parent dies (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)  # the parent died before prctl took effect


def children_die_with_parent() -> None:
    """Makes every multiprocessing child of this process die with it (Linux).

    A DataLoader worker blocked on a full pipe never reaches the check by
    which torch notices its parent is gone, so after the main process is
    killed (SIGKILL, the OOM killer) it would hang on, holding its memory.
    The kernel's parent-death signal ends it instead. Applies to the
    processes started after this call (DataLoader workers, process pools);
    a no-op outside Linux. Calling it twice is harmless.
    """
    global _AFTER_FORK_REGISTERED
    if sys.platform.startswith("linux") and not _AFTER_FORK_REGISTERED:
        multiprocessing.util.register_after_fork(_AFTER_FORK, _set_parent_death_signal)
        _AFTER_FORK_REGISTERED = True


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


def machine_info() -> str:
    """Cores, CPU model and torch threads, for the results header."""
    import torch  # here: the other helpers do not need it
    model = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {model}, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}"
    )
