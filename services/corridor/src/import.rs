//! `corridor import`: bulk-load FHIR data into a node through its REST
//! gateway, the way any FHIR client would write it.
//!
//! The input is files or folders of FHIR JSON: a Bundle of type
//! `transaction` or `batch` is posted whole to the base; a single resource
//! is posted to its type; NDJSON lines are grouped into `batch` Bundles of
//! `--batch-size` entries. Each of those requests is a *unit*. Every unit
//! carries `X-Idempotency-Key: import-<sha256 of its bytes>`, so sending it
//! twice (a retry, or a run resumed after an interruption) replays the
//! node's first answer instead of writing again. Units the node answered in
//! full are appended to a state file, which a later run reads to skip them.
//!
//! This node assigns the id of every resource it creates and does not
//! create a resource on `PUT` to an id it does not know (no update-as-create),
//! so resources are sent as creates (`POST`) and their own `id`, if any, is
//! not kept: references between imported resources by those ids do not
//! resolve. A transaction Bundle's `urn:uuid` references do: the node
//! rewrites them when it assigns the ids.

use std::collections::HashSet;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::config::ImportArgs;

/// Where a node's REST gateway listens unless told otherwise.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080/fhir";
/// The state file, in the current directory, unless told otherwise.
pub const DEFAULT_STATE_FILE: &str = "corridor-import.state";
/// NDJSON lines per batch Bundle.
pub const DEFAULT_BATCH_SIZE: u32 = 200;
/// Requests in flight at once.
pub const DEFAULT_CONCURRENCY: u32 = 4;
/// Times a request is sent again after a transient failure.
pub const DEFAULT_RETRIES: u32 = 5;

/// Idempotency keys of this command: the prefix, then 64 hex digits.
const KEY_PREFIX: &str = "import-";
const KEY_LEN: usize = KEY_PREFIX.len() + 64;
/// The first line of a state file; the batch size follows it, because a
/// resumed import must cut its NDJSON into the same units to find them.
const STATE_HEADER: &str = "# corridor import state: one line per unit the node wrote in full (idempotency key, file, part); batch-size ";
const FHIR_JSON: &str = "application/fhir+json";
/// Far beyond the gateway's own request timeout (60 s by default): it only
/// ends a request to a node that stopped answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often progress is written as a log line when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// Said of a 401, after the node's diagnostics.
const TOKEN_REFUSED: &str = "; the node refused the token, so nothing more is sent: get a new one (corridor token) \
     and run the import again with the same --state, which skips what was written";
/// Statuses worth sending again: the request was not done, or not yet.
const TRANSIENT: [u16; 5] = [408, 429, 502, 503, 504];

/// Run `corridor import`: 0 when everything was written, 1 when something
/// failed, 2 for a usage error.
pub async fn run(args: ImportArgs) -> ExitCode {
    let settings = match Settings::from_args(args) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let (files, ignored) = match discover(&settings.paths) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let state = match State::open(&settings.state, settings.restart, settings.batch_size) {
        Ok(state) => state,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let http = match reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("corridor-import/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(err) => {
            eprintln!("error: cannot make an HTTP client: {}", chain(&err));
            return ExitCode::FAILURE;
        }
    };
    let report = import(settings, files, state, http).await;
    print!("{}", report.summary(&ignored));
    if report.failures.is_empty() && !report.stopped {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// === Settings ===

/// The command's arguments, checked.
#[derive(Debug)]
struct Settings {
    paths: Vec<PathBuf>,
    /// The FHIR base, without a trailing `/`.
    base: String,
    token: SecretString,
    state: PathBuf,
    restart: bool,
    batch_size: usize,
    concurrency: usize,
    retries: u32,
}

impl Settings {
    fn from_args(args: ImportArgs) -> Result<Self, String> {
        let base = args.base_url.trim().trim_end_matches('/').to_owned();
        if base.starts_with("https://") {
            return Err(format!(
                "--base-url {base}: this build of corridor speaks plain http only (the gateway serves plain HTTP); \
                 run the import where the gateway's http address is reachable, e.g. {DEFAULT_BASE_URL}"
            ));
        }
        if !base.starts_with("http://") || base.len() == "http://".len() {
            return Err(format!(
                "--base-url (CORRIDOR_IMPORT_BASE_URL) must be the node's FHIR base, like {DEFAULT_BASE_URL}, not '{base}'"
            ));
        }
        let token = match args.token {
            Some(token) if !token.expose_secret().trim().is_empty() => token,
            _ => {
                return Err(
                    "no access token: pass --token or set CORRIDOR_TOKEN, e.g. \
                     export CORRIDOR_TOKEN=$(corridor token --scope 'system/*.cruds' --lifetime-secs 43200)"
                        .to_owned(),
                );
            }
        };
        Ok(Self {
            paths: args.paths,
            base,
            token,
            state: args.state,
            restart: args.restart,
            batch_size: usize::try_from(args.batch_size).unwrap_or(usize::MAX),
            concurrency: usize::try_from(args.concurrency).unwrap_or(1),
            retries: args.retries,
        })
    }
}

// === Files ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// One Bundle or one resource.
    Json,
    /// One resource a line.
    Ndjson,
}

fn format_of(path: &Path) -> Option<Format> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "json" => Some(Format::Json),
        "ndjson" => Some(Format::Ndjson),
        _ => None,
    }
}

