"""How sure a score is: intervals per cell, paired differences, comparisons across commits.

    cell = interval(values, replicates)          # values [S] per seed, replicates [S, B]
    diff = paired(a_values, a_reps, b_values, b_reps)   # b minus a, same seeds and resamples
    verdict = compare(old_cell, new_cell, higher_is_better=True)

A cell (configuration x task x metric) is scored by S probe seeds on one test set; its value is
the mean over seeds. Two things make it noisy, and the interval holds both:

- the test clips, a finite sample of the task's clips: each seed's scores are recomputed on B
  bootstrap resamples of the test clips (hearflow.probe.resamples: the same resamples for every seed
  and configuration of a task and fold, so that differences are paired). The clip part of the
  standard error is the std over resamples of the seed mean, `se_clip`;
- the training (initialisation, dropout, batch order): `se_seed = s / sqrt(S)`, s the sample
  std of the S per-seed scores (nothing is known of it with one seed: 0; with one seed and no
  resamples the cell has no interval).

The interval is `mean ± t(0.975, nu) * sqrt(se_clip² + se_seed²)`, nu the Welch-Satterthwaite
degrees of freedom of that sum (S - 1 for the seed part, the clip part taken as known), so a
seed part estimated from 3 seeds widens the interval as it should. A paired difference of two
configurations on one task (same seeds, same resamples) is the same computation on per-seed
differences and per-resample differences; it is "significant" when its interval excludes 0.
Across commits the resamples are not shared: `compare` takes the two cells as independent,
`se = sqrt(se_old² + se_new²)` (conservative where the test clips are the same).
tests/test_stats.py checks the stated coverage on a synthetic problem with known noise.
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95


def _t(df: float) -> float:
    if not math.isfinite(df):
        return 1.959963984540054
    from scipy.stats import t

    return float(t.ppf(0.5 + LEVEL / 2, df))


def interval(values, replicates=None) -> dict:
    """{"mean", "std" (over seeds), "se", "low", "high", "seeds", "df"} of one cell: `values`
    [S] per-seed scores, `replicates` [S, B] the same scores on B clip resamples (None or empty:
    no clip part). A seed whose score is undefined (NaN: e.g. no event predicted) is left out,
    as the mean over seeds leaves it out; "seeds" counts the others. An infinite score (d' at
    AUC 1) leaves the cell without a value, as metrics.json does."""
    v = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(v)
    v = v[keep]
    s = len(v)
    if s == 0 or np.isinf(v).any():  # nothing defined, or a score at its limit (d' of a perfect split)
        return {"mean": None, "std": None, "se": None, "low": None, "high": None, "seeds": s, "df": None}
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if s > 1 else 0.0
    var_seed = std**2 / s
    var_clip = 0.0
    if replicates is not None and np.size(replicates):
        reps = np.asarray(replicates, dtype=np.float64).reshape(len(keep), -1)[keep]
        seed_means = reps.mean(axis=0)
        seed_means = seed_means[np.isfinite(seed_means)]
        var_clip = float(seed_means.var(ddof=1)) if len(seed_means) > 1 else 0.0
    if s == 1 and (replicates is None or not np.size(replicates)):  # nothing is known of the noise
        return {"mean": mean, "std": None, "se": None, "low": None, "high": None, "seeds": 1, "df": None}
    total = var_seed + var_clip
    df = math.inf if s == 1 or var_seed == 0 else total**2 / (var_seed**2 / (s - 1))
    half = _t(df) * math.sqrt(total)
    return {
        "mean": mean,
        "std": std,
        "se": math.sqrt(total),
        "low": mean - half,
        "high": mean + half,
        "seeds": s,
        "df": None if not math.isfinite(df) else df,
    }


def paired(a_values, a_replicates, b_values, b_replicates) -> dict:
    """b minus a on one task: interval() of the per-seed and per-resample differences (seeds
    paired by position, resamples by index), plus "significant": the interval excludes 0."""
    a, b = np.asarray(a_values, dtype=np.float64), np.asarray(b_values, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired: {len(a)} seeds against {len(b)}; both sides need the same seeds")
    reps = None
    if a_replicates is not None and b_replicates is not None and np.size(a_replicates) and np.size(b_replicates):
        ra, rb = np.asarray(a_replicates, dtype=np.float64), np.asarray(b_replicates, dtype=np.float64)
        if ra.shape == rb.shape:
            reps = rb - ra
    out = interval(b - a, reps)  # a seed undefined on either side is left out
    out["significant"] = out["low"] is not None and (out["low"] > 0 or out["high"] < 0)
    return out


def compare(old: dict, new: dict, *, higher_is_better: bool = True) -> dict:
    """new minus old for two cells of different runs (interval() dicts, or {"mean", "se"}):
    {"old", "new", "diff", "low", "high", "verdict": better | worse | within noise | n/a}."""
    if old.get("mean") is None or new.get("mean") is None:
        return {
            "old": old.get("mean"),
            "new": new.get("mean"),
            "diff": None,
            "low": None,
            "high": None,
            "verdict": "n/a",
        }
    diff = new["mean"] - old["mean"]
    if old.get("se") is None and new.get("se") is None:  # one seed, no resamples: noise unknown
        verdict = "same" if diff == 0 else "no interval"
        return {"old": old["mean"], "new": new["mean"], "diff": diff, "low": None, "high": None, "verdict": verdict}
    se = math.sqrt((old.get("se") or 0.0) ** 2 + (new.get("se") or 0.0) ** 2)
    half = _t(math.inf) * se
    low, high = diff - half, diff + half
    if low > 0 or high < 0:
        verdict = "better" if (low > 0) == higher_is_better else "worse"
    else:
        verdict = "within noise"
    return {"old": old["mean"], "new": new["mean"], "diff": diff, "low": low, "high": high, "verdict": verdict}
