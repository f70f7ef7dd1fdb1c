//! `corridor import` against a real node: a folder with broken files is
//! reported file by file and entry by entry while the rest is written, and
//! an import killed half-way resumes and ends with every resource once.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use corridor_tests::{Backend, corridor_binary, for_each_backend};
use serde_json::{Value, json};

use crate::process::{Process, node};

for_each_backend!(
    an_import_of_a_folder_with_one_broken_file_reports_that_file_and_imports_the_rest,
    an_interrupted_import_resumes_and_ends_with_every_resource_once,
);

/// The identifier system of every resource these tests import.
const SYSTEM: &str = "urn:corridor:test:import";

/// A Patient with an id of its source and identifier `value`; names and
/// birth dates differ from one to the next, as real people's do.
fn patient(value: &str) -> Value {
    let n: usize = value.bytes().map(usize::from).sum::<usize>() * 31 + value.len();
    let families = [
        "Haile", "Okafor", "Nguyen", "Popescu", "Silva", "Ahmed", "Rossi",
    ];
    json!({
        "resourceType": "Patient",
        "id": format!("source-{value}"),
        "identifier": [{"system": SYSTEM, "value": value}],
        "name": [{"family": format!("{}-{value}", families[n % families.len()]), "given": [format!("Given-{value}")]}],
        "birthDate": format!("{}-{:02}-{:02}", 1940 + n % 60, 1 + n % 12, 1 + n % 28),
    })
}

fn organization(value: &str) -> Value {
    json!({
        "resourceType": "Organization",
        "id": format!("source-{value}"),
        "identifier": [{"system": SYSTEM, "value": value}],
        "name": format!("Clinic {value}"),
    })
}

fn ndjson(resources: &[Value]) -> String {
    resources.iter().map(|r| format!("{r}\n")).collect()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a parent folder")).expect("folder");
    std::fs::write(path, text).expect("write input");
}

/// `corridor import` with `args`, against `node`, with an empty environment
/// (so that nothing from the caller's shell is read), stderr not a terminal.
fn import(node: &Process, token: &str, args: &[&str]) -> Command {
    let mut command = Command::new(corridor_binary());
    command
        .arg("import")
        .args([
            "--base-url",
            &format!("http://127.0.0.1:{}/fhir", node.gateway_port),
        ])
        .args(args)
        .env_clear()
        .env("CORRIDOR_TOKEN", token)
        .stdin(Stdio::null());
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The REST gateway of a node, as the operator.
struct Rest {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Rest {
    fn new(node: &Process, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{}/fhir", node.gateway_port),
            token: token.to_owned(),
        }
    }

    async fn get(&self, url: &str) -> Value {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}/{url}", self.base)
        };
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        let status = response.status();
        let body: Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
        assert_eq!(status, 200, "GET {url}: {body}");
        body
    }

    /// How many resources of `resource_type` the node holds.
    async fn count(&self, resource_type: &str) -> u64 {
        let bundle = self.get(&format!("{resource_type}?_summary=count")).await;
        bundle["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("a total in {bundle}"))
    }

    /// How many resources of `resource_type` carry identifier `value`.
    async fn with_identifier(&self, resource_type: &str, value: &str) -> u64 {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("identifier", &format!("{SYSTEM}|{value}"))
            .append_pair("_summary", "count")
            .finish();
        let bundle = self.get(&format!("{resource_type}?{query}")).await;
        bundle["total"].as_u64().expect("a total")
    }

    /// Every Patient, page by page: how many carry each identifier value
    /// of [`SYSTEM`].
    async fn patient_identifiers(&self) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        let mut next = Some("Patient?_count=1000".to_owned());
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            assert!(pages < 100, "next links never end");
            let bundle = self.get(&url).await;
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                for identifier in entry["resource"]["identifier"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if identifier["system"] == SYSTEM
                        && let Some(value) = identifier["value"].as_str()
                    {
                        *seen.entry(value.to_owned()).or_default() += 1;
                    }
                }
            }
            next = bundle["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
        }
        seen
    }
}

