//! FHIR OperationOutcome resources, and gRPC statuses that carry one.

use corridor_fhir::Issue;
use corridor_proto::fhir::v1::{OPERATION_OUTCOME_TYPE_URL, OperationOutcome};
use prost::Message;
use serde_json::{Value, json};

/// An OperationOutcome with one error issue.
pub fn operation_outcome(issue: &Issue) -> Value {
    let mut entry = json!({
        "severity": "error",
        "code": issue.code,
        "diagnostics": issue.diagnostics,
    });
    if let Some(expression) = &issue.expression {
        entry["expression"] = json!([expression]);
    }
    json!({ "resourceType": "OperationOutcome", "issue": [entry] })
}

/// A status whose message is the issue, for plain gRPC clients, and whose
/// details (`google.rpc.Status`) hold the OperationOutcome as a
/// `corridor.fhir.v1.OperationOutcome`.
pub fn status(code: tonic::Code, issue: &Issue) -> tonic::Status {
    let message = issue.to_string();
    let outcome = OperationOutcome {
        json: operation_outcome(issue).to_string(),
    };
    let details = tonic_types::pb::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: OPERATION_OUTCOME_TYPE_URL.to_owned(),
            value: outcome.encode_to_vec(),
        }],
    };
    tonic::Status::with_details(code, message, details.encode_to_vec().into())
}

/// The OperationOutcome JSON carried by `status`, if it has one.
pub fn outcome_of(status: &tonic::Status) -> Option<Value> {
    let details = tonic_types::pb::Status::decode(status.details()).ok()?;
    let any = details
        .details
        .into_iter()
        .find(|d| d.type_url == OPERATION_OUTCOME_TYPE_URL)?;
    let outcome = OperationOutcome::decode(any.value.as_slice()).ok()?;
    serde_json::from_str(&outcome.json).ok()
}
