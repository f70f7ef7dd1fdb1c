//! The FHIR RESTful API: each request is routed by its path to the service
//! that owns the resource type, and the service's answer is turned into
//! FHIR's HTTP conventions (status codes, `ETag`, `Location`, `Prefer`,
//! absolute links, OperationOutcome errors).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderName, Method, StatusCode, header};
use serde_json::{Value, json};

use corridor_store::ResourceDef;

use crate::backends::{Backends, CallContext, Owner, Written};
use crate::reply::{self, HttpError, Presentation, Reply, check_content_type, render};
use crate::{bundles, capability, oauth, operations};

/// Request header carrying the client's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "x-idempotency-key";

/// The path under which the FHIR API is served.
pub const BASE_PATH: &str = "/fhir";

/// Limits on what one request may ask.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Most entries in a batch or transaction Bundle.
    pub max_entries: usize,
    /// Longest a request may take, reading its body included.
    pub timeout: Duration,
}

/// Everything a request needs.
#[derive(Debug)]
pub struct Gateway {
    pub backends: Backends,
    /// The `$import` jobs this gateway runs.
    pub imports: crate::bulk::Imports,
    /// The public base URL, when configured; otherwise it is made from the
    /// request's `Host`.
    pub base_url: Option<String>,
    pub limits: Limits,
}

/// One parsed request, as the handlers and batch entries see it.
#[derive(Debug)]
pub struct Call {
    pub method: Method,
    /// Path segments below the base.
    pub segments: Vec<String>,
    pub params: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub base: String,
    pub context: CallContext,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The body as a JSON object, or 400 naming what is wrong.
    pub fn json_body(&self) -> Result<Value, HttpError> {
        check_content_type(&self.headers)?;
        if self.body.is_empty() {
            return Err(HttpError::bad_request(
                "required",
                "the request has no body; send a FHIR resource as JSON",
                "body",
            ));
        }
        let value: Value = serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::bad_request(
                "structure",
                format!("the body is not valid JSON: {e}"),
                "body",
            )
        })?;
        if !value.is_object() {
            return Err(HttpError::bad_request(
                "structure",
                "the body must be a JSON object (a FHIR resource)",
                "body",
            ));
        }
        Ok(value)
    }

    pub fn absolute(&self, relative: &str) -> String {
        format!("{}/{}", self.base, relative.trim_start_matches('/'))
    }
}

/// The axum entry point for every path under [`BASE_PATH`].
pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let span =
        tracing::info_span!("http", http.method = %parts.method, http.path = %parts.uri.path());
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(corridor_runtime::telemetry::extract(&parts.headers));
    }
    let metered = corridor_runtime::metrics::HttpRecorder::start(
        parts.method.as_str(),
        &route_template(&segments(parts.uri.path())),
    );
    let limits = gateway.limits;
    let params = query_pairs(parts.uri.query().unwrap_or_default());
    // The body is read whole before any answer, so that the connection can
    // carry the client's next request; a body that is not read to its end
    // (too large, too slow) is answered with `Connection: close`.
    let work = async {
        let body = match read_body(body, limits.max_body).await {
            Ok(body) => body,
            Err(err) => return (closing(reply::error(err)), Presentation::default()),
        };
        let presentation = match Presentation::negotiate(&params, &parts.headers) {
            Ok(p) => p,
            Err(err) => return (reply::error(err), Presentation::default()),
        };
        let call = Call {
            segments: segments(parts.uri.path()),
            base: base_url(&gateway, &parts.headers),
            context: CallContext {
                idempotency_key: header_value(&parts.headers, IDEMPOTENCY_HEADER),
                authorization: header_value(&parts.headers, "authorization"),
                break_glass: header_value(&parts.headers, "x-break-glass"),
            },
            method: parts.method.clone(),
            params: params.clone(),
            headers: parts.headers.clone(),
            body,
        };
        if call
            .context
            .authorization
            .as_deref()
            .is_some_and(certificate_bound)
        {
            return (
                reply::error(HttpError::new(
                    StatusCode::UNAUTHORIZED,
                    "login",
                    "this access token is bound to a client certificate (mutual TLS, RFC 8705); \
                     the REST gateway does not carry client certificates, so call the gRPC API \
                     over mutual TLS with that certificate",
                )),
                presentation,
            );
        }
        let prefer = prefer(&call.headers);
        let reply = match dispatch(&gateway, &call, &presentation).await {
            Ok(reply) => apply_prefer(reply, prefer),
            Err(err) => reply::error(err),
        };
        (reply, presentation)
    };
    let (reply, presentation) = match tokio::time::timeout(
        limits.timeout,
        tracing::Instrument::instrument(work, span.clone()),
    )
    .await
    {
        Ok(done) => done,
        Err(_) => (
            closing(reply::error(HttpError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the request took longer than {} s (reading its body included); retry with the same X-Idempotency-Key so that a write is never made twice",
                    limits.timeout.as_secs()
                ),
            ))),
            Presentation::default(),
        ),
    };
    span.in_scope(|| {
        tracing::info!(status = reply.status.as_u16(), "answered");
    });
    metered.finish(reply.status.as_u16());
    render(reply, &presentation)
}

