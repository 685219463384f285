"""Datamodule: filtering report, loaders (precomputed, on the fly), resume, padding."""

import logging

import numpy as np
import pytest
import torch
from conftest import write_kaldi_dir
from lhotse import CutSet, SupervisionSegment
from lhotse.dataset import SimpleCutSampler
from lhotse.testing.dummies import dummy_cut

from asrk2.data.augment import AudioAugmentConfig
from asrk2.data.datamodule import (
    DataConfig,
    filter_cuts,
    make_eval_loader,
    make_sampler,
    make_train_loader,
    padding_stats,
    unpack_batch,
)
from asrk2.data.kaldi_dir import import_kaldi_dir
from asrk2.features.fbank import FbankConfig, compute_fbank

WORDS = "turn on the lights in the kitchen now please".split()


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    """Twelve utterances of 0.8 to 4.1 s: without features, with, and the manifest."""
    root = tmp_path_factory.mktemp("dm")
    utts = {f"spk1-u{i:02d}": " ".join(WORDS[: 2 + i % 7]) for i in range(12)}
    raw = import_kaldi_dir(write_kaldi_dir(root, utts), root / "m", "train", prefix="t")
    feats = compute_fbank(
        raw, root / "f", root / "f.jsonl.gz", FbankConfig(device="cpu")
    )
    return raw, feats, root / "f.jsonl.gz"


def _dummy_cuts(durations):
    return CutSet.from_cuts(
        dummy_cut(
            i,
            duration=d,
            supervisions=[
                SupervisionSegment(f"s{i}", f"dummy-recording-{i:04d}", 0, d, text="A")
            ],
        )
        for i, d in enumerate(durations)
    )


def test_filter_reports_reasons_with_examples(caplog):
    cuts = _dummy_cuts([0.1, 1.0, 2.0, 25.0, 3.0])
    with caplog.at_level(logging.WARNING):
        kept, reasons = filter_cuts(
            cuts, DataConfig(), fits=lambda c: c.duration != 2.0
        )
    assert [c.duration for c in kept] == [1.0, 3.0]
    assert reasons == {"too short": 1, "too long": 1, "more tokens than frames": 1}
    assert "dummy-mono-cut-0002 (2.00 s)" in caplog.text


def test_filter_is_lazy_on_lazy_cuts(tmp_path, caplog):
    path = tmp_path / "c.jsonl.gz"
    _dummy_cuts([0.1, 1.0, 25.0]).to_file(path)
    kept, reasons = filter_cuts(CutSet.from_jsonl_lazy(path), DataConfig())
    assert kept.is_lazy and not reasons
    with caplog.at_level(logging.WARNING):
        assert [c.duration for c in kept] == [1.0]
    assert reasons == {"too short": 1, "too long": 1}
    assert "Dropped 2 cuts in this pass (kept 1)" in caplog.text
    assert [c.duration for c in kept] == [1.0]  # a second epoch
    assert reasons == {"too short": 1, "too long": 1}  # counted once


def test_train_loader_batches_and_unpack(cuts):
    _, feats, _ = cuts
    config = DataConfig(max_duration=6.0, num_buckets=2)
    seen = []
    for batch in make_train_loader(feats, config, seed=3):
        x, lens, texts, ids = unpack_batch(batch)
        assert x.shape[0] == len(texts) == len(ids) and x.shape[2] == 80
        assert int(lens.max()) == x.shape[1]
        seen += ids
    assert sorted(seen) == sorted(feats.ids)


def _epoch_ids(loader):
    return [tuple(c.id for c in batch["supervisions"]["cut"]) for batch in loader]


def test_sampler_state_dict_resumes_exactly(cuts):
    _, feats, _ = cuts
    config = DataConfig(max_duration=5.0, num_buckets=2)
    loader = make_train_loader(feats, config, seed=7)
    loader.sampler.set_epoch(2)
    full = _epoch_ids(loader)
    assert len(full) >= 3
    loader = make_train_loader(feats, config, seed=7)
    loader.sampler.set_epoch(2)
    it = iter(loader)
    head = [tuple(c.id for c in next(it)["supervisions"]["cut"]) for _ in range(2)]
    state = loader.sampler.state_dict()
    resumed = make_train_loader(feats, config, seed=7)
    resumed.sampler.load_state_dict(state)
    assert head + _epoch_ids(resumed) == full


