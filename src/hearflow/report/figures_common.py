"""What every figure of the report shares (hearflow.report.figures, hearflow.report.figures_embeddings):
the category colours, a headless pyplot, byte-stable PNG/PDF output and the plot-data CSVs.

Heavy imports (matplotlib) are inside the functions.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from hearflow.core.io import atomic_path, write_text

CATEGORY_ORDER = ("speech", "music", "general")
CATEGORY_COLORS = {"speech": "#1f77b4", "music": "#ff7f0e", "general": "#2ca02c"}


def pyplot():
    """matplotlib.pyplot on the headless Agg backend, with the report's sizes and resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "font.size": 9})
    return plt


def save_figure(fig, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.pdf atomically, without timestamps (same data, same bytes)."""
    stem = Path(stem)
    outs = []
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Creator": None, "Producer": None})):
        out = stem.with_suffix(f".{ext}")
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=ext, metadata=meta, bbox_inches="tight")
        outs.append(out)
    pyplot().close(fig)
    return outs


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row[k]) for k in columns})
    write_text(path, out.getvalue())


def _csv_value(v):
    if isinstance(v, float):
        return "" if not np.isfinite(v) else f"{v:.6g}"
    return "" if v is None else v


def stand_in_suffix(stand_in: bool) -> str:
    """The caption's warning when the figure's numbers come from untrained stand-in models."""
    return " Untrained stand-in models: these numbers test the pipeline, not the paper." if stand_in else ""
