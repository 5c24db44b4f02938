#!/usr/bin/env bash
# `make bench`: bench/run.py (its own server and node) with the real parts running (see
# scripts/with-services.sh), which stops only the parts it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/with-services.sh .venv/bin/python -m bench.run "$@"
