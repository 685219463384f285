"""Tests for asrk2.decode.scoring, checked against a plain Levenshtein DP."""
import logging
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

import pytest

from asrk2.decode.scoring import (
    ErrorStats,
    compute_wer,
    score_text_files,
    write_errs,
    write_recogs,
    write_wer_summary,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def levenshtein(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Textbook edit distance with unit costs, independent of kaldialign."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def random_words(rng: random.Random) -> List[str]:
    return [rng.choice("ABCD") for _ in range(rng.randint(0, 6))]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compute_wer_matches_levenshtein(seed: int) -> None:
    rng = random.Random(seed)
    results = [(f"u{i}", random_words(rng), random_words(rng)) for i in range(200)]
    for cut_id, ref, hyp in results:
        stats = compute_wer([(cut_id, ref, hyp)])
        assert stats.subs + stats.ins + stats.dels == levenshtein(ref, hyp)
        assert stats.ins - stats.dels == len(hyp) - len(ref)
    total = compute_wer(results)
    assert total.errors == sum(levenshtein(r, h) for _, r, h in results)
    assert total.num_ref_words == sum(len(r) for _, r, _ in results)


def test_hand_case() -> None:
    stats = compute_wer([("u", "A B C D".split(), "A X C D E".split())])
    assert stats == ErrorStats(num_ref_words=4, subs=1, ins=1, dels=0)
    assert stats.wer == pytest.approx(50.0)
    assert stats.wer_line() == "%WER 50.00 [ 2 / 4, 1 ins, 0 del, 1 sub ]"


def test_star_is_an_ordinary_word() -> None:
    stats = compute_wer([("u", ["*", "A"], ["A"])])
    assert (stats.dels, stats.subs, stats.ins) == (1, 0, 0)


def test_wer_without_reference_words() -> None:
    assert ErrorStats().wer == 0.0
    assert ErrorStats(ins=1).wer == float("inf")


def test_written_files(tmp_path: Path) -> None:
    results = [("b", "A B C D".split(), "A X C D E".split()), ("a", ["F"], [])]
    stats = compute_wer(results)
    write_recogs(tmp_path / "recogs.txt", results)
    assert (tmp_path / "recogs.txt").read_text().splitlines() == [
        "a:\tref=['F']",
        "a:\thyp=[]",
        "b:\tref=['A', 'B', 'C', 'D']",
        "b:\thyp=['A', 'X', 'C', 'D', 'E']",
    ]
    write_errs(tmp_path / "errs.txt", results, stats)
    errs = (tmp_path / "errs.txt").read_text().splitlines()
    assert errs[0] == "%WER 60.00 [ 3 / 5, 1 ins, 1 del, 1 sub ]"
    assert "a:\t(F->*)" in errs
    assert "b:\tA (B->X) C D (*->E)" in errs
    for section, entry in [("SUBSTITUTIONS", "1   B -> X"), ("DELETIONS", "1   F"),
                           ("INSERTIONS", "1   E")]:
        start = next(i for i, line in enumerate(errs) if line.startswith(section))
        assert errs[start + 1] == entry
    write_wer_summary(tmp_path / "wer.txt", {"hlg": 7.5, "greedy": 9.25, "beam": 7.0})
    assert (tmp_path / "wer.txt").read_text() == (
        "settings\tWER\nbeam\t7.00\nhlg\t7.50\ngreedy\t9.25\n"
    )


def test_score_text_files_missing_utterance(tmp_path: Path, caplog) -> None:
    (tmp_path / "ref").write_text("u1 A B C\nu2 D E\nu3 F\n")
    (tmp_path / "hyp").write_text("u3 F G\nu1 A B C\n")
    with caplog.at_level(logging.WARNING):
        stats = score_text_files(tmp_path / "ref", tmp_path / "hyp")
    assert stats == ErrorStats(num_ref_words=6, subs=0, ins=1, dels=2)
    assert "u2" in caplog.text


def test_score_text_files_cer(tmp_path: Path) -> None:
    (tmp_path / "ref").write_text("u1 ab cd\nu2 x\n")
    (tmp_path / "hyp").write_text("u1 abd\nu2\n")
    stats = score_text_files(tmp_path / "ref", tmp_path / "hyp", char_level=True)
    assert stats == ErrorStats(num_ref_words=5, subs=0, ins=0, dels=2)


@pytest.mark.parametrize(
    "ref,hyp,message",
    [
        ("u1 A\n\nu2 B\n", "u1 A\n", r"ref:2: empty line"),
        ("u1 A\nu1 B\n", "u1 A\n", r"ref:2: duplicate utterance id 'u1'"),
        ("u1 A\n", "u1 A\nu9 B\n", r"not in .*: u9"),
    ],
)
def test_score_text_files_errors(
    tmp_path: Path, ref: str, hyp: str, message: str
) -> None:
    (tmp_path / "ref").write_text(ref)
    (tmp_path / "hyp").write_text(hyp)
    with pytest.raises(ValueError, match=message):
        score_text_files(tmp_path / "ref", tmp_path / "hyp")


def test_score_cli(tmp_path: Path) -> None:
    (tmp_path / "ref").write_text("u1 A B C D\n")
    (tmp_path / "hyp").write_text("u1 A X C D E\n")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "local" / "score.py"), str(tmp_path / "ref"),
         str(tmp_path / "hyp"), "--errs", str(tmp_path / "errs.txt")],
        env=env, check=True, capture_output=True, text=True,
    )
    assert out.stdout.strip() == "%WER 50.00 [ 2 / 4, 1 ins, 0 del, 1 sub ]"
    assert (tmp_path / "errs.txt").read_text().startswith("%WER 50.00")
