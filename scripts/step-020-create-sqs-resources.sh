#!/usr/bin/env bash
# Step 020: the job queue, its dead-letter queue and the bucket. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-020-create-sqs-resources "$@"
