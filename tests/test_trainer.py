"""The training loop on a toy corpus: exact resume, non-finite batches, checkpoints."""

import copy
import json
import logging
import math
from pathlib import Path
from typing import Any, Dict, Literal

import pytest
import torch
from conftest import edit_distance

from asrk2.checkpoint import (
    CorruptCheckpointError,
    latest_checkpoint,
    load_checkpoint,
    step_checkpoints,
)
from asrk2.config import from_dict
from asrk2.experiment import ExperimentConfig, OptimConfig, build_model
from asrk2.losses import LossConfig
from asrk2.model import CtcModel
from asrk2.testing.toy_data import make_toy_corpus
from asrk2.train.average import average_last
from asrk2.train.schedulers import lr_factor
from asrk2.train.trainer import NonFiniteError, train

TINY: Dict[str, Any] = {
    "data": {"max_duration": 10.0, "num_buckets": 2, "spec_augment": {"enabled": True}},
    "model": {
        "encoder": {
            "d_model": 16, "num_heads": 2, "ffn_dim": 32, "num_layers": 1,
            "conv_kernel_size": 5, "dropout": 0.1, "subsampling_channels": 4,
            "dynamic_chunk_training": True, "causal": True,
        },
        "decoder": {"num_layers": 1, "num_heads": 2, "ffn_dim": 32, "dropout": 0.1},
    },
    "loss": {"ctc_weight": 0.7},
    "optim": {"peak_lr": 0.005, "warmup_steps": 3},
    "train": {"num_epochs": 3, "log_interval": 1, "num_threads": 1},
}  # fmt: skip


def make_config(**sections: Dict[str, Any]) -> ExperimentConfig:
    data = copy.deepcopy(TINY)
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(ExperimentConfig, data)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    cuts, lang = make_toy_corpus(
        tmp_path_factory.mktemp("toy"), 10, 40, frames_per_token=8
    )
    return cuts, lang


def read_metrics(exp_dir: Path):
    return [
        json.loads(line)
        for line in (exp_dir / "metrics.jsonl").read_text().splitlines()
    ]


def test_n_steps_resume_n_steps_equals_2n_steps(corpus, tmp_path) -> None:
    """Dropout, SpecAugment and dynamic chunks all draw from the restored RNGs."""
    cuts, lang = corpus
    valid = cuts.subset(first=3)
    whole = train(
        make_config(train={"max_steps": 9}), cuts, valid, lang, tmp_path / "a", "cpu"
    )
    half = train(
        make_config(train={"max_steps": 4}), cuts, valid, lang, tmp_path / "b", "cpu"
    )
    assert half is not None and half.name == "checkpoint-4.pt"
    resumed = train(
        make_config(train={"max_steps": 9}), cuts, valid, lang, tmp_path / "b", "cpu",
        resume=True,
    )  # fmt: skip
    assert whole is not None and resumed is not None
    a, b = load_checkpoint(whole), load_checkpoint(resumed)
    assert a["train_state"]["epoch"] >= 2, "the runs should cross an epoch boundary"
    assert a["train_state"]["step"] == b["train_state"]["step"] == 9
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    drop = ("seconds", "audio_seconds_per_second", "max_rss_mb")
    rows_a, rows_b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows_a] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows_b
    ]


