#!/usr/bin/env bash
# The job CLI: submit audio, follow jobs, fetch transcripts, inspect the queue. Flags: --help.
exec "$(dirname "${BASH_SOURCE[0]}")/common/run-step.sh" transcribe "$@"
