"""lhotse's VoxPopuli ASR recipe on a tiny corpus in VoxPopuli's native layout."""

import csv
import gzip
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lhotse import CutSet

from asrk2.data.manifests import manifest_path
from asrk2.data.voxpopuli import prepare_voxpopuli
from asrk2.testing.corpus_layouts import LayoutConfig, make_voxpopuli_layout

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None,
    reason="needs espeak-ng and ffmpeg",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_voxpopuli_layout(
        tmp_path_factory.mktemp("vox") / "voxpopuli", LayoutConfig(seed=2)
    )


def _rows(tsv):
    with gzip.open(tsv, "rt", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="|"))


def _write_rows(tsv, rows):
    with gzip.open(tsv, "wt", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="|")
        writer.writeheader()
        writer.writerows(rows)


def test_layout(corpus):
    oggs = sorted((corpus.root / "raw_audios" / "en").rglob("*.ogg"))
    assert len(oggs) == 5
    assert {p.stem.rsplit("_", 1)[1] for p in oggs} == {"en", "original"}
    columns = set(_rows(corpus.root / "asr_en.tsv.gz")[0])
    assert {
        "session_id",
        "start_time",
        "end_time",
        "split",
        "speaker_id",
        "gender",
        "normed_text",
        "original_text",
    } <= columns


def test_splits_texts_and_counts(corpus, tmp_path):
    reports = prepare_voxpopuli(corpus.root, tmp_path)
    for split in ("train", "dev", "test"):
        cuts = CutSet.from_file(manifest_path(tmp_path, "voxpopuli", "cuts", split))
        assert {c.id: c.supervisions[0].text for c in cuts} == corpus.expected[split]
        assert reports[split].num_cuts == len(corpus.expected[split])
        assert not reports[split].skipped
        # Manifests point at the real files, not at the recipe's scratch links.
        assert all(str(corpus.root) in c.recording.sources[0].source for c in cuts)
        assert cuts[0].load_audio().shape[1] == round(cuts[0].duration * 16000)


def test_missing_annotations_fail_with_the_download_url(corpus, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(corpus.root / "raw_audios", bare / "raw_audios")
    with pytest.raises(FileNotFoundError, match="dl.fbaipublicfiles.com"):
        prepare_voxpopuli(bare, tmp_path / "m")


def test_bad_input(corpus, tmp_path):
    root = tmp_path / "vox"
    shutil.copytree(corpus.root, root)
    oggs = {
        p.stem.rsplit("_", 1)[0]: p for p in (root / "raw_audios" / "en").rglob("*.ogg")
    }
    sessions = sorted(oggs)
    oggs[sessions[0]].unlink()  # missing session audio
    oggs[sessions[1]].write_bytes(b"OggS" + bytes(200))  # undecodable session
    loud = oggs[sessions[2]]  # a 44.1 kHz session: resampled
    tmp = loud.with_name("tmp.ogg")
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(loud),
            "-ar",
            "44100",
            "-c:a",
            "libvorbis",
            str(tmp),
        ],
        check=True,
    )
    tmp.replace(loud)
    rows = _rows(root / "asr_en.tsv.gz")
    third = [r for r in rows if r["session_id"] == sessions[2]]
    third[0]["normed_text"] = " "
    third[1]["normed_text"] = "παρακαλώ thank you"
    _write_rows(root / "asr_en.tsv.gz", rows)

    reports = prepare_voxpopuli(root, tmp_path / "m", splits=["train"])
    report = reports["train"]
    assert report.skipped["missing audio file"] == [sessions[0]]
    assert report.skipped["unreadable audio"] == [sessions[1]]
    assert report.skipped["empty transcript"] == [f"{sessions[2]}-1"]
    assert report.skipped["unknown characters"] == [f"{sessions[2]}-2"]
    assert report.fixed["resampled 44100 -> 16000 Hz"] == [sessions[2]]
    cuts = CutSet.from_file(manifest_path(tmp_path / "m", "voxpopuli", "cuts", "train"))
    assert list(cuts.ids) == [f"{sessions[2]}-3"]
    cut = cuts[0]
    assert cut.sampling_rate == 16000
    assert cut.load_audio().shape[1] == round(cut.duration * 16000)


def test_cli(corpus, tmp_path, monkeypatch, capsys):
    argv = [
        "prepare_voxpopuli.py",
        "--corpus-dir",
        str(corpus.root),
        "--output-dir",
        str(tmp_path),
        "--splits",
        "dev",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "local" / "prepare_voxpopuli.py"), run_name="__main__")
    assert "dev: 3 cuts kept" in capsys.readouterr().out
