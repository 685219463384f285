"""Global CMVN: statistics against numpy, and the encoder's normaliser in every path."""

import numpy as np
import pytest
import torch
from lhotse import CutSet, Features, LilcomChunkyWriter
from lhotse.testing.dummies import dummy_cut
from test_streaming_model import ENC, stream

from asrk2.features.cmvn import GlobalCmvn, compute_global_cmvn
from asrk2.model import CtcModel, CtcModelConfig


def test_statistics_equal_numpy_on_the_concatenated_frames(tmp_path):
    rng = np.random.default_rng(0)
    mats = [rng.normal(3.0, 2.0, size=(n, 5)).astype(np.float32) + np.arange(5)
            for n in (40, 17, 63)]
    cuts = []
    with LilcomChunkyWriter(tmp_path / "feats.lca") as writer:
        for i, mat in enumerate(mats):
            key = writer.write(f"c{i}", mat)
            cut = dummy_cut(i, duration=mat.shape[0] * 0.01)
            cut.features = Features(
                type="fbank", num_frames=mat.shape[0], num_features=5,
                frame_shift=0.01, sampling_rate=16000, start=0.0,
                duration=mat.shape[0] * 0.01, storage_type="lilcom_chunky",
                storage_path=str(tmp_path / "feats.lca"), storage_key=key,
            )  # fmt: skip
            cuts.append(cut)
    stats = compute_global_cmvn(CutSet.from_cuts(cuts), progress=False)
    # lilcom is lossy: the reference is computed from what was stored.
    stored = np.concatenate([c.load_features() for c in cuts]).astype(np.float64)
    assert stats.num_frames == 120 and stats.num_cuts == 3
    assert np.allclose(stats.mean, stored.mean(axis=0), atol=1e-6)
    assert np.allclose(stats.std, stored.std(axis=0), atol=1e-6)
    first_two = compute_global_cmvn(CutSet.from_cuts(cuts), max_cuts=2, progress=False)
    assert first_two.num_frames == 57
    path = tmp_path / "cmvn.json"
    stats.save(path)
    assert GlobalCmvn.load(path) == stats


def test_bad_statistics_file_is_named(tmp_path):
    path = tmp_path / "global_cmvn.json"
    path.write_text('{"mean": [0.0], "std": [0.0], "num_frames": 1, "num_cuts": 1}')
    with pytest.raises(ValueError, match="global_cmvn.json"):
        GlobalCmvn.load(path)


def _model_with_stats(seed=0):
    torch.manual_seed(seed)
    model = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=9)).eval()
    mean, std = torch.randn(20) * 5, torch.rand(20) * 3 + 0.5
    model.encoder.feature_norm.set_stats(mean, std)
    return model, mean, std


def test_normaliser_is_applied_and_travels_in_the_state_dict():
    model, mean, std = _model_with_stats()
    x = torch.randn(2, 60, 20) * std + mean
    lens = torch.tensor([60, 60])
    with torch.no_grad():
        out, _ = model(x, lens)
        plain = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=9)).eval()
        plain.load_state_dict(model.state_dict())
        assert torch.equal(plain.encoder.feature_norm.mean, mean)
        assert torch.allclose(plain(x, lens)[0], out)
        # The same weights without the statistics see other inputs.
        plain.encoder.feature_norm.set_stats(torch.zeros(20), torch.ones(20))
        unnormalised, _ = plain(x, lens)
        ref, _ = plain((x - mean) / std, lens)
    assert torch.allclose(out, ref, atol=1e-5)
    assert not torch.allclose(out, unnormalised, atol=1e-3)


def test_streaming_applies_the_same_statistics():
    model, mean, std = _model_with_stats(1)
    x = torch.randn(1, 97, 20) * std + mean
    with torch.no_grad():
        ref, _ = model(x, torch.tensor([97]), 4, -1)
        out = stream(model, x, 4, -1)
    assert torch.allclose(out, ref, atol=1e-5)


def test_stats_of_the_wrong_dimension_are_refused():
    model = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=9))
    with pytest.raises(ValueError, match="dimension"):
        model.encoder.feature_norm.set_stats(torch.zeros(80), torch.ones(80))
