//! Quality and speed of Patient `$match` on a synthetic migrant population
//! with known duplicates (`corridor_tests::population`). Loads every record
//! through Create, asks Match about each one (with its own id, so that it
//! is left out), and prints precision, recall and F1 per grade threshold,
//! recall per kind of corruption, match latency and create throughput, and
//! examples of false positives and false negatives. Prints figures; asserts
//! nothing.
//!
//! `just bench-match` (release profile). Settings from the environment:
//! MATCH_PEOPLE (10000), MATCH_DUPLICATES (2000), MATCH_SEED (7),
//! MATCH_CONCURRENCY (8). With MATCH_ADDR (e.g. http://127.0.0.1:50051) it
//! drives that running node instead of starting identity in-process on each
//! backend; candidates that are not records of this run are then ignored,
//! but they still take places among the 10 answers per call, so give it a
//! fresh node (a second run with the same seed would find its twins).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use corridor_proto::identity::v1 as pb;
use corridor_proto::identity::v1::identity_service_client::IdentityServiceClient;
use corridor_tests::IdentityApp;
use corridor_tests::bench::{backends, ms, percentile, setting};
use corridor_tests::population::{Config, Corruption, Population, Record};
use futures::{StreamExt, stream};
use serde_json::Value;

/// Candidates asked for per Match call.
const MATCH_COUNT: i32 = 10;

/// Examples printed per kind of mistake.
const EXAMPLES: usize = 8;

/// The FHIR extension that carries a candidate's grade.
const MATCH_GRADE_URL: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let config = Config {
        people: setting("MATCH_PEOPLE", 10_000),
        duplicates: setting("MATCH_DUPLICATES", 2_000),
        seed: setting("MATCH_SEED", 7) as u64,
    };
    let concurrency = setting("MATCH_CONCURRENCY", 8);

    let start = Instant::now();
    let population = Population::generate(&config);
    let truth = population.true_pairs();
    let hard = population.records.iter().filter(|r| r.hard).count();
    println!(
        "population: {} records of {} people ({} duplicates, {hard} of them hard), {} true pairs, seed {}; generated in {:.1} s",
        population.records.len(),
        population.people,
        config.duplicates,
        truth.len(),
        config.seed,
        start.elapsed().as_secs_f64()
    );

    match std::env::var("MATCH_ADDR") {
        Ok(addr) if !addr.is_empty() => {
            let token = std::env::var("MATCH_TOKEN").unwrap_or_else(|_| {
                panic!(
                    "MATCH_TOKEN must hold an access token for that node, e.g. $(corridor token)"
                )
            });
            let channel = tonic::transport::Channel::from_shared(addr.clone())
                .unwrap_or_else(|e| {
                    panic!(
                        "MATCH_ADDR must be a URL such as http://127.0.0.1:50051, not '{addr}': {e}"
                    )
                })
                .connect()
                .await
                .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
            let client =
                IdentityServiceClient::new(tonic::service::interceptor::InterceptedService::new(
                    channel,
                    corridor_tests::Bearer(Some(corridor_tests::bearer(&token))),
                ))
                .max_decoding_message_size(64 * 1024 * 1024);
            run(&addr, client, &population, &truth, concurrency).await;
        }
        _ => {
            // MATCH_BACKEND=postgres (or sqlite) runs on that backend only.
            let only = std::env::var("MATCH_BACKEND")
                .unwrap_or_default()
                .to_lowercase();
            for backend in backends()
                .into_iter()
                .filter(|b| only.is_empty() || format!("{b:?}").to_lowercase() == only)
            {
                let app = IdentityApp::spawn(backend).await.expect("service starts");
                let target = format!("{backend:?}");
                run(
                    &target,
                    app.client.clone(),
                    &population,
                    &truth,
                    concurrency,
                )
                .await;
                app.stop().await;
            }
        }
    }
}

// === Grades ===

/// A match grade, weakest first, so that `>=` means "at least as sure".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Grade {
    CertainlyNot,
    Possible,
    Probable,
    Certain,
}

impl Grade {
    /// The grade a match-grade code names.
    fn parse(code: &str) -> Option<Self> {
        match code {
            "certainly-not" => Some(Grade::CertainlyNot),
            "possible" => Some(Grade::Possible),
            "probable" => Some(Grade::Probable),
            "certain" => Some(Grade::Certain),
            _ => None,
        }
    }

