//! HTTP answers: FHIR JSON bodies with their headers, errors as
//! OperationOutcomes with the status FHIR's RESTful API gives them, and the
//! presentation a client asked for (`_pretty`, `_elements`, `_format`,
//! `Accept`).

use axum::body::Body;
use axum::response::Response;
use corridor_proto::fhir::v1 as fhir;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tonic::Code;

/// FHIR's JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";

/// An answer before it is rendered.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: Vec<(HeaderName, String)>,
    /// The resource the answer is about, for `Prefer: return=…`.
    pub resource: bool,
    /// The FHIR instant behind `Last-Modified`, for batch answers.
    pub last_updated: Option<String>,
}

impl Reply {
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
            resource: false,
            last_updated: None,
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: None,
            headers: Vec::new(),
            resource: false,
            last_updated: None,
        }
    }

    /// A stored resource with `ETag` and `Last-Modified`.
    pub fn resource(status: StatusCode, resource: &fhir::Resource) -> Result<Self, HttpError> {
        let body: Value = serde_json::from_str(&resource.json).map_err(|_| {
            HttpError::new(
                StatusCode::BAD_GATEWAY,
                "exception",
                "a service answered a resource that is not JSON",
            )
        })?;
        let mut reply = Self::json(status, body);
        reply.resource = true;
        reply.set_version(resource);
        Ok(reply)
    }

    pub fn set_version(&mut self, resource: &fhir::Resource) {
        self.headers
            .push((header::ETAG, format!("W/\"{}\"", resource.version_id)));
        if let Some(date) = http_date(&resource.last_updated) {
            self.headers.push((header::LAST_MODIFIED, date));
            self.last_updated = Some(resource.last_updated.clone());
        }
    }

    pub fn header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// A refusal: the HTTP status and the OperationOutcome that says why.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {outcome}")]
pub struct HttpError {
    pub status: StatusCode,
    pub outcome: Value,
}

impl HttpError {
    /// An OperationOutcome with one error issue of FHIR issue type `code`.
    pub fn new(status: StatusCode, code: &str, diagnostics: impl Into<String>) -> Self {
        Self {
            status,
            outcome: outcome("error", code, &diagnostics.into(), None),
        }
    }

    /// The same, with the FHIRPath or parameter the issue is about.
    pub fn at(status: StatusCode, code: &str, diagnostics: impl Into<String>, at: &str) -> Self {
        Self {
            status,
            outcome: outcome("error", code, &diagnostics.into(), Some(at)),
        }
    }

    pub fn bad_request(code: &str, diagnostics: impl Into<String>, at: &str) -> Self {
        Self::at(StatusCode::BAD_REQUEST, code, diagnostics, at)
    }

