"""Every official HL7 R4 example of a type the gateway serves
(tests/fixtures/hl7-r4/*.json) round-trips through REST: POSTed without its
id, read back, PUT back as it was (version 2) and read again, its content
unchanged apart from id, meta and text.

References: the services check only the Patient a resource is about
(encounters and referrals ask identity whether it exists), so every
`Patient/...` reference is pointed at a Patient registered first, and the
comparison is with that rewritten example. Other references (Practitioner,
Organization, Encounter, Device, ...) are stored as written, unresolved,
so no example has to be skipped for its references.

One example is skipped unless the gateway says it can take it: the
referrals service makes a Task only through CreateReferral and moves it
only through Transition (the referral state machine), and refuses a Task
written as a plain resource. So task-example.json is posted only when the
CapabilityStatement lists `create` for Task; when it does, the round trip
must work like any other.
"""

from __future__ import annotations

import copy
import json
import pathlib

import pytest

from support import (
    CALLER_ORGANIZATION,
    GATEWAY_TYPES,
    NODE_WRITTEN_TYPES,
    patient_body,
    point_patients_at,
    short,
)

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "hl7-r4"


def examples():
    found = []
    for path in sorted(FIXTURES.glob("*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource.get("resourceType") in GATEWAY_TYPES:
            found.append(pytest.param(path.name, resource, id=path.name))
    return found


def content(resource: dict) -> dict:
    """What the client owns: everything but id, meta and text."""
    return {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}


def interactions(capability: dict, resource_type: str) -> set:
    for resource in capability["rest"][0].get("resource", []):
        if resource["type"] == resource_type:
            return {i["code"] for i in resource.get("interaction", [])}
    return set()


def test_the_fixtures_hold_an_example_of_every_type_the_gateway_serves():
    kinds = {p.values[1]["resourceType"] for p in examples()}
    # The node writes its AuditEvents itself; no client sends one.
    assert kinds == set(GATEWAY_TYPES) - set(NODE_WRITTEN_TYPES)


@pytest.mark.parametrize("name, example", examples())
def test_an_hl7_example_round_trips_through_rest(rest, capability, name, example):
    resource_type = example["resourceType"]
    if resource_type == "Task" and "create" not in interactions(capability, "Task"):
        pytest.skip("the CapabilityStatement does not list create for Task: the referrals service "
                    "makes Tasks only through CreateReferral (the referral state machine)")
    sent = copy.deepcopy(example)
    sent.pop("id", None)
    if point_patients_at(sent, "placeholder"):
        patient = rest.create(patient_body())
        point_patients_at(sent, patient["id"])
    if resource_type == "Consent":
        # The node takes a Consent only from the organization that records it,
        # and only one that says permit or deny (the example says neither).
        sent["organization"] = [{"reference": CALLER_ORGANIZATION}]
        sent.setdefault("provision", {}).setdefault("type", "deny")

    response = rest.post(resource_type, sent)
    assert response.status_code == 201, f"{name} refused: {short(response, 2000)}"
    created = response.json()
    stored = rest.read(resource_type, created["id"])
    assert content(stored) == content(sent), f"{name} changed on the way through POST"

    again = dict(sent, id=created["id"])
    updated = rest.put(f"{resource_type}/{created['id']}", again)
    assert updated.status_code == 200, f"{name} PUT back refused: {short(updated, 2000)}"
    stored = rest.read(resource_type, created["id"])
    assert stored["meta"]["versionId"] == "2"
    assert content(stored) == content(sent), f"{name} changed on the way through PUT"
