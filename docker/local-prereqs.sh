#!/usr/bin/env bash
# Installs what local Path B runs need, and only what is missing: debootstrap (for the local
# base image) and Debian's docker-registry (the local stand-in for ECR's registry endpoint).
# Then makes the base image. Safe to run again.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
if ((${#missing[@]})); then
    printf '==> docker prerequisites: installing %s\n' "${missing[*]}" >&2
    if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [[ $(id -u) -eq 0 ]]; then "$here/base/make-base-image.sh"; else sudo "$here/base/make-base-image.sh"; fi
