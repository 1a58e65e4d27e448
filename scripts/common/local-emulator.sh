#!/usr/bin/env bash
# Starts, stops or shows the local AWS emulator (moto server) on 127.0.0.1:4566.
# Its pid and log live in .local/emulator/ (git-ignored). Usage: local-emulator.sh up|down|status
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${FLEET_VENV:-$root/.venv}
port=${FLEET_EMULATOR_PORT:-4566}
dir=$root/.local/emulator
pidfile=$dir/moto-$port.pid

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
answers() { "$venv/bin/python" - "$port" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=2)
PY
}

case ${1:-status} in
up)
    if running; then
        echo "emulator already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
        exit 0
    fi
    "$root/scripts/common/bootstrap.sh"
    if answers; then
        echo "error: something else already answers on 127.0.0.1:$port" >&2
        echo "hint: stop it, or pick another port: FLEET_EMULATOR_PORT=4577 make local-up" >&2
        exit 1
    fi
    mkdir -p "$dir"
    # The AMI catalogue holds Deep Learning AMI look-alikes so step-100 finds a GPU image.
    MOTO_IAM_LOAD_MANAGED_POLICIES=true MOTO_AMIS_PATH="$root/crates/testkit/fixtures/amis.json" nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" \
        >"$dir/moto-$port.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
        if answers; then
            echo "emulator running on http://127.0.0.1:$port (pid $(cat "$pidfile"), log $dir/moto-$port.log)"
            exit 0
        fi
        running || break
        sleep 0.1
    done
    echo "error: the emulator did not start; see $dir/moto-$port.log" >&2
    tail -n 20 "$dir/moto-$port.log" >&2 || true
    exit 1
    ;;
down)
    if running; then
        kill "$(cat "$pidfile")"
        echo "emulator stopped (pid $(cat "$pidfile"))"
    else
        echo "emulator was not running"
    fi
    rm -f "$pidfile"
    ;;
status)
    if running; then echo "running on http://127.0.0.1:$port (pid $(cat "$pidfile"))"; else echo "not running"; exit 1; fi
    ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
