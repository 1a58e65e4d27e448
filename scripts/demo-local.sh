#!/usr/bin/env bash
# The main job end to end on this machine: a local AWS emulator stands in for AWS, then the
# common setup, the chosen deployment path, one worker, and the shipped speech sample
# transcribed through the queue; the transcript is printed at the end.
#
# Path B (Docker) runs when a Docker engine answers, otherwise Path A; FLEET_DEMO_PATH=
# traditional|docker chooses. Uses .env when it aims at a local emulator, and creates it
# when there is none; a .env aimed at real AWS is left alone and the demo stops.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
S=./scripts

say() { printf '\n==> demo: %s\n' "$*" >&2; }

"$S/common/bootstrap.sh"
export FLEET_BOOTSTRAPPED=${FLEET_VENV:-$root/.venv}
"$S/common/local-emulator.sh" up

if [[ -f .env ]]; then
    if ! grep -Eq '^[[:space:]]*(export[[:space:]]+)?AWS_ENDPOINT_URL=["'\'']?https?://(127\.|localhost)' .env; then
        echo "error: .env aims at real AWS; the demo runs only against the local emulator" >&2
        echo "hint: move .env aside (mv .env .env.aws) and run make demo again" >&2
        exit 2
    fi
else
    say "writing .env for the local emulator"
    "$S/step-000-setup-configuration.sh" --local --yes \
        --endpoint "http://127.0.0.1:${FLEET_EMULATOR_PORT:-4566}"
fi

path=${FLEET_DEMO_PATH:-}
if [[ -z $path ]]; then
    if docker info >/dev/null 2>&1 && [[ -f crates/steps/step-220-launch-docker-worker/Cargo.toml ]]; then
        path=docker
    else
        path=traditional
    fi
fi

say "common setup (settings, IAM, queues, bucket)"
make --no-print-directory common
say "deployment path: $path"
"$S/step-025-choose-deployment-path.sh" --path "$path" --yes
make --no-print-directory "$path"
