"""local/compare.py on two fabricated experiment dirs: the exact table and a plot."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asrk2.config import save_yaml
from asrk2.experiment import ExperimentConfig
from asrk2.model.ctc_model import CtcModel

ROOT = Path(__file__).resolve().parent.parent


def _tiny(**loss: object) -> ExperimentConfig:
    config = ExperimentConfig()
    config.model.vocab_size = 20
    config.model.encoder.d_model = 16
    config.model.encoder.num_heads = 2
    config.model.encoder.ffn_dim = 16
    config.model.encoder.num_layers = 1
    for key, value in loss.items():
        setattr(config.loss, key, value)
    if config.loss.attention_weight > 0:
        config.model.decoder.num_layers = 1
        config.model.decoder.num_heads = 2
        config.model.decoder.ffn_dim = 16
    return config


def _experiment(root: Path, name: str, config: ExperimentConfig, wers: dict) -> Path:
    exp = root / name
    exp.mkdir()
    save_yaml(config, exp / "config.yaml")
    rows = [
        {"epoch": 1, "train_loss": 2.0, "valid_loss": 1.5, "valid_wer": 80.0,
         "seconds": 60.0, "skipped_batches": 1},
        {"epoch": 2, "train_loss": 1.25, "valid_loss": 1.125, "valid_wer": 50.0,
         "seconds": 90.0, "skipped_batches": 0},
    ]  # fmt: skip
    (exp / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (exp / "decode").mkdir()
    lines = ["settings\tWER"] + [f"{k}\t{v}" for k, v in wers.items()]
    (exp / "decode" / "wer-summary-test.txt").write_text("\n".join(lines) + "\n")
    return exp


def test_compare_prints_the_expected_table(tmp_path: Path):
    ctc = _tiny(ctc_weight=1.0)
    att = _tiny(ctc_weight=0.3, label_smoothing=0.1)
    a = _experiment(tmp_path, "ctc", ctc, {"ctc-greedy": 30.5, "hlg-1best": 7.25})
    b = _experiment(
        tmp_path, "ctc-att", att,
        {"ctc-greedy": 28.0, "attention-rescoring-scale_0.5": 6.5,
         "attention-rescoring-scale_1.0": 6.0,
         "attention-beam-search-ctc_weight_0.3": 9.5},
    )  # fmt: skip
    # ctc's HLG decoding was tuned on dev (local/tune_graph_weights.py's file).
    (a / "decode" / "graph-weights-dev.yaml").write_text(
        "# tuned\ndecode:\n  graph_weights:\n    graph_scale: 0.85\n"
        "    word_bonus: 4.0\nstreaming:\n  graph_weights:\n    graph_scale: 0.85\n"
        "    word_bonus: 4.0\n"
    )
    png = tmp_path / "curves.png"
    run = subprocess.run(
        [sys.executable, str(ROOT / "local" / "compare.py"), str(a), str(b),
         "--out", str(tmp_path / "table.md"), "--plot", str(png),
         "--command", "make compare COMPARE_EPOCHS=2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    params = [CtcModel(c.model).num_params() / 1e6 for c in (ctc, att)]
    assert run.stdout == (
        "| variant | loss | params (M) | train min | epochs | train loss | valid loss"
        " | skipped | graph scale / word bonus | ctc-greedy WER | hlg-1best WER"
        " | joint CTC/attention beam search WER | attention-beam-search WER"
        " | attention-rescoring WER |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| ctc | CTC 1 | {params[0]:.2f} | 2.5 | 2 | 1.250 | 1.125 | 1 | 0.85 / 4"
        " | 30.50 | 7.25 | – | – | – |\n"
        f"| ctc-att | CTC 0.3 + att 0.7 (label smoothing 0.1) | {params[1]:.2f} | 2.5"
        " | 2 | 1.250 | 1.125 | 1 | – | 28.00 | – | 9.50 | – | 6.00 |\n"
    )
    assert params[1] > params[0]  # the attention decoder is counted
    document = (tmp_path / "table.md").read_text()
    assert run.stdout in document
    assert document.startswith("# Comparison of experiments\n\nMade by "
                               "`make compare COMPARE_EPOCHS=2` on ")  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dirs_without_a_finished_epoch_are_listed_with_skip_missing(tmp_path: Path):
    done = _experiment(tmp_path, "ctc", _tiny(), {"ctc-greedy": 30.5})
    failed = tmp_path / "mmi"
    failed.mkdir()
    out = tmp_path / "RESULTS.md"
    cmd = [sys.executable, str(ROOT / "local" / "compare.py"), str(done), str(failed),
           "--out", str(out)]  # fmt: skip
    assert subprocess.run(cmd, capture_output=True).returncode != 0
    assert not out.exists()
    run = subprocess.run(
        cmd + ["--skip-missing"], capture_output=True, text=True, check=True
    )
    assert f"{failed}: no config.yaml" in run.stderr
    assert run.stdout.count("\n") == 3  # header, rule, the one finished row
    assert f"(no finished epoch): `{failed}`" in out.read_text()


def test_a_dir_that_is_not_an_experiment_is_named(tmp_path: Path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "local" / "compare.py"), str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode != 0 and f"{tmp_path}: no config.yaml" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("ctc, att, mmi, expected", [
    (1.0, None, 0.0, "CTC 1"),
    (0.2, 0.0, 0.8, "CTC 0.2 + MMI 0.8 (den scale 1)"),
    (0.0, None, 0.0, "att 1 (label smoothing 0.1)"),
])  # fmt: skip
def test_loss_description(ctc, att, mmi, expected):
    from asrk2.train.compare import loss_description

    config = _tiny(ctc_weight=ctc, att_weight=att, mmi_weight=mmi)
    assert loss_description(config) == expected


RECIPE = ROOT / "egs/synth/ASR"


def test_the_recipe_variants_load_and_each_gets_the_methods_that_fit():
    from asrk2.train.variants import load_variants, methods_for, variant_config

    variants = load_variants(RECIPE / "conf/variants/compare.yaml")
    configs = {v.name: variant_config(RECIPE / "conf/demo.yaml", v) for v in variants}
    assert methods_for(configs["ctc"]) == ["ctc-greedy", "hlg-1best"]
    assert methods_for(configs["att-only"]) == ["attention-beam-search"]
    assert methods_for(configs["ctc-att"]) == [
        "ctc-greedy", "hlg-1best", "attention-beam-search", "attention-rescoring"
    ]  # fmt: skip
    assert methods_for(configs["mmi"]) == ["ctc-greedy", "hlg-1best"]
    # The group's overrides come first, the variant's own after them.
    att = next(v for v in variants if v.name == "ctc-att")
    assert att.overrides[0] == "model.decoder.num_layers=2"
    assert att.overrides[-1] == "loss.label_smoothing=0.0"
    assert configs["ctc-att-r2l"].loss.reverse_weight == 0.3
    assert {c.lang.nbpe for c in configs.values()} == {100, 200, 500}


def test_train_variants_lists_and_rejects_what_it_cannot_run(tmp_path: Path):
    script = [sys.executable, str(ROOT / "local/train_variants.py"),
              "--config", "conf/demo.yaml", "--variants", "conf/variants/compare.yaml",
              "--exp-root", "exp/compare"]  # fmt: skip
    run = subprocess.run(script + ["--list-nbpe"], cwd=RECIPE, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert run.stdout.split() == ["100", "200", "500"]
    only = ["--only", "mmi", "--only", "ctc"]
    run = subprocess.run(script + ["--list-dirs"] + only, cwd=RECIPE,
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert run.stdout.split() == ["exp/compare/ctc", "exp/compare/mmi"]
    run = subprocess.run(script + ["--only", "nope"], cwd=RECIPE, capture_output=True,
                         text=True)  # fmt: skip
    assert run.returncode != 0 and "unknown variants ['nope']" in run.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("variants:\n  - name: x\n    include: [missing]\n")
    run = subprocess.run(script[:4] + ["--variants", str(bad), "--exp-root", "e",
                                       "--list-dirs"],
                         cwd=RECIPE, capture_output=True, text=True)  # fmt: skip
    assert run.returncode != 0 and "unknown groups ['missing']" in run.stderr
    bad.write_text("variants:\n  - name: x\n    overrides: [loss.nope=1]\n")
    run = subprocess.run(script[:4] + ["--variants", str(bad), "--exp-root", "e",
                                       "--list-dirs"],
                         cwd=RECIPE, capture_output=True, text=True)  # fmt: skip
    assert run.returncode != 0 and "unknown key 'nope'" in run.stderr


def test_an_experiment_of_an_older_config_version_still_compares(tmp_path: Path):
    import yaml

    from asrk2.config import to_dict
    from asrk2.train.compare import summarize

    exp = _experiment(tmp_path, "old", _tiny(), {"ctc-greedy": 30.5})
    data = to_dict(_tiny())
    del data["version"]  # version 1 stored LF-MMI options flat in loss
    mmi = data["loss"].pop("mmi")
    data["loss"].update(den_scale=mmi["den_scale"], mmi_output_beam=mmi["output_beam"],
                        mmi_bigram_smoothing=mmi["bigram_smoothing"],
                        mmi_den_pruned=mmi["den_pruned"])  # fmt: skip
    (exp / "config.yaml").write_text(yaml.safe_dump(data))
    assert summarize(exp).wer == {"ctc-greedy": 30.5}


def test_a_scale_is_chosen_on_the_dev_summary_when_there_is_one(tmp_path: Path):
    from asrk2.train.compare import summarize

    test = {"ctc-greedy": 28.0, "attention-rescoring-scale_0.5": 6.5,
            "attention-rescoring-scale_1.0": 6.0}  # fmt: skip
    exp = _experiment(tmp_path, "ctc-att", _tiny(ctc_weight=0.3), test)
    assert summarize(exp).wer["attention-rescoring"] == 6.0  # no dev: test's best
    dev = ["settings\tWER", "attention-rescoring-scale_0.5\t3.0",
           "attention-rescoring-scale_1.0\t4.0", "ctc-greedy\t20.0"]  # fmt: skip
    (exp / "decode" / "wer-summary-dev.txt").write_text("\n".join(dev) + "\n")
    assert summarize(exp).wer == {"ctc-greedy": 28.0, "attention-rescoring": 6.5}
    assert summarize(exp, choose_set=None).wer["attention-rescoring"] == 6.0
