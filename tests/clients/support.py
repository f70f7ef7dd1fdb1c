"""The suite's own small REST client (plain requests) and resource builders.

Responses pass through fhircheck's hook like every other client's, so
nothing here re-validates bodies; it only asserts statuses and shapes.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import uuid
from urllib.parse import urlsplit

import requests

FHIR_JSON = "application/fhir+json"
# The organization the suite's token acts for: `corridor token`'s default.
CALLER_ORGANIZATION = "Organization/corridor-dev"
TEST_SYSTEM = "urn:corridor:clients-test"

IDENTITY_TYPES = ("Patient", "Organization", "Practitioner", "Consent")
ENCOUNTERS_TYPES = (
    "Encounter", "Observation", "Condition", "Communication", "Immunization",
    "AllergyIntolerance", "MedicationStatement", "DocumentReference",
    "Procedure", "DiagnosticReport", "MedicationRequest", "CarePlan", "Goal",
    "ImagingStudy", "Claim", "ExplanationOfBenefit",
)
REFERRALS_TYPES = ("ServiceRequest", "Task")
# Types only the node writes (the audit trail, kept by identity): read and
# searched through the gateway, never created.
NODE_WRITTEN_TYPES = ("AuditEvent",)
GATEWAY_TYPES = IDENTITY_TYPES + ENCOUNTERS_TYPES + REFERRALS_TYPES + NODE_WRITTEN_TYPES


def unique_name(prefix: str = "Qz") -> str:
    """A family name no other test uses (letters only, so a FHIR string
    search for it is a prefix match on it alone)."""
    return prefix + "".join(random.choices(string.ascii_lowercase, k=12))


def unique_identifier() -> dict:
    return {"system": TEST_SYSTEM, "value": str(uuid.uuid4())}


def token(identifier: dict) -> str:
    return f"{identifier['system']}|{identifier['value']}"


def short(response: requests.Response, limit: int = 800) -> str:
    text = response.text if response.content else "(empty body)"
    return f"{response.request.method} {response.url} -> {response.status_code}: {text[:limit]}"


class Rest:
    """A thin client for the gateway's FHIR base URL."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Accept": FHIR_JSON})

    def url(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return f"{self.base}/{path.lstrip('/')}" if path else self.base

    def request(self, method, path, *, body=None, raw=None, headers=None, params=None,
                data=None, expect=None, timeout=60) -> requests.Response:
        headers = dict(headers or {})
        if body is not None:
            raw = json.dumps(body).encode("utf-8")
            headers.setdefault("Content-Type", FHIR_JSON)
        response = self.session.request(
            method, self.url(path), data=raw if raw is not None else data,
            headers=headers, params=params, timeout=timeout)
        if expect is not None:
            wanted = (expect,) if isinstance(expect, int) else tuple(expect)
            assert response.status_code in wanted, f"expected {wanted}: {short(response)}"
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- conveniences that assert the happy path ---------------------------

    def create(self, resource: dict, **kw) -> dict:
        response = self.post(resource["resourceType"], resource, expect=201, **kw)
        created = response.json()
        assert created.get("id"), f"created resource has no id: {short(response)}"
        return created

    def read(self, resource_type: str, rid: str) -> dict:
        return self.get(f"{resource_type}/{rid}", expect=200).json()

    def search(self, resource_type: str, params=None) -> dict:
        response = self.get(resource_type, params=params, expect=200)
        bundle = response.json()
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", short(response)
        return bundle

    def search_all(self, resource_type: str, params=None, max_pages: int = 100):
        """Every match of a search, following `next` links exactly as given.
        Returns (resources, pages fetched)."""
        bundle = self.search(resource_type, params)
        found, pages = list(matches(bundle)), 1
        while (next_url := link(bundle, "next")) is not None:
            assert_absolute(next_url)
            assert pages < max_pages, "next links never end"
            bundle = self.get(next_url, expect=200).json()
            assert bundle["type"] == "searchset"
            found.extend(matches(bundle))
            pages += 1
        return found, pages


def link(bundle: dict, relation: str):
    for entry in bundle.get("link", []):
        if entry.get("relation") == relation:
            return entry.get("url")
    return None


def assert_absolute(url: str):
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.netloc, f"link is not absolute: {url!r}"


def matches(bundle: dict):
    """The resources of a searchset's entries that are matches (not
    _include'd resources nor OperationOutcomes)."""
    for entry in bundle.get("entry", []):
        mode = entry.get("search", {}).get("mode", "match")
        if mode == "match" and "resource" in entry:
            yield entry["resource"]


def ids(resources) -> list:
    return [r["id"] for r in resources]


# -- minimal valid R4 resources of every type the gateway serves -------------

def patient_body(family: str | None = None) -> dict:
    return {
        "resourceType": "Patient",
        "name": [{"family": family or unique_name(), "given": ["Amina"]}],
        "gender": "female",
        "birthDate": "1990-04-12",
    }


def claim_like(resource_type: str, subject: dict) -> dict:
    """A Claim or ExplanationOfBenefit of `subject`, paid in cash."""
    body = {
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                             "code": "professional"}]},
        "use": "claim",
        "patient": subject,
        "created": "2024-03-01",
        "provider": {"display": "clients test clinic"},
    }
    if resource_type == "Claim":
        body["priority"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]}
        body["insurance"] = [{"sequence": 1, "focal": True, "coverage": {"display": "Cash"}}]
    else:
        body["insurer"] = {"display": "Cash"}
        body["outcome"] = "complete"
        body["insurance"] = [{"focal": True, "coverage": {"display": "Cash"}}]
    return body


