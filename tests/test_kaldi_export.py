"""Export of CutSets to Kaldi data dirs, and the round trip through the importer."""

import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_kaldi_dir, write_tone
from lhotse import CutSet

from asrk2.data.kaldi_dir import (
    export_kaldi_dir,
    import_kaldi_dir,
    read_kaldi_table,
    wav_scp_entry,
)
from asrk2.data.manifests import CorpusWriter, manifest_path

ROOT = Path(__file__).resolve().parent.parent
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@pytest.fixture
def imported(tmp_path):
    data = write_kaldi_dir(
        tmp_path / "src", {"u1": "turn it on", "u2": "Hello, World", "u3": "yes"}
    )
    write_tone(tmp_path / "src" / "wav" / "u3.wav", 1.5, 330.0, sample_rate=8000)
    return import_kaldi_dir(data, tmp_path / "m1", "train", prefix="t")


def test_export_writes_sorted_kaldi_files(imported, tmp_path):
    out = export_kaldi_dir(imported, tmp_path / "kaldi", prefix_speaker=True)
    names = {p.name for p in out.iterdir()}
    assert {
        "wav.scp",
        "segments",
        "text",
        "utt2spk",
        "spk2utt",
        "reco2dur",
        "utt2dur",
    } <= names
    text = read_kaldi_table(out / "text")
    assert text == {"spk1-u1": "TURN IT ON", "spk1-u2": "HELLO WORLD", "spk1-u3": "YES"}
    assert read_kaldi_table(out / "spk2utt") == {"spk1": "spk1-u1 spk1-u2 spk1-u3"}
    lines = (out / "utt2spk").read_text().splitlines()
    assert lines == sorted(lines)
    wav = read_kaldi_table(out / "wav.scp")
    assert not wav["u1"].endswith("|")  # a plain 16 kHz wav stays a path
    assert wav["u3"].startswith("ffmpeg") and wav["u3"].endswith(
        "|"
    )  # resampled 8 kHz one
    with pytest.raises(FileExistsError):
        export_kaldi_dir(imported, out)


@needs_ffmpeg
def test_round_trip_keeps_ids_texts_durations_and_audio(imported, tmp_path):
    out = export_kaldi_dir(imported, tmp_path / "kaldi")
    again = import_kaldi_dir(out, tmp_path / "m2", "train", prefix="t")
    assert sorted(again.ids) == sorted(imported.ids)
    for cut in imported:
        other = again[cut.id]
        assert other.supervisions[0].text == cut.supervisions[0].text
        assert other.supervisions[0].speaker == cut.supervisions[0].speaker
        assert abs(other.duration - cut.duration) < 2e-3
        a, b = cut.load_audio()[0], other.load_audio()[0]
        n = min(len(a), len(b))
        assert abs(len(a) - len(b)) <= 32
        # Plain wavs come back bit-exact; the resampled one through ffmpeg, closely.
        assert np.sqrt(np.mean((a[:n] - b[:n]) ** 2)) < 0.02


@needs_ffmpeg
def test_speed_perturbed_cuts_export_as_pipes(imported, tmp_path):
    fast = imported["u1"].perturb_speed(1.1)
    entry = wav_scp_entry(fast.recording)
    assert "asetrate" in entry and entry.endswith("|")
    out = export_kaldi_dir(CutSet.from_cuts([fast]), tmp_path / "sp")
    again = import_kaldi_dir(out, tmp_path / "m3", "sp", prefix="t")
    assert abs(again[fast.id].duration - fast.duration) < 2e-3


def test_corpus_writer_leaves_nothing_on_error(imported, tmp_path):
    cut = imported["u1"]
    with pytest.raises(RuntimeError):
        with CorpusWriter(tmp_path / "w", "t", "x") as writer:
            writer.write(cut.recording, cut.supervisions)
            raise RuntimeError("interrupted")
    assert not manifest_path(tmp_path / "w", "t", "cuts", "x").exists()
    assert not list((tmp_path / "w").iterdir())


def test_cli_export_and_import(imported, tmp_path, monkeypatch):
    cuts_path = tmp_path / "c.jsonl.gz"
    imported.to_file(cuts_path)
    script = str(ROOT / "local" / "prepare_kaldi.py")
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "prepare_kaldi.py",
            "--export-cuts",
            str(cuts_path),
            "--data-dir",
            str(tmp_path / "k"),
            "--prefix-speaker",
        ],
    )
    runpy.run_path(script, run_name="__main__")
    assert (tmp_path / "k" / "spk2utt").is_file()
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "prepare_kaldi.py",
            "--data-dir",
            str(tmp_path / "k"),
            "--output-dir",
            str(tmp_path / "m"),
            "--split",
            "x",
        ],
    )
    runpy.run_path(script, run_name="__main__")
    assert (
        len(CutSet.from_file(manifest_path(tmp_path / "m", "kaldi", "cuts", "x"))) == 3
    )
