//! Patient/$match: candidates from the blocking keys, scored under the
//! rules, with people's decisions applied, as a searchset Bundle whose
//! entries say why each candidate was paired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use corridor_fhir::Issue;
use corridor_matching::score::Comparison;
use corridor_matching::{Evidence, Grade, Person, Rules, keys};
use corridor_runtime::ApiError;
use corridor_store::pairs::PairStatus;
use corridor_store::{Store, StoreError, Stored};
use serde_json::{Value, json};

/// FHIR's extension for the grade of a $match candidate.
pub const MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";
/// Corridor's extension carrying the evidence behind a candidate.
pub const MATCH_EVIDENCE: &str = "https://corridor.health/fhir/StructureDefinition/match-evidence";
/// Candidates returned when the request does not say.
pub const DEFAULT_COUNT: usize = 10;
/// The most candidates one request may ask for.
pub const MAX_COUNT: usize = 100;

/// The rules the blocking keys are made with. Keys are made inside the
/// store's write path, which has no service state, so the rules of the
/// first identity service built in this process are kept here (a process
/// runs one identity service; tests build several with the same rules).
static KEY_RULES: OnceLock<Arc<Rules>> = OnceLock::new();

/// The blocking keys of a stored Patient (the store calls this on every
/// Patient write).
pub fn index_keys(patient: &Value) -> Vec<String> {
    let rules = KEY_RULES.get_or_init(|| Arc::new(Rules::default_rules()));
    keys::index_keys(&Person::from_patient(patient, rules))
}

/// One scored candidate.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub evidence: Evidence,
    pub grade: Grade,
    pub score: f64,
}

/// Normalized Patients kept between requests: reading a candidate (JSON,
/// transliteration, phone numbers) costs more than scoring it, and the
/// same records come back as candidates again and again.
const PERSON_CACHE: usize = 100_000;

/// Patients as matching reads them, by (id, version); None for a record a
/// merge replaced.
type People = HashMap<(String, i64), Option<Arc<Person>>>;

/// The matcher of one identity service.
#[derive(Debug, Clone)]
pub struct Matcher {
    store: Store,
    rules: Arc<Rules>,
    /// (id, version) -> the Patient as matching reads it, or None when a
    /// merge replaced it.
    people: Arc<Mutex<People>>,
}

impl Matcher {
    pub fn new(store: Store, rules: Arc<Rules>) -> Self {
        let _ = KEY_RULES.set(rules.clone());
        Self {
            store,
            rules,
            people: Arc::default(),
        }
    }

