"""GET /metadata is a valid R4 CapabilityStatement, and everything it lists
works: for every type, every interaction is performed and every search
parameter is used with a plausible value of its type (200 and a searchset
Bundle expected); every operation and system-level interaction is performed
too. So a statement that lists what the gateway does not do fails here."""

from __future__ import annotations

import json
import uuid

import pytest

from fhircheck import InvalidFHIR
from support import (
    GATEWAY_TYPES,
    acting_for,
    TEST_SYSTEM,
    merge_parameters,
    minimal,
    operation_outcome,
    patient_body,
    refer,
    short,
    transition_parameters,
    unique_identifier,
)

TYPE_INTERACTIONS = ("create", "read", "vread", "update", "patch", "history-instance",
                     "history-type", "search-type", "delete")
SYSTEM_INTERACTIONS = ("transaction", "batch", "search-system", "history-system")

# Plausible values by search parameter type (FHIR R4 SearchParamType).
PLAUSIBLE = {
    "string": "a",
    "token": "123",  # digits, so a phone-number token parses too
    "date": "ge2000-01-01",
    "number": "1",
    "quantity": "5.4|http://unitsofmeasure.org|mg",
    "uri": "http://example.org/fhir/x",
}
# Reference parameters: which target type to try first, by name; the others
# follow, so a parameter passes when it answers for one of its targets.
REFERENCE_GUESS = {
    "patient": "Patient", "subject": "Patient", "for": "Patient", "link": "Patient",
    "encounter": "Encounter", "context": "Encounter",
    "organization": "Organization", "partof": "Organization", "service-provider": "Organization",
    "custodian": "Organization", "owner": "Organization",
    "participant": "Practitioner", "practitioner": "Practitioner",
    "general-practitioner": "Practitioner", "performer": "Practitioner",
    "requester": "Practitioner", "recorder": "Practitioner", "asserter": "Practitioner",
    "author": "Practitioner", "sender": "Practitioner", "recipient": "Practitioner",
    "focus": "ServiceRequest", "based-on": "ServiceRequest",
    "provider": "Organization", "result": "Observation", "claim": "Claim",
}
OTHER_TARGETS = ("Patient", "Practitioner", "Organization", "Encounter", "ServiceRequest",
                 "PractitionerRole", "RelatedPerson", "Group", "Location", "Device",
                 "EpisodeOfCare", "Observation", "Claim")


def rest_entry(capability: dict) -> dict:
    servers = [r for r in capability.get("rest", []) if r.get("mode") == "server"]
    assert servers, "the CapabilityStatement has a rest entry in server mode"
    return servers[0]


def resource_entry(capability: dict, resource_type: str):
    for resource in rest_entry(capability).get("resource", []):
        if resource["type"] == resource_type:
            return resource
    return None


def listed_operation(capability: dict, resource_type: str, name: str) -> bool:
    entry = resource_entry(capability, resource_type) or {}
    return any(o["name"].lstrip("$") == name for o in entry.get("operation", []))


def test_metadata_is_a_valid_r4_capability_statement(rest):
    response = rest.get("metadata", expect=200)
    statement = response.json()  # fhircheck validated it as an R4 CapabilityStatement
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert any("json" in f for f in statement["format"])
    assert not any("xml" in f for f in statement["format"]), "the gateway serves JSON only"
    entry = rest_entry(statement)
    for resource in entry["resource"]:
        assert resource.get("interaction"), f"{resource['type']} lists its interactions"


def test_the_capability_statement_lists_exactly_the_gateways_types(capability):
    listed = [r["type"] for r in rest_entry(capability).get("resource", [])]
    assert len(listed) == len(set(listed)), f"a type listed twice: {listed}"
    assert set(listed) == set(GATEWAY_TYPES)


