"""Shared fixtures. The gateway's FHIR base URL comes from CORRIDOR_FHIR_BASE
(tests/clients/run.sh starts a node and sets it)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import fhircheck  # noqa: E402
from support import Rest, patient_body  # noqa: E402

# Before any client is used: every gateway response is checked as FHIR R4.
fhircheck.install()


@pytest.fixture(scope="session")
def base() -> str:
    url = fhircheck.gateway_base()
    if not url:
        pytest.fail("CORRIDOR_FHIR_BASE is not set; run tests/clients/run.sh, or set it to "
                    "a running gateway's FHIR base URL (http://HOST:PORT/fhir)", pytrace=False)
    return url


@pytest.fixture(scope="session")
def rest(base) -> Rest:
    return Rest(base)


@pytest.fixture(scope="session")
def capability(rest) -> dict:
    response = rest.get("metadata", expect=200)
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    return statement


@pytest.fixture
def patient(rest) -> dict:
    """A fresh Patient, for resources that must name one."""
    return rest.create(patient_body())


@pytest.fixture(autouse=True)
def _every_response_is_valid_fhir(request):
    """Fails a test if any gateway response it received was not valid FHIR R4,
    even when a client library caught the error; shows the test's HTTP
    exchanges when it failed."""
    fhircheck.recorder.reset()
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        return  # the violation (if any) already failed the test where it happened
    violations = list(fhircheck.recorder.violations)
    assert not violations, "invalid FHIR from the gateway:\n" + "\n".join(violations)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.report_call = report
    if report.failed and report.when in ("call", "teardown"):
        exchanges = fhircheck.recorder.exchanges[-6:]
        if exchanges:
            total = len(fhircheck.recorder.exchanges)
            text = "\n".join(e.describe() for e in exchanges)
            report.sections.append(
                (f"last {len(exchanges)} of {total} HTTP exchanges with the gateway", text))
