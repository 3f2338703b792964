"""Figures of the SSL models' hidden-layer embeddings (matplotlib, PNG + PDF) and their plot
data (CSV), split from hearflow.report.figures, which re-exports them:

- t-SNE of fusion scene embeddings coloured by task (the paper's Figure 2);
- layer-wise probe curves: score per hidden layer of each SSL model.

Heavy imports (matplotlib, sklearn) are inside the functions.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from hearflow.core.io import read_json, write_text
from hearflow.report.figures_common import pyplot, save_figure, stand_in_suffix, write_csv
from hearflow.report.metrics import RAW_SCALE, to_paper_units

# ------------------------------------------------------------------------------ t-SNE


def _split_names(view: Path) -> list[str]:
    return sorted(p.name.removesuffix(".embedding-dimensions.json") for p in view.glob("*.embedding-dimensions.json"))


def clip_embeddings(view: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    """[<=n, D] clip-level embeddings drawn from every split of a heareval embedding dir.

    Scene dirs hold one row per clip; event dirs one row per timestamp, averaged per clip
    (the scene embedding this project uses: the mean over time). Reads only the rows drawn.
    """
    clips = []  # (memmap, rows of one clip)
    for split in _split_names(view):
        shape = tuple(read_json(view / f"{split}.embedding-dimensions.json"))
        mm = np.memmap(view / f"{split}.embeddings.npy", dtype=np.float32, mode="r", shape=shape)
        stamps = view / f"{split}.filename-timestamps.json"
        if stamps.exists():
            files = [f for f, _ in read_json(stamps)]
            starts = [0] + [i for i in range(1, len(files)) if files[i] != files[i - 1]] + [len(files)]
            clips += [(mm, slice(a, b)) for a, b in zip(starts[:-1], starts[1:])]
        else:
            clips += [(mm, slice(i, i + 1)) for i in range(shape[0])]
    if not clips:
        raise ValueError(f"{view}: no embeddings (*.embedding-dimensions.json) found")
    chosen = np.sort(rng.choice(len(clips), size=min(n, len(clips)), replace=False))
    return np.stack([np.asarray(clips[i][0][clips[i][1]], dtype=np.float64).mean(axis=0) for i in chosen])


def tsne_points(
    views: dict[str, Path], *, points_per_task: int, perplexity: float, seed: int, threads: int = 1
) -> list[dict]:
    """t-SNE of one model's clip embeddings over tasks ({task: embedding dir}): rows {task, x, y}.

    The same clips are drawn for every model (the draw depends on seed and task only);
    features are z-scored over the pooled clips; perplexity is capped at (n - 1) / 3.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    blocks, labels = [], []
    for task, view in views.items():
        rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
        x = clip_embeddings(Path(view), points_per_task, rng)
        blocks.append(x)
        labels += [task] * len(x)
    x = np.concatenate(blocks)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, max(1.0, (len(x) - 1) / 3)),
        init="pca",
        learning_rate="auto",
        random_state=seed,
    )
    with threadpool_limits(limits=threads):  # its OpenMP loops oversubscribe a busy machine otherwise
        xy = tsne.fit_transform(x)
    return [{"task": t, "x": float(a), "y": float(b)} for t, (a, b) in zip(labels, xy)]


def plot_tsne(points: dict[str, list[dict]], stem: Path, *, title: str) -> list[Path]:
    """One panel per model ({model: rows}), dots coloured by task."""
    plt = pyplot()
    tasks = list(dict.fromkeys(r["task"] for rows in points.values() for r in rows))
    cmap = plt.get_cmap("tab20")
    colors = {t: cmap(i % 20) for i, t in enumerate(tasks)}
    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points) + 1.5, 4.2), squeeze=False)
    for ax, (model, rows) in zip(axes[0], points.items()):
        for task in tasks:
            sel = [r for r in rows if r["task"] == task]
            ax.scatter([r["x"] for r in sel], [r["y"] for r in sel], s=5, color=colors[task], label=task)
        ax.set_title(f"{model} fusion", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", ls="", color=colors[t]) for t in tasks]
    fig.legend(handles, tasks, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, markerscale=1.5)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, stem)