    /// A service's refusal, with the status FHIR gives it. The service's
    /// OperationOutcome is passed on as it is.
    pub fn from_status(status: &tonic::Status, service: &str) -> Self {
        let carried = corridor_runtime::outcome::outcome_of(status);
        let issue_code = carried
            .as_ref()
            .and_then(|o| o.pointer("/issue/0/code"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let expression = carried
            .as_ref()
            .and_then(|o| o.pointer("/issue/0/expression/0"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let code = match status.code() {
            Code::NotFound if issue_code == "deleted" => StatusCode::GONE,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument if matches!(issue_code.as_str(), "too-long" | "too-costly") => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::FailedPrecondition
                if expression == "If-Match"
                    || expression == "If-None-Exist"
                    || expression.ends_with("request.ifMatch")
                    || expression.ends_with("request.ifNoneExist") =>
            {
                StatusCode::PRECONDITION_FAILED
            }
            Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let outcome = match carried {
            Some(outcome) => outcome,
            None => match status.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown => outcome(
                    "error",
                    "transient",
                    &format!(
                        "the {service} service could not be reached; nothing was done there; retry later"
                    ),
                    None,
                ),
                _ => outcome("error", "exception", status.message(), None),
            },
        };
        if code.is_server_error() {
            tracing::warn!(service, code = ?status.code(), message = status.message(), "service call failed");
        }
        Self {
            status: code,
            outcome,
        }
    }
}

/// An OperationOutcome with one issue.
pub fn outcome(severity: &str, code: &str, diagnostics: &str, at: Option<&str>) -> Value {
    let mut issue = json!({"severity": severity, "code": code, "diagnostics": diagnostics});
    if let Some(at) = at {
        issue["expression"] = json!([at]);
    }
    json!({"resourceType": "OperationOutcome", "issue": [issue]})
}

/// How the client wants answers presented.
#[derive(Debug, Clone, Default)]
pub struct Presentation {
    pub pretty: bool,
    /// `_elements`: the top-level elements to keep, when asked.
    pub elements: Option<Vec<String>>,
}

impl Presentation {
    /// Read `_format`, `_pretty` and `_elements` from the query and
    /// `Accept` from the headers. Anything but JSON is refused with 406.
    pub fn negotiate(params: &[(String, String)], headers: &HeaderMap) -> Result<Self, HttpError> {
        let mut presentation = Self::default();
        for (name, value) in params {
            match name.as_str() {
                "_format" if !is_json(value) => return Err(not_acceptable(value)),
                "_pretty" => presentation.pretty = value == "true",
                "_elements" => {
                    presentation.elements = Some(
                        value
                            .split(',')
                            .map(|e| e.trim().to_owned())
                            .filter(|e| !e.is_empty())
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        if !params.iter().any(|(n, _)| n == "_format")
            && let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
        {
            let acceptable = accept.split(',').any(|range| {
                let media = range.split(';').next().unwrap_or_default().trim();
                media.is_empty()
                    || is_json(media)
                    || matches!(media, "*/*" | "application/*" | "text/*" | "text/plain")
            });
            if !acceptable {
                return Err(not_acceptable(accept));
            }
        }
        Ok(presentation)
    }

    /// The presentation parameters again, for links to further pages.
    pub fn link_params(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(elements) = &self.elements {
            out.push(("_elements".to_owned(), elements.join(",")));
        }
        if self.pretty {
            out.push(("_pretty".to_owned(), "true".to_owned()));
        }
        out
    }

    /// `_elements` applied to one resource: its mandatory elements and the
    /// ones asked for, marked SUBSETTED as FHIR requires.
    pub fn subset(&self, resource: &mut Value) {
        let Some(elements) = &self.elements else {
            return;
        };
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        if object.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome") {
            return;
        }
        object.retain(|key, _| {
            matches!(key.as_str(), "resourceType" | "id" | "meta")
                || elements.iter().any(|e| e == key)
        });
        let meta = object.entry("meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let tags = meta.entry("tag").or_insert_with(|| json!([]));
            if let Some(tags) = tags.as_array_mut() {
                tags.push(json!({
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                    "code": "SUBSETTED",
                    "display": "subsetted"
                }));
            }
        }
    }
}

fn is_json(media: &str) -> bool {
    let media = media.split(';').next().unwrap_or_default().trim();
    matches!(
        media,
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
    )
}

fn not_acceptable(asked: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_ACCEPTABLE,
        "not-supported",
        format!(
            "this server answers FHIR JSON only ({FHIR_JSON}), not '{asked}'; ask for _format=json or Accept: {FHIR_JSON}"
        ),
    )
}

/// Whether a request body's `Content-Type` is FHIR JSON; a missing one is
/// taken as JSON, as curl without -H sends none that matters.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), HttpError> {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(()),
        Some(ct) if is_json(ct) => Ok(()),
        Some(ct) => Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!("send FHIR JSON with Content-Type: {FHIR_JSON}, not '{ct}'"),
        )),
    }
}

/// Render `reply` as presented.
pub fn render(reply: Reply, presentation: &Presentation) -> Response {
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            builder = builder.header(name, value);
        }
    }
    let body = match reply.body {
        None => Body::empty(),
        Some(body) => {
            builder = builder.header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/fhir+json; charset=utf-8"),
            );
            let text = if presentation.pretty {
                serde_json::to_string_pretty(&body)
            } else {
                serde_json::to_string(&body)
            };
            Body::from(text.unwrap_or_default())
        }
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

/// An error as an answer.
pub fn error(err: HttpError) -> Reply {
    let status = err.status;
    let reply = Reply::json(status, err.outcome);
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6750: say which scheme the resource server takes.
        reply.header(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"corridor\"".to_owned(),
        )
    } else {
        reply
    }
}

/// A FHIR instant as an HTTP date (`Tue, 15 Nov 1994 08:12:31 GMT`).
pub fn http_date(instant: &str) -> Option<String> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let at = OffsetDateTime::parse(instant, &Rfc3339).ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC).format(&format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_becomes_an_http_date_in_gmt() {
        assert_eq!(
            http_date("2026-11-29T12:30:05.123+01:00").as_deref(),
            Some("Sun, 29 Nov 2026 11:30:05 GMT")
        );
    }

    #[test]
    fn xml_is_refused_and_json_in_any_spelling_is_accepted() {
        let mut headers = HeaderMap::new();
        let asked = |v: &str| vec![("_format".to_owned(), v.to_owned())];
        assert!(Presentation::negotiate(&asked("json"), &headers).is_ok());
        assert!(Presentation::negotiate(&asked("application/fhir+json"), &headers).is_ok());
        let refused = Presentation::negotiate(&asked("xml"), &headers).unwrap_err();
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/fhir+xml"),
        );
        let refused = Presentation::negotiate(&[], &headers).unwrap_err();
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/fhir+xml;q=0.9, application/fhir+json"),
        );
        assert!(Presentation::negotiate(&[], &headers).is_ok());
    }

    #[test]
    fn elements_keep_the_mandatory_ones_and_mark_the_subset() {
        let p = Presentation {
            pretty: false,
            elements: Some(vec!["birthDate".to_owned()]),
        };
        let mut patient = json!({"resourceType": "Patient", "id": "a", "name": [{"family": "X"}], "birthDate": "1990"});
        p.subset(&mut patient);
        assert_eq!(patient["birthDate"], "1990");
        assert!(patient.get("name").is_none());
        assert_eq!(patient["meta"]["tag"][0]["code"], "SUBSETTED");
    }
}
