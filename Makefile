# Everyday targets. Steps run through scripts/ so they build what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
S := ./scripts

.PHONY: help demo test lint fmt local-up local-down common clean-local

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

demo: ## Run the whole job on the local emulator: set up, start a worker, transcribe the sample
	$(S)/demo-local.sh

test: ## All tests and gates (fmt, clippy, cargo test, engine tests), as CI runs them
	$(S)/test.sh

lint: ## Formatting and clippy only
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

local-up: ## Start the local AWS emulator on 127.0.0.1:4566
	$(S)/common/local-emulator.sh up

local-down: ## Stop the local AWS emulator
	$(S)/common/local-emulator.sh down

common: ## Common setup: settings (000 if there is no .env), 001, 010, 011, 020, 021
	@test -f .env || $(S)/step-000-setup-configuration.sh
	$(S)/step-001-validate-configuration.sh
	$(S)/step-010-setup-iam-permissions.sh
	$(S)/step-011-validate-iam-permissions.sh
	$(S)/step-020-create-sqs-resources.sh
	$(S)/step-021-validate-sqs-resources.sh

clean-local: local-down ## Remove local state (.local/); keeps .env and .venv
	rm -rf .local
