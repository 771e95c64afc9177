# loginprofile-operator: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help deps demo demo-stop test lint unit build crds reference chart-readme image-binary release bench devenv-up devenv-down devenv-status

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

deps: ## install the system packages the project needs (apt-get as root; otherwise prints the command)
	@hack/deps.sh

demo: deps ## start the environment and the operator, apply examples/, show the result
	@hack/demo.sh start

demo-stop: ## stop the demo operator and the environment
	@hack/demo.sh stop

test: deps ## formatting, clippy, the static binary, unit tests and the tests against the environment (the tools build beside the Rust builds)
	@CARGO=$(CARGO) hack/test.sh

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

unit: ## unit tests only (no environment needed)
	$(CARGO) test --lib --bins

build: ## debug build of the operator
	$(CARGO) build

image-binary: deps ## the static (musl) release binary, built exactly as the Dockerfile builds it
	@hack/image-binary.sh

crds: ## regenerate crds/loginprofile-operator.yaml (every CRD) and the chart's copy from the Rust types
	$(CARGO) run --quiet -- crd > crds/loginprofile-operator.yaml
	cp crds/loginprofile-operator.yaml charts/loginprofile-operator/crds/loginprofile-operator.yaml

release: deps image-binary ## dist/: the OCI image archive and its digest, the chart package, SBOM, license check, SHA-256 sums
	@hack/release.sh

chart-readme: ## regenerate the values table of the chart's README.md from values.yaml and its schema
	python3 hack/chart-readme.py

reference: ## regenerate docs/reference.md (flags, metrics, fields, reasons) from the code
	$(CARGO) run --quiet -- reference > docs/reference.md

bench: deps image-binary devenv-up ## benchmark against the environment (N=100 and 1000; BENCH_ARGS="--with-5000" adds 5000)
	@target/devenv/venv/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@. target/devenv/env && target/devenv/venv/bin/python bench/bench.py $(BENCH_ARGS)

devenv-up: deps ## build (once) and start etcd, kube-apiserver, kube-controller-manager and the IAM emulator
	@hack/devenv.sh up

devenv-down: ## stop what devenv-up started (the tool cache stays)
	@hack/devenv.sh down

devenv-status: ## what runs, where, since when
	@hack/devenv.sh status