@pytest.mark.parametrize("num_workers", [0, 1])
def test_on_the_fly_features_match_precomputed(cuts, num_workers):
    raw, feats, _ = cuts
    config = DataConfig(
        max_duration=100.0,
        num_buckets=1,
        shuffle=False,
        on_the_fly_features=True,
        num_workers=num_workers,
    )
    batch = next(iter(make_eval_loader(raw, config)))
    x, lens, _, ids = unpack_batch(batch)
    for row, cut_id in enumerate(ids):
        ref = torch.from_numpy(feats[cut_id].load_features())
        assert int(lens[row]) == ref.shape[0]
        # lilcom storage is lossy, so precomputed features differ a little.
        assert (x[row, : ref.shape[0]] - ref).abs().max() < 0.1


def test_on_the_fly_speed_perturbation(cuts):
    raw, _, _ = cuts
    config = DataConfig(
        max_duration=100.0,
        num_buckets=1,
        on_the_fly_features=True,
        augment=AudioAugmentConfig(speed_factors=[0.9, 1.1]),
    )
    ids = [
        i
        for batch in make_train_loader(raw, config, seed=0)
        for i in unpack_batch(batch)[3]
    ]
    assert len(ids) == len(raw)
    assert any("_sp0.9" in i or "_sp1.1" in i for i in ids)


def test_clear_errors_for_missing_features(cuts):
    raw, feats, _ = cuts
    with pytest.raises(ValueError, match="no features"):
        make_train_loader(raw, DataConfig())
    augment = AudioAugmentConfig(speed_factors=[0.9, 1.1])
    with pytest.raises(ValueError, match="on_the_fly_features"):
        make_train_loader(feats, DataConfig(augment=augment))


def test_bucketing_wastes_less_padding_than_simple_sampling():
    rng = np.random.default_rng(0)
    cuts = _dummy_cuts(rng.gamma(4.0, 1.5, size=2000).clip(0.5, 20.0).round(2).tolist())
    config = DataConfig(max_duration=120.0, num_buckets=20)
    bucketed = padding_stats(make_sampler(cuts, config, shuffle=True))
    simple = padding_stats(SimpleCutSampler(cuts, max_duration=120.0, shuffle=True))
    assert bucketed.num_cuts == simple.num_cuts == 2000
    assert bucketed.ratio < 0.10 < simple.ratio


def test_lazy_filtered_cuts_feed_the_train_loader(cuts):
    _, feats, path = cuts
    lazy = CutSet.from_jsonl_lazy(path)
    kept, reasons = filter_cuts(lazy, DataConfig(max_cut_duration=3.0))
    config = DataConfig(max_duration=6.0, num_buckets=2)
    loader = make_train_loader(kept, config)
    ids = [i for batch in loader for i in unpack_batch(batch)[3]]
    assert sorted(ids) == sorted(c.id for c in feats if c.duration <= 3.0)
    assert reasons["too long"] == sum(c.duration > 3.0 for c in feats)
    assert loader.sampler.state_dict()["epoch"] == 0


def test_cuts_an_augmentation_made_unusable_are_dropped(cuts):
    raw, _, _ = cuts
    config = DataConfig(
        max_duration=100.0, num_buckets=1, on_the_fly_features=True,
        augment=AudioAugmentConfig(speed_factors=[0.9, 1.1]),
    )  # fmt: skip

    def fits(cut) -> bool:  # as if every 1.1x copy had too few frames
        return not cut.id.endswith("_sp1.1")

    ids = [
        i
        for epoch in range(3)
        for batch in make_train_loader(raw, config, seed=epoch, fits=fits)
        for i in unpack_batch(batch)[3]
    ]
    assert any(i.endswith("_sp0.9") for i in ids)
    assert not any(i.endswith("_sp1.1") for i in ids)