class Failures:
    """Collects every failure of a type's checks, so one run reports them all."""

    def __init__(self, resource_type):
        self.resource_type = resource_type
        self.items = []

    def check(self, ok: bool, what: str, response=None):
        if not ok:
            self.items.append(f"{what}" + (f"\n    {short(response, 600)}" if response is not None else ""))
        return ok

    def expect(self, response, statuses, what: str):
        statuses = (statuses,) if isinstance(statuses, int) else statuses
        return self.check(response.status_code in statuses, f"{what}: expected {statuses}", response)

    def searchset(self, response, what: str, bundle_type="searchset"):
        if not self.expect(response, 200, what):
            return None
        body = response.json()
        if not self.check(body.get("resourceType") == "Bundle" and body.get("type") == bundle_type,
                          f"{what}: expected a {bundle_type} Bundle", response):
            return None
        return body

    def rest(self, rest):
        """`rest`, but a response that is not valid FHIR is recorded as a
        failure and returned, so that one defect does not hide the others."""
        failures = self

        class Collecting:
            def __getattr__(self, name):
                method = getattr(rest, name)
                if name not in ("get", "post", "put", "delete", "request"):
                    return method

                def call(*args, **kwargs):
                    try:
                        return method(*args, **kwargs)
                    except InvalidFHIR as exc:
                        failures.items.append(str(exc).split("\n")[0][:600])
                        return exc.response
                return call

        return Collecting()

    def assert_none(self):
        assert not self.items, (f"{self.resource_type}: {len(self.items)} listed capabilities "
                                "do not work:\n- " + "\n- ".join(self.items))


def reference_values(name: str, ids: dict, own_type: str, own_id: str | None):
    guess = REFERENCE_GUESS.get(name)
    order = ([guess] if guess else []) + [t for t in OTHER_TARGETS if t != guess]
    for target in order:
        rid = ids.get(target) or (own_id if target == own_type else None) or "unknown-id"
        yield f"{target}/{rid}"


def search_values(param: dict, resource_type: str, ids: dict, own_id: str | None):
    """Candidate values for one listed search parameter (first that works wins)."""
    name, kind = param["name"], param.get("type")
    named = {
        "_id": [own_id or "unknown-id"],
        "_lastUpdated": ["ge2000-01-01"],
        "_count": ["1"],
        "_sort": ["_id"],
        "_summary": ["count"],
        "_elements": ["id"],
        "_total": ["accurate"],
        "_text": ["a"],
        "_content": ["a"],
        "_tag": [f"{TEST_SYSTEM}|x"],
        "_security": [f"{TEST_SYSTEM}|x"],
        "_profile": ["http://example.org/fhir/StructureDefinition/x"],
        "identifier": [f"{TEST_SYSTEM}|x"],
        "phone": ["+15550100"],
        "telecom": ["+15550100"],
        "gender": ["female"],
    }
    if name in named:
        return named[name]
    if name == "_include":
        return []  # handled by the caller: needs a reference parameter of the type
    if kind == "reference":
        return list(reference_values(name, ids, resource_type, own_id))
    if kind in PLAUSIBLE:
        return [PLAUSIBLE[kind]]
    return None  # composite / special: no generic value


def perform_search_param(rest, failures, resource_type, param, ids, own_id, reference_params):
    name = param["name"]
    if name == "_include":
        values = [f"{resource_type}:{p}" for p in reference_params] or [f"{resource_type}:subject"]
        values = values[:1]
    else:
        values = search_values(param, resource_type, ids, own_id)
    if values is None:
        failures.check(False, f"search parameter {name} of type {param.get('type')}: the suite has "
                              "no value for this type; teach test_capability.py how to use it")
        return
    responses = []
    for value in values:
        response = rest.get(resource_type, params={name: value})
        responses.append((value, response))
        if response.status_code == 200:
            break
    value, response = responses[-1]
    failures.searchset(response, f"GET {resource_type}?{name}={value} (listed searchParam, "
                                 f"type {param.get('type')}; tried {[v for v, _ in responses]})")


def probe_unknown_operation(rest, failures, where, name, own_id):
    """An operation this suite does not know: it must at least be routed, at
    the type or at an instance (a 404 that is not 'not-supported' is a
    routed operation that found no such resource)."""
    paths = [f"{where}/${name}"] + ([f"{where}/{own_id}/${name}"] if own_id else [])
    answers = []
    for path in paths:
        response = rest.post(path, {"resourceType": "Parameters",
                                    "parameter": [{"name": "probe", "valueString": "x"}]})
        answers.append(response)
        codes = [i.get("code") for i in (response.json().get("issue", []) if response.content else [])]
        if response.status_code not in (404, 405, 501) or \
                (response.status_code == 404 and "not-supported" not in codes):
            return
    failures.check(False, f"listed operation ${name} is not served at {paths}", answers[-1])


