"""The gateway's HTTP contract with plain requests: versioning headers and
If-Match, transactions and batches, idempotency keys, conditional create,
Prefer, _summary/_elements, gzip, POST _search, history, and the Patient
operations."""

from __future__ import annotations

import re
import uuid

import requests

from support import (
    matches,
    minimal,
    operation_outcome,
    patient_body,
    short,
    token,
    unique_identifier,
    unique_name,
)

ETAG = re.compile(r'^W/"([^"]+)"$')


def etag_version(response) -> str:
    etag = response.headers.get("ETag", "")
    found = ETAG.match(etag)
    assert found, f"ETag is W/\"<versionId>\", got {etag!r}: {short(response)}"
    return found.group(1)


def test_create_answers_201_with_location_etag_and_last_modified(rest, base):
    response = rest.post("Patient", patient_body(), expect=201)
    created = response.json()
    assert created["meta"]["versionId"] == "1"
    assert etag_version(response) == "1"
    assert response.headers.get("Last-Modified"), "Last-Modified on create"
    assert response.headers.get("Location") == f"{base}/Patient/{created['id']}/_history/1"

    read = rest.get(f"Patient/{created['id']}", expect=200)
    assert etag_version(read) == "1"
    assert read.headers.get("Last-Modified")
    assert read.json() == created


def test_a_stale_if_match_is_refused_with_412_and_changes_nothing(rest):
    created = rest.create(patient_body())
    path = f"Patient/{created['id']}"
    first = dict(created, gender="other")
    second = rest.put(path, first, headers={"If-Match": 'W/"1"'}, expect=200)
    assert etag_version(second) == "2"

    stale = dict(created, gender="male")
    refused = rest.put(path, stale, headers={"If-Match": 'W/"1"'})
    assert refused.status_code == 412, short(refused)
    operation_outcome(refused)
    current = rest.read("Patient", created["id"])
    assert current["meta"]["versionId"] == "2" and current["gender"] == "other"


def test_a_transaction_creates_an_encounter_and_its_observation_with_urn_uuid_references(rest, patient):
    encounter_url, observation_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    encounter = minimal("Encounter", patient["id"])
    observation = minimal("Observation", patient["id"])
    observation["encounter"] = {"reference": encounter_url}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": observation_url, "resource": observation,
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": encounter_url, "resource": encounter,
             "request": {"method": "POST", "url": "Encounter"}},
        ],
    }
    response = rest.post("", bundle, expect=200)
    answer = response.json()
    assert answer["resourceType"] == "Bundle" and answer["type"] == "transaction-response"
    assert len(answer["entry"]) == 2
    locations = {}
    for entry in answer["entry"]:
        assert entry["response"]["status"].startswith("201"), short(response)
        location = entry["response"]["location"]
        kind, rid = re.search(r"(Encounter|Observation)/([^/]+)/_history/", location).groups()
        locations[kind] = rid
    stored_encounter = rest.read("Encounter", locations["Encounter"])
    stored_observation = rest.read("Observation", locations["Observation"])
    assert stored_encounter["subject"]["reference"] == f"Patient/{patient['id']}"
    assert stored_observation["encounter"]["reference"] == f"Encounter/{locations['Encounter']}", \
        "the urn:uuid reference now names the Encounter the transaction created"


def test_a_batch_answers_each_entry_on_its_own(rest, patient):
    family = unique_name()
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient_body(family), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{patient['id']}"}},
            {"request": {"method": "GET", "url": f"Patient/{uuid.uuid4()}"}},
        ],
    }
    answer = rest.post("", bundle, expect=200).json()
    assert answer["type"] == "batch-response"
    statuses = [e["response"]["status"].split()[0] for e in answer["entry"]]
    assert statuses == ["201", "200", "404"]
    assert answer["entry"][1]["resource"]["id"] == patient["id"]
    found, _ = rest.search_all("Patient", {"family": family})
    assert len(found) == 1


def test_the_same_post_with_the_same_idempotency_key_creates_one_patient(rest, base):
    family = unique_name()
    body = patient_body(family)
    key = f"clients-{uuid.uuid4()}"
    first = rest.post("Patient", body, headers={"X-Idempotency-Key": key}, expect=201)
    retry = rest.post("Patient", body, headers={"X-Idempotency-Key": key})
    assert retry.status_code == first.status_code, short(retry)
    assert retry.json()["id"] == first.json()["id"], "the retry answers with the first result"
    assert retry.headers.get("Location") == first.headers.get("Location")
    found, _ = rest.search_all("Patient", {"family": family})
    assert [p["id"] for p in found] == [first.json()["id"]], "one Patient, not two"

    other_key = rest.post("Patient", body, headers={"X-Idempotency-Key": f"{key}-2"}, expect=201)
    assert other_key.json()["id"] != first.json()["id"], "another key is another request"


def test_if_none_exist_returns_the_existing_patient(rest):
    identifier = unique_identifier()
    body = dict(patient_body(), identifier=[identifier])
    first = rest.post("Patient", body, expect=201).json()
    again = rest.post("Patient", body, headers={"If-None-Exist": f"identifier={token(identifier)}"})
    assert again.status_code == 200, short(again)
    assert again.json()["id"] == first["id"]
    found, _ = rest.search_all("Patient", {"identifier": token(identifier)})
    assert len(found) == 1


