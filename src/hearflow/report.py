"""reports/metrics.json and the paper's Tables 2-6 as Markdown, CSV and LaTeX.

metrics.json is `{config: {task: {metric: value}}}` (test scores, mean over folds), the
file `dvc metrics diff` compares across commits. A metric that is undefined on a split
(heareval's d' is NaN when a class has no positive test clip and infinite at AUC 1) is
written as null, so that the file stays valid JSON; tables show it as "n/a".

A table named `tableN_<anything>` in `report.tables` is the paper's Table N
(reports/paper/tables.csv). Rows are (task, metric), columns the table's configs. Where the
suite's tasks are the paper's (hear2021), each cell reads "ours / paper (Δ)" and the other
methods the paper's table lists (Table 2's PaSST, PANNs, ...) come along as "(paper)"
columns; on other suites (demo) cells hold our score only.

    table = build_table("table2_baselines", metrics, configs, tasks, evaluation, paper)
    write_text("t.md", to_markdown(table)); write_text("t.tex", to_latex(table))

Units are the paper's: every metric in percent except d' (as printed). Ranks are taken on
the printed values: rank 1 in bold, rank 2 underlined when at least three values compete
(the paper underlines the second best only in its nine-row Table 2).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from hearflow.intervals import cell_interval, paired_interval
from hearflow.io import read_json, write_json, write_text

LOWER_IS_BETTER = {"segment_1s_er"}
RAW_SCALE = {"d_prime"}  # printed as they are; every other metric in percent, as in the paper
STAND_IN_NOTE = (
    "Untrained stand-in models: wav2vec2/HuBERT here are tiny random networks of the "
    "real architecture. These numbers test the pipeline; they say nothing about the "
    "pretrained models of the paper."
)
PAPER_CAPTIONS = {  # the paper's captions (seeds/000 lines 349, 718, 913, 1041, 1168)
    "table2": "Performance of our framework and other baselines",
    "table3": "Performance of HuBERT xLarge and wav2vec 2.0 Large w/ and w/o feature fusion",
    "table4": "Performance of feature averaging versus feature concatenation of wav2vec 2.0 Large plus HuBERT Large",
    "table5": "Performance of HuBERT xLarge w/ and w/o CREPE",
    "table6": "Performance of wav2vec 2.0 Large plus CREPE with feature concatenation w/ and w/o HuBERT xLarge",
}
CSV_COLUMNS = [
    *("table", "task", "metric", "higher_is_better", "method", "paper_only", "ours", "paper", "delta", "rank"),
    *("low", "high", "significant"),  # the 95% interval of ours; a paired difference excluding 0
]
DIFF = "Δ"  # the label of a paired-difference column: "Δ <variant> − <base>"


def collect_metrics(score_files: list[Path]) -> dict[str, dict[str, dict[str, float]]]:
    """{config: {task: {metric: mean test value}}} from results/probe/<config>/<task>/scores.json."""
    metrics: dict = {}
    for path in sorted(score_files):
        cfg, task = path.parent.parent.name, path.parent.name
        values = read_json(path)["metrics"]
        metrics.setdefault(cfg, {})[task] = {
            m: round(float(v), 6) if v is not None and math.isfinite(v) else None for m, v in values.items()
        }
    return metrics


def write_metrics(score_files: list[Path], out: Path) -> dict:
    metrics = collect_metrics(score_files)
    write_json(out, metrics)
    return metrics


def task_facts(catalog: dict[str, dict], tasks: list[str]) -> dict[str, dict]:
    """{task: {category, embedding_type, evaluation}}: from the suite's catalog (hear2021) or,
    for the demo tasks, from hearflow.demo. Parse-time safe (no heavy imports)."""
    out = {}
    for task in tasks:
        if task in catalog:
            facts = catalog[task]
        else:
            from hearflow import demo

            facts = demo.task_facts(task)
        out[task] = {k: facts[k] for k in ("category", "embedding_type", "evaluation")}
    return out


# ------------------------------------------------------------------------------ units


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def arrow(metric: str) -> str:
    return "↑" if higher_is_better(metric) else "↓"


def to_paper_units(metric: str, value: float | None) -> float | None:
    """A metrics.json value (fractions) in the paper's units (percent, d' as is)."""
    if value is None:
        return None
    return value if metric in RAW_SCALE else 100 * value


def _digits(metric: str) -> int:
    return 3 if metric in RAW_SCALE else 1


def format_number(metric: str, value: float | None, *, signed: bool = False) -> str:
    """A value in paper units as printed: d' with 3 decimals, percentages with 1."""
    if value is None:  # undefined on this split, or not published
        return "n/a"
    text = f"{value:+.{_digits(metric)}f}" if signed else f"{value:.{_digits(metric)}f}"
    return "+0.0" if signed and text in ("-0.0", "-0.000") else text


