#!/usr/bin/env bash
# Step 130: roll the current worker bundle onto running Path A workers. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-130-update-system-fixes "$@"
