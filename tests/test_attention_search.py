"""attention-beam-search: beam 1 is greedy, batching changes nothing, and a
decoder trained to overfit a few sequences gives them back."""

from typing import List

import pytest
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
            scores = logits[0, -1].clone()
            scores[0] = float("-inf")  # the CTC blank is never an output
            token = int(scores.argmax())
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


# ----- joint CTC/attention scoring -----


def _ctc_log_likelihood(log_probs: torch.Tensor, tokens: List[int]) -> float:
    """log P_ctc(tokens | x) from torch's CTC loss (an independent reference)."""
    loss = torch.nn.functional.ctc_loss(
        log_probs.unsqueeze(1), torch.tensor([tokens]),
        torch.tensor([log_probs.size(0)]), torch.tensor([len(tokens)]),
        blank=0, reduction="sum", zero_infinity=False,
    )  # fmt: skip
    return -float(loss)


def _brute_force_prefix(log_probs: torch.Tensor, prefix: List[int]) -> float:
    """log P(CTC output starts with ``prefix``), over every frame labelling."""
    import itertools
    import math

    t, v = log_probs.shape
    total = float("-inf")
    for labels in itertools.product(range(v), repeat=t):
        out = [x for i, x in enumerate(labels) if x and (i == 0 or labels[i - 1] != x)]
        if out[: len(prefix)] == prefix:
            score = sum(float(log_probs[i, x]) for i, x in enumerate(labels))
            total = max(total, score) + math.log1p(math.exp(-abs(total - score)))
    return total


def test_ctc_prefix_scores_equal_brute_force_and_torch_ctc():
    from asrk2.decode.attention_search import CtcPrefixScorer

    torch.manual_seed(8)
    t, v, eos = 5, 4, 3  # tokens 1, 2 (and eos 3, never a CTC output)
    lp = torch.randn(t, v)
    lp[:, eos] = -1e4
    lp = lp.log_softmax(-1)
    for hyp in ([1], [2, 1], [1, 1], [2, 2, 1]):
        scorer = CtcPrefixScorer(lp.unsqueeze(0), torch.tensor([t]), eos_id=eos)
        for token in hyp:
            psi, r_n, r_b = scorer.extend(torch.tensor([[token, eos]]))
            scorer.select(torch.tensor([token]), psi[:, 0], r_n[:, 0], r_b[:, 0])
        # The prefix score of the whole hypothesis, by brute force.
        assert float(scorer.psi[0]) == pytest.approx(
            _brute_force_prefix(lp, hyp), abs=1e-4
        )
        # With <eos>: the CTC likelihood of exactly the hypothesis.
        end, _, _ = scorer.extend(torch.tensor([[eos]]))
        assert float(end[0, 0]) == pytest.approx(_ctc_log_likelihood(lp, hyp), abs=1e-4)


def test_padding_frames_change_no_ctc_score():
    from asrk2.decode.attention_search import CtcPrefixScorer

    torch.manual_seed(9)
    lp = torch.randn(2, 7, 4).log_softmax(-1)
    short = CtcPrefixScorer(lp[:1, :4], torch.tensor([4]), eos_id=3)
    padded = CtcPrefixScorer(lp[:1], torch.tensor([4]), eos_id=3)
    first = [scorer.extend(torch.tensor([[1, 2, 3]]))[0] for scorer in (short, padded)]
    assert torch.allclose(first[0], first[1])


def test_pure_ctc_search_finds_the_most_likely_labelling():
    import itertools

    torch.manual_seed(10)
    decoder = make_decoder(11)
    t, eos = 5, SOS_EOS_ID
    lp = torch.randn(1, t, V)
    lp[..., eos] = -1e4
    lp[..., 4:] = -1e4  # only blank, 2 and 3 are possible: enumerable
    lp = lp.log_softmax(-1)
    memory, lens = torch.randn(1, t, D), torch.tensor([t])
    opts = BeamSearchOptions(beam_size=8, ctc_weight=1.0, ctc_pre_beam=V)
    (got,) = attention_beam_search(decoder, memory, lens, opts, ctc_log_probs=lp)
    # Every label sequence the frames can spell, scored by torch's CTC.
    candidates = set()
    for labels in itertools.product([0, 2, 3], repeat=t):
        keep = [x for i, x in enumerate(labels) if x and (i == 0 or labels[i - 1] != x)]
        candidates.add(tuple(keep))

    def likelihood(y) -> float:
        return _ctc_log_likelihood(lp[0], list(y)) if y else float(lp[0, :, 0].sum())

    best = max(candidates, key=likelihood)
    assert likelihood(got) == pytest.approx(likelihood(best), abs=1e-4), (got, best)


def test_joint_search_does_not_depend_on_the_batch():
    decoder = make_decoder(12)
    torch.manual_seed(13)
    memory, lens = torch.randn(3, 8, D), torch.tensor([8, 5, 8])
    lp = torch.randn(3, 8, V).log_softmax(-1)
    opts = BeamSearchOptions(beam_size=3, ctc_weight=0.3)
    together = attention_beam_search(decoder, memory, lens, opts, ctc_log_probs=lp)
    alone = [
        attention_beam_search(
            decoder, memory[i : i + 1, : int(lens[i])], lens[i : i + 1], opts,
            ctc_log_probs=lp[i : i + 1, : int(lens[i])],
        )[0]
        for i in range(3)
    ]  # fmt: skip
    assert together == alone
