"""The bad-input corpus: each request gets the status the contract names and
an OperationOutcome, and stores nothing (a search afterwards finds nothing,
or the resource is unchanged)."""

from __future__ import annotations

import json

import pytest
import requests

from support import operation_outcome, patient_body, short, unique_name

FOUR_MIB = 4 * 1024 * 1024


def refused(response, *statuses):
    assert response.status_code in statuses, f"expected {statuses}: {short(response)}"
    return operation_outcome(response)


def nobody_named(rest, family: str):
    found, _ = rest.search_all("Patient", {"family": family})
    assert found == [], f"nothing was stored, yet {len(found)} Patient(s) named {family} exist"


def test_malformed_json_is_400(rest):
    family = unique_name()
    text = json.dumps(patient_body(family))[:-10]  # cut short
    refused(rest.post("Patient", raw=text.encode(),
                      headers={"Content-Type": "application/fhir+json"}), 400)
    nobody_named(rest, family)


def test_a_body_that_is_not_fhir_json_is_415(rest):
    family = unique_name()
    body = json.dumps(patient_body(family)).encode()
    refused(rest.post("Patient", raw=body, headers={"Content-Type": "text/plain"}), 415)
    nobody_named(rest, family)


def test_a_resource_type_other_than_the_urls_is_400(rest):
    name = unique_name("Org")
    refused(rest.post("Patient", {"resourceType": "Organization", "name": name}), 400)
    found, _ = rest.search_all("Organization", {"name": name})
    assert found == [], "no Organization was stored through /Patient"


def test_an_id_in_the_body_other_than_the_urls_is_400_on_put(rest):
    created = rest.create(patient_body())
    other_family = unique_name()
    body = dict(patient_body(other_family), id="someone-else")
    refused(rest.put(f"Patient/{created['id']}", body), 400)
    assert rest.read("Patient", created["id"]) == created, "the Patient is unchanged"
    assert rest.get("Patient/someone-else").status_code in (404, 410)
    nobody_named(rest, other_family)


@pytest.mark.parametrize("size", [FOUR_MIB + 1024, 17 * 1024 * 1024],
                         ids=["just-over-4-MiB", "17-MiB"])
def test_a_body_over_4_mib_is_413(rest, size):
    family = unique_name()
    body = patient_body(family)
    body["name"][0]["text"] = "x" * size
    # A connection of its own: a server may close it after refusing a body
    # it did not read, and the suite's shared session should not inherit that.
    response = requests.post(rest.url("Patient"), data=json.dumps(body),
                             headers={"Content-Type": "application/fhir+json",
                                      "Accept": "application/fhir+json", "Connection": "close"},
                             timeout=120)
    refused(response, 413)
    nobody_named(rest, family)


EARLY_REFUSALS = {
    # name: (status, extra headers, size of the Patient's name text)
    "413-for-17-MiB": (413, {}, 17 * 1024 * 1024),
    "406-for-a-POST-asking-for-XML": (406, {"Accept": "application/fhir+xml"}, 10),
}


@pytest.mark.parametrize("case", sorted(EARLY_REFUSALS))
def test_a_keep_alive_connection_still_works_after_an_early_refusal(base, case):
    """A client that keeps its connection open (a requests.Session, as SMART's
    fhirclient uses) sends its next request on it after a refusal that the
    server gave without reading the body: the server must keep the
    connection usable or say `Connection: close`. Ten tries, since a
    connection dropped without notice fails the next request only sometimes."""
    status, headers, size = EARLY_REFUSALS[case]
    body = patient_body()
    body["name"][0]["text"] = "x" * size
    raw = json.dumps(body)
    for attempt in range(10):
        session = requests.Session()
        refused_once = session.post(f"{base}/Patient", data=raw, timeout=120,
                                    headers={"Content-Type": "application/fhir+json", **headers})
        assert refused_once.status_code == status, short(refused_once)
        try:
            after = session.get(f"{base}/metadata", timeout=60)
        except requests.ConnectionError as exc:
            pytest.fail(f"try {attempt + 1}: after a {status} (sent with Connection: "
                        f"{refused_once.headers.get('Connection')!r}), the next request on the "
                        f"same connection failed: {exc}", pytrace=False)
        assert after.status_code == 200, short(after)
        session.close()


@pytest.mark.parametrize("bundle_type", ["batch", "transaction"])
def test_a_bundle_of_more_than_1000_entries_is_refused(rest, bundle_type):
    family = unique_name()
    entries = [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
                "resource": patient_body(family),
                "request": {"method": "POST", "url": "Patient"}} for i in range(1001)]
    bundle = {"resourceType": "Bundle", "type": bundle_type, "entry": entries}
    refused(rest.post("", bundle), 413, 400)
    nobody_named(rest, family)


def test_an_unknown_search_parameter_with_strict_handling_is_400(rest):
    refused(rest.get("Patient", params={"shoe-size": "42"}, headers={"Prefer": "handling=strict"}),
            400)


def test_xml_is_406_whichever_way_it_is_asked_for(rest):
    created = rest.create(patient_body())
    path = f"Patient/{created['id']}"
    refused(rest.get(path, params={"_format": "xml"}), 406)
    refused(rest.get(path, headers={"Accept": "application/fhir+xml"}), 406)
    refused(rest.get("metadata", headers={"Accept": "application/fhir+xml"}), 406)
    family = unique_name()
    # A connection of its own, as for the 413 above.
    refused(requests.post(rest.url("Patient"), data=json.dumps(patient_body(family)), timeout=60,
                          headers={"Content-Type": "application/fhir+json",
                                   "Accept": "application/fhir+xml", "Connection": "close"}),
            406)
    nobody_named(rest, family)