/// The route a request took, as a template with ids left out (for
/// metrics, whose series must stay few whatever clients send): resource
/// types and operations the gateway serves by name, anything else as a
/// placeholder.
pub fn route_template(segments: &[String]) -> String {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let tail = match segments.as_slice() {
        [] => String::new(),
        [fixed @ ("metadata" | "token")] => format!("/{fixed}"),
        [".well-known", fixed @ ("smart-configuration" | "jwks.json")] => {
            format!("/.well-known/{fixed}")
        }
        ["$import"] => "/$import".to_owned(),
        ["$import-poll-status", _] => "/$import-poll-status/{id}".to_owned(),
        ["$import-poll-status", _, "errors"] => "/$import-poll-status/{id}/errors".to_owned(),
        [resource_type, rest @ ..] => {
            let Some((_, def)) = Owner::of(resource_type) else {
                return format!("{BASE_PATH}/{{unknown}}");
            };
            let operation = |op: &str, instance: bool| {
                let name = op.trim_start_matches('$');
                crate::operations::OPERATIONS
                    .iter()
                    .find(|o| {
                        o.resource_type == def.resource_type
                            && o.name == name
                            && o.instance == instance
                    })
                    .map_or_else(|| "{operation}".to_owned(), |o| format!("${}", o.name))
            };
            let rest = match rest {
                [] => String::new(),
                ["_search"] => "/_search".to_owned(),
                [op] if op.starts_with('$') => format!("/{}", operation(op, false)),
                [_] => "/{id}".to_owned(),
                [_, op] if op.starts_with('$') => format!("/{{id}}/{}", operation(op, true)),
                [_, "_history"] => "/{id}/_history".to_owned(),
                [_, "_history", _] => "/{id}/_history/{vid}".to_owned(),
                _ => "/{other}".to_owned(),
            };
            format!("/{}{rest}", def.resource_type)
        }
    };
    format!("{BASE_PATH}{tail}")
}

/// Whether `authorization` carries a certificate-bound access token (one
/// with a `cnf` claim). The gateway relays tokens to the services as a node
/// service, which they trust to have checked the binding; it cannot, as
/// it sees no client certificate, so it refuses such tokens itself. The
/// payload is only read, not verified: the services verify every token.
fn certificate_bound(authorization: &str) -> bool {
    use base64::Engine;
    let token = authorization
        .split_once(' ')
        .map_or(authorization, |(_, token)| token)
        .trim();
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .is_some_and(|claims| claims.get("cnf").is_some())
}

/// An answer after which the connection is closed (its request body was
/// not read to the end).
fn closing(reply: Reply) -> Reply {
    reply.header(header::CONNECTION, "close".to_owned())
}

