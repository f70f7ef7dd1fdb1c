//! FHIR Bulk Data `$import`, for partners who push NDJSON: the async
//! request pattern of the Bulk Data specification, with the data in the
//! kick-off request itself.
//!
//! - `POST [base]/$import` with `Content-Type: application/fhir+ndjson`
//!   (one resource a line) and `Prefer: respond-async` answers 202 with
//!   `Content-Location`: the job's status URL. The gateway does not fetch
//!   input URLs (a `Parameters` kick-off naming them is refused, saying so):
//!   a node reaches nothing outside its own services.
//! - `GET` on the status URL answers 202 with `X-Progress` while the job
//!   runs, then 200 with the manifest: the resources written by type, and
//!   the errors (`[status]/errors`, a Bundle of OperationOutcomes, one per
//!   failed line, naming it). `DELETE` stops the job.
//!
//! The job writes the lines of one service's types in transactions of up
//! to [`CHUNK`] (one database transaction each, the fast path). A chunk
//! that a line makes fail is written again line by line, so that every
//! good line is written and every bad one reported. Each write carries an
//! idempotency key made of the job's and the chunk's or line's place: with
//! the client's `X-Idempotency-Key`, the job is named after it, so sending
//! the same request again, after a lost answer or a gateway restart (jobs
//! live in the gateway's memory), finds the job or replays what was
//! written; nothing is written twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::backends::{CallContext, Owner};
use crate::reply::{HttpError, Reply};
use crate::rest::{self, Call, Gateway};

/// Lines written in one transaction.
pub const CHUNK: usize = 200;
/// Jobs kept for their status after they end; the oldest ended one goes.
const KEPT: usize = 64;
/// How long one chunk's transaction may take.
const CHUNK_DEADLINE: Duration = Duration::from_secs(60);
/// Attempts of a write that failed for a transient reason.
const ATTEMPTS: u32 = 5;

