#!/usr/bin/env bash
# Step 235: transcribe the shipped sample through the Path B fleet. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-235-test-docker-workflow "$@"