/// The files to send, sorted by path, and those found in folders that are
/// neither `*.json` nor `*.ndjson` (left alone, and named in the summary).
/// A file named on the command line must be one or the other.
fn discover(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
        if metadata.is_dir() {
            walk(path, &mut files, &mut ignored)?;
        } else if format_of(path).is_some() {
            files.push(path.clone());
        } else {
            return Err(format!(
                "{}: corridor import takes FHIR JSON (*.json) and NDJSON (*.ndjson) files, or folders of them",
                path.display()
            ));
        }
    }
    files.sort();
    files.dedup();
    ignored.sort();
    Ok((files, ignored))
}

/// Every file under `dir`. Symbolic links to folders are not followed, so
/// that a link cannot make the walk endless.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, ignored: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list it: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: cannot list it: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
        if kind.is_dir() {
            walk(&path, files, ignored)?;
        } else if format_of(&path).is_some() {
            files.push(path);
        } else {
            ignored.push(path);
        }
    }
    Ok(())
}

// === Units ===

/// Where in its file something comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The whole file.
    File,
    /// Lines `first..=last` of an NDJSON file.
    Lines(usize, usize),
    /// One NDJSON line (numbered from 1).
    Line(usize),
    /// `Bundle.entry[i]`.
    Entry(usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => Ok(()),
            Self::Lines(first, last) if first == last => write!(f, " line {first}"),
            Self::Lines(first, last) => write!(f, " lines {first}-{last}"),
            Self::Line(line) => write!(f, " line {line}"),
            Self::Entry(index) => write!(f, " entry {index}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A transaction Bundle: all or nothing.
    Transaction,
    /// A batch Bundle (a file's, or NDJSON lines): each entry on its own.
    Batch,
    /// One resource, posted to its type.
    Resource,
}

/// One request: what is sent, and where each of its entries came from.
#[derive(Debug)]
struct Unit {
    file: Arc<Path>,
    /// Where the whole unit came from.
    place: Place,
    shape: Shape,
    /// The path below the base: empty for a Bundle, else the resource type.
    path: String,
    body: Vec<u8>,
    /// `import-<hex sha256 of body>`.
    key: String,
    /// Each entry's place and request method.
    entries: Vec<(Place, String)>,
}

impl Unit {
    fn new(
        file: &Arc<Path>,
        place: Place,
        shape: Shape,
        path: String,
        body: Vec<u8>,
        entries: Vec<(Place, String)>,
    ) -> Self {
        let key = format!("{KEY_PREFIX}{:x}", Sha256::digest(&body));
        Self {
            file: Arc::clone(file),
            place,
            shape,
            path,
            body,
            key,
            entries,
        }
    }

    fn resources(&self) -> u64 {
        self.entries.len() as u64
    }
}

/// Something that was not written, and why.
#[derive(Debug, Clone)]
struct Failure {
    file: Arc<Path>,
    place: Place,
    /// The HTTP status, when the node answered.
    status: Option<u16>,
    message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}: ", self.file.display(), self.place)?;
        if let Some(status) = self.status {
            write!(f, "{status} ")?;
        }
        f.write_str(&self.message)
    }
}

