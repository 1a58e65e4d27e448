#!/usr/bin/env bash
# Step 110: build, bundle and upload the worker code for Path A. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-110-deploy-worker-code "$@"