/// Route one call. Batch entries come here too.
pub async fn dispatch(
    gateway: &Gateway,
    call: &Call,
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let method = &call.method;
    match segments.as_slice() {
        [] if method == Method::POST => bundles::post(gateway, call, presentation).await,
        ["metadata"] if method == Method::GET => Ok(Reply::json(
            StatusCode::OK,
            capability::statement(&call.base),
        )),
        ["token"] if method == Method::POST => oauth::token(gateway, call).await,
        [".well-known", "smart-configuration"] if method == Method::GET => {
            Ok(oauth::smart_configuration(call))
        }
        [".well-known", "jwks.json"] if method == Method::GET => oauth::jwks(gateway, call).await,
        route if crate::bulk::is_route(route) => crate::bulk::dispatch(gateway, call).await,
        [resource_type, rest @ ..] => {
            let Some((owner, def)) = Owner::of(resource_type) else {
                return Err(unknown_type(resource_type));
            };
            match (rest, method.clone()) {
                ([], Method::GET) => {
                    search(gateway, call, owner, def, &call.params, presentation).await
                }
                ([], Method::POST) => create(gateway, call, owner, resource_type).await,
                (["_search"], Method::POST) => {
                    let mut params = call.params.clone();
                    params.extend(form_body(call)?);
                    search(gateway, call, owner, def, &params, presentation).await
                }
                ([op], _) if op.starts_with('$') => {
                    operations::type_level(gateway, call, resource_type, op, presentation).await
                }
                ([id], Method::GET) => {
                    read(gateway, call, owner, resource_type, id, presentation).await
                }
                ([id], Method::PUT) => update(gateway, call, owner, resource_type, id).await,
                ([id], Method::DELETE) => delete(gateway, call, owner, resource_type, id).await,
                ([id, op], _) if op.starts_with('$') => {
                    operations::instance(gateway, call, resource_type, id, op, presentation).await
                }
                ([id, "_history"], Method::GET) => {
                    history(gateway, call, owner, resource_type, id).await
                }
                ([id, "_history", version], Method::GET) => {
                    vread(
                        gateway,
                        call,
                        owner,
                        resource_type,
                        id,
                        version,
                        presentation,
                    )
                    .await
                }
                _ => Err(no_route(call)),
            }
        }
        _ => Err(no_route(call)),
    }
}

pub fn no_route(call: &Call) -> HttpError {
    let path = call.segments.join("/");
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not-supported",
        format!(
            "{} {}/{path} is not an interaction this server supports; see {}/metadata",
            call.method, call.base, call.base
        ),
    )
}

fn unknown_type(resource_type: &str) -> HttpError {
    let known: Vec<&str> = Owner::ALL
        .iter()
        .flat_map(|o| o.defs().iter().map(|d| d.resource_type))
        .collect();
    HttpError::at(
        StatusCode::NOT_FOUND,
        "not-supported",
        format!(
            "resource type '{resource_type}' is not served here; served: {}",
            known.join(", ")
        ),
        resource_type,
    )
}

