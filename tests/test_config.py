import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Literal, Optional, Sequence

import pytest

from asrk2.config import (
    ConfigError,
    add_config_flags,
    config_from_flags,
    from_dict,
    load_yaml,
    save_yaml,
    to_dict,
)


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


# ----- options from defaults, a YAML section and command-line flags -----


@dataclass
class Beams:
    search_beam: float = 20.0
    output_beam: float = 8.0


@dataclass
class Options:
    chunk: int = 16
    beams: Optional[Beams] = None
    scales: List[float] = field(default_factory=lambda: [0.5, 1.0])
    left: Optional[int] = 64


def _parse(argv: List[str], skip: Sequence[str] = ()) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    add_config_flags(parser, Options, skip=skip)
    return parser.parse_args(argv)


def test_flags_override_yaml_which_overrides_the_base(tmp_path):
    yaml_file = tmp_path / "opts.yaml"
    yaml_file.write_text("streaming:\n  chunk: 8\n  left: 32\nother: {x: 1}\n")
    base = Options(beams=Beams(search_beam=30.0, output_beam=9.0))
    args = _parse(["--left", "none", "--output-beam", "4", "--scales", "0.1", "2"])
    opts = config_from_flags(Options, args, base, yaml_file, "streaming")
    # chunk from the file; left and output_beam from the flags; search_beam
    # kept from the base (a partial override of a nested section).
    expected = Options(chunk=8, beams=Beams(30.0, 4.0), scales=[0.1, 2.0], left=None)
    assert opts == expected
    assert config_from_flags(Options, _parse([]), base) == base


def test_a_flag_fills_an_unset_nested_section_with_its_defaults():
    opts = config_from_flags(Options, _parse(["--search-beam", "12"]))
    assert opts.beams == Beams(search_beam=12.0, output_beam=8.0)


@pytest.mark.parametrize(
    "text, argv, message",
    [
        ("streaming: {chunkk: 8}\n", [], "unknown key 'chunkk'"),
        ("streaming: {beams: {beam: 1}}\n", [], "unknown key 'beam'"),
        ("other: {}\n", [], "no 'streaming' section"),
        ("streaming: {}\n", ["--chunk", "eight"], "expected int"),
    ],
)
def test_bad_option_files_and_flags_are_errors(tmp_path, text, argv, message):
    yaml_file = tmp_path / "opts.yaml"
    yaml_file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config_from_flags(Options, _parse(argv), None, yaml_file, "streaming")


def test_skipped_flags_are_left_to_the_script():
    with pytest.raises(SystemExit):
        _parse(["--chunk", "4"], skip=["chunk"])
    assert _parse(["--left", "3"], skip=["chunk"]).__dict__["config:left"] == 3
