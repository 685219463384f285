"""Ablation of the demo's training recipe: each regulariser off alone, each
optimisation setting (learning-rate peak, warm-up, schedule, batch size, blank
bias) moved one way.

Every variant is the demo config (``egs/synth/ASR/conf/demo.yaml``) with one
change, trained for the same ``ABLATION_EPOCHS`` epochs on the demo corpus
(so the same number of optimizer steps, give or take speed perturbation's
longer cuts), then decoded with ``ctc-greedy`` on the test set, whose voice
variants are never heard in training. The comparison figure of every row is
the full recipe trained in the same run. Variants live in
``egs/synth/ASR/exp/ablation/<name>`` and are reused while the config and
corpus are unchanged, so a second ``make bench`` retrains nothing.

Also reports the demo's own WER table (``make demo``, all epochs).
"""

import logging
import os
from pathlib import Path
from typing import List

import yaml

from asrk2.decode.scoring import read_wer_summary
from asrk2.train.variants import Variant, run_variant
from bench.common import DEMO_RECIPE, Row, demo_model

log = logging.getLogger(__name__)

ABLATION_EPOCHS = int(os.environ.get("ABLATION_EPOCHS", "3"))
FULL = "full demo recipe"
# Optimizer steps of one demo epoch (6,000 cuts in 30 s batches), for the
# length of the cosine schedule.
STEPS_PER_EPOCH = 640
# The SpecAugment the demo used to have (lhotse's defaults for 10-15 s cuts):
# time warp of 80 frames and 40-frame masks on 1-4 s cuts, from the first step.
OLD_SPEC_AUGMENT = [
    "data.spec_augment.time_warp_factor=80", "data.spec_augment.frames_mask_size=40",
    "data.spec_augment.features_mask_size=27",
    "data.spec_augment.max_frames_mask_fraction=0.15",
    "data.spec_augment.start_step=0", "data.spec_augment.ramp_steps=0",
]  # fmt: skip
NO_AUDIO_AUGMENT = [
    "data.on_the_fly_features=false", "data.augment.speed_factors=[]",
    "data.augment.noise_cuts=''", "data.augment.reverb_prob=0.0",
    "data.augment.volume_prob=0.0",
]  # fmt: skip
VARIANTS = [
    Variant(FULL, []),
    Variant("no global CMVN", ["model.encoder.global_cmvn=false"]),
    Variant("no SpecAugment", ["data.spec_augment.enabled=false"]),
    Variant("no dropout", ["model.encoder.dropout=0.0"]),
    Variant("no audio augmentation (speed, noise, reverb, volume)", NO_AUDIO_AUGMENT),
    Variant("old SpecAugment (warp 80, 2x40 frames, 2x27 bins, from step 0)",
            OLD_SPEC_AUGMENT),
    Variant("old SpecAugment masks, no time warp",
            OLD_SPEC_AUGMENT + ["data.spec_augment.time_warp_factor=0"]),
    # The optimisation settings, each moved one way from the demo's.
    Variant("peak LR 0.0025 (half)", ["optim.peak_lr=0.0025"]),
    Variant("peak LR 0.01 (double)", ["optim.peak_lr=0.01"]),
    Variant("warm-up 150 steps (demo: 500)", ["optim.warmup_steps=150"]),
    Variant("warm-up 1500 steps", ["optim.warmup_steps=1500"]),
    Variant("cosine decay to 0 over the run (demo: noam)",
            ["optim.scheduler=cosine",
             f"optim.total_steps={ABLATION_EPOCHS * STEPS_PER_EPOCH}"]),
    Variant("batches of 60 s of audio (demo: 30 s)", ["data.max_duration=60.0"]),
    Variant("batches of 15 s of audio", ["data.max_duration=15.0"]),
    Variant("blank output bias -3 at init (demo: 0)", ["model.blank_bias_init=-3.0"]),
    Variant("nothing: no CMVN, SpecAugment, dropout or audio augmentation",
            NO_AUDIO_AUGMENT + ["model.encoder.global_cmvn=false",
                                "data.spec_augment.enabled=false",
                                "model.encoder.dropout=0.0"]),
]  # fmt: skip


def _demo_rows() -> List[Row]:
    """The WER table of the trained demo (offline and streaming)."""
    demo = demo_model()
    if demo is None:
        return []
    rows = []
    offline = read_wer_summary(demo.exp_dir / "decode/wer-summary-test.txt")
    streaming_path = demo.exp_dir / "decode/wer-summary-test-streaming.txt"
    streaming = read_wer_summary(streaming_path) if streaming_path.is_file() else {}
    greedy = offline.get("ctc-greedy")
    weights = ""
    tuned = demo.exp_dir / "decode/graph-weights-dev.yaml"
    if tuned.is_file():
        chosen = yaml.safe_load(tuned.read_text())["decode"]["graph_weights"]
        weights = (f"; HLG graph scale {chosen['graph_scale']:g}, word bonus "
                   f"{chosen['word_bonus']:g} (tuned on dev)")  # fmt: skip
    note = (f"make demo: epoch {demo.epoch}, avg {demo.avg}; "
            f"test voice variants unseen in training{weights}")  # fmt: skip
    for key, wer in list(offline.items()) + list(streaming.items()):
        rows.append(Row(f"demo test WER, {key}", wer, "% WER", "ctc-greedy", greedy,
                        note))  # fmt: skip
    return rows


def run(workdir: Path) -> List[Row]:
    """Trains every variant not yet up to date (about 8 minutes each on 2 cores)."""
    demo = demo_model()
    if demo is None:
        raise RuntimeError("the demo corpus and lang dir are missing: run make demo")
    results = {}
    for variant in VARIANTS:
        results[variant.name] = run_variant(
            variant, DEMO_RECIPE, DEMO_RECIPE / "conf/demo.yaml",
            DEMO_RECIPE / "exp/ablation",
            "data/fbank/synth_cuts_train.jsonl.gz",
            "data/fbank/synth_cuts_dev.jsonl.gz",
            "data/fbank/synth_cuts_test.jsonl.gz", demo.lang_dir, ABLATION_EPOCHS,
        )  # fmt: skip
    full = results[FULL]
    rows = []
    for variant in VARIANTS:
        r = results[variant.name]
        note = (
            f"{ABLATION_EPOCHS} epochs, {r.steps} steps, {r.train_seconds:.0f} s; "
            f"train/valid loss {r.train_loss:.3f}/{r.valid_loss:.3f}; "
            f"valid WER {r.valid_wer:.1f}%"
        )
        rows.append(Row(f"ablation, ctc-greedy test WER: {variant.name}", r.wer,
                        "% WER", FULL, full.wer, note))  # fmt: skip
    return rows + _demo_rows()
