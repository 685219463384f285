"""The GigaSpeech and VoxPopuli recipes run end to end (`make all`) on tiny
corpora in each corpus's native layout, with a tiny model (conf/test.yaml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asrk2.testing.corpus_layouts import (
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


# Model size for the regularisation test: the corpus configs' regularisers
# (global CMVN, SpecAugment and its schedule, dropout) on a model that trains
# in seconds. Step-based settings are scaled from the config's warm-up.
TINY_MODEL = [
    "model.encoder.d_model=64", "model.encoder.num_heads=2",
    "model.encoder.ffn_dim=128",
    "model.encoder.num_layers=2", "model.encoder.conv_kernel_size=7",
    "model.encoder.subsampling_channels=16", "data.max_duration=10.0",
    "data.num_buckets=2", "data.num_workers=0", "train.num_threads=2",
    "train.tensorboard=false", "train.amp=false", "optim.peak_lr=0.005",
]  # fmt: skip
STEPS = 400


def _prior_only_loss(cuts, sp) -> float:
    """Per-frame CTC loss of the best frame-independent output: blank and the
    token unigram, each with its share of frames. A model stuck on the
    all-blank plateau does no better than this."""
    import torch
    import torch.nn.functional as F

    from asrk2.frames import subsampled_lengths

    ids = [sp.encode(c.supervisions[0].text) for c in cuts]
    frames = subsampled_lengths(torch.tensor([c.num_frames for c in cuts]))
    counts = torch.zeros(sp.get_piece_size())
    for seq in ids:
        counts += torch.bincount(torch.tensor(seq), minlength=counts.numel())
    tokens = float(counts.sum())
    total = float(frames.sum())
    probs = counts / total
    probs[0] = 1.0 - tokens / total
    log_probs = probs.clamp(min=1e-10).log()
    lp = log_probs.expand(int(frames.max()), len(ids), -1)
    loss = F.ctc_loss(
        lp, torch.tensor(sum(ids, [])), frames, torch.tensor([len(s) for s in ids]),
        reduction="sum", zero_infinity=True,
    )  # fmt: skip
    return float(loss) / total


@pytest.mark.parametrize("corpus", sorted(RECIPES))
def test_regularised_recipe_leaves_the_blank_plateau(
    corpus: str, tmp_path: Path
) -> None:
    import json

    from lhotse import CutSet

    from asrk2.config import load_yaml
    from asrk2.experiment import ExperimentConfig
    from asrk2.lang.bpe import load_bpe

    make_layout, dirname, _ = RECIPES[corpus]
    layout = LayoutConfig(seed=5, num_train=10, utts_per_recording=4, num_jobs=2)
    corpus_dir = make_layout(tmp_path / dirname, layout).root
    recipe = ROOT / "egs" / corpus / "ASR"
    data = tmp_path / "data"
    config_path = recipe / "conf/conformer_ctc.yaml"
    config = load_yaml(ExperimentConfig, config_path)
    # The settings under test really are on in the corpus config.
    assert config.model.encoder.global_cmvn and config.data.spec_augment.enabled
    assert config.model.encoder.dropout > 0
    scale = 60 / config.optim.warmup_steps  # warm-up of 60 steps here
    spec = config.data.spec_augment
    scaled = [
        "optim.warmup_steps=60",
        f"data.spec_augment.start_step={round(spec.start_step * scale)}",
        f"data.spec_augment.ramp_steps={round(spec.ramp_steps * scale)}",
    ]
    make = ["make", "-C", str(recipe), "fbank", "lang", f"CORPUS_DIR={corpus_dir}",
            f"DATA={data}", "NBPE=40", f"PY={sys.executable}"]  # fmt: skip
    run = subprocess.run(make, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    train_set, dev_set = (("XL", "DEV") if corpus == "gigaspeech" else ("train", "dev"))
    fbank = data / "fbank"
    train_cuts = fbank / f"{corpus}_cuts_{train_set}.jsonl.gz"
    lang = data / "lang_bpe_40"
    exp = tmp_path / "exp"
    cmd = [sys.executable, str(ROOT / "local/train.py"), "--config", str(config_path),
           "--train-cuts", str(train_cuts),
           "--valid-cuts", str(fbank / f"{corpus}_cuts_{dev_set}.jsonl.gz"),
           "--lang-dir", str(lang), "--exp-dir", str(exp), "--device", "cpu",
           "--set", "lang.nbpe=40", "--set", f"train.max_steps={STEPS}",
           "--set", "train.num_epochs=1000"]  # fmt: skip
    for item in TINY_MODEL + scaled:
        cmd += ["--set", item]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=recipe)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = (exp / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    prior = _prior_only_loss(CutSet.from_file(train_cuts), load_bpe(lang / "bpe.model"))
    assert "SpecAugment" in run.stderr and (exp / "global_cmvn.json").is_file()
    # Training loss (SpecAugment and dropout on) over the last epoch, and the
    # validation loss: a model on the plateau stays at the prior's loss (1.6
    # per frame here); this one is at about 0.8 of it after 400 steps.
    last = rows[-1]
    assert last["train_loss"] < 0.9 * prior and last["valid_loss"] < 0.9 * prior, (
        last, prior
    )
