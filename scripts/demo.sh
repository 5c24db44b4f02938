#!/usr/bin/env bash
# `make demo`: bring the stack up, submit one real psi4 job (water, HF/STO-3G) with the CLI, wait, fetch its
# output and print the energy.
# The stack stays up afterwards; `make stop` stops it.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${LERULI_STACK_DIR:-$REPO_DIR/.stack}"
LERULI="$REPO_DIR/.venv/bin/leruli"
PORT="${LERULI_DEMO_PORT:-4300}"

"$REPO_DIR/scripts/stack.sh" up

# A researcher's shell: the gateway, their API secret, their group's S3.
# shellcheck disable=SC1091
. "$STACK_DIR/s3.env"
group_field() { "$REPO_DIR/.venv/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$STACK_DIR/demo-group.json" "$1"; }
export LERULI_BASEURL="http://127.0.0.1:$PORT"
LERULI_API_SECRET="$(group_field api_secret)"; export LERULI_API_SECRET
LERULI_GROUP_TOKEN="$(group_field group_token)"; export LERULI_GROUP_TOKEN

job_dir="$STACK_DIR/demo-jobs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$job_dir"
cd "$job_dir"
# Water at O-H 0.96 A and H-O-H 104.5 degrees, RHF/STO-3G with exact (pk) integrals.
cat > input.dat <<'PSI4'
molecule water {
O
H 1 0.96
H 1 0.96 2 104.5
}

set basis sto-3g
set scf_type pk

energy('scf')
PSI4

echo "== leruli submit --memory 2000 psi4 1.3.2 psi4 -n 1 input.dat output.dat (in $job_dir)"
submitted=$(date +%s.%N)
"$LERULI" submit --memory 2000 psi4 1.3.2 psi4 -n 1 input.dat output.dat
while true; do
    state="$("$LERULI" status)"
    case "$state" in Completed*|Failed*|Crashed*|Cancelled*) break ;; esac
    sleep 0.5
done
echo "== leruli status: $state ($(awk -v a="$submitted" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s after submit)"
"$LERULI" get
if [ "$state" != Completed ]; then
    echo "demo.sh: the job did not complete; the end of its joberr.txt:" >&2
    tail -20 joberr.txt >&2 || true
    exit 1
fi
energy="$(awk '/@RHF Final Energy:/ { print $4 }' output.dat)"
[ -n "$energy" ] || { echo "demo.sh: no energy in output.dat:" >&2; tail -20 output.dat >&2; exit 1; }
echo "== water, RHF/STO-3G (psi4 1.3.2): E = $energy Eh (expected about -74.9633190526)"

cat <<TXT

The stack is still running:
  Prefect UI   http://127.0.0.1:$PORT/prefect/  (password: the operator secret in $STACK_DIR/demo-server/operator-secret)
  REST API     http://127.0.0.1:$PORT/v1/  (docs at http://127.0.0.1:$PORT/docs)
  group secrets $STACK_DIR/demo-group.json
Stop everything with: make stop
TXT
