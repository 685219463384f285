"""Bad inputs give one clear error: empty cut manifests, out-of-range --avg."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lhotse import CutSet

from asrk2.checkpoint import load_model, save_checkpoint
from asrk2.config import to_dict
from asrk2.decode.offline import decode_and_score, decode_methods
from asrk2.decode.scoring import compute_wer
from asrk2.experiment import ExperimentConfig, build_model
from asrk2.testing.toy_data import make_toy_corpus

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory) -> Path:
    """Three epochs of a tiny model, with different weights each."""
    exp = tmp_path_factory.mktemp("exp")
    config = ExperimentConfig()
    config.model.encoder.d_model = 16
    config.model.encoder.num_heads = 2
    config.model.encoder.ffn_dim = 16
    config.model.encoder.num_layers = 1
    for epoch in (1, 2, 3):
        torch.manual_seed(epoch)
        model, resolved = build_model(config, 10)
        state = {"model": model.state_dict(), "config": to_dict(resolved)}
        save_checkpoint(exp / f"epoch-{epoch}.pt", state)
    return exp


@pytest.mark.parametrize(
    "avg, match", [(0, ">= 1"), (-3, ">= 1"), (4, "up to epoch 3")]
)
def test_avg_out_of_range_is_an_error(exp_dir, avg, match):
    with pytest.raises(ValueError, match=match):
        load_model(exp_dir, None, avg)
    with pytest.raises(ValueError, match="up to epoch 2"):
        load_model(exp_dir, 2, 3)


def test_avg_in_range_averages_exactly_those_epochs(exp_dir):
    one, _ = load_model(exp_dir, 3, 1)
    two, _ = load_model(exp_dir, 3, 2)
    older, _ = load_model(exp_dir, 2, 1)
    name = "ctc_output.weight"
    expected = (one.state_dict()[name] + older.state_dict()[name]) / 2
    assert torch.allclose(two.state_dict()[name], expected)


@pytest.mark.parametrize(
    "script, args",
    [
        ("decode.py", ["--exp-dir", "x", "--lang-dir", "x", "--cuts"]),
        ("stream_decode.py", ["--exp-dir", "x", "--lang-dir", "x", "--cuts"]),
        ("prepare_lang.py", ["--lang-dir", "x", "--nbpe", "10", "--cuts"]),
        ("make_noise.py", ["--out-dir", "x", "--speech-cuts"]),
    ],
)
def test_empty_cut_manifest_is_named_without_a_traceback(tmp_path, script, args):
    empty = tmp_path / "empty_cuts.jsonl.gz"
    CutSet.from_cuts([]).to_file(empty)
    run = subprocess.run(
        [sys.executable, str(ROOT / "local" / script), *args, str(empty)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode != 0
    assert f"{empty}: the cut manifest holds no cuts" in run.stderr
    assert "Traceback" not in run.stderr


def test_train_names_an_empty_manifest(tmp_path):
    empty = tmp_path / "empty_cuts.jsonl.gz"
    CutSet.from_cuts([]).to_file(empty)
    config = ROOT / "egs/synth/ASR/conf/demo.yaml"
    run = subprocess.run(
        [sys.executable, str(ROOT / "local/train.py"), "--config", str(config),
         "--train-cuts", str(empty), "--valid-cuts", str(empty),
         "--lang-dir", "x", "--exp-dir", str(tmp_path / "exp")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode != 0 and "holds no cuts" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_cut_too_short_for_one_frame_is_decoded_as_empty_not_fatal(tmp_path):
    """A 0.05 s cut among normal ones: empty hypothesis, deletions, the rest decoded."""
    cuts, lang_dir = make_toy_corpus(tmp_path, num_cuts=4, nbpe=40)
    short = cuts[1].truncate(duration=0.05)
    cuts = CutSet.from_cuts([cuts[0], short, cuts[2], cuts[3]])
    config = ExperimentConfig()
    config.model.encoder.d_model = 16
    config.model.encoder.num_heads = 2
    config.model.encoder.ffn_dim = 16
    config.model.encoder.num_layers = 1
    model, config = build_model(config, 40)
    exp = tmp_path / "exp"
    state = {"model": model.state_dict(), "config": to_dict(config)}
    save_checkpoint(exp / "epoch-1.pt", state)
    summary = decode_and_score(*load_model(exp), cuts, lang_dir, tmp_path / "decode")
    recogs = (tmp_path / "decode/recogs-test-ctc-greedy.txt").read_text()
    assert all(f"{cut.id}:" in recogs for cut in cuts)
    results = decode_methods(model.eval(), cuts, lang_dir, config, torch.device("cpu"))
    by_id = {cut_id: (ref, hyp) for cut_id, ref, hyp in results["ctc-greedy"]}
    assert by_id[short.id] == (short.supervisions[0].text.split(), [])
    others = [r for r in results["ctc-greedy"] if r[0] != short.id]
    expected = compute_wer(others)
    expected.dels += len(by_id[short.id][0])
    expected.num_ref_words += len(by_id[short.id][0])
    assert summary["ctc-greedy"] == pytest.approx(expected.wer)


def test_inspect_manifest_names_a_file_that_is_not_a_manifest(tmp_path):
    report = tmp_path / "synth_report_train.json"
    report.write_text('{"num_cuts": 3, "num_seconds": 7.5, "skipped": {}}\n')
    not_cuts = tmp_path / "words.jsonl"
    not_cuts.write_text('{"word": "hello"}\n')
    for path in (report, not_cuts):
        run = subprocess.run(
            [sys.executable, str(ROOT / "local/inspect_manifest.py"), str(path)],
            capture_output=True, text=True, cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode != 0
        assert f"{path} is not a lhotse manifest" in run.stderr
        assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.max_duration=0.0", "data: max_duration must be > 0"),
        ("train.num_epochs=-1", "train: num_epochs must be >= 1"),
        ("data.num_buckets=0", "data: num_buckets must be >= 1"),
    ],
)
def test_train_refuses_out_of_range_settings_before_starting(
    tmp_path, override, message
):
    config = ROOT / "egs/synth/ASR/conf/demo.yaml"
    run = subprocess.run(
        [sys.executable, str(ROOT / "local/train.py"), "--config", str(config),
         "--set", override, "--train-cuts", "x", "--valid-cuts", "x",
         "--lang-dir", "x", "--exp-dir", str(tmp_path / "exp")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode != 0
    assert f"{config}.{message}" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "exp").exists()


def test_manifests_made_in_a_recipe_dir_work_from_any_directory(
    tiny_kaldi_dir, tmp_path, monkeypatch
):
    """Relative wav.scp paths and --output-dir: the manifests still load elsewhere."""
    recipe = tiny_kaldi_dir.parent
    wav_scp = tiny_kaldi_dir / "wav.scp"
    wav_scp.write_text(wav_scp.read_text().replace(f"{recipe}/", ""))  # relative
    for script, args in [
        ("prepare_kaldi.py", ["--data-dir", "data", "--output-dir", "data/manifests",
                              "--prefix", "tiny", "--split", "train"]),
        ("compute_fbank.py", ["--cuts", "data/manifests/tiny_cuts_train.jsonl.gz",
                              "--output-dir", "data/fbank", "--device", "cpu"]),
    ]:  # fmt: skip
        run = subprocess.run([sys.executable, str(ROOT / "local" / script), *args],
                             capture_output=True, text=True, cwd=recipe)  # fmt: skip
        assert run.returncode == 0, run.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cuts = CutSet.from_file(recipe / "data/fbank/tiny_cuts_train.jsonl.gz")
    assert len(cuts) == 3
    for cut in cuts:
        assert cut.load_features().shape == (cut.num_frames, 80)
        assert cut.load_audio().shape == (1, cut.num_samples)
