#!/usr/bin/env bash
# Step 125: check the health of the Path A workers. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-125-check-worker-health "$@"
