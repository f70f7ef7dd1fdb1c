//! Throughput of FHIR validation at the edge (`corridor_fhir::validate`) on
//! real resources: the HL7 R4 examples and the Synthea sample's Patients,
//! Organizations and Practitioners. Prints resources/s and MiB/s.
//!
//! `just bench-validate` (release profile).

use std::time::{Duration, Instant};

use corridor_fhir::{Limits, SUPPORTED_TYPES, validate};
use corridor_tests::fixture;

fn main() {
    let mut docs: Vec<String> = std::fs::read_dir(fixture("hl7-r4"))
        .expect("hl7 fixtures")
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let synthea =
        std::fs::read_to_string(fixture("synthea-r4/identity.ndjson")).expect("synthea fixture");
    docs.extend(
        synthea
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned),
    );
    let bytes: usize = docs.iter().map(String::len).sum();
    let limits = Limits::default();

    // Warm up, and check every document is valid so the figures mean something.
    for doc in &docs {
        validate(doc, SUPPORTED_TYPES, &limits).expect("fixture validates");
    }
    let budget = Duration::from_secs(3);
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < budget {
        for doc in &docs {
            std::hint::black_box(validate(doc, SUPPORTED_TYPES, &limits).is_ok());
        }
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let resources = rounds as f64 * docs.len() as f64;
    let mib = rounds as f64 * bytes as f64 / (1024.0 * 1024.0);
    println!(
        "validate: {} documents ({:.1} KiB), {rounds} rounds in {secs:.2} s: {:.0} resources/s, {:.1} MiB/s, {:.1} µs/resource",
        docs.len(),
        bytes as f64 / 1024.0,
        resources / secs,
        mib / secs,
        secs * 1e6 / resources
    );
}
