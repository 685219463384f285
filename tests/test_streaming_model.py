"""Chunk-by-chunk encoding with explicit state equals the offline chunked encoder."""

import dataclasses

import pytest
import torch

from asrk2.model import ConformerConfig, CtcModel, CtcModelConfig

ENC = ConformerConfig(
    num_features=20, d_model=32, num_heads=4, ffn_dim=64, num_layers=2,
    conv_kernel_size=5, dropout=0.0, causal=True,
)  # fmt: skip


def stream(model: CtcModel, x: torch.Tensor, chunk: int, left: int) -> torch.Tensor:
    """Feeds ``x`` (N, T, C) in the per-call sizes that reproduce chunk ``chunk``."""
    state = model.init_state(x.size(0))
    outs, pos, first = [], 0, True
    while pos < x.size(1):
        n = model.encoder.chunk_input_frames(chunk, first)
        y, state = model.forward_chunk(x[:, pos : pos + n], state, left)
        outs.append(y)
        pos, first = pos + n, False
    if left >= 0:
        assert state.attn.size(2) <= left
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("chunk", [1, 4, 16])
@pytest.mark.parametrize("left", [-1, 0, 6])
def test_streaming_equals_offline_chunked(chunk: int, left: int) -> None:
    torch.manual_seed(0)
    model = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=9)).eval()
    x = torch.randn(2, 123, 20)
    with torch.no_grad():
        ref, lens = model(x, torch.tensor([123, 123]), chunk, left)
        out = stream(model, x, chunk, left)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)


def test_odd_sized_pieces_still_give_every_frame_once() -> None:
    """Any split of the input gives the right number of frames, causally."""
    torch.manual_seed(1)
    model = CtcModel(CtcModelConfig(encoder=ENC, vocab_size=9)).eval()
    x = torch.randn(1, 90, 20)
    state, outs = model.init_state(), []
    with torch.no_grad():
        for piece in torch.split(x, [3, 2, 17, 1, 40, 27], dim=1):
            y, state = model.forward_chunk(piece, state)
            outs.append(y)
        ref, _ = model(x, torch.tensor([90]), chunk_size=-1)
    out = torch.cat(outs, dim=1)
    assert out.shape == ref.shape
    # Causal conv + only past/present keys: the first piece's frames are final.
    first = outs[0].size(1) + outs[1].size(1) + outs[2].size(1)
    with torch.no_grad():
        alone, _ = model(x[:, :22], torch.tensor([22]), chunk_size=first)
    assert torch.allclose(out[:, :first], alone[:, :first], atol=1e-5)


def test_streaming_needs_a_causal_encoder() -> None:
    model = CtcModel(
        CtcModelConfig(encoder=dataclasses.replace(ENC, causal=False), vocab_size=9)
    )
    with pytest.raises(RuntimeError, match="causal"):
        model.forward_chunk(torch.randn(1, 11, 20), model.init_state())
