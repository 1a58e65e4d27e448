#!/usr/bin/env bash
# Runs one binary of the workspace from any folder: builds it when it is missing or stale
# (cargo decides), points it at the project folder, passes every argument through and keeps
# its exit code. Usage: run-step.sh BINARY [ARG...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
name=$1
shift
target=${CARGO_TARGET_DIR:-$root/target}
if [[ ! -x "$target/debug/$name" ]]; then
    printf '==> building %s (the first build of the AWS SDK takes several minutes)\n' "$name" >&2
fi
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin "$name"
export FLEET_ROOT=$root
exec "$target/debug/$name" "$@"
