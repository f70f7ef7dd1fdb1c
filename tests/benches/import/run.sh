#!/usr/bin/env bash
# Ingest figures of a release node through its REST gateway, on SQLite and,
# when CORRIDOR_TEST_POSTGRES_URL is set, on PostgreSQL (a fresh database made
# for the run). Input from tests/benches/import/generate.py (the Synthea sample
# of tests/fixtures and a generated larger set):
#
#   1. one transaction: the largest Synthea bundle (145 entries, identity and
#      encounters) five times as new people, and one of >= 3,737 entries
#      (whole patient bundles), posted with curl: resources per second;
#   2. bulk: `corridor import` of the 60 Synthea bundles, then of the larger
#      set (IMPORT_COPIES copies of every patient, 10 by default: about 58,000
#      resources), IMPORT_CONCURRENCY requests at a time (4): its own figures;
#   3. $import of NDJSON Patients (4,000): from kick-off to the manifest.
#
# Prints figures; asserts nothing about speed. IMPORT_BACKENDS="sqlite postgres"
# chooses the backends.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root="$PWD"
copies="${IMPORT_COPIES:-10}"
concurrency="${IMPORT_CONCURRENCY:-4}"
backends="${IMPORT_BACKENDS:-sqlite${CORRIDOR_TEST_POSTGRES_URL:+ postgres}}"
bin="$root/target/release/corridor"

cargo build --release -p corridor
work="$(mktemp -d)"
node=""
database=""
stop_node() {
    if [ -n "$node" ]; then
        kill -TERM "$node" 2>/dev/null || true
        wait "$node" 2>/dev/null || true
        node=""
    fi
}
cleanup() {
    stop_node
    [ -n "$database" ] && dropdb -h 127.0.0.1 -U postgres --if-exists "$database" || true
    rm -rf "$work"
}
trap cleanup EXIT

python3 tests/benches/import/generate.py "$work/input" "$copies" 3737 4000
largest="$(ls -S "$work/input/sample"/*_*.json | head -1)"

echo "== $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); release build"
for backend in $backends; do
    read -r p1 p2 p3 p4 p5 < <(python3 -c '
import socket
held = [socket.socket() for _ in range(5)]
for s in held: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))')
    data="$work/data-$backend"
    env=(CORRIDOR_DATA_DIR="$data" CORRIDOR_IDENTITY_ADDR="127.0.0.1:$p1" CORRIDOR_ENCOUNTERS_ADDR="127.0.0.1:$p2"
         CORRIDOR_REFERRALS_ADDR="127.0.0.1:$p3" CORRIDOR_GATEWAY_ADDR="127.0.0.1:$p4" CORRIDOR_FEDERATION_ADDR="127.0.0.1:$p5"
         CORRIDOR_GATEWAY_MAX_BUNDLE_ENTRIES=5000 CORRIDOR_MAX_RESOURCE_BYTES=67108864
         CORRIDOR_GATEWAY_MAX_BODY_BYTES=67108864 RUST_LOG=warn)
    if [ "$backend" = postgres ]; then
        admin="${CORRIDOR_TEST_POSTGRES_URL:?set CORRIDOR_TEST_POSTGRES_URL}"
        database="corridor_bench_import_$$"
        createdb -h 127.0.0.1 -U postgres "$database"
        env+=(CORRIDOR_DATABASE_URL="${admin%/*}/$database")
    fi
    env "${env[@]}" "$bin" serve > "$work/node-$backend.log" 2>&1 &
    node=$!
    base="http://127.0.0.1:$p4/fhir"
    for _ in $(seq 1 150); do
        curl -sf -o /dev/null "$base/metadata" && break
        sleep 0.2
    done
    curl -sf -o /dev/null "$base/metadata" || { echo "the node did not start"; cat "$work/node-$backend.log"; exit 1; }
    export CORRIDOR_TOKEN="$(env "${env[@]}" "$bin" token --lifetime-secs 43200)"
    auth=(-H "Authorization: Bearer $CORRIDOR_TOKEN")

    post() { # FILE: entries, seconds
        local out
        out="$(curl -s -o "$work/answer.json" -w '%{http_code} %{time_total}' "${auth[@]}" -X POST "$base" \
            -H 'Content-Type: application/fhir+json' --data-binary @"$1")"
        [ "${out%% *}" = 200 ] || { echo "POST $1: ${out%% *}"; head -c 600 "$work/answer.json"; echo; exit 1; }
        echo "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["entry"]))' "$1") ${out#* }"
    }
    echo "== $backend: one transaction"
    for copy in 0 1 2 3 4; do
        name="c$copy-$(basename "$largest")"
        read -r entries seconds < <(post "$work/input/larger/$name")
        python3 -c "import sys; e,s=int(sys.argv[1]),float(sys.argv[2]); print(f'  {e} entries (largest Synthea bundle, new person {sys.argv[3]}): {s*1000:.0f} ms, {e/s:.0f} resources/s')" "$entries" "$seconds" "$copy"
    done
    read -r entries seconds < <(post "$work/input/big/one-transaction.json")
    python3 -c "import sys; e,s=int(sys.argv[1]),float(sys.argv[2]); print(f'  {e} entries in one transaction: {s:.2f} s, {e/s:.0f} resources/s')" "$entries" "$seconds"

    echo "== $backend: corridor import --concurrency $concurrency"
    for set in sample larger; do
        "$bin" import --base-url "$base" --concurrency "$concurrency" --state "$work/state-$backend-$set" \
            "$work/input/$set" 2>/dev/null | sed -n '2p' | sed "s/^ */  $set: /"
    done

    echo "== $backend: \$import of $(wc -l < "$work/input/patients.ndjson") NDJSON Patients"
    start=$(date +%s.%N)
    status="$(curl -s -D - -o /dev/null "${auth[@]}" -X POST "$base/\$import" -H 'Content-Type: application/fhir+ndjson' \
        -H 'Prefer: respond-async' --data-binary @"$work/input/patients.ndjson" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-location" {print $2}')"
    [ -n "$status" ] || { echo "no status URL"; exit 1; }
    until [ "$(curl -s -o "$work/manifest.json" -w '%{http_code}' "${auth[@]}" "$status")" = 200 ]; do sleep 0.2; done
    end=$(date +%s.%N)
    python3 -c "
import json,sys
m=json.load(open(sys.argv[1])); n=sum(o['count'] for o in m['output']); s=float(sys.argv[3])-float(sys.argv[2])
print(f'  {n} written, {sum(e[\"count\"] for e in m[\"error\"])} failed, in {s:.1f} s: {n/s:.0f} resources/s')" "$work/manifest.json" "$start" "$end"
    stop_node
    if [ -n "$database" ]; then
        dropdb -h 127.0.0.1 -U postgres --if-exists "$database"
        database=""
    fi
done
