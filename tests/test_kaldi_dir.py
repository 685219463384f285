from lhotse import CutSet

from asrk2.data.kaldi_dir import import_kaldi_dir, manifest_path


def test_import_normalises_and_writes_manifests(tiny_kaldi_dir, tmp_path):
    out = tmp_path / "manifests"
    cuts = import_kaldi_dir(tiny_kaldi_dir, out, "train", prefix="tiny")
    texts = {c.id: c.supervisions[0].text for c in cuts}
    assert texts == {
        "spk1-u1": "TURN ON THE LIGHTS",
        "spk1-u2": "WHAT TIME IS IT",
        "spk1-u3": "CALL MOM AT FIVE",
    }
    for kind in ("recordings", "supervisions", "cuts"):
        assert manifest_path(out, "tiny", kind, "train").is_file()
    reloaded = CutSet.from_file(manifest_path(out, "tiny", "cuts", "train"))
    assert sorted(reloaded.ids) == sorted(texts)
    assert all(abs(c.duration - c.recording.duration) < 1e-6 for c in reloaded)


def test_missing_audio_and_empty_transcripts_are_skipped(
    tiny_kaldi_dir, tmp_path, caplog
):
    (tiny_kaldi_dir.parent / "wav" / "spk1-u2.wav").unlink()
    text = tiny_kaldi_dir / "text"
    text.write_text(text.read_text().replace("call mom at five", "?!"))
    with caplog.at_level("INFO"):
        cuts = import_kaldi_dir(tiny_kaldi_dir, tmp_path / "m", "train", prefix="tiny")
    assert list(cuts.ids) == ["spk1-u1"]
    log = caplog.text
    assert "missing audio file: spk1-u2" in log and "empty transcript: spk1-u3" in log
