"""Side-by-side training runs: one base config, small overrides per variant.

A variant is a name and a list of ``key.path=value`` overrides of the base
YAML config (the same syntax as ``local/train.py --set``). Each variant trains
in its own experiment directory with the same epochs, then decodes the test set
with the methods asked for (default ``ctc-greedy``: the acoustic model alone, no
lexicon or LM). A variant whose ``result.json`` was made from the same base
config, overrides and training manifest and has every method's WER is not run
again; one that lacks a method is only decoded again. So an interrupted
comparison resumes where it stopped (and a half-trained variant resumes from
its checkpoint).

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
from typing import Dict, List, Optional, Sequence, Union

from asrk2.config import load_yaml
from asrk2.decode.methods import GRAPH_METHODS, SWEPT_METHODS
from asrk2.decode.scoring import read_wer_summary
from asrk2.experiment import ExperimentConfig
from asrk2.utils import atomic_write_text

__all__ = [
    "Variant",
    "VariantList",
    "VariantResult",
    "load_variants",
    "methods_for",
    "run_variant",
    "variant_config",
]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Variant:
    """A named set of config overrides.

    Attributes:
      name: the variant (also its experiment directory's name).
      overrides: ``key.path=value`` items, applied in order.
      include: names of :class:`VariantList` groups whose overrides and decode
        arguments come first (e.g. one ``decoder`` group shared by every
        attention variant).
      decode_args: more ``local/decode.py`` options for this variant (e.g.
        ``--reverse-weight=0.3``).
    """

    name: str
    overrides: List[str] = field(default_factory=list)
    include: List[str] = field(default_factory=list)
    decode_args: List[str] = field(default_factory=list)


@dataclass
class VariantList:
    """The variants of one comparison, as loaded from YAML (``conf/variants/*.yaml``).

    Attributes:
      groups: named overrides (and decode arguments) that variants
        ``include`` (a group's own ``include`` is ignored).
      variants: the variants, in the order they run and are reported.
    """

    groups: List[Variant] = field(default_factory=list)
    variants: List[Variant] = field(default_factory=list)

    def __post_init__(self) -> None:
        groups = {g.name for g in self.groups}
        for v in self.variants:
            unknown = [g for g in v.include if g not in groups]
            if unknown:
                raise ValueError(f"variant {v.name!r}: unknown groups {unknown}")
        names = [v.name for v in self.variants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"variant names must be unique: {repeated}")
        bad = [n for n in names if not n or "/" in n or n.startswith(".")]
        if bad:
            raise ValueError(f"variant names must be directory names: {bad}")


@dataclass
class VariantResult:
    """What one variant's run measured.

    Attributes:
      name: the variant.
      overrides: its overrides.
      wer: WER (%) on the test cuts of the first method decoded (its best
        setting, for a method with scales).
      valid_wer: greedy WER (%) on the validation cuts after the last epoch.
      train_loss, valid_loss: per-frame losses of the last epoch.
      steps: optimizer steps taken.
      train_seconds: seconds of the training loop (all epochs).
      fingerprint: identifies the base config, overrides and training data.
      wers: WER (%) per decoding setting (``wer-summary`` keys).
      decode_args: the ``local/decode.py`` options they were decoded with.
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
    wers: Dict[str, float] = field(default_factory=dict)
    decode_args: List[str] = field(default_factory=list)

    def has_methods(self, methods: Sequence[str]) -> bool:
        """Whether every method has a WER (a result made before ``wers``
        existed has only the ctc-greedy one, in ``wer``)."""
        if not self.wers:
            return list(methods) == ["ctc-greedy"]
        return all(any(k.startswith(m) for k in self.wers) for m in methods)


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


def _stored_result(path: Path) -> Optional[VariantResult]:
    """The saved result, or None if there is none or it cannot be read (then
    the variant is decoded, or trained, again)."""
    if not path.is_file():
        return None
    try:
        return VariantResult(**json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        log.warning("%s: unreadable (%s); running the variant again", path, e)
        return None


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
    methods: Sequence[str] = ("ctc-greedy",),
    decode_args: Sequence[str] = (),
    dev_cuts: Optional[Union[str, Path]] = None,
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
      methods: ``local/decode.py`` methods, decoded in one run.
      decode_args: more ``local/decode.py`` options (e.g. ``--beam-size 4``).
      dev_cuts: a dev set. When a method searches HL/HLG, the graph scale
        and word bonus are tuned on it first (``local/tune_graph_weights.py``)
        and the test set is decoded with them, so that each variant (each
        vocabulary, each loss) gets the weights that suit it. When a method
        has several scales, the dev set is decoded too, and the scale is
        chosen on it (:func:`asrk2.train.compare.summarize`).
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
    weights_file = exp_dir / "decode" / "graph-weights-dev.yaml"
    tune = dev_cuts is not None and bool(GRAPH_METHODS & set(methods))
    decode_args = list(decode_args) + (["--config", str(weights_file)] if tune else [])
    stored = _stored_result(result_path)
    if stored is not None:
        if (
            stored.fingerprint == fingerprint
            and stored.has_methods(methods)
            and stored.decode_args == decode_args
        ):
            log.info("Variant %s is up to date (%s)", variant.name, result_path)
            return stored
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
    if not (exp_dir / f"epoch-{num_epochs}.pt").is_file():
        _run(train, recipe, exp_dir / "train.log")
    decode = [
        sys.executable, str(ROOT / "local/decode.py"), "--exp-dir", str(exp_dir),
        "--lang-dir", str(lang_dir), "--cuts", str(test_cuts), "--test-set", "test",
        "--epoch", str(num_epochs), "--avg", "1",
    ]  # fmt: skip
    for method in methods:
        decode += ["--method", method]
    if tune:
        tune_cmd = [
            sys.executable, str(ROOT / "local/tune_graph_weights.py"),
            "--exp-dir", str(exp_dir), "--lang-dir", str(lang_dir),
            "--cuts", str(dev_cuts), "--epoch", str(num_epochs), "--avg", "1",
            "--out", str(weights_file),
        ]  # fmt: skip
        _run(tune_cmd, recipe, exp_dir / "tune.log")
    _run(decode + decode_args, recipe, exp_dir / "decode.log")
    if dev_cuts is not None and SWEPT_METHODS & set(methods):
        on_dev = [a if a != str(test_cuts) else str(dev_cuts) for a in decode]
        on_dev[on_dev.index("--test-set") + 1] = "dev"
        _run(on_dev + decode_args, recipe, exp_dir / "decode-dev.log")
    wers = read_wer_summary(exp_dir / "decode/wer-summary-test.txt")
    # The summary lists settings best first; ``wer`` is the first method's.
    first = [w for k, w in wers.items() if k.startswith(methods[0])]
    if not first:
        raise RuntimeError(f"{exp_dir}: no {methods[0]} WER in the decode summary")
    lines = (exp_dir / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    last = rows[-1]
    result = VariantResult(
        name=variant.name,
        overrides=overrides,
        wer=min(first),
        valid_wer=float(last["valid_wer"]),
        train_loss=float(last["train_loss"]),
        valid_loss=float(last["valid_loss"]),
        steps=int(last["step"]),
        train_seconds=float(sum(r["seconds"] for r in rows)),
        fingerprint=fingerprint,
        wers=wers,
        decode_args=decode_args,
    )
    atomic_write_text(result_path, json.dumps(asdict(result), indent=1) + "\n")
    return result


def load_variants(path: Union[str, Path]) -> List[Variant]:
    """The variants of a YAML file (a :class:`VariantList`), groups expanded.

    Raises:
      ConfigError: an unknown key, a repeated name or an unknown group.
    """
    spec = load_yaml(VariantList, path)
    groups = {g.name: g for g in spec.groups}
    return [
        Variant(
            v.name,
            [o for g in v.include for o in groups[g].overrides] + v.overrides,
            decode_args=[a for g in v.include for a in groups[g].decode_args]
            + v.decode_args,
        )
        for v in spec.variants
    ]


def variant_config(base_config: Union[str, Path], variant: Variant) -> ExperimentConfig:
    """The experiment config a variant trains with (base file + overrides).

    Raises:
      ConfigError: an override names an unknown key or gives a bad value.
    """
    return load_yaml(ExperimentConfig, base_config, variant.overrides)


def methods_for(config: ExperimentConfig) -> List[str]:
    """The decoding methods that fit a model trained with ``config``.

    The CTC output layer is trained by CTC or MMI; only then do the lattice
    methods (and the n-best that attention rescoring rescores) mean anything.
    The attention methods need the decoder, which exists iff the attention
    loss has a weight.
    """
    loss = config.loss
    ctc_head = loss.ctc_weight > 0 or loss.mmi_weight > 0
    methods = ["ctc-greedy", "hlg-1best"] if ctc_head else []
    if loss.attention_weight > 0:
        methods.append("attention-beam-search")
        if ctc_head:
            methods.append("attention-rescoring")
    return methods
