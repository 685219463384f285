"""Attention-side losses against independent references: torch CE/BCE, formulas."""

import math

import k2
import pytest
import torch
import torch.nn.functional as F

from asrk2.losses import (
    ctc_focal_loss,
    dice_loss,
    focal_loss,
    k2_ctc_loss,
    label_smoothing_loss,
    sigmoid_focal_loss,
)

IGNORE = -1


def random_batch(seed: int, n: int = 3, u: int = 5, v: int = 7, scale: float = 3.0):
    """Logits (N, U, V) and targets (N, U) with some padding (-1)."""
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, u, v, generator=g)
    targets = torch.randint(0, v, (n, u), generator=g)
    targets[0, -2:] = IGNORE
    targets[-1, -1] = IGNORE
    return logits, targets


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_equals_torch_cross_entropy(seed: int, eps: float) -> None:
    logits, targets = random_batch(seed)
    ours = label_smoothing_loss(logits, targets, eps, IGNORE, "sum")
    ref = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
        ignore_index=IGNORE, label_smoothing=eps, reduction="sum",
    )  # fmt: skip
    assert torch.allclose(ours, ref, atol=1e-5)
    per_pos = label_smoothing_loss(logits, targets, eps, IGNORE, "none")
    assert per_pos.shape == targets.shape and float(per_pos[0, -1]) == 0.0


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_focal_with_gamma_0_is_cross_entropy(eps: float) -> None:
    logits, targets = random_batch(2)
    ours = focal_loss(logits, targets, gamma=0.0, label_smoothing=eps)
    ref = F.cross_entropy(
        logits.reshape(-1, 7), targets.reshape(-1), ignore_index=IGNORE,
        label_smoothing=eps, reduction="sum",
    )  # fmt: skip
    assert torch.allclose(ours, ref, atol=1e-5)


def test_focal_matches_formula_and_weights() -> None:
    logits, targets = random_batch(3)
    gamma = 2.0
    flat, tgt = logits.reshape(-1, 7), targets.reshape(-1)
    keep = tgt != IGNORE
    p_t = flat.softmax(-1)[keep].gather(1, tgt[keep, None]).squeeze(1)
    ref = (-((1 - p_t) ** gamma) * p_t.log()).sum()
    assert torch.allclose(focal_loss(logits, targets, gamma), ref, atol=1e-5)
    # Focusing down-weights every example, the easy ones most.
    assert focal_loss(logits, targets, gamma) < focal_loss(logits, targets, 0.0)
    assert torch.allclose(
        focal_loss(logits, targets, gamma, alpha=0.25), 0.25 * ref, atol=1e-5
    )
    alpha = torch.rand(7)
    weighted = focal_loss(logits, targets, gamma, alpha=alpha)
    ref_w = (-alpha[tgt[keep]] * (1 - p_t) ** gamma * p_t.log()).sum()
    assert torch.allclose(weighted, ref_w, atol=1e-5)


def test_sigmoid_focal_reduces_to_bce_and_matches_formula() -> None:
    logits, targets = random_batch(4)
    flat, tgt = logits.reshape(-1, 7), targets.reshape(-1)
    keep = tgt != IGNORE
    onehot = F.one_hot(tgt[keep], 7).float()
    bce = F.binary_cross_entropy_with_logits(flat[keep], onehot, reduction="sum")
    plain = sigmoid_focal_loss(logits, targets, gamma=0.0, alpha=-1.0)
    assert torch.allclose(plain, bce, atol=1e-4)
    # RetinaNet's formula on hard labels, written out independently.
    p = torch.sigmoid(flat[keep])
    p_t = torch.where(onehot > 0, p, 1 - p)
    a_t = torch.where(onehot > 0, torch.tensor(0.25), torch.tensor(0.75))
    ref = (-a_t * (1 - p_t) ** 2 * p_t.log()).sum()
    ours = sigmoid_focal_loss(logits, targets, gamma=2.0, alpha=0.25)
    assert torch.allclose(ours, ref, rtol=1e-4)
    # Label smoothing: soft targets y(1 - eps) + eps/2 in plain BCE.
    soft = onehot * 0.8 + 0.1
    ref_ls = F.binary_cross_entropy_with_logits(flat[keep], soft, reduction="sum")
    ours_ls = sigmoid_focal_loss(logits, targets, 0.0, -1.0, label_smoothing=0.2)
    assert torch.allclose(ours_ls, ref_ls, atol=1e-4)


