"""The probe's protocol module: torch-free, heareval's own grid, one result schema.

PYTHONPATH=src .venv/bin/python -m pytest tests/test_probe_protocol.py -q
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hearflow.probe import ENGINES, ProbeSettings, probe_dirs
from hearflow.probe.heareval import _VALUE_NAMES
from hearflow.probe.protocol import (
    DEFAULT_EVENT_POSTPROCESSING,
    DEFAULT_GRID,
    GRID_CHOICES,
    TASK_SPECIFIC_GRID,
    best_point,
    engine_result,
    fold_result,
)
from tests.conftest import ROOT

# heareval's grid holds torch classes and functions; the probe names them by strings.
NAMES = _VALUE_NAMES


def _heareval_constants() -> dict[str, dict]:
    """PARAM_GRID, TASK_SPECIFIC_PARAM_GRID and EVENT_POSTPROCESSING_GRID as written in the
    installed heareval's source (read, not imported: it needs pytorch-lightning)."""
    assert importlib.metadata.version("heareval") == "2021.1.3"
    package = Path(importlib.util.find_spec("heareval").submodule_search_locations[0])
    tree = ast.parse((package / "predictions" / "task_predictions.py").read_text())

    def value(node):
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.List):
            return [value(v) for v in node.elts]
        if isinstance(node, ast.Attribute):  # torch.nn.BatchNorm1d -> "batchnorm"
            return NAMES[node.attr]
        return ast.literal_eval(node)

    wanted = ("PARAM_GRID", "TASK_SPECIFIC_PARAM_GRID", "EVENT_POSTPROCESSING_GRID")
    return {
        node.targets[0].id: value(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id in wanted
    }


def test_protocol_and_engine_registry_import_without_torch():
    code = (
        "import sys\n"
        "class NoTorch:\n"  # any `import torch` fails
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError(f'{name} is blocked here')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import hearflow.probe, hearflow.probe.protocol, hearflow.probe.events, hearflow.probe.heareval\n"
        "from hearflow.probe import ENGINES, expand_grid, task_grid\n"
        "meta = {'task_name': 't', 'split_mode': 'trainvaltest'}\n"
        "assert len(expand_grid(task_grid(None, meta), seed=42, max_points=8)) == 8\n"
        "assert 'torch' not in sys.modules\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    )
    assert res.returncode == 0, res.stderr


def test_default_grid_is_heareval_s_published_grid():
    """DEFAULT_GRID, the task-specific grid and the event post-processing grid are
    heareval 2021.1.3's own, and so is every key params.yaml's probe.grid lists (the
    paper's protocol; dvcgen tracks each listed key as a DVC param)."""
    heareval = _heareval_constants()
    assert {k: v for k, v in DEFAULT_GRID.items() if k != "shuffle_train"} == heareval["PARAM_GRID"]
    assert DEFAULT_GRID["shuffle_train"] == [False]  # the one key heareval lacks: its file order
    assert TASK_SPECIFIC_GRID == heareval["TASK_SPECIFIC_PARAM_GRID"]
    assert DEFAULT_EVENT_POSTPROCESSING == heareval["EVENT_POSTPROCESSING_GRID"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["probe"]["grid"] == {k: heareval["PARAM_GRID"][k] for k in params["probe"]["grid"]}


def test_grid_names_are_the_model_s_torch_objects():
    from hearflow.probe.stacked import HIDDEN_NORMS, INITIALIZATIONS

    assert tuple(HIDDEN_NORMS) == GRID_CHOICES["hidden_norm"]
    assert tuple(INITIALIZATIONS) == GRID_CHOICES["initialization"]
    # each name stands for heareval's torch object of that name
    assert all(NAMES[obj.__name__] == name for name, obj in {**HIDDEN_NORMS, **INITIALIZATIONS}.items())


def test_engine_registry_is_the_schema_s():
    from hearflow.probe.job import LAYER_ENGINES

    schema = yaml.safe_load((ROOT / "schemas" / "params.schema.yaml").read_text())
    probe = schema["$defs"]["probe"]["properties"]
    assert probe["engine"]["enum"] == list(ENGINES)
    assert probe["layers"]["properties"]["engine"]["enum"] == list(LAYER_ENGINES)
    assert set(LAYER_ENGINES) <= set(ENGINES)
    with pytest.raises(ValueError, match="probe.engine 'svm' is not available"):
        probe_dirs("svm", [], ProbeSettings())
    with pytest.raises(ValueError, match="needs probe.heareval_python"):
        probe_dirs("heareval", [Path("x")], ProbeSettings())


def test_engine_result_means_and_sample_std_over_folds():
    folds = [
        fold_result(["fold00"], {"top1_acc": 0.5, "mAP": 0.25}, best_epoch=3, validation_score=0.4, epochs=7),
        fold_result(["fold01"], {"top1_acc": 1.0, "mAP": 0.75}, best_epoch=5, validation_score=0.9, epochs=9),
    ]
    assert list(folds[0]) == ["test", "metrics", "epochs", "best_epoch", "validation_score"]
    result = engine_result("t", "native", 42, folds, {"lr": 1e-3}, grid_points=8)
    assert list(result) == [
        "task",
        "engine",
        "seed",
        "metrics",
        "metrics_std",
        "folds",
        "hparams",
        "validation_score",
        "grid_points_tried",
    ]
    assert result["metrics"] == {"top1_acc": 0.75, "mAP": 0.5}
    # sample std of two values a, b is |a - b| / sqrt(2)
    assert math.isclose(result["metrics_std"]["top1_acc"], 0.5 / math.sqrt(2))
    assert math.isclose(result["metrics_std"]["mAP"], 0.5 / math.sqrt(2))
    assert result["validation_score"] == 0.4  # the first split's: where the grid search ran

    post = {"median_filter_ms": 250, "min_duration": 125}
    one = [fold_result(["test"], {"segment_1s_er": 0.2}, best_epoch=1, validation_score=0.3, postprocessing=post)]
    assert list(one[0]) == ["test", "metrics", "best_epoch", "validation_score", "postprocessing"]
    single = engine_result("e", "linear", 7, one, {}, postprocessing=post)
    assert single["metrics_std"] == {"segment_1s_er": 0.0} and single["postprocessing"] == post
    assert "grid_points_tried" not in single


def test_best_point_is_the_first_of_the_best():
    assert best_point([0.5, 0.9, 0.9, 0.1], maximize=True) == 1
    assert best_point([0.5, 0.1, 0.9, 0.1], maximize=False) == 1


def test_parameter_grid_order_is_scikit_learn_s():
    """hearflow's grid expansion against scikit-learn's ParameterGrid itself (heareval's)."""
    from sklearn.model_selection import ParameterGrid

    from hearflow.probe.protocol import parameter_grid

    for grid in (DEFAULT_GRID, DEFAULT_EVENT_POSTPROCESSING, {"b": [2, 1], "a": ["x", "y", "z"], "c": [None]}):
        assert parameter_grid(grid) == list(ParameterGrid(grid))
