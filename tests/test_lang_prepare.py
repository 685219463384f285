"""Tests for asrk2.lang.prepare and the lang-stage scripts: skipping, rebuilding."""

import os
import runpy
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut, dummy_supervision

from asrk2.data.sentences import SentenceGenerator
from asrk2.lang.prepare import (
    compile_graphs,
    is_up_to_date,
    prepare_bpe_lang,
    prepare_lms,
    write_transcripts,
)

ROOT = Path(__file__).resolve().parent.parent


def texts(num: int, seed: int = 11) -> List[str]:
    gen = SentenceGenerator(seed=seed)
    return [gen.sentence() for _ in range(num)]


def mtimes(lang_dir: Path) -> Dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in lang_dir.iterdir()}


def prepare(lang_dir: Path, sentences: List[str], min_counts=None) -> None:
    write_transcripts(sentences, lang_dir)
    prepare_bpe_lang(lang_dir, vocab_size=60)
    prepare_lms(lang_dir, orders=(2, 3), min_counts=min_counts)
    compile_graphs(lang_dir)


def test_is_up_to_date(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.write_text("a")
    assert not is_up_to_date([out], [src])
    out.write_text("b")
    assert is_up_to_date([out], [src])
    src.write_text("c")
    ns = out.stat().st_mtime_ns
    os.utime(src, ns=(ns + 10**9, ns + 10**9))
    assert not is_up_to_date([out], [src])


def test_rerun_skips_and_changes_rebuild(tmp_path: Path) -> None:
    sentences = texts(80)
    prepare(tmp_path, sentences)
    first = mtimes(tmp_path)
    # No temporary files of atomic writes are left behind.
    assert all(not n.startswith(".") or n.endswith(".params") for n in first)
    prepare(tmp_path, list(sentences))  # same text: nothing is rewritten
    assert mtimes(tmp_path) == first
    assert compile_graphs(tmp_path) == {}

    prepare(tmp_path, sentences, min_counts={3: [1, 1, 2]})  # only the 3-gram steps
    second = mtimes(tmp_path)
    changed = {n for n in first if second[n] != first[n]}
    assert changed == {
        ".lm3.params",
        "lm_3.arpa",
        "G_3_gram.fst.txt",
        "G_3_gram.pt",
        "HLG.pt",
    }

    prepare(tmp_path, sentences + ["TURN ON THE PORCH LIGHTS"])  # new text: all again
    third = mtimes(tmp_path)
    assert {n for n in first if third[n] == second[n]} == {
        ".bpe.params",
        ".words.params",
        ".lm2.params",
        ".graphs.params",
    }


def run_script(monkeypatch, name: str, *args: str) -> None:
    """Runs ``local/<name>`` as ``__main__`` in this process (no import cost)."""
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(ROOT / "local" / name), run_name="__main__")


def test_scripts_build_a_lang_dir_from_cuts(tmp_path: Path, monkeypatch) -> None:
    sentences = texts(60) + ["Turn on the lights, please!"]
    cuts = CutSet.from_cuts(
        dummy_cut(i, supervisions=[dummy_supervision(i, text=t)])
        for i, t in enumerate(sentences)
    )
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    lang, phone = tmp_path / "lang_bpe_50", tmp_path / "lang_phone"
    run_script(
        monkeypatch,
        "prepare_lang.py",
        "--cuts",
        str(tmp_path / "cuts.jsonl.gz"),
        "--lang-dir",
        str(lang),
        "--nbpe",
        "50",
        "--phone-lang-dir",
        str(phone),
    )
    run_script(monkeypatch, "compile_graphs.py", "--lang-dir", str(lang))
    for name in (
        "bpe.model",
        "tokens.txt",
        "words.txt",
        "lexicon.txt",
        "L_disambig.pt",
        "G_3_gram.pt",
        "G_4_gram.pt",
        "HLG.pt",
        "HL.pt",
    ):
        assert (lang / name).exists(), name
    for name in ("lexicon.txt", "oov.txt", "L_disambig.pt", "G_3_gram.pt"):
        assert (phone / name).exists(), name
    # Transcripts are normalised the way the scorer sees them.
    assert (
        "TURN ON THE LIGHTS PLEASE"
        in (lang / "transcripts.txt").read_text().splitlines()
    )


@pytest.mark.parametrize("bad", [[], ["", "  "]])
def test_write_transcripts_rejects_empty(tmp_path: Path, bad) -> None:
    with pytest.raises(ValueError, match="no non-empty transcripts"):
        write_transcripts(bad, tmp_path)