    /// The match-grade code.
    fn code(self) -> &'static str {
        match self {
            Grade::CertainlyNot => "certainly-not",
            Grade::Possible => "possible",
            Grade::Probable => "probable",
            Grade::Certain => "certain",
        }
    }
}

/// The thresholds the table reports: a pair counts as a match when graded
/// at least this.
const THRESHOLDS: [(&str, Grade); 3] = [
    ("certain", Grade::Certain),
    ("certain+probable", Grade::Probable),
    ("certain+probable+possible", Grade::Possible),
];

/// One entry of a Match answer.
#[derive(Debug)]
struct Candidate {
    id: String,
    score: f64,
    /// None when the entry carries no known match-grade code.
    grade: Option<Grade>,
}

/// The candidates of a Match searchset Bundle.
fn candidates(bundle: &str) -> Vec<Candidate> {
    let bundle: Value = serde_json::from_str(bundle).expect("Match returns a JSON Bundle");
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let id = entry["resource"]["id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    entry["fullUrl"]
                        .as_str()
                        .and_then(|url| url.rsplit('/').next())
                        .map(str::to_owned)
                })?;
            let search = &entry["search"];
            let grade = search["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["url"] == MATCH_GRADE_URL)
                .and_then(|e| e["valueCode"].as_str())
                .and_then(Grade::parse);
            Some(Candidate {
                id,
                score: search["score"].as_f64().unwrap_or(f64::NAN),
                grade,
            })
        })
        .collect()
}

/// A Match answer: how long it took and its candidates.
type Answer = Result<(Duration, Vec<Candidate>), tonic::Status>;

/// The best grade (then score) Match gave a pair, from either side.
#[derive(Debug, Clone, Copy)]
struct Seen {
    grade: Grade,
    score: f64,
}

// === The run ===