async fn create(
    gateway: &Gateway,
    call: &Call,
    owner: Owner,
    resource_type: &str,
) -> Result<Reply, HttpError> {
    let body = call.json_body()?;
    check_type(&body, resource_type)?;
    let if_none_exist = call.header("if-none-exist").unwrap_or_default().to_owned();
    let text = String::from_utf8_lossy(&call.body).into_owned();
    let written = gateway
        .backends
        .create(owner, text, if_none_exist, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    written_reply(call, &written, header::LOCATION)
}

/// The answer to a write: 201 when it created the resource, else 200, and
/// `header` (Location or Content-Location) naming the version written.
fn written_reply(call: &Call, written: &Written, header: HeaderName) -> Result<Reply, HttpError> {
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let r = &written.resource;
    let location = call.absolute(&format!(
        "{}/{}/_history/{}",
        r.resource_type, r.id, r.version_id
    ));
    Ok(Reply::resource(status, r)?.header(header, location))
}

async fn read(
    gateway: &Gateway,
    call: &Call,
    owner: Owner,
    resource_type: &str,
    id: &str,
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let resource = gateway
        .backends
        .read(owner, resource_type, id, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    if let Some(tag) = call.header("if-none-match")
        && tag.trim_start_matches("W/") == format!("\"{}\"", resource.version_id)
    {
        let mut reply = Reply::empty(StatusCode::NOT_MODIFIED);
        reply.set_version(&resource);
        return Ok(reply);
    }
    check_summary(call)?;
    let mut reply = Reply::resource(StatusCode::OK, &resource)?;
    if let Some(body) = reply.body.as_mut() {
        presentation.subset(body);
    }
    Ok(reply)
}

async fn vread(
    gateway: &Gateway,
    call: &Call,
    owner: Owner,
    resource_type: &str,
    id: &str,
    version: &str,
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let resource = gateway
        .backends
        .vread(owner, resource_type, id, version, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    if resource.deleted {
        let mut reply = reply::error(HttpError::new(
            StatusCode::GONE,
            "deleted",
            format!("version {version} of {resource_type}/{id} is its deletion"),
        ));
        reply.set_version(&resource);
        return Ok(reply);
    }
    let mut reply = Reply::resource(StatusCode::OK, &resource)?;
    if let Some(body) = reply.body.as_mut() {
        presentation.subset(body);
    }
    Ok(reply)
}

async fn update(
    gateway: &Gateway,
    call: &Call,
    owner: Owner,
    resource_type: &str,
    id: &str,
) -> Result<Reply, HttpError> {
    let body = call.json_body()?;
    check_type(&body, resource_type)?;
    match body.get("id") {
        Some(Value::String(body_id)) if body_id == id => {}
        Some(other) => {
            return Err(HttpError::bad_request(
                "invalid",
                format!("the resource's id {other} does not match the id in the URL ({id})"),
                &format!("{resource_type}.id"),
            ));
        }
        None => {
            return Err(HttpError::bad_request(
                "required",
                format!("an update must carry the id of the URL: add \"id\": \"{id}\""),
                &format!("{resource_type}.id"),
            ));
        }
    }
    let if_match = call.header("if-match").unwrap_or_default().to_owned();
    let text = String::from_utf8_lossy(&call.body).into_owned();
    let written = gateway
        .backends
        .update(owner, resource_type, id, text, if_match, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    written_reply(call, &written, header::CONTENT_LOCATION)
}

async fn delete(
    gateway: &Gateway,
    call: &Call,
    owner: Owner,
    resource_type: &str,
    id: &str,
) -> Result<Reply, HttpError> {
    let if_match = call.header("if-match").unwrap_or_default().to_owned();
    let tombstone = gateway
        .backends
        .delete(owner, resource_type, id, if_match, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    let mut reply = Reply::empty(StatusCode::NO_CONTENT);
    reply.set_version(&tombstone);
    Ok(reply)
}

async fn history(
    gateway: &Gateway,
    call: &Call,
    owner: Owner,
    resource_type: &str,
    id: &str,
) -> Result<Reply, HttpError> {
    let mut count = 0;
    let mut token = String::new();
    for (name, value) in &call.params {
        match name.as_str() {
            "_count" => {
                count = value.parse().map_err(|_| {
                    HttpError::bad_request(
                        "invalid",
                        format!("_count must be a whole number, not '{value}'"),
                        "_count",
                    )
                })?;
            }
            "_page_token" => token.clone_from(value),
            "_format" | "_pretty" | "_elements" => {}
            other => {
                return Err(HttpError::bad_request(
                    "not-supported",
                    format!("history takes _count and _page_token, not '{other}'"),
                    other,
                ));
            }
        }
    }
    let bundle = gateway
        .backends
        .history(owner, resource_type, id, count, token, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    let mut body = bundle_json(&bundle.json)?;
    absolutize(&mut body, call, &[]);
    Ok(Reply::json(StatusCode::OK, body))
}

/// Parameters the gateway itself handles; the services never see them.
const PRESENTATION_PARAMS: [&str; 4] = ["_format", "_pretty", "_elements", "_summary"];
/// Parameters every search takes besides the type's own.
const COMMON_PARAMS: [&str; 6] = [
    "_id",
    "_lastUpdated",
    "_count",
    "_sort",
    "_include",
    "_page_token",
];

pub async fn search(
    gateway: &Gateway,
    call: &Call,
    owner: Owner,
    def: &ResourceDef,
    params: &[(String, String)],
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let resource_type = def.resource_type;
    let lenient = prefer(&call.headers).handling == Some(Handling::Lenient);
    let mut forwarded = Vec::new();
    let mut ignored = Vec::new();
    let mut count_only = false;
    for (name, value) in params {
        let base_name = name.split(':').next().unwrap_or_default();
        if PRESENTATION_PARAMS.contains(&base_name) {
            if base_name == "_summary" {
                match value.as_str() {
                    "count" => count_only = true,
                    "false" => {}
                    other => {
                        return Err(HttpError::bad_request(
                            "not-supported",
                            format!(
                                "_summary={other} is not supported; use _summary=count, or _elements to choose elements"
                            ),
                            "_summary",
                        ));
                    }
                }
            }
            continue;
        }
        let known =
            COMMON_PARAMS.contains(&base_name) || def.params.iter().any(|p| p.name == base_name);
        if !known && lenient {
            ignored.push(name.clone());
            continue;
        }
        forwarded.push((name.clone(), value.clone()));
    }
    if count_only {
        forwarded.retain(|(n, _)| n != "_count");
        forwarded.push(("_count".to_owned(), "0".to_owned()));
    }
    let bundle = gateway
        .backends
        .search(owner, resource_type, &forwarded, &call.context)
        .await
        .map_err(|s| HttpError::from_status(&s, owner.name()))?;
    let mut body = bundle_json(&bundle.json)?;
    if count_only && let Some(object) = body.as_object_mut() {
        object.remove("entry");
    }
    absolutize(&mut body, call, &presentation.link_params());
    if let Some(entries) = body.get_mut("entry").and_then(Value::as_array_mut) {
        for entry in entries.iter_mut() {
            if entry.pointer("/search/mode").and_then(Value::as_str) == Some("match")
                && let Some(resource) = entry.get_mut("resource")
            {
                presentation.subset(resource);
            }
        }
    }
    if !ignored.is_empty()
        && let Some(object) = body.as_object_mut()
        && let Some(entries) = object
            .entry("entry")
            .or_insert_with(|| json!([]))
            .as_array_mut()
    {
        entries.push(json!({
            "resource": reply::outcome(
                "warning",
                "not-supported",
                &format!("ignored search parameters this server does not support: {}", ignored.join(", ")),
                None,
            ),
            "search": {"mode": "outcome"},
        }));
    }
    Ok(Reply::json(StatusCode::OK, body))
}

/// `_summary` on a read: only `false` (the whole resource) is served.
fn check_summary(call: &Call) -> Result<(), HttpError> {
    match call.params.iter().find(|(n, _)| n == "_summary") {
        None => Ok(()),
        Some((_, v)) if v == "false" => Ok(()),
        Some((_, v)) => Err(HttpError::bad_request(
            "not-supported",
            format!("_summary={v} is not supported on a read; use _elements to choose elements"),
            "_summary",
        )),
    }
}

pub fn bundle_json(json: &str) -> Result<Value, HttpError> {
    serde_json::from_str(json).map_err(|_| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            "exception",
            "a service answered a Bundle that is not JSON",
        )
    })
}

/// Make a Bundle's links and fullUrls absolute; links get `extra`
/// parameters (the presentation) so that the next page looks the same.
pub fn absolutize(bundle: &mut Value, call: &Call, extra: &[(String, String)]) {
    if let Some(links) = bundle.get_mut("link").and_then(Value::as_array_mut) {
        for link in links {
            if let Some(url) = link.get("url").and_then(Value::as_str) {
                let mut absolute = if url.starts_with("http://") || url.starts_with("https://") {
                    url.to_owned()
                } else {
                    call.absolute(url)
                };
                for (name, value) in extra {
                    absolute.push(if absolute.contains('?') { '&' } else { '?' });
                    absolute.push_str(
                        &form_urlencoded::Serializer::new(String::new())
                            .append_pair(name, value)
                            .finish(),
                    );
                }
                link["url"] = Value::String(absolute);
            }
        }
    }
    if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
        for entry in entries {
            if let Some(url) = entry.get("fullUrl").and_then(Value::as_str)
                && !url.contains("://")
                && !url.starts_with("urn:")
            {
                entry["fullUrl"] = Value::String(call.absolute(url));
            }
            if let Some(location) = entry.pointer("/response/location").and_then(Value::as_str)
                && !location.contains("://")
            {
                entry["response"]["location"] = Value::String(call.absolute(location));
            }
        }
    }
}

fn check_type(body: &Value, resource_type: &str) -> Result<(), HttpError> {
    match body.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == resource_type => Ok(()),
        Some(t) => Err(HttpError::bad_request(
            "invalid",
            format!("the body is a {t} but the URL is for {resource_type}"),
            "resourceType",
        )),
        None => Err(HttpError::bad_request(
            "required",
            format!("the body has no resourceType; expected \"{resource_type}\""),
            "resourceType",
        )),
    }
}

/// A `POST [type]/_search` body (form-encoded).
fn form_body(call: &Call) -> Result<Vec<(String, String)>, HttpError> {
    match call.header("content-type") {
        None => Ok(Vec::new()),
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => {
            Ok(query_pairs(&String::from_utf8_lossy(&call.body)))
        }
        Some(ct) => Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!("POST _search takes application/x-www-form-urlencoded parameters, not '{ct}'"),
        )),
    }
}

pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

/// Path segments below [`BASE_PATH`], percent-decoded.
pub fn segments(path: &str) -> Vec<String> {
    path.strip_prefix(BASE_PATH)
        .unwrap_or(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| s.to_owned())
        })
        .collect()
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn base_url(gateway: &Gateway, headers: &HeaderMap) -> String {
    if let Some(base) = &gateway.base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{BASE_PATH}")
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, HttpError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            format!(
                "the request body is larger than {limit} bytes (or was cut off); send less at once, e.g. a Bundle in several parts"
            ),
        )
    })
}

/// What `Prefer` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Preference {
    pub returning: Option<Return>,
    pub handling: Option<Handling>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    OperationOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    Strict,
    Lenient,
}

pub fn prefer(headers: &HeaderMap) -> Preference {
    let mut out = Preference::default();
    for value in headers.get_all("prefer") {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split([',', ';']) {
            match part.trim().replace(' ', "").as_str() {
                "return=minimal" => out.returning = Some(Return::Minimal),
                "return=representation" => out.returning = Some(Return::Representation),
                "return=OperationOutcome" => out.returning = Some(Return::OperationOutcome),
                "handling=strict" => out.handling = Some(Handling::Strict),
                "handling=lenient" => out.handling = Some(Handling::Lenient),
                _ => {}
            }
        }
    }
    out
}