def perform_operation(rest, failures, resource_type, operation, own_id, patient_id):
    """Each operation the statement lists, with the inputs its documentation names."""
    name = operation["name"].lstrip("$")
    if resource_type == "Patient" and name == "match":
        parameters = {"resourceType": "Parameters",
                      "parameter": [{"name": "resource", "resource": patient_body()},
                                    {"name": "count", "valueInteger": 3}]}
        failures.searchset(rest.post("Patient/$match", parameters), "POST Patient/$match")
    elif resource_type == "Patient" and name == "everything":
        failures.searchset(rest.get(f"Patient/{patient_id}/$everything"),
                           f"GET Patient/{patient_id}/$everything")
    elif resource_type == "Patient" and name in ("merge", "unmerge"):
        source, target = rest.create(patient_body()), rest.create(patient_body())
        merged = rest.post("Patient/$merge", merge_parameters(source["id"], target["id"]))
        failures.expect(merged, 200, "POST Patient/$merge")
        if name == "unmerge":
            response = rest.post("Patient/$unmerge", merge_parameters(source["id"], None))
            if failures.expect(response, 200, "POST Patient/$unmerge"):
                again = rest.read("Patient", source["id"])
                failures.check(again.get("active") is not False,
                               "after $unmerge the source Patient is active again", response)
    elif resource_type == "ServiceRequest" and name == "refer":
        response, _ = refer(rest, patient_id)
        if failures.expect(response, 201, "POST ServiceRequest/$refer"):
            kinds = sorted(p["resource"]["resourceType"] for p in response.json()["parameter"])
            failures.check(kinds == ["ServiceRequest", "Task"],
                           "$refer answers the ServiceRequest and its Task", response)
    elif resource_type == "Task" and name == "transition":
        made, parties = refer(rest, patient_id)
        if not failures.expect(made, 201, "POST ServiceRequest/$refer (to have a Task to move)"):
            return
        task = next(p["resource"] for p in made.json()["parameter"] if p["name"] == "task")
        response = rest.post(f"Task/{task['id']}/$transition", transition_parameters("received"),
                             headers={**acting_for(parties["owner"]),
                                      "If-Match": f'W/"{task["meta"]["versionId"]}"'})
        if failures.expect(response, 200, f"POST Task/{task['id']}/$transition"):
            failures.check(response.json().get("status") == "received",
                           "the Task moved to received", response)
    elif name == "validate":
        response = rest.post(f"{resource_type}/$validate", minimal(resource_type, patient_id))
        if failures.expect(response, 200, f"POST {resource_type}/$validate"):
            failures.check(response.json().get("resourceType") == "OperationOutcome",
                           f"{resource_type}/$validate answers an OperationOutcome", response)
    else:
        probe_unknown_operation(rest, failures, resource_type, name, own_id)


