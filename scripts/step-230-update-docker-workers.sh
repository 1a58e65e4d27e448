#!/usr/bin/env bash
# Step 230: rolling update of the Path B workers to a new image digest (--rollback). Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-230-update-docker-workers "$@"