/// A file cut into units, and what in it cannot be sent at all.
#[derive(Debug, Default)]
struct FilePlan {
    units: Vec<Unit>,
    failures: Vec<Failure>,
    /// Resources that carry an id of their own, which is not kept.
    with_ids: u64,
}

fn plan_file(path: &Path, batch_size: usize) -> FilePlan {
    let file: Arc<Path> = Arc::from(path);
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            return FilePlan {
                failures: vec![local(&file, Place::File, format!("cannot read it: {err}"))],
                ..FilePlan::default()
            };
        }
    };
    match format_of(path) {
        Some(Format::Ndjson) => plan_ndjson(&file, &bytes, batch_size),
        _ => plan_json(&file, bytes),
    }
}

fn local(file: &Arc<Path>, place: Place, message: String) -> Failure {
    Failure {
        file: Arc::clone(file),
        place,
        status: None,
        message,
    }
}

/// A resource's type, if the value is a JSON object naming a plausible one.
fn type_of(value: &Value) -> Result<&str, String> {
    let Some(object) = value.as_object() else {
        return Err("not a FHIR resource: a JSON object is expected".to_owned());
    };
    match object.get("resourceType").and_then(Value::as_str) {
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()) => Ok(t),
        Some(t) => Err(format!(
            "not a FHIR resource: resourceType '{t}' is no type name"
        )),
        None => Err("not a FHIR resource: it has no resourceType".to_owned()),
    }
}

/// A `*.json` file: a transaction or batch Bundle, sent as it is, or one
/// resource, sent to its type.
fn plan_json(file: &Arc<Path>, bytes: Vec<u8>) -> FilePlan {
    let mut plan = FilePlan::default();
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(err) => {
            plan.failures
                .push(local(file, Place::File, format!("not JSON: {err}")));
            return plan;
        }
    };
    let resource_type = match type_of(&value) {
        Ok(t) => t,
        Err(err) => {
            plan.failures.push(local(file, Place::File, err));
            return plan;
        }
    };
    if resource_type != "Bundle" {
        if value.get("id").is_some() {
            plan.with_ids += 1;
        }
        let path = resource_type.to_owned();
        plan.units.push(Unit::new(
            file,
            Place::File,
            Shape::Resource,
            path,
            bytes,
            vec![(Place::File, "POST".to_owned())],
        ));
        return plan;
    }
    let shape = match value.get("type").and_then(Value::as_str) {
        Some("transaction") => Shape::Transaction,
        Some("batch") => Shape::Batch,
        other => {
            plan.failures.push(local(
                file,
                Place::File,
                format!(
                    "a Bundle of type {} is not imported: only transaction and batch Bundles are \
                     (give each entry a request, and the Bundle type transaction or batch)",
                    other.map_or("(none)".to_owned(), |t| format!("'{t}'"))
                ),
            ));
            return plan;
        }
    };
    let entries: Vec<(Place, String)> = value
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let method = entry
                .pointer("/request/method")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_uppercase();
            (Place::Entry(index), method)
        })
        .collect();
    plan.units.push(Unit::new(
        file,
        Place::File,
        shape,
        String::new(),
        bytes,
        entries,
    ));
    plan
}

/// An NDJSON file: non-blank lines in groups of `batch_size`, each group a
/// batch Bundle of creates. A line that is not a resource is a failure of
/// its own; the rest of its group still goes.
fn plan_ndjson(file: &Arc<Path>, bytes: &[u8], batch_size: usize) -> FilePlan {
    let mut plan = FilePlan::default();
    let lines: Vec<(usize, &[u8])> = bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_ascii()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    for group in lines.chunks(batch_size.max(1)) {
        let mut entries = Vec::with_capacity(group.len());
        let mut places = Vec::with_capacity(group.len());
        for (number, line) in group {
            let place = Place::Line(*number);
            let value: Value = match serde_json::from_slice(line) {
                Ok(value) => value,
                Err(err) => {
                    plan.failures
                        .push(local(file, place, format!("not JSON: {err}")));
                    continue;
                }
            };
            let resource_type = match type_of(&value) {
                Ok(t) => t.to_owned(),
                Err(err) => {
                    plan.failures.push(local(file, place, err));
                    continue;
                }
            };
            if value.get("id").is_some() {
                plan.with_ids += 1;
            }
            entries.push(json!({
                "resource": value,
                "request": {"method": "POST", "url": resource_type},
            }));
            places.push((place, "POST".to_owned()));
        }
        if entries.is_empty() {
            continue;
        }
        let (first, last) = match (group.first(), group.last()) {
            (Some((first, _)), Some((last, _))) => (*first, *last),
            _ => continue,
        };
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        plan.units.push(Unit::new(
            file,
            Place::Lines(first, last),
            Shape::Batch,
            String::new(),
            bundle.to_string().into_bytes(),
            places,
        ));
    }
    plan
}

