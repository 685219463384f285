"""Tests for asrk2.data.synth: speaker splits, planning and a tiny real corpus."""
import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse.kaldi import load_kaldi_data_dir

from asrk2.data import synth
from asrk2.data.synth import (
    SPLITS,
    SynthCorpusConfig,
    make_synth_corpus,
    plan_corpus,
    speaker_splits,
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs apt-get install espeak-ng"
)

TINY = SynthCorpusConfig(seed=3, num_train=4, num_dev=2, num_test=2, num_jobs=2)


def _read_table(path: Path) -> dict:
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


def _tree(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    out_dir = tmp_path_factory.mktemp("synth")
    return out_dir, make_synth_corpus(out_dir, TINY)


def test_speaker_splits_are_disjoint_and_diverse():
    splits = speaker_splits(SynthCorpusConfig())
    ids = {split: {spk for spk, _ in speakers} for split, speakers in splits.items()}
    assert len(ids["train"]) >= 12
    assert not ids["train"] & ids["dev"]
    assert not ids["train"] & ids["test"]
    assert not ids["dev"] & ids["test"]


def test_held_out_voice_variants_are_never_heard_in_training():
    splits = speaker_splits(SynthCorpusConfig(num_train_speakers=200))

    def families(split):
        # iven, iven2, iven3 are versions of one voice; f1..f5 are distinct.
        variants = {voice.split("+")[1] for _, voice in splits[split]}
        return {
            v if v[:1] in "fm" and v[1:].isdigit() else v.rstrip("0123456789").lower()
            for v in variants
        }

    assert len(splits["train"]) == 200
    assert not families("train") & families("test")
    assert not families("train") & families("dev")
    variants = [voice.split("+")[1] for _, voice in splits["test"]]
    assert len(set(variants)) == len(variants)  # one voice per variant


@needs_espeak
def test_every_split_has_female_and_male_voices():
    listing = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[1:]
    # Columns: Pty Language Age/Gender VoiceName File; File is "!v/<variant>".
    gender = {f[4].split("/")[-1]: f[2][-1] for f in map(str.split, listing)}
    for speakers in speaker_splits(SynthCorpusConfig()).values():
        genders = {gender[voice.split("+")[1]] for _, voice in speakers}
        assert genders == {"F", "M"}


def test_plan_is_deterministic_and_kaldi_sorted():
    plan = plan_corpus(TINY)
    assert plan == plan_corpus(dataclasses.replace(TINY, num_jobs=1))
    assert plan != plan_corpus(dataclasses.replace(TINY, seed=4))
    for split in SPLITS:
        utts = plan[split]
        assert len(utts) == getattr(TINY, f"num_{split}")
        assert [u.utt_id for u in utts] == sorted(u.utt_id for u in utts)
        assert [u.speaker for u in utts] == sorted(u.speaker for u in utts)
        for u in utts:
            assert u.utt_id.startswith(u.speaker + "-")
            assert TINY.min_wpm <= u.wpm <= TINY.max_wpm
            assert TINY.min_pitch <= u.pitch <= TINY.max_pitch


def test_growing_a_split_keeps_its_utterances():
    small = plan_corpus(TINY)["train"]
    big = plan_corpus(dataclasses.replace(TINY, num_train=8))["train"]
    assert set(small) <= set(big)


@pytest.mark.parametrize(
    "change",
    [{"num_train": -1}, {"num_dev_speakers": 0}, {"num_jobs": 0},
     {"num_train_speakers": 1000}, {"min_wpm": 200}, {"max_pitch": 100}],
)  # fmt: skip
def test_bad_config_is_rejected(tmp_path, change):
    with pytest.raises(ValueError):
        make_synth_corpus(tmp_path, dataclasses.replace(TINY, **change))


def test_missing_espeak_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "_ESPEAK", "espeak-ng-not-installed")
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        make_synth_corpus(tmp_path, TINY)


@needs_espeak
def test_kaldi_dirs_load_in_lhotse(corpus):
    out_dir, dirs = corpus
    assert set(dirs) == set(SPLITS)
    for split, data_dir in dirs.items():
        recordings, supervisions, _ = load_kaldi_data_dir(data_dir, sampling_rate=16000)
        assert len(recordings) == len(supervisions) == getattr(TINY, f"num_{split}")
        for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
            lines = (data_dir / name).read_text().splitlines()
            assert lines == sorted(lines), name
        for path in _read_table(data_dir / "wav.scp").values():
            assert Path(path).is_absolute()
            assert Path(path).parent.parent == out_dir / "wav"


