#!/usr/bin/env bash
# Step 220: launch Path B GPU workers running the worker image (local: containers). Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-220-launch-docker-worker "$@"