# ------------------------------------------------------------------------------ paper values


def paper_table_id(name: str) -> str | None:
    """`table2_baselines` -> `table2` (the paper's table it regenerates), else None."""
    m = re.match(r"(table\d+)(_|$)", name)
    return m.group(1) if m else None


def read_paper_values(path: Path) -> dict[tuple[str, str, str, str], float]:
    """{(table, method, task, metric): value as printed} from reports/paper/tables.csv."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return {(r["table"], r["method"], r["task"], r["metric"]): float(r["value"]) for r in csv.DictReader(f)}


def paper_columns(paper: dict, table_id: str) -> list[tuple[str, str]]:
    """The paper table's (task, metric) columns in printed order."""
    return list(dict.fromkeys((task, metric) for (t, _, task, metric) in paper if t == table_id))


def paper_methods(paper: dict, table_id: str) -> list[str]:
    return list(dict.fromkeys(method for (t, method, _, _) in paper if t == table_id))


# ------------------------------------------------------------------------------ the table model


@dataclass
class Cell:
    ours: float | None = None  # paper units
    paper: float | None = None  # as printed in the paper
    rank: int | None = None  # 1 = best of the row (None: no value)
    low: float | None = None  # 95% interval of ours (paper units; None: none known)
    high: float | None = None
    significant: bool | None = None  # a paired difference whose interval excludes 0

    @property
    def delta(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper


@dataclass
class Row:
    task: str
    metric: str
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def ranked(self) -> int:
        return sum(c.rank is not None for c in self.cells.values())


@dataclass
class Table:
    name: str
    caption: str
    methods: list[str]  # column order
    paper_only: list[str]  # methods shown with the paper's numbers only
    compare: bool  # cells hold ours / paper (Δ)
    rows: list[Row]
    stand_in: bool = False
    suite: str = ""
    diffs: list[str] = field(default_factory=list)  # paired-difference columns (in methods, never ranked)

    def emphasis(self, row: Row, method: str) -> str:
        """'best', 'second' or '' for one cell."""
        rank = row.cells[method].rank
        if rank == 1:
            return "best"
        if rank == 2 and row.ranked >= 3:
            return "second"
        return ""


def rank_row(row: Row, paper_only: list[str], diffs: list[str] = ()) -> None:
    """Dense ranks on the printed values: ours for our configs, the paper's for paper-only rows
    (paired-difference columns are not ranked)."""
    shown = {}
    for method, cell in row.cells.items():
        if method in diffs:
            continue
        value = cell.paper if method in paper_only else cell.ours
        if value is not None:
            shown[method] = round(value, _digits(row.metric))
    order = sorted(set(shown.values()), reverse=higher_is_better(row.metric))
    for method, cell in row.cells.items():
        cell.rank = order.index(shown[method]) + 1 if method in shown else None


def build_table(
    name: str,
    metrics: dict,
    configs: list[str],
    tasks: list[str],
    evaluation: dict[str, list[str]],
    paper: dict,
    *,
    suite: str = "",
    stand_in: bool = False,
    scores: dict | None = None,
    pairs: list[list[str]] = (),
) -> Table:
    """One table of the paper from metrics.json.

    `evaluation` gives each task's metrics in heareval order; `paper` is read_paper_values().
    Compared with the paper when its table shares tasks with this run. With `scores`
    ({(config, task): scores.json}), cells get their 95% intervals (hearflow.intervals) and
    each of `pairs` ([base, variant], report.figures.ablations) whose configs are both in the
    table adds a column of paired differences, variant minus base, with their intervals.
    """
    table_id = paper_table_id(name)
    published = paper_columns(paper, table_id) if table_id else []
    compare = any(task in tasks for task, _ in published)
    columns = [(t, m) for t, m in published if t in tasks] if compare else []
    columns += [(t, m) for t in tasks if not any(t == pt for pt, _ in columns) for m in evaluation[t]]
    paper_only = [m for m in paper_methods(paper, table_id) if m not in configs] if compare else []
    pairs = [(b, v) for b, v in pairs if b in configs and v in configs] if scores else []
    diffs = [f"{DIFF} {v} − {b}" for b, v in pairs]
    methods = paper_only + list(configs) + diffs
    rows = []
    for task, metric in columns:
        row = Row(task, metric)
        for method in methods[: len(methods) - len(diffs)]:
            ours = None if method in paper_only else metrics.get(method, {}).get(task, {}).get(metric)
            row.cells[method] = Cell(
                ours=to_paper_units(metric, ours),
                paper=paper.get((table_id, method, task, metric)) if compare else None,
            )
            if scores and (method, task) in scores:
                _set_interval(row.cells[method], metric, cell_interval(scores[method, task], metric))
        for label, (base, variant) in zip(diffs, pairs, strict=True):
            row.cells[label] = cell = Cell()
            if (base, task) in scores and (variant, task) in scores:
                diff = paired_interval(scores[base, task], scores[variant, task], metric)
                if diff is None:  # no pairing: the difference of the means alone
                    a, b = row.cells[base].ours, row.cells[variant].ours
                    cell.ours = None if a is None or b is None else b - a
                else:
                    cell.ours = to_paper_units(metric, diff["mean"])
                    _set_interval(cell, metric, diff)
                    cell.significant = diff["significant"]
        rank_row(row, paper_only, diffs)
        rows.append(row)
    caption = PAPER_CAPTIONS.get(table_id, name)
    return Table(name, caption, methods, paper_only, compare, rows, stand_in=stand_in, suite=suite, diffs=diffs)


def _set_interval(cell: Cell, metric: str, found: dict) -> None:
    if found.get("low") is not None and math.isfinite(found["low"]):
        cell.low, cell.high = to_paper_units(metric, found["low"]), to_paper_units(metric, found["high"])


# ------------------------------------------------------------------------------ renderers


def cell_parts(table: Table, row: Row, method: str) -> tuple[str, str]:
    """(the ranked number, the rest of the cell): '96.8', ' / 96.8 (+0.0)'."""
    cell = row.cells[method]
    if method in table.paper_only:  # "–": the paper prints no number here
        return ("–" if cell.paper is None else format_number(row.metric, cell.paper)), ""
    spread = (
        "" if cell.low is None or cell.ours is None else f" ± {format_number(row.metric, (cell.high - cell.low) / 2)}"
    )
    if method in table.diffs:
        return format_number(row.metric, cell.ours, signed=True), spread + ("*" if cell.significant else "")
    ours = format_number(row.metric, cell.ours)
    if not table.compare:
        return ours, spread
    if cell.paper is None:
        return ours, f"{spread} / –"
    delta = "" if cell.delta is None else f" ({format_number(row.metric, cell.delta, signed=True)})"
    return ours, f"{spread} / {format_number(row.metric, cell.paper)}{delta}"


def column_label(table: Table, method: str) -> str:
    return f"{method} (paper)" if method in table.paper_only else method


def legend(table: Table) -> str:
    what = (
        "Cells: ours / the paper's (ours − paper). Columns marked (paper) are the paper's numbers only."
        if table.compare
        else "Cells: our test scores."
    )
    spread = (
        ' ± half the 95% interval (probe seeds and a bootstrap of the test clips; README "Intervals and significance").'
        if any(c.low is not None for r in table.rows for c in r.cells.values())
        else ""
    )
    diffs = (
        f" {DIFF} columns: paired difference variant − base, ± half its 95% interval; * where that interval excludes 0."
        if table.diffs
        else ""
    )
    return (
        f"{what} HEAR protocol, test split (mean over folds and probe seeds){spread} Every metric in %, d' as is. "
        "↑ higher is better, ↓ lower is better. Best per row in bold, second underlined "
        f"(when at least three values compete).{diffs}"
    )


def to_markdown(table: Table) -> str:
    parts = [f"# {table.name}: {table.caption} ({table.suite} suite)\n"]
    if table.stand_in:
        parts.append("> " + STAND_IN_NOTE + "\n")
    parts.append(legend(table) + "\n")
    head = ["task", "metric"] + [column_label(table, m) for m in table.methods]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(table.methods)]
    for row in table.rows:
        cells = []
        for method in table.methods:
            number, rest = cell_parts(table, row, method)
            style = table.emphasis(row, method)
            number = f"**{number}**" if style == "best" else f"<u>{number}</u>" if style == "second" else number
            cells.append(number + rest)
        lines.append("| " + " | ".join([row.task, f"{row.metric} {arrow(row.metric)}"] + cells) + " |")
    parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "Δ": r"$\Delta$",
    "−": "$-$",
    "±": r"$\pm$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_number(text: str) -> str:
    return "$-$" + text[1:] if text.startswith("-") else text.replace("–", "--")


