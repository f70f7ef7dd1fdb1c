//! Patient/$match: candidates from the blocking keys, scored under the
//! rules, with people's decisions applied, as a searchset Bundle whose
//! entries say why each candidate was paired.

use std::sync::{Arc, OnceLock};

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
    pub stored: Stored,
    pub evidence: Evidence,
    pub grade: Grade,
    pub score: f64,
}

/// The matcher of one identity service.
#[derive(Debug, Clone)]
pub struct Matcher {
    store: Store,
    rules: Arc<Rules>,
}

impl Matcher {
    pub fn new(store: Store, rules: Arc<Rules>) -> Self {
        let _ = KEY_RULES.set(rules.clone());
        Self { store, rules }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Candidates for `patient`, best first: every one graded possible or
    /// better, and the look-alikes that a contradiction or a person's
    /// decision rules out. `exclude` is the Patient's own id, whose
    /// decisions then apply.
    pub async fn candidates(
        &self,
        patient: &Value,
        exclude: Option<&str>,
    ) -> Result<Vec<Candidate>, StoreError> {
        let person = Person::from_patient(patient, &self.rules);
        let found = self
            .store
            .candidates("Patient", &keys::query_keys(&person), self.rules.candidates)
            .await?;
        let decisions = match exclude {
            Some(id) => self.store.decisions("Patient", id).await?,
            None => Vec::new(),
        };
        let possible = self.rules.grades.possible;
        let mut out = Vec::new();
        for stored in found {
            if Some(stored.id.as_str()) == exclude {
                continue;
            }
            let Ok(resource) = serde_json::from_str::<Value>(&stored.json) else {
                continue;
            };
            if crate::mpi::replaced_by(&resource).is_some() {
                // Merged away: its target is a candidate in its own right.
                continue;
            }
            let mut evidence = corridor_matching::compare(
                &person,
                &Person::from_patient(&resource, &self.rules),
                &self.rules,
            );
            let decided = decisions
                .iter()
                .find(|(other, _)| *other == stored.id)
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
                stored,
                evidence,
                grade,
                score,
            });
        }
        out.sort_by(|a, b| {
            b.grade
                .cmp(&a.grade)
                .then(b.evidence.weight.total_cmp(&a.evidence.weight))
                .then(a.stored.id.cmp(&b.stored.id))
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
        if Person::from_patient(&patient, &self.rules).is_empty() {
            return Err(ApiError::Invalid(
                Issue::new(
                    "required",
                    "the Patient has nothing to match on: give at least a name, a birthDate, an identifier or a phone number",
                )
                .at("Patient"),
            ));
        }
        let exclude = patient.get("id").and_then(Value::as_str).map(str::to_owned);
        let mut candidates = self.candidates(&patient, exclude.as_deref()).await?;
        if only_certain {
            candidates.retain(|c| c.grade == Grade::Certain);
        }
        candidates.truncate(count);
        let n = candidates.len();
        Ok((bundle(&candidates), n))
    }
}

/// The searchset Bundle of `candidates`.
fn bundle(candidates: &[Candidate]) -> Value {
    let entries: Vec<Value> = candidates
        .iter()
        .map(|c| {
            let resource: Value = serde_json::from_str(&c.stored.json).unwrap_or(Value::Null);
            json!({
                "fullUrl": format!("Patient/{}", c.stored.id),
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
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": candidates.len(),
        "entry": entries,
    })
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