/// The jobs of this gateway, by id.
#[derive(Debug, Default)]
pub struct Imports {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

#[derive(Debug)]
struct Job {
    /// A random id: whoever has the status URL may read the job's result.
    id: String,
    /// What the writes' idempotency keys are made of: the client's key, so
    /// that the same request sent again replays, or else the id.
    key: String,
    /// What the request was, to refuse a key reused for another.
    request_hash: String,
    kicked_off: String,
    request_url: String,
    lines: usize,
    cancelled: AtomicBool,
    progress: Mutex<Progress>,
}

#[derive(Debug, Default)]
struct Progress {
    handled: usize,
    written: BTreeMap<String, usize>,
    errors: Vec<Value>,
    /// When the job ended, and why it stopped early, if it did.
    ended: Option<String>,
    stopped: Option<String>,
}

/// One NDJSON line to write: its number (from 1), type and resource.
struct Line {
    number: usize,
    resource_type: String,
    resource: Value,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn is_ndjson(call: &Call) -> bool {
    call.header("content-type")
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|ct| {
            matches!(
                ct.as_str(),
                "application/fhir+ndjson" | "application/ndjson" | "application/x-ndjson"
            )
        })
}

/// `POST [base]/$import`: start a job.
pub async fn kickoff(gateway: &Gateway, call: &Call) -> Result<Reply, HttpError> {
    if !is_ndjson(call) {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "$import takes the NDJSON itself, one resource a line, with Content-Type: application/fhir+ndjson; this gateway does not fetch input URLs named in a Parameters resource",
        ));
    }
    let async_wanted = call
        .header("prefer")
        .is_some_and(|p| p.split(',').any(|v| v.trim() == "respond-async"));
    if !async_wanted {
        return Err(HttpError::at(
            StatusCode::BAD_REQUEST,
            "required",
            "$import runs as a job: send Prefer: respond-async, then poll the Content-Location of the answer",
            "Prefer",
        ));
    }
    if call.context.authorization.is_none() {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "login",
            "$import needs Authorization: Bearer <token>; the job writes with it",
        ));
    }
    let text = std::str::from_utf8(&call.body)
        .map_err(|_| HttpError::bad_request("structure", "the NDJSON is not UTF-8", "body"))?;
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    if lines == 0 {
        return Err(HttpError::bad_request(
            "required",
            "the NDJSON has no lines; send one FHIR resource (JSON) a line",
            "body",
        ));
    }
    let request_hash = format!("{:x}", Sha256::digest(&call.body));
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key = match &call.context.idempotency_key {
        Some(key) => format!("{:x}", Sha256::digest(format!("$import\n{key}")))[..32].to_owned(),
        None => id.clone(),
    };
    let status_url = |id: &str| format!("{}/$import-poll-status/{id}", call.base);
    let job = {
        let mut jobs = lock(&gateway.imports.jobs);
        if let Some(job) = jobs.values().find(|j| j.key == key) {
            if job.request_hash != request_hash {
                return Err(HttpError::at(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "X-Idempotency-Key was already used for a different $import; use a new key for new data",
                    "X-Idempotency-Key",
                ));
            }
            return Ok(accepted(
                &status_url(&job.id),
                "this $import was already accepted; poll its status",
            ));
        }
        forget_ended(&mut jobs);
        let job = Arc::new(Job {
            id: id.clone(),
            key,
            request_hash,
            kicked_off: now(),
            request_url: format!("{}/$import", call.base),
            lines,
            cancelled: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
        });
        jobs.insert(id.clone(), job.clone());
        job
    };
    let backends = gateway.backends.clone();
    let context = call.context.clone();
    let body = call.body.clone();
    tokio::spawn(async move {
        let text = String::from_utf8_lossy(&body);
        run(&backends, &job, &text, &context).await;
        let mut progress = lock(&job.progress);
        progress.ended = Some(now());
        tracing::info!(job = %job.id, lines = job.lines, handled = progress.handled, errors = progress.errors.len(), stopped = ?progress.stopped, "$import ended");
    });
    Ok(accepted(
        &status_url(&id),
        &format!("accepted {lines} line(s); poll the Content-Location for progress and the result"),
    ))
}

fn accepted(status_url: &str, said: &str) -> Reply {
    Reply::json(
        StatusCode::ACCEPTED,
        json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "informational", "diagnostics": said}]}),
    )
    .header(header::CONTENT_LOCATION, status_url.to_owned())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keep at most [`KEPT`] jobs: drop the oldest that have ended.
fn forget_ended(jobs: &mut HashMap<String, Arc<Job>>) {
    while jobs.len() >= KEPT {
        let oldest = jobs
            .values()
            .filter(|j| lock(&j.progress).ended.is_some())
            .min_by(|a, b| a.kicked_off.cmp(&b.kicked_off))
            .map(|j| j.id.clone());
        match oldest {
            Some(id) => {
                jobs.remove(&id);
            }
            None => return,
        }
    }
}

fn find(gateway: &Gateway, id: &str) -> Result<Arc<Job>, HttpError> {
    lock(&gateway.imports.jobs).get(id).cloned().ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no $import job '{id}' on this gateway (jobs live in its memory and a restart forgets them); send the request again with the same X-Idempotency-Key: what was written replays"),
        )
    })
}

