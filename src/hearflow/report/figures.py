"""Figures of the report (matplotlib, PNG + PDF) and the plot data behind them (CSV).

- scores by category: each config's primary-metric test scores normalised per task and
  grouped into speech / music / general, as the PaSST paper (seeds/002, Figure 8) does;
- ablation deltas: per task, variant minus base of each ablation pair of the paper;
- t-SNE of fusion scene embeddings coloured by task (the paper's Figure 2);
- layer-wise probe curves: score per hidden layer of each SSL model.

Normalisation: the PaSST paper divides by the best score of the official HEAR 2021
challenge per task. That leaderboard is not in this repository; the best score the GURA
paper prints for a task (reports/paper/tables.csv, over all methods and Tables 2-6: PaSST,
PANNs, Wav2CLIP, BYOL-S, EfficientNet-B2 and the GURA models) stands in for it. Tasks the
paper does not print are left out of that figure (named in its caption). A suite without
any published task (demo) is normalised by the best of its own configs per task.

    rows = normalised_scores(metrics, facts, paper, configs)
    plot_scores_by_category(rows, "reports/figures/scores_by_category", caption=...)

The t-SNE and layer-curve figures live in hearflow.report.figures_embeddings and the helpers every
figure shares in hearflow.report.figures_common; both are re-exported here. Heavy imports
(matplotlib, sklearn) are inside the functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hearflow.core.io import read_json, write_text
from hearflow.report.figures_common import (
    CATEGORY_COLORS,
    CATEGORY_ORDER,
    pyplot,
    save_figure,
    stand_in_suffix,
    write_csv,
)
from hearflow.report.figures_embeddings import (
    clip_embeddings,
    plot_layer_curves,
    plot_tsne,
    read_layer_scores,
    tsne_points,
    write_layer_figure,
    write_tsne_figure,
)
from hearflow.report.metrics import LOWER_IS_BETTER, higher_is_better, to_paper_units

__all__ = [
    "CATEGORY_COLORS",
    "CATEGORY_ORDER",
    "ablation_deltas",
    "clip_embeddings",
    "normalised_scores",
    "paper_best",
    "plot_ablation_deltas",
    "plot_layer_curves",
    "plot_scores_by_category",
    "plot_tsne",
    "read_layer_scores",
    "save_figure",
    "tsne_points",
    "write_ablation_figure",
    "write_csv",
    "write_layer_figure",
    "write_scores_figure",
    "write_tsne_figure",
]

# ------------------------------------------------------------------------------ scores by category


def paper_best(paper: dict, task: str, metric: str) -> float | None:
    """The best value the paper prints for (task, metric), over every table and method (paper units)."""
    values = [v for (_, _, t, m), v in paper.items() if t == task and m == metric]
    if not values:
        return None
    return min(values) if metric in LOWER_IS_BETTER else max(values)


def _normalise(value: float, reference: float, metric: str) -> float:
    """Share of the reference score: 1 = as good as the best (inverted for lower-is-better)."""
    if metric in LOWER_IS_BETTER:
        return reference / value if value > 0 else float("inf")
    return value / reference


def normalised_scores(
    metrics: dict, facts: dict[str, dict], paper: dict, configs: list[str]
) -> tuple[list[dict], str, list[str]]:
    """Rows {config, task, category, metric, score, reference, normalised} (scores in paper units).

    Returns (rows, reference kind "paper" | "ours", tasks left out for lack of a reference).
    """
    tasks = [t for t in facts if any(t in metrics.get(c, {}) for c in configs)]
    primary = {t: facts[t]["evaluation"][0] for t in tasks}
    published = {t: paper_best(paper, t, primary[t]) for t in tasks}
    kind = "paper" if any(v is not None for v in published.values()) else "ours"
    rows, left_out = [], []
    for task in tasks:
        metric = primary[task]
        scores = {c: to_paper_units(metric, metrics.get(c, {}).get(task, {}).get(metric)) for c in configs}
        if kind == "paper":
            reference = published[task]
        else:
            valid = [v for v in scores.values() if v is not None]
            reference = (min(valid) if metric in LOWER_IS_BETTER else max(valid)) if valid else None
        if reference is None or reference == 0:
            left_out.append(task)
            continue
        for cfg, score in scores.items():
            if score is None:
                continue
            rows.append(
                {
                    "config": cfg,
                    "task": task,
                    "category": facts[task]["category"],
                    "metric": metric,
                    "score": score,
                    "reference": reference,
                    "normalised": _normalise(score, reference, metric),
                }
            )
    return rows, kind, left_out


def plot_scores_by_category(rows: list[dict], stem: Path, *, configs: list[str], title: str) -> list[Path]:
    """Per config, one box per category of the normalised scores, every task as a dot."""
    plt = pyplot()
    categories = [c for c in CATEGORY_ORDER if any(r["category"] == c for r in rows)]
    width = 0.8 / max(1, len(categories))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(configs) + 2), 4.2))
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    for k, cat in enumerate(categories):
        offset = (k - (len(categories) - 1) / 2) * width
        for i, cfg in enumerate(configs):
            vals = [r["normalised"] for r in rows if r["config"] == cfg and r["category"] == cat]
            if not vals:
                continue
            ax.boxplot(
                [vals],
                positions=[i + offset],
                widths=width * 0.85,
                patch_artist=True,
                showfliers=False,
                boxprops={"facecolor": CATEGORY_COLORS[cat], "alpha": 0.35},
                medianprops={"color": "k"},
            )
            ax.scatter(
                i + offset + rng.uniform(-width / 5, width / 5, len(vals)),
                vals,
                s=10,
                color=CATEGORY_COLORS[cat],
                zorder=3,
                label=cat if i == 0 else None,
            )
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(configs)), configs, rotation=35, ha="right")
    ax.set_ylabel("normalised test score")
    ax.set_title(title, fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    by_label = dict(zip(labels, handles))
    ax.legend(
        by_label.values(), by_label.keys(), title="category", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8
    )
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, stem)


# ------------------------------------------------------------------------------ ablation deltas


def ablation_deltas(
    metrics: dict, facts: dict[str, dict], paper: dict, pairs: list[list[str]], scores: dict | None = None
) -> list[dict]:
    """Rows {pair, base, variant, task, category, metric, ours, paper, low, high, significant}:
    variant minus base of the primary metric in paper units, sign flipped for lower-is-better
    (positive = variant better). `paper` is the same difference in the paper's table that prints
    both methods (else None). With `scores` ({(config, task): scores.json}) the paired 95%
    interval of the difference (hearflow.report.intervals.paired_interval), same units and sign."""
    from hearflow.report.intervals import paired_interval

    rows = []
    for base, variant in pairs:
        if base not in metrics or variant not in metrics:
            continue
        for task in facts:
            if task not in metrics[base] or task not in metrics[variant]:
                continue
            metric = facts[task]["evaluation"][0]
            sign = 1 if higher_is_better(metric) else -1
            a = to_paper_units(metric, metrics[base][task].get(metric))
            b = to_paper_units(metric, metrics[variant][task].get(metric))
            ours = None if a is None or b is None else sign * (b - a)
            published = None
            for table in sorted({k[0] for k in paper}):
                pa, pb = paper.get((table, base, task, metric)), paper.get((table, variant, task, metric))
                if pa is not None and pb is not None:
                    published = sign * (pb - pa)
                    break
            low = high = significant = None
            if scores and (base, task) in scores and (variant, task) in scores:
                diff = paired_interval(scores[base, task], scores[variant, task], metric)
                if diff is not None and diff["low"] is not None:
                    ends = sorted(sign * to_paper_units(metric, diff[k]) for k in ("low", "high"))
                    low, high, significant = ends[0], ends[1], diff["significant"]
            rows.append(
                {
                    "pair": f"{variant} − {base}",
                    "base": base,
                    "variant": variant,
                    "task": task,
                    "category": facts[task]["category"],
                    "metric": metric,
                    "ours": ours,
                    "paper": published,
                    "low": low,
                    "high": high,
                    "significant": significant,
                }
            )
    return rows


def plot_ablation_deltas(rows: list[dict], stem: Path, *, title: str) -> list[Path]:
    """One panel per ablation pair: a bar per task (coloured by category); the paper's delta as a marker."""
    plt = pyplot()
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    fig, axes = plt.subplots(
        len(pairs),
        1,
        figsize=(max(6.0, 0.35 * len({r["task"] for r in rows}) + 3), 2.0 * len(pairs) + 0.8),
        squeeze=False,
        sharex=True,
    )
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    for ax, pair in zip(axes[:, 0], pairs):
        sel = {r["task"]: r for r in rows if r["pair"] == pair}
        x = np.arange(len(tasks))
        ours = [sel[t]["ours"] if t in sel and sel[t]["ours"] is not None else np.nan for t in tasks]
        colors = [CATEGORY_COLORS[sel[t]["category"]] if t in sel else "grey" for t in tasks]
        ax.bar(x, ours, color=colors, alpha=0.8)
        low = np.array([sel[t]["low"] if t in sel and sel[t].get("low") is not None else np.nan for t in tasks])
        high = np.array([sel[t]["high"] if t in sel and sel[t].get("high") is not None else np.nan for t in tasks])
        if np.isfinite(low).any():
            mid = np.asarray(ours, dtype=float)
            err = np.clip(np.nan_to_num(np.vstack([mid - low, high - mid])), 0, None)  # rounding: never below 0
            ax.errorbar(x, mid, yerr=err, fmt="none", ecolor="k", elinewidth=0.8, capsize=2)
            for i, t in enumerate(tasks):
                if t in sel and sel[t].get("significant"):
                    ax.annotate("*", (x[i], high[i]), ha="center", va="bottom", fontsize=9)
        published = [sel[t]["paper"] if t in sel and sel[t]["paper"] is not None else np.nan for t in tasks]
        if np.isfinite(published).any():
            ax.scatter(x, published, marker="_", s=200, color="k", zorder=3, label="paper")
            ax.legend(loc="upper right", fontsize=7)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(pair, fontsize=8, loc="left")
        ax.set_ylabel("Δ points")
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xticks(range(len(tasks)), tasks, rotation=40, ha="right", fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=CATEGORY_COLORS[c]) for c in CATEGORY_ORDER]
    fig.legend(handles, CATEGORY_ORDER, loc="upper right", ncol=3, fontsize=7, title="category", title_fontsize=7)
    fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return save_figure(fig, stem)


