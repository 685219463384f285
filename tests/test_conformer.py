"""Tests for the conformer encoder and CtcModel: lengths, masks, chunking, training."""
import dataclasses

import k2
import pytest
import torch

from asrk2.config import ConfigError, from_dict, to_dict
from asrk2.frames import subsampled_lengths
from asrk2.losses.ctc import k2_ctc_loss
from asrk2.model import Conformer, ConformerConfig, CtcModel, CtcModelConfig
from asrk2.model.attention import RelPositionMultiheadAttention, chunk_attention_mask
from asrk2.model.subsampling import Conv2dSubsampling

TINY = ConformerConfig(
    num_features=20,
    d_model=32,
    num_heads=4,
    ffn_dim=64,
    num_layers=2,
    conv_kernel_size=5,
    dropout=0.0,
)


def make_encoder(seed: int = 0, **overrides) -> Conformer:
    torch.manual_seed(seed)
    return Conformer(dataclasses.replace(TINY, **overrides)).eval()


@pytest.mark.parametrize("num_frames", [7, 8, 9, 10, 11, 12, 50, 101, 300])
def test_output_length_formula(num_frames: int) -> None:
    expected = ((num_frames - 1) // 2 - 1) // 2
    lens = torch.tensor([num_frames])
    assert int(subsampled_lengths(lens)) == expected
    out = Conv2dSubsampling(20, 8)(torch.randn(1, num_frames, 20))
    assert out.shape == (1, expected, 8)
    enc_out, out_lens = make_encoder()(torch.randn(1, num_frames, 20), lens)
    assert enc_out.shape == (1, expected, 32) and out_lens.tolist() == [expected]


def test_batch_lengths_and_too_short() -> None:
    lens = torch.tensor([40, 101, 7, 3])
    out, out_lens = make_encoder()(torch.randn(4, 101, 20), lens)
    assert (
        out_lens.tolist()
        == [9, 24, 1, 0]
        == Conformer.subsampled_lengths(lens).tolist()
    )
    assert out.shape[1] == 24 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="at least 7 input frames"):
        make_encoder()(torch.randn(1, 6, 20), torch.tensor([6]))


@pytest.mark.parametrize(
    "causal,chunk_size", [(False, -1), (True, -1), (True, 3), (False, 4)]
)
def test_padding_invariance(causal: bool, chunk_size: int) -> None:
    encoder = make_encoder(causal=causal)
    short = torch.randn(1, 37, 20)
    alone, alone_lens = encoder(short, torch.tensor([37]), chunk_size)
    # Garbage, not zeros, after the short utterance: it must not leak in.
    batch = torch.randn(2, 61, 20) * 3
    batch[1, :37] = short[0]
    both, both_lens = encoder(batch, torch.tensor([61, 37]), chunk_size)
    n = int(alone_lens[0])
    assert int(both_lens[1]) == n == alone.size(1)
    assert torch.allclose(both[1, :n], alone[0], atol=1e-4)