/// `GET [status]`: progress, or the manifest.
pub fn status(gateway: &Gateway, call: &Call, id: &str) -> Result<Reply, HttpError> {
    let job = find(gateway, id)?;
    let progress = lock(&job.progress);
    let Some(ended) = progress.ended.clone() else {
        return Ok(Reply::json(
            StatusCode::ACCEPTED,
            json!({"resourceType": "OperationOutcome", "issue": [{
                "severity": "information", "code": "informational",
                "diagnostics": format!("{} of {} line(s) handled", progress.handled, job.lines)}]}),
        )
        .header(
            http::HeaderName::from_static("x-progress"),
            format!("{} of {} lines", progress.handled, job.lines),
        ));
    };
    let output: Vec<Value> = progress
        .written
        .iter()
        .map(|(resource_type, count)| json!({"type": resource_type, "count": count}))
        .collect();
    let mut error = Vec::new();
    if !progress.errors.is_empty() {
        error.push(json!({
            "type": "OperationOutcome",
            "count": progress.errors.len(),
            "url": format!("{}/$import-poll-status/{id}/errors", call.base),
        }));
    }
    let mut manifest = json!({
        "transactionTime": job.kicked_off,
        "request": job.request_url,
        "requiresAccessToken": true,
        "output": output,
        "error": error,
        "extension": {"ended": ended, "lines": job.lines, "handled": progress.handled},
    });
    if let Some(stopped) = &progress.stopped {
        manifest["extension"]["stopped"] = json!(stopped);
    }
    Ok(Reply::json(StatusCode::OK, manifest))
}

/// `GET [status]/errors`: a Bundle of every failed line's OperationOutcome.
pub fn errors(gateway: &Gateway, id: &str) -> Result<Reply, HttpError> {
    let job = find(gateway, id)?;
    let progress = lock(&job.progress);
    let entries: Vec<Value> = progress
        .errors
        .iter()
        .map(|outcome| json!({"resource": outcome}))
        .collect();
    Ok(Reply::json(
        StatusCode::OK,
        json!({"resourceType": "Bundle", "type": "collection", "total": entries.len(), "entry": entries}),
    ))
}

/// `DELETE [status]`: stop the job after the write in progress.
pub fn cancel(gateway: &Gateway, id: &str) -> Result<Reply, HttpError> {
    let job = find(gateway, id)?;
    job.cancelled.store(true, Ordering::SeqCst);
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "informational",
            "diagnostics": "the job stops after the write in progress; what was written stays"}]}),
    ))
}

/// An OperationOutcome for line `number`.
fn line_error(number: usize, code: &str, said: &str, outcome: Option<Value>) -> Value {
    let mut outcome = outcome.unwrap_or_else(|| {
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": said}]})
    });
    if let Some(issues) = outcome["issue"].as_array_mut() {
        for issue in issues {
            let said = issue["diagnostics"].as_str().unwrap_or_default().to_owned();
            issue["diagnostics"] = json!(format!("line {number}: {said}"));
        }
    }
    outcome
}

/// Write every line of `text`, recording progress in `job`.
async fn run(backends: &crate::backends::Backends, job: &Job, text: &str, context: &CallContext) {
    let mut by_owner: Vec<(Owner, Vec<Line>)> =
        Owner::ALL.iter().map(|o| (*o, Vec::new())).collect();
    for (number, raw) in text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| (i + 1, l))
    {
        let refused = |code: &str, said: String| Some(line_error(number, code, &said, None));
        let error = match serde_json::from_str::<Value>(raw) {
            Err(e) => refused("structure", format!("not JSON: {e}")),
            Ok(resource) => {
                let resource_type = resource["resourceType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                match Owner::of(&resource_type) {
                    Some((owner, _)) => {
                        if let Some((_, lines)) = by_owner.iter_mut().find(|(o, _)| *o == owner) {
                            lines.push(Line {
                                number,
                                resource_type,
                                resource,
                            });
                        }
                        None
                    }
                    None => refused(
                        "not-supported",
                        format!("resourceType '{resource_type}' is not served here"),
                    ),
                }
            }
        };
        if let Some(error) = error {
            let mut progress = lock(&job.progress);
            progress.errors.push(error);
            progress.handled += 1;
        }
    }
    // Identity's types first: the other services check the Patients.
    for (owner, lines) in &by_owner {
        for (chunk_number, chunk) in lines.chunks(CHUNK).enumerate() {
            if job.cancelled.load(Ordering::SeqCst) {
                lock(&job.progress).stopped = Some("cancelled (DELETE)".to_owned());
                return;
            }
            if let Err(stop) =
                write_chunk(backends, job, *owner, chunk_number, chunk, context).await
            {
                lock(&job.progress).stopped = Some(stop);
                return;
            }
        }
    }
}

