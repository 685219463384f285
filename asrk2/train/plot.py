"""Training curves as a PNG."""

import json
from pathlib import Path

from asrk2.utils import atomic_path

__all__ = ["plot_training_curves"]


def plot_training_curves(metrics_path: Path, png_path: Path) -> None:
    """Plots per-epoch train/valid loss and valid WER from ``metrics.jsonl``.

    The WER panel is drawn when the rows have ``valid_wer`` (older runs do not).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line
    ]
    epochs = [r["epoch"] for r in rows]
    with_wer = [r for r in rows if "valid_wer" in r]
    panels = 2 if with_wer else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4))
    ax = axes[0] if with_wer else axes
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        ax.plot(epochs, [r[key] for r in rows], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per frame")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    if with_wer:
        ax = axes[1]
        ax.plot(
            [r["epoch"] for r in with_wer],
            [r["valid_wer"] for r in with_wer],
            marker="o",
            color="C1",
            label="valid WER (greedy CTC)",
        )
        ax.set_xlabel("epoch")
        ax.set_ylabel("WER %")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
