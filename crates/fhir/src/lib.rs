//! FHIR R4 JSON validation at the edge of every Corridor service.
//!
//! Incoming resources are checked against fhir-sdk's R4B models, which accept
//! the R4 (4.0.1) JSON that hospitals send for every type Corridor serves. The
//! typed parse is only a check: the client's own JSON is what gets stored, so
//! no content is reshaped or lost on the way through.
//!
//! All serde work on fhir-sdk types happens in this crate, behind the
//! non-generic [`validate`]. fhir-sdk's serde code is monomorphized wherever
//! it is called and takes minutes to compile, so keeping it here means it is
//! compiled once and cached while the services around it change. Change this
//! crate rarely.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

mod depth;

/// Largest resource accepted by default: 4 MiB of JSON.
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of JSON objects and arrays accepted by default. Real
/// resources stay far below this; the bound stops pathological input before
/// it reaches a recursive parser.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Limits applied before any parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// One problem found in a request, in the shape of an OperationOutcome issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// FHIR `IssueType` code: `structure`, `value`, `invalid`, `too-long`, ...
    pub code: &'static str,
    /// What was wrong, for a person to read.
    pub diagnostics: String,
    /// FHIRPath-like location of the offending element, when there is one.
    pub expression: Option<String>,
}

impl Issue {
    pub fn new(code: &'static str, diagnostics: impl Into<String>) -> Self {
        Self {
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expression {
            Some(expr) => write!(f, "{expr}: {}", self.diagnostics),
            None => f.write_str(&self.diagnostics),
        }
    }
}

/// The resource types Corridor's services accept, each checked against its
/// fhir-sdk R4B model. Listed here once so that adding a service does not
/// recompile this crate.
pub const SUPPORTED_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "Claim",
    "Communication",
    "Condition",
    "Consent",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "ExplanationOfBenefit",
    "Goal",
    "ImagingStudy",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "ServiceRequest",
    "Task",
];

/// A resource that passed validation: the client's JSON object, unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub resource_type: String,
    pub object: Map<String, Value>,
}

