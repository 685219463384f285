"""The GigaSpeech and VoxPopuli recipes run end to end (`make all`) on tiny
corpora in each corpus's native layout, with a tiny model (conf/test.yaml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asrk2.data.synth_layouts import (
    LayoutConfig,
    make_gigaspeech_layout,
    make_voxpopuli_layout,
)

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None,
        reason="needs espeak-ng and ffmpeg",
    ),
]

# corpus -> (layout builder, name of the corpus dir, the set whose WER is checked)
RECIPES = {
    "gigaspeech": (make_gigaspeech_layout, "GigaSpeech", "TEST"),
    "voxpopuli": (make_voxpopuli_layout, "voxpopuli", "test"),
}


@pytest.mark.parametrize("corpus", sorted(RECIPES))
def test_make_all(corpus: str, tmp_path: Path) -> None:
    make_layout, dirname, test_set = RECIPES[corpus]
    corpus_dir = make_layout(tmp_path / dirname, LayoutConfig(seed=3)).root
    exp = tmp_path / "exp"
    command = [
        "make",
        "-C",
        str(ROOT / "egs" / corpus / "ASR"),
        "all",
        f"CORPUS_DIR={corpus_dir}",
        f"DATA={tmp_path / 'data'}",
        f"EXP={exp}",
        "CONFIG=conf/test.yaml",
        "NBPE=40",
        "NUM_EPOCHS=1",
        "AVG=1",
        "METHODS=ctc-greedy hlg-1best",
        f"DECODE_SETS={test_set}",
        f"PY={sys.executable}",
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = exp / "decode" / f"wer-summary-{test_set}.txt"
    assert summary.is_file() and "hlg-1best" in summary.read_text()
    # Incremental: a second run finds everything up to date.
    again = subprocess.run(command + ["-q"], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