def test_planted_nan_batch_is_skipped_counted_and_logged(
    corpus, tmp_path, caplog
) -> None:
    _, lang = corpus
    cuts, _ = make_toy_corpus(tmp_path, 10, 40, frames_per_token=8, nan_cuts=[3])
    config = make_config(train={"num_epochs": 2})
    with caplog.at_level(logging.WARNING):
        last = train(config, cuts, cuts.subset(first=3), lang, tmp_path / "exp", "cpu")
    rows = read_metrics(tmp_path / "exp")
    assert [r["skipped_batches"] for r in rows] == [1, 2]  # one batch per epoch
    assert math.isfinite(rows[-1]["train_loss"])
    assert all(0.0 <= r["valid_wer"] <= 100.0 for r in rows)  # toy hyps are short
    assert "toy-0003" in caplog.text and "non-finite loss" in caplog.text
    assert last is not None
    state = load_checkpoint(last)
    assert state["train_state"]["bad_batches"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_training_stops_when_batches_keep_failing(corpus, tmp_path) -> None:
    _, lang = corpus
    cuts, _ = make_toy_corpus(tmp_path, num_cuts=6, nbpe=40, nan_cuts=range(6))
    config = make_config(train={"max_consecutive_bad": 3})
    # With global CMVN, features that are all NaN are refused before training.
    with pytest.raises(ValueError, match="global CMVN: no cut with readable"):
        train(config, cuts, cuts, lang, tmp_path / "exp-cmvn", "cpu")
    config.model.encoder.global_cmvn = False
    with pytest.raises(NonFiniteError, match="3 in a row"):
        train(config, cuts, cuts, lang, tmp_path / "exp", "cpu")


def test_non_finite_gradient_skips_the_update(corpus, tmp_path, monkeypatch) -> None:
    cuts, lang = corpus
    real_clip = torch.nn.utils.clip_grad_norm_
    calls = []

    def clip_nan_once(params, max_norm):
        calls.append(1)
        norm = real_clip(params, max_norm)
        return torch.tensor(float("nan")) if len(calls) == 2 else norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_nan_once)
    config = make_config(train={"num_epochs": 1})
    last = train(config, cuts, cuts.subset(first=2), lang, tmp_path / "exp", "cpu")
    assert last is not None
    state = load_checkpoint(last)
    assert state["train_state"]["bad_batches"] == 1
    # The scheduler counts only the updates that happened.
    assert state["scheduler"]["last_epoch"] == state["train_state"]["step"] - 1


def test_step_checkpoints_pruning_and_averaging(corpus, tmp_path) -> None:
    cuts, lang = corpus
    config = make_config(train={"num_epochs": 2, "save_every_n": 2, "keep_last_n": 2})
    exp = tmp_path / "exp"
    last = train(config, cuts, cuts.subset(first=2), lang, exp, "cpu")
    assert last == exp / "epoch-2.pt" == latest_checkpoint(exp)
    steps = [int(p.stem.split("-")[1]) for p in step_checkpoints(exp)]
    assert len(steps) == 2 and steps == sorted(steps) and all(s % 2 == 0 for s in steps)
    out = average_last(exp, avg=2)
    averaged = load_checkpoint(out)
    e1, e2 = load_checkpoint(exp / "epoch-1.pt"), load_checkpoint(exp / "epoch-2.pt")
    for name, value in averaged["model"].items():
        assert torch.allclose(
            value, (e1["model"][name] + e2["model"][name]) / 2, atol=1e-6
        )
    model = CtcModel(from_dict(ExperimentConfig, averaged["config"]).model)
    model.load_state_dict(averaged["model"])
    assert model.decoder is not None
    with pytest.raises(FileNotFoundError, match="need 3"):
        average_last(exp, avg=3)


def test_loss_weights_decide_the_decoder() -> None:
    config = make_config(loss={"ctc_weight": 1.0})
    assert config.loss.attention_weight == 0.0
    model, resolved = build_model(config, 40)
    assert model.decoder is None and resolved.model.decoder.num_layers == 0
    assert config.model.decoder.num_layers > 0  # the input is left as it was
    assert LossConfig(ctc_weight=0.3).attention_weight == pytest.approx(0.7)
    assert LossConfig(ctc_weight=0.5, mmi_weight=0.5).attention_weight == 0.0
    assert (
        LossConfig(ctc_weight=0.2, att_weight=0.5, mmi_weight=0.1).attention_weight
        == 0.5
    )
    with pytest.raises(ValueError, match="num_layers is 0"):
        build_model(make_config(model={"decoder": {"num_layers": 0}}), 40)
    with pytest.raises(ValueError, match="positive sum"):
        LossConfig(ctc_weight=0.0, att_weight=0.0)
    with pytest.raises(ValueError, match="dice"):
        LossConfig(ctc_weight=1.0, dice_weight=0.5)


