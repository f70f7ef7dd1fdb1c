#!/usr/bin/env bash
# REST gateway throughput and latency with wrk: Patient creates (POST) and
# reads (GET by id) as the node's operator, and Encounter reads (GET by id)
# as a partner (each one an access decision, asked of identity and
# referrals, and an audit record) through the gateway of a release node, on
# PostgreSQL
# (CORRIDOR_TEST_POSTGRES_URL, a fresh database made for the run) or, with
# REST_BACKEND=sqlite, on SQLite. Prints wrk's figures; asserts nothing.
# Settings: REST_SECONDS (20 per run), REST_CONNECTIONS (8).
set -euo pipefail
cd "$(dirname "$0")/../../.."
root="$PWD"
seconds="${REST_SECONDS:-20}"
connections="${REST_CONNECTIONS:-8}"
backend="${REST_BACKEND:-postgres}"

if ! command -v wrk >/dev/null; then
    echo "wrk is missing: apt-get install wrk (Debian)" >&2
    exit 1
fi
cargo build --release -p corridor
work="$(mktemp -d)"
node=""
database=""
cleanup() {
    [ -n "$node" ] && kill -TERM "$node" 2>/dev/null && wait "$node" 2>/dev/null || true
    [ -n "$database" ] && dropdb -h 127.0.0.1 -U postgres --if-exists "$database" || true
    rm -rf "$work"
}
trap cleanup EXIT

read -r p1 p2 p3 p4 < <(python3 -c '
import socket
held = [socket.socket() for _ in range(4)]
for s in held: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))')
env=(CORRIDOR_DATA_DIR="$work/data" CORRIDOR_IDENTITY_ADDR="127.0.0.1:$p1" CORRIDOR_ENCOUNTERS_ADDR="127.0.0.1:$p2"
     CORRIDOR_REFERRALS_ADDR="127.0.0.1:$p3" CORRIDOR_GATEWAY_ADDR="127.0.0.1:$p4" RUST_LOG=warn)
if [ "$backend" = postgres ]; then
    admin="${CORRIDOR_TEST_POSTGRES_URL:?set CORRIDOR_TEST_POSTGRES_URL, or REST_BACKEND=sqlite}"
    database="corridor_bench_rest_$$"
    createdb -h 127.0.0.1 -U postgres "$database"
    env+=(CORRIDOR_DATABASE_URL="${admin%/*}/$database")
fi
env "${env[@]}" "$root/target/release/corridor" serve > "$work/node.log" 2>&1 &
node=$!
base="http://127.0.0.1:$p4/fhir"
for _ in $(seq 1 150); do
    curl -sf -o /dev/null "$base/metadata" && break
    sleep 0.2
done
curl -sf -o /dev/null "$base/metadata" || { echo "the node did not start"; cat "$work/node.log"; exit 1; }
# Every request carries an access token, as a partner's would.
export CORRIDOR_TOKEN="$(env "${env[@]}" "$root/target/release/corridor" token)"
auth=(-H "Authorization: Bearer $CORRIDOR_TOKEN")

echo "== $(nproc) cores; backend $backend; $connections connections, 2 wrk threads, $seconds s per run"
echo "== creates: POST /fhir/Patient"
wrk -t2 -c"$connections" -d"${seconds}s" --latency "${auth[@]}" -s tests/benches/rest/create.lua "http://127.0.0.1:$p4" \
    | grep -E "Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%|Latency "
curl -sf "${auth[@]}" "$base/Patient?_count=1000&_elements=id" | python3 -c '
import json, sys
for e in json.load(sys.stdin).get("entry", []): print(e["resource"]["id"])' > "$work/ids"
echo "== reads: GET /fhir/Patient/[id] over $(wc -l < "$work/ids") Patients"
IDS_FILE="$work/ids" wrk -t2 -c"$connections" -d"${seconds}s" --latency "${auth[@]}" -s tests/benches/rest/read.lua "http://127.0.0.1:$p4" \
    | grep -E "Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%|Latency "

# A partner reading the Encounters it wrote: every read asks identity
# (Consent) and referrals (referred patients), and is audited in identity.
org="$(curl -sf "${auth[@]}" -X POST "$base/Organization" -H 'Content-Type: application/fhir+json' \
    -d '{"resourceType":"Organization","name":"Bench clinic"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
partner=(-H "Authorization: Bearer $(env "${env[@]}" "$root/target/release/corridor" token --organization "Organization/$org")")
patient="$(head -1 "$work/ids")"
for _ in $(seq 1 200); do
    curl -sf "${partner[@]}" -X POST "$base/Encounter" -H 'Content-Type: application/fhir+json' \
        -d '{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"VR"},"subject":{"reference":"Patient/'"$patient"'"}}' \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' >> "$work/encounters"
done
echo "== partner reads: GET /fhir/Encounter/[id] over $(wc -l < "$work/encounters") Encounters (access decision + audit)"
IDS_FILE="$work/encounters" READ_PATH=/fhir/Encounter/ wrk -t2 -c"$connections" -d"${seconds}s" --latency "${partner[@]}" \
    -s tests/benches/rest/read.lua "http://127.0.0.1:$p4" \
    | grep -E "Requests/sec|Non-2xx|Socket errors|^ +(50|90|99)%|Latency "