// === State ===

/// The units written by earlier runs, and the file this run appends to.
#[derive(Debug)]
struct State {
    done: HashSet<String>,
    file: Mutex<std::fs::File>,
    path: PathBuf,
}

impl State {
    fn open(path: &Path, restart: bool, batch_size: usize) -> Result<Self, String> {
        let shown = path.display();
        let mut done = HashSet::new();
        let existing = if restart {
            String::new()
        } else {
            match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(err) => {
                    return Err(format!(
                        "--state {shown}: cannot read it: {err}; give another --state, or --restart to start over"
                    ));
                }
            }
        };
        let fresh = existing.trim().is_empty();
        if !fresh {
            let mut lines = existing.lines();
            let header = lines.next().unwrap_or_default();
            let Some(recorded) = header.strip_prefix(STATE_HEADER) else {
                return Err(format!(
                    "--state {shown} is not a corridor import state file; give another --state, or --restart to overwrite it"
                ));
            };
            if recorded.trim() != batch_size.to_string() {
                return Err(format!(
                    "--state {shown} was written with --batch-size {}, and a resumed import must cut its NDJSON the same way: \
                     pass --batch-size {} to resume, or --restart to start over",
                    recorded.trim(),
                    recorded.trim()
                ));
            }
            for line in lines {
                // A line cut short by an interruption has a short key, and
                // is left out: its unit is sent again, and replayed.
                let key = line.split('\t').next().unwrap_or_default();
                if key.len() == KEY_LEN && key.starts_with(KEY_PREFIX) && line.contains('\t') {
                    done.insert(key.to_owned());
                }
            }
        }
        let mut options = std::fs::OpenOptions::new();
        if fresh {
            options.write(true).create(true).truncate(true);
        } else {
            options.append(true);
        }
        let mut file = options
            .open(path)
            .map_err(|e| format!("--state {shown}: cannot write it: {e}"))?;
        if fresh {
            file.write_all(format!("{STATE_HEADER}{batch_size}\n").as_bytes())
                .map_err(|e| format!("--state {shown}: cannot write it: {e}"))?;
        } else if !existing.ends_with('\n') {
            // Finish a line cut short, so that the next one stands alone.
            file.write_all(b"\n")
                .map_err(|e| format!("--state {shown}: cannot write it: {e}"))?;
        }
        Ok(Self {
            done,
            file: Mutex::new(file),
            path: path.to_owned(),
        })
    }

    /// Record `unit` as written, in one write, so that a run killed at any
    /// moment leaves whole lines (or one cut line, which is ignored).
    fn record(&self, unit: &Unit) -> Result<(), String> {
        let line = format!("{}\t{}{}\n", unit.key, unit.file.display(), unit.place);
        let mut file = self
            .file
            .lock()
            .map_err(|_| "the state file's lock was poisoned".to_owned())?;
        file.write_all(line.as_bytes())
            .map_err(|e| format!("cannot append to --state {}: {e}", self.path.display()))
    }
}

// === Sending ===

/// What a unit came to.
#[derive(Debug, Default)]
struct Delivered {
    created: u64,
    updated: u64,
    matched: u64,
    /// Successful entries that wrote nothing new (reads, deletes).
    other: u64,
    /// Resources that were not written.
    failed: u64,
    failures: Vec<Failure>,
    /// The node refused the token: nothing more is sent.
    fatal: bool,
    /// False for a unit left unsent because the import was stopping.
    sent: bool,
}

/// The gateway's client and the settings every request needs.
#[derive(Debug)]
struct Sender {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    retries: u32,
}

