"""fhirpy (beda.software's FHIR client, used as its users use it: the sync
client, its resources, references and search sets) against the gateway:
create, read, update, search with paging and delete, for a type of each
service: Patient (identity), Encounter (encounters), ServiceRequest
(referrals)."""

from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

import fhircheck
from support import assert_absolute, link, minimal, token, unique_identifier, unique_name

TYPES = ["Patient", "Encounter", "ServiceRequest"]
PAGE = 3
HOW_MANY = 7


@pytest.fixture(scope="module")
def client(base) -> SyncFHIRClient:
    return SyncFHIRClient(base, requests_config={"timeout": 60})


@pytest.fixture(scope="module")
def subject(client) -> str:
    """The Patient the Encounters and ServiceRequests are about, made with fhirpy."""
    patient = client.resource("Patient", name=[{"family": unique_name(), "given": ["Yusuf"]}],
                              gender="male", birthDate="1984")
    patient.save()
    return patient.id


def new_resource(client, resource_type: str, patient_id: str, family: str | None = None):
    body = minimal(resource_type, patient_id)
    body.pop("resourceType")
    if family is not None:  # only Patients are told apart by name
        body["name"] = [{"family": family, "given": ["Amina"]}]
    return client.resource(resource_type, **body)


@pytest.mark.parametrize("resource_type", TYPES)
def test_fhirpy_creates_reads_updates_and_deletes(client, rest, subject, resource_type):
    created = new_resource(client, resource_type, subject)
    created.save()
    assert created.id, "fhirpy's save() of a new resource gives it the server's id"
    assert created["meta"]["versionId"] == "1"

    read = client.reference(resource_type, created.id).to_resource()
    assert read.id == created.id
    assert read.resourceType == resource_type
    if resource_type != "Patient":
        assert read["subject"]["reference"] == f"Patient/{subject}"

    identifier = unique_identifier()
    read["identifier"] = [identifier]
    read.save()  # PUT, since it has an id
    assert read["meta"]["versionId"] == "2"
    again = client.reference(resource_type, created.id).to_resource()
    assert again["identifier"] == [identifier]
    assert again["meta"]["versionId"] == "2"

    found = client.resources(resource_type).search(identifier=token(identifier)).fetch_all()
    assert [r.id for r in found] == [created.id], "the update is searchable by its identifier"

    again.delete()
    with pytest.raises(ResourceNotFound):
        client.reference(resource_type, created.id).to_resource()
    assert rest.get(f"{resource_type}/{created.id}").status_code == 410
    gone = client.resources(resource_type).search(identifier=token(identifier)).fetch_all()
    assert gone == [], "a deleted resource is no longer found"


@pytest.mark.parametrize("resource_type", TYPES)
def test_fhirpy_follows_next_links_to_the_last_page(client, subject, resource_type):
    family = unique_name()
    if resource_type == "Patient":
        made = [new_resource(client, "Patient", subject, family) for _ in range(HOW_MANY)]
        criteria = {"family": family}
    else:
        # A Patient of their own, so that nothing else matches.
        owner = new_resource(client, "Patient", subject, family)
        owner.save()
        made = [new_resource(client, resource_type, owner.id) for _ in range(HOW_MANY)]
        criteria = {"subject": f"Patient/{owner.id}"}
    for resource in made:
        resource.save()
    wanted = sorted(r.id for r in made)

    search = client.resources(resource_type).search(**criteria).limit(PAGE)
    first = search.fetch_raw()
    assert len(first.entry) == PAGE
    for relation in ("self", "next"):
        assert link(first, relation), f"the first page has a {relation} link"
        assert_absolute(link(first, relation))

    before = len(fhircheck.recorder.exchanges)
    seen = [r.id for r in search]  # fhirpy fetches page after page through the next links
    pages = [e for e in fhircheck.recorder.exchanges[before:] if e.method == "GET"]
    assert sorted(seen) == wanted, f"{HOW_MANY} {resource_type}s, each exactly once: {seen}"
    assert len(pages) == 3, f"{HOW_MANY} matches at {PAGE} a page are 3 pages, fetched {len(pages)}"
