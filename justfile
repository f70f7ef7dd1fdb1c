# Everyday recipes. CI (.ci/run) calls these same recipes.

pg_url := env_var_or_default("CORRIDOR_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")

# List the recipes.
default:
    @just --list

# Start a whole node (SQLite under ./data), as the README's `cargo run --release`.
run:
    cargo run --release

# The README's test command: every suite, on SQLite (PostgreSQL too when
# CORRIDOR_TEST_POSTGRES_URL is set).
test:
    cargo test

# The PostgreSQL variants of the integration suites, against a local server.
test-postgres: postgres-up
    CORRIDOR_TEST_POSTGRES_URL={{pg_url}} cargo test -p corridor-tests -- postgres

# External FHIR clients (fhirpy, SMART's fhirclient) against the REST gateway of a
# fresh node, every response checked as R4 with fhir.resources; on SQLite and, when
# CORRIDOR_TEST_POSTGRES_URL is set, PostgreSQL. Python tools go in target/tools.
test-clients:
    tests/clients/run.sh

# Run the README's grpcurl session as written against a fresh node (needs grpcurl, jq).
readme:
    cargo build -p corridor
    tests/readme/walkthrough.sh

# Start the local PostgreSQL if it is down and make sure the test database exists.
postgres-up:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
        createdb -h 127.0.0.1 -U postgres test
    fi

# The deployment files, checked offline: the Dockerfile (hadolint) and the
# compose files (Docker Compose's own parser), and every Kubernetes overlay
# rendered with kustomize, validated against the Kubernetes schemas, policy-
# checked, with the alert rules unit-tested by promtool. Tools go in target/tools.
deploy-check:
    deploy/compose/validate.sh
    deploy/k8s/validate.sh

# Formatting, clippy with warnings as errors, and buf lint on proto/.
lint: fmt-check clippy buf-lint

fmt:
    cargo fmt --all

fmt-check:
    cargo fmt --all -- --check

clippy:
    cargo clippy --all-targets -- -D warnings

# buf's STANDARD rules (the former DEFAULT) on proto/, with buf from npm.
buf-lint:
    #!/usr/bin/env bash
    set -euo pipefail
    tools="${CORRIDOR_TOOLS_DIR:-$PWD/target/tools}"
    if [ ! -x "$tools/node_modules/.bin/buf" ]; then
        npm install --silent --no-audit --no-fund --prefix "$tools" @bufbuild/buf@1.75.0
    fi
    cd proto && "$tools/node_modules/.bin/buf" lint

# Benchmarks (release profile). Figures are printed, never asserted.
bench: bench-validate bench-identity bench-consult bench-referrals bench-match

# FHIR validation throughput on the HL7 examples and the Synthea sample.
bench-validate:
    cargo bench -p corridor-tests --bench validate

# Identity service over gRPC: creates and searches, on SQLite and, when
# CORRIDOR_TEST_POSTGRES_URL is set, PostgreSQL.
bench-identity:
    cargo bench -p corridor-tests --bench identity

# The consult channel: messages per second and end-to-end latency (p50, p99)
# from one client to another, on SQLite and, when CORRIDOR_TEST_POSTGRES_URL
# is set, PostgreSQL.
bench-consult:
    cargo bench -p corridor-tests --bench consult

# Referrals: transitions per second with one and with several concurrent
# clients while the hospital watches, and the latency (p50, p99) from a
# Transition to another client's Watch stream, on SQLite and, when
# CORRIDOR_TEST_POSTGRES_URL is set, PostgreSQL.
bench-referrals:
    cargo bench -p corridor-tests --bench referrals

# Federation between two release nodes (each its own process): cross-node
# delivery latency (p50, p99) both ways, and the catch-up after a 100-message
# backlog, on SQLite and, when CORRIDOR_TEST_POSTGRES_URL is set, PostgreSQL.
bench-federation:
    cargo bench -p corridor-tests --bench federation

# Patient $match precision, recall, F1 and latency on a seeded synthetic migrant population (MATCH_* settings).
bench-match:
    cargo bench -p corridor-tests --bench matching

# Match latency over a million Patients, and the cost of blocking keys on creates (PostgreSQL).
bench-match-scale: postgres-up
    CORRIDOR_TEST_POSTGRES_URL={{pg_url}} cargo bench -p corridor-tests --bench matching_scale

# REST gateway with wrk (apt-get install wrk): Patient creates and reads through
# the gateway of a release node, on PostgreSQL (REST_BACKEND=sqlite for SQLite).
bench-rest: postgres-up
    CORRIDOR_TEST_POSTGRES_URL={{pg_url}} tests/benches/rest/run.sh

# Ingest through the gateway of a release node, on SQLite and PostgreSQL: one
# Synthea transaction (145 entries, and one of >= 3,737), `corridor import` of the
# 60 Synthea bundles and of a generated larger set (IMPORT_COPIES=10: ~58,000
# resources), and $import of 4,000 NDJSON Patients. Prints figures.
bench-import: postgres-up
    CORRIDOR_TEST_POSTGRES_URL={{pg_url}} tests/benches/import/run.sh

# Regenerate tests/fixtures from the HL7 examples on PyPI and the Synthea sample.
fixtures:
    python3 tests/fixtures/extract.py