/// The node's answer: status, `Retry-After` and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: Value,
}

impl Sender {
    async fn send(&self, unit: &Unit) -> Result<Answer, reqwest::Error> {
        let url = if unit.path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, unit.path)
        };
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
            .header(reqwest::header::ACCEPT, FHIR_JSON)
            .header(corridor_gateway::IDEMPOTENCY_HEADER, &unit.key)
            .bearer_auth(self.token.expose_secret())
            .body(unit.body.clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&bytes).chars().take(500).collect())
        });
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Send `unit` until the node answers something final, at most
    /// `retries` more times, always with the same idempotency key.
    async fn deliver(&self, unit: &Unit) -> Delivered {
        let mut attempt = 0;
        loop {
            let result = self.send(unit).await;
            let retry_after = match &result {
                Err(err) if !err.is_builder() => Some(None),
                Ok(answer) if TRANSIENT.contains(&answer.status) => Some(answer.retry_after),
                // A batch whose entries met a service that was down: the
                // whole batch again, its done entries replayed.
                Ok(answer) if unit.shape != Shape::Transaction && transient_entries(answer) => {
                    Some(None)
                }
                _ => None,
            };
            if let Some(retry_after) = retry_after
                && attempt < self.retries
            {
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << attempt.min(16))
                    .min(MAX_BACKOFF);
                tokio::time::sleep(retry_after.unwrap_or(backoff).min(MAX_BACKOFF)).await;
                attempt += 1;
                continue;
            }
            return match result {
                Ok(answer) => interpret(unit, &answer),
                Err(err) => Delivered {
                    failed: unit.resources(),
                    failures: vec![Failure {
                        file: Arc::clone(&unit.file),
                        place: unit.place,
                        status: None,
                        message: format!(
                            "no answer from the node at {} after {} attempt(s): {}; nothing of this part is known to be written, and a later run sends it again safely",
                            self.base,
                            attempt + 1,
                            chain(&err)
                        ),
                    }],
                    ..Delivered::default()
                },
            };
        }
    }
}

/// Whether a batch-response has an entry worth sending again.
fn transient_entries(answer: &Answer) -> bool {
    answer.status == 200
        && answer
            .body
            .get("entry")
            .and_then(Value::as_array)
            .is_some_and(|entries| {
                entries
                    .iter()
                    .any(|e| entry_status(e).is_some_and(|s| TRANSIENT.contains(&s)))
            })
}

/// `entry.response.status` ("201 Created") as a number.
fn entry_status(entry: &Value) -> Option<u16> {
    entry
        .pointer("/response/status")
        .and_then(Value::as_str)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
}

/// What an OperationOutcome says: each issue's diagnostics and where.
fn outcome_text(outcome: &Value) -> String {
    let Some(issues) = outcome.get("issue").and_then(Value::as_array) else {
        return match outcome {
            Value::String(text) if !text.is_empty() => text.clone(),
            Value::Null => "no OperationOutcome in the answer".to_owned(),
            other => other.to_string(),
        };
    };
    let parts: Vec<String> = issues
        .iter()
        .map(|issue| {
            let text = issue
                .get("diagnostics")
                .and_then(Value::as_str)
                .or_else(|| issue.pointer("/details/text").and_then(Value::as_str))
                .or_else(|| issue.get("code").and_then(Value::as_str))
                .unwrap_or("no diagnostics");
            let at: Vec<&str> = issue
                .get("expression")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if at.is_empty() {
                text.to_owned()
            } else {
                format!("{text} (at {})", at.join(", "))
            }
        })
        .collect();
    parts.join("; ")
}

/// The entry an OperationOutcome's expression names (`Bundle.entry[3]…`).
fn entry_index(outcome: &Value) -> Option<usize> {
    outcome
        .get("issue")?
        .as_array()?
        .iter()
        .filter_map(|issue| issue.get("expression")?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|at| {
            let rest = &at[at.find("Bundle.entry[")? + "Bundle.entry[".len()..];
            rest[..rest.find(']')?].parse().ok()
        })
}

/// Count a successful entry by its status and request method.
fn count_success(delivered: &mut Delivered, status: u16, method: &str) {
    match (status, method) {
        (201, _) => delivered.created += 1,
        (_, "POST") => delivered.matched += 1,
        (_, "PUT" | "PATCH") => delivered.updated += 1,
        _ => delivered.other += 1,
    }
}

