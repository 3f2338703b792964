"""The registries (rules, model modules) and the phase boundaries of dvc.yaml's code deps.

Adding a model module is one file plus its params entry, adding a rule its rule entry plus its
script (both shown on a copy of the checkout); every DVC stage depends only on code of its own
phase (so changing the embed job reruns no probe stage), and the package has no import circle."""

from __future__ import annotations

import ast
import copy
import fnmatch
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from hearflow.workflow import dvcgen
from hearflow.workflow.config import ParamsError, load_params, make_plan, validate_params
from hearflow.workflow.keys import has_setting
from hearflow.workflow.rules import ALL_KEYS, rule_registry
from tests.conftest import ROOT, copy_checkout
from tests.test_workflow import _planned_rules, _snakemake

# What a stage of each phase may run, derived from the layout: its rule file, the scripts that
# rule file names, its phase's package (src/hearflow/<phase>/) and the shared core
# (src/hearflow/core/). Nothing else: no other phase's package, no workflow layer.
PHASES = ("data", "embed", "ensemble", "probe", "report")
CORE = "src/hearflow/core/*"


def phase_patterns(phase: str, root: Path = ROOT) -> list[str]:
    rule_file = f"rules/{phase}.smk"
    scripts = re.findall(r'"\.\./(scripts/\w+\.py)"', (root / rule_file).read_text())
    return [rule_file, *scripts, f"src/hearflow/{phase}/*", CORE]


def test_every_phase_has_its_package_and_rule_file():
    """The phases are the folders: each has a package with a docstring saying what it reads,
    writes and which rules run it, and a rule file naming its scripts."""
    for phase in PHASES:
        init = ROOT / "src" / "hearflow" / phase / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "Reads" in doc and "Writes" in doc and "rules/" in doc, f"{init}: docstring lacks reads/writes/rules"
        assert len(phase_patterns(phase)) > 3, phase
    packages = {p.name for p in (ROOT / "src" / "hearflow").iterdir() if (p / "__init__.py").is_file()}
    assert packages == {*PHASES, "core", "workflow"}
    assert not list((ROOT / "src" / "hearflow").glob("*.py")), "every module lives in a phase, core or workflow"


# Known exceptions (none now: the probe's device choice moved to hearflow.core.devices). The
# test fails when an entry is no longer needed, so none outlives its reason.
PENDING: dict[str, set[str]] = {}
STAGE_PHASE = {
    "data": "data",
    "standin": "embed",
    "embed": "embed",
    "ensemble": "ensemble",
    "probe": "probe",
    "probe_layers": "probe",
    "report": "report",
}


def _code_deps(stage: dict) -> set[str]:
    return {d for d in stage["deps"] if not d.startswith(("data/", "results/", "reports/"))}


def _outside(phase: str, deps: set[str]) -> set[str]:
    patterns = phase_patterns(phase)
    return {d for d in deps if not any(fnmatch.fnmatch(d, p) for p in patterns)}


@pytest.fixture(scope="module", params=["demo", "hear2021"])
def suite_stages(request) -> dict[str, dict]:
    return dvcgen.stages(load_params(ROOT / "params.yaml", {"suite": request.param}))


# --- phase boundaries --------------------------------------------------------------------------


def test_stage_code_dependencies_stay_in_their_phase(suite_stages):
    """Every stage's code deps are within its phase's allow-list: a probe stage depends on no
    embedding code (hearflow.embed), an embed stage on no probe or report code."""
    for name, stage in suite_stages.items():
        phase = STAGE_PHASE[name.split("-", 1)[0]]
        outside = _outside(phase, _code_deps(stage))
        assert outside == PENDING.get(phase, set()), (
            f"{name}: code of other phases {sorted(outside - PENDING.get(phase, set()))}; "
            f"pending exceptions no longer needed: {sorted(PENDING.get(phase, set()) - outside)} (drop them from PENDING)"
        )


def test_allow_list_catches_a_probe_module_importing_embedding_code(tmp_path):
    """The check above fails when a probe module imports embedding code (a copy of the checkout
    whose probe job imports run_environment from the embed job again, as it once did)."""
    repo = copy_checkout(tmp_path / "repo", exclude=(".dvc/",))
    job = repo / "src" / "hearflow" / "probe" / "job.py"
    job.write_text(job.read_text() + "\nfrom hearflow.embed.job import run_environment\n")  # an import anywhere counts
    stage = dvcgen.stages(load_params(repo / "params.yaml"), repo)["probe"]
    leaked = _outside("probe", _code_deps(stage)) - PENDING.get("probe", set())
    assert {"src/hearflow/embed/job.py", "src/hearflow/embed/views.py", "src/hearflow/embed/shards.py"} <= leaked