def to_latex(table: Table) -> str:
    """A booktabs `table` float (needs \\usepackage{booktabs})."""
    arrows = {True: r"$\uparrow$", False: r"$\downarrow$"}
    head = ["Task", "Metric"] + [latex_escape(column_label(table, m)) for m in table.methods]
    body = []
    for row in table.rows:
        cells = []
        for method in table.methods:
            number, rest = cell_parts(table, row, method)
            number = _latex_number(number)
            style = table.emphasis(row, method)
            number = (
                rf"\textbf{{{number}}}"
                if style == "best"
                else rf"\underline{{{number}}}"
                if style == "second"
                else number
            )
            rest = rest.replace("(-", "($-$").replace("–", "--").replace(" ± ", r" $\pm$ ")
            cells.append(number + rest)
        label = f"{latex_escape(row.metric)} {arrows[higher_is_better(row.metric)]}"
        body.append(" & ".join([latex_escape(row.task), label] + cells) + r" \\")
    caption = latex_escape(f"{table.caption} ({table.suite} suite). ") + latex_escape(legend(table)).replace(
        "↑", arrows[True]
    ).replace("↓", arrows[False]).replace("−", "$-$")
    if table.stand_in:
        caption += " " + latex_escape(STAND_IN_NOTE)
    lines = [
        "% Generated by hearflow (src/hearflow/report.py) from reports/metrics.json. Needs \\usepackage{booktabs}.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:{table.name}}}",  # labels take underscores as they are
        r"\begin{tabular}{ll" + "r" * len(table.methods) + "}",
        r"\toprule",
        " & ".join(head) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _csv_number(value: float | None, metric: str) -> str:
    return "" if value is None else f"{value:.{_digits(metric) + 3}f}"


def to_csv(table: Table) -> str:
    """Long format, one line per cell; values in paper units."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in table.rows:
        for method in table.methods:
            cell = row.cells[method]
            writer.writerow(
                [
                    table.name,
                    row.task,
                    row.metric,
                    str(higher_is_better(row.metric)).lower(),
                    method,
                    str(method in table.paper_only).lower(),
                    _csv_number(cell.ours, row.metric),
                    _csv_number(cell.paper, row.metric),
                    _csv_number(cell.delta, row.metric),
                    "" if cell.rank is None else cell.rank,
                    _csv_number(cell.low, row.metric),
                    _csv_number(cell.high, row.metric),
                    "" if cell.significant is None else str(cell.significant).lower(),
                ]
            )
    return out.getvalue()


def read_table_csv(path: Path, *, caption: str = "", suite: str = "", stand_in: bool = False) -> Table:
    """Rebuild a Table from to_csv() output (the HTML report renders these)."""

    def num(text):
        return float(text) if text else None

    with Path(path).open(newline="", encoding="utf-8") as f:
        lines = list(csv.DictReader(f))
    name = lines[0]["table"] if lines else Path(path).stem
    methods = list(dict.fromkeys(r["method"] for r in lines))
    paper_only = [m for m in methods if any(r["method"] == m and r["paper_only"] == "true" for r in lines)]
    rows: dict[tuple[str, str], Row] = {}
    for r in lines:
        row = rows.setdefault((r["task"], r["metric"]), Row(r["task"], r["metric"]))
        row.cells[r["method"]] = Cell(
            num(r["ours"]),
            num(r["paper"]),
            int(r["rank"]) if r["rank"] else None,
            num(r.get("low")),
            num(r.get("high")),
            {"true": True, "false": False}.get(r.get("significant") or ""),
        )
    compare = any(r["paper"] for r in lines if r["paper_only"] == "false") or bool(paper_only)
    table_id = paper_table_id(name)
    return Table(
        name,
        caption or PAPER_CAPTIONS.get(table_id, name),
        methods,
        paper_only,
        compare,
        list(rows.values()),
        stand_in=stand_in,
        suite=suite,
        diffs=[m for m in methods if m.startswith(DIFF + " ")],
    )


def write_tables(
    metrics_file: Path,
    paper_file: Path,
    score_files: list[Path],
    outputs: dict[str, Path],
    *,
    name: str,
    configs: list[str],
    tasks: list[str],
    evaluation: dict[str, list[str]],
    suite: str,
    pairs: list[list[str]] = (),
) -> Table:
    """Write one table as Markdown, CSV and LaTeX (outputs: {"md", "csv", "tex"} -> path),
    flagged when any number comes from a stand-in model; intervals and the paired differences
    of `pairs` from the score files."""
    metrics = read_json(metrics_file)
    scores = {(Path(p).parent.parent.name, Path(p).parent.name): read_json(p) for p in score_files}
    stand_in = any(s.get("stand_in") for s in scores.values())
    table = build_table(
        name,
        metrics,
        configs,
        tasks,
        evaluation,
        read_paper_values(paper_file),
        suite=suite,
        stand_in=stand_in,
        scores=scores,
        pairs=pairs,
    )
    write_text(outputs["md"], to_markdown(table))
    write_text(outputs["csv"], to_csv(table))
    write_text(outputs["tex"], to_latex(table))
    return table


def write_score_plot(score_files: list[Path], out: Path) -> list[dict]:
    """reports/plots/scores.csv for `dvc plots`: one row per (task, config) with the task's
    first `evaluation` metric (the one that selects models), rows sorted by task then config."""
    import csv
    import io

    rows = []
    for path in sorted(score_files, key=lambda p: (p.parent.name, p.parent.parent.name)):
        cfg, task = path.parent.parent.name, path.parent.name
        scores = read_json(path)
        metric = scores["evaluation"][0]
        value = scores["metrics"][metric]
        value = round(float(value), 6) if value is not None and math.isfinite(value) else None
        rows.append({"entry": f"{task} / {cfg}", "task": task, "config": cfg, "metric": metric, "score": value})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["entry", "task", "config", "metric", "score"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out, buf.getvalue())
    return rows
