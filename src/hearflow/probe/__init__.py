"""HEAR's downstream probe: heareval 2021.1.3's protocol, and the engines that run it.

    from hearflow.probe import ENGINES, ProbeSettings, probe_task
    result = probe_task(Path("embeddings/<model>/<task>"))          # heareval's grid, native
    [result] = ENGINES["linear"]([emb_dir], ProbeSettings(seed=42))

Probe phase. Reads: results/configs/<config>/<task>/ (and, for layer-wise probes,
results/members/<model>/<task>/layers/NN/). Writes: results/probe/<config>/<task>/scores.json,
results/probe_layers/<model>/<task>/scores.json, and the wide jobs' cache under
results/cache/probe/. Rules (rules/probe.smk): probe, probe_wide, probe_layers; the job
functions are in `job` (run_probe, run_probes, run_layer_probe).

Modules, one concern each:
- protocol: heareval's grid (DEFAULT_GRID), splits, selection and the result every engine
  returns (engine_result); torch-free.
- events: event post-processing (frame probabilities -> events); torch-free.
- engines: ENGINES = {name: fn(emb_dirs, ProbeSettings) -> [result]} and probe_dirs, the
  one dispatch on a params engine name; torch-free.
- native: the native engine (probe_task): grid search, re-training, testing.
- data (embedding sets), objective (loss, scores, validation; prepare), stacked (heareval's
  model, G of them stacked), kernels (CPU kernels), train (heareval's training loop),
  schedule (jobs shared with forked workers): the native engine's parts.
- linear, heareval: the other two engines (heareval_launch: heareval's runner, run as a script
  in its own environment).
- job: the probe jobs (one task, every task of a config with its cache, per layer).

The engines' entry points (probe_task, prepare, linear_probe, heareval_probe) are imported
on first use: importing this package or its torch-free modules does not import torch.
"""

from __future__ import annotations

from hearflow.probe.engines import ENGINES, ProbeSettings, probe_dirs
from hearflow.probe.events import events_from_frames
from hearflow.probe.protocol import (
    DEFAULT_EVENT_POSTPROCESSING,
    DEFAULT_GRID,
    RNG_MODES,
    TASK_SPECIFIC_GRID,
    data_splits,
    engine_result,
    expand_grid,
    task_grid,
)

__all__ = [
    "DEFAULT_EVENT_POSTPROCESSING",
    "DEFAULT_GRID",
    "ENGINES",
    "RNG_MODES",
    "TASK_SPECIFIC_GRID",
    "ProbeSettings",
    "data_splits",
    "engine_result",
    "events_from_frames",
    "expand_grid",
    "heareval_probe",
    "linear_probe",
    "prepare",
    "probe_dirs",
    "probe_task",
    "task_grid",
]


def __getattr__(name: str):
    """The engines' entry points, imported on first use."""
    if name == "probe_task":
        from hearflow.probe import native as module
    elif name == "prepare":
        from hearflow.probe import objective as module
    elif name == "linear_probe":
        from hearflow.probe import linear as module
    elif name == "heareval_probe":
        from hearflow.probe import heareval as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