/// `Prefer: return=…` on an answer that carries a written or read resource.
fn apply_prefer(mut reply: Reply, prefer: Preference) -> Reply {
    if !reply.resource || !reply.status.is_success() {
        return reply;
    }
    match prefer.returning {
        None | Some(Return::Representation) => {}
        Some(Return::Minimal) => reply.body = None,
        Some(Return::OperationOutcome) => {
            reply.body = Some(reply::outcome(
                "information",
                "informational",
                &format!("done: {}", reply.status),
                None,
            ));
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_bound_token_is_recognized_and_a_plain_one_is_not() {
        use base64::Engine;
        let jwt = |claims: &str| {
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            format!("Bearer {}.{}.c2ln", b64(r#"{"alg":"ES384"}"#), b64(claims))
        };
        assert!(certificate_bound(&jwt(
            r#"{"sub":"hospital-ehr","cnf":{"x5t#S256":"abc"}}"#
        )));
        assert!(!certificate_bound(&jwt(r#"{"sub":"hospital-ehr"}"#)));
        assert!(!certificate_bound("Bearer not-a-jwt"));
    }

    #[test]
    fn route_templates_name_types_and_operations_and_leave_ids_out() {
        let t = |path: &str| route_template(&segments(path));
        assert_eq!(t("/fhir"), "/fhir");
        assert_eq!(t("/fhir/metadata"), "/fhir/metadata");
        assert_eq!(t("/fhir/Patient"), "/fhir/Patient");
        assert_eq!(t("/fhir/Patient/abc-123"), "/fhir/Patient/{id}");
        assert_eq!(
            t("/fhir/Patient/abc/_history/2"),
            "/fhir/Patient/{id}/_history/{vid}"
        );
        assert_eq!(t("/fhir/Patient/$match"), "/fhir/Patient/$match");
        assert_eq!(
            t("/fhir/Patient/p1/$everything"),
            "/fhir/Patient/{id}/$everything"
        );
        assert_eq!(t("/fhir/Patient/$made-up"), "/fhir/Patient/{operation}");
        assert_eq!(t("/fhir/NoSuchType/1"), "/fhir/{unknown}");
    }

    #[test]
    fn segments_below_the_base_are_decoded() {
        assert_eq!(segments("/fhir/Patient/%24match"), ["Patient", "$match"]);
        assert_eq!(segments("/fhir/"), Vec::<String>::new());
        assert_eq!(
            segments("/fhir/Patient/a/_history/2"),
            ["Patient", "a", "_history", "2"]
        );
    }

    #[test]
    fn prefer_reads_return_and_handling() {
        let mut headers = HeaderMap::new();
        headers.insert("prefer", "return=minimal, handling=strict".parse().unwrap());
        let p = prefer(&headers);
        assert_eq!(p.returning, Some(Return::Minimal));
        assert_eq!(p.handling, Some(Handling::Strict));
    }
}
