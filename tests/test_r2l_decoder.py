"""The right-to-left decoder (U2++): its scores, its loss, and where it is built."""

import dataclasses
from typing import List

import pytest
import torch

from asrk2.experiment import ExperimentConfig, build_model
from asrk2.lang.graph_compiler import CtcTrainingGraphCompiler
from asrk2.losses import label_smoothing_loss
from asrk2.losses.combiner import LossConfig, LossModule
from asrk2.model import ConformerConfig, CtcModel, CtcModelConfig, DecoderConfig
from asrk2.model.decoder import SOS_EOS_ID, add_sos_eos, reversed_tokens

D_MODEL = 32
VOCAB = 11
ENC = ConformerConfig(
    num_features=20, d_model=D_MODEL, num_heads=4, ffn_dim=64, num_layers=1,
    conv_kernel_size=5, dropout=0.0,
)  # fmt: skip
DEC = DecoderConfig(num_layers=2, num_heads=4, ffn_dim=64, dropout=0.0,
                    num_r2l_layers=2)  # fmt: skip


def _model(seed: int = 0) -> CtcModel:
    torch.manual_seed(seed)
    return CtcModel(CtcModelConfig(encoder=ENC, vocab_size=VOCAB, decoder=DEC)).eval()


def _step_by_step(decoder, memory: torch.Tensor, tokens: List[int]) -> float:
    """log p(tokens <eos>) from one forward pass per prefix: no teacher forcing."""
    total, prefix = 0.0, [SOS_EOS_ID]
    for target in tokens + [SOS_EOS_ID]:
        ys = torch.tensor([prefix])
        logits = decoder(memory, torch.tensor([memory.size(1)]), ys,
                         torch.tensor([len(prefix)]))  # fmt: skip
        total += float(logits[0, -1].log_softmax(-1)[target])
        prefix.append(target)
    return total


def test_r2l_scores_equal_step_by_step_scores_of_the_reversed_hypothesis():
    model = _model()
    memory = torch.randn(2, 9, D_MODEL)
    lens = torch.tensor([9, 9])
    hyps = [[3, 4, 5, 6], [7, 2]]
    with torch.no_grad():
        both = model.attention_scores(memory, lens, hyps, reverse_weight=0.3)
        for i, hyp in enumerate(hyps):
            l2r = _step_by_step(model.decoder, memory[i : i + 1], hyp)
            r2l = _step_by_step(model.r2l_decoder, memory[i : i + 1], hyp[::-1])
            assert float(both[i]) == pytest.approx(0.7 * l2r + 0.3 * r2l, abs=1e-4)
            assert l2r != pytest.approx(r2l, abs=1e-3)  # two different decoders


def test_with_mirrored_weights_r2l_on_y_is_l2r_on_reversed_y():
    model = _model(1)
    assert model.r2l_decoder is not None and model.decoder is not None
    model.r2l_decoder.load_state_dict(model.decoder.state_dict())
    memory, lens = torch.randn(3, 7, D_MODEL), torch.tensor([7, 5, 3])
    hyps = [[2, 3, 4], [5, 5, 6, 7], [8]]
    with torch.no_grad():
        only_r2l = model.attention_scores(memory, lens, hyps, reverse_weight=1.0)
        l2r_reversed = model.attention_scores(memory, lens, reversed_tokens(hyps))
        l2r = model.attention_scores(memory, lens, hyps)
    assert torch.allclose(only_r2l, l2r_reversed, atol=1e-5)
    assert not torch.allclose(only_r2l, l2r, atol=1e-3)  # order matters


def test_the_attention_loss_mixes_both_directions_by_reverse_weight():
    model = _model(2).train()
    config = LossConfig(ctc_weight=0.3, label_smoothing=0.1, reverse_weight=0.3)
    texts = ["3 4 5", "6 7"]
    compiler = CtcTrainingGraphCompiler(lambda t: [int(w) for w in t.split()])
    loss = LossModule(model, config, compiler)
    features, feature_lens = torch.randn(2, 40, 20), torch.tensor([40, 31])
    torch.manual_seed(5)
    parts = loss(features, feature_lens, texts)

    # The same attention loss, computed by hand from the two decoders.
    ids = [[3, 4, 5], [6, 7]]
    encoder_out, out_lens = model.encode(features, feature_lens)

    def direction(decoder, seqs):
        ys_in, ys_out, ys_lens = add_sos_eos(seqs)
        return label_smoothing_loss(decoder(encoder_out, out_lens, ys_in, ys_lens),
                                    ys_out, 0.1)  # fmt: skip

    expected = 0.7 * direction(model.decoder, ids) + 0.3 * direction(
        model.r2l_decoder, [s[::-1] for s in ids]
    )
    assert float(parts["att"]) == pytest.approx(float(expected), rel=1e-5)
    parts["loss"].backward()
    grads = [p.grad for p in model.r2l_decoder.parameters()]
    assert all(g is not None and bool(g.isfinite().all()) for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_r2l_decoder_is_built_only_with_a_reverse_weight():
    config = ExperimentConfig()
    config.model.encoder = ENC
    config.model.decoder = DEC
    config.loss = LossConfig(ctc_weight=0.3)
    model, resolved = build_model(config, VOCAB)
    assert model.decoder is not None and model.r2l_decoder is None
    assert resolved.model.decoder.num_r2l_layers == 0
    assert not any(k.startswith("r2l_decoder.") for k in model.state_dict())
    config.loss = LossConfig(ctc_weight=0.3, reverse_weight=0.3)
    model, resolved = build_model(config, VOCAB)
    assert model.r2l_decoder is not None and resolved.model.decoder.num_r2l_layers == 2
    config.model.decoder = dataclasses.replace(DEC, num_r2l_layers=0)
    with pytest.raises(ValueError, match="num_r2l_layers is 0"):
        build_model(config, VOCAB)
    l2r_only = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=VOCAB,
                                       decoder=config.model.decoder))  # fmt: skip
    with pytest.raises(ValueError, match="needs a right-to-left decoder"):
        l2r_only.attention_scores(
            torch.randn(1, 3, D_MODEL), torch.tensor([3]), [[2]], reverse_weight=0.3
        )
    with pytest.raises(ValueError, match="reverse_weight must be in"):
        LossConfig(ctc_weight=0.3, reverse_weight=1.0)
    with pytest.raises(ValueError, match="needs the attention decoder"):
        LossConfig(ctc_weight=1.0, reverse_weight=0.3)
    with pytest.raises(ValueError, match="needs the left-to-right decoder"):
        DecoderConfig(num_layers=0, num_r2l_layers=1)
