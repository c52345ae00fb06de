.PHONY: test
test: ## Run every test (unit, conformance, real-traffic, real API server)
	cargo test --workspace