@needs_espeak
def test_wavs_are_16k_mono_pcm_of_plausible_length(corpus):
    _, dirs = corpus
    for data_dir in dirs.values():
        for path in _read_table(data_dir / "wav.scp").values():
            info = sf.info(path)
            assert info.samplerate == 16000 and info.channels == 1
            assert info.subtype == "PCM_16"
            assert 0.3 <= info.duration <= 10.0, path


@needs_espeak
def test_speakers_are_disjoint_between_splits(corpus):
    _, dirs = corpus
    spk = {s: set(_read_table(d / "utt2spk").values()) for s, d in dirs.items()}
    assert not spk["train"] & spk["test"]
    assert not spk["train"] & spk["dev"]
    assert not spk["dev"] & spk["test"]


@needs_espeak
def test_text_matches_the_synthesised_audio(corpus, tmp_path):
    out_dir, dirs = corpus
    plan = plan_corpus(TINY)
    for split, data_dir in dirs.items():
        assert _read_table(data_dir / "text") == {u.utt_id: u.text for u in plan[split]}
    # Independent check for one utterance: espeak-ng writing a file itself (no
    # resampling, no trimming) must give the same amount of speech.
    utt = plan["test"][0]
    ref = tmp_path / "ref.wav"
    spelled = {"am": "a.m.", "pm": "p.m."}
    spoken = " ".join(spelled.get(w, w) for w in utt.text.lower().split())
    subprocess.run(
        ["espeak-ng", "-v", utt.voice, "-s", str(utt.wpm), "-p", str(utt.pitch),
         "-g", str(utt.word_gap), "-a", str(utt.amplitude), "-m", "-w", str(ref),
         f'<speak><prosody range="{utt.pitch_range}">{spoken}</prosody></speak>'],
        check=True,
    )  # fmt: skip
    ref_audio, ref_rate = sf.read(str(ref))
    loud = np.flatnonzero(np.abs(ref_audio) > 64 / 32768)
    ref_speech = (loud[-1] - loud[0]) / ref_rate
    ours = sf.info(str(out_dir / "wav" / utt.speaker / f"{utt.utt_id}.wav")).duration
    assert ours - 2 * TINY.pad_seconds == pytest.approx(ref_speech, abs=0.02)


@needs_espeak
def test_rerun_is_a_noop_and_other_config_is_refused(corpus, monkeypatch):
    out_dir, dirs = corpus
    before = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*")}
    # A no-op must not even need espeak-ng.
    monkeypatch.setattr(synth, "_ESPEAK", "espeak-ng-not-installed")
    assert make_synth_corpus(out_dir, dataclasses.replace(TINY, num_jobs=1)) == dirs
    assert {p: p.stat().st_mtime_ns for p in out_dir.rglob("*")} == before
    with pytest.raises(ValueError, match="different config"):
        make_synth_corpus(out_dir, dataclasses.replace(TINY, seed=99))


@needs_espeak
def test_output_does_not_depend_on_num_jobs(corpus, tmp_path):
    out_dir, _ = corpus
    make_synth_corpus(tmp_path, dataclasses.replace(TINY, num_jobs=1))
    ours = {p.relative_to(out_dir): b for p, b in _tree(out_dir / "wav").items()}
    serial = {p.relative_to(tmp_path): b for p, b in _tree(tmp_path / "wav").items()}
    assert ours == serial


@needs_espeak
def test_failed_synthesis_names_the_utterance(tmp_path, monkeypatch):
    fake = tmp_path / "fake-espeak"
    real = shutil.which("espeak-ng")
    # Lists voices like the real one, fails on every synthesis.
    fake.write_text(
        f'#!/bin/sh\ncase "$1" in --voices=*) exec {real} "$@";; esac\n'
        'echo "no audio device" >&2\nexit 3\n'
    )
    fake.chmod(0o755)
    monkeypatch.setattr(synth, "_ESPEAK", str(fake))
    config = dataclasses.replace(TINY, num_jobs=1)
    first = plan_corpus(config)["train"][0].utt_id
    with pytest.raises(RuntimeError, match=f"{first}.*exit 3: no audio device"):
        make_synth_corpus(tmp_path / "corpus", config)
    assert not (tmp_path / "corpus" / ".done").exists()
