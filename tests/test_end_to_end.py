"""The whole pipeline on seconds of synthetic speech.

corpus -> fbank -> BPE -> train -> decode.
"""

import ast
import json
import shutil

import pytest
import yaml
from conftest import edit_distance

from asrk2.checkpoint import load_model
from asrk2.config import from_dict
from asrk2.data.kaldi_dir import import_kaldi_dir
from asrk2.data.synth import SynthCorpusConfig, make_synth_corpus
from asrk2.decode.offline import decode_and_score
from asrk2.experiment import ExperimentConfig
from asrk2.features.fbank import FbankConfig, compute_fbank
from asrk2.lang.bpe import train_bpe
from asrk2.train.trainer import train

TINY = {
    "lang": {"nbpe": 40},
    "data": {
        "max_duration": 20.0, "num_buckets": 2, "spec_augment": {"enabled": False}
    },
    "model": {
        "encoder": {
            "d_model": 32,
            "num_heads": 2,
            "ffn_dim": 64,
            "num_layers": 2,
            "conv_kernel_size": 7,
            "dropout": 0.0,
            "subsampling_channels": 8,
        }
    },
    "optim": {"peak_lr": 0.005, "warmup_steps": 5},
    "train": {"num_epochs": 4, "log_interval": 1},
}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_pipeline_learns_and_decodes(tmp_path):
    corpus = make_synth_corpus(
        tmp_path / "corpus",
        SynthCorpusConfig(
            num_train=16,
            num_dev=3,
            num_test=3,
            num_train_speakers=4,
            num_dev_speakers=1,
            num_test_speakers=1,
        ),
    )
    cuts = {}
    for split, data_dir in corpus.items():
        raw = import_kaldi_dir(data_dir, tmp_path / "manifests", split, prefix="synth")
        cuts[split] = compute_fbank(
            raw,
            tmp_path / "fbank" / split,
            tmp_path / "fbank" / f"synth_cuts_{split}.jsonl.gz",
            FbankConfig(device="cpu"),
        )
    lang_dir = tmp_path / "lang"
    train_bpe((c.supervisions[0].text for c in cuts["train"]), lang_dir, vocab_size=40)
    config = from_dict(ExperimentConfig, TINY)
    exp_dir = tmp_path / "exp"
    last = train(config, cuts["train"], cuts["dev"], lang_dir, exp_dir, device="cpu")
    assert last.name == "epoch-4.pt"

    rows = [
        json.loads(line)
        for line in (exp_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["train_loss"] < 0.8 * rows[0]["train_loss"]
    assert rows[-1]["skipped_batches"] == 0
    assert (exp_dir / "training-curves.png").stat().st_size > 0
    saved = yaml.safe_load((exp_dir / "config.yaml").read_text())
    assert saved["model"]["vocab_size"] == 40  # resolved from the BPE model

    summary = decode_and_score(
        *load_model(exp_dir, avg=2), cuts["test"], lang_dir, tmp_path / "decode"
    )
    assert set(summary) == {"ctc-greedy"}
    recogs = (tmp_path / "decode" / "recogs-test-ctc-greedy.txt").read_text()
    assert recogs.count("hyp=") == len(cuts["test"])
    # The WER of the written recognitions, by a plain edit-distance DP (not
    # kaldialign, which the scorer uses).
    refs = [ast.literal_eval(line.split("ref=", 1)[1])
            for line in recogs.splitlines() if "\tref=" in line]  # fmt: skip
    hyps = [ast.literal_eval(line.split("hyp=", 1)[1])
            for line in recogs.splitlines() if "\thyp=" in line]  # fmt: skip
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    expected = 100.0 * errors / sum(len(r) for r in refs)
    assert summary["ctc-greedy"] == pytest.approx(expected, abs=0.01)
    assert (
        (tmp_path / "decode" / "errs-test-ctc-greedy.txt")
        .read_text()
        .startswith("%WER")
    )
