#!/usr/bin/env bash
# Step 021: check the queues and the bucket against the settings. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-021-validate-sqs-resources "$@"
