"""Dotted params keys as a suite sees them: a key's value with the suite's overrides merged
in (`setting`), and the params.yaml keys that value is made of (`key_sources`, DVC's `params:`).

    setting(params, "probe.engine")        # the active suite's value
    key_sources(params, "configs.gura_cat") # ["configs.gura_cat", "suites.demo.substitutes.hubert_xlarge", ...]

Read by the rule registry (hearflow.workflow.rules), the params loader (hearflow.workflow.config)
and the dvc.yaml generator; imports nothing of hearflow.
"""

from __future__ import annotations

import copy

OVERRIDABLE = ("probe", "ensemble", "embed", "report")  # params sections a suite's `overrides` may change


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


_MISSING = object()


def _get(d, parts):
    for p in parts:
        if not (isinstance(d, dict) and p in d):
            return _MISSING
        d = d[p]
    return d


def setting(params: dict, key: str):
    """The value of a dotted params key as the active suite sees it: a key of an overridable
    section (probe, ensemble, embed, report) with the suite's overrides merged in. KeyError if absent."""
    parts = key.split(".")
    value = _get(params, parts)
    if parts[0] in OVERRIDABLE:
        over = _get(params["suites"][params["suite"]]["overrides"], parts)
        if over is not _MISSING:
            value = deep_merge(value, over) if isinstance(value, dict) and isinstance(over, dict) else over
    if value is _MISSING:
        raise KeyError(f"params: no key {key!r}")
    return value


def has_setting(params: dict, key: str) -> bool:
    try:
        setting(params, key)
    except KeyError:
        return False
    return True


def key_sources(params: dict, key: str) -> list[str]:
    """The params.yaml keys the value of `setting(params, key)` is made of, for DVC `params:`.

    A key the suite overrides (in part) is listed leaf by leaf, each overridden leaf as its
    `suites.<suite>.overrides...` key; `configs.<name>` also brings the suite's substitutes of
    its members and, when it takes the default, `ensemble.dim` (what make_plan builds it from).
    """
    suite = params["suite"]
    parts = key.split(".")
    out = []
    if parts[0] in OVERRIDABLE:
        base = _get(params, parts)
        over = _get(params["suites"][suite]["overrides"], parts)
        opath = f"suites.{suite}.overrides.{key}"

        def walk(b, o, bpath, opath):
            if not (isinstance(b, dict) and isinstance(o, dict)):
                yield opath
                return
            for k, v in b.items():
                if k in o:
                    yield from walk(v, o[k], f"{bpath}.{k}", f"{opath}.{k}")
                else:
                    yield f"{bpath}.{k}"
            yield from (f"{opath}.{k}" for k in o if k not in b)

        out = [key] if over is _MISSING else list(walk(base, over, key, opath))
    else:
        out = [key]
    if parts[0] == "configs" and len(parts) == 2:
        cfg = params["configs"][parts[1]]
        subs = params["suites"][suite]["substitutes"]
        out += [f"suites.{suite}.substitutes.{m['model']}" for m in cfg["members"] if m["model"] in subs]
        if cfg["combine"] != "single" and "dim" not in cfg:
            out += key_sources(params, "ensemble.dim")
    return out
