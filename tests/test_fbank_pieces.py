"""Fbank at scale: lazy input, pieces shared by jobs, resume, speed perturbation."""

import runpy
import sys
from pathlib import Path

import pytest
from conftest import write_kaldi_dir
from lhotse import CutSet

from asrk2.data.kaldi_dir import import_kaldi_dir, manifest_path
from asrk2.data.report import ImportReport
from asrk2.features.fbank import FbankConfig, compute_fbank, fbank_report_path
from asrk2.features.split import compute_fbank_pieces, split_cuts

ROOT = Path(__file__).resolve().parent.parent
CPU = FbankConfig(device="cpu", num_workers=0)


@pytest.fixture(scope="module")
def cuts_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("pieces")
    utts = {f"spk-u{i}": "hello world" for i in range(7)}
    import_kaldi_dir(write_kaldi_dir(root, utts), root / "m", "train", prefix="t")
    return manifest_path(root / "m", "t", "cuts", "train")


def test_pieces_resume_and_combine(cuts_path, tmp_path, caplog):
    out = tmp_path / "fbank"
    # Two jobs share the pieces; the first does not combine.
    assert (
        compute_fbank_pieces(cuts_path, out, CPU, chunk_size=3, start=0, stop=1) is None
    )
    split_dir = out / "t_cuts_train_split"
    assert [p.name for p in sorted(split_dir.glob("cuts.*"))] == [
        "cuts.000000.jsonl.gz",
        "cuts.000001.jsonl.gz",
        "cuts.000002.jsonl.gz",
    ]
    first = split_dir / "fbank.000000.jsonl.gz"
    stamp = first.stat().st_mtime_ns
    combined = compute_fbank_pieces(cuts_path, out, CPU, chunk_size=3, start=0)
    assert first.stat().st_mtime_ns == stamp  # finished pieces are not redone
    assert combined == out / "t_cuts_train.jsonl.gz"
    feats = CutSet.from_file(combined)
    assert sorted(feats.ids) == sorted(CutSet.from_file(cuts_path).ids)
    assert all(c.load_features().shape == (c.num_frames, 80) for c in feats)


def test_split_reuses_an_existing_split(cuts_path, tmp_path):
    first = split_cuts(cuts_path, tmp_path / "s", 4)
    again = split_cuts(cuts_path, tmp_path / "s", 2)
    assert first == again and len(first) == 2


def test_lazy_input_speed_perturbation_and_undecodable_audio(
    cuts_path, tmp_path, caplog
):
    cuts = CutSet.from_file(cuts_path).to_eager()
    broken = Path(cuts["spk-u3"].recording.sources[0].source)
    original = broken.read_bytes()
    broken.write_bytes(
        original[:44] + b"\x00" * 10
    )  # header says more samples than there are
    try:
        out = compute_fbank(
            CutSet.from_jsonl_lazy(cuts_path),
            tmp_path / "f",
            tmp_path / "f.jsonl.gz",
            FbankConfig(device="cpu", num_workers=0, speed_perturb=True),
        )
    finally:
        broken.write_bytes(original)
    assert out.is_lazy
    ids = set(out.ids)
    assert {"spk-u0", "spk-u0_sp0.9", "spk-u0_sp1.1"} <= ids
    assert not {i for i in ids if i.startswith("spk-u3")}
    assert "3 skipped (undecodable audio: spk-u3, spk-u3_sp0.9, spk-u3_sp1.1)" in (
        caplog.text
    )
    report = ImportReport.read(fbank_report_path(tmp_path / "f.jsonl.gz"))
    assert report.skipped == {
        "undecodable audio": ["spk-u3", "spk-u3_sp0.9", "spk-u3_sp1.1"]
    }
    fast, slow = out.to_eager()["spk-u0_sp1.1"], out.to_eager()["spk-u0_sp0.9"]
    assert fast.num_frames < slow.num_frames


def test_cli_with_pieces(cuts_path, tmp_path, monkeypatch):
    argv = [
        "compute_fbank.py",
        "--cuts",
        str(cuts_path),
        "--output-dir",
        str(tmp_path),
        "--device",
        "cpu",
        "--chunk-size",
        "4",
        "--num-workers",
        "0",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "local" / "compute_fbank.py"), run_name="__main__")
    assert len(CutSet.from_file(tmp_path / "t_cuts_train.jsonl.gz")) == 7
