#!/usr/bin/env bash
# Installs what local runs and tests need, and only what is missing: Debian packages for
# audio (espeak-ng, sox, ffmpeg), the project virtualenv .venv with the local AWS emulator and
# the CPU speech engine, and the Rust components used by the gates. Safe to run again.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${FLEET_VENV:-$root/.venv}

say() { printf '==> bootstrap: %s\n' "$*" >&2; }

# A script that ran the bootstrap exports FLEET_BOOTSTRAPPED=<virtualenv> so the scripts it
# calls (local-emulator.sh up during make demo) do not run it again.
if [[ ${FLEET_BOOTSTRAPPED:-} == "$venv" && -x $venv/bin/python ]]; then
    exit 0
fi

missing=()
for tool in espeak-ng sox ffmpeg ffprobe; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    say "installing Debian packages for: ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq espeak-ng sox ffmpeg >/dev/null
fi

python=${PYTHON:-python3}
stamp="$venv/.requirements.sha256"
want=$(cat "$root/requirements-dev.txt" "$root/engine/requirements-cpu.txt" | sha256sum | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" ]]; then
    say "creating the virtualenv $venv"
    "$python" -m venv "$venv"
fi
if [[ ! -f "$stamp" || $(cat "$stamp") != "$want" ]]; then
    say "installing Python packages into $venv (about a minute the first time)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/requirements-dev.txt"
    echo "$want" >"$stamp"
fi

for component in clippy rustfmt; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        say "adding the Rust component $component"
        rustup component add "$component"
    fi
done
say "ready"
