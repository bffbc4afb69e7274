"""Plots written next to a run's outputs: one histogram per numeric score column, kept vs dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    """`matplotlib.pyplot` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_score_plots(scores: dict[str, np.ndarray], directory: Path, *, keep: np.ndarray | None = None) -> list[str]:
    """Write `hist_<column>.png` for every numeric (float or integer) score column; returns the file names.

    Booleans and text are skipped; a column needs at least two finite values.
    """
    plt = pyplot()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(scores):
        values = np.asarray(scores[name])
        if values.dtype.kind not in "fiu":
            continue
        values = values.astype(np.float64)
        finite = np.isfinite(values)
        if finite.sum() < 2:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        bins = np.histogram_bin_edges(values[finite], bins=50)
        if keep is not None:
            ax.hist(values[finite & keep], bins=bins, alpha=0.7, label="kept")
            ax.hist(values[finite & ~keep], bins=bins, alpha=0.7, label="dropped")
            ax.legend()
        else:
            ax.hist(values[finite], bins=bins)
        ax.set_xlabel(name)
        ax.set_ylabel("rows")
        ax.set_title(f"{name} (n={int(finite.sum())})")
        fig.tight_layout()
        path = directory / f"hist_{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path.name)
    return written
