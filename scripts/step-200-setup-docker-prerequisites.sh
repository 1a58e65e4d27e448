#!/usr/bin/env bash
# Step 200 (Path B): the worker image's ECR repository and a Docker engine check; in local mode
# also the local registry. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-200-setup-docker-prerequisites "$@"