async fn an_import_of_a_folder_with_one_broken_file_reports_that_file_and_imports_the_rest(
    backend: Backend,
) {
    let Some((dir, _db, node)) = node(backend).await else {
        return;
    };
    let token = node.admin_token();
    let rest = Rest::new(&node, &token);
    let patients_before = rest.count("Patient").await;
    let organizations_before = rest.count("Organization").await;

    let input = dir.path().join("input");
    let a: Vec<String> = (1..=5).map(|i| format!("a-{i}")).collect();
    let d: Vec<String> = (1..=4).map(|i| format!("d-{i}")).collect();
    let mut lines = ndjson(&a.iter().map(|v| patient(v)).collect::<Vec<_>>());
    // A blank line is no resource and no failure.
    lines.insert(lines.find('\n').expect("a line") + 1, '\n');
    write(&input.join("a-patients.ndjson"), &lines);
    write(
        &input.join("b-organizations.ndjson"),
        &ndjson(&[
            organization("b-1"),
            organization("b-2"),
            organization("b-3"),
        ]),
    );
    // Line 2 fails validation, line 3 is not JSON; lines 1 and 4 are fine.
    write(
        &input.join("c-broken.ndjson"),
        &format!(
            "{}\n{}\n{}\n{}\n",
            patient("c-1"),
            json!({"resourceType": "Patient", "gender": "robot"}),
            r#"{"resourceType": "Patient", "name": ["#,
            patient("c-2"),
        ),
    );
    write(
        &input.join("nested/d-patients.ndjson"),
        &ndjson(&d.iter().map(|v| patient(v)).collect::<Vec<_>>()),
    );
    write(
        &input.join("e-organization.json"),
        &organization("e-1").to_string(),
    );
    // A transaction of one service's types, with urn:uuid fullUrls.
    let entries: Vec<Value> = ["f-1", "f-2"]
        .iter()
        .map(|v| {
            json!({
                "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                "resource": patient(v),
                "request": {"method": "POST", "url": "Patient"},
            })
        })
        .collect();
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    write(&input.join("f-transaction.json"), &transaction.to_string());
    write(&input.join("notes.json"), "these are notes, not JSON\n");
    write(&input.join("readme.txt"), "not FHIR at all\n");

    let state = dir.path().join("import.state");
    let state_arg = state.display().to_string();
    let input_arg = input.display().to_string();
    let args = [
        "--state",
        state_arg.as_str(),
        "--batch-size",
        "2",
        "--concurrency",
        "3",
        input_arg.as_str(),
    ];
    let output = import(&node, &token, &args)
        .output()
        .expect("run corridor import");
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "some failed, so exit 1\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let failure_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(": "))
        .collect();
    let broken = input.join("c-broken.ndjson").display().to_string();
    let line = |n: usize| {
        failure_lines
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{broken} line {n}: ")))
            .unwrap_or_else(|| panic!("no failure for line {n} of {broken} in:\n{stdout}"))
    };
    let invalid = line(2);
    assert!(
        invalid.contains("400") && invalid.contains("gender"),
        "line 2 fails validation with the node's diagnostics and where: {invalid}"
    );
    assert!(
        line(3).contains("not JSON"),
        "line 3 is not JSON: {}",
        line(3)
    );
    let notes = input.join("notes.json").display().to_string();
    assert!(
        failure_lines
            .iter()
            .any(|l| l.trim_start().starts_with(&format!("{notes}: not JSON"))),
        "the file that is not JSON is named:\n{stdout}"
    );
    assert!(
        stdout.contains("failures (3):"),
        "three failures and no more:\n{stdout}"
    );
    assert!(
        stdout.contains("readme.txt"),
        "a file that is neither *.json nor *.ndjson is named as not imported:\n{stdout}"
    );

    // Everything good is there once: 5 + 2 + 4 + 2 Patients, 3 + 1
    // Organizations, each found by its identifier.
    assert_eq!(rest.count("Patient").await, patients_before + 13);
    assert_eq!(rest.count("Organization").await, organizations_before + 4);
    for value in a
        .iter()
        .chain(&d)
        .map(String::as_str)
        .chain(["c-1", "c-2", "f-1", "f-2"])
    {
        assert_eq!(
            rest.with_identifier("Patient", value).await,
            1,
            "Patient {value}"
        );
    }
    for value in ["b-1", "b-2", "b-3", "e-1"] {
        assert_eq!(
            rest.with_identifier("Organization", value).await,
            1,
            "Organization {value}"
        );
    }

    // Run again: what was written in full is skipped; the batch with the
    // broken line is sent again and its good line replayed, not duplicated.
    let again = import(&node, &token, &args)
        .output()
        .expect("run corridor import");
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 request(s) sent"),
        "only the batch with a failure is sent again:\n{stdout}"
    );
    assert_eq!(rest.count("Patient").await, patients_before + 13);
    assert_eq!(rest.with_identifier("Patient", "c-1").await, 1);
}

