"""params.yaml validation: one clear error naming the key, before anything runs."""

from __future__ import annotations

import copy

import pytest
import yaml

from hearflow.workflow.config import ParamsError, load_params, make_plan, validate_params
from tests.conftest import ROOT


@pytest.fixture()
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_committed_params_are_valid(params):
    validate_params(params)


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda p: p.update(bogus=1), "<top level>: Additional properties are not allowed ('bogus'"),
        (lambda p: p["probe"].update(lr=0.1), "probe: Additional properties are not allowed ('lr'"),
        (lambda p: p.update(seed="forty-two"), "seed: 'forty-two' is not of type 'integer'"),
        (lambda p: p["probe"]["grid"].update(max_epochs=["many"]), "probe.grid.max_epochs.0"),
        (
            lambda p: p["configs"]["cat_xwc"]["members"][0].update(model="hubert_xxl"),
            "configs.cat_xwc.members.0.model: unknown model 'hubert_xxl'",
        ),
        (lambda p: p["configs"]["crepe"].update(combine="sum"), "configs.crepe.combine"),
        (lambda p: p.update(suite="nope"), "suite: 'nope' is not defined under suites"),
        (
            lambda p: p["suites"]["demo"]["configs"].append("cat_xyz"),
            "suites.demo.configs.14: unknown config 'cat_xyz'",
        ),
        (lambda p: p["report"]["tables"]["table4_avg_vs_cat"].append("avg_zz"), "report.tables.table4_avg_vs_cat.2"),
        (
            lambda p: p["report"]["figures"]["tsne"]["models"].append("hubert_xxl"),
            "report.figures.tsne.models.2: unknown model 'hubert_xxl'",
        ),
        (
            lambda p: p["report"]["figures"]["ablations"].append(["cat_xw", "cat_zz"]),
            "report.figures.ablations.5.1: unknown config 'cat_zz'",
        ),
        (lambda p: p["report"]["figures"].update(layer_curves="yes"), "report.figures.layer_curves"),
    ],
)
def test_invalid_params_name_the_key(params, mutate, key):
    bad = copy.deepcopy(params)
    mutate(bad)
    with pytest.raises(ParamsError) as err:
        validate_params(bad)
    assert key in str(err.value)


def test_command_line_overrides_are_validated():
    with pytest.raises(ParamsError, match="suite: 'hear2022' is not defined"):
        load_params(ROOT / "params.yaml", {"suite": "hear2022"})


def test_demo_plan_substitutes_models_and_applies_overrides(params):
    plan = make_plan(params)
    assert plan.suite == "demo"
    assert set(plan.models) == {"hubert_standin", "wav2vec2_standin", "crepe_tiny", "logmel"}
    xwc = plan.configs["fusion_cat_xwc"]
    assert [m.model for m in xwc.members] == ["hubert_standin", "wav2vec2_standin", "crepe_tiny"]
    assert [m.view for m in xwc.members] == ["fusion", "fusion", "last"]
    assert xwc.dim == params["suites"]["demo"]["overrides"]["ensemble"]["dim"]
    assert plan.probe["grid"]["lr"] == params["probe"]["grid"]["lr"]  # untouched keys kept
    assert plan.probe["max_grid_points"] == 2
    assert plan.rates == (16000, 32000)  # logmel runs at 32 kHz


def test_hear2021_plan_uses_the_paper_checkpoints(params):
    params["suite"] = "hear2021"
    plan = make_plan(params)
    assert len(plan.tasks) == 20
    assert plan.models["hubert_xlarge"]["options"]["checkpoint"] == "facebook/hubert-xlarge-ll60k"
    assert plan.configs["fusion_cat_xwc"].dim == 1024
    assert plan.probe["max_grid_points"] == 8


def test_tasks_are_selected_by_name_or_category(params):
    params["suite"] = "hear2021"
    catalog = yaml.safe_load((ROOT / params["suites"]["hear2021"]["catalog"]).read_text())["tasks"]
    assert len(make_plan(params).tasks) == 20
    params["suites"]["hear2021"]["tasks"] = ["music", "esc50-v2.0.0-full"]
    tasks = make_plan(params).tasks
    music = {t for t, facts in catalog.items() if facts["category"] == "music"}
    assert set(tasks) == music | {"esc50-v2.0.0-full"} and len(music) >= 4


def test_unknown_task_selector_names_the_key(params):
    params["suites"]["hear2021"]["tasks"] = ["speech", "esc51"]
    with pytest.raises(ParamsError, match=r"suites.hear2021.tasks.1: 'esc51' is neither a task"):
        validate_params(params)


def test_catalog_lists_the_twenty_hear2021_task_directories():
    catalog = yaml.safe_load((ROOT / "catalog" / "hear2021.yaml").read_text())["tasks"]
    assert len(catalog) == 20
    for name, facts in catalog.items():
        assert facts["category"] in ("speech", "music", "general"), name
        assert facts["embedding_type"] in ("scene", "event"), name
        assert facts["evaluation"], name
    assert catalog["beehive_states_fold0-v2-full"]["md5"] == "f9e045f9b2ddf5643edc1143304c80aa"
    assert catalog["beehive_states_fold1-v2-full"]["md5"] == "8bced7ce8336bf23fd61c61f04aee109"
