"""lhotse's GigaSpeech recipe on a tiny corpus in GigaSpeech's native layout."""

import json
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet

from asrk2.data.gigaspeech import gigaspeech_text, prepare_gigaspeech
from asrk2.data.manifests import manifest_path
from asrk2.features.fbank import FbankConfig, compute_fbank
from asrk2.testing.corpus_layouts import LayoutConfig, make_gigaspeech_layout

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None,
    reason="needs espeak-ng and ffmpeg",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_gigaspeech_layout(
        tmp_path_factory.mktemp("giga") / "GigaSpeech", LayoutConfig(seed=1)
    )


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("manifests")
    return out, prepare_gigaspeech(corpus.root, out, subsets=["XS", "S", "DEV", "TEST"])


def test_layout_is_what_the_recipe_reads(corpus):
    meta = json.loads((corpus.root / "GigaSpeech.json").read_text())
    audio = meta["audios"][0]
    assert {
        "aid",
        "path",
        "sample_rate",
        "channels",
        "duration",
        "format",
        "subsets",
        "segments",
    } <= set(audio)
    assert audio["path"].startswith("audio/") and audio["path"].endswith(".opus")
    assert {"sid", "speaker", "begin_time", "end_time", "text_tn", "subsets"} <= set(
        audio["segments"][0]
    )
    assert all((corpus.root / a["path"]).is_file() for a in meta["audios"])


@pytest.mark.parametrize("subset", ["XS", "S", "DEV", "TEST"])
def test_texts_and_counts(prepared, corpus, subset):
    out, reports = prepared
    cuts = CutSet.from_file(manifest_path(out, "gigaspeech", "cuts", subset))
    texts = {c.id: c.supervisions[0].text for c in cuts}
    assert texts == corpus.expected[subset]
    assert "<COMMA>" not in " ".join(texts.values())
    report = reports[subset]
    assert report.num_cuts == len(corpus.expected[subset])
    assert sorted(report.skipped["garbage utterance"]) == sorted(corpus.garbage[subset])
    # Trimmed to utterances inside long recordings.
    assert all(c.start > 0 and c.duration < c.recording.duration for c in cuts)


def test_xs_is_a_strict_subset_of_s(corpus):
    assert set(corpus.expected["XS"]) < set(corpus.expected["S"])


def test_rerun_is_a_no_op_and_raw_manifests_are_kept(prepared, corpus):
    out, reports = prepared
    cuts_file = manifest_path(out, "gigaspeech", "cuts", "XS")
    before = cuts_file.stat().st_mtime_ns
    again = prepare_gigaspeech(corpus.root, out, subsets=["XS"])
    assert cuts_file.stat().st_mtime_ns == before
    assert again["XS"].counts == reports["XS"].counts
    assert (out / "raw" / "gigaspeech_cuts_XS.jsonl.gz").is_file()


def test_fbank_on_opus_segments(prepared, tmp_path):
    out, _ = prepared
    cuts = CutSet.from_file(manifest_path(out, "gigaspeech", "cuts", "DEV"))
    feats = compute_fbank(
        cuts, tmp_path / "f", tmp_path / "f.jsonl.gz", FbankConfig(device="cpu")
    )
    for cut in feats:
        matrix = cut.load_features()
        assert matrix.shape == (cut.num_frames, 80)
        assert abs(cut.num_frames - round(cut.duration * 100)) <= 1
        assert np.isfinite(matrix).all()


def test_missing_audio_is_skipped_and_counted(corpus, tmp_path):
    broken = tmp_path / "GigaSpeech"
    shutil.copytree(corpus.root, broken)
    meta = json.loads((broken / "GigaSpeech.json").read_text())
    dev = next(a for a in meta["audios"] if "{DEV}" in a["subsets"])
    (broken / dev["path"]).unlink()
    reports = prepare_gigaspeech(broken, tmp_path / "m", subsets=["DEV"])
    assert reports["DEV"].skipped["missing audio file"] == [dev["aid"]]
    assert reports["DEV"].num_cuts == 0


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            "AS THEY'RE LEAVING <COMMA> CAN KASH PULL ZAHRA ASIDE <PERIOD>",
            "AS THEY'RE LEAVING   CAN KASH PULL ZAHRA ASIDE  ",
        ),
        ("<MUSIC>", None),
        ("SOMETHING <NOISE> ELSE", None),
        ("WHY <QUESTIONMARK> <EXCLAMATIONPOINT>", "WHY    "),
    ],
)
def test_gigaspeech_text(raw, expected):
    assert gigaspeech_text(raw) == expected


def test_cli(corpus, tmp_path, monkeypatch, capsys):
    argv = [
        "prepare_gigaspeech.py",
        "--corpus-dir",
        str(corpus.root),
        "--output-dir",
        str(tmp_path),
        "--subsets",
        "TEST",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "local" / "prepare_gigaspeech.py"), run_name="__main__")
    assert "TEST: 3 cuts kept" in capsys.readouterr().out
    assert manifest_path(tmp_path, "gigaspeech", "cuts", "TEST").is_file()