async fn an_interrupted_import_resumes_and_ends_with_every_resource_once(backend: Backend) {
    const FILES: usize = 4;
    const PER_FILE: usize = 500;
    const TOTAL: usize = FILES * PER_FILE;
    const BATCH: usize = 50;
    let Some((dir, _db, node)) = node(backend).await else {
        return;
    };
    let token = node.admin_token();
    let rest = Rest::new(&node, &token);
    let before = rest.count("Patient").await;

    let input = dir.path().join("input");
    for file in 0..FILES {
        let patients: Vec<Value> = (0..PER_FILE)
            .map(|i| patient(&format!("p-{:05}", file * PER_FILE + i)))
            .collect();
        write(
            &input.join(format!("patients-{file}.ndjson")),
            &ndjson(&patients),
        );
    }
    let state = dir.path().join("import.state");
    let state_arg = state.display().to_string();
    let input_arg = input.display().to_string();
    let batch = BATCH.to_string();
    let args = [
        "--state",
        state_arg.as_str(),
        "--batch-size",
        batch.as_str(),
        input_arg.as_str(),
    ];

    // Killed (SIGKILL) once a few batches are recorded as written.
    let mut child = import(&node, &token, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start corridor import");
    let recorded = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|t| t.lines().filter(|l| l.starts_with("import-")).count())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while recorded(&state) < 3 {
        if let Some(status) = child.try_wait().expect("poll corridor import") {
            panic!("corridor import ended ({status}) before it could be interrupted");
        }
        assert!(
            Instant::now() < deadline,
            "no progress in the state file within 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill corridor import");
    child.wait().expect("reap corridor import");
    let at_kill = recorded(&state);
    assert!(
        at_kill < TOTAL / BATCH,
        "the import was interrupted before the end ({at_kill} of {} batches recorded)",
        TOTAL / BATCH
    );

    let output = import(&node, &token, &args)
        .output()
        .expect("run corridor import");
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the resumed import succeeds\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("no failures"), "no failures:\n{stdout}");
    // "import: 4 file(s), 30 request(s) sent, 10 skipped as written by …"
    let skipped: usize = stdout
        .lines()
        .find(|l| l.starts_with("import:"))
        .and_then(|l| {
            l.split(", ")
                .find(|part| part.contains("skipped as written"))
        })
        .and_then(|part| part.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count of skipped requests in:\n{stdout}"));
    assert!(
        skipped >= at_kill,
        "the {at_kill} batches recorded before the kill are skipped, not sent again ({skipped} skipped):\n{stdout}"
    );
    assert_eq!(
        recorded(&state),
        TOTAL / BATCH,
        "every batch is recorded once in the end"
    );

    assert_eq!(
        rest.count("Patient").await,
        before + TOTAL as u64,
        "exactly {TOTAL} Patients were added"
    );
    let seen = rest.patient_identifiers().await;
    assert_eq!(seen.len(), TOTAL, "every Patient is there");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "each Patient once: {twice:?}");
    for i in (0..TOTAL).step_by(TOTAL / 10) {
        let value = format!("p-{i:05}");
        assert_eq!(
            rest.with_identifier("Patient", &value).await,
            1,
            "a search by identifier finds Patient {value} once"
        );
    }
}