def minimal(resource_type: str, patient_id: str) -> dict:
    """A small valid R4 resource of `resource_type` about Patient/`patient_id`."""
    subject = {"reference": f"Patient/{patient_id}"}
    text = {"text": "clients test"}
    bodies = {
        "Patient": patient_body(),
        "Organization": {"name": unique_name("Org")},
        "Practitioner": {"name": [{"family": unique_name(), "given": ["Rafael"]}]},
        "Encounter": {
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB", "display": "ambulatory"},
            "subject": subject,
            "period": {"start": "2024-03-01T09:00:00Z", "end": "2024-03-01T09:30:00Z"},
        },
        "Observation": {
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5",
                                 "display": "Body temperature"}]},
            "subject": subject,
            "effectiveDateTime": "2024-03-01T09:10:00Z",
            "valueQuantity": {"value": 37.2, "unit": "Cel", "system": "http://unitsofmeasure.org",
                              "code": "Cel"},
        },
        "Condition": {
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": text,
            "subject": subject,
            "recordedDate": "2024-03-01",
        },
        "Communication": {"status": "completed", "subject": subject,
                          "sent": "2024-03-01T09:20:00Z",
                          "payload": [{"contentString": "How are you today?"}]},
        "Immunization": {
            "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
            "patient": subject,
            "occurrenceDateTime": "2024-03-01",
        },
        "AllergyIntolerance": {
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active"}]},
            "code": {"text": "peanut"},
            "patient": subject,
            "recordedDate": "2024-03-01",
        },
        "MedicationStatement": {"status": "active", "medicationCodeableConcept": text,
                                "subject": subject, "effectiveDateTime": "2024-03-01"},
        "DocumentReference": {
            "status": "current",
            "subject": subject,
            "date": "2024-03-01T09:30:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}],
        },
        "Procedure": {"status": "completed", "code": text, "subject": subject,
                      "performedDateTime": "2024-03-01T09:15:00Z"},
        "DiagnosticReport": {
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2",
                                 "display": "CBC panel"}]},
            "subject": subject,
            "effectiveDateTime": "2024-03-01T09:15:00Z",
            "issued": "2024-03-01T10:00:00Z",
        },
        "MedicationRequest": {"status": "active", "intent": "order",
                              "medicationCodeableConcept": text, "subject": subject,
                              "authoredOn": "2024-03-01"},
        "CarePlan": {"status": "active", "intent": "plan", "subject": subject,
                     "period": {"start": "2024-03-01"}},
        "Goal": {"lifecycleStatus": "active", "description": text, "subject": subject,
                 "startDate": "2024-03-01"},
        "ImagingStudy": {"status": "available", "subject": subject,
                         "started": "2024-03-01T09:00:00Z"},
        "Claim": claim_like("Claim", subject),
        "ExplanationOfBenefit": claim_like("ExplanationOfBenefit", subject),
        "ServiceRequest": {"status": "active", "intent": "order", "subject": subject,
                           "code": {"text": "physiotherapy"}, "authoredOn": "2024-03-01"},
        "Task": {"status": "requested", "intent": "order", "for": subject,
                 "authoredOn": "2024-03-01"},
        # Recorded by the caller's own organization, as the node requires.
        "Consent": {
            "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": subject,
            "dateTime": "2024-03-01",
            "organization": [{"reference": CALLER_ORGANIZATION}],
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "OPTIN"}]},
            "provision": {"type": "deny"},
        },
    }
    body = dict(bodies[resource_type])
    body["resourceType"] = resource_type
    return body


