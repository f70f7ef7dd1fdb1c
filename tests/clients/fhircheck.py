"""Every response body the gateway sends is checked as FHIR R4, in one place.

`install()` wraps `requests.adapters.HTTPAdapter.send`, the one call through
which every HTTP request of this suite goes: fhirpy's (`requests.request`),
SMART's fhirclient (its own `requests.Session`) and the suite's own. Each
response from the gateway's origin is recorded (for the failure report) and
its body, when it has one, must be

- labelled `application/fhir+json` (the gateway serves JSON only);
- JSON whose `resourceType` names an R4 resource, and that parses with
  fhir.resources 6.4 (`construct_fhir_element`), the strict R4 (4.0.1)
  models: unknown elements, bad primitives (dates, ids, codes' lexical form)
  and wrong cardinalities are refused, nested resources (Bundle entries,
  contained resources) included;
- free of what FHIR JSON forbids and fhir.resources lets through: `null`
  (outside arrays), empty objects, empty arrays and empty strings (R4
  "JSON representation": objects, arrays and strings are never empty; the
  project's own validator refuses them in requests too).

A violation raises `InvalidFHIR` (an AssertionError) out of the request
call, so the test that made the request fails there, whichever client it
used; violations are also kept in `violations` so that a client library that
swallows exceptions cannot hide one (conftest fails the test at teardown).
"""

from __future__ import annotations

import copy
import json
import os
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

from fhir.resources import construct_fhir_element

FHIR_JSON = "application/fhir+json"


class InvalidFHIR(AssertionError):
    """A gateway response that is not valid FHIR R4 JSON."""


def _empties(value, path, in_array=False):
    """Paths of the nulls and empty objects, arrays and strings in `value`.
    (A null inside an array is allowed: it keeps a repeating primitive
    aligned with its `_element` array of extensions.)"""
    if value is None:
        if not in_array:
            yield path
    elif isinstance(value, dict):
        if not value:
            yield path
        for key, child in value.items():
            yield from _empties(child, f"{path}.{key}")
    elif isinstance(value, list):
        if not value:
            yield path
        for index, child in enumerate(value):
            yield from _empties(child, f"{path}[{index}]", in_array=True)
    elif isinstance(value, str) and value == "":
        yield path


def check_resource(data, where: str = "resource"):
    """`data` (parsed JSON) as a valid FHIR R4 resource, or InvalidFHIR.

    Returns the fhir.resources model instance."""
    if not isinstance(data, dict):
        raise InvalidFHIR(f"{where}: a FHIR resource is a JSON object, got {type(data).__name__}")
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidFHIR(f"{where}: JSON without a resourceType: {json.dumps(data)[:300]}")
    empty = list(_empties(data, resource_type))
    if empty:
        raise InvalidFHIR(
            f"{where}: FHIR JSON has no nulls or empty objects, arrays or strings, "
            f"but this {resource_type} has them at {', '.join(empty[:10])}"
        )
    try:
        return construct_fhir_element(resource_type, copy.deepcopy(data))
    except Exception as exc:  # pydantic.ValidationError, LookupError, ...
        raise InvalidFHIR(
            f"{where}: not a valid FHIR R4 {resource_type} (fhir.resources 6.4): {exc}"
        ) from None


def check_body(response):
    """Check one gateway response's body. Returns the parsed JSON or None."""
    where = f"{response.request.method} {response.url} -> {response.status_code}"
    body = response.content  # already decoded from gzip by urllib3
    if not body:
        return None
    content_type = response.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() != FHIR_JSON:
        raise InvalidFHIR(
            f"{where}: body labelled {content_type!r}, not {FHIR_JSON}: {body[:300]!r}"
        )
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidFHIR(f"{where}: body is not UTF-8 JSON ({exc}): {body[:300]!r}") from None
    check_resource(data, where)
    return data


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: dict
    request_body: bytes
    status: int
    response_headers: dict
    response_body: bytes

    def describe(self, limit: int = 1500) -> str:
        def clip(raw):
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
            return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"

        wanted = ("content-type", "accept", "prefer", "if-match", "if-none-exist",
                  "x-idempotency-key", "x-break-glass", "accept-encoding")
        req_h = {k: v for k, v in self.request_headers.items() if k.lower() in wanted}
        res_h = {k: v for k, v in self.response_headers.items()
                 if k.lower() in ("content-type", "etag", "location", "last-modified",
                                  "content-encoding")}
        return (f"> {self.method} {self.url}\n> {req_h}\n> {clip(self.request_body)}\n"
                f"< {self.status} {res_h}\n< {clip(self.response_body)}\n")


@dataclass
class Recorder:
    exchanges: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self):
        with self.lock:
            self.exchanges.clear()
            self.violations.clear()


recorder = Recorder()
_installed = False


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return (parts.scheme, parts.netloc)


def gateway_base() -> str:
    return os.environ.get("CORRIDOR_FHIR_BASE", "").rstrip("/")


def install():
    """Wrap HTTPAdapter.send once for the whole test session."""
    global _installed
    if _installed:
        return
    _installed = True
    original = HTTPAdapter.send

    def send(self, request, *args, **kwargs):
        # Every request to the node carries an access token, as a partner's
        # client would (fhirpy and fhirclient take one; so does requests), unless
        # the test set its own Authorization.
        token = os.environ.get("CORRIDOR_TOKEN")
        if token and "Authorization" not in request.headers \
                and _origin(request.url) == _origin(gateway_base()):
            request.headers["Authorization"] = f"Bearer {token}"
        response = original(self, request, *args, **kwargs)
        base = gateway_base()
        if not base or _origin(request.url) != _origin(base):
            return response
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        # Reading .content here buffers the body; later reads get the same bytes.
        content = response.content
        with recorder.lock:
            recorder.exchanges.append(Exchange(
                request.method, request.url, dict(request.headers), body[:4000],
                response.status_code, dict(response.headers), content[:20000]))
        try:
            check_body(response)
        except InvalidFHIR as exc:
            with recorder.lock:
                recorder.violations.append(str(exc))
            exc.response = response  # for callers that collect failures and go on
            raise
        return response

    HTTPAdapter.send = send
