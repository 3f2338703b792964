"""envs/*.yaml (for --sdm conda) pin exactly what pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.conftest import ROOT


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line.strip())
        assert m, f"not an exact pin: {line!r}"
        out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_conda_envs_are_valid_and_match_the_project_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    project_pins = _pins(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        project_pins |= _pins(extra)
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert {e.stem for e in envs} >= {"data", "models", "probe", "report", "heareval"}
    # The heareval runner's env has its own stack (numpy < 2 for pytorch-lightning 1.9.5).
    runner = [
        line
        for line in (ROOT / "requirements-heareval-runner.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for env in envs:
        pins = _pins(runner) if env.stem == "heareval" else project_pins
        spec = yaml.safe_load(env.read_text())
        assert set(spec) == {"name", "channels", "dependencies"}, env
        assert "python=3.11" in spec["dependencies"] and "pip" in spec["dependencies"], env
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        for name, version in _pins(pip).items():
            assert pins.get(name) == version, f"{env.name}: {name}=={version}, pinned {pins.get(name)}"
        if env.stem == "heareval":
            assert _pins(pip) == pins, "envs/heareval.yaml must list every pin of requirements-heareval-runner.txt"


def test_every_rule_names_an_existing_env():
    for smk in (ROOT / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"\.\./(envs/[^"]+)"', smk.read_text()):
            assert (ROOT / env).is_file(), f"{smk.name} names missing {env}"


def test_heareval_pin_agrees_everywhere():
    pin = (ROOT / "requirements-heareval.txt").read_text().strip()
    assert pin == "heareval==2021.1.3"
    assert pin in (ROOT / "envs" / "probe.post-deploy.sh").read_text()
