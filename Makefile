# sidecar-injector: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash

CARGO ?= cargo
DOCKER ?= docker
KUBECTL ?= kubectl
VERSION ?= 0.1.0
INJECTOR_IMAGE ?= localhost/sidecar-injector:$(VERSION)
MESH_INIT_IMAGE ?= localhost/mesh-init:$(VERSION)
# Where the injector runs; its Service is sidecar-injector.$(NAMESPACE).svc.
NAMESPACE ?= sidecar-injector
CERTS_DIR ?= certs/out

.PHONY: help build test lint conformance bench images certs deploy kind-e2e demo

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build both binaries (debug)
	$(CARGO) build --workspace --bins

test: ## Run every test (unit, conformance, real-traffic, real API server)
	cargo test --workspace

lint: ## rustfmt check, clippy with warnings as errors, shellcheck (if installed)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@if command -v shellcheck >/dev/null; then shellcheck tests/e2e/*.sh deploy/*.sh; else echo "shellcheck not installed: skipped"; fi

conformance: ## Replay Istio's golden vectors (injection and iptables), one line per case
	$(CARGO) test -p injector-engine --test conformance -- --nocapture
	$(CARGO) test -p mesh-init --test conformance -- --nocapture

bench: ## Regenerate BENCHMARKS.md: criterion, instruction counts, TLS load vs a null webhook, soak, mesh-init vs iptables-restore (root, ~25 min)
	bench/run.sh

images: ## Build both container images (static musl binaries; needs Docker with BuildKit)
	$(DOCKER) build -f deploy/images/sidecar-injector.Dockerfile -t $(INJECTOR_IMAGE) .
	$(DOCKER) build -f deploy/images/mesh-init.Dockerfile -t $(MESH_INIT_IMAGE) .

certs: ## Development CA + serving certificate for the Service, and its Secret, in certs/out/
	$(CARGO) run -q -p sidecar-injector -- certs --service sidecar-injector --namespace $(NAMESPACE) --out-dir $(CERTS_DIR)

deploy: ## Install into the current kubectl context: deploy/, the Secret, the caBundle
	$(KUBECTL) apply -k deploy/
	$(KUBECTL) apply -f $(CERTS_DIR)/secret.yaml
	deploy/patch-ca-bundle.sh sidecar-injector $(CERTS_DIR)/ca.crt
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/sidecar-injector --timeout=180s

kind-e2e: ## The full scenario on a kind cluster with Istio (needs docker, kind, kubectl)
	tests/e2e/kind.sh

demo: ## No cluster: dev cert, injector on loopback, one AdmissionReview, patch, pod, mesh-init --dry-run
	tests/e2e/demo.sh
