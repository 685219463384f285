from dataclasses import dataclass, field
from typing import List, Literal, Optional

import pytest

from asrk2.config import ConfigError, from_dict, load_yaml, save_yaml, to_dict


@dataclass
class Inner:
    size: int = 4
    rate: float = 0.5
    kind: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    sizes: List[int] = field(default_factory=lambda: [1, 2])
    maybe: Optional[int] = None


def test_from_dict_fills_defaults_and_converts_int_to_float():
    cfg = from_dict(Outer, {"inner": {"rate": 1}})
    assert cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.inner.size == 4 and cfg.sizes == [1, 2] and cfg.maybe is None


@pytest.mark.parametrize(
    "data, message",
    [
        ({"nmae": "y"}, "unknown key"),
        ({"inner": {"szie": 3}}, "config.inner: unknown key"),
        ({"inner": {"size": "3"}}, "expected int"),
        ({"inner": {"kind": "c"}}, "not one of"),
        ({"sizes": 3}, "expected a list"),
        ({"inner": {"size": True}}, "expected int"),
    ],
)
def test_from_dict_rejects_bad_input(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_yaml_round_trip_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\ninner:\n  size: 8\n")
    cfg = load_yaml(Outer, path, ["inner.rate=0.25", "maybe=3"])
    assert (cfg.name, cfg.inner.size, cfg.inner.rate, cfg.maybe) == ("demo", 8, 0.25, 3)
    save_yaml(cfg, tmp_path / "out.yaml")
    assert to_dict(load_yaml(Outer, tmp_path / "out.yaml")) == to_dict(cfg)


@pytest.mark.parametrize("override", ["inner.nope=1", "nosection.size=1", "size"])
def test_bad_overrides_are_errors(tmp_path, override):
    path = tmp_path / "c.yaml"
    path.write_text("{}\n")
    with pytest.raises(ConfigError):
        load_yaml(Outer, path, [override])
