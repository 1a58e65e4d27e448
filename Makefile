# Everyday targets. Steps run through scripts/ so they build what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
S := ./scripts

.PHONY: help demo test lint fmt local-up local-down common traditional docker bench migrate terminate-workers destroy clean-local

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

local-down: ## Stop the local AWS emulator and the local image registry
	$(S)/common/local-emulator.sh down
	@if [ -f .local/registry/registry.pid ]; then kill $$(cat .local/registry/registry.pid) 2>/dev/null || true; rm -f .local/registry/registry.pid; fi

common: ## Common setup: settings (000 if there is no .env), 001, 010, 011, 020, 021
	@test -f .env || $(S)/step-000-setup-configuration.sh
	$(S)/step-001-validate-configuration.sh
	$(S)/step-010-setup-iam-permissions.sh
	$(S)/step-011-validate-iam-permissions.sh
	$(S)/step-020-create-sqs-resources.sh
	$(S)/step-021-validate-sqs-resources.sh

traditional: ## Path A after `make common`: EC2 settings, bundle, spot worker, health, end-to-end test
	$(S)/step-100-setup-ec2-configuration.sh
	$(S)/step-101-validate-ec2-configuration.sh
	$(S)/step-110-deploy-worker-code.sh
	$(S)/step-111-validate-worker-code.sh
	$(S)/step-120-launch-spot-worker.sh
	$(S)/step-125-check-worker-health.sh --wait --timeout 900
	$(S)/step-135-test-complete-workflow.sh

docker: ## Path B after `make common`: EC2 settings, ECR, image build and push, worker container, health, end-to-end test
	./docker/local-prereqs.sh
	$(S)/step-100-setup-ec2-configuration.sh
	$(S)/step-101-validate-ec2-configuration.sh
	$(S)/step-200-setup-docker-prerequisites.sh
	$(S)/step-201-validate-docker-setup.sh
	$(S)/step-210-build-worker-image.sh
	$(S)/step-211-push-to-ecr.sh
	$(S)/step-220-launch-docker-worker.sh
	$(S)/step-225-check-docker-health.sh --wait --timeout 900
	$(S)/step-235-test-docker-workflow.sh

bench: ## Benchmarks against their references (not tests): worker throughput, setup speed, footprint, cost
	./bench/run.sh

migrate: ## Move Path A to Path B (step-290); ROLLBACK=1 returns to Path A
	$(S)/step-290-migrate-traditional-to-docker.sh $(if $(ROLLBACK),--rollback)

terminate-workers: ## Terminate this deployment's workers (both paths; asks first)
	$(S)/step-999-terminate-workers.sh

destroy: ## Delete everything this deployment created (asks first; audio and transcripts need --include-data)
	$(S)/step-999-destroy-all-resources.sh

clean-local: local-down ## Remove local state (.local/); keeps .env and .venv
	rm -rf .local
