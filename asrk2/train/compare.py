"""Side-by-side comparison of experiment directories: a table and one plot.

Each experiment dir is read as training left it (``config.yaml``,
``metrics.jsonl``) plus the ``wer-summary-<test-set>*.txt`` files that
decoding wrote under ``decode/``. Nothing is recomputed but the parameter
count (the model is built from the resolved config, without weights).

Example::

    rows = [summarize(Path(d)) for d in ("exp/ctc", "exp/ctc-att")]
    print(markdown_table(rows))
    plot_valid_wer(rows, Path("compare.png"))
"""

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

from asrk2.decode.scoring import read_wer_summary
from asrk2.experiment import ExperimentConfig, experiment_config_from_checkpoint
from asrk2.model.ctc_model import CtcModel
from asrk2.utils import atomic_path, machine_info

__all__ = [
    "TABLE_METHODS",
    "ExperimentSummary",
    "summarize",
    "loss_description",
    "markdown_table",
    "plot_valid_wer",
    "results_document",
]

# Decoding methods with a column of their own, matched as key prefixes in this
# order (so the joint CTC/attention search, ``attention-beam-search-ctc_weight_
# 0.3``, has its own column); a method with several scales shows its best.
TABLE_METHODS = (
    "ctc-greedy",
    "hlg-1best",
    "attention-beam-search-ctc",
    "attention-beam-search",
    "attention-rescoring",
)


@dataclass
class ExperimentSummary:
    """What one experiment dir says about itself.

    Attributes:
      name: the dir's name.
      loss: the trained losses and their settings, in words.
      num_params: model parameters.
      train_seconds: training time, summed over epochs.
      epochs: epochs trained.
      train_loss, valid_loss: per frame, at the last epoch.
      skipped_batches: batches skipped for non-finite losses, in all.
      valid_wer: greedy-CTC valid WER per epoch.
      wer: test WER per method (best over its scales).
      graph_weights: ``scale / bonus`` of HLG decoding, as tuned on a dev set
        (``decode/graph-weights-*.yaml``); ``–`` if not tuned.
    """

    name: str
    loss: str
    num_params: int
    train_seconds: float
    epochs: int
    train_loss: float
    valid_loss: float
    skipped_batches: int
    valid_wer: List[float] = field(default_factory=list)
    wer: Dict[str, float] = field(default_factory=dict)
    graph_weights: str = "–"


def _tuned_graph_weights(exp_dir: Path) -> str:
    """``scale / bonus`` from the experiment's tuned graph weights, or ``–``."""
    for path in sorted((exp_dir / "decode").glob("graph-weights-*.yaml")):
        with open(path) as f:
            weights = ((yaml.safe_load(f) or {}).get("decode") or {}).get(
                "graph_weights"
            )
        if weights:
            return f"{weights['graph_scale']:g} / {weights['word_bonus']:g}"
    return "–"


def loss_description(config: ExperimentConfig) -> str:
    """E.g. ``CTC 0.3 + att 0.7 (label smoothing 0.1)`` or ``MMI 0.8 + CTC 0.2``."""
    loss = config.loss
    parts = []
    if loss.ctc_weight > 0:
        ctc = f"CTC {loss.ctc_weight:g}"
        if loss.ctc_focal_gamma > 0:
            ctc += f" (focal gamma {loss.ctc_focal_gamma:g})"
        parts.append(ctc)
    if loss.attention_weight > 0:
        kind = {
            "label_smoothing": f"label smoothing {loss.label_smoothing:g}",
            "focal": f"focal gamma {loss.focal_gamma:g}",
            "sigmoid_focal": f"sigmoid focal gamma {loss.focal_gamma:g}",
        }[loss.att_loss]
        if loss.dice_weight > 0:
            kind += f", dice {loss.dice_weight:g}"
        if loss.reverse_weight > 0:
            kind += f", right-to-left {loss.reverse_weight:g}"
        parts.append(f"att {loss.attention_weight:g} ({kind})")
    if loss.mmi_weight > 0:
        parts.append(f"MMI {loss.mmi_weight:g} (den scale {loss.mmi.den_scale:g})")
    return " + ".join(parts)