/// Write `chunk` in one transaction, or line by line if a line fails it.
/// Err: the job cannot go on (the token was refused, a service stayed down).
async fn write_chunk(
    backends: &crate::backends::Backends,
    job: &Job,
    owner: Owner,
    chunk_number: usize,
    chunk: &[Line],
    context: &CallContext,
) -> Result<(), String> {
    let entries: Vec<Value> = chunk
        .iter()
        .map(|line| json!({"resource": line.resource, "request": {"method": "POST", "url": line.resource_type}}))
        .collect();
    let bundle =
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}).to_string();
    let key = CallContext {
        idempotency_key: Some(format!(
            "import-{}/{}/{chunk_number}",
            job.key,
            owner.name()
        )),
        ..context.clone()
    };
    let whole =
        retrying(|| backends.transaction(owner, bundle.clone(), &key, CHUNK_DEADLINE)).await;
    match whole {
        Ok(_) => {
            let mut progress = lock(&job.progress);
            for line in chunk {
                *progress
                    .written
                    .entry(line.resource_type.clone())
                    .or_default() += 1;
            }
            progress.handled += chunk.len();
            Ok(())
        }
        Err(status) => {
            stop_for(&status, owner)?;
            // A line made the chunk fail: write each alone, to keep the
            // good ones and report the bad.
            for line in chunk {
                let key = CallContext {
                    idempotency_key: Some(format!("import-{}#{}", job.key, line.number)),
                    ..context.clone()
                };
                let one = retrying(|| {
                    backends.create(owner, line.resource.to_string(), String::new(), &key)
                })
                .await;
                let mut progress = lock(&job.progress);
                progress.handled += 1;
                match one {
                    Ok(_) => {
                        *progress
                            .written
                            .entry(line.resource_type.clone())
                            .or_default() += 1
                    }
                    Err(status) => {
                        drop(progress);
                        stop_for(&status, owner)?;
                        let refusal = HttpError::from_status(&status, owner.name());
                        lock(&job.progress).errors.push(line_error(
                            line.number,
                            "invalid",
                            "",
                            Some(refusal.outcome),
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// Whether `status` ends the job: a refused token, or a service that
/// stayed unreachable.
fn stop_for(status: &tonic::Status, owner: Owner) -> Result<(), String> {
    match status.code() {
        tonic::Code::Unauthenticated => Err(format!(
            "the token was refused ({}); send the request again with a valid token and the same X-Idempotency-Key: what was written replays",
            status.message()
        )),
        code if transient(code) => Err(format!(
            "the {} service could not be reached ({}); send the request again with the same X-Idempotency-Key: what was written replays",
            owner.name(),
            status.message()
        )),
        _ => Ok(()),
    }
}

fn transient(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::ResourceExhausted
    )
}

/// `write` again while it fails for a transient reason, at most
/// [`ATTEMPTS`] times, waiting longer each time.
async fn retrying<T, F, Fut>(mut write: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let mut wait = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match write().await {
            Err(status) if transient(status.code()) && attempt < ATTEMPTS => {
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Where `$import` routes start, for the router.
pub fn is_route(segments: &[&str]) -> bool {
    matches!(segments.first(), Some(&"$import" | &"$import-poll-status"))
}

/// The `$import` routes.
pub async fn dispatch(gateway: &Gateway, call: &Call) -> Result<Reply, HttpError> {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    if call.context.authorization.is_none() {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "login",
            "$import and its status need Authorization: Bearer <token>",
        ));
    }
    match (segments.as_slice(), &call.method) {
        (["$import"], &http::Method::POST) => kickoff(gateway, call).await,
        (["$import-poll-status", id], &http::Method::GET) => status(gateway, call, id),
        (["$import-poll-status", id], &http::Method::DELETE) => cancel(gateway, id),
        (["$import-poll-status", id, "errors"], &http::Method::GET) => errors(gateway, id),
        _ => Err(rest::no_route(call)),
    }
}
