#!/usr/bin/env bash
# Step 010: the worker role, instance profile and least-privilege policy. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-010-setup-iam-permissions "$@"