def test_changing_the_embed_job_reruns_no_probe_stage(suite_stages):
    """embed/job.py (and the model code) is a dependency of the embedding stages and of no stage
    downstream: DVC decides those by the embeddings' content."""
    depends = {n for n, st in suite_stages.items() if "src/hearflow/embed/job.py" in st["deps"]}
    assert depends == {n for n in suite_stages if n.startswith("embed-")}
    for name, stage in suite_stages.items():
        if name.startswith(("ensemble-", "probe-", "probe_layers-", "report")):
            assert not any(
                d.startswith("src/hearflow/embed/models/") and d not in PENDING["probe"] for d in stage["deps"]
            ), name


def _import_graph() -> dict[str, set[str]]:
    """{module: hearflow modules it imports anywhere (lazy imports too)} over src/hearflow."""
    src = ROOT / "src"
    modules = {
        ".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (src / "hearflow").rglob("*.py")
    }
    graph = {}
    for name, path in modules.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("hearflow"):
                out |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                }
            elif isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name in modules}
        graph[name] = (out & modules.keys()) - {name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_and_no_module_over_400_lines():
    graph = _import_graph()
    assert len(graph) > 50 and "hearflow.workflow.dvcgen" in graph
    assert _circles(graph) == []
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in (ROOT / "src").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_the_circle_check_finds_a_circle():
    """Broken on purpose: dvcgen <-> dvcrun, the circle the layout removed."""
    graph = _import_graph()
    graph["hearflow.workflow.dvcfile"] = graph["hearflow.workflow.dvcfile"] | {"hearflow.workflow.dvcgen"}
    assert ["hearflow.workflow.dvcfile", "hearflow.workflow.dvcgen"] in _circles(graph)


# --- the rule registry ---------------------------------------------------------------------------


def test_registries_and_the_dvc_yaml_generator_import_no_torch():
    """Snakemake reads both registries while planning: `snakemake -n` must not import torch."""
    code = (
        "import sys; from hearflow.workflow import dvcgen, rules, targets; from hearflow.embed import models; rules.rule_registry(); models.registry(); "
        "dvcgen.stages(dvcgen.load_params()); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    )


def test_rule_registry_has_every_rule_snakemake_knows():
    """Names from the registry's parse of the rule files equal `snakemake --list-rules`; every
    script exists; each rule's phase is its rule file."""
    listed = _snakemake(ROOT, "--list-rules").stdout.split()  # the demo's, and the sim's own rule
    listed += _snakemake(ROOT, "--list-rules", "--config", "suite=hear2021-sim").stdout.split()
    listed += _snakemake(ROOT, "--list-rules", "--config", "suite=recordings").stdout.split()
    rules = rule_registry()
    assert set(rules) == set(listed) - {"all"}
    for rule in rules.values():
        assert rule.file == f"rules/{rule.phase}.smk"
        assert rule.script is None or (ROOT / rule.script).is_file(), rule.name
    assert rules["probe"].script == "scripts/probe.py" and rules["embed"].sizing == "embed"
    assert rules["demo_archive"].suites == ("demo",) and rules["download"].suites is None
    assert rules["sim_archive"].suites == ("hear2021-sim",)
    assert rules["recordings_archive"].suites == ("recordings",)


def test_every_key_a_rule_reads_exists():
    """Each key template of a rule entry names a params key for some job of the demo, the
    hear2021 or the hear2021-sim plan (a typo would silently leave stages without that param, since a key a job
    lacks, such as a real model's `standin`, is left out; `settings` checks plain keys itself)."""
    found: dict[tuple[str, str], bool] = {}
    for suite in ("demo", "hear2021", "hear2021-sim", "recordings"):
        params = load_params(ROOT / "params.yaml", {"suite": suite})
        plan = make_plan(params)
        values = {"model": list(plan.models), "cfg": list(plan.configs), "task": list(plan.tasks)}
        for rule in rule_registry().values():
            for read in rule.reads:
                if read.key == ALL_KEYS:
                    continue
                fields = [f for f in values if "{" + f + "}" in read.key]
                assert len(fields) <= 1, read.key
                combos = [{}] if not fields else [{fields[0]: v} for v in values[fields[0]]]
                hit = any(has_setting(params, read.resolve(params, c)) for c in combos)
                found[rule.name, read.key] = found.get((rule.name, read.key), False) or hit
    assert found and [k for k, hit in found.items() if not hit] == []


def test_stage_params_follow_the_rule_entries():
    """A stage's params are the keys its rules' entries read: the layer probes list the MLP grid
    only with the native engine (a `when`), probe stages never the layer settings."""
    params = load_params(ROOT / "params.yaml")
    linear = dvcgen.stages(params)["probe_layers"]["params"]
    linear_keys = [f"probe.linear.{k}" for k in ("batch_size", "lr", "lr_decay", "weight_decay")]
    overridden = ["suites.demo.overrides.probe.linear.epochs"]  # the demo's 50 epochs, leaf by leaf
    assert linear == ["numerics", "probe.device", "probe.layers.engine", *linear_keys, "seed", *overridden]
    native = copy.deepcopy(params)
    native["probe"]["layers"]["engine"] = "native"
    keys = dvcgen.stages(native)["probe_layers"]["params"]
    assert "suites.demo.overrides.probe.max_grid_points" in keys and "probe.grid.lr" in keys
    assert dvcgen.stages(params)["report"]["params"] == [{"params.yaml": None}]  # report.html shows them all


RULE = """

rule table_summary:
    input:
        "reports/metrics.json",
    output:
        "reports/tables/summary.txt",
    params:
        **settings("suite", digits="report.figures.tsne.perplexity"),
    threads: job_threads("table_summary")
    resources:
        mem_mb=job_mem_mb("table_summary"),
        runtime=job_runtime("table_summary"),
    log:
        "logs/report/table_summary.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/table_summary.py"
"""
SCRIPT = '''"""A one-line summary of metrics.json."""
from pathlib import Path

from hearflow.core.io import read_json
from hearflow.core.smk import run


def main(smk):
    Path(smk.output[0]).write_text(f"{smk.params.suite}: {len(read_json(Path(smk.input[0])))} configs\\n")


run(snakemake, main)  # noqa: F821
'''


def _python(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{repo / 'src'}{os.pathsep}{repo}")
    res = subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True)
    assert res.returncode == 0, f"{args}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def test_adding_a_rule_is_its_entry_plus_its_script(tmp_path):
    """A new rule in rules/report.smk and its script, nothing else: the registry knows its script,
    phase, sizing and keys, `resources.jobs` may size it, the report stage runs it and depends on
    its script, and Snakemake plans it with the threads params.yaml gives it."""
    repo = copy_checkout(tmp_path / "repo", exclude=(".dvc/",))
    (repo / "rules" / "report.smk").write_text((repo / "rules" / "report.smk").read_text() + RULE)
    (repo / "scripts" / "table_summary.py").write_text(SCRIPT)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["resources"]["jobs"]["table_summary"] = {"threads": 2}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    code = textwrap.dedent("""
        import json
        from hearflow.workflow.config import load_params
        from hearflow.workflow.dvcgen import stages
        from hearflow.workflow.rules import job_rules, rule_registry
        r = rule_registry()["table_summary"]
        st = stages(load_params())["report"]
        print(json.dumps({"rule": [r.phase, r.script, r.sizing, [x.key for x in r.reads]],
                          "job_rule": "table_summary" in job_rules(), "cmd": st["cmd"], "deps": st["deps"]}))
    """)
    out = json.loads(_python(repo, "-c", code).stdout)
    assert out["rule"] == ["report", "scripts/table_summary.py", "jobs", ["suite", "report.figures.tsne.perplexity"]]
    assert out["job_rule"]
    assert " table_summary " in out["cmd"].split(" -- ")[0] + " "
    assert "scripts/table_summary.py" in out["deps"]
    plan = _snakemake(repo, "-n", "reports/tables/summary.txt").stdout
    assert _planned_rules(plan)["table_summary"] == 1
    assert "threads: 2" in plan


TINY_MODULE = '''"""A tiny HEAR-API module: log energy and zero-crossing rate of 20 ms frames at 16 kHz."""

from __future__ import annotations

from pathlib import Path

import torch

from hearflow.embed.models import ModelSpec

SPEC = ModelSpec(sample_rate=16000)
HOP = 320  # 20 ms


class EnergyModel:
    sample_rate = SPEC.sample_rate
    scene_embedding_size = timestamp_embedding_size = 2
    num_hidden_states = 1
    pads_exactly = True  # frames are independent: padding adds frames past the clip only
    min_samples = HOP
    checkpoint = None
    stand_in = False

    def __init__(self):
        self.provenance = {}

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def n_frames(self, n_samples: int, scene: bool = False) -> int:
        return n_samples // HOP


def load_model(model_file_path: str = "", *, device: str | None = None) -> EnergyModel:
    return EnergyModel()


def example(name: str, folder: Path) -> dict:
    return {}


def iter_layers(audio, model, *, scene=False, lengths=None):
    frames = audio[:, : audio.shape[1] // HOP * HOP].reshape(audio.shape[0], -1, HOP).float()
    energy = torch.log(frames.pow(2).mean(-1) + 1e-8)
    zcr = (frames[..., 1:] * frames[..., :-1] < 0).float().mean(-1)
    ts = ((torch.arange(frames.shape[1]) + 0.5) * HOP * 1000.0 / SPEC.sample_rate).float()
    yield 0, torch.stack([energy, zcr], dim=-1)[None], ts


def embed_layers(audio, model, *, scene=False):
    _, hidden, ts = next(iter_layers(audio, model, scene=scene))
    return hidden, ts.expand(hidden.shape[1], -1)


def get_timestamp_embeddings(audio, model):
    hidden, ts = embed_layers(audio, model)
    return hidden[0], ts


def get_scene_embeddings(audio, model):
    return embed_layers(audio, model)[0][0].mean(dim=1)
'''


def _with_tiny_model(params: dict) -> dict:
    params = copy.deepcopy(params)
    params["models"]["tiny_energy"] = {"module": "tiny", "options": {}}
    params["configs"]["tiny_energy"] = {"members": [{"model": "tiny_energy", "layer": "last"}], "combine": "single"}
    params["suites"]["demo"]["configs"].append("tiny_energy")
    return params


def test_a_model_module_unknown_to_the_registry_is_refused():
    """The params schema's module enum is the registry: `tiny` is no module of this checkout."""
    with pytest.raises(ParamsError, match="models.tiny_energy.module"):
        validate_params(_with_tiny_model(yaml.safe_load((ROOT / "params.yaml").read_text())))


def test_adding_a_model_module_is_one_file_plus_its_params_entry(tmp_path):
    """A copy of the checkout with src/hearflow/embed/models/tiny.py and a params entry using it (model,
    config, the demo suite's configs) and nothing else: Snakemake plans its embedding jobs,
    dvc.yaml gets its embed stages (depending on tiny.py, no other model's code) and probe
    stage, and the module embeds a task through the pipeline's embed_task."""
    repo = copy_checkout(tmp_path / "repo", exclude=(".dvc/",))
    (repo / "src" / "hearflow" / "embed" / "models" / "tiny.py").write_text(TINY_MODULE)
    params = _with_tiny_model(yaml.safe_load((repo / "params.yaml").read_text()))
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    plan = _snakemake(repo, "-n").stdout
    tasks = params["suites"]["demo"]["tasks"]
    assert _planned_rules(plan)["embed"] == 5 * len(tasks)  # 4 demo models + tiny_energy
    assert all(f"results/members/tiny_energy/{t}" in plan for t in tasks)

    _python(repo, "-m", "hearflow.workflow.dvcgen")
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    stage = stages[dvcgen.stage_name("embed", "tiny_energy")]
    assert "src/hearflow/embed/models/tiny.py" in stage["deps"]
    assert all(f"data/tasks/16000/{task}" in stage["deps"] for task in tasks)
    assert not any(m in d for d in stage["deps"] for m in ("ssl.py", "crepe.py", "logmel.py", "passt.py"))
    assert "models.tiny_energy.module" in stage["params"]
    assert all(f"results/probe/tiny_energy/{task}/scores.json" in stages["probe"]["cmd"] for task in tasks)

    code = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from hearflow.embed.job import embed_task
        from tests.conftest import make_task
        root = Path(sys.argv[1])
        task = make_task(root / "tasks", sample_rate=16000)
        out = embed_task(task.root, root / "member", module="tiny", options={}, progress=False)
        print(json.dumps(json.loads((out / "provenance.json").read_text())))
    """)
    provenance = json.loads(_python(repo, "-c", code, str(tmp_path)).stdout)
    assert provenance["module"] == "tiny" and provenance["embedding_size"] == 2
    assert (tmp_path / "member" / "last" / "test.embeddings.npy").is_file()