# ------------------------------------------------------------------------------ jobs (one per figure rule)


def write_scores_figure(
    metrics_file: Path,
    paper_file: Path,
    stem: Path,
    data: Path,
    caption_file: Path,
    *,
    configs: list[str],
    facts: dict,
    suite: str,
    stand_in: bool = False,
) -> str:
    from hearflow.report.tables import read_paper_values

    metrics = read_json(metrics_file)
    rows, kind, left_out = normalised_scores(metrics, facts, read_paper_values(paper_file), configs)
    if kind == "paper":
        caption = (
            "Primary-metric test scores normalised per task by the best score the paper prints for it "
            "(any method of its Tables 2-6; stands in for the best HEAR 2021 challenge score), grouped by "
            "category as in the PaSST paper (boxes over tasks, one dot per task)."
        )
    else:
        caption = (
            "Primary-metric test scores normalised per task by the best of this run's configs (no published "
            f"HEAR 2021 reference exists for the {suite} tasks), grouped by category (boxes over tasks, one "
            "dot per task)."
        )
    if left_out:
        caption += f" Left out for lack of a reference: {', '.join(left_out)}."
    caption += stand_in_suffix(stand_in)
    plot_scores_by_category(
        rows,
        stem,
        configs=[c for c in configs if any(r["config"] == c for r in rows)],
        title=f"Normalised scores by category ({suite} suite)",
    )
    write_csv(data, ["config", "task", "category", "metric", "score", "reference", "normalised"], rows)
    write_text(caption_file, caption + "\n")
    return caption


