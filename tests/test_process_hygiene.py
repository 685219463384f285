"""What a killed run leaves behind: orphaned DataLoader workers, temporary files."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asrk2.data.kaldi_dir import import_kaldi_dir
from asrk2.features.fbank import FbankConfig, compute_fbank

# A parent whose DataLoader worker blocks on a full pipe: items of 1 MB that
# are never consumed. Without the parent-death signal the worker outlives a
# SIGKILLed parent indefinitely (torch's own parent check never runs while it
# is blocked flushing its queue).
PARENT = """
import sys, time
from torch.utils.data import DataLoader, Dataset
from asrk2.utils import children_die_with_parent
children_die_with_parent()
class Big(Dataset):
    def __len__(self): return 10 ** 6
    def __getitem__(self, i): return b"x" * 1_000_000
it = iter(DataLoader(Big(), batch_size=None, num_workers=1, prefetch_factor=8))
next(it)
print(it._workers[0].pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only reaping is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")
def test_dataloader_worker_dies_with_a_killed_parent():
    root = Path(__file__).resolve().parent.parent
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    worker = int(parent.stdout.readline())
    try:
        time.sleep(1.0)  # the worker fills the pipe
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 10
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the DataLoader worker outlived its parent"
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_compute_fbank_removes_the_temporary_manifest_of_a_killed_run(
    tiny_kaldi_dir, tmp_path
):
    cuts = import_kaldi_dir(tiny_kaldi_dir, tmp_path / "m", "train", prefix="tiny")
    out = tmp_path / "fbank" / "tiny_cuts_train.jsonl.gz"
    out.parent.mkdir()
    stale = out.parent / ".tiny_cuts_train.jsonl.gz.x1y2z3ab.jsonl.gz"
    stale.write_bytes(b"half a manifest")
    other = out.parent / ".another_cuts.jsonl.gz.x1y2z3ab.jsonl.gz"
    other.write_bytes(b"some other stage's file")
    written = compute_fbank(cuts, out.parent / "feats", out, FbankConfig(device="cpu"))
    assert sorted(written.ids) == sorted(cuts.ids)
    assert not stale.exists() and other.exists()
