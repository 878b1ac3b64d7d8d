"""Metrics and plots for a classifier: confusion matrix, per-class errors, most-confused pairs, PNG figures.

The plots need matplotlib (the ``train`` extra); it is imported only inside the plotting
functions, with the non-interactive Agg backend, so the rest of the package never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["confusion_matrix", "per_class_errors", "most_confused", "format_report", "have_matplotlib",
           "plot_curves", "plot_confusion", "plot_samples"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """C[i, j] = number of samples of true class i predicted as j."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def per_class_errors(cm: np.ndarray) -> np.ndarray:
    """Misclassified samples of each true class: row sums minus the diagonal."""
    return cm.sum(axis=1) - np.diag(cm)


def most_confused(cm: np.ndarray, k: int = 5) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal entries as (true, predicted, count), largest first (ties by index)."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:k]
    n = cm.shape[0]
    return [(int(i // n), int(i % n), int(off.flat[i])) for i in flat if off.flat[i] > 0]


def format_report(accuracy: float, loss: float, cm: np.ndarray, classes: Sequence[str], title: str = "test") -> str:
    """Accuracy and loss, the confusion matrix, per-class error counts and the most confused pairs, as text."""
    n = len(classes)
    short = [str(c)[:7] for c in classes]
    w = max(6, max(len(s) for s in short) + 1, len(str(int(cm.max()))) + 1)
    lines = [f"{title}: accuracy {100 * accuracy:.2f}%  loss {loss:.4f}  ({int(cm.sum())} samples)", "",
             "confusion matrix (rows: true, columns: predicted)",
             " " * 8 + "".join(f"{s:>{w}}" for s in short)]
    for i in range(n):
        lines.append(f"{short[i]:>7} " + "".join(f"{int(cm[i, j]):>{w}}" for j in range(n)))
    errors = per_class_errors(cm)
    totals = cm.sum(axis=1)
    lines += ["", "errors per class"]
    for i in range(n):
        rate = errors[i] / totals[i] if totals[i] else 0.0
        lines.append(f"  {classes[i]:>12}: {int(errors[i]):5d} of {int(totals[i]):5d}  ({100 * rate:.1f}%)")
    lines += ["", "most confused pairs (true → predicted)"]
    for t, p, c in most_confused(cm):
        lines.append(f"  {classes[t]} → {classes[p]}: {c}")
    return "\n".join(lines)


# ------------------------------------------------------------------ plots
def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(epochs: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, training vs validation (where there is one), side by side."""
    plt = _pyplot()
    x = [e["epoch"] for e in epochs]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, what in zip(axes, ("loss", "accuracy")):
        ax.plot(x, [e[f"train_{what}"] for e in epochs], label="train")
        val = [e.get(f"val_{what}") for e in epochs]
        if any(v is not None for v in val):
            ax.plot(x, [np.nan if v is None else v for v in val], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.set_title(what)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: str | Path) -> Path:
    """Heatmap of the confusion matrix with the counts written in each cell."""
    plt = _pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(n), [str(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(n), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    half = cm.max() / 2 if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > half else "black")
    ax.set_title("confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_samples(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str],
                 path: str | Path, n: int = 36) -> Path:
    """A grid of the first ``n`` images titled "pred (true)"; mistakes in red with a red frame."""
    plt = _pyplot()
    n = min(n, len(images))
    cols = int(np.ceil(np.sqrt(n))) if n else 1
    rows = max(1, int(np.ceil(n / cols)))
    side = int(round(np.sqrt(images.shape[1]))) if images.ndim == 2 else images.shape[1]
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        ax.imshow(images[k].reshape(side, side), cmap="gray_r")
        wrong = int(y_pred[k]) != int(y_true[k])
        ax.set_title(f"{classes[int(y_pred[k])]} ({classes[int(y_true[k])]})", fontsize=7,
                     color="red" if wrong else "black")
        if wrong:
            for s in ax.spines.values():
                s.set_color("red")
                s.set_linewidth(2)
    fig.suptitle("predicted (true); mistakes in red", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