/// Turn the node's final answer into counts and failures.
fn interpret(unit: &Unit, answer: &Answer) -> Delivered {
    let mut delivered = Delivered::default();
    let fail = |place: Place, status: Option<u16>, message: String| Failure {
        file: Arc::clone(&unit.file),
        place,
        status,
        message,
    };
    let status = answer.status;
    if !(200..300).contains(&status) {
        delivered.failed = unit.resources();
        let mut message = outcome_text(&answer.body);
        let mut place = unit.place;
        match status {
            401 => {
                delivered.fatal = true;
                message.push_str(TOKEN_REFUSED);
            }
            413 if answer.body.to_string().contains("Bundle.entry") => message.push_str(&format!(
                "; the node takes at most CORRIDOR_GATEWAY_MAX_BUNDLE_ENTRIES entries in one Bundle: raise it on the node{}",
                if unit.place == Place::File {
                    ", or split the Bundle"
                } else {
                    ", or lower --batch-size"
                }
            )),
            413 => message.push_str(
                "; the node takes at most CORRIDOR_GATEWAY_MAX_BODY_BYTES in one request \
                 (and CORRIDOR_MAX_RESOURCE_BYTES in one resource): raise it on the node, or send less at once",
            ),
            _ => {}
        }
        if unit.shape == Shape::Transaction {
            if let Some(index) = entry_index(&answer.body) {
                place = Place::Entry(index);
            }
            message.push_str(
                "; the transaction was refused as a whole: nothing in this Bundle was written",
            );
        }
        delivered.failures.push(fail(place, Some(status), message));
        return delivered;
    }
    if unit.shape == Shape::Resource {
        let method = unit.entries.first().map_or("POST", |(_, m)| m.as_str());
        count_success(&mut delivered, status, method);
        return delivered;
    }
    let answers = answer
        .body
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut refused_token = None;
    for (index, (place, method)) in unit.entries.iter().enumerate() {
        let Some(entry) = answers.get(index) else {
            delivered.failed += 1;
            delivered.failures.push(fail(
                *place,
                None,
                format!("the node's {status} answer has no entry {index} for it; whether it was written is unknown, and a later run sends it again safely"),
            ));
            continue;
        };
        match entry_status(entry) {
            Some(s) if (200..300).contains(&s) => count_success(&mut delivered, s, method),
            // A batch is answered 200 whatever the token; its entries say
            // 401 each. Said once for the unit, below.
            Some(401) => {
                delivered.failed += 1;
                refused_token.get_or_insert_with(|| {
                    outcome_text(entry.pointer("/response/outcome").unwrap_or(&Value::Null))
                });
            }
            Some(s) => {
                delivered.failed += 1;
                let outcome = entry
                    .pointer("/response/outcome")
                    .cloned()
                    .unwrap_or(Value::Null);
                delivered
                    .failures
                    .push(fail(*place, Some(s), outcome_text(&outcome)));
            }
            None => {
                delivered.failed += 1;
                delivered.failures.push(fail(
                    *place,
                    None,
                    "the node's answer gives this entry no response.status".to_owned(),
                ));
            }
        }
    }
    if let Some(message) = refused_token {
        delivered.fatal = true;
        delivered.failures.push(fail(
            unit.place,
            Some(401),
            format!("{message}{TOKEN_REFUSED}"),
        ));
    }
    delivered
}

/// An error with its causes, which is where reqwest says what went wrong.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// === The run ===

/// What the import came to.
#[derive(Debug, Default)]
struct Report {
    files: usize,
    units_sent: u64,
    units_skipped: u64,
    resources_total: u64,
    resources_skipped: u64,
    created: u64,
    updated: u64,
    matched: u64,
    other: u64,
    failed: u64,
    with_ids: u64,
    failures: Vec<Failure>,
    /// Stopped before the end (the token was refused, or the state file
    /// could not be written).
    stopped: bool,
    elapsed: Duration,
}

/// What the producer hands to the sender.
#[derive(Debug)]
enum Work {
    Unit(Unit),
    Failed(Failure),
}

