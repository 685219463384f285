"""BatchKaldifeatFbank: a call per waveform on CPU; the CUDA way on CPU tensors."""

import numpy as np
import pytest
import torch
from lhotse import CutSet

from asrk2.data.kaldi_dir import import_kaldi_dir
from asrk2.features import fbank
from asrk2.features.fbank import FbankConfig


def _extractor(batch_on_device: bool) -> fbank.BatchKaldifeatFbank:
    extractor = fbank.make_fbank_extractor(FbankConfig(device="cpu"))
    extractor.batch_on_device = batch_on_device
    return extractor


@pytest.mark.parametrize("batch_on_device", [False, True])
def test_batch_extraction_matches_single_waveforms(batch_on_device):
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (8000, 12345)]
    single = [_extractor(False).extract(w, 16000) for w in waves]
    ours = _extractor(batch_on_device).extract_batch([w[None] for w in waves], 16000)
    for a, b in zip(ours, single):
        assert a.shape == b.shape and np.abs(np.asarray(a) - b).max() < 1e-5
    padded = torch.zeros(2, 12345)
    padded[0, :8000], padded[1] = torch.from_numpy(waves[0]), torch.from_numpy(waves[1])
    lens = torch.tensor([8000, 12345])
    again = _extractor(batch_on_device).extract_batch(padded, 16000, lengths=lens)
    assert [x.shape[0] for x in again] == [x.shape[0] for x in single]


def test_compute_fbank_the_cuda_way_on_cpu(tiny_kaldi_dir, tmp_path, monkeypatch):
    cuts = import_kaldi_dir(tiny_kaldi_dir, tmp_path / "m", "train", prefix="t")
    config = FbankConfig(device="cpu")
    ref = fbank.compute_fbank(cuts, tmp_path / "a", tmp_path / "a.jsonl.gz", config)
    cuda_way = _extractor(True)
    monkeypatch.setattr(fbank, "make_fbank_extractor", lambda _: cuda_way)
    fbank.compute_fbank(cuts, tmp_path / "b", tmp_path / "b.jsonl.gz", config)
    out = CutSet.from_file(tmp_path / "b.jsonl.gz").to_eager()
    assert sorted(out.ids) == sorted(ref.ids)
    for cut in out:
        np.testing.assert_allclose(cut.load_features(), ref[cut.id].load_features())


def test_on_cpu_the_extractor_works_per_waveform():
    extractor = fbank.make_fbank_extractor(FbankConfig(device="cpu"))
    assert not extractor.batch_on_device
    assert extractor.config.chunk_size == 1000


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA device"):
        fbank.make_fbank_extractor(FbankConfig(device="cuda"))
