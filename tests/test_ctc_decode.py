"""Tests for asrk2.decode.ctc_decode against a brute-force greedy CTC decoder."""
from typing import List

import k2
import pytest
import torch

from asrk2.decode.ctc_decode import (
    build_ctc_topo,
    ctc_argmax_decode,
    ctc_greedy_decode,
    get_lattice,
    one_best_token_ids,
)


def brute_force_greedy(
    log_probs: torch.Tensor, out_lens: torch.Tensor
) -> List[List[int]]:
    """Per-frame argmax, collapse repeats, drop blanks (0), one utterance at a time."""
    hyps = []
    for lp, n in zip(log_probs, out_lens.tolist()):
        best = lp[:n].argmax(dim=-1).tolist()
        collapsed = [t for i, t in enumerate(best) if i == 0 or t != best[i - 1]]
        hyps.append([t for t in collapsed if t != 0])
    return hyps


def peaked_log_probs(frames: List[int], vocab_size: int) -> torch.Tensor:
    """Log-probs (T, V) whose argmax on frame t is ``frames[t]``."""
    logits = torch.zeros(len(frames), vocab_size)
    logits[torch.arange(len(frames)), torch.tensor(frames)] = 5.0
    return logits.log_softmax(dim=-1)


def test_build_ctc_topo_is_arc_sorted() -> None:
    for modified in (False, True):
        H = build_ctc_topo(4, modified=modified, device="cpu")
        assert H.properties & k2.fsa_properties.ARC_SORTED
        assert int(H.labels.max()) == 4
    with pytest.raises(ValueError):
        build_ctc_topo(0)


# With the standard topology, H's states are "last frame's label" and the
# frame label alone picks the next arc, so every per-frame label sequence is
# exactly one path, scored by the sum of its frames' log-probs. The best
# path is therefore the per-frame argmax, and its output is H's mapping of
# that sequence: collapse repeats, drop blanks. That same argmax prefix is
# the best state on every frame, so beam pruning cannot lose it. (The
# modified topology lets "a a" also mean two a's, so it is not tested here.)
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("vocab_size", [4, 30])
@pytest.mark.parametrize("wide_beams", [False, True])
def test_greedy_equals_brute_force(
    seed: int, vocab_size: int, wide_beams: bool
) -> None:
    torch.manual_seed(seed)
    N, T = 9, 40
    # Unsorted, with ties and a full-length one; frames past a length are
    # random too, so decoding them would change the answer.
    out_lens = torch.randint(1, T + 1, (N,))
    out_lens[seed % N] = T
    out_lens[(seed + 1) % N] = out_lens[(seed + 2) % N]
    log_probs = (3 * torch.randn(N, T, vocab_size)).log_softmax(dim=-1)
    H = build_ctc_topo(vocab_size - 1)
    if wide_beams:  # get_lattice's defaults, as HLG decoding uses them
        hyps = one_best_token_ids(get_lattice(log_probs, out_lens, H))
    else:
        hyps = ctc_greedy_decode(log_probs, out_lens, H)
    assert hyps == brute_force_greedy(log_probs, out_lens)
    assert ctc_argmax_decode(log_probs, out_lens) == hyps


def test_repeats_with_blank_between() -> None:
    frames = [1, 1, 0, 1, 2, 2, 0, 0, 2, 3, 0]
    log_probs = peaked_log_probs(frames, 4).unsqueeze(0)
    H = build_ctc_topo(3)
    assert ctc_greedy_decode(log_probs, torch.tensor([len(frames)]), H) == [
        [1, 1, 2, 2, 3]
    ]


def test_modified_topo_on_blank_separated_tokens() -> None:
    # Blanks between all tokens leave no ambiguity for the modified topology.
    frames = [1, 0, 1, 0, 2, 0, 3]
    log_probs = peaked_log_probs(frames, 4).unsqueeze(0)
    H = build_ctc_topo(3, modified=True)
    hyps = ctc_greedy_decode(log_probs, torch.tensor([len(frames)]), H)
    assert hyps == [[1, 1, 2, 3]]


def test_output_order_equals_input_order() -> None:
    utts = [[1, 0, 2], [3, 3, 0, 1, 1, 2, 0, 2, 2], [2, 0, 0, 1, 3]]
    T = max(len(u) for u in utts)
    log_probs = torch.stack(
        [peaked_log_probs(u + [0] * (T - len(u)), 4) for u in utts]
    )
    out_lens = torch.tensor([len(u) for u in utts])
    H = build_ctc_topo(3)
    batch = ctc_greedy_decode(log_probs, out_lens, H)
    single = [
        ctc_greedy_decode(log_probs[i : i + 1], out_lens[i : i + 1], H)[0]
        for i in range(len(utts))
    ]
    assert batch == single == [[1, 2], [3, 1, 2, 2], [2, 1, 3]]
    # The lattice itself is in batch order too: FSA i spans utterance i's frames.
    lattice = get_lattice(log_probs, out_lens, H)
    assert lattice.shape[0] == len(utts)


def test_one_best_reads_ragged_aux_labels() -> None:
    # As in HLG, an arc may carry several word ids or none.
    fsa = k2.Fsa.from_str("0 1 1 0.0\n1 2 2 0.0\n2 3 -1 0.0\n3")
    fsa.aux_labels = k2.RaggedTensor([[5, 7], [], [-1]])
    assert one_best_token_ids(k2.create_fsa_vec([fsa, fsa])) == [[5, 7], [5, 7]]


def test_subsampling_factor_allows_truncation() -> None:
    frames = [1, 0, 2, 2]
    log_probs = peaked_log_probs(frames, 3).unsqueeze(0)
    H = build_ctc_topo(2)
    lattice = get_lattice(log_probs, torch.tensor([5]), H, subsampling_factor=2)
    assert one_best_token_ids(lattice) == [[1, 2]]
    with pytest.raises(ValueError, match="exceeds"):
        get_lattice(log_probs, torch.tensor([5]), H)


def test_rejects_bad_lengths() -> None:
    log_probs = torch.randn(2, 5, 3).log_softmax(dim=-1)
    H = build_ctc_topo(2)
    with pytest.raises(ValueError, match=">= 1 frame"):
        ctc_greedy_decode(log_probs, torch.tensor([5, 0]), H)
    with pytest.raises(ValueError, match="entries"):
        ctc_greedy_decode(log_probs, torch.tensor([5]), H)
