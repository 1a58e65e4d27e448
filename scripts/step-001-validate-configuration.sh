#!/usr/bin/env bash
# Step 001: check every setting and that the credentials match the account. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-001-validate-configuration "$@"
