#!/usr/bin/env bash
# Makes the local base image transcribe-fleet/base:bookworm from Debian packages, for machines
# where no registry can be pulled from: a minimal Debian bookworm tree made by debootstrap,
# imported with `docker import`. Skips when the image exists. Needs root (debootstrap) and
# Debian's mirror reachable from this host; about 3 minutes the first time.
# Usage: make-base-image.sh [IMAGE]   (FLEET_DEBIAN_MIRROR overrides the mirror)
set -euo pipefail
image=${1:-transcribe-fleet/base:bookworm}
mirror=${FLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

say() { printf '==> base image: %s\n' "$*" >&2; }

if docker image inspect "$image" >/dev/null 2>&1; then
    say "$image exists; nothing to do"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "error: debootstrap needs root; run: sudo $0 $image" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

work=$root/.local/docker/base
tree=$work/rootfs
rm -rf "$tree"
mkdir -p "$tree"
trap 'rm -rf "$tree"' EXIT
say "debootstrap --variant=minbase bookworm from $mirror (log $work/debootstrap.log)"
if ! debootstrap --variant=minbase --include=ca-certificates bookworm "$tree" "$mirror" \
    >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    echo "error: debootstrap failed; see $work/debootstrap.log" >&2
    exit 1
fi

# Smaller image: no package lists, caches or docs.
rm -rf "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin "$tree"/var/cache/apt/archives/*.deb
rm -rf "$tree"/usr/share/doc/* "$tree"/usr/share/man/* "$tree"/usr/share/info/*
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://security.debian.org/debian-security bookworm-security main\n' \
    "$mirror" "$mirror" >"$tree/etc/apt/sources.list"

say "importing as $image"
tar -C "$tree" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase bookworm ($mirror)" \
    - "$image" >/dev/null
say "$image is ready ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec))"
