"""The attention decoder, the joint model, and dynamic chunk training."""

import dataclasses

import pytest
import torch

from asrk2.losses import label_smoothing_loss
from asrk2.model import (
    Conformer,
    ConformerConfig,
    CtcModel,
    CtcModelConfig,
    DecoderConfig,
)
from asrk2.model.decoder import IGNORE_ID, AttentionDecoder, add_sos_eos

ENC = ConformerConfig(
    num_features=20, d_model=32, num_heads=4, ffn_dim=64, num_layers=2,
    conv_kernel_size=5, dropout=0.0,
)  # fmt: skip
DEC = DecoderConfig(num_layers=2, num_heads=4, ffn_dim=64, dropout=0.0)
VOCAB = 11


def make_decoder(seed: int = 0) -> AttentionDecoder:
    torch.manual_seed(seed)
    return AttentionDecoder(32, VOCAB, DEC).eval()


def test_add_sos_eos() -> None:
    ys_in, ys_out, lens = add_sos_eos([[5, 6, 7], [8]], sos_id=1, eos_id=1)
    assert ys_in.tolist() == [[1, 5, 6, 7], [1, 8, 1, 1]]
    assert ys_out.tolist() == [[5, 6, 7, 1], [8, 1, IGNORE_ID, IGNORE_ID]]
    assert lens.tolist() == [4, 2]


def test_decoder_is_causal_and_padding_invariant() -> None:
    decoder = make_decoder()
    memory = torch.randn(2, 9, 32)
    ys_in, _, lens = add_sos_eos([[3, 4, 5, 6], [7, 8]])
    with torch.no_grad():
        both = decoder(memory, torch.tensor([9, 6]), ys_in, lens)
        # Later tokens must not change earlier outputs.
        changed = ys_in.clone()
        changed[0, 3:] = 9
        out = decoder(memory, torch.tensor([9, 6]), changed, lens)
        assert torch.allclose(out[0, :3], both[0, :3], atol=1e-5)
        assert not torch.allclose(out[0, 3:], both[0, 3:], atol=1e-3)
        # The short utterance alone (no padded frames or tokens) gives the same.
        alone = decoder(memory[1:, :6], torch.tensor([6]), ys_in[1:, :3], lens[1:])
        assert torch.allclose(alone[0], both[1, :3], atol=1e-5)


def test_token_log_probs_is_minus_cross_entropy() -> None:
    decoder = make_decoder(1)
    memory, mem_lens = torch.randn(2, 7, 32), torch.tensor([7, 4])
    hyps = [[2, 3, 4], [5, 5]]
    scores = decoder.token_log_probs(memory, mem_lens, hyps)
    ys_in, ys_out, lens = add_sos_eos(hyps)
    ce = label_smoothing_loss(
        decoder(memory, mem_lens, ys_in, lens), ys_out, 0.0, reduction="none"
    )
    assert torch.allclose(scores, -ce.sum(dim=1), atol=1e-5)
    assert bool((scores < 0).all())


def test_model_has_a_decoder_only_when_configured() -> None:
    ctc_only = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=VOCAB))
    joint = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=VOCAB, decoder=DEC))
    assert ctc_only.decoder is None and isinstance(joint.decoder, AttentionDecoder)
    assert not any(k.startswith("decoder.") for k in ctc_only.state_dict())
    assert joint.num_params() > ctc_only.num_params()
    with pytest.raises(ValueError, match="divisible"):
        AttentionDecoder(30, VOCAB, DEC)


def test_dynamic_chunk_training_draws_masks_reproducibly() -> None:
    cfg = dataclasses.replace(ENC, dynamic_chunk_training=True, max_chunk_size=4,
                              full_context_prob=0.0, causal=True)  # fmt: skip
    torch.manual_seed(0)
    encoder = Conformer(cfg).train()
    x, lens = torch.randn(2, 80, 20), torch.tensor([80, 61])
    torch.manual_seed(5)
    chunk, left = encoder.sample_chunk(19)
    assert 1 <= chunk <= 4 and left == -1
    torch.manual_seed(5)
    dynamic, _ = encoder(x, lens)
    explicit, _ = encoder(x, lens, chunk_size=chunk)
    assert torch.allclose(dynamic, explicit, atol=1e-6)
    full, _ = encoder(x, lens, chunk_size=-1)
    assert not torch.allclose(dynamic, full, atol=1e-4)
    # In eval mode the config's choice is full context.
    encoder.eval()
    assert torch.allclose(encoder(x, lens)[0], encoder(x, lens, chunk_size=-1)[0])


def test_dynamic_chunk_sizes_cover_the_range() -> None:
    cfg = dataclasses.replace(
        ENC,
        dynamic_chunk_training=True,
        max_chunk_size=5,
        full_context_prob=0.3,
        dynamic_left_chunks=True,
    )
    encoder = Conformer(cfg)
    torch.manual_seed(0)
    draws = [encoder.sample_chunk(20) for _ in range(400)]
    full = sum(c <= 0 for c, _ in draws)
    assert 0.2 < full / len(draws) < 0.4
    assert {c for c, _ in draws if c > 0} == {1, 2, 3, 4, 5}
    assert all(left % c == 0 and 0 <= left < 20 for c, left in draws if c > 0)
    with pytest.raises(ValueError, match="max_chunk_size"):
        dataclasses.replace(ENC, max_chunk_size=0)
