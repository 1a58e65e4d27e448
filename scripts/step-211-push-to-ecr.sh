#!/usr/bin/env bash
# Step 211 (Path B): pushes the worker image (to ECR, or to the local registry in local mode)
# and records its digest in .env. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-211-push-to-ecr "$@"
