"""attention-beam-search: beam 1 is greedy, batching changes nothing, and a
decoder trained to overfit a few sequences gives them back."""

from typing import List

import torch

from asrk2.decode.attention_search import BeamSearchOptions, attention_beam_search
from asrk2.model.decoder import SOS_EOS_ID, AttentionDecoder, DecoderConfig, add_sos_eos

V, D = 8, 16


def make_decoder(seed: int) -> AttentionDecoder:
    torch.manual_seed(seed)
    config = DecoderConfig(num_layers=2, num_heads=2, ffn_dim=32, dropout=0.0)
    decoder = AttentionDecoder(D, V, config)
    return decoder.eval()


def greedy(decoder: AttentionDecoder, memory, lens) -> List[List[int]]:
    """Plain greedy autoregressive decoding, one utterance at a time, at most
    one token per encoder frame."""
    out = []
    for i in range(memory.size(0)):
        ys = [SOS_EOS_ID]
        for _ in range(int(lens[i])):
            x = torch.tensor([ys])
            logits = decoder(
                memory[i : i + 1], lens[i : i + 1], x, torch.tensor([len(ys)])
            )
            token = int(logits[0, -1].argmax())
            if token == SOS_EOS_ID:
                break
            ys.append(token)
        out.append(ys[1:])
    return out


def test_beam_1_is_greedy_decoding():
    decoder = make_decoder(0)
    torch.manual_seed(1)
    memory, lens = torch.randn(3, 9, D), torch.tensor([9, 6, 4])
    got = attention_beam_search(decoder, memory, lens, BeamSearchOptions(beam_size=1))
    assert got == greedy(decoder, memory, lens)


def test_results_do_not_depend_on_the_batch():
    decoder = make_decoder(2)
    torch.manual_seed(3)
    memory, lens = torch.randn(4, 10, D), torch.tensor([10, 7, 10, 3])
    opts = BeamSearchOptions(beam_size=3)
    together = attention_beam_search(decoder, memory, lens, opts)
    alone = [
        attention_beam_search(
            decoder, memory[i : i + 1, : int(lens[i])], lens[i : i + 1], opts
        )[0]
        for i in range(4)
    ]
    assert together == alone


def test_wider_beams_never_score_worse():
    decoder = make_decoder(4)
    torch.manual_seed(5)
    memory, lens = torch.randn(5, 8, D), torch.full((5,), 8)

    def score(hyps: List[List[int]]) -> torch.Tensor:
        return decoder.token_log_probs(memory, lens, hyps)

    narrow = attention_beam_search(
        decoder, memory, lens, BeamSearchOptions(beam_size=1)
    )
    wide = attention_beam_search(decoder, memory, lens, BeamSearchOptions(beam_size=6))
    assert bool((score(wide) >= score(narrow) - 1e-5).all())


def test_an_overfit_decoder_gives_back_its_sequences():
    torch.manual_seed(6)
    targets = [[3, 5, 2], [4, 4, 6, 2], [7]]  # 1 is <sos/eos>
    memory, lens = torch.randn(3, 6, D), torch.tensor([6, 6, 6])
    decoder = make_decoder(7).train()
    ys_in, ys_out, ys_lens = add_sos_eos(targets)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=3e-3)
    for _ in range(150):
        logits = decoder(memory, lens, ys_in, ys_lens)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, V), ys_out.reshape(-1), ignore_index=-1
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    decoder.eval()
    assert (
        attention_beam_search(decoder, memory, lens, BeamSearchOptions(beam_size=4))
        == targets
    )
