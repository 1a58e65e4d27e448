#!/usr/bin/env bash
# Step 000: create or update the deployment settings in .env. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-000-setup-configuration "$@"
