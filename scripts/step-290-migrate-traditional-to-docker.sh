#!/usr/bin/env bash
# Step 290: move a Path A deployment to Path B (Docker), or back with --rollback. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-290-migrate-traditional-to-docker "$@"
