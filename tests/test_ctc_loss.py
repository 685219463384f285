"""Tests for asrk2.losses.ctc against torch's ctc_loss and a plain forward algorithm."""
from typing import List, Tuple, cast

import k2
import pytest
import torch

from asrk2.losses.ctc import k2_ctc_loss

# Wide enough that no path is pruned, so k2 must agree with exact references.
EXACT_BEAM = 1000.0


def reference_nll(log_probs: torch.Tensor, tokens: List[int]) -> torch.Tensor:
    """CTC -log p(tokens) by the textbook forward algorithm; differentiable.

    Args:
      log_probs: shape (T, V), one utterance's valid frames; blank is 0.
      tokens: the target token ids.
    Returns:
      A scalar tensor.
    """
    ext = [0]
    for tok in tokens:
        ext += [tok, 0]
    S = len(ext)
    # Finite "-inf": logsumexp over only -inf entries has a NaN gradient.
    neg_inf = torch.tensor(-1e30, dtype=log_probs.dtype)
    alpha = [log_probs[0, ext[0]], log_probs[0, ext[1]]] + [neg_inf] * (S - 2)
    for t in range(1, log_probs.size(0)):
        new = []
        for s in range(S):
            prev = [alpha[s]] + ([alpha[s - 1]] if s >= 1 else [])
            if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2]:
                prev.append(alpha[s - 2])
            new.append(torch.logsumexp(torch.stack(prev), 0) + log_probs[t, ext[s]])
        alpha = new
    return -torch.logsumexp(torch.stack(alpha[-2:]), 0)


def random_batch(seed: int, N: int = 6, T: int = 30, V: int = 7) -> Tuple:
    """Logits (N, T, V), unsorted lengths incl. T and a tie, and feasible targets."""
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(N, T, V, generator=g)
    lens = torch.randint(8, T + 1, (N,), generator=g)
    lens[seed % N] = T
    lens[(seed + 1) % N] = lens[(seed + 2) % N]
    targets = []
    for n in range(N):
        num = int(torch.randint(1, 6, (1,), generator=g))
        targets.append(torch.randint(1, V, (num,), generator=g).tolist())
    return logits, lens, targets


def torch_loss(
    log_probs: torch.Tensor,
    lens: torch.Tensor,
    targets: List[List[int]],
    reduction: str,
):
    flat = torch.tensor([t for seq in targets for t in seq])
    target_lens = torch.tensor([len(seq) for seq in targets])
    return torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), flat, lens, target_lens, blank=0, reduction=reduction
    )


@pytest.mark.parametrize("seed", range(5))
def test_matches_torch_sum_and_none(seed: int) -> None:
    logits, lens, targets = random_batch(seed)
    log_probs = logits.log_softmax(-1)
    graphs = k2.ctc_graph(targets)
    k2_sum = k2_ctc_loss(
        log_probs, lens, graphs, reduction="sum", output_beam=EXACT_BEAM
    )
    assert (
        abs(float(k2_sum) - float(torch_loss(log_probs, lens, targets, "sum"))) < 1e-3
    )
    k2_none = k2_ctc_loss(
        log_probs, lens, graphs, reduction="none", output_beam=EXACT_BEAM
    )
    # 'none' must be in the caller's order, not k2's sorted order.
    assert k2_none.shape == (len(targets),)
    assert torch.allclose(
        k2_none, torch_loss(log_probs, lens, targets, "none"), atol=1e-3
    )


@pytest.mark.parametrize("seed", range(3))
def test_default_beam_close_and_never_below(seed: int) -> None:
    logits, lens, targets = random_batch(seed)
    log_probs = logits.log_softmax(-1)
    pruned = k2_ctc_loss(log_probs, lens, k2.ctc_graph(targets), reduction="none")
    exact = torch_loss(log_probs, lens, targets, "none")
    # Pruning drops paths, so it can only lower the likelihood.
    assert torch.all(pruned >= exact - 1e-4)
    assert torch.allclose(pruned, exact, atol=1e-3)


