"""reports/report.html: one self-contained page with the tables, figures, params and provenance.

Figures are embedded as base64 PNG, tables rendered from reports/tables/<table>.csv, and
nothing is fetched when the page opens (no scripts, no external style sheets), so the file
can be mailed or archived alone.

Provenance: the git commit of the checkout (and whether it had uncommitted changes), the
models and checkpoints (results/members/*/*/provenance.json), probe engine and seed
(scores.json), and wall time per phase: the compute time the jobs recorded in their own
provenance (embed, probe, layer probes) and, where Snakemake's job records exist
(.snakemake/metadata: start and end of every job of the last runs that made the current
outputs), the summed job time of every phase.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import subprocess
from pathlib import Path

from hearflow.core.io import read_json, write_text
from hearflow.report.metrics import arrow
from hearflow.report.tables import STAND_IN_NOTE, Table, cell_parts, column_label, legend

log = logging.getLogger(__name__)

PHASES = {  # Snakemake rule -> phase of the pipeline
    "demo_archive": "data",
    "sim_archive": "data",
    "recordings_archive": "data",
    "download": "data",
    "extract": "data",
    "resample": "data",
    "standin": "embed",
    "embed": "embed",
    "ensemble": "ensemble",
    "probe": "probe",
    "probe_layers": "probe_layers",
}
PHASE_ORDER = ("data", "embed", "ensemble", "probe", "probe_layers", "report")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.82em; }
th, td { border-top: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; white-space: nowrap; }
th { border-bottom: 2px solid #444; background: #f4f4f4; }
td.key, th.key { text-align: left; }
.note { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.5em 1em; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; max-width: 1000px; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.8em; }
.legend { font-size: 0.85em; color: #444; }
.scroll { overflow-x: auto; }
"""


DIRTY = "uncommitted changes outside reports/ and dvc.lock"  # what git_state's "dirty" means