# ------------------------------------------------------------------------------ layer-wise probe curves


def read_layer_scores(files: list[Path]) -> list[dict]:
    """Rows {model, task, metric, layer, score (paper units)} from
    results/probe_layers/<model>/<task>/scores.json ({"metric", "layers": [{"layer", "score"}]})."""
    rows = []
    for path in (Path(p) for p in files):  # in the given (plan) order
        data = read_json(path)
        model, task = path.parent.parent.name, path.parent.name
        for entry in sorted(data["layers"], key=lambda e: e["layer"]):
            score = entry["score"]
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "metric": data["metric"],
                    "layer": int(entry["layer"]),
                    "score": to_paper_units(data["metric"], None if score is None else float(score)),
                }
            )
    return rows


def plot_layer_curves(rows: list[dict], stem: Path, *, title: str) -> list[Path]:
    """One panel per task: probe score against hidden-layer index, one line per model."""
    plt = pyplot()
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    ncols = min(4, len(tasks))
    nrows = -(-len(tasks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows + 0.6), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for model in models:
            sel = [r for r in rows if r["task"] == task and r["model"] == model and r["score"] is not None]
            if sel:
                ax.plot([r["layer"] for r in sel], [r["score"] for r in sel], marker="o", ms=3, label=model)
        metric = next(r["metric"] for r in rows if r["task"] == task)
        unit = "" if metric in RAW_SCALE else " (%)"
        ax.set_title(task, fontsize=8)
        ax.set_xlabel("hidden layer (0 = Transformer input)", fontsize=7)
        ax.set_ylabel(f"{metric}{unit}", fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=7)
    fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return save_figure(fig, stem)


# ------------------------------------------------------------------------------ jobs (one per figure rule)


def write_tsne_figure(
    member_dirs: dict[str, dict[str, Path]],
    stem: Path,
    data: Path,
    caption_file: Path,
    *,
    points_per_task: int,
    perplexity: float,
    seed: int,
    suite: str,
    threads: int = 1,
    stand_in: bool = False,
) -> str:
    """member_dirs: {model: {task: results/members/<model>/<task>}}; their `fusion` views are used."""
    points = {
        model: tsne_points(
            {t: Path(d) / "fusion" for t, d in dirs.items()},
            points_per_task=points_per_task,
            perplexity=perplexity,
            seed=seed,
            threads=threads,
        )
        for model, dirs in member_dirs.items()
    }
    caption = (
        f"t-SNE (perplexity {perplexity:g}, capped at (n-1)/3; seed {seed}) of clip embeddings of the "
        f"fusion of all hidden layers, up to {points_per_task} clips per task from all splits; event tasks "
        "as the mean over time; features z-scored. Each dot is a clip, coloured by task (the paper's Figure 2)."
    )
    caption += stand_in_suffix(stand_in)
    plot_tsne(points, stem, title=f"t-SNE of fusion embeddings ({suite} suite)")
    write_csv(data, ["model", "task", "x", "y"], [dict(r, model=m) for m, rows in points.items() for r in rows])
    write_text(caption_file, caption + "\n")
    return caption


def write_layer_figure(
    layer_files: list[Path], stem: Path, data: Path, caption_file: Path, *, suite: str, stand_in: bool = False
) -> str:
    rows = read_layer_scores(layer_files)
    caption = (
        "Layer-wise probing: test score of the HEAR probe trained on each hidden layer's scene embedding "
        "(layer 0: the input to the Transformer), one line per SSL model."
    )
    caption += stand_in_suffix(stand_in)
    plot_layer_curves(rows, stem, title=f"Layer-wise probe scores ({suite} suite)")
    write_csv(data, ["model", "task", "metric", "layer", "score"], rows)
    write_text(caption_file, caption + "\n")
    return caption
