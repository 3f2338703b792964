"""heareval's own score functions, imported without the libraries a task never calls.

    from hearflow.probe.scores import heareval_score
    score = heareval_score()          # the module heareval.score (heareval 2021.1.3)
    score.available_scores["top1_acc"](label_to_idx=...)

heareval/score.py imports sed_eval, dcase_util, scikit-learn's metrics and scipy.stats at
its top, although only the event scores call the first two, mAP, d' and AUC the third, and
d' the fourth. On a 2-core machine those imports are about 1.2 s of every probe job's start
(`python -X importtime -c "import heareval.score"`: sklearn.metrics 0.7 s, scipy.stats
0.36 s, sed_eval 0.12 s), more than a small probe's training. `heareval_score()` imports
heareval.score with those four modules stood in for by deferred names: each attribute the
module binds (`sed_eval.sound_event.SegmentBasedMetrics`, `average_precision_score`,
`stats.norm`, `MetaDataContainer`) imports the real library the first time it is called.
heareval's code runs unchanged; the stand-ins leave sys.modules once heareval.score is
loaded, so every other import gets the real libraries. A module already imported when
heareval.score loads is used as it is.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# The modules heareval/score.py imports at its top that only some scores call.
DEFERRED = ("sed_eval", "dcase_util.containers", "sklearn.metrics", "scipy.stats")


class _DeferredName:
    """`module.path...`: resolved (the real module imported) when called or read further."""

    def __init__(self, module: str, path: tuple[str, ...]):
        self._module, self._path = module, path

    def resolve(self) -> Any:
        obj = importlib.import_module(self._module)
        for name in self._path:
            obj = getattr(obj, name)
        return obj

    def __getattr__(self, name: str) -> _DeferredName:
        if name.startswith("__"):
            raise AttributeError(name)
        return _DeferredName(self._module, (*self._path, name))

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<deferred {'.'.join((self._module, *self._path))}>"


class _DeferredModule(types.ModuleType):
    def __getattr__(self, name: str) -> _DeferredName:
        if name.startswith("__"):
            raise AttributeError(name)
        return _DeferredName(self.__name__, (name,))


def heareval_score() -> types.ModuleType:
    """The module heareval.score, its optional libraries imported on first use (module doc)."""
    if "heareval.score" in sys.modules:
        return sys.modules["heareval.score"]
    stand_ins = {name: _DeferredModule(name) for name in DEFERRED if name not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        return importlib.import_module("heareval.score")
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
