"""Every recipe config loads strictly and builds a model that runs (WeNet's check)."""

from pathlib import Path

import pytest
import torch

from asrk2.config import load_yaml
from asrk2.experiment import ExperimentConfig, build_model
from asrk2.model.decoder import add_sos_eos
from asrk2.train.variants import load_variants, variant_config

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(ROOT.glob("egs/*/ASR/conf/*.yaml"))


def test_there_are_recipe_configs() -> None:
    assert any(p.name == "demo.yaml" for p in CONFIGS)


def _variants():
    """Each variant of each recipe's conf/variants/*.yaml, on its demo config."""
    for path in sorted(ROOT.glob("egs/*/ASR/conf/variants/*.yaml")):
        base = path.parent.parent / "demo.yaml"
        for variant in load_variants(path):
            yield pytest.param(base, variant, id=f"{path.name}:{variant.name}")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_builds_a_working_model(path: Path) -> None:
    _check_builds(load_yaml(ExperimentConfig, path))


@pytest.mark.parametrize("base, variant", list(_variants()))
def test_every_compare_variant_builds_a_working_model(base: Path, variant) -> None:
    _check_builds(variant_config(base, variant))


def _check_builds(config: ExperimentConfig) -> None:
    torch.manual_seed(0)
    model = build_model(config, config.lang.nbpe)[0].eval()
    assert 1e5 < model.num_params() < 2e8
    num_features = config.model.encoder.num_features
    x, lens = torch.randn(2, 60, num_features), torch.tensor([60, 41])
    with torch.no_grad():
        log_probs, out_lens = model(x, lens)
        assert log_probs.shape == (2, 14, config.lang.nbpe) and out_lens.tolist() == [
            14,
            9,
        ]
        assert torch.isfinite(log_probs).all()
        if config.loss.attention_weight > 0:
            assert model.decoder is not None
            enc, enc_lens = model.encode(x, lens)
            ys_in, _, ys_lens = add_sos_eos([[3, 4], [5]])
            logits = model.decoder(enc, enc_lens, ys_in, ys_lens)
            assert logits.shape == (2, 3, config.lang.nbpe)
            scores = model.attention_scores(enc, enc_lens, [[3, 4], [5]],
                                            config.loss.reverse_weight)  # fmt: skip
            assert torch.isfinite(scores).all()
        else:
            assert model.decoder is None
        assert (model.r2l_decoder is not None) == (config.loss.reverse_weight > 0)