/// Validate `json` as one FHIR R4 resource.
///
/// `accepted` lists the types the caller serves; a resource of any other
/// type is refused with an issue that names `resourceType`. Checks, in order:
/// size, nesting depth, JSON syntax, `resourceType`, the typed R4B model
/// (dates, codes, cardinality, datatypes) and finally unknown or empty
/// elements. The first failing check is reported.
pub fn validate(json: &str, accepted: &[&str], limits: &Limits) -> Result<Validated, Issue> {
    if json.len() > limits.max_bytes {
        return Err(Issue::new(
            "too-long",
            format!(
                "resource is {} bytes; the limit is {} bytes",
                json.len(),
                limits.max_bytes
            ),
        ));
    }
    depth::check(json.as_bytes(), limits.max_depth)?;
    let value: Value = serde_json::from_str(json)
        .map_err(|e| Issue::new("structure", format!("malformed JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(Issue::new("structure", "a resource must be a JSON object"));
    };
    let resource_type = match object.get("resourceType") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => {
            return Err(Issue::new("structure", "resourceType must be a string").at("resourceType"));
        }
        None => {
            return Err(Issue::new("required", "resourceType is missing").at("resourceType"));
        }
    };
    if !accepted.contains(&resource_type.as_str()) {
        return Err(Issue::new(
            "not-supported",
            format!(
                "resourceType '{resource_type}' is not served here; expected one of: {}",
                accepted.join(", ")
            ),
        )
        .at("resourceType"));
    }
    let typed = typed_round_trip(&resource_type, &value)?;
    let Value::Object(typed) = typed else {
        return Err(Issue::new(
            "exception",
            "model did not serialize to an object",
        ));
    };
    compare_objects(&resource_type, object, &typed)?;
    let Value::Object(object) = value else {
        unreachable!("checked to be an object above")
    };
    Ok(Validated {
        resource_type,
        object,
    })
}

/// Parse `object` with the fhir-sdk model of `resource_type` and serialize it
/// back, so the caller can see what the model kept.
fn typed_round_trip(resource_type: &str, object: &Value) -> Result<Value, Issue> {
    use fhir_sdk::r4b::resources as r;
    match resource_type {
        "AllergyIntolerance" => round_trip::<r::AllergyIntolerance>(resource_type, object),
        "CarePlan" => round_trip::<r::CarePlan>(resource_type, object),
        "Claim" => round_trip::<r::Claim>(resource_type, object),
        "Communication" => round_trip::<r::Communication>(resource_type, object),
        "Condition" => round_trip::<r::Condition>(resource_type, object),
        "Consent" => round_trip::<r::Consent>(resource_type, object),
        "DiagnosticReport" => round_trip::<r::DiagnosticReport>(resource_type, object),
        "DocumentReference" => round_trip::<r::DocumentReference>(resource_type, object),
        "Encounter" => round_trip::<r::Encounter>(resource_type, object),
        "ExplanationOfBenefit" => round_trip::<r::ExplanationOfBenefit>(resource_type, object),
        "Goal" => round_trip::<r::Goal>(resource_type, object),
        "ImagingStudy" => round_trip::<r::ImagingStudy>(resource_type, object),
        "Immunization" => round_trip::<r::Immunization>(resource_type, object),
        "MedicationRequest" => round_trip::<r::MedicationRequest>(resource_type, object),
        "MedicationStatement" => round_trip::<r::MedicationStatement>(resource_type, object),
        "Observation" => round_trip::<r::Observation>(resource_type, object),
        "Organization" => round_trip::<r::Organization>(resource_type, object),
        "Patient" => round_trip::<r::Patient>(resource_type, object),
        "Practitioner" => round_trip::<r::Practitioner>(resource_type, object),
        "Procedure" => round_trip::<r::Procedure>(resource_type, object),
        "PractitionerRole" => round_trip::<r::PractitionerRole>(resource_type, object),
        "ServiceRequest" => round_trip::<r::ServiceRequest>(resource_type, object),
        "Task" => round_trip::<r::Task>(resource_type, object),
        other => Err(Issue::new(
            "not-supported",
            format!("resourceType '{other}' has no model in this build"),
        )
        .at("resourceType")),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(
    resource_type: &str,
    object: &Value,
) -> Result<Value, Issue> {
    let typed: T = serde_path_to_error::deserialize(object).map_err(|e| {
        let path = e.path().to_string();
        let expression = if path == "." || path.is_empty() {
            resource_type.to_owned()
        } else {
            format!("{resource_type}.{path}")
        };
        Issue::new("value", e.into_inner().to_string()).at(expression)
    })?;
    serde_json::to_value(&typed)
        .map_err(|e| Issue::new("exception", format!("model failed to serialize: {e}")))
}

/// Every element of the input must be non-empty (FHIR forbids empty
/// elements) and survive the typed model; an element the model dropped is
/// unknown to FHIR R4.
fn compare_objects(
    path: &str,
    input: &Map<String, Value>,
    typed: &Map<String, Value>,
) -> Result<(), Issue> {
    for (key, value) in input {
        let here = format!("{path}.{key}");
        if is_empty(value) {
            return Err(empty(&here));
        }
        match typed.get(key) {
            Some(kept) => compare_values(&here, value, kept)?,
            None => {
                return Err(Issue::new("structure", format!("unknown element '{key}'")).at(here));
            }
        }
    }
    Ok(())
}

fn compare_values(path: &str, input: &Value, typed: &Value) -> Result<(), Issue> {
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => compare_objects(path, i, t),
        (Value::Array(i), Value::Array(t)) => {
            for (n, item) in i.iter().enumerate() {
                // null items are allowed: they align a primitive array with
                // its `_element` extensions.
                if !item.is_null() && is_empty(item) {
                    return Err(empty(&format!("{path}[{n}]")));
                }
                match t.get(n) {
                    Some(kept) => compare_values(&format!("{path}[{n}]"), item, kept)?,
                    None => {
                        return Err(Issue::new(
                            "invalid",
                            format!("item {n} could not be represented"),
                        )
                        .at(format!("{path}[{n}]")));
                    }
                }
            }
            Ok(())
        }
        // Primitive values may be written differently (decimals, instants);
        // the typed parse already checked them, and the input is what is kept.
        _ => Ok(()),
    }
}

fn empty(path: &str) -> Issue {
    Issue::new(
        "invalid",
        "element is empty; FHIR JSON leaves out empty elements instead",
    )
    .at(path)
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}
