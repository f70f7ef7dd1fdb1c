#!/usr/bin/env bash
# Runs the external FHIR client suite (tests/clients, pytest) against a real
# node's REST gateway: on SQLite always, and on PostgreSQL too when
# CORRIDOR_TEST_POSTGRES_URL is set (in a fresh database made for the run and
# dropped at exit). Each run starts `corridor serve` on free ports with its
# own data directory, waits for GET /fhir/metadata, runs pytest with
# CORRIDOR_FHIR_BASE and an operator's token (CORRIDOR_TOKEN, from
# `corridor token`), then stops the node with SIGTERM.
#
# The Python tools live in a venv under ${CORRIDOR_TOOLS_DIR:-target/tools},
# installed from tests/clients/requirements.txt (again only when it changes).
# Arguments are passed to pytest, e.g. tests/clients/run.sh -k fhirpy -x
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

tools="${CORRIDOR_TOOLS_DIR:-$root/target/tools}"
venv="$tools/clients-venv"
requirements="$root/tests/clients/requirements.txt"
python="${PYTHON:-python3}"
bin="${CORRIDOR_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/corridor}"

work="$(mktemp -d)"
node=""
database=""
pg_admin=()

stop_node() {
    [ -n "$node" ] || return 0
    kill -TERM "$node" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$node" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$node" 2>/dev/null; then
        echo "clients: the node did not stop within 15 s of SIGTERM; killing it" >&2
        kill -KILL "$node" 2>/dev/null || true
    fi
    wait "$node" 2>/dev/null || true
    node=""
}

cleanup() {
    stop_node
    if [ -n "$database" ]; then
        dropdb "${pg_admin[@]}" --if-exists "$database" || echo "clients: could not drop $database" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== clients: Python tools in $venv"
mkdir -p "$tools"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    echo "$wanted" > "$stamp"
fi
py="$venv/bin/python"

echo "== clients: cargo build -p corridor"
cargo build -p corridor

# Prints N free TCP ports on 127.0.0.1.
free_ports() {
    "$py" - "$1" <<'PY'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

# Waits until $1/metadata answers 200 while pid $2 lives (60 s at most).
wait_for_gateway() {
    "$py" - "$1" "$2" <<'PY'
import os, sys, time, urllib.request
base, pid = sys.argv[1], int(sys.argv[2])

def alive():
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if not alive():
        print("clients: the node exited before the gateway answered", file=sys.stderr)
        sys.exit(1)
    try:
        request = urllib.request.Request(base + "/metadata", headers={"Accept": "application/fhir+json"})
        with urllib.request.urlopen(request, timeout=2) as answer:
            if answer.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.25)
print(f"clients: GET {base}/metadata did not answer 200 within 60 s", file=sys.stderr)
sys.exit(1)
PY
}

# run_backend NAME [DATABASE_URL]: one node, one pytest run. Returns pytest's status.
run_backend() {
    local name="$1" database_url="${2:-}"
    local data="$work/$name-data" log="$work/$name-node.log"
    mkdir -p "$data"
    local identity encounters referrals gateway
    read -r identity encounters referrals gateway <<< "$(free_ports 4)"
    local -a env_args=(
        -u CORRIDOR_DATABASE_URL -u CORRIDOR_IDENTITY_DATABASE_URL
        -u CORRIDOR_ENCOUNTERS_DATABASE_URL -u CORRIDOR_REFERRALS_DATABASE_URL
        -u CORRIDOR_SERVICES -u CORRIDOR_IDENTITY_URL -u CORRIDOR_ENCOUNTERS_URL
        -u CORRIDOR_REFERRALS_URL
        "CORRIDOR_IDENTITY_ADDR=127.0.0.1:$identity"
        "CORRIDOR_ENCOUNTERS_ADDR=127.0.0.1:$encounters"
        "CORRIDOR_REFERRALS_ADDR=127.0.0.1:$referrals"
        "CORRIDOR_GATEWAY_ADDR=127.0.0.1:$gateway"
        "CORRIDOR_DATA_DIR=$data"
    )
    if [ -n "$database_url" ]; then
        env_args+=("CORRIDOR_DATABASE_URL=$database_url")
    fi
    local base="http://127.0.0.1:$gateway/fhir"

    echo "== clients on $name: corridor serve (gateway $base)"
    env "${env_args[@]}" "$bin" serve > "$log" 2>&1 &
    node=$!
    if ! wait_for_gateway "$base" "$node"; then
        echo "--- node log ($name)"; cat "$log"
        stop_node
        return 1
    fi

    # Every request needs an access token: the operator's, signed with the
    # node's development key by `corridor token` (the same settings, so the
    # same issuer). The suite mints tokens for other organizations the same way.
    local token
    token="$(env "${env_args[@]}" "$bin" token --admin)"
    local started=$SECONDS status=0
    (cd "$root/tests/clients" && env "${env_args[@]}" CORRIDOR_FHIR_BASE="$base" \
        CORRIDOR_TOKEN="$token" CORRIDOR_BIN="$bin" PYTHONDONTWRITEBYTECODE=1 \
        "$py" -m pytest "${pytest_args[@]}") || status=$?
    echo "== clients on $name: pytest exited $status after $((SECONDS - started)) s"
    stop_node
    if [ "$status" != 0 ]; then
        echo "--- last 60 lines of the node log ($name)"; tail -n 60 "$log"
    fi
    return "$status"
}

pytest_args=("$@")
failed=()

run_backend sqlite || failed+=(sqlite)

if [ -n "${CORRIDOR_TEST_POSTGRES_URL:-}" ]; then
    # Host, port, user and password of the given server; a database of our own on it.
    mapfile -t pg < <("$py" - "$CORRIDOR_TEST_POSTGRES_URL" <<'PY'
import secrets, sys
from urllib.parse import urlsplit, urlunsplit
url = urlsplit(sys.argv[1])
name = f"corridor_clients_{secrets.token_hex(6)}"
print(url.hostname or "127.0.0.1")
print(url.port or 5432)
print(url.username or "postgres")
print(url.password or "")
print(name)
print(urlunsplit((url.scheme, url.netloc, "/" + name, url.query, "")))
PY
)
    pg_admin=(-h "${pg[0]}" -p "${pg[1]}" -U "${pg[2]}")
    if [ -n "${pg[3]}" ]; then export PGPASSWORD="${pg[3]}"; fi
    if createdb "${pg_admin[@]}" "${pg[4]}"; then
        database="${pg[4]}"
        run_backend postgres "${pg[5]}" || failed+=(postgres)
    else
        echo "clients: createdb ${pg[4]} failed on ${pg[0]}:${pg[1]}" >&2
        failed+=(postgres)
    fi
else
    echo "== clients: CORRIDOR_TEST_POSTGRES_URL is not set; PostgreSQL run skipped"
fi

if [ "${#failed[@]}" != 0 ]; then
    echo "== clients: FAILED on ${failed[*]}"
    exit 1
fi
echo "== clients: passed"
