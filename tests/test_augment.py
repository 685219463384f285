"""SpecAugment on valid frames, its schedule, audio augmentation settings, noise."""

import numpy as np
import pytest
import torch
from lhotse import CutSet

from asrk2.data.augment import (
    AudioAugmentConfig,
    BatchSpecAugment,
    SpecAugmentConfig,
    describe_augmentation,
    make_cut_transforms,
)
from asrk2.data.noise import colored_noise, make_babble


def _batch():
    torch.manual_seed(0)
    x = torch.randn(3, 200, 16) + 5.0
    lens = torch.tensor([200, 120, 60])
    for i, n in enumerate(lens.tolist()):
        x[i, n:] = -23.0  # lhotse's log(1e-10) padding
    return x, lens


def test_masks_use_the_fill_value_stay_inside_valid_frames_and_budget():
    x, lens = _batch()
    fill = torch.arange(16, dtype=torch.float32) * 100.0  # nothing else looks like it
    config = SpecAugmentConfig(p=1.0, num_frame_masks=3, frames_mask_size=30,
                               max_frames_mask_fraction=0.2, features_mask_size=4)
    out = BatchSpecAugment(config, fill)(x, lens, step=0)
    assert torch.equal(x, _batch()[0])  # the input is not modified
    for i, n in enumerate(lens.tolist()):
        assert torch.equal(out[i, n:], x[i, n:])  # padding untouched
        changed = out[i, :n] != x[i, :n]
        assert torch.equal(out[i, :n][changed], fill.expand(n, 16)[changed])
        masked_frames = int(changed.all(dim=1).sum())
        assert masked_frames <= 0.2 * n + 1e-6
        bins = changed.all(dim=0)
        assert int(bins.sum()) <= 2 * 4
    assert (out != x).any()


def test_per_cut_mean_fill_without_statistics():
    x, lens = _batch()
    config = SpecAugmentConfig(p=1.0, num_feature_masks=0, frames_mask_size=30)
    out = BatchSpecAugment(config)(x, lens, step=0)
    row, n = 1, 120
    changed = (out[row, :n] != x[row, :n]).all(dim=1)
    assert changed.any()
    assert torch.allclose(out[row, :n][changed][0], x[row, :n].mean(dim=0))


def test_schedule_starts_late_and_ramps_up():
    config = SpecAugmentConfig(p=0.8, start_step=100, ramp_steps=200)
    assert config.probability(0) == config.probability(99) == 0.0
    assert config.probability(200) == pytest.approx(0.4)
    assert config.probability(300) == config.probability(10**6) == pytest.approx(0.8)
    assert SpecAugmentConfig(enabled=False).probability(10**6) == 0.0
    x, lens = _batch()
    assert torch.equal(BatchSpecAugment(config)(x, lens, step=50), x)


def test_time_warp_keeps_length_and_padding():
    x, lens = _batch()
    config = SpecAugmentConfig(p=1.0, time_warp_factor=20, num_frame_masks=0,
                               num_feature_masks=0)
    np.random.seed(0)
    out = BatchSpecAugment(config)(x, lens, step=0)
    assert out.shape == x.shape
    assert torch.equal(out[2, 60:], x[2, 60:])
    assert not torch.equal(out[0, :200], x[0, :200])


@pytest.mark.parametrize(
    "kwargs, name",
    [({"speed_factors": [0.9, 0.0]}, "speed_factors"),
     ({"snr_range": [30.0, 10.0]}, "snr_range"),
     ({"snr_range": [10.0]}, "snr_range"),
     ({"volume_range": [0.0, 2.0]}, "volume_range"),
     ({"reverb_prob": 1.5}, "reverb_prob")],
)  # fmt: skip
def test_bad_audio_settings_name_the_setting(kwargs, name):
    with pytest.raises(ValueError, match=f"data.augment.{name}"):
        AudioAugmentConfig(**kwargs)


def test_bad_spec_augment_settings_name_the_setting():
    with pytest.raises(ValueError, match="data.spec_augment.p"):
        SpecAugmentConfig(p=2.0)
    with pytest.raises(ValueError, match="data.spec_augment.frames_mask_size"):
        SpecAugmentConfig(frames_mask_size=-1)


def test_unreadable_noise_source_fails_before_training(tmp_path):
    missing = AudioAugmentConfig(noise_cuts=str(tmp_path / "nope.jsonl.gz"))
    with pytest.raises(ValueError, match="data.augment.noise_cuts.*no such file"):
        make_cut_transforms(missing, seed=0)
    empty = tmp_path / "empty.jsonl.gz"
    CutSet.from_cuts([]).to_file(empty)
    with pytest.raises(ValueError, match="no entries"):
        make_cut_transforms(AudioAugmentConfig(noise_cuts=str(empty)), seed=0)
    garbage = tmp_path / "garbage.jsonl.gz"
    garbage.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="cannot be read"):
        make_cut_transforms(AudioAugmentConfig(noise_cuts=str(garbage)), seed=0)


def test_describe_names_every_active_augmentation():
    line = describe_augmentation(
        AudioAugmentConfig(speed_factors=[0.9, 1.1], reverb_prob=0.3, volume_prob=0.5),
        SpecAugmentConfig(start_step=500),
    )
    for part in ("speed [0.9, 1.1]", "reverb p=0.3", "volume", "from step 500"):
        assert part in line
    assert describe_augmentation(
        AudioAugmentConfig(), SpecAugmentConfig(enabled=False)
    ).endswith("none")


@pytest.mark.parametrize(
    "kind, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)]
)
def test_noise_colours_have_their_spectral_slope(kind, slope):
    noise = colored_noise(kind, 2**16, np.random.default_rng(0)).astype(np.float64)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.arange(power.size)
    band = (freqs > 10) & (freqs < power.size // 2)
    # Least-squares slope of log power over log frequency, a Welch-free check.
    fitted = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.1)
    assert np.abs(noise).max() == pytest.approx(0.5, rel=1e-3)


def test_babble_sums_every_utterance():
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    tones = [np.sin(2 * np.pi * f * t) for f in (300.0, 1100.0, 2500.0)]
    babble = make_babble(tones, 16000, rng)
    spectrum = np.abs(np.fft.rfft(babble))
    for f in (300, 1100, 2500):  # 1 Hz bins for 16000 samples
        assert spectrum[f - 2 : f + 3].max() > 100 * np.median(spectrum)


def test_rir_bank_reverberates_through_lhotse(tmp_path):
    from lhotse.testing.dummies import dummy_cut

    from asrk2.data.noise import make_rir_bank

    rirs = make_rir_bank(tmp_path, num_rirs=2, seed=1)
    assert len(rirs) == 2 and (tmp_path / "rirs.jsonl.gz").is_file()
    ir = rirs[0].load_audio()[0]
    # A room response: energy spread over time, not a single impulse.
    assert (np.abs(ir) > 0.01 * np.abs(ir).max()).sum() > 100
    bank = str(tmp_path / "rirs.jsonl.gz")
    config = AudioAugmentConfig(reverb_prob=1.0, rir_recordings=bank)
    (reverb,) = make_cut_transforms(config, seed=0)
    cut = dummy_cut(0, duration=1.0, with_data=True)
    dry = cut.load_audio()
    wet = next(iter(reverb(CutSet.from_cuts([cut])))).load_audio()
    assert wet.shape == dry.shape and not np.allclose(wet, dry)
