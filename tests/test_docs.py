"""README.md and docs/*.md are true when typed: the README stays a five-minute read, every
relative link resolves, and the commands they show that are safe to run do run.

Commands come from the fenced ```bash blocks, one per line (a `&&` chain split into its
parts, `# comments` dropped), and are matched by pattern; anything else (a real run, a
download, a push) is left alone. `.venv/bin/` and a bare `python`, `snakemake` or `dvc` stand
for the environment these tests run in (sys.executable's), as after `. .venv/bin/activate`.

- `snakemake ... -n ...` (a dry run): in a clean copy of the checkout (tests/conftest.py's
  copy_checkout, as tests/test_workflow.py plans), a few seconds each.
- `python -m hearflow.<module> --help`: with this interpreter, in the checkout.
- `dvc status`: in a clean copy made a git repository (DVC needs one), without data or DVC
  cache. There it lists every output as not in cache and exits 0 (about 2 s); the exit code is
  what is checked, since a clean status needs the built data (tests/test_dvc.py checks that
  after a real repro).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_checkout

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 250
BIN = Path(sys.executable).parent  # the venv: `snakemake`, `dvc`

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)

# What is run, by pattern on one command (after `.venv/bin/` is dropped).
DRY_RUN = re.compile(r"^snakemake(\s.*)?\s(-n|--dry-run)(\s.*)?$")
HELP = re.compile(r"^python -m (hearflow(?:\.\w+)+) --help$")
DVC_STATUS = re.compile(r"^dvc status$")
# At least this many distinct commands of each kind are shown (and so run).
MIN_COMMANDS = {"dry_run": 3, "help": 4, "dvc_status": 1}


def _prose(text: str) -> str:
    """The Markdown without fenced blocks and inline code (where a link is not a link)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    """Every heading anchor of a page (a repeated heading gets -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(page: Path) -> list[str]:
    """Relative link targets of a page (web links and mail addresses left out)."""
    return [t for t in LINK.findall(_prose(page.read_text())) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def _commands(page: Path) -> list[str]:
    """The shell commands of a page's ```bash blocks, one per `&&` part, comments dropped."""
    out = []
    for lang, body in FENCE.findall(page.read_text()):
        if lang not in ("bash", "sh"):
            continue
        for line in body.splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            out += [part.strip() for part in line.split(" && ") if part.strip()]
    return out


def _kind(command: str) -> str | None:
    command = command.removeprefix(".venv/bin/")
    if DRY_RUN.match(command):
        return "dry_run"
    if HELP.match(command):
        return "help"
    if DVC_STATUS.match(command):
        return "dvc_status"
    return None


def _runnable() -> dict[str, list[str]]:
    """{kind: [command, ...]}: each distinct command of README.md and docs/ that is run."""
    out: dict[str, list[str]] = {k: [] for k in MIN_COMMANDS}
    for page in PAGES:
        for command in _commands(page):
            kind = _kind(command)
            if kind and command not in out[kind]:
                out[kind].append(command)
    return out


RUNNABLE = _runnable()


def _env(cwd: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(cwd / "src"), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("SNAKEMAKE_PROFILE", None)  # the commands name their executor
    return env


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=300)


def _argv(command: str) -> list[str]:
    """The command's words, its program resolved in this environment."""
    words = shlex.split(command.removeprefix(".venv/bin/"))
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    if words[0] == "snakemake":
        return [sys.executable, "-m", "snakemake", *words[1:]]
    return [str(BIN / words[0]), *words[1:]]


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory) -> Path:
    """What a fresh clone holds, without DVC's cache (tests/test_workflow.py's dry-run copy)."""
    return copy_checkout(tmp_path_factory.mktemp("docs") / "repo", exclude=(".dvc/cache", ".dvc/tmp"))


@pytest.fixture(scope="module")
def git_copy(tmp_path_factory) -> Path:
    """A clean copy that is a git repository (DVC finds its root through git)."""
    repo = copy_checkout(tmp_path_factory.mktemp("docs-git") / "repo", exclude=(".dvc/cache", ".dvc/tmp"))
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    return repo


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move topics to docs/"


def test_readme_keeps_the_commands_ci_parses():
    """.ci/run takes the main job from the first ```bash block after `## Two commands` and the
    test command from the line after `<!-- test-command -->` (fence lines skipped)."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## Two commands"))
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```bash"))
    assert lines[fence + 1].startswith("./bootstrap.sh") and "dvc repro" in lines[fence + 1]
    marker = lines.index("<!-- test-command -->")
    test_command = next(line for line in lines[marker + 1 :] if not line.startswith("```"))
    assert test_command.startswith("./bootstrap.sh --heareval && ")
    assert '-m "not e2e"' in test_command and test_command.endswith("-m e2e")


def test_readme_table_excerpt_is_verbatim_from_the_committed_table():
    """The README quotes rows of a committed table: each quoted row is a line of that file, so
    regenerated results that change the table fail here until the excerpt is updated."""
    text = README.read_text()
    source = re.search(r"verbatim from\s+`(reports/tables/[\w.]+\.md)`", text)
    assert source, "the README names the table it quotes"
    table = (ROOT / source.group(1)).read_text().splitlines()
    rows = [line for line in text.splitlines() if line.startswith("| demo_")]
    assert len(rows) >= 3 and all(row in table for row in rows), [row for row in rows if row not in table]


def test_readme_links_every_docs_page():
    linked = {(README.parent / t.split("#")[0]).resolve() for t in _links(README)}
    assert DOCS, "docs/ has no page"
    missing = [p.relative_to(ROOT).as_posix() for p in DOCS if p.resolve() not in linked]
    assert not missing, f"README.md links no {missing} (its list of docs pages)"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    """Every relative link (and image) names an existing file, and its #anchor a heading."""
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT).as_posix()}")
    assert not broken, f"{page.relative_to(ROOT).as_posix()}: " + "; ".join(broken)


def test_the_pages_show_commands_that_run():
    """The pattern match finds the commands: a change of form that hides them fails here."""
    counts = {kind: len(commands) for kind, commands in RUNNABLE.items()}
    assert all(counts[k] >= n for k, n in MIN_COMMANDS.items()), (counts, MIN_COMMANDS)


@pytest.mark.parametrize("command", RUNNABLE["dry_run"])
def test_dry_run(command, clean_copy):
    res = _run(_argv(command), clean_copy)
    assert res.returncode == 0, f"{command}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    assert "This was a dry-run" in res.stdout + res.stderr


@pytest.mark.parametrize("command", RUNNABLE["help"])
def test_help(command):
    res = _run(_argv(command), ROOT)
    assert res.returncode == 0, f"{command}:\n{res.stderr[-3000:]}"
    assert "usage:" in res.stdout


@pytest.mark.parametrize("command", RUNNABLE["dvc_status"])
def test_dvc_status(command, git_copy):
    res = _run(_argv(command), git_copy)
    assert res.returncode == 0, f"{command}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