def test_dice_is_zero_for_perfect_one_hot_and_positive_otherwise() -> None:
    _, targets = random_batch(5)
    perfect = F.one_hot(targets.clamp(min=0), 7).float()
    assert float(dice_loss(perfect, targets)) == 0.0
    assert dice_loss(perfect, targets, reduction="none").tolist() == [0.0, 0.0, 0.0]
    uniform = torch.full_like(perfect, 1 / 7)
    losses = dice_loss(uniform, targets, reduction="none")
    # U valid positions, V = 7 classes, smooth s = 1: intersection U / V,
    # sum p^2 = U / V, sum y = U, so loss = 1 - (2U/V + s) / (U/V + U + s).
    u = (targets != IGNORE).sum(dim=1).double()
    expected = 1 - (2 * u / 7 + 1) / (u / 7 + u + 1)
    assert torch.allclose(losses.double(), expected, atol=1e-6)
    # Padding positions count for nothing, whatever is predicted there.
    garbage = perfect.clone()
    garbage[targets == IGNORE] = 1 / 7
    assert float(dice_loss(garbage, targets)) == 0.0


def test_ctc_focal_with_gamma_0_is_k2_ctc_which_is_torch_ctc() -> None:
    g = torch.Generator().manual_seed(6)
    log_probs = torch.randn(3, 20, 6, generator=g).log_softmax(-1)
    lens = torch.tensor([20, 15, 18])
    targets = [[1, 2, 2], [3, 4], [5, 1, 3, 1]]
    nll = k2_ctc_loss(log_probs, lens, k2.ctc_graph(targets), reduction="none")
    ref = F.ctc_loss(
        log_probs.transpose(0, 1), torch.tensor(sum(targets, [])), lens,
        torch.tensor([len(t) for t in targets]), reduction="none",
    )  # fmt: skip
    assert torch.allclose(ctc_focal_loss(nll, 0.0, "none"), ref, rtol=1e-4)
    p = torch.exp(-ref)
    focused = ctc_focal_loss(nll, 2.0, "none")
    assert torch.allclose(focused, (1 - p) ** 2 * ref, rtol=1e-4)


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_all_gradients_are_finite(scale: float) -> None:
    """Also with saturated logits (p_t = 1 or 0), where x^gamma and log p bite."""
    logits, targets = random_batch(7, scale=scale)
    losses = {
        "label_smoothing": lambda x: label_smoothing_loss(x, targets, 0.1),
        "focal": lambda x: focal_loss(x, targets, 2.0, 0.5, 0.1),
        "focal_frac_gamma": lambda x: focal_loss(x, targets, 0.5),
        "sigmoid_focal": lambda x: sigmoid_focal_loss(x, targets, 2.0, 0.25, 0.1),
        "dice": lambda x: dice_loss(x.softmax(-1), targets),
    }
    for name, fn in losses.items():
        x = logits.clone().requires_grad_()
        loss = fn(x)
        loss.backward()
        assert math.isfinite(float(loss)), name
        assert torch.isfinite(x.grad).all(), name
    nll = torch.tensor([0.0, 1e-6, 3.0, 300.0], requires_grad=True)
    ctc_focal_loss(nll, 2.0).backward()
    assert nll.grad is not None
    assert torch.isfinite(nll.grad).all()


def test_bad_arguments() -> None:
    logits, targets = random_batch(8)
    with pytest.raises(ValueError, match="gamma"):
        focal_loss(logits, targets, gamma=-1.0)
    with pytest.raises(ValueError, match="disagree"):
        label_smoothing_loss(logits, targets[:, :2])
    with pytest.raises(ValueError, match="smooth"):
        dice_loss(logits.softmax(-1), targets, smooth=0.0)