@pytest.mark.parametrize("resource_type", GATEWAY_TYPES)
def test_every_listed_interaction_and_search_parameter_works(rest, capability, resource_type):
    entry = resource_entry(capability, resource_type)
    if entry is None:
        pytest.fail(f"the CapabilityStatement does not list {resource_type}", pytrace=False)
    failures = Failures(resource_type)
    rest = failures.rest(rest)
    listed = {i["code"] for i in entry.get("interaction", [])}
    unknown = listed - set(TYPE_INTERACTIONS)
    failures.check(not unknown, f"interactions the suite cannot perform: {sorted(unknown)}")

    patient = rest.create(patient_body())
    ids = {"Patient": patient["id"]}
    own_id = None
    created_by_us = False  # own_id is a minimal() resource about `patient`
    if resource_type == "Patient":
        own_id = patient["id"]
    if "create" in listed:
        response = rest.post(resource_type, minimal(resource_type, patient["id"]))
        if failures.expect(response, 201, f"create: POST {resource_type}"):
            own_id = response.json()["id"]
            created_by_us = True
            failures.check(bool(response.headers.get("Location")), "create answers a Location",
                           response)
    if own_id is None and resource_type == "Task" and listed_operation(capability, "ServiceRequest",
                                                                        "refer"):
        # Tasks are made with their ServiceRequest by ServiceRequest/$refer.
        made, _ = refer(rest, patient["id"])
        if failures.expect(made, 201, "POST ServiceRequest/$refer (to have a Task)"):
            own_id = next(p["resource"]["id"] for p in made.json()["parameter"]
                          if p["name"] == "task")
    if own_id is None:
        found = rest.get(resource_type, params={"_count": "1"})
        entries = found.json().get("entry", []) if found.status_code == 200 else []
        own_id = entries[0]["resource"]["id"] if entries else None
    probe_id = own_id or f"missing-{uuid.uuid4().hex[:8]}"
    if own_id is None and "update" in listed:
        # No way to create one but PUT: update as create, which the statement
        # promises with updateCreate; otherwise the PUT must be refused with
        # an OperationOutcome (the route exists, the resource does not).
        body = dict(minimal(resource_type, patient["id"]), id=probe_id)
        response = rest.put(f"{resource_type}/{probe_id}", body)
        if entry.get("updateCreate"):
            if failures.expect(response, (200, 201), f"update as create (updateCreate is true): "
                                                     f"PUT {resource_type}/{probe_id}"):
                own_id = probe_id
        elif failures.check(400 <= response.status_code < 500
                            and response.status_code not in (405, 501),
                            f"update: PUT {resource_type}/{probe_id} (no instance to use, "
                            "updateCreate not true): expected a refusal", response):
            operation_outcome(response)
    ids[resource_type] = own_id
    # Without an instance (a type the gateway cannot create), the
    # instance-level interactions must at least be routed: 404 and an
    # OperationOutcome for an id that does not exist.
    version = "1"

    def instance(response, what, ok=200):
        if own_id:
            return failures.expect(response, ok, what)
        if failures.expect(response, (404, 410), f"{what} (no {resource_type} to use)"):
            operation_outcome(response)
        return False

    if "read" in listed:
        response = rest.get(f"{resource_type}/{probe_id}")
        if instance(response, f"read: GET {resource_type}/{probe_id}"):
            failures.check(response.json().get("id") == own_id, "read answers the resource", response)
    if "vread" in listed:
        response = rest.get(f"{resource_type}/{probe_id}/_history/1")
        if instance(response, f"vread: GET {resource_type}/{probe_id}/_history/1"):
            failures.check(response.json()["meta"].get("versionId") == "1", "vread of version 1",
                           response)
    if "update" in listed:
        if own_id:
            current = rest.get(f"{resource_type}/{own_id}").json()
            current["identifier"] = current.get("identifier", []) + [unique_identifier()]
            response = rest.put(f"{resource_type}/{own_id}", current)
            if failures.expect(response, 200, f"update: PUT {resource_type}/{own_id}"):
                version = response.json()["meta"]["versionId"]
    if "patch" in listed:
        if own_id:
            current = rest.get(f"{resource_type}/{own_id}").json()
            op = ({"op": "add", "path": "/identifier/-", "value": unique_identifier()}
                  if current.get("identifier") else
                  {"op": "add", "path": "/identifier", "value": [unique_identifier()]})
            response = rest.request("PATCH", f"{resource_type}/{own_id}", raw=_json([op]),
                                    headers={"Content-Type": "application/json-patch+json"})
            if failures.expect(response, 200, f"patch: PATCH {resource_type}/{own_id}"):
                version = response.json()["meta"]["versionId"]
        else:
            response = rest.request("PATCH", f"{resource_type}/{probe_id}", raw=b"[]",
                                    headers={"Content-Type": "application/json-patch+json"})
            instance(response, f"patch: PATCH {resource_type}/{probe_id}")
    if "history-instance" in listed:
        response = rest.get(f"{resource_type}/{probe_id}/_history")
        if own_id:
            history = failures.searchset(response, f"history-instance: GET {resource_type}/"
                                                   f"{own_id}/_history", bundle_type="history")
            if history is not None:
                failures.check(len(history.get("entry", [])) == int(version),
                               f"history lists all {version} versions", response)
        else:
            instance(response, f"history-instance: GET {resource_type}/{probe_id}/_history")
    if "history-type" in listed:
        failures.searchset(rest.get(f"{resource_type}/_history", params={"_count": "2"}),
                           f"history-type: GET {resource_type}/_history", bundle_type="history")
    if "search-type" in listed:
        failures.searchset(rest.get(resource_type, params={"_count": "2"}),
                           f"search-type: GET {resource_type}")
        failures.searchset(
            rest.post(f"{resource_type}/_search", data={"_count": "2"},
                      headers={"Content-Type": "application/x-www-form-urlencoded"}),
            f"search-type: POST {resource_type}/_search")
    else:
        failures.check(not entry.get("searchParam"),
                       "search parameters listed for a type without search-type")

    params = list(entry.get("searchParam", [])) + list(rest_entry(capability).get("searchParam", []))
    reference_params = [p["name"] for p in params if p.get("type") == "reference"]
    for param in params:
        perform_search_param(rest, failures, resource_type, param, ids, own_id, reference_params)

    for include in entry.get("searchInclude", []):
        params = {"_include": include, "_id": own_id or "unknown-id"}
        bundle = failures.searchset(rest.get(resource_type, params=params),
                                    f"GET {resource_type}?_include={include} (listed searchInclude)")
        points_at_patient = include.split(":")[1:2] in (["patient"], ["subject"], ["for"])
        if bundle is not None and created_by_us and points_at_patient:
            included = [(e["resource"]["resourceType"], e["resource"]["id"])
                        for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "include"]
            failures.check(("Patient", patient["id"]) in included,
                           f"_include={include} includes the {resource_type}'s Patient: {included}")
    for include in entry.get("searchRevInclude", []):
        failures.searchset(rest.get(resource_type, params={"_revinclude": include, "_count": "1"}),
                           f"GET {resource_type}?_revinclude={include} (listed searchRevInclude)")

    if entry.get("conditionalCreate") and created_by_us:
        response = rest.post(resource_type, minimal(resource_type, patient["id"]),
                             headers={"If-None-Exist": f"_id={own_id}"})
        if failures.expect(response, 200, f"conditionalCreate: POST {resource_type} with "
                                          f"If-None-Exist: _id={own_id}"):
            failures.check(response.json().get("id") == own_id,
                           "a conditional create that matches answers the existing resource", response)

    for operation in entry.get("operation", []):
        perform_operation(rest, failures, resource_type, operation, own_id, patient["id"])

    if "delete" in listed:
        response = rest.delete(f"{resource_type}/{probe_id}")
        if own_id:
            if failures.expect(response, (200, 204), f"delete: DELETE {resource_type}/{own_id}"):
                gone = rest.get(f"{resource_type}/{own_id}")
                failures.expect(gone, 410, f"read after delete: GET {resource_type}/{own_id}")
        else:
            failures.expect(response, (200, 204, 404),
                            f"delete: DELETE {resource_type}/{probe_id} (no instance to use)")
    failures.assert_none()


