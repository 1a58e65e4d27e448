#!/usr/bin/env bash
# Step 111: check the worker bundle `current` points at. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-111-validate-worker-code "$@"
