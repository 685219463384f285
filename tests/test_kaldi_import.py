"""Kaldi dir import: bad input skipped and counted, odd rates resampled, pipes."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from conftest import write_kaldi_dir, write_tone
from lhotse import CutSet

from asrk2.data.kaldi_dir import import_kaldi_dir, manifest_path, read_kaldi_table
from asrk2.data.manifests import report_path

UTTS = {
    "spk1-a": "turn on the lights",
    "spk1-b": "what time is it",
    "spk1-c": "call mom at five",
    "spk1-d": "open the garage door",
}


@pytest.fixture
def kdir(tmp_path):
    return write_kaldi_dir(tmp_path, UTTS)


def _set_text(data_dir, utt, text):
    table = read_kaldi_table(data_dir / "text")
    table[utt] = text
    (data_dir / "text").write_text(
        "".join(f"{k} {v}\n".replace(" \n", "\n") for k, v in table.items())
    )


def _report(out, split="train"):
    return json.loads(report_path(out, "t", split).read_text())


def test_each_bad_input_is_skipped_and_counted_with_its_id(kdir, tmp_path, caplog):
    wav = kdir.parent / "wav"
    (wav / "spk1-a.wav").unlink()  # missing file
    (wav / "spk1-b.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)  # corrupt file
    _set_text(kdir, "spk1-c", "   ")  # whitespace-only transcript
    _set_text(kdir, "spk1-d", "open the гараж door")  # unknown characters
    with pytest.raises(ValueError, match="no usable utterance") as error:
        import_kaldi_dir(kdir, tmp_path / "m", "train", prefix="t")
    for reason in (
        "missing audio file: spk1-a",
        "unreadable audio: spk1-b",
        "empty transcript: spk1-c",
        "unknown characters: spk1-d",
    ):
        assert reason in str(error.value)
    # Nothing half-written after the failure.
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").iterdir())


def test_report_lists_ids_per_reason(kdir, tmp_path, caplog):
    wav = kdir.parent / "wav"
    (wav / "spk1-a.wav").unlink()
    (wav / "spk1-b.wav").write_bytes(b"not audio at all" * 100)
    _set_text(kdir, "spk1-c", "")
    with caplog.at_level("INFO"):
        cuts = import_kaldi_dir(kdir, tmp_path / "m", "train", prefix="t")
    assert list(cuts.ids) == ["spk1-d"]
    skipped = _report(tmp_path / "m")["skipped"]
    assert skipped["missing audio file"] == {"count": 1, "ids": ["spk1-a"]}
    assert skipped["unreadable audio"] == {"count": 1, "ids": ["spk1-b"]}
    assert skipped["empty transcript"] == {"count": 1, "ids": ["spk1-c"]}
    assert "unreadable audio: spk1-b" in caplog.text


def test_unknown_characters_are_skipped_but_accents_fold(kdir, tmp_path):
    _set_text(kdir, "spk1-a", "Café au lait, naïve!")
    _set_text(kdir, "spk1-b", "Ελλάδα")
    cuts = import_kaldi_dir(kdir, tmp_path / "m", "train", prefix="t")
    texts = {c.id: c.supervisions[0].text for c in cuts}
    assert texts["spk1-a"] == "CAFE AU LAIT NAIVE"
    assert "spk1-b" not in texts
    assert _report(tmp_path / "m")["skipped"]["unknown characters"]["ids"] == ["spk1-b"]


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_sampling_rates_are_resampled(kdir, tmp_path, rate):
    write_tone(kdir.parent / "wav" / "spk1-a.wav", 1.25, 300.0, sample_rate=rate)
    cuts = import_kaldi_dir(kdir, tmp_path / "m", "train", prefix="t")
    cut = cuts["spk1-a"]
    assert cut.sampling_rate == 16000
    audio = cut.load_audio()
    assert audio.shape == (1, 20000)
    assert abs(cut.duration - 1.25) < 1e-3
    fixed = _report(tmp_path / "m")["fixed"]
    assert fixed[f"resampled {rate} -> 16000 Hz"]["ids"] == ["spk1-a"]


def test_segments_pipes_and_reco2dur(tmp_path):
    """A long recording with segments, read through a sox pipe and with reco2dur."""
    if shutil.which("sox") is None:
        pytest.skip("needs sox")
    long_wav = tmp_path / "long.wav"
    write_tone(long_wav, 6.0, 250.0)
    data = tmp_path / "data"
    data.mkdir()
    missing = tmp_path / "missing.wav"
    (data / "wav.scp").write_text(
        f"rec1 sox {long_wav} -t wav - |\nrec2 {long_wav}\nrec3 {missing}\n"
    )
    (data / "segments").write_text(
        "rec1-s1 rec1 0.5 2.0\nrec1-s2 rec1 2.5 4.25\n"
        "rec2-s1 rec2 1.0 5.5\nrec2-s2 rec2 5.0 9.0\nrec3-s1 rec3 0 1\n"
    )
    (data / "text").write_text(
        "rec1-s1 hello there\nrec1-s2 general kenobi\n"
        "rec2-s1 a long one\nrec2-s2 past the end\nrec3-s1 lost\n"
    )
    (data / "utt2spk").write_text(
        "rec1-s1 A\nrec1-s2 A\nrec2-s1 B\nrec2-s2 B\nrec3-s1 C\n"
    )
    for reco2dur in (False, True):
        if reco2dur:
            (data / "reco2dur").write_text("rec1 6.0\nrec2 6.0\nrec3 1.0\n")
        out = tmp_path / f"m{reco2dur}"
        cuts = import_kaldi_dir(data, out, "train", prefix="t", num_jobs=2)
        assert sorted(cuts.ids) == ["rec1-s1", "rec1-s2", "rec2-s1"]
        piped = cuts["rec1-s2"]
        assert piped.recording.sources[0].type == "command"
        assert abs(piped.duration - 1.75) < 1e-6
        direct = cuts["rec2-s1"].load_audio()
        assert direct.shape == (1, 72000)
        np.testing.assert_allclose(
            piped.load_audio()[0], sf.read(long_wav)[0][40000:68000], atol=1e-4
        )
        assert cuts["rec1-s1"].supervisions[0].speaker == "A"
        skipped = _report(out)["skipped"]
        assert skipped["segment outside audio"]["ids"] == ["rec2-s2"]
        assert skipped["missing audio file"]["ids"] == ["rec3"]
        assert skipped["segment of a skipped recording"]["ids"] == ["rec3-s1"]


def test_failing_pipe_and_missing_program_are_counted(kdir, tmp_path):
    wav = read_kaldi_table(kdir / "wav.scp")
    wav["spk1-a"] = "false |"
    wav["spk1-b"] = "no-such-program-xyz foo |"
    (kdir / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in wav.items()))
    cuts = import_kaldi_dir(kdir, tmp_path / "m", "train", prefix="t")
    assert sorted(cuts.ids) == ["spk1-c", "spk1-d"]
    skipped = _report(tmp_path / "m")["skipped"]
    assert skipped["audio command failed"]["ids"] == ["spk1-a"]
    assert skipped["audio command not found"]["ids"] == ["spk1-b"]


def test_missing_speaker_defaults_to_utterance_and_files_are_atomic(kdir, tmp_path):
    (kdir / "utt2spk").write_text("spk1-a spk1\n")
    out = tmp_path / "m"
    cuts = import_kaldi_dir(kdir, out, "train", prefix="t")
    assert cuts["spk1-b"].supervisions[0].speaker == "spk1-b"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    reloaded = CutSet.from_file(manifest_path(out, "t", "cuts", "train"))
    assert len(reloaded) == 4


def _run(script, *args, cwd=None):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, str(root / "local" / script), *map(str, args)],
        capture_output=True, text=True, cwd=cwd,
    )  # fmt: skip


def test_stereo_wav_is_imported_with_its_channels_and_gets_channel_0_fbank(
    kdir, tmp_path
):
    """A stereo copy of a mono wav: both import, and their fbank is identical."""
    wav = kdir.parent / "wav"
    mono, rate = sf.read(wav / "spk1-a.wav", dtype="int16")
    stereo = np.stack([mono, mono // 2], axis=1)  # channel 1 differs
    sf.write(wav / "spk1-b.wav", stereo, rate, subtype="PCM_16")
    _set_text(kdir, "spk1-b", UTTS["spk1-a"])
    out = tmp_path / "m"
    result = _run("prepare_kaldi.py", "--data-dir", kdir, "--output-dir", out,
                  "--prefix", "t", "--split", "train")  # fmt: skip
    assert result.returncode == 0, result.stderr
    cuts = CutSet.from_file(manifest_path(out, "t", "cuts", "train")).to_eager()
    assert cuts["spk1-b"].recording.num_channels == 2
    assert cuts["spk1-b"].load_audio().shape == cuts["spk1-a"].load_audio().shape
    fixed = _report(out)["fixed"]
    assert fixed["2-channel audio: channel 0 used"]["ids"] == ["spk1-b"]
    cuts_path = manifest_path(out, "t", "cuts", "train")
    result = _run("compute_fbank.py", "--cuts", cuts_path, "--output-dir",
                  tmp_path / "f", "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    feats = CutSet.from_file(tmp_path / "f" / "t_cuts_train.jsonl.gz").to_eager()
    assert sorted(feats.ids) == sorted(UTTS)
    np.testing.assert_array_equal(
        feats["spk1-b"].load_features(), feats["spk1-a"].load_features()
    )
    report = json.loads((tmp_path / "f" / "t_cuts_train_fbank_report.json").read_text())
    assert report["num_cuts"] == 4 and report["skipped"] == {}


def test_truncated_wav_is_skipped_at_import(kdir, tmp_path):
    path = kdir.parent / "wav" / "spk1-c.wav"
    data = path.read_bytes()
    path.write_bytes(data[: 44 + (len(data) - 44) // 2])  # header says twice this
    cuts = import_kaldi_dir(kdir, tmp_path / "m", "train", prefix="t")
    assert sorted(cuts.ids) == ["spk1-a", "spk1-b", "spk1-d"]
    assert _report(tmp_path / "m")["skipped"]["truncated audio"]["ids"] == ["spk1-c"]


def test_pipes_not_run_because_of_reco2dur_are_reported_as_unchecked(kdir, tmp_path):
    wav = read_kaldi_table(kdir / "wav.scp")
    wav["spk1-a"] = "false |"
    wav["spk1-b"] = f"cat {wav['spk1-b']} |"
    (kdir / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in wav.items()))
    (kdir / "reco2dur").write_text(
        "spk1-a 1.0\nspk1-b 1.1\nspk1-c 1.4\nspk1-d 1.7\n"
    )
    out = tmp_path / "m"
    cuts = import_kaldi_dir(kdir, out, "train", prefix="t")
    assert sorted(cuts.ids) == sorted(UTTS)  # the failing pipe is not run here
    unchecked = _report(out)["unchecked"]["pipe not run: duration from reco2dur"]
    assert unchecked == {"count": 2, "ids": ["spk1-a", "spk1-b"]}
    # The fbank stage runs it, fails, and reports it beside its output.
    cuts_path = manifest_path(out, "t", "cuts", "train")
    result = _run("compute_fbank.py", "--cuts", cuts_path, "--output-dir",
                  tmp_path / "f", "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    feats = CutSet.from_file(tmp_path / "f" / "t_cuts_train.jsonl.gz").to_eager()
    assert sorted(feats.ids) == ["spk1-b", "spk1-c", "spk1-d"]
    report = json.loads((tmp_path / "f" / "t_cuts_train_fbank_report.json").read_text())
    assert report["num_cuts"] == 3
    assert report["skipped"]["undecodable audio"] == {"count": 1, "ids": ["spk1-a"]}


def test_non_numeric_segment_times_and_durations_are_counted_with_their_line(
    kdir, tmp_path, caplog
):
    wav = read_kaldi_table(kdir / "wav.scp")
    (kdir / "segments").write_text(
        "spk1-a spk1-a 0 0.5\nspk1-b spk1-b abc 0.5\nspk1-c spk1-c 0.1 x\n"
        "spk1-d spk1-d 0 1.0\n"
    )
    (kdir / "reco2dur").write_text(
        "".join(f"{k} {'abc' if k == 'spk1-d' else sf.info(v).duration}\n"
                for k, v in wav.items())
    )  # fmt: skip
    with caplog.at_level("WARNING"):
        cuts = import_kaldi_dir(kdir, tmp_path / "m", "train", prefix="t")
    assert sorted(cuts.ids) == ["spk1-a", "spk1-d"]
    assert abs(cuts["spk1-d"].duration - 1.0) < 1e-6
    report = _report(tmp_path / "m")
    assert report["skipped"]["bad segments line"]["ids"] == ["spk1-b", "spk1-c"]
    assert report["fixed"]["bad reco2dur value; duration probed"]["ids"] == ["spk1-d"]
    assert f"{kdir / 'segments'}:2: bad segments line" in caplog.text
    assert f"{kdir / 'reco2dur'}:4: bad duration 'abc'" in caplog.text
