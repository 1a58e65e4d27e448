#!/usr/bin/env bash
# Step 025: choose Path A (traditional EC2) or Path B (Docker on EC2 GPU). Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" step-025-choose-deployment-path "$@"
