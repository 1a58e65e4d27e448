#!/usr/bin/env bash
# Step 201 (Path B): checks the ECR repository, a registry login and the Docker engine; changes
# nothing. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-201-validate-docker-setup "$@"
