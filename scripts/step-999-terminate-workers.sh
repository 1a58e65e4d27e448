#!/usr/bin/env bash
# Step 999: terminate this deployment's workers (--path, --instance-id, --dry-run). Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-999-terminate-workers "$@"