    /// The candidates as matching reads them, None for those a merge
    /// replaced: from the cache, and what it lacks read in one query.
    async fn people(
        &self,
        found: &[(String, i64)],
    ) -> Result<Vec<Option<Arc<Person>>>, StoreError> {
        let mut out: Vec<Option<Option<Arc<Person>>>> = {
            let cache = self.people.lock().expect("person cache");
            found.iter().map(|key| cache.get(key).cloned()).collect()
        };
        let missing: Vec<&str> = found
            .iter()
            .zip(&out)
            .filter(|(_, cached)| cached.is_none())
            .map(|((id, _), _)| id.as_str())
            .collect();
        if !missing.is_empty() {
            let read = self.store.read_many("Patient", &missing).await?;
            // Parsed before the lock is taken, so concurrent matches overlap.
            let parsed: People = read
                .into_iter()
                .map(|stored| {
                    let resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
                    let person = crate::mpi::replaced_by(&resource)
                        .is_none()
                        .then(|| Arc::new(Person::from_patient(&resource, &self.rules)));
                    ((stored.id, stored.version), person)
                })
                .collect();
            for ((id, _), person) in parsed.iter() {
                if let Some(slot) = found.iter().position(|(f, _)| f == id) {
                    out[slot] = Some(person.clone());
                }
            }
            let mut cache = self.people.lock().expect("person cache");
            if cache.len() + parsed.len() > PERSON_CACHE {
                // Versions only grow; starting afresh keeps the cache bounded.
                cache.clear();
            }
            cache.extend(parsed);
        }
        // A candidate deleted since it was found has no reading: left out.
        Ok(out.into_iter().map(Option::flatten).collect())
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Candidates for `person` (a Patient as [`Person::from_patient`] reads
    /// it), best first: every one graded possible or better, and the
    /// look-alikes that a contradiction or a person's decision rules out.
    /// `exclude` is the Patient's own id, whose decisions then apply.
    pub async fn candidates(
        &self,
        person: &Person,
        exclude: Option<&str>,
    ) -> Result<Vec<Candidate>, StoreError> {
        let found = self
            .store
            .candidates(
                "Patient",
                &keys::query_keys(person),
                self.rules.candidates,
                self.rules.records_per_key,
            )
            .await?;
        let decisions = match exclude {
            Some(id) => self.store.decisions("Patient", id).await?,
            None => Vec::new(),
        };
        let found: Vec<(String, i64)> = found
            .into_iter()
            .filter(|(id, _)| Some(id.as_str()) != exclude)
            .collect();
        let people = self.people(&found).await?;
        let possible = self.rules.grades.possible;
        let mut out = Vec::new();
        for ((id, _), other) in found.into_iter().zip(people) {
            let Some(other) = other else {
                // Merged away: its target is a candidate in its own right.
                continue;
            };
            let mut evidence = corridor_matching::compare(person, &other, &self.rules);
            let decided = decisions
                .iter()
                .find(|(other, _)| *other == id)
                .map(|(_, status)| *status);
            let (grade, score) = match decided {
                Some(PairStatus::Match) => (Grade::Certain, 1.0),
                Some(PairStatus::NotMatch) => (Grade::CertainlyNot, 0.0),
                _ => {
                    let Some(grade) = corridor_matching::grade(&evidence, &self.rules) else {
                        continue;
                    };
                    if grade == Grade::CertainlyNot && evidence.for_weight() < possible {
                        continue;
                    }
                    (grade, self.rules.score(evidence.weight))
                }
            };
            if let Some(status) = decided.filter(|s| *s != PairStatus::Pending) {
                evidence.comparisons.push(Comparison {
                    field: "decision",
                    level: status.as_str(),
                    weight: 0.0,
                    detail: "a person decided this pair; matching does not override it".to_owned(),
                });
            }
            out.push(Candidate {
                id,
                evidence,
                grade,
                score,
            });
        }
        out.sort_by(|a, b| {
            b.grade
                .cmp(&a.grade)
                .then(b.evidence.weight.total_cmp(&a.evidence.weight))
                .then(a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Patient/$match over gRPC: check the input, find the candidates and
    /// render the searchset Bundle.
    pub async fn r#match(
        &self,
        validated: corridor_fhir::Validated,
        count: i32,
        only_certain: bool,
    ) -> Result<(Value, usize), ApiError> {
        if validated.resource_type != "Patient" {
            return Err(ApiError::Invalid(
                Issue::new(
                    "invalid",
                    format!(
                        "Patient/$match takes a Patient resource, not a {}",
                        validated.resource_type
                    ),
                )
                .at("resourceType"),
            ));
        }
        let count = match count {
            0 => DEFAULT_COUNT,
            n if n < 0 || n as usize > MAX_COUNT => {
                return Err(ApiError::Invalid(
                    Issue::new(
                        "invalid",
                        format!("count must be between 1 and {MAX_COUNT}, not {n}"),
                    )
                    .at("count"),
                ));
            }
            n => n as usize,
        };
        let patient = Value::Object(validated.object);
        let person = Person::from_patient(&patient, &self.rules);
        if person.is_empty() {
            return Err(ApiError::Invalid(
                Issue::new(
                    "required",
                    "the Patient has nothing to match on: give at least a name, a birthDate, an identifier or a phone number",
                )
                .at("Patient"),
            ));
        }
        let exclude = patient.get("id").and_then(Value::as_str).map(str::to_owned);
        let mut candidates = self.candidates(&person, exclude.as_deref()).await?;
        if only_certain {
            candidates.retain(|c| c.grade == Grade::Certain);
        }
        candidates.truncate(count);
        let ids: Vec<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
        let stored = self.store.read_many("Patient", &ids).await?;
        // A candidate deleted meanwhile is left out of the answer.
        let answer: Vec<(&Candidate, &Stored)> = candidates
            .iter()
            .filter_map(|c| stored.iter().find(|s| s.id == c.id).map(|s| (c, s)))
            .collect();
        Ok((bundle(&answer), answer.len()))
    }
}

/// The searchset Bundle of `candidates` with their current versions.
fn bundle(candidates: &[(&Candidate, &Stored)]) -> Value {
    let entries: Vec<Value> = candidates
        .iter()
        .map(|(c, stored)| {
            let resource: Value = serde_json::from_str(&stored.json).unwrap_or(Value::Null);
            json!({
                "fullUrl": format!("Patient/{}", stored.id),
                "resource": resource,
                "search": {
                    "extension": [
                        {"url": MATCH_GRADE, "valueCode": c.grade.code()},
                        evidence_extension(&c.evidence),
                    ],
                    "mode": "match",
                    "score": round(c.score, 6),
                }
            })
        })
        .collect();
    corridor_store::omit_empty_entry(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": candidates.len(),
        "entry": entries,
    }))
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The evidence as a complex extension: the total weight, then one
/// `comparison` per field with its level, weight and what was compared.
pub fn evidence_extension(evidence: &Evidence) -> Value {
    let mut parts = vec![json!({"url": "weight", "valueDecimal": round(evidence.weight, 3)})];
    for c in &evidence.comparisons {
        parts.push(json!({
            "url": "comparison",
            "extension": [
                {"url": "field", "valueCode": c.field},
                {"url": "level", "valueCode": c.level},
                {"url": "weight", "valueDecimal": round(c.weight, 3)},
                {"url": "detail", "valueString": c.detail},
            ]
        }));
    }
    json!({"url": MATCH_EVIDENCE, "extension": parts})
}
