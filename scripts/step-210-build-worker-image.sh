#!/usr/bin/env bash
# Step 210 (Path B): builds the worker image (CPU image with tiny.en in local mode, CUDA image
# for AWS) and tags it with the git revision and latest. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-210-build-worker-image "$@"
