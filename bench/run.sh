#!/usr/bin/env bash
# make bench: every benchmark figure next to its reference, in one run. Not a test.
#
#   1. worker throughput against the bare engine, per-stage timings, AWS calls per job,
#      worker footprint and start-to-ready time, cost per audio hour
#      (crates/worker/examples/throughput.rs, which also records the figures for step-025);
#   2. setup speed: steps 010, 011, 020, 021 against a fresh private emulator, next to the same
#      24-call sequence made by aws-cli (one process per call) and by boto3 in one process.
#
# Environment: BENCH_COPIES (default 10) copies of the sample, BENCH_LONG_TIMES (default 8) for
# the generated long file, BENCH_ROUNDS (default 5) worker runs, each between two engine runs,
# BENCH_SETUP_RUNS (default 3) for the setup figures, BENCH_ONLY (worker or setup) for one
# part, BENCH_VENV (default .local/bench-venv) for aws-cli and boto3 (never the project's
# virtualenv), BENCH_BASELINES (default ../shared/bench) for the reference scripts.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
copies=${BENCH_COPIES:-10}
long_times=${BENCH_LONG_TIMES:-8}
rounds=${BENCH_ROUNDS:-5}
bench_venv=${BENCH_VENV:-$root/.local/bench-venv}
baselines=${BENCH_BASELINES:-$root/../shared/bench}

say() { printf '\n== %s\n' "$*"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU time taken by the hypervisor since the snapshot $1 of /proc/stat, as a share of all:
# on a virtual machine, engine runs minutes apart differ mostly by this.
cpu_snapshot() { head -1 /proc/stat; }
steal_since() {
    local now; now=$(cpu_snapshot)
    awk -v a="$1" -v b="$now" 'BEGIN {
        split(a, x); split(b, y); total = 0
        for (i = 2; i <= 9; i++) total += y[i] - x[i]
        printf "%.1f%%", total ? 100 * (y[9] - x[9]) / total : 0 }'
}

./scripts/common/bootstrap.sh
say "machine"
echo "cores: $(nproc), memory: $(free -m | awk '/^Mem:/ {print $2}') MiB, load average: $(load)"
echo "build: debug profile (as the steps and tests run here), target dir ${CARGO_TARGET_DIR:-target}"

only=${BENCH_ONLY:-all}
if [[ $only == all || $only == worker ]]; then
say "1. worker against the bare engine (${copies} copies of the sample, one ${long_times}x file, $rounds rounds)"
cpu=$(cpu_snapshot)
cargo run -q -p transcription-worker --example throughput -- "$copies" "$long_times" "$rounds"
echo "load average after the worker run: $(load); CPU steal during it: $(steal_since "$cpu")"
fi
[[ $only == all || $only == setup ]] || exit 0

say "2. setup speed: steps 010, 011, 020, 021 against a fresh emulator"
cargo build -q -p step-000-setup-configuration -p step-010-setup-iam-permissions \
    -p step-011-validate-iam-permissions -p step-020-create-sqs-resources \
    -p step-021-validate-sqs-resources
if [[ ! -x "$bench_venv/bin/aws" || ! -x "$bench_venv/bin/python" ]] \
    || ! "$bench_venv/bin/python" -c 'import boto3' 2>/dev/null; then
    echo "installing aws-cli and boto3 into $bench_venv (reference only, not the project .venv)"
    python3 -m venv "$bench_venv"
    "$bench_venv/bin/pip" install -q awscli boto3
fi
for script in baseline-awscli.sh baseline-inprocess.py; do
    if [[ ! -f $baselines/$script ]]; then
        echo "error: the reference script $baselines/$script is missing" >&2
        echo "hint: set BENCH_BASELINES to the folder holding baseline-awscli.sh and baseline-inprocess.py" >&2
        exit 1
    fi
done
if ! command -v bc >/dev/null; then
    echo "installing bc, which the aws-cli reference script uses"
    if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get install -y -qq bc >/dev/null
fi

bin=${CARGO_TARGET_DIR:-$root/target}/debug
scratch=$(mktemp -d /tmp/fleet-bench.XXXXXX)
moto_pid=
cleanup() {
    if [[ -n $moto_pid ]]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
MOTO_IAM_LOAD_MANAGED_POLICIES=true MOTO_AMIS_PATH="$root/crates/testkit/fixtures/amis.json" \
    "${FLEET_VENV:-$root/.venv}/bin/moto_server" -H 127.0.0.1 -p "$port" >"$scratch/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$endpoint/moto-api/" && break
    sleep 0.1
done
# A fresh emulator for each sequence. With MOTO_IAM_LOAD_MANAGED_POLICIES the first IAM call
# after a reset loads every AWS managed policy (about 2 s on this machine): an emulator cost
# real AWS does not have, so one untimed IAM call pays it before any timed sequence.
reset() {
    curl -s -X POST -o /dev/null "$endpoint/moto-api/reset"
    "$bench_venv/bin/python" -c "import boto3, sys; boto3.client('iam', endpoint_url=sys.argv[1], \
region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test').list_policies(MaxItems=1)" \
        "$endpoint"
}

# Seconds for the four steps, each a process of its own, on a fresh emulator and project.
steps_once() {
    reset
    local project="$scratch/project-$1"
    mkdir -p "$project"
    "$bin/step-000-setup-configuration" --local --endpoint "$endpoint" --yes \
        --env-file "$project/.env" >"$scratch/step-000.log" 2>&1
    local started ended step
    started=$(date +%s.%N)
    for step in step-010-setup-iam-permissions step-011-validate-iam-permissions \
        step-020-create-sqs-resources step-021-validate-sqs-resources; do
        local t0; t0=$(date +%s.%N)
        FLEET_ROOT="$project" "$bin/$step" >"$scratch/$step.log" 2>&1 \
            || { echo "error: $step failed:" >&2; cat "$scratch/$step.log" >&2; exit 1; }
        printf '   %-36s %6.2f s\n' "$step" "$(echo "$(date +%s.%N) - $t0" | bc)" >&2
    done
    ended=$(date +%s.%N)
    echo "$ended - $started" | bc
}

runs=${BENCH_SETUP_RUNS:-3}
cpu=$(cpu_snapshot)
best() { sort -n | head -1; }
steps=$(for i in $(seq 1 "$runs"); do steps_once "$i"; done | best)
inprocess=$(for _ in $(seq 1 "$runs"); do reset; "$bench_venv/bin/python" "$baselines/baseline-inprocess.py" "$endpoint" | sed -n 's/.*wall_s=//p'; done | best)
reset
awscli=$(AWS_CLI="$bench_venv/bin/aws" bash "$baselines/baseline-awscli.sh" "$endpoint" | sed -n 's/.*wall_s=//p')
echo "load average after the setup runs: $(load); CPU steal during them: $(steal_since "$cpu")"
printf 'steps 010+011+020+021 (best of %s)    : %7.2f s\n' "$runs" "$steps"
printf 'aws-cli, one process per call (24)   : %7.2f s   speed-up %5.1fx (target >= 20x)\n' \
    "$awscli" "$(echo "$awscli / $steps" | bc -l)"
printf 'boto3 in one process (24, the floor) : %7.2f s   steps / floor %5.1fx (target <= 3x)\n' \
    "$inprocess" "$(echo "$steps / $inprocess" | bc -l)"