@pytest.mark.parametrize("kind", ["noam", "cosine", "step"])
def test_schedules_warm_up_then_decay(
    kind: Literal["noam", "cosine", "step"]
) -> None:
    config = OptimConfig(
        warmup_steps=10, scheduler=kind, total_steps=110, min_lr_ratio=0.1,
        step_size=20, step_gamma=0.5,
    )  # fmt: skip
    f = lr_factor(config)
    assert f(1) == pytest.approx(0.1) and f(5) == pytest.approx(0.5) and f(10) == 1.0
    later = [f(s) for s in range(10, 200)]
    assert all(b <= a + 1e-12 for a, b in zip(later, later[1:]))
    expected_end = {"noam": math.sqrt(10 / 199), "cosine": 0.1, "step": 0.5**9}
    assert f(199) == pytest.approx(expected_end[kind])
    if kind == "cosine":
        assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)
    with pytest.raises(ValueError, match="total_steps"):
        OptimConfig(scheduler="cosine", warmup_steps=10, total_steps=5)


def test_validation_wer_equals_ctc_greedy_decoding_with_H(corpus) -> None:
    from asrk2.decode.ctc_decode import build_ctc_topo, ctc_greedy_decode
    from asrk2.lang.bpe import load_bpe
    from asrk2.train.validation import greedy_word_errors

    cuts, lang = corpus
    sp = load_bpe(lang / "bpe.model")
    vocab = sp.get_piece_size()
    torch.manual_seed(0)
    # Peaky random outputs: blanks, repeats and every token occur.
    log_probs = (3 * torch.randn(4, 30, vocab)).log_softmax(-1)
    lens = torch.tensor([30, 25, 12, 1])
    texts = [c.supervisions[0].text for c in list(cuts)[:4]]
    errors, words = greedy_word_errors(sp, log_probs, lens, texts)
    hyps = ctc_greedy_decode(log_probs, lens, build_ctc_topo(vocab - 1))
    expected = sum(
        edit_distance(t.split(), sp.decode(h).split()) for t, h in zip(texts, hyps)
    )
    assert words == sum(len(t.split()) for t in texts)
    assert errors == expected > 0
    # A perfect hypothesis has no error.
    ids = sp.encode(texts[0])
    perfect = torch.full((1, 2 * len(ids) + 1, vocab), -10.0)
    for k, token in enumerate(ids):
        perfect[0, 2 * k + 1, token] = 0.0
    perfect[0, 0::2, 0] = 0.0
    lens = torch.tensor([perfect.size(1)])
    words = len(texts[0].split())
    assert greedy_word_errors(sp, perfect, lens, texts[:1]) == (0, words)


def test_resume_passes_over_a_corrupt_newest_checkpoint(corpus, tmp_path, caplog):
    """A truncated newest checkpoint: named in a warning, the previous one resumed."""
    cuts, lang = corpus
    valid = cuts.subset(first=2)
    exp = tmp_path / "exp"
    config = make_config(train={"max_steps": 4, "save_every_n": 2})
    assert train(config, cuts, valid, lang, exp, "cpu").name == "checkpoint-4.pt"
    newest = exp / "checkpoint-4.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    stale = exp / ".checkpoint-6.pt.k2x9q1ab.pt"  # as a killed save leaves it
    stale.write_bytes(b"partial")
    with pytest.raises(CorruptCheckpointError, match="checkpoint-4.pt cannot be read"):
        load_checkpoint(newest)
    with caplog.at_level(logging.INFO):
        last = train(make_config(train={"max_steps": 6, "save_every_n": 2}), cuts,
                     valid, lang, exp, "cpu", resume=True)  # fmt: skip
    assert f"checkpoint {newest} cannot be read" in caplog.text
    assert f"Resumed from {exp / 'checkpoint-2.pt'}" in caplog.text
    assert load_checkpoint(last)["train_state"]["step"] == 6
    assert not stale.exists()