def test_mean_with_target_lengths_matches_torch() -> None:
    logits, lens, targets = random_batch(7)
    log_probs = logits.log_softmax(-1)
    graphs = k2.ctc_graph(targets)
    target_lens = torch.tensor([len(t) for t in targets])
    got = k2_ctc_loss(
        log_probs, lens, graphs, "mean", EXACT_BEAM, target_lengths=target_lens
    )
    assert abs(float(got) - float(torch_loss(log_probs, lens, targets, "mean"))) < 1e-4
    per_utt = k2_ctc_loss(log_probs, lens, graphs, "none", EXACT_BEAM)
    got = k2_ctc_loss(log_probs, lens, graphs, "mean", EXACT_BEAM)
    assert abs(float(got) - float(per_utt.mean())) < 1e-5


@pytest.mark.parametrize("seed", range(3))
def test_gradients_match_references(seed: int) -> None:
    logits, lens, targets = random_batch(seed, N=4, T=12, V=5)
    logits_k2 = logits.clone().requires_grad_()
    logits_torch = logits.clone().requires_grad_()
    k2_loss = k2_ctc_loss(
        logits_k2.log_softmax(-1), lens, k2.ctc_graph(targets), output_beam=EXACT_BEAM
    )
    k2_loss.backward()
    torch_loss(logits_torch.log_softmax(-1), lens, targets, "sum").backward()
    assert torch.isfinite(logits_k2.grad).all()
    # Compared through log_softmax: torch's backward w.r.t. log_probs itself
    # assumes a following log_softmax (pytorch/pytorch#52241), k2's does not.
    assert torch.allclose(logits_k2.grad, logits_torch.grad, atol=1e-4)

    log_probs = logits.log_softmax(-1).requires_grad_()
    k2_ctc_loss(
        log_probs, lens, k2.ctc_graph(targets), output_beam=EXACT_BEAM
    ).backward()
    ref_lp = log_probs.detach().double().requires_grad_()
    ref_loss = sum(
        reference_nll(ref_lp[n, : int(lens[n])], targets[n])
        for n in range(len(targets))
    )
    cast(torch.Tensor, ref_loss).backward()  # a sum of at least one tensor
    assert torch.allclose(log_probs.grad.double(), ref_lp.grad, atol=1e-4)
    assert torch.all(log_probs.grad[torch.arange(12)[None, :] >= lens[:, None]] == 0)


def test_reference_agrees_with_torch() -> None:
    logits, lens, targets = random_batch(3, N=3, T=10, V=4)
    log_probs = logits.log_softmax(-1)
    ref = torch.stack(
        [reference_nll(log_probs[n, : int(lens[n])], targets[n]) for n in range(3)]
    )
    assert torch.allclose(ref, torch_loss(log_probs, lens, targets, "none"), atol=1e-4)


def test_infeasible_utterance_is_inf() -> None:
    log_probs = torch.randn(2, 4, 5).log_softmax(-1)
    losses = k2_ctc_loss(
        log_probs, torch.tensor([4, 2]), k2.ctc_graph([[1], [1, 1]]), "none"
    )
    assert torch.isfinite(losses[0]) and torch.isinf(losses[1])


def test_bad_inputs_raise() -> None:
    log_probs = torch.randn(2, 5, 4).log_softmax(-1)
    graphs = k2.ctc_graph([[1], [2]])
    with pytest.raises(ValueError, match="out_lens must be in"):
        k2_ctc_loss(log_probs, torch.tensor([6, 3]), graphs)
    with pytest.raises(ValueError, match="out_lens must be in"):
        k2_ctc_loss(log_probs, torch.tensor([0, 3]), graphs)
    with pytest.raises(ValueError, match="FsaVec of 2"):
        k2_ctc_loss(log_probs, torch.tensor([5, 3]), k2.ctc_graph([[1]]))
    with pytest.raises(ValueError, match="reduction"):
        lens = torch.tensor([5, 3])
        k2_ctc_loss(log_probs, lens, graphs, reduction="avg")  # type: ignore
    with pytest.raises(ValueError, match="log_probs must be"):
        k2_ctc_loss(log_probs[0], torch.tensor([5]), graphs)
