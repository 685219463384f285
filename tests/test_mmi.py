"""LF-MMI graphs and loss against brute-force enumeration, torch CTC, and training."""

import itertools
import math
from typing import List

import k2
import pytest
import torch
import torch.nn.functional as F

from asrk2.lang.mmi_graphs import (
    MmiGraphCompiler,
    TokenBigram,
    build_den_graph,
    build_num_graphs,
    estimate_token_bigram,
)
from asrk2.losses.mmi import LfMmiLoss, MmiOptions, mmi_loss

EXACT = MmiOptions(output_beam=1000.0)
SEQS = [[1, 2], [2, 2, 3], [3, 1], [1], [2, 3, 1, 2]]


def collapse(path) -> List[int]:
    """CTC's many-to-one map: merge repeats, then drop blanks."""
    out, prev = [], None
    for s in path:
        if s != 0 and s != prev:
            out.append(s)
        prev = s
    return out


def logsumexp(scores: List[float]) -> float:
    return float(torch.logsumexp(torch.tensor(scores, dtype=torch.float64), 0))


def lm_score(bigram: TokenBigram, seq: List[int]) -> float:
    ids = [0] + seq + [0]
    return sum(bigram.score(a, b) for a, b in zip(ids[:-1], ids[1:]))


@pytest.mark.parametrize("smoothing", [0.0, 0.5])
def test_mmi_equals_brute_force_enumeration(smoothing: float) -> None:
    """Sum over all V^T frame labellings, scored by log-probs + P of their collapse."""
    bigram = estimate_token_bigram(SEQS, smoothing)
    T, V = 6, 4
    log_probs = torch.randn(2, T, V, generator=torch.Generator().manual_seed(0))
    log_probs = log_probs.log_softmax(-1)
    lens = torch.tensor([T, T - 1])
    targets = [[2, 2, 3], [1, 2]]
    expected = []
    for n, target in enumerate(targets):
        den, num = [], []
        for path in itertools.product(range(V), repeat=int(lens[n])):
            seq = collapse(path)
            score = lm_score(bigram, seq) if seq else -math.inf
            if score == -math.inf:
                continue
            score += sum(float(log_probs[n, t, s]) for t, s in enumerate(path))
            den.append(score)
            if seq == target:
                num.append(score)
        expected.append(logsumexp(den) - logsumexp(num))
    num_graphs = build_num_graphs(targets, bigram)
    losses = mmi_loss(
        log_probs, lens, num_graphs, build_den_graph(bigram), EXACT, "none"
    )
    assert torch.allclose(losses, torch.tensor(expected), atol=1e-4)
    assert bool((losses > 0).all())


def test_numerator_is_ctc_plus_lm_score() -> None:
    """Numerator total = -torch ctc_loss + log P(transcript) for each utterance."""
    bigram = estimate_token_bigram(SEQS)
    g = torch.Generator().manual_seed(1)
    log_probs = torch.randn(3, 25, 5, generator=g).log_softmax(-1)
    lens = torch.tensor([25, 22, 19])  # raw k2 wants longest first
    targets = [[2, 3, 1, 2], [2, 2, 3], [1]]
    num_graphs = build_num_graphs(targets, bigram)
    segments = torch.tensor([[i, 0, int(lens[i])] for i in range(3)], dtype=torch.int32)
    lats = k2.intersect_dense(num_graphs, k2.DenseFsaVec(log_probs, segments), 1000.0)
    num_tot = lats.get_tot_scores(log_semiring=True, use_double_scores=True)
    ctc = F.ctc_loss(
        log_probs.transpose(0, 1), torch.tensor(sum(targets, [])), lens,
        torch.tensor([len(t) for t in targets]), reduction="none",
    )  # fmt: skip
    lm = torch.tensor([lm_score(bigram, t) for t in targets], dtype=torch.float64)
    assert torch.allclose(num_tot, -ctc.double() + lm, atol=1e-3)


