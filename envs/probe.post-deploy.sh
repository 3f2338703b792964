#!/usr/bin/env bash
# Snakemake runs this inside the new probe environment (--sdm conda): heareval without its
# own pins, which cannot install on Python 3.11 (same pin as requirements-heareval.txt).
set -euo pipefail
pip install --no-deps heareval==2021.1.3
