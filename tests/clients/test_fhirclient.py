"""SMART on FHIR's client-py (`fhirclient`) against the gateway, used as its
users use it: a FHIRClient, its R4 models' create/read/update/delete and
FHIRSearch, for Patients (identity) and Encounters (encounters). Its models
are strict too: they refuse a response with an element R4 does not have."""

from __future__ import annotations

import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.encounter import Encounter
from fhirclient.models.fhirsearch import FHIRSearch
from fhirclient.models.identifier import Identifier
from fhirclient.models.patient import Patient

from support import minimal, token, unique_identifier, unique_name

MODELS = {"Patient": Patient, "Encounter": Encounter}


@pytest.fixture(scope="module")
def smart(base):
    return smart_client.FHIRClient(settings={"app_id": "corridor-clients-test", "api_base": base})


@pytest.fixture(scope="module")
def server(smart):
    return smart.server


@pytest.fixture(scope="module")
def subject(server) -> str:
    body = minimal("Patient", "unused")
    body.pop("resourceType")
    return Patient(body).create(server)["id"]


def model_of(resource_type: str, patient_id: str, family: str | None = None):
    body = minimal(resource_type, patient_id)
    body.pop("resourceType")
    if family is not None:
        body["name"] = [{"family": family, "given": ["Amina"]}]
    return MODELS[resource_type](body)


def test_fhirclient_reads_the_capability_statement(server):
    server.get_capability(force=True)
    statement = server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    assert statement.kind == "instance"
    served = {r.type for r in statement.rest[0].resource}
    assert {"Patient", "Encounter"} <= served


@pytest.mark.parametrize("resource_type", sorted(MODELS))
def test_fhirclient_creates_reads_updates_searches_and_deletes(server, subject, resource_type):
    model = MODELS[resource_type]
    created = model_of(resource_type, subject).create(server)
    assert created["resourceType"] == resource_type and created["id"]
    rid = created["id"]

    read = model.read(rid, server)
    assert read.id == rid
    assert read.meta.versionId == "1"
    if resource_type == "Encounter":
        assert read.subject.reference == f"Patient/{subject}"
        assert read.class_fhir.code == "AMB"

    identifier = unique_identifier()
    read.identifier = [Identifier(identifier)]
    updated = read.update()
    assert updated is not None and updated["meta"]["versionId"] == "2"
    again = model.read(rid, server)
    assert again.meta.versionId == "2"
    assert again.identifier[0].value == identifier["value"]

    found = list(FHIRSearch(model, {"identifier": token(identifier)}).perform_resources_iter(server))
    assert [r.id for r in found] == [rid]
    assert isinstance(found[0], model)

    again.delete()
    with pytest.raises(requests.HTTPError) as gone:
        model.read(rid, server)
    assert gone.value.response.status_code == 410
    assert list(model.where({"identifier": token(identifier)}).perform_resources_iter(server)) == []


@pytest.mark.parametrize("resource_type", sorted(MODELS))
def test_fhirclient_follows_next_links_to_the_last_page(server, resource_type):
    family = unique_name()
    if resource_type == "Patient":
        made = [model_of("Patient", "unused", family).create(server)["id"] for _ in range(7)]
        criteria = {"family": family, "_count": "3"}
    else:
        owner = model_of("Patient", "unused", family).create(server)["id"]
        made = [model_of(resource_type, owner).create(server)["id"] for _ in range(7)]
        criteria = {"subject": f"Patient/{owner}", "_count": "3"}

    pages = list(MODELS[resource_type].where(criteria).perform_iter(server))
    seen = [e.resource.id for page in pages for e in (page.entry or [])]
    assert sorted(seen) == sorted(made), "7 matches, each exactly once"
    assert [len(page.entry or []) for page in pages] == [3, 3, 1]