def summarize(
    exp_dir: Path, test_set: str = "test", choose_set: Optional[str] = "dev"
) -> ExperimentSummary:
    """Reads one experiment dir.

    A method with several settings (scales) gets the test WER of the setting
    with the lowest WER on ``choose_set`` when the experiment decoded that
    set with all of them (``decode/wer-summary-<choose_set>.txt``), else its
    lowest test WER.

    Raises:
      FileNotFoundError: no ``config.yaml`` or ``metrics.jsonl`` (naming it).
    """
    exp_dir = Path(exp_dir)
    for name in ("config.yaml", "metrics.jsonl"):
        if not (exp_dir / name).is_file():
            raise FileNotFoundError(f"{exp_dir}: no {name} (not a training dir?)")
    # Any config version: an experiment trained by an older asrk2 still compares.
    with open(exp_dir / "config.yaml") as f:
        config = experiment_config_from_checkpoint(
            yaml.safe_load(f) or {}, str(exp_dir / "config.yaml")
        )
    rows = [
        json.loads(line)
        for line in (exp_dir / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    if not rows:
        raise ValueError(f"{exp_dir}/metrics.jsonl: no epoch finished yet")
    settings: Dict[str, Dict[str, float]] = {}
    for path in sorted((exp_dir / "decode").glob(f"wer-summary-{test_set}*.txt")):
        for key, value in read_wer_summary(path).items():
            method = next((m for m in TABLE_METHODS if key.startswith(m)), key)
            settings.setdefault(method, {})[key] = value
    dev_path = exp_dir / "decode" / f"wer-summary-{choose_set}.txt"
    dev = read_wer_summary(dev_path) if choose_set and dev_path.is_file() else {}
    wer: Dict[str, float] = {}
    for method, values in settings.items():
        # The setting best on the dev set when it has them all, else on test.
        rank = dev if all(k in dev for k in values) else values
        wer[method] = values[min(sorted(values), key=lambda k: rank[k])]
    return ExperimentSummary(
        name=exp_dir.name,
        loss=loss_description(config),
        num_params=CtcModel(config.model).num_params(),
        train_seconds=sum(r.get("seconds", 0.0) for r in rows),
        epochs=rows[-1]["epoch"],
        train_loss=rows[-1]["train_loss"],
        valid_loss=rows[-1]["valid_loss"],
        skipped_batches=sum(r.get("skipped_batches", 0) for r in rows),
        valid_wer=[r["valid_wer"] for r in rows if "valid_wer" in r],
        wer=wer,
        graph_weights=_tuned_graph_weights(exp_dir),
    )


# Column headers where the method name alone would not say it.
COLUMN_NAMES = {"attention-beam-search-ctc": "joint CTC/attention beam search"}


def _cell(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown_table(rows: Sequence[ExperimentSummary]) -> str:
    """One line per experiment: loss, size, time, final losses, test WERs."""
    columns = " | ".join(f"{COLUMN_NAMES.get(m, m)} WER" for m in TABLE_METHODS)
    header = (
        "| variant | loss | params (M) | train min | epochs | train loss | "
        f"valid loss | skipped | graph scale / word bonus | {columns} |"
    )
    lines = [header, "|" + "---|" * (9 + len(TABLE_METHODS))]
    for r in rows:
        cells = [
            r.name,
            r.loss,
            f"{r.num_params / 1e6:.2f}",
            f"{r.train_seconds / 60:.1f}",
            str(r.epochs),
            f"{r.train_loss:.3f}",
            f"{r.valid_loss:.3f}",
            str(r.skipped_batches),
            r.graph_weights,
        ] + [_cell(r.wer.get(m)) for m in TABLE_METHODS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_document(
    rows: Sequence[ExperimentSummary],
    command: str,
    missing: Sequence[str] = (),
    test_set: str = "test",
) -> str:
    """A RESULTS.md: what made it and on which machine, the table, the gaps.

    Args:
      rows: one summary per experiment, in table order.
      command: the command that made the runs (shown verbatim).
      missing: experiment dirs with no finished epoch (listed, not tabled).
      test_set: the decoded set the WER columns are of.
    """
    lines = [
        "# Comparison of experiments",
        "",
        f"Made by `{command}` on {machine_info()}, {date.today().isoformat()}.",
        "",
        f"WER columns: % on the `{test_set}` set; a method with several scales "
        "shows the one best on the dev set (where decoded; else the one best "
        "on this set). Graph scale / word bonus: the "
        "weights of HLG decoding, tuned per experiment on the dev set "
        "(`local/tune_graph_weights.py`); they apply to hlg-1best and to the "
        "n-best of attention rescoring. Train/valid loss: per frame, "
        "last epoch, of each experiment's own loss (not comparable across "
        "losses). Skipped: batches with a non-finite loss. `–`: the method "
        "does not fit the model or was not run. The plot's valid WER is greedy "
        "CTC: a model trained without CTC (attention only) shows 100% there.",
        "",
        markdown_table(rows).rstrip("\n"),
        "",
    ]
    if missing:
        lines += ["Not trained yet or failed (no finished epoch): "
                  + ", ".join(f"`{m}`" for m in missing), ""]  # fmt: skip
    return "\n".join(lines)


def plot_valid_wer(rows: Sequence[ExperimentSummary], png_path: Path) -> None:
    """Every experiment's valid WER per epoch, overlaid, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        epochs = list(range(1, len(r.valid_wer) + 1))
        ax.plot(epochs, r.valid_wer, marker="o", label=r.name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("valid WER % (greedy CTC)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
