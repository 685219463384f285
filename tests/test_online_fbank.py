"""Online fbank fed in pieces equals the offline fbank used for training features."""

from typing import List

import numpy as np
import pytest
import torch

from asrk2.features.fbank import FbankConfig, make_fbank_extractor
from asrk2.features.online import OnlineFbankExtractor

SAMPLE_RATE = 16000


def chirp(seconds: float, seed: int) -> torch.Tensor:
    """A deterministic chirp with a little noise, (num_samples,) in [-1, 1]."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(seed)
    wave = 0.3 * np.sin(2 * np.pi * 300 * t * (1 + 0.5 * t))
    wave += 0.01 * rng.standard_normal(t.size)
    return torch.from_numpy(wave.astype(np.float32))


def offline_fbank(wave: torch.Tensor) -> torch.Tensor:
    """The features compute_fbank would store (before lilcom), (T, 80)."""
    extractor = make_fbank_extractor(FbankConfig(num_mel_bins=80, device="cpu"))
    return torch.as_tensor(extractor.extract(wave.numpy(), SAMPLE_RATE))


def feed(wave: torch.Tensor, sizes: List[int]) -> List[torch.Tensor]:
    """Feeds ``wave`` in pieces of ``sizes`` (then the rest); frames per call."""
    fbank, pos, out = OnlineFbankExtractor(), 0, []
    for n in sizes:
        fbank.accept_waveform(wave[pos : pos + n], SAMPLE_RATE)
        out.append(fbank.pop_frames())
        pos += n
    fbank.accept_waveform(wave[pos:], SAMPLE_RATE)
    fbank.input_finished()
    out.append(fbank.pop_frames())
    return out


def assert_close(online: torch.Tensor, offline: torch.Tensor) -> None:
    assert online.shape == offline.shape
    scale = offline.abs().max()
    assert (online - offline).abs().max() <= 1e-4 * scale


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_pieces_equal_offline(seed: int) -> None:
    wave = chirp(2.0 + 0.37 * seed, seed)
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(0, 2500, (40,), generator=gen).tolist()  # some empty
    frames = feed(wave, sizes)
    assert_close(torch.cat(frames), offline_fbank(wave))
    assert sum(f.size(0) > 0 for f in frames) > 10  # frames came out on the way


def test_one_long_piece_loses_no_frame() -> None:
    """More frames in one call than kaldifeat's recycling buffer keeps."""
    wave = chirp(13.0, 3)  # 1300 frames > 1000 kept by kaldifeat
    frames = feed(wave, [wave.numel()])
    assert frames[0].size(0) > 1000
    assert_close(torch.cat(frames), offline_fbank(wave))


def test_no_frame_before_its_window_is_complete() -> None:
    """snip_edges=False: frame m is ready once sample 160 m + 280 arrived."""
    fbank = OnlineFbankExtractor()
    fbank.accept_waveform(chirp(1.0, 4)[:279], SAMPLE_RATE)
    assert fbank.pop_frames().shape == (0, 80)
    fbank.accept_waveform(chirp(1.0, 4)[279:600], SAMPLE_RATE)  # 600 = 160*2 + 280
    assert fbank.pop_frames().shape == (3, 80)


def test_bad_input_gives_clear_errors() -> None:
    fbank = OnlineFbankExtractor()
    with pytest.raises(ValueError, match="16000 Hz, got 8000 Hz"):
        fbank.accept_waveform(torch.zeros(100), 8000)
    with pytest.raises(ValueError, match=r"1-D waveform.*\(1, 100\)"):
        fbank.accept_waveform(torch.zeros(1, 100), SAMPLE_RATE)
    with pytest.raises(ValueError, match="float samples.*int16"):
        fbank.accept_waveform(torch.zeros(100, dtype=torch.int16), SAMPLE_RATE)
    fbank.input_finished()
    with pytest.raises(ValueError, match="after input_finished"):
        fbank.accept_waveform(torch.zeros(100), SAMPLE_RATE)
