"""Side-by-side training runs: one base config, small overrides per variant.

A variant is a name and a list of ``key.path=value`` overrides of the base
YAML config (the same syntax as ``local/train.py --set``). Each variant trains
in its own experiment directory with the same epochs, then decodes the test set
with ``ctc-greedy`` (the acoustic model alone, no lexicon or LM). A variant
whose ``result.json`` was made from the same base config, overrides and
training manifest is not run again, so an interrupted comparison resumes
where it stopped (and a half-trained variant resumes from its checkpoint).

Training and decoding run as subprocesses of ``local/train.py`` and
``local/decode.py``: exactly the code path of a recipe, one job at a time
(two trainings on 2 cores would halve each other).
"""

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Union

from asrk2.decode.scoring import read_wer_summary
from asrk2.utils import atomic_write_text

__all__ = ["Variant", "VariantResult", "run_variant"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Variant:
    """A named set of config overrides."""

    name: str
    overrides: List[str] = field(default_factory=list)


@dataclass
class VariantResult:
    """What one variant's run measured.

    Attributes:
      name: the variant.
      overrides: its overrides.
      wer: ctc-greedy WER (%) on the test cuts.
      valid_wer: greedy WER (%) on the validation cuts after the last epoch.
      train_loss, valid_loss: per-frame losses of the last epoch.
      steps: optimizer steps taken.
      train_seconds: seconds of the training loop (all epochs).
      fingerprint: identifies the base config, overrides and training data.
    """

    name: str
    overrides: List[str]
    wer: float
    valid_wer: float
    train_loss: float
    valid_loss: float
    steps: int
    train_seconds: float
    fingerprint: str = ""


def _fingerprint(config: Path, overrides: List[str], train_cuts: Path) -> str:
    stat = train_cuts.stat()
    text = "\n".join(
        [config.read_text(), *overrides, str(stat.st_size), str(int(stat.st_mtime))]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run(cmd: List[str], cwd: Path, log_path: Path) -> None:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    with open(log_path, "w") as out:
        proc = subprocess.run(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    if proc.returncode != 0:
        tail = log_path.read_text()[-2000:]
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed; see {log_path}:\n{tail}")


def run_variant(
    variant: Variant,
    recipe: Path,
    config: Path,
    exp_root: Path,
    train_cuts: Union[str, Path],
    valid_cuts: Union[str, Path],
    test_cuts: Union[str, Path],
    lang_dir: Path,
    num_epochs: int,
    extra_overrides: Optional[List[str]] = None,
) -> VariantResult:
    """Trains and scores one variant, or returns its stored result.

    Args:
      variant: name and overrides.
      recipe: the recipe directory (paths in the manifests are relative to it).
      config: base YAML config.
      exp_root: ``<exp_root>/<name>`` is the variant's experiment directory.
      train_cuts, valid_cuts, test_cuts, lang_dir: as for ``local/train.py``
        and ``local/decode.py``, relative to ``recipe`` or absolute.
      num_epochs: the budget, the same for every variant.
      extra_overrides: appended to every variant's (e.g. thread counts).
    Returns:
      The variant's result, also saved as ``<exp_dir>/result.json``.
    """
    exp_dir = Path(exp_root) / variant.name
    overrides = list(variant.overrides) + list(extra_overrides or [])
    overrides.append(f"train.num_epochs={num_epochs}")
    result_path = exp_dir / "result.json"
    recipe = Path(recipe)
    train_path = Path(train_cuts)
    if not train_path.is_absolute():
        train_path = recipe / train_path
    fingerprint = _fingerprint(Path(config), overrides, train_path)
    if result_path.is_file():
        stored = json.loads(result_path.read_text())
        if stored.get("fingerprint") == fingerprint:
            log.info("Variant %s is up to date (%s)", variant.name, result_path)
            return VariantResult(**stored)
    if (exp_dir / "fingerprint").is_file() and (
        (exp_dir / "fingerprint").read_text() != fingerprint
    ):
        # Another config or corpus trained here: start this variant afresh.
        shutil.rmtree(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(exp_dir / "fingerprint", fingerprint)
    log.info("Variant %s: %s", variant.name, " ".join(overrides) or "(base config)")
    train = [
        sys.executable, str(ROOT / "local/train.py"), "--config", str(config),
        "--train-cuts", str(train_cuts), "--valid-cuts", str(valid_cuts),
        "--lang-dir", str(lang_dir), "--exp-dir", str(exp_dir), "--resume",
    ]  # fmt: skip
    for item in overrides:
        train += ["--set", item]
    _run(train, recipe, exp_dir / "train.log")
    decode = [
        sys.executable, str(ROOT / "local/decode.py"), "--exp-dir", str(exp_dir),
        "--lang-dir", str(lang_dir), "--cuts", str(test_cuts), "--test-set", "test",
        "--epoch", str(num_epochs), "--avg", "1", "--method", "ctc-greedy",
    ]  # fmt: skip
    _run(decode, recipe, exp_dir / "decode.log")
    wer = read_wer_summary(exp_dir / "decode/wer-summary-test.txt")["ctc-greedy"]
    lines = (exp_dir / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    last = rows[-1]
    result = VariantResult(
        name=variant.name,
        overrides=overrides,
        wer=wer,
        valid_wer=float(last["valid_wer"]),
        train_loss=float(last["train_loss"]),
        valid_loss=float(last["valid_loss"]),
        steps=int(last["step"]),
        train_seconds=float(sum(r["seconds"] for r in rows)),
        fingerprint=fingerprint,
    )
    atomic_write_text(result_path, json.dumps(asdict(result), indent=1) + "\n")
    return result
