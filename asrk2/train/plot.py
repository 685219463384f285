"""Training curves as a PNG."""

import json
from pathlib import Path

from asrk2.utils import atomic_path

__all__ = ["plot_training_curves"]


def plot_training_curves(metrics_path: Path, png_path: Path) -> None:
    """Plots per-epoch train/valid loss from the trainer's ``metrics.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line
    ]
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("train_loss", "train"), ("valid_loss", "valid")):
        ax.plot(epochs, [r[key] for r in rows], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per frame")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