def test_bigram_is_normalised_and_round_trips(tmp_path) -> None:
    for smoothing in (0.0, 0.1):
        bigram = estimate_token_bigram(SEQS, smoothing)
        for prev in [0] + bigram.tokens:
            total = sum(
                math.exp(lp) for (a, _), lp in bigram.log_probs.items() if a == prev
            )
            assert total == pytest.approx(1.0)
        bigram.save(tmp_path / "P.txt")
        loaded = TokenBigram.load(tmp_path / "P.txt")
        assert loaded.log_probs.keys() == bigram.log_probs.keys()
        assert all(
            loaded.log_probs[k] == pytest.approx(v, rel=1e-7)
            for k, v in bigram.log_probs.items()
        )
    seen = estimate_token_bigram(SEQS)
    assert seen.score(1, 2) == math.log(2 / 4) and seen.score(3, 3) == -math.inf
    with pytest.raises(ValueError, match="non-empty"):
        estimate_token_bigram([[1], []])


def toy_utterance(tokens: List[int], vocab: int, gen: torch.Generator) -> torch.Tensor:
    """Features (T, vocab): 3 noisy frames of each token's one-hot, blanks between."""
    frames = []
    for tok in tokens:
        frames += [tok] * 3 + [0] * 2
    x = F.one_hot(torch.tensor([0, 0] + frames), vocab).float()
    return x + 0.3 * torch.randn(x.shape, generator=gen)


def test_mmi_prefers_correct_transcript_after_training() -> None:
    vocab = 5
    texts = ["1 2 3", "3 4", "2 2 1", "4 1 3 2"]

    def to_ids(text: str) -> List[int]:
        return [int(t) for t in text.split()]

    bigram = estimate_token_bigram([to_ids(t) for t in texts])
    loss_fn = LfMmiLoss(MmiGraphCompiler(to_ids, bigram), MmiOptions())
    gen = torch.Generator().manual_seed(0)
    feats = [toy_utterance(to_ids(t), vocab, gen) for t in texts]
    lens = torch.tensor([f.size(0) for f in feats])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(vocab, 32), torch.nn.Tanh(), torch.nn.Linear(32, vocab)
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    ids = [to_ids(t) for t in texts]
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn(model(x).log_softmax(-1), lens, ids).sum()
        loss.backward()
        assert all(
            p.grad is not None and torch.isfinite(p.grad).all()
            for p in model.parameters()
        )
        opt.step()
    with torch.no_grad():
        log_probs = model(x).log_softmax(-1)
        right = loss_fn(log_probs, lens, ids)
        # Each utterance scored against the next one's (in-domain) transcript.
        wrong = loss_fn(log_probs, lens, ids[1:] + ids[:1])
        pruned = LfMmiLoss(loss_fn.compiler, MmiOptions(den_pruned=True))(
            log_probs, lens, ids
        )
    assert bool((right < 0.1).all()), right
    assert bool((wrong > right + 5.0).all()), (right, wrong)
    # The pruned denominator keeps the paths that matter: same loss to 1e-4
    # relative (the losses are below 0.1, so an absolute 1e-2 would say little).
    assert torch.allclose(pruned, right, rtol=1e-4, atol=1e-6), (pruned, right)


def test_a_transcript_off_the_bigram_gets_no_mmi_loss_and_is_counted(caplog) -> None:
    """Held-out text can have token pairs the training bigram never saw: the
    transcript is then no path of the denominator (its MMI is undefined)."""
    bigram = estimate_token_bigram(SEQS)  # no smoothing: (3, 3) is unseen
    assert not bigram.covers([3, 3]) and bigram.covers([2, 2, 3])
    with pytest.raises(ValueError, match="unseen in the bigram"):
        build_num_graphs([[3, 3]], bigram)
    compiler = MmiGraphCompiler(lambda text: [int(t) for t in text.split()], bigram)
    loss = LfMmiLoss(compiler, EXACT)
    log_probs = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(2))
    log_probs = log_probs.log_softmax(-1)
    lens = torch.tensor([6, 6, 5])
    out = loss(log_probs, lens, [[2, 2, 3], [3, 3], [1, 2]])
    alone = loss(log_probs[[0, 2]], lens[[0, 2]], [[2, 2, 3], [1, 2]])
    assert out[1] == 0 and torch.allclose(out[[0, 2]], alone)
    assert loss.uncovered == 1 and "unseen in the bigram" in caplog.text