async fn import(
    settings: Settings,
    files: Vec<PathBuf>,
    state: State,
    http: reqwest::Client,
) -> Report {
    let started = Instant::now();
    let mut report = Report {
        files: files.len(),
        ..Report::default()
    };
    // A first pass counts everything, so that the bar has a total and starts
    // where an earlier run stopped; units are made again when sent rather
    // than held in memory all at once.
    let mut seen = HashSet::new();
    for file in &files {
        let plan = plan_file(file, settings.batch_size);
        report.resources_total += plan.failures.len() as u64;
        report.with_ids += plan.with_ids;
        for unit in &plan.units {
            report.resources_total += unit.resources();
            if state.done.contains(&unit.key) || !seen.insert(unit.key.clone()) {
                report.units_skipped += 1;
                report.resources_skipped += unit.resources();
            }
        }
    }
    drop(seen);

    let terminal = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        Some(report.resources_total),
        if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(
        "{wide_bar} {human_pos}/{human_len} resources  {per_sec:0}  ETA {eta}  {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_position(report.resources_skipped);
    bar.reset_eta();
    let failed_count = Arc::new(AtomicU64::new(0));
    let ticker = (!terminal).then(|| {
        let bar = bar.clone();
        let failed = Arc::clone(&failed_count);
        let from = report.resources_skipped;
        tokio::spawn(progress_lines(bar, failed, from))
    });

    let (tx, mut rx) = mpsc::channel::<Work>(settings.concurrency.max(1));
    let batch_size = settings.batch_size;
    let producer = std::thread::spawn(move || {
        for file in files {
            let plan = plan_file(&file, batch_size);
            let work = plan
                .failures
                .into_iter()
                .map(Work::Failed)
                .chain(plan.units.into_iter().map(Work::Unit));
            for item in work {
                if tx.blocking_send(item).is_err() {
                    // The sender stopped early.
                    return;
                }
            }
        }
    });

    let sender = Arc::new(Sender {
        http,
        base: settings.base.clone(),
        token: settings.token.clone(),
        retries: settings.retries,
    });
    let state = Arc::new(state);
    let stop = Arc::new(AtomicBool::new(false));
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks: JoinSet<Result<Delivered, String>> = JoinSet::new();
    let mut sent = HashSet::new();
    while let Some(work) = rx.recv().await {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match work {
            Work::Failed(failure) => {
                report.failed += 1;
                report.failures.push(failure);
                let failed = failed_count.fetch_add(1, Ordering::Relaxed) + 1;
                bar.inc(1);
                bar.set_message(format!("{failed} failed"));
            }
            Work::Unit(unit) => {
                // Counted as done in the first pass.
                if state.done.contains(&unit.key) || !sent.insert(unit.key.clone()) {
                    continue;
                }
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let sender = Arc::clone(&sender);
                let state = Arc::clone(&state);
                let stop = Arc::clone(&stop);
                let bar = bar.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    if stop.load(Ordering::SeqCst) {
                        return Ok(Delivered::default());
                    }
                    let mut delivered = sender.deliver(&unit).await;
                    delivered.sent = true;
                    if delivered.fatal {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if delivered.failures.is_empty() {
                        state.record(&unit)?;
                    }
                    bar.inc(unit.resources());
                    Ok(delivered)
                });
            }
        }
        while let Some(joined) = tasks.try_join_next() {
            merge(&mut report, joined, &stop, &failed_count, &bar);
        }
    }
    drop(rx);
    while let Some(joined) = tasks.join_next().await {
        merge(&mut report, joined, &stop, &failed_count, &bar);
    }
    if producer.join().is_err() {
        report.stopped = true;
        report.failures.push(Failure {
            file: Arc::from(Path::new("(reading the input)")),
            place: Place::File,
            status: None,
            message: "the thread reading the files stopped unexpectedly; run the import again with the same --state".to_owned(),
        });
    }
    if stop.load(Ordering::SeqCst) {
        report.stopped = true;
    }
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    bar.finish_and_clear();
    report.elapsed = started.elapsed();
    report
}

