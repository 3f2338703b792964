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
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from hearflow.report.intervals import cell_interval, paired_interval
from hearflow.report.metrics import decimals, format_number, higher_is_better, to_paper_units

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
            shown[method] = round(value, decimals(row.metric))
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
    ({(config, task): scores.json}), cells get their 95% intervals (hearflow.report.intervals) and
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
        ' ± half the 95% interval (probe seeds and a bootstrap of the test clips; docs/probing.md, "Intervals and significance").'
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
