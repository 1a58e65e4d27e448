#!/usr/bin/env bash
# Step 100: find or make the workers' AMI, network, security group and key pair. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-100-setup-ec2-configuration "$@"