@pytest.mark.parametrize("chunk_size", [2, 3, 5])
def test_chunked_attention_has_no_lookahead(chunk_size: int) -> None:
    encoder = make_encoder(causal=True)
    x = torch.randn(1, 100, 20)
    lens = torch.tensor([100])
    ref, out_lens = encoder(x, lens, chunk_size)
    full_ref, _ = encoder(x, lens)
    num_full_chunks = int(out_lens[0]) // chunk_size
    for k in sorted({0, num_full_chunks // 2, num_full_chunks - 2}):
        end = (k + 1) * chunk_size  # first output frame after chunk k
        # The last frame of chunk k reads input frames up to 4 * (end - 1) + 6.
        first_free = 4 * end + 3
        changed = x.clone()
        changed[:, first_free:] += torch.randn_like(changed[:, first_free:])
        out, _ = encoder(changed, lens, chunk_size)
        assert torch.allclose(out[:, :end], ref[:, :end], atol=1e-5)
        assert not torch.allclose(out[:, end:], ref[:, end:], atol=1e-3)
        full, _ = encoder(changed, lens)
        assert not torch.allclose(full[:, :end], full_ref[:, :end], atol=1e-3)
        # The bound is tight: one more input frame reaches chunk k.
        changed[:, first_free - 1] += 1.0
        out, _ = encoder(changed, lens, chunk_size)
        assert not torch.allclose(out[:, :end], ref[:, :end], atol=1e-5)


@pytest.mark.parametrize("num_frames,chunk_size", [(10, 3), (8, 4), (5, 1), (7, 10)])
@pytest.mark.parametrize("left", [-1, 0, 2, 5])
def test_chunk_attention_mask_brute_force(
    num_frames: int, chunk_size: int, left: int
) -> None:
    mask = chunk_attention_mask(num_frames, chunk_size, left)
    for i in range(num_frames):
        start = (i // chunk_size) * chunk_size
        for j in range(num_frames):
            visible = j < start + chunk_size and (left < 0 or j >= start - left)
            assert bool(mask[i, j]) == (not visible), (i, j)


def test_rel_shift_indexes_relative_positions() -> None:
    T = 5
    # Column r of the input holds relative position T-1-r.
    rel = torch.arange(T - 1, -T, -1).float().expand(2, 3, T, 2 * T - 1)
    shifted = RelPositionMultiheadAttention.rel_shift(rel)
    i, j = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    assert torch.equal(shifted[1, 2], (i - j).float())


def test_left_context_override_changes_output() -> None:
    encoder = make_encoder(causal=True, left_context_frames=-1)
    x, lens = torch.randn(1, 120, 20), torch.tensor([120])
    unlimited, _ = encoder(x, lens, chunk_size=2)
    limited, _ = encoder(x, lens, chunk_size=2, left_context_frames=2)
    assert torch.allclose(unlimited[:, :2], limited[:, :2], atol=1e-5)
    assert not torch.allclose(unlimited[:, -4:], limited[:, -4:], atol=1e-3)


def test_default_config_size_and_output() -> None:
    model = CtcModel(CtcModelConfig())
    num_params = model.num_params()
    print(f"default CtcModel: {num_params} parameters")
    assert 4_000_000 < num_params < 6_000_000, num_params
    assert model.num_params(trainable_only=True) == num_params
    model.eval()
    log_probs, out_lens = model(torch.randn(2, 80, 80), torch.tensor([80, 50]))
    assert log_probs.shape == (2, 19, 500) and out_lens.tolist() == [19, 11]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 19), atol=1e-5)
    assert model.subsampling_factor == 4


def test_config_from_dict_round_trip() -> None:
    data = {
        "encoder": {"d_model": 64, "num_heads": 8, "causal": True},
        "vocab_size": 30,
    }
    config = from_dict(CtcModelConfig, data)
    assert config.encoder.d_model == 64 and config.encoder.causal
    assert from_dict(CtcModelConfig, to_dict(config)) == config
    with pytest.raises(ConfigError):
        from_dict(CtcModelConfig, {"encoder": {"d_modle": 64}})
    with pytest.raises(ValueError, match="divisible"):
        from_dict(CtcModelConfig, {"encoder": {"d_model": 66, "num_heads": 4}})
    with pytest.raises(ValueError, match="odd"):
        ConformerConfig(conv_kernel_size=4)


def test_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = CtcModel(CtcModelConfig(encoder=TINY, vocab_size=6))
    features = torch.randn(3, 60, 20)
    feature_lens = torch.tensor([60, 45, 52])
    graphs = k2.ctc_graph([[1, 2, 3], [4, 4], [5, 1]])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        log_probs, out_lens = model(features, feature_lens)
        loss = k2_ctc_loss(log_probs, out_lens, graphs) / out_lens.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0], losses


def test_blank_bias_init_lowers_the_initial_blank_posterior() -> None:
    encoder = ConformerConfig(d_model=32, num_heads=4, ffn_dim=64, num_layers=1)
    x, lens = torch.randn(2, 60, 80), torch.tensor([60, 60])
    blank = {}
    for bias in (0.0, -4.0):
        torch.manual_seed(0)
        config = CtcModelConfig(encoder=encoder, vocab_size=20, blank_bias_init=bias)
        model = CtcModel(config).eval()
        with torch.no_grad():
            blank[bias] = model(x, lens)[0][..., 0].exp().mean()
    # Same weights otherwise: the blank's logit is 4 lower, its probability far lower.
    assert blank[-4.0] < blank[0.0] / 20