def write_ablation_figure(
    metrics_file: Path,
    paper_file: Path,
    stem: Path,
    data: Path,
    caption_file: Path,
    *,
    pairs: list[list[str]],
    facts: dict,
    suite: str,
    stand_in: bool = False,
    score_files: list[Path] = (),
) -> str:
    from hearflow.report.tables import read_paper_values

    paper = read_paper_values(paper_file)
    scores = {(Path(p).parent.parent.name, Path(p).parent.name): read_json(p) for p in score_files}
    rows = ablation_deltas(read_json(metrics_file), facts, paper, pairs, scores)
    caption = (
        "Ablations of the paper: per task, the primary-metric test score of the variant minus the base "
        "config, in points (%; d' as is), sign flipped where lower is better, so bars above zero mean "
        "the variant helps."
    )
    if any(r["low"] is not None for r in rows):
        caption += (
            " Whiskers: the 95% interval of the paired difference (same probe seeds, same bootstrap "
            "resamples of the test clips); * where it excludes zero."
        )
    if any(r["paper"] is not None for r in rows):
        caption += " Black ticks: the same difference in the paper's Tables 3-6."
    caption += stand_in_suffix(stand_in)
    plot_ablation_deltas(rows, stem, title=f"Ablation deltas per task ({suite} suite)")
    write_csv(
        data,
        ["pair", "base", "variant", "task", "category", "metric", "ours", "paper", "low", "high", "significant"],
        rows,
    )
    write_text(caption_file, caption + "\n")
    return caption
