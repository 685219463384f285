"""The experiment config: versions, migration of old checkpoints, build_model."""

import copy

import pytest
import torch

from asrk2.checkpoint import checkpoint_config, load_model, save_checkpoint
from asrk2.config import ConfigError, to_dict
from asrk2.experiment import (
    CONFIG_VERSION,
    ExperimentConfig,
    build_model,
    experiment_config_from_checkpoint,
)
from asrk2.losses.mmi import MmiOptions


def _version_1(config: ExperimentConfig) -> dict:
    """``config`` as asrk2 before config versions stored it: flat LF-MMI fields."""
    data = to_dict(config)
    del data["version"]
    mmi = data["loss"].pop("mmi")
    data["loss"].update(
        den_scale=mmi["den_scale"],
        mmi_bigram_smoothing=mmi["bigram_smoothing"],
        mmi_output_beam=mmi["output_beam"],
        mmi_den_pruned=mmi["den_pruned"],
    )
    return data


def test_a_version_1_config_is_migrated():
    config = ExperimentConfig()
    config.loss.mmi_weight = 0.5
    config.loss.mmi = MmiOptions(den_scale=0.7, bigram_smoothing=0.1, output_beam=12.0)
    old = _version_1(config)
    assert "mmi" not in old["loss"] and old["loss"]["mmi_output_beam"] == 12.0
    before = copy.deepcopy(old)
    assert experiment_config_from_checkpoint(old) == config
    assert old == before  # the stored mapping is not changed


def test_the_current_version_round_trips():
    config = ExperimentConfig()
    config.decode.search_beam = 13.0
    data = to_dict(config)
    assert data["version"] == CONFIG_VERSION
    assert experiment_config_from_checkpoint(data) == config


def test_a_newer_version_is_a_clear_error():
    data = to_dict(ExperimentConfig())
    data["version"] = CONFIG_VERSION + 1
    with pytest.raises(ConfigError, match="newer than this asrk2 reads"):
        experiment_config_from_checkpoint(data, "exp/epoch-3.pt")


def test_a_renamed_field_names_the_file_and_both_versions():
    data = to_dict(ExperimentConfig())
    data["loss"]["mmi_scale"] = data["loss"]["mmi"].pop("den_scale")
    with pytest.raises(ConfigError) as e:
        experiment_config_from_checkpoint(data, "exp/epoch-3.pt")
    message = str(e.value)
    assert "exp/epoch-3.pt.loss" in message and "mmi_scale" in message
    assert f"version-{CONFIG_VERSION} config" in message


def test_an_old_checkpoint_loads_and_decodes_like_a_new_one(tmp_path):
    config = ExperimentConfig()
    config.model.encoder.d_model = 16
    config.model.encoder.num_heads = 2
    config.model.encoder.ffn_dim = 16
    config.model.encoder.num_layers = 1
    torch.manual_seed(0)
    model, resolved = build_model(config, 12)
    assert config.model.vocab_size != 12 and resolved.model.vocab_size == 12
    state = model.state_dict()
    save_checkpoint(
        tmp_path / "old/epoch-1.pt", {"model": state, "config": _version_1(resolved)}
    )
    save_checkpoint(
        tmp_path / "new/epoch-1.pt", {"model": state, "config": to_dict(resolved)}
    )
    assert checkpoint_config(tmp_path / "old/epoch-1.pt") == resolved
    old, _ = load_model(tmp_path / "old")
    new, _ = load_model(tmp_path / "new")
    x, lens = torch.randn(2, 40, 80), torch.tensor([40, 31])
    with torch.no_grad():
        assert torch.equal(old(x, lens)[0], new(x, lens)[0])
