"""Manifest inspection: counts, hours, percentiles, OOV rate, padding, plot, CLI."""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet, SupervisionSegment, SupervisionSet
from lhotse.testing.dummies import dummy_cut

from asrk2.data.manifest_stats import (
    compute_manifest_stats,
    estimate_padding,
    format_stats,
    plot_durations,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    cuts = []
    for i in range(200):
        duration = 1.0 + (i % 10)
        text = ["HELLO WORLD", "HELLO THERE FRIEND", ""][i % 3]
        sup = SupervisionSegment(
            f"s{i}",
            f"dummy-recording-{i:04d}",
            0.0,
            duration,
            text=text,
            speaker=f"spk{i % 7}",
        )
        cuts.append(dummy_cut(i, duration=duration, supervisions=[sup]))
    path = root / "cuts.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(path)
    SupervisionSet.from_segments(c.supervisions[0] for c in cuts).to_file(
        root / "sups.jsonl.gz"
    )
    (root / "lexicon.txt").write_text(
        "HELLO HH AH L OW\nWORLD W ER L D\nTHERE DH EH R\n"
    )
    return path


def test_stats_of_a_cut_manifest(manifest):
    stats = compute_manifest_stats(manifest, lexicon=manifest.parent / "lexicon.txt")
    assert stats.kind == "cuts" and stats.num_items == stats.num_supervisions == 200
    assert stats.total_seconds == pytest.approx(sum(1.0 + i % 10 for i in range(200)))
    pct = stats.percentiles()
    assert pct[0] == 1.0 and pct[100] == 10.0 and pct[50] == pytest.approx(5.5)
    assert len(stats.speakers) == 7
    assert stats.num_empty == 66
    assert stats.words == {"HELLO": 134, "WORLD": 67, "THERE": 67, "FRIEND": 67}
    assert stats.oov == {"FRIEND": 67}
    assert stats.oov_rate == pytest.approx(67 / 335)
    text = format_stats(stats)
    assert (
        "OOV rate: 20.00%" in text and "FRIEND (67)" in text and "speakers: 7" in text
    )


def test_supervision_manifest_and_max_items(manifest):
    stats = compute_manifest_stats(manifest.parent / "sups.jsonl.gz", max_items=50)
    assert stats.kind == "supervisions" and stats.num_items == 50


def test_padding_estimate_and_plot(manifest, tmp_path):
    pad = estimate_padding(manifest, max_duration=60.0, num_buckets=10)
    assert pad.num_cuts == 200 and 0.0 <= pad.ratio < 0.1
    assert estimate_padding(manifest, 60.0, 10, max_cuts=20).num_cuts == 20
    stats = compute_manifest_stats(manifest)
    png = plot_durations(stats, tmp_path / "h.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli(manifest, tmp_path, monkeypatch, capsys):
    argv = [
        "inspect_manifest.py",
        str(manifest),
        "--lexicon",
        str(manifest.parent / "lexicon.txt"),
        "--max-duration",
        "60",
        "--num-buckets",
        "10",
        "--plot",
        str(tmp_path / "d.png"),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "local" / "inspect_manifest.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "items: 200" in out and "padding with max_duration=60 s" in out
    assert (tmp_path / "d.png").is_file()
    assert np.isfinite(compute_manifest_stats(manifest).durations).all()