def _json(value) -> bytes:
    return json.dumps(value).encode("utf-8")


def test_every_listed_system_interaction_and_operation_works(rest, capability):
    entry = rest_entry(capability)
    failures = Failures("system")
    rest = failures.rest(rest)
    listed = {i["code"] for i in entry.get("interaction", [])}
    unknown = listed - set(SYSTEM_INTERACTIONS)
    failures.check(not unknown, f"system interactions the suite cannot perform: {sorted(unknown)}")
    patient = rest.create(patient_body())
    if "transaction" in listed:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": patient_body(),
             "request": {"method": "POST", "url": "Patient"}}]}
        answer = failures.searchset(rest.post("", bundle), "transaction: POST [base]",
                                    bundle_type="transaction-response")
        if answer is not None:
            failures.check(answer["entry"][0]["response"]["status"].startswith("201"),
                           "the transaction's create answers 201")
    if "batch" in listed:
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": patient_body(), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{patient['id']}"}}]}
        answer = failures.searchset(rest.post("", bundle), "batch: POST [base]",
                                    bundle_type="batch-response")
        if answer is not None:
            statuses = [e["response"]["status"].split()[0] for e in answer["entry"]]
            failures.check(statuses == ["201", "200"], f"batch entries answer 201, 200: {statuses}")
    if "search-system" in listed:
        failures.searchset(rest.get("", params={"_type": "Patient", "_id": patient["id"]}),
                           "search-system: GET [base]?_type=Patient")
    if "history-system" in listed:
        failures.searchset(rest.get("_history", params={"_count": "2"}),
                           "history-system: GET [base]/_history", bundle_type="history")
    for operation in entry.get("operation", []):
        probe_unknown_operation(rest, failures, "", operation["name"].lstrip("$"), None)
    failures.assert_none()
