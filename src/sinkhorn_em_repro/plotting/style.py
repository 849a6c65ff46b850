"""One visual style for every figure: method colours, labels and figure helpers."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")  # headless: figures are files, never windows
import matplotlib.pyplot as plt

from sinkhorn_em_repro.outputs import Table
from sinkhorn_em_repro.pipeline import atomic_output, read_table

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "METHOD_ORDER",
    "apply_style",
    "load_table",
    "method_color",
    "save_figure",
]

#: Canonical method keys used in every table: vEM (EM, weights fixed), oEM (EM
#: re-estimating weights), sEM (Sinkhorn-EM). Extra baselines get their own key.
METHOD_ORDER = ["vEM", "oEM", "sEM", "sklearn"]
METHOD_LABELS = {
    "vEM": "EM (known weights)",
    "oEM": "EM (estimated weights)",
    "sEM": "Sinkhorn-EM",
    "sklearn": "scikit-learn GMM",
}
# Colour-blind-safe (Okabe-Ito).
METHOD_COLORS = {
    "vEM": "#0072B2",
    "oEM": "#E69F00",
    "sEM": "#D55E00",
    "sklearn": "#009E73",
}
LOSS_COLORS = {"nll": METHOD_COLORS["vEM"], "eot": METHOD_COLORS["sEM"]}
LOSS_LABELS = {"nll": "negative log-likelihood", "eot": "EOT loss"}


def method_color(method: str) -> str:
    """Colour of a method key; unknown keys get a neutral grey."""
    return METHOD_COLORS.get(method, "#666666")


def apply_style() -> None:
    """Set the shared rcParams (call once before drawing)."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 200,
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "pdf.fonttype": 42,
            # Reproducible PDFs: no creation date in the file.
            "svg.hashsalt": "sinkhorn-em",
        }
    )


def save_figure(fig, pdf_path: str | Path, png_path: str | Path | None = None) -> None:
    """Save ``fig`` as PDF (and PNG next to it, or at ``png_path``) and close it."""
    pdf_path = Path(pdf_path)
    png = Path(png_path) if png_path is not None else pdf_path.with_suffix(".png")
    with atomic_output(pdf_path) as partial:
        fig.savefig(partial, bbox_inches="tight", metadata={"CreationDate": None})
    with atomic_output(png) as partial:
        fig.savefig(partial, bbox_inches="tight")
    plt.close(fig)


def load_table(table: pd.DataFrame | str | os.PathLike, declared: Table) -> pd.DataFrame:
    """The table to plot: a DataFrame as given, or the CSV at a path read with ``declared``'s column types."""
    return table if isinstance(table, pd.DataFrame) else read_table(table, declared)