fn merge(
    report: &mut Report,
    joined: Result<Result<Delivered, String>, tokio::task::JoinError>,
    stop: &AtomicBool,
    failed_count: &AtomicU64,
    bar: &ProgressBar,
) {
    let delivered = match joined {
        Ok(Ok(delivered)) => delivered,
        Ok(Err(state_error)) => {
            // Without the state file a resumed run could not skip what was
            // written, so stop rather than go on unrecorded.
            stop.store(true, Ordering::SeqCst);
            report.stopped = true;
            report.failures.push(Failure {
                file: Arc::from(Path::new("(state file)")),
                place: Place::File,
                status: None,
                message: format!("{state_error}; nothing more was sent"),
            });
            return;
        }
        Err(err) => {
            stop.store(true, Ordering::SeqCst);
            report.stopped = true;
            report.failures.push(Failure {
                file: Arc::from(Path::new("(sending)")),
                place: Place::File,
                status: None,
                message: format!("a sending task failed: {err}"),
            });
            return;
        }
    };
    report.units_sent += u64::from(delivered.sent);
    report.created += delivered.created;
    report.updated += delivered.updated;
    report.matched += delivered.matched;
    report.other += delivered.other;
    report.failed += delivered.failed;
    if delivered.failed > 0 {
        failed_count.fetch_add(delivered.failed, Ordering::Relaxed);
        bar.set_message(format!("{} failed", failed_count.load(Ordering::Relaxed)));
    }
    report.failures.extend(delivered.failures);
}

/// A progress line every [`LOG_EVERY`], for logs (stderr not a terminal).
async fn progress_lines(bar: ProgressBar, failed: Arc<AtomicU64>, from: u64) {
    let started = Instant::now();
    let mut interval = tokio::time::interval(LOG_EVERY);
    interval.tick().await;
    loop {
        interval.tick().await;
        let done = bar.position();
        let total = bar.length().unwrap_or(done);
        let rate = (done.saturating_sub(from)) as f64 / started.elapsed().as_secs_f64().max(0.001);
        let eta = if rate > 0.0 {
            format!("{:.0} s", total.saturating_sub(done) as f64 / rate)
        } else {
            "unknown".to_owned()
        };
        eprintln!(
            "import: {done}/{total} resources ({:.0}%), {rate:.0}/s, ETA {eta}, {} failed",
            if total == 0 {
                100.0
            } else {
                done as f64 * 100.0 / total as f64
            },
            failed.load(Ordering::Relaxed)
        );
    }
}

impl Report {
    fn summary(&self, ignored: &[PathBuf]) -> String {
        let mut out = String::new();
        let sent = self.created + self.updated + self.matched + self.other + self.failed;
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { sent as f64 / secs } else { 0.0 };
        out.push_str(&format!(
            "import: {} file(s), {} request(s) sent, {} skipped as written by an earlier run ({} resources)\n",
            self.files, self.units_sent, self.units_skipped, self.resources_skipped
        ));
        out.push_str(&format!(
            "  {} of {} resources handled in {:.1} s ({rate:.0}/s): {} created, {} updated, {} matched an existing one, {} other, {} failed\n",
            sent,
            self.resources_total,
            secs,
            self.created,
            self.updated,
            self.matched,
            self.other,
            self.failed
        ));
        if self.with_ids > 0 {
            out.push_str(&format!(
                "  note: {} resource(s) carry an id of their own; the node assigns ids on create, so references to those ids do not resolve\n",
                self.with_ids
            ));
        }
        for path in ignored {
            out.push_str(&format!(
                "  not imported (neither *.json nor *.ndjson): {}\n",
                path.display()
            ));
        }
        if self.stopped {
            out.push_str(
                "  stopped before the end; run the same command again (same --state) to go on\n",
            );
        }
        if self.failures.is_empty() {
            out.push_str("no failures\n");
        } else {
            out.push_str(&format!("failures ({}):\n", self.failures.len()));
            let mut failures: Vec<&Failure> = self.failures.iter().collect();
            failures.sort_by(|a, b| {
                (&*a.file, place_order(a.place)).cmp(&(&*b.file, place_order(b.place)))
            });
            for failure in failures {
                out.push_str(&format!("  {failure}\n"));
            }
        }
        out
    }
}

/// Failures of one file in the order of the file.
fn place_order(place: Place) -> usize {
    match place {
        Place::File => 0,
        Place::Lines(line, _) | Place::Line(line) | Place::Entry(line) => line,
    }
}
