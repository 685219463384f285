"""Tests for asrk2.decode.scoring, checked against a plain Levenshtein DP."""
import logging
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from asrk2.decode.scoring import (
    ErrorStats,
    compute_wer,
    merge_wer_summaries,
    read_wer_summary,
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


def test_wer_summary_round_trip(tmp_path: Path) -> None:
    rows = {"ctc-greedy": 9.25, "hlg-1best": 7.5, "nbest-rescoring-lm_scale_0.5": 7.0}
    write_wer_summary(tmp_path / "wer.txt", rows)
    assert read_wer_summary(tmp_path / "wer.txt") == rows


@pytest.mark.parametrize(
    "text,message",
    [
        ("", r"wer.txt:1: expected the header"),
        ("method\tWER\nx\t1.0\n", r"wer.txt:1: expected the header"),
        ("settings\tWER\nx 1.0\n", r"wer.txt:2: expected 'setting<TAB>WER'"),
        ("settings\tWER\nx\tabc\n", r"wer.txt:2: expected 'setting<TAB>WER'"),
        ("settings\tWER\nx\t1\ny\t2\nx\t3\n", r"wer.txt:4: repeated setting 'x'"),
    ],
)
def test_read_wer_summary_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "wer.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_wer_summary(tmp_path / "wer.txt")


OFFLINE = {
    "ctc-greedy": 9.0,
    "hlg-1best": 8.0,
    "nbest-rescoring-lm_scale_0.3": 7.5,
    "nbest-rescoring-lm_scale_0.5": 7.25,
    "nbest-rescoring-lm_scale_1.0": 7.25,
    "attention-rescoring-scale_1.0": 6.0,
    "attention-rescoring-scale_2.0": 6.5,
}
STREAMING = {"streaming-HLG-chunk16": 8.5, "streaming-HLG-chunk4": 10.0}


def best_per_method(rows: Dict[str, float]) -> Dict[str, float]:
    """Brute force: for each method name, try every setting and keep the best."""
    methods = {k.split("-lm_scale_")[0].split("-scale_")[0] for k in rows}
    out = {}
    for method in methods:
        candidates = [
            (wer, k) for k, wer in rows.items()
            if k == method or k.startswith(method + "-lm_scale_")
            or k.startswith(method + "-scale_")
        ]
        wer, key = min(candidates)
        out[key] = wer
    return out


@pytest.mark.parametrize("best_scale_only", [False, True])
def test_merge_wer_summaries(tmp_path: Path, best_scale_only: bool) -> None:
    write_wer_summary(tmp_path / "offline.txt", OFFLINE)
    write_wer_summary(tmp_path / "streaming.txt", STREAMING)
    merged = merge_wer_summaries(
        [tmp_path / "offline.txt", tmp_path / "streaming.txt"], best_scale_only
    )
    both = {**OFFLINE, **STREAMING}
    assert merged == (best_per_method(both) if best_scale_only else both)
    if best_scale_only:  # a tie keeps the first in name order
        assert "nbest-rescoring-lm_scale_0.5" in merged


def test_merge_wer_summaries_clash(tmp_path: Path) -> None:
    write_wer_summary(tmp_path / "a.txt", {"ctc-greedy": 9.0})
    write_wer_summary(tmp_path / "b.txt", {"ctc-greedy": 8.0})
    with pytest.raises(ValueError, match=r"'ctc-greedy' is in both .*a.txt and .*b"):
        merge_wer_summaries([tmp_path / "a.txt", tmp_path / "b.txt"])


def test_wer_table_cli(tmp_path: Path) -> None:
    write_wer_summary(tmp_path / "offline.txt", OFFLINE)
    write_wer_summary(tmp_path / "streaming.txt", STREAMING)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "local" / "wer_table.py"), "--best-scale-only",
         "--out", str(tmp_path / "table.txt"), str(tmp_path / "offline.txt"),
         str(tmp_path / "streaming.txt")],
        env=env, check=True, capture_output=True, text=True,
    )
    table = (tmp_path / "table.txt").read_text()
    assert out.stdout == table
    assert table.splitlines() == [
        "settings\tWER",
        "attention-rescoring-scale_1.0\t6.00",
        "nbest-rescoring-lm_scale_0.5\t7.25",
        "hlg-1best\t8.00",
        "streaming-HLG-chunk16\t8.50",
        "ctc-greedy\t9.00",
        "streaming-HLG-chunk4\t10.00",
    ]
    missing = subprocess.run(
        [sys.executable, str(REPO_ROOT / "local" / "wer_table.py"),
         "--out", str(tmp_path / "t.txt"), str(tmp_path / "nope.txt")],
        env=env, capture_output=True, text=True,
    )
    assert missing.returncode != 0 and "nope.txt" in missing.stderr
