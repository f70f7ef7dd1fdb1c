"""The Synthea sample through a standard FHIR client (fhirpy): 60 transaction
Bundles of the shape hospitals export, each a patient's whole record whose
entries belong to the identity and encounters services. Every Bundle loads
whole, Patient/$everything then gives back exactly what the Bundle held
(counted by type), and posting every Bundle again with the key it was first
sent with creates nothing. The Bundles are tests/fixtures/synthea-r4.tar.xz,
a copy of ../shared/data/synthea-r4/."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import tarfile

import pytest
from fhirpy import SyncFHIRClient

ARCHIVE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "synthea-r4.tar.xz")


def sample() -> list[tuple[str, bytes]]:
    with tarfile.open(ARCHIVE) as tar:
        return [(member.name.split("/")[-1], tar.extractfile(member).read())
                for member in sorted(tar.getmembers(), key=lambda m: m.name) if member.isfile()]


def key_of(raw: bytes) -> str:
    """The idempotency key a loader would give a file: its content's hash."""
    return "synthea-" + hashlib.sha256(raw).hexdigest()[:32]


def post(base: str, raw: bytes) -> dict:
    client = SyncFHIRClient(base, extra_headers={"X-Idempotency-Key": key_of(raw)},
                            requests_config={"timeout": 300})
    return client.execute("", method="post", data=json.loads(raw))


def counts(rest, types) -> dict:
    return {t: rest.search(t, {"_summary": "count"})["total"] for t in sorted(types)}


def everything(base: str, patient_id: str) -> collections.Counter:
    """Each distinct resource of the patient's $everything, counted by type."""
    client = SyncFHIRClient(base, requests_config={"timeout": 300})
    seen, found = set(), collections.Counter()
    page = client.execute(f"Patient/{patient_id}/$everything", method="get",
                          params={"_count": "500"})
    while True:
        for entry in page.get("entry", []):
            resource = entry["resource"]
            key = (resource["resourceType"], resource["id"])
            if key not in seen:
                seen.add(key)
                found[resource["resourceType"]] += 1
        following = [link["url"] for link in page.get("link", []) if link["relation"] == "next"]
        if not following:
            return found
        page = client.execute(following[0], method="get")


@pytest.fixture(scope="module")
def loaded(base):
    """Every Bundle of the sample, posted once: (file, its Bundle, the answer)."""
    results = []
    for name, raw in sample():
        answer = post(base, raw)
        results.append((name, json.loads(raw), answer))
    return results


def test_the_sample_is_sixty_transaction_bundles_across_identity_and_encounters():
    bundles = [json.loads(raw) for _, raw in sample()]
    assert len(bundles) == 60
    assert {b["type"] for b in bundles} == {"transaction"}
    types = {e["resource"]["resourceType"] for b in bundles for e in b["entry"]}
    assert {"Patient", "Organization", "Encounter", "Observation", "Claim"} <= types


def test_every_bundle_loads_whole_in_one_transaction(loaded):
    for name, bundle, answer in loaded:
        assert answer["type"] == "transaction-response", name
        assert len(answer["entry"]) == len(bundle["entry"]), name
        statuses = {e["response"]["status"] for e in answer["entry"]}
        assert statuses == {"201 Created"}, (name, statuses)


def test_everything_for_each_patient_is_exactly_their_bundle(base, loaded):
    patients = 0
    for name, bundle, answer in loaded:
        written = [e for e, a in zip(bundle["entry"], answer["entry"])
                   if e["resource"]["resourceType"] == "Patient"]
        if not written:
            continue  # the sample's hospital and practitioner directories
        patients += 1
        location = next(a["response"]["location"] for e, a in zip(bundle["entry"], answer["entry"])
                        if e["resource"]["resourceType"] == "Patient")
        patient_id = location.split("/Patient/")[1].split("/")[0]
        expected = collections.Counter(e["resource"]["resourceType"] for e in bundle["entry"])
        assert everything(base, patient_id) == expected, name
    assert patients == 58


def test_posting_every_bundle_again_creates_nothing_new(base, rest, loaded):
    types = {e["resource"]["resourceType"] for _, bundle, _ in loaded for e in bundle["entry"]}
    before = counts(rest, types)
    for (name, raw), (_, _, first) in zip(sample(), loaded):
        again = post(base, raw)
        assert [e["response"]["location"] for e in again["entry"]] == \
            [e["response"]["location"] for e in first["entry"]], name
    assert counts(rest, types) == before