def point_patients_at(value, patient_id: str):
    """Every `reference` to a Patient in `value` rewritten to Patient/`patient_id`
    (in place); returns how many were rewritten."""
    count = 0
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "reference" and isinstance(child, str) and child.startswith("Patient/"):
                value[key] = f"Patient/{patient_id}"
                count += 1
            else:
                count += point_patients_at(child, patient_id)
    elif isinstance(value, list):
        for child in value:
            count += point_patients_at(child, patient_id)
    return count


def operation_outcome(response: requests.Response) -> dict:
    """The OperationOutcome an error response must carry."""
    assert response.content, f"error without a body: {short(response)}"
    body = response.json()
    assert body.get("resourceType") == "OperationOutcome", f"not an OperationOutcome: {short(response)}"
    assert body.get("issue"), f"OperationOutcome without issues: {short(response)}"
    return body


# -- Corridor's own operations (documented in the CapabilityStatement) --------

def acting_for(organization: str) -> dict:
    """Headers that act for `organization`: a token for it from `corridor
    token`, run with the node's own settings (the environment run.sh gives)."""
    token = subprocess.run([os.environ["CORRIDOR_BIN"], "token", "--organization", organization],
                           capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    return {"Authorization": f"Bearer {token}"}


def refer(rest: Rest, patient_id: str):
    """ServiceRequest/$refer: a referral from one new Organization to another
    about Patient/`patient_id`. Returns (response, {"requester", "owner"})."""
    requester = rest.create({"resourceType": "Organization", "name": unique_name("Ngo")})
    owner = rest.create({"resourceType": "Organization", "name": unique_name("Hospital")})
    parties = {"requester": f"Organization/{requester['id']}", "owner": f"Organization/{owner['id']}"}
    service_request = dict(minimal("ServiceRequest", patient_id),
                           requester={"reference": parties["requester"]},
                           performer=[{"reference": parties["owner"]}])
    parameters = {"resourceType": "Parameters",
                  "parameter": [{"name": "serviceRequest", "resource": service_request}]}
    response = rest.post("ServiceRequest/$refer", parameters,
                         headers=acting_for(parties["requester"]))
    return response, parties


def transition_parameters(status: str, reason: str | None = None) -> dict:
    parameter = [{"name": "status", "valueCode": status}]
    if reason:
        parameter.append({"name": "reason", "valueString": reason})
    return {"resourceType": "Parameters", "parameter": parameter}


def merge_parameters(source_id: str, target_id: str | None) -> dict:
    parameter = [{"name": "source-patient", "valueReference": {"reference": f"Patient/{source_id}"}},
                 {"name": "decided-by", "valueString": "clients test"}]
    if target_id:
        parameter.append({"name": "target-patient",
                          "valueReference": {"reference": f"Patient/{target_id}"}})
    return {"resourceType": "Parameters", "parameter": parameter}
