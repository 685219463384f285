"""Audio probing and conversion of the formats people bring to 16 kHz wav."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from conftest import write_tone

from asrk2.data.audio import (
    AudioDecodeError,
    convert_audio,
    convert_audio_files,
    probe_audio,
)

ROOT = Path(__file__).resolve().parent.parent
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
CODECS = {
    ".mp3": ["-c:a", "libmp3lame"],
    ".m4a": ["-c:a", "aac"],
    ".ogg": ["-c:a", "libvorbis"],
    ".opus": ["-c:a", "libopus"],
    ".flac": [],
}


def _encode(src: Path, dst: Path) -> Path:
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src)]
    subprocess.run(cmd + CODECS[dst.suffix] + [str(dst)], check=True)
    return dst


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    root = tmp_path_factory.mktemp("audio")
    wav = root / "tone.wav"
    write_tone(wav, 1.5, 440.0, sample_rate=44100)
    (root / "in").mkdir()
    return {suffix: _encode(wav, root / "in" / f"talk{suffix}") for suffix in CODECS}


@needs_ffmpeg
@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_convert_each_format_to_16k_mono_wav(sources, tmp_path, suffix):
    out = convert_audio(sources[suffix], tmp_path / "out.wav")
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert abs(info.duration - 1.5) < 0.06  # encoder padding of lossy codecs


def test_undecodable_file_gives_a_clear_error(tmp_path):
    bad = tmp_path / "broken.m4a"
    bad.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(AudioDecodeError, match="broken.m4a"):
        convert_audio(bad, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()
    assert not list(tmp_path.glob(".out.wav*"))
    with pytest.raises(FileNotFoundError):
        convert_audio(tmp_path / "missing.mp3", tmp_path / "out.wav")


def test_probe_audio(tmp_path):
    good = tmp_path / "a.wav"
    write_tone(good, 0.5, 200.0, sample_rate=8000)
    info, problem = probe_audio(str(good))
    assert (
        problem is None
        and info.sampling_rate == 8000
        and abs(info.duration - 0.5) < 1e-6
    )
    assert probe_audio(str(tmp_path / "nope.wav")) == (None, "missing audio file")
    (tmp_path / "bad.wav").write_bytes(b"RIFF" + bytes(100))
    assert probe_audio(str(tmp_path / "bad.wav")) == (None, "unreadable audio")
    assert probe_audio(f"cat {good} |")[0].sampling_rate == 8000
    assert probe_audio("exit 1 |") == (None, "audio command not found")
    assert probe_audio("false |") == (None, "audio command failed")
    assert probe_audio("feats.ark:123") == (None, "unsupported wav.scp entry")


@needs_ffmpeg
def test_cli_converts_a_tree_and_reports_failures(sources, tmp_path):
    tree = sources[".mp3"].parent
    (tree / "sub").mkdir(exist_ok=True)
    shutil.copy(sources[".ogg"], tree / "sub" / "other.ogg")
    (tree / "sub" / "broken.opus").write_bytes(b"OggS" + bytes(64))
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "local" / "convert_audio.py"),
            "--out-dir",
            str(tmp_path / "o"),
            "--wav-scp",
            str(tmp_path / "wav.scp"),
            "--num-jobs",
            "2",
            str(tree),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1, proc.stderr
    assert "broken.opus" in proc.stdout
    assert (tmp_path / "o" / "sub" / "other.wav").is_file()
    assert len((tmp_path / "wav.scp").read_text().splitlines()) == len(CODECS) + 1
    written, report = convert_audio_files(
        [tree / "sub" / "broken.opus"], tmp_path / "p"
    )
    assert written == [] and report.skipped["undecodable audio"] == [
        str(tree / "sub" / "broken.opus")
    ]
