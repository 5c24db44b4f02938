#!/usr/bin/env bash
# `make demo`: bring the stack up, submit one real job with the CLI, wait, fetch and print its output.
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
printf 'H 0.0 0.0 0.0\nH 0.0 0.0 0.74\n' > molecule.xyz

echo "== leruli submit leruli-busybox 1.0 ... (in $job_dir)"
submitted=$(date +%s.%N)
"$LERULI" submit --cores 2 leruli-busybox 1.0 \
    'echo "atoms: $(wc -l < molecule.xyz), threads: $OMP_NUM_THREADS, host: $(hostname)" > result.txt'
while true; do
    state="$("$LERULI" status)"
    case "$state" in Completed*|Failed*|Crashed*|Cancelled*) break ;; esac
    sleep 0.5
done
echo "== leruli status: $state ($(awk -v a="$submitted" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s after submit)"
"$LERULI" get
echo "== result.txt:"
cat result.txt

cat <<TXT

The stack is still running:
  Prefect UI   http://127.0.0.1:$PORT/prefect/  (password: the operator secret in $STACK_DIR/demo-server/operator-secret)
  REST API     http://127.0.0.1:$PORT/v1/  (docs at http://127.0.0.1:$PORT/docs)
  group secrets $STACK_DIR/demo-group.json
Stop everything with: make stop
TXT
