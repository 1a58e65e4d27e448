#!/usr/bin/env bash
# Step 999: delete everything this deployment created (--include-data, --dry-run). Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-999-destroy-all-resources "$@"
