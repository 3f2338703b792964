#!/usr/bin/env bash
# Set up this checkout on a fresh machine: a virtualenv in .venv with the pinned packages
# (all the main job needs). With --heareval, also .venv-heareval: the official HEAR kit's
# predictions runner (probe.engine: heareval, and the tests that use it as the oracle).
# Idempotent: a second run only checks the pins. Needs Python 3.11 (python3.11 or python3).
#   ./bootstrap.sh && . .venv/bin/activate              # the main job
#   ./bootstrap.sh --heareval                           # the tests, or probe.engine: heareval
set -euo pipefail
cd "$(dirname "$0")"
heareval=0
for arg in "$@"; do
  case "$arg" in
    --heareval) heareval=1 ;;
    *) echo "bootstrap: unknown option $arg (known: --heareval)" >&2; exit 2 ;;
  esac
done
py=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$py" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"hearflow needs Python 3.11, found {sys.version.split()[0]}"'
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip==25.3"
# torch first, pinned, so no resolver ever picks a newer one that breaks torchaudio.
.venv/bin/python -m pip install -q "torch==2.9.1" "torchaudio==2.9.1"
# The official kit's runner (probe.engine: heareval, and the parity tests) in its own venv:
# pytorch-lightning 1.9.5 needs numpy < 2, which the project's own pins exclude. It is built
# beside the rest of .venv, once torch's wheels are in pip's cache (its torch comes from
# there): the two pip runs overlap their downloads and unpacking (issue 30: CI's set-up).
heareval_venv() {
  [ -x .venv-heareval/bin/python ] || "$py" -m venv .venv-heareval
  .venv-heareval/bin/python -m pip install -q --upgrade "pip==25.3"
  .venv-heareval/bin/python -m pip install -q "torch==2.9.1"
  .venv-heareval/bin/python -m pip install -q -r requirements-heareval-runner.txt
  .venv-heareval/bin/python -m pip install -q --no-deps -r requirements-heareval.txt
  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 .venv-heareval/bin/python -c 'import heareval.predictions.runner' \
    || { echo "bootstrap: .venv-heareval does not import heareval's runner; see the pip output above" >&2; return 1; }
}
if [ "$heareval" -eq 1 ]; then
  heareval_log=$(mktemp)
  heareval_venv >"$heareval_log" 2>&1 &
  heareval_pid=$!
  trap 'kill "$heareval_pid" 2>/dev/null || true' EXIT  # a failure below stops it too
fi
.venv/bin/python -m pip install -q -e ".[test,passt]"
.venv/bin/python -m pip install -q --no-deps -r requirements-heareval.txt
.venv/bin/python -c 'import torchcrepe, transformers, heareval.score, snakemake, dvc, snakemake_executor_plugin_slurm' 2>/dev/null \
  || { echo "bootstrap: the environment does not import; see the pip output above" >&2; exit 1; }
if [ "$heareval" -eq 0 ]; then
  echo "bootstrap: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'));" \
    "add --heareval for .venv-heareval (probe.engine: heareval, tests)"
  exit 0
fi
if ! wait "$heareval_pid"; then
  cat "$heareval_log" >&2
  rm -f "$heareval_log"
  echo "bootstrap: building .venv-heareval failed (its pip output is above)" >&2
  exit 1
fi
rm -f "$heareval_log"
echo "bootstrap: .venv and .venv-heareval ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
