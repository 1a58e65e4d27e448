#!/usr/bin/env bash
# Step 120: launch Path A spot GPU workers. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-120-launch-spot-worker "$@"
