"""Word times and confidences of best paths, and CTM files, on hand-built inputs."""

from pathlib import Path
from typing import List

import pytest
import torch

from asrk2.decode.alignment import best_path_alignments, token_spans, word_times
from asrk2.decode.ctc_decode import build_ctc_topo, get_lattice
from asrk2.decode.scoring import write_ctm

PIECES = ["<blk>", "\u2581A", "B", "\u2581C"]  # "AB" is two pieces


def log_probs_of(frames: List[List[float]]) -> torch.Tensor:
    """(1, T, V) log-probs from per-frame probabilities."""
    return torch.tensor(frames).log().unsqueeze(0)


def one_hot(labels: List[int], p: float = 0.97) -> List[List[float]]:
    rows = []
    for label in labels:
        row = [(1 - p) / (len(PIECES) - 1)] * len(PIECES)
        row[label] = p
        rows.append(row)
    return rows


def align(frames: List[List[float]]):
    lp = log_probs_of(frames)
    lattice = get_lattice(lp, torch.tensor([lp.size(1)]), build_ctc_topo(3))
    return best_path_alignments(lattice, posteriors=True)[0]


def test_token_spans_collapse_repeats_not_blank_separated_ones():
    assert token_spans([0, 1, 1, 0, 1, 2, 2, 0]) == [(1, 1, 2), (1, 4, 4), (2, 5, 6)]
    assert token_spans([0, 0]) == []


def test_ctm_of_a_hand_computed_alignment(tmp_path: Path):
    # Frames (40 ms each): blank, A, A, blank, B, C, C, blank.
    alignment = align(one_hot([0, 1, 1, 0, 2, 3, 3, 0], p=0.999))
    assert alignment.labels == [0, 1, 1, 0, 2, 3, 3, 0]
    assert alignment.ids == [1, 2, 3] and alignment.id_frames == [1, 4, 5]
    words = word_times(alignment, ["AB", "C"], PIECES)
    write_ctm(tmp_path / "t.ctm", [("utt1", words)])
    # AB: frames 1-4, 0.04 s to 0.20 s; C: frames 5-6, 0.20 s to 0.28 s.
    assert (tmp_path / "t.ctm").read_text() == (
        "utt1 1 0.04 0.16 AB 1.000\nutt1 1 0.20 0.08 C 1.000\n"
    )


def test_frame_offset_moves_every_time():
    alignment = align(one_hot([0, 3, 0]))
    (word,) = word_times(alignment, ["C"], PIECES, frame_offset=100)
    assert (word.start, word.end) == (pytest.approx(4.04), pytest.approx(4.08))


def test_confidence_is_the_posterior_of_the_emitting_arc():
    # One frame: P(A) = 0.6, P(blank) = 0.4 (C and B 0): two paths, A wins.
    alignment = align([[0.4, 0.6, 1e-9, 1e-9]])
    (word,) = word_times(alignment, ["A"], PIECES)
    assert word.confidence == pytest.approx(0.6, abs=1e-4)
    # Two frames, A then A or blank: "A" on frame 0 is on paths A-A and A-blank,
    # P = 0.6 (0.7 + 0.3); the other paths start with blank (0.4).
    alignment = align([[0.4, 0.6, 1e-9, 1e-9], [0.3, 0.7, 1e-9, 1e-9]])
    assert alignment.ids == [1] and alignment.id_frames == [0]
    assert alignment.id_posteriors == [pytest.approx(0.6, abs=1e-4)]


def test_a_word_without_its_pieces_falls_back_to_emission_frames():
    alignment = align(one_hot([0, 1, 0, 0, 3, 0]))
    # Pieces unknown: words span from their emission to the next one.
    words = word_times(alignment, ["A", "C"], None)
    assert [(w.start, w.end) for w in words] == [
        (pytest.approx(0.04), pytest.approx(0.16)),
        (pytest.approx(0.16), pytest.approx(0.24)),
    ]
