#!/usr/bin/env bash
# `make test`: the whole test suite with the real parts running (see with-services.sh), which stops
# every part it started afterwards (parts that were already running stay).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/with-services.sh .venv/bin/python -m pytest "$@"
