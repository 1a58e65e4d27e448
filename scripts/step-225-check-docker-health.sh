#!/usr/bin/env bash
# Step 225: the health of every Path B worker and its container. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-225-check-docker-health "$@"