def git_state(root: Path) -> dict:
    """{"commit": sha | "unknown", "dirty": bool | None} of the checkout at `root`; dirty: tracked
    files outside reports/ and dvc.lock differ from the commit."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        # reports/ and dvc.lock are what this run rewrites; changes elsewhere (code, params) make
        # the commit inexact
        status = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)reports",
                ":(exclude)dvc.lock",
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        log.warning("no git commit recorded: %s", err)
        return {"commit": "unknown (not a git checkout)", "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def snakemake_job_times(metadata_dir: Path, root: Path) -> dict[str, dict]:
    """{phase: {"jobs", "seconds"}} summed over Snakemake's job records whose output exists.

    A record is .snakemake/metadata/<urlsafe base64 of the output path> (split into "@"
    folders past the file-name limit) holding the job's rule, starttime and endtime; jobs
    with several outputs are counted once.
    """
    metadata_dir = Path(metadata_dir)
    jobs = {}
    for path in sorted(p for p in metadata_dir.rglob("*") if p.is_file()) if metadata_dir.is_dir() else []:
        # the urlsafe base64 of the output path, in chunks of folders named "@<chunk>" when long
        encoded = "".join(part.removeprefix("@") for part in path.relative_to(metadata_dir).parts)
        try:
            output = base64.urlsafe_b64decode(encoded).decode()
            record = json.loads(path.read_text())
            # the outputs of one job share its end time (each notes its own start, a few µs apart)
            key = (record["rule"], record["endtime"], record.get("job_hash"))
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            log.warning("skipping unreadable Snakemake record %s: %s", path.name, err)
            continue
        if record["starttime"] is None or record["endtime"] is None or not (root / output).exists():
            continue
        jobs[key] = record
    phases: dict[str, dict] = {}
    for (rule, end, _), record in jobs.items():
        phase = PHASES.get(rule, "report")
        if phase == "report":  # the page's own phase: its records would make each run differ
            continue
        p = phases.setdefault(phase, {"jobs": 0, "seconds": 0.0})
        p["jobs"] += 1
        p["seconds"] += max(0.0, float(end) - float(record["starttime"]))
    return phases


def gather_provenance(score_files: list[Path], member_dirs: list[Path], layer_files: list[Path] = ()) -> dict:
    """Models, checkpoints, engines, seeds and numerics settings the results record (no host
    or wall time: those are in the job logs, so results hash the same on every machine)."""
    models: dict[str, dict] = {}
    numerics = set()
    for d in member_dirs:
        prov = read_json(Path(d) / "provenance.json")
        models.setdefault(
            prov["model"],
            {
                k: prov.get(k)
                for k in ("model", "module", "checkpoint", "stand_in", "embedding_size", "hidden_states", "sample_rate")
            },
        )
        numerics.add(_numerics_label(prov.get("numerics")))
    engines, seeds = set(), set()
    for files in (score_files, layer_files):
        for f in files:
            s = read_json(f)
            engines.add(s.get("engine"))
            seeds.add(s.get("seed"))
            numerics.add(_numerics_label(s.get("provenance", {}).get("numerics")))
    return {
        "models": sorted(models.values(), key=lambda m: m["model"]),
        "engines": sorted(str(e) for e in engines if e is not None),
        "seeds": sorted(s for s in seeds if s is not None),
        "numerics": sorted(n for n in numerics if n),
    }


def _numerics_label(record: dict | None) -> str | None:
    """ "reproducible, 2 threads" from a numerics record (hearflow.core.numerics.record)."""
    if not record:
        return None
    return f"{record['mode']}, {record['threads']} thread{'s' if record['threads'] != 1 else ''}"


# ------------------------------------------------------------------------------ rendering


def table_html(table: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(column_label(table, m))}</th>" for m in table.methods)
    rows = []
    for row in table.rows:
        cells = []
        for method in table.methods:
            number, rest = cell_parts(table, row, method)
            style = table.emphasis(row, method)
            number = esc(number)
            number = f"<b>{number}</b>" if style == "best" else f"<u>{number}</u>" if style == "second" else number
            cells.append(f"<td>{number}{esc(rest)}</td>")
        rows.append(
            f'<tr><td class="key">{esc(row.task)}</td><td class="key">{esc(row.metric)} {arrow(row.metric)}</td>'
            + "".join(cells)
            + "</tr>"
        )
    return (
        f'<section class="result-table" id="{esc(table.name)}">\n<h3>{esc(table.name)}: {esc(table.caption)}</h3>\n'
        f'<p class="legend">{esc(legend(table))}</p>\n'
        f'<div class="scroll"><table>\n<thead><tr><th class="key">task</th><th class="key">metric</th>{head}</tr></thead>\n'
        f"<tbody>\n{chr(10).join(rows)}\n</tbody>\n</table></div>\n</section>"
    )


def figure_html(png: Path, caption: str) -> str:
    data = base64.b64encode(Path(png).read_bytes()).decode()
    return (
        f'<figure id="{html.escape(Path(png).stem)}"><img alt="{html.escape(Path(png).stem)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}</figcaption></figure>'
    )


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f'<tr><td class="key">{html.escape(k)}</td><td class="key">{html.escape(str(v))}</td></tr>' for k, v in rows
    )
    return f"<table><tbody>{body}</tbody></table>"


def render_report(
    *,
    suite: str,
    tables: list[Table],
    figures: list[tuple[Path, str]],
    params_text: str,
    provenance: dict,
    git: dict,
    job_times: dict,
    stand_in: bool,
) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>hearflow report: {esc(suite)} suite</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>hearflow report: {esc(suite)} suite</h1>",
        f"<p>Reproduction of the HEAR 2021 experiments of <i>The Ability of Self-Supervised Speech Models "
        f"for Audio Representations</i>. Commit <code>{esc(git['commit'])}</code>"
        + (f" (with {DIRTY})" if git.get("dirty") else "")
        + ".</p>",
    ]
    if stand_in:
        parts.append(f'<p class="note">{esc(STAND_IN_NOTE)}</p>')
    parts.append(
        '<nav><a href="#tables">Tables</a> · <a href="#figures">Figures</a> · '
        '<a href="#provenance">Provenance</a> · <a href="#params">Parameters</a></nav>'
    )
    parts.append('<h2 id="tables">Tables 2-6</h2>')
    parts += [table_html(t) for t in tables]
    parts.append('<h2 id="figures">Figures</h2>')
    parts += [figure_html(png, caption) for png, caption in figures]

    parts.append('<h2 id="provenance">Provenance</h2>')
    parts.append(
        _kv_table(
            [
                ("git commit", git["commit"] + (f" ({DIRTY})" if git.get("dirty") else "")),
                ("suite", suite),
                ("probe engine", ", ".join(provenance["engines"]) or "n/a"),
                ("seed", ", ".join(map(str, provenance["seeds"])) or "n/a"),
                ("numerics", "; ".join(provenance["numerics"]) or "not recorded"),
            ]
        )
    )
    model_rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="key">{esc(str(m.get(k)))}</td>'
            for k in ("model", "module", "checkpoint", "stand_in", "embedding_size", "hidden_states", "sample_rate")
        )
        + "</tr>"
        for m in provenance["models"]
    )
    parts.append(
        '<h3>Models</h3><table id="models"><thead><tr>'
        + "".join(
            f'<th class="key">{k}</th>'
            for k in (
                "model",
                "module",
                "checkpoint",
                "stand-in",
                "embedding size",
                "hidden states",
                "sample rate (Hz)",
            )
        )
        + f"</tr></thead><tbody>{model_rows}</tbody></table>"
    )
    phase_rows = []
    for phase in PHASE_ORDER:
        jobs = job_times.get(phase)
        if jobs:
            phase_rows.append(
                f'<tr><td class="key">{phase}</td><td>{jobs["jobs"]}</td><td>{jobs["seconds"]:.1f}</td></tr>'
            )
    parts.append(
        '<h3>Wall time per phase</h3><p class="legend">Snakemake job time: end minus start of each job '
        "(.snakemake/metadata, queueing and environment set-up included), summed over jobs, not elapsed "
        "time. What each job itself took, and on which host, is in its log under logs/.</p>"
        '<table id="wall-time"><thead><tr><th class="key">phase</th><th>Snakemake jobs</th><th>job time (s)</th>'
        f"</tr></thead><tbody>{''.join(phase_rows)}</tbody></table>"
    )
    parts.append(
        f'<h2 id="params">Parameters</h2><p class="legend">The configuration this run used '
        f"(params.yaml merged with command-line overrides).</p><pre>{esc(params_text)}</pre>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(out: Path, **kwargs) -> str:
    text = render_report(**kwargs)
    write_text(out, text)
    return text
