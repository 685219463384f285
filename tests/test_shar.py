"""Training from lhotse Shar: exact coverage across ranks and workers, bad shards."""

import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
from lhotse import CutSet

from asrk2.data.datamodule import (
    DataConfig,
    make_train_loader,
    set_train_epoch,
    unpack_batch,
)
from asrk2.data.shar import SharCuts, SharError, export_shar, find_shards
from asrk2.testing.toy_data import make_toy_corpus

ROOT = Path(__file__).resolve().parent.parent
NUM_CUTS = 60


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    work = tmp_path_factory.mktemp("shar")
    cuts, _ = make_toy_corpus(work, num_cuts=NUM_CUTS, nbpe=40, num_features=20)
    shar_dir = work / "shar"
    assert export_shar(cuts, shar_dir, shard_size=7) == 9
    return cuts, shar_dir


def _epoch_ids(shar_dir: Path, epoch: int, monkeypatch, rank: int) -> List[str]:
    """Every cut id one rank's loader (2 workers) gives in one epoch."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = DataConfig(max_duration=20.0, num_buckets=2, num_workers=2,
                        shar_dir=str(shar_dir))  # fmt: skip
    source = SharCuts(shar_dir, seed=3)
    loader = make_train_loader(CutSet(source), config, seed=3, shar_source=source)
    set_train_epoch(loader, epoch)
    ids: List[str] = []
    for batch in loader:
        ids += unpack_batch(batch)[3]
    return ids


def test_an_epoch_covers_every_cut_once_over_2_ranks_x_2_workers(corpus, monkeypatch):
    cuts, shar_dir = corpus
    expected = sorted(c.id for c in cuts)
    orders = []
    for epoch in (0, 1):
        per_rank = [_epoch_ids(shar_dir, epoch, monkeypatch, r) for r in (0, 1)]
        every = per_rank[0] + per_rank[1]
        assert sorted(every) == expected  # each cut exactly once, none missing
        assert set(per_rank[0]).isdisjoint(per_rank[1]) and all(per_rank)
        orders.append(every)
    assert orders[0] != orders[1]  # shards and batches reshuffled per epoch


def test_shar_cuts_carry_the_same_features(corpus):
    cuts, shar_dir = corpus
    by_id = {c.id: c for c in cuts}
    read = list(SharCuts(shar_dir, split=False, shuffle_shards=False))
    assert [c.id for c in read] == [c.id for c in cuts]
    for cut in read:
        # lilcom, as the recipes' fbank archives: lossy by design, ~1e-2 here.
        original = by_id[cut.id].load_features()
        assert np.abs(cut.load_features() - original).max() < 0.05
        assert cut.supervisions[0].text == by_id[cut.id].supervisions[0].text


def _copy(shar_dir: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in shar_dir.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_a_missing_shard_is_an_error_naming_it(corpus, tmp_path):
    broken = _copy(corpus[1], tmp_path / "broken")
    (broken / "features.000004.tar").unlink()
    with pytest.raises(SharError, match=r"features\.000004 .*missing"):
        find_shards(broken)
    (broken / "features.000004.tar").write_bytes(
        (corpus[1] / "features.000004.tar").read_bytes()
    )
    (broken / "cuts.000002.jsonl.gz").unlink()
    with pytest.raises(SharError, match="cuts shards missing: 000002"):
        SharCuts(broken)


def test_a_truncated_shard_fails_naming_it_instead_of_a_short_epoch(corpus, tmp_path):
    broken = _copy(corpus[1], tmp_path / "broken")
    tar = broken / "features.000003.tar"
    data = tar.read_bytes()
    # Cut at a 512-byte block boundary: tar readers may see a clean end there.
    tar.write_bytes(data[: (len(data) // 2) // 512 * 512])
    with pytest.raises(SharError, match=r"cuts\.000003\.jsonl\.gz"):
        list(SharCuts(broken, split=False, shuffle_shards=False))


def test_export_cli_writes_shards_atomically(corpus, tmp_path):
    cuts, _ = corpus
    manifest = tmp_path / "cuts.jsonl.gz"
    cuts.to_file(manifest)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "local/export_shar.py"), "--cuts",
           str(manifest), "--out-dir", str(out), "--shard-size", "25"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "3 shards of features" in run.stdout
    assert len(find_shards(out)) == 3
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_an_epoch_ended_early_leaves_nothing_to_the_next(corpus):
    """With no workers the sampler runs in this process; DDP may end an epoch
    before it is used up (asrk2.train.distributed.until_any_rank_ends)."""
    cuts, shar_dir = corpus
    config = DataConfig(max_duration=20.0, num_buckets=2, num_workers=0,
                        shar_dir=str(shar_dir))  # fmt: skip
    source = SharCuts(shar_dir, seed=3)
    loader = make_train_loader(CutSet(source), config, seed=3, shar_source=source)
    set_train_epoch(loader, 0)
    batches = iter(loader)
    next(batches), next(batches)
    set_train_epoch(loader, 1)
    ids = [i for batch in loader for i in unpack_batch(batch)[3]]
    assert sorted(ids) == sorted(c.id for c in cuts)


def test_fewer_shards_than_ranks_is_an_error(corpus, caplog):
    source = SharCuts(corpus[1])
    with pytest.raises(SharError, match="9 shards for 10 ranks"):
        source.check_split(world_size=10, num_workers=2)
    source.check_split(world_size=4, num_workers=4)
    assert "9 shards for 4 ranks x 4 workers" in caplog.text
    only_text = SharCuts(corpus[1], split=False, fields=())
    assert all(set(shard) == {"cuts"} for shard in only_text.shards)
    # Transcripts without reading a feature tar (the manifest keeps a placeholder).
    assert all(cut.supervisions[0].text for cut in only_text)