def test_deleted_resources_are_gone_with_410_and_unknown_ones_are_404(rest):
    created = rest.create(patient_body())
    deleted = rest.delete(f"Patient/{created['id']}")
    assert deleted.status_code in (200, 204), short(deleted)
    gone = rest.get(f"Patient/{created['id']}")
    assert gone.status_code == 410, short(gone)
    operation_outcome(gone)
    missing = rest.get(f"Patient/{uuid.uuid4()}")
    assert missing.status_code == 404, short(missing)
    operation_outcome(missing)
    unknown_type = rest.get("Spaceship/1")
    assert unknown_type.status_code == 404, short(unknown_type)
    operation_outcome(unknown_type)


def test_history_and_vread_keep_every_version(rest):
    created = rest.create(patient_body())
    path = f"Patient/{created['id']}"
    rest.put(path, dict(created, gender="other"), expect=200)
    history = rest.get(f"{path}/_history", expect=200).json()
    assert history["type"] == "history"
    versions = sorted(e["resource"]["meta"]["versionId"] for e in history["entry"] if "resource" in e)
    assert versions == ["1", "2"]
    first = rest.get(f"{path}/_history/1", expect=200)
    assert first.json()["gender"] == "female" and etag_version(first) == "1"


def test_prefer_chooses_what_a_write_answers_with(rest):
    minimal_answer = rest.post("Patient", patient_body(),
                               headers={"Prefer": "return=minimal"}, expect=201)
    assert minimal_answer.content == b"", "return=minimal has an empty body"
    assert minimal_answer.headers.get("Location")
    outcome = rest.post("Patient", patient_body(),
                        headers={"Prefer": "return=OperationOutcome"}, expect=201)
    operation_outcome(outcome)
    representation = rest.post("Patient", patient_body(),
                               headers={"Prefer": "return=representation"}, expect=201)
    assert representation.json()["resourceType"] == "Patient"


def test_summary_count_and_elements_shape_the_answer(rest):
    family = unique_name()
    for _ in range(2):
        rest.create(patient_body(family))
    counted = rest.search("Patient", {"family": family, "_summary": "count"})
    assert counted["total"] == 2
    assert not counted.get("entry"), "_summary=count returns no entries"
    trimmed = rest.search("Patient", {"family": family, "_elements": "gender"})
    for resource in matches(trimmed):
        assert "gender" in resource and "birthDate" not in resource and "name" not in resource
    pretty = rest.get("Patient", params={"family": family, "_pretty": "true"}, expect=200)
    assert b"\n" in pretty.content, "_pretty=true indents the JSON"


def test_answers_are_gzipped_when_the_client_accepts_it(rest):
    family = unique_name()
    rest.create(patient_body(family))
    zipped = requests.get(rest.url("Patient"), params={"family": family},
                          headers={"Accept": "application/fhir+json", "Accept-Encoding": "gzip"},
                          timeout=60)
    assert zipped.status_code == 200
    assert zipped.headers.get("Content-Encoding") == "gzip", dict(zipped.headers)
    assert zipped.json()["type"] == "searchset"  # urllib3 gunzipped it
    plain = requests.get(rest.url("Patient"), params={"family": family},
                         headers={"Accept": "application/fhir+json", "Accept-Encoding": "identity"},
                         timeout=60)
    assert plain.headers.get("Content-Encoding") in (None, "identity")
    assert list(matches(plain.json())) == list(matches(zipped.json()))


def test_post_search_with_a_form_finds_what_get_finds(rest):
    family = unique_name()
    made = sorted(rest.create(patient_body(family))["id"] for _ in range(2))
    got = rest.post("Patient/_search", data={"family": family},
                    headers={"Content-Type": "application/x-www-form-urlencoded"}, expect=200).json()
    assert got["type"] == "searchset"
    assert sorted(r["id"] for r in matches(got)) == made


def test_patient_match_scores_a_similar_patient(rest):
    family = unique_name()
    registered = rest.create(dict(patient_body(family), identifier=[unique_identifier()]))
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": patient_body(family)},
            {"name": "count", "valueInteger": 5},
        ],
    }
    answer = rest.post("Patient/$match", parameters, expect=200).json()
    assert answer["type"] == "searchset"
    scored = {e["resource"]["id"]: e["search"].get("score") for e in answer.get("entry", [])
              if e.get("resource", {}).get("resourceType") == "Patient"}
    assert registered["id"] in scored, f"the registered namesake is a candidate: {scored}"
    assert 0 <= scored[registered["id"]] <= 1


def test_patient_everything_holds_the_patient_and_her_encounter(rest, patient):
    encounter = rest.create(minimal("Encounter", patient["id"]))
    answer = rest.get(f"Patient/{patient['id']}/$everything", expect=200).json()
    assert answer["type"] == "searchset"
    held = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in answer.get("entry", [])}
    assert ("Patient", patient["id"]) in held
    assert ("Encounter", encounter["id"]) in held
