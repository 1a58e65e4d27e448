#!/usr/bin/env bash
# Step 011: compare the worker's IAM resources with what step 010 makes. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-011-validate-iam-permissions "$@"