/// Load the population into the identity service behind `client`, ask
/// Match about every record and print what came back.
async fn run(
    target: &str,
    client: IdentityServiceClient<corridor_tests::Authed>,
    population: &Population,
    truth: &BTreeSet<(usize, usize)>,
    concurrency: usize,
) {
    let records = &population.records;

    // Load every record; map it to the id the server assigned.
    let start = Instant::now();
    let mut created: Vec<(usize, String)> = stream::iter(records.iter().enumerate())
        .map(|(index, record)| {
            let mut client = client.clone();
            async move {
                let request = pb::CreateRequest {
                    resource: record.resource.to_string(),
                    if_none_exist: String::new(),
                };
                let response = client.create(request).await.unwrap_or_else(|status| {
                    panic!("record {index} is refused: {status:?}\n{}", record.resource)
                });
                let id = response.into_inner().resource.expect("resource").id;
                (index, id)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed().as_secs_f64();
    created.sort();
    let ids: Vec<String> = created.into_iter().map(|(_, id)| id).collect();
    let by_id: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(index, id)| (id.as_str(), index))
        .collect();
    println!(
        "\nmatching on {target}: create, {concurrency} clients: {:.0}/s ({} records in {elapsed:.1} s)",
        records.len() as f64 / elapsed,
        records.len()
    );

    // One call first: until Match is implemented there is nothing to
    // measure, and a node that refuses should not get thousands of calls.
    if let Some(first) = records.first() {
        let probe = client.clone().r#match(match_request(first, &ids[0])).await;
        if let Err(status) = probe {
            println!(
                "matching on {target}: Match answers {:?} ({}); nothing more to measure",
                status.code(),
                status.message()
            );
            return;
        }
    }

    // Ask about every record.
    let start = Instant::now();
    let answers: Vec<(usize, Answer)> = stream::iter(records.iter().enumerate())
        .map(|(index, record)| {
            let mut client = client.clone();
            let request = match_request(record, &ids[index]);
            async move {
                let asked = Instant::now();
                let answer = client.r#match(request).await.map(|response| {
                    let took = asked.elapsed();
                    let bundle = response.into_inner().bundle.expect("bundle");
                    (took, candidates(&bundle.json))
                });
                (index, answer)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed().as_secs_f64();

    let mut latencies = Vec::with_capacity(answers.len());
    let mut seen: BTreeMap<(usize, usize), Seen> = BTreeMap::new();
    let (mut failed, mut first_failure) = (0, None);
    let (mut returned, mut itself, mut foreign, mut ungraded) = (0usize, 0usize, 0usize, 0usize);
    for (index, answer) in answers {
        let (took, candidates) = match answer {
            Ok(answer) => answer,
            Err(status) => {
                failed += 1;
                first_failure.get_or_insert(status);
                continue;
            }
        };
        latencies.push(took);
        returned += candidates.len();
        for candidate in candidates {
            let Some(&other) = by_id.get(candidate.id.as_str()) else {
                foreign += 1;
                continue;
            };
            if other == index {
                itself += 1;
                continue;
            }
            let Some(grade) = candidate.grade else {
                ungraded += 1;
                continue;
            };
            let pair = (index.min(other), index.max(other));
            let new = Seen {
                grade,
                score: candidate.score,
            };
            seen.entry(pair)
                .and_modify(|best| {
                    if (new.grade, new.score) > (best.grade, best.score) {
                        *best = new;
                    }
                })
                .or_insert(new);
        }
    }
    latencies.sort();
    println!(
        "matching on {target}: match, {concurrency} clients, count {MATCH_COUNT}: {:.0}/s; latency p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms; {:.2} candidates per call",
        latencies.len() as f64 / elapsed,
        ms(percentile(&latencies, 50)),
        ms(percentile(&latencies, 95)),
        ms(percentile(&latencies, 99)),
        returned as f64 / latencies.len().max(1) as f64
    );
    if let Some(status) = first_failure {
        println!(
            "  {failed} Match calls failed; the first: {:?} {}",
            status.code(),
            status.message()
        );
    }
    if itself > 0 {
        println!("  {itself} answers named the record asked about, which should be left out");
    }
    if ungraded > 0 {
        println!("  {ungraded} candidates carried no match-grade extension and were not counted");
    }
    if foreign > 0 {
        println!("  {foreign} candidates were not records of this run and were ignored");
    }

    print_quality(truth, &seen);
    print_recall_by_corruption(records, truth, &seen);
    print_examples(records, truth, &seen);
}

/// Match on `record` as registered under `id`, so that it leaves itself out.
fn match_request(record: &Record, id: &str) -> pb::MatchRequest {
    let mut resource = record.resource.clone();
    resource["id"] = Value::String(id.to_owned());
    pb::MatchRequest {
        resource: resource.to_string(),
        count: MATCH_COUNT,
        only_certain_matches: false,
    }
}

// === Reports ===

/// Precision, recall and F1 over unordered pairs, per threshold.
fn print_quality(truth: &BTreeSet<(usize, usize)>, seen: &BTreeMap<(usize, usize), Seen>) {
    println!(
        "\n  {:<27} {:>7} {:>7} {:>7} {:>9} {:>7} {:>7}",
        "grade at least", "TP", "FP", "FN", "precision", "recall", "F1"
    );
    for (label, threshold) in THRESHOLDS {
        let predicted: Vec<&(usize, usize)> = seen
            .iter()
            .filter(|(_, s)| s.grade >= threshold)
            .map(|(pair, _)| pair)
            .collect();
        let tp = predicted.iter().filter(|pair| truth.contains(pair)).count();
        let fp = predicted.len() - tp;
        let fn_ = truth.len() - tp;
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            _ => None,
        };
        println!(
            "  {label:<27} {tp:>7} {fp:>7} {fn_:>7} {:>9} {:>7} {:>7}",
            show(precision),
            show(recall),
            show(f1)
        );
    }
}

/// Share of true pairs found, per kind of corruption on either record.
fn print_recall_by_corruption(
    records: &[Record],
    truth: &BTreeSet<(usize, usize)>,
    seen: &BTreeMap<(usize, usize), Seen>,
) {
    // (pairs, found certain, found at least possible)
    let mut rows: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for &(a, b) in truth {
        let kinds: BTreeSet<Corruption> = records[a]
            .corruptions
            .iter()
            .chain(&records[b].corruptions)
            .copied()
            .collect();
        let mut labels: Vec<String> = kinds.iter().map(|k| k.label().to_owned()).collect();
        if kinds.is_empty() {
            labels.push("(none)".into());
        }
        if records[a].hard || records[b].hard {
            labels.push("(hard duplicate)".into());
        }
        labels.push("(all pairs)".into());
        let grade = seen.get(&(a, b)).map(|s| s.grade);
        for label in labels {
            let row = rows.entry(label).or_default();
            row.0 += 1;
            row.1 += usize::from(grade >= Some(Grade::Certain));
            row.2 += usize::from(grade >= Some(Grade::Possible));
        }
    }
    println!(
        "\n  {:<27} {:>7} {:>15} {:>15}",
        "true pairs with", "pairs", "recall certain", "recall possible"
    );
    for (label, (pairs, certain, possible)) in rows {
        println!(
            "  {label:<27} {pairs:>7} {:>15} {:>15}",
            show(ratio(certain, pairs)),
            show(ratio(possible, pairs))
        );
    }
}

/// False positives at `certain`, surest first, and false negatives at
/// `possible`.
fn print_examples(
    records: &[Record],
    truth: &BTreeSet<(usize, usize)>,
    seen: &BTreeMap<(usize, usize), Seen>,
) {
    let mut false_positives: Vec<(&(usize, usize), &Seen)> = seen
        .iter()
        .filter(|(pair, s)| s.grade == Grade::Certain && !truth.contains(pair))
        .collect();
    false_positives.sort_by(|x, y| y.1.score.total_cmp(&x.1.score));
    println!("\n  false positives at certain (different people):");
    if false_positives.is_empty() {
        println!("    none");
    }
    for ((a, b), s) in false_positives.into_iter().take(EXAMPLES) {
        println!("    score {:.3}", s.score);
        println!("      {}", describe(&records[*a]));
        println!("      {}", describe(&records[*b]));
    }

    println!("\n  false negatives at possible (the same person):");
    let false_negatives: Vec<&(usize, usize)> = truth
        .iter()
        .filter(|pair| seen.get(pair).is_none_or(|s| s.grade < Grade::Possible))
        .collect();
    if false_negatives.is_empty() {
        println!("    none");
    }
    for (a, b) in false_negatives.into_iter().take(EXAMPLES) {
        let answer = match seen.get(&(*a, *b)) {
            Some(s) => format!("graded {} at {:.3}", s.grade.code(), s.score),
            None => "not returned".to_owned(),
        };
        println!("    {answer}");
        println!("      {}", describe(&records[*a]));
        println!("      {}", describe(&records[*b]));
    }
}

/// A record in one line: names, gender, birth date, phone, country,
/// passport and UNHCR number, and how it was corrupted.
fn describe(record: &Record) -> String {
    let patient = &record.resource;
    let names: Vec<String> = patient["name"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|name| {
            let mut parts: Vec<&str> = name["given"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            parts.push(name["family"].as_str().unwrap_or("(no family)"));
            parts.join(" ")
        })
        .collect();
    let mut fields = vec![names.join(" / ")];
    fields.push(patient["gender"].as_str().unwrap_or("no gender").to_owned());
    fields.push(
        patient["birthDate"]
            .as_str()
            .unwrap_or("no birth date")
            .to_owned(),
    );
    if let Some(phone) = patient["telecom"][0]["value"].as_str() {
        fields.push(phone.to_owned());
    }
    if let Some(country) = patient["address"][0]["country"].as_str() {
        fields.push(format!("lives in {country}"));
    }
    for identifier in patient["identifier"].as_array().into_iter().flatten() {
        let system = identifier["system"].as_str().unwrap_or_default();
        let value = identifier["value"].as_str().unwrap_or_default();
        if let Some(country) = system.rsplit_once("passport-").map(|(_, c)| c) {
            fields.push(format!("passport {country} {value}"));
        } else if system.contains("unhcr") {
            fields.push(format!("UNHCR {value}"));
        }
    }
    let origin = if record.duplicate {
        let kinds: Vec<&str> = record.corruptions.iter().map(|k| k.label()).collect();
        let hard = if record.hard { "hard " } else { "" };
        format!("{} {hard}duplicate [{}]", record.origin, kinds.join(", "))
    } else {
        format!("{} original", record.origin)
    };
    format!("{} ({origin}, {})", fields.join(", "), record.organization)
}

/// `part / whole`, or None when `whole` is 0.
fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A figure for the tables; "-" when there is none.
fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}
