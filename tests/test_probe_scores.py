"""hearflow.probe.scores: heareval.score imported with its optional libraries deferred.

The expected values come from heareval itself: the same score functions of heareval.score
imported the plain way (its top-level imports all run) in a separate interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# Every score heareval 2021.1.3 has, on fixed random predictions: scene scores on a
# multilabel matrix (aucroc, d', mAP) and a multiclass one (top1, pitch, chroma), event
# scores on two files' events (sed_eval through dcase_util's containers).
SCORE_ALL = r"""
import json, sys
import numpy as np
{load}
labels = {{str(n): i for i, n in enumerate(range(60, 72))}}
rng = np.random.default_rng(0)
y_multi = (rng.random((40, 12)) < 0.3).astype(np.float32); y_multi[0] = 1; y_multi[1] = 0
p_multi = rng.random((40, 12)).astype(np.float32)
y_class = np.eye(12, dtype=np.float32)[rng.integers(0, 12, 40)]
p_class = rng.random((40, 12)).astype(np.float32)
events_true = {{"a.wav": [{{"label": "60", "start": 100.0, "end": 700.0}}, {{"label": "64", "start": 900.0, "end": 1500.0}}],
               "b.wav": [{{"label": "67", "start": 0.0, "end": 400.0}}]}}
events_pred = {{"a.wav": [{{"label": "60", "start": 150.0, "end": 650.0}}],
               "b.wav": [{{"label": "67", "start": 20.0, "end": 420.0}}, {{"label": "71", "start": 500.0, "end": 900.0}}]}}
out = {{}}
for name, cls in sorted(score.available_scores.items()):
    f = cls(label_to_idx=labels)
    if name.startswith(("event_", "segment_")):
        value = f(events_pred, events_true)
    elif name in ("mAP", "d_prime", "aucroc"):
        value = f(p_multi, y_multi)
    else:
        value = f(p_class, y_class)
    out[name] = value[0][1] if isinstance(value, tuple) else value
out["_loaded"] = sorted(m for m in ("sklearn.metrics", "sed_eval", "dcase_util.containers", "scipy.stats") if m in sys.modules)
print(json.dumps(out))
"""


def _run(load: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    res = subprocess.run(
        [sys.executable, "-c", SCORE_ALL.format(load=load)], capture_output=True, text=True, env=env, check=False
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_deferred_imports_give_heareval_s_own_scores():
    plain = _run("import heareval.score as score")
    deferred = _run("from hearflow.probe.scores import heareval_score; score = heareval_score()")
    assert set(plain) - {"_loaded"} >= {"top1_acc", "pitch_acc", "chroma_acc", "mAP", "d_prime", "aucroc"}
    assert any(k.startswith("event_") for k in plain)
    for name in plain:
        if name != "_loaded":
            assert deferred[name] == plain[name], name  # the same floats, bit for bit
    assert deferred["_loaded"] == plain["_loaded"]  # every library was imported when its score ran


def test_a_top1_task_imports_none_of_the_deferred_libraries():
    """What a multiclass probe job loads: heareval.score and Top1Accuracy, and not
    scikit-learn, scipy.stats, sed_eval or dcase_util."""
    code = (
        "import sys, numpy as np\n"
        "from hearflow.probe.scores import heareval_score\n"
        "s = heareval_score()\n"
        "f = s.available_scores['top1_acc'](label_to_idx={'a': 0, 'b': 1})\n"
        "assert f(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32)) == 1.0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'sed_eval', 'dcase_util')"
        " or m == 'scipy.stats'))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == "[]"
