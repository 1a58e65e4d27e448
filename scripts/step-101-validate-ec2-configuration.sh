#!/usr/bin/env bash
# Step 101: check the EC2 settings written by step-100. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-101-validate-ec2-configuration "$@"
