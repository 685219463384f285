"""kaldifeat fbank (through lhotse and our config) against torchaudio's Kaldi fbank."""

import json

import numpy as np
import pytest
import torch
import torchaudio
from lhotse import CutSet

from asrk2.data.kaldi_dir import import_kaldi_dir
from asrk2.features.fbank import (
    BatchKaldifeatFbank,
    FbankConfig,
    compute_fbank,
    fbank_report_path,
    make_fbank_extractor,
    resolve_device,
)


def _torchaudio_fbank(samples: np.ndarray) -> torch.Tensor:
    # The same options as make_fbank_extractor: Kaldi defaults, no dither,
    # snip_edges=False and high_freq=-400 as lhotse's kaldifeat config uses.
    return torchaudio.compliance.kaldi.fbank(
        torch.from_numpy(samples).unsqueeze(0),
        num_mel_bins=80,
        dither=0.0,
        snip_edges=False,
        low_freq=20.0,
        high_freq=-400.0,
        sample_frequency=16000,
    )


@pytest.mark.parametrize("seconds", [0.5, 1.37, 3.0])
def test_kaldifeat_matches_torchaudio(seconds):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    samples = (
        0.4 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    ).astype(np.float32)
    ours = make_fbank_extractor(FbankConfig(device="cpu")).extract(samples, 16000)
    ref = _torchaudio_fbank(samples).numpy()
    assert ours.shape == ref.shape == (round(seconds * 100), 80)
    assert np.abs(ours - ref).max() < 1e-3


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            resolve_device("cuda")


def test_compute_fbank_writes_manifest_and_features(tiny_kaldi_dir, tmp_path):
    cuts = import_kaldi_dir(
        tiny_kaldi_dir, tmp_path / "manifests", "train", prefix="tiny"
    )
    out = tmp_path / "fbank" / "tiny_cuts_train.jsonl.gz"
    with_feats = compute_fbank(
        cuts, tmp_path / "fbank" / "feats", out, FbankConfig(device="cpu")
    )
    assert out.is_file()
    reloaded = CutSet.from_file(out)
    assert sorted(reloaded.ids) == sorted(cuts.ids) == sorted(with_feats.ids)
    for cut in reloaded:
        feats = cut.load_features()
        assert feats.shape == (cut.num_frames, 80)
        # lilcom is lossy but close: compare with a fresh extraction.
        direct = _torchaudio_fbank(cut.load_audio()[0]).numpy()
        assert feats.shape == direct.shape
        assert np.abs(feats - direct).max() < 0.1


def test_a_cut_that_fails_extraction_is_skipped_named_and_the_rest_written(
    tiny_kaldi_dir, tmp_path, monkeypatch
):
    """lhotse's batch loop stops at a failing cut; the others still get fbank."""
    cuts = import_kaldi_dir(tiny_kaldi_dir, tmp_path / "m", "train", prefix="tiny")
    bad_samples = cuts["spk1-u2"].num_samples
    original = BatchKaldifeatFbank.extract

    def extract(self, samples, sampling_rate):
        if np.asarray(samples).shape[-1] == bad_samples:
            raise RuntimeError("simulated extractor failure")
        return original(self, samples, sampling_rate)

    monkeypatch.setattr(BatchKaldifeatFbank, "extract", extract)
    out = tmp_path / "fbank" / "tiny_cuts_train.jsonl.gz"
    written = compute_fbank(
        cuts, tmp_path / "fbank" / "feats", out, FbankConfig(device="cpu")
    )
    assert sorted(written.ids) == ["spk1-u1", "spk1-u3"]
    for cut in CutSet.from_file(out):
        direct = _torchaudio_fbank(cut.load_audio()[0]).numpy()
        assert np.abs(cut.load_features() - direct).max() < 0.1
    report = json.loads(fbank_report_path(out).read_text())
    assert report["skipped"] == {"fbank failed": {"count": 1, "ids": ["spk1-u2"]}}
    assert report["num_cuts"] == 2
