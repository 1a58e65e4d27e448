#!/usr/bin/env bash
# Step 135: transcribe the shipped sample end to end on Path A. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-135-test-complete-workflow "$@"
