//! FHIR operations, each mapped onto the RPC of the service that does it.
//! Inputs are `Parameters` resources; [`OPERATIONS`] lists every one, and
//! the CapabilityStatement is made from that list.

use http::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::reply::{HttpError, Presentation, Reply};
use crate::rest::{self, Call, Gateway};

/// An operation the gateway serves.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub resource_type: &'static str,
    pub name: &'static str,
    /// Invoked on an instance (`[type]/[id]/$name`) rather than the type.
    pub instance: bool,
    /// The OperationDefinition it follows.
    pub definition: &'static str,
    pub documentation: &'static str,
}

pub const OPERATIONS: &[Operation] = &[
    Operation {
        resource_type: "Patient",
        name: "match",
        instance: false,
        definition: "http://hl7.org/fhir/OperationDefinition/Patient-match",
        documentation: "POST a Parameters with `resource` (a Patient, possibly partial), optional `count` and `onlyCertainMatches`. Answers a searchset Bundle, best first, with search.score, the match-grade extension and the evidence behind each candidate.",
    },
    Operation {
        resource_type: "Patient",
        name: "everything",
        instance: true,
        definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        documentation: "The Patient, the Patients merged into it, their encounters records and referrals, paged (_count, _since).",
    },
    Operation {
        resource_type: "Patient",
        name: "merge",
        instance: false,
        definition: "https://corridor.health/fhir/OperationDefinition/Patient-merge",
        documentation: "POST a Parameters with `source-patient` and `target-patient` (references) and `decided-by` (who decided), optional `reason`. The source becomes inactive with a replaced-by link. Answers a Parameters with `outcome` and `result` (the target).",
    },
    Operation {
        resource_type: "Patient",
        name: "unmerge",
        instance: false,
        definition: "https://corridor.health/fhir/OperationDefinition/Patient-unmerge",
        documentation: "POST a Parameters with `source-patient` (a Patient a merge replaced) and `decided-by`, optional `reason`. The source is active again as before. Answers a Parameters with `outcome` and `result` (the source).",
    },
    Operation {
        resource_type: "ServiceRequest",
        name: "refer",
        instance: false,
        definition: "https://corridor.health/fhir/OperationDefinition/ServiceRequest-refer",
        documentation: "POST a Parameters with `serviceRequest` (the referral) and optional `draft`. Creates the ServiceRequest and its Task together; answers a Parameters with both.",
    },
    Operation {
        resource_type: "Task",
        name: "transition",
        instance: true,
        definition: "https://corridor.health/fhir/OperationDefinition/Task-transition",
        documentation: "POST a Parameters with `status` (the referral Task's next status), optional `reason` and `output` references; If-Match (required) with the Task version last seen; the access token names the organization acting. Answers the Task.",
    },
];

/// `[type]/$name`.
pub async fn type_level(
    gateway: &Gateway,
    call: &Call,
    resource_type: &str,
    op: &str,
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let name = op.trim_start_matches('$');
    find(resource_type, name, false)?;
    require_post(call, op)?;
    match (resource_type, name) {
        ("Patient", "match") => patient_match(gateway, call, presentation).await,
        ("Patient", "merge") => merge(gateway, call, true).await,
        ("Patient", "unmerge") => merge(gateway, call, false).await,
        ("ServiceRequest", "refer") => refer(gateway, call).await,
        _ => Err(unknown(resource_type, op)),
    }
}

/// `[type]/[id]/$name`.
pub async fn instance(
    gateway: &Gateway,
    call: &Call,
    resource_type: &str,
    id: &str,
    op: &str,
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let name = op.trim_start_matches('$');
    find(resource_type, name, true)?;
    match (resource_type, name) {
        ("Patient", "everything") => everything(gateway, call, id, presentation).await,
        ("Task", "transition") => {
            require_post(call, op)?;
            transition(gateway, call, id).await
        }
        _ => Err(unknown(resource_type, op)),
    }
}

fn find(resource_type: &str, name: &str, instance: bool) -> Result<&'static Operation, HttpError> {
    OPERATIONS
        .iter()
        .find(|o| o.resource_type == resource_type && o.name == name && o.instance == instance)
        .ok_or_else(|| unknown(resource_type, &format!("${name}")))
}

fn unknown(resource_type: &str, op: &str) -> HttpError {
    let served: Vec<String> = OPERATIONS
        .iter()
        .map(|o| {
            if o.instance {
                format!("{}/[id]/${}", o.resource_type, o.name)
            } else {
                format!("{}/${}", o.resource_type, o.name)
            }
        })
        .collect();
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not-supported",
        format!(
            "operation {op} is not served on {resource_type} here; served: {}",
            served.join(", ")
        ),
    )
}

fn require_post(call: &Call, op: &str) -> Result<(), HttpError> {
    if call.method == Method::POST {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            format!("{op} changes or takes a resource: use POST with a Parameters body"),
        ))
    }
}

/// The parts of a Parameters body, by name.
struct Parameters(Vec<Value>);

impl Parameters {
    fn read(call: &Call) -> Result<Self, HttpError> {
        let body = call.json_body()?;
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(HttpError::bad_request(
                "invalid",
                "an operation takes a Parameters resource",
                "resourceType",
            ));
        }
        Ok(Self(
            body.get("parameter")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ))
    }

    fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Value> + use<'a, 'n> {
        self.0
            .iter()
            .filter(move |p| p.get("name").and_then(Value::as_str) == Some(name))
    }

    fn one(&self, name: &str) -> Option<&Value> {
        self.all(name).next()
    }

    fn string(&self, name: &str) -> Option<String> {
        let part = self.one(name)?;
        ["valueString", "valueCode", "valueId", "valueUri"]
            .iter()
            .find_map(|k| part.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    }

    fn reference(&self, name: &str, resource_type: &str) -> Result<Option<String>, HttpError> {
        let Some(part) = self.one(name) else {
            return Ok(None);
        };
        let reference = part
            .pointer("/valueReference/reference")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                HttpError::bad_request(
                    "invalid",
                    format!("parameter {name} must be a valueReference to a {resource_type}"),
                    &format!("Parameters.parameter.{name}"),
                )
            })?;
        let id = reference
            .rsplit_once(&format!("{resource_type}/"))
            .map(|(_, id)| id.split('/').next().unwrap_or_default().to_owned())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                HttpError::bad_request(
                    "invalid",
                    format!("parameter {name} must reference a {resource_type}, not '{reference}'"),
                    &format!("Parameters.parameter.{name}"),
                )
            })?;
        Ok(Some(id))
    }

    fn required(&self, name: &str) -> Result<String, HttpError> {
        self.string(name).ok_or_else(|| {
            HttpError::bad_request(
                "required",
                format!("parameter {name} is required"),
                &format!("Parameters.parameter.{name}"),
            )
        })
    }
}

fn service_error(service: &'static str) -> impl Fn(tonic::Status) -> HttpError {
    move |s| HttpError::from_status(&s, service)
}

async fn patient_match(
    gateway: &Gateway,
    call: &Call,
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    let params = Parameters::read(call)?;
    let resource = params
        .one("resource")
        .and_then(|p| p.get("resource"))
        .ok_or_else(|| {
            HttpError::bad_request(
                "required",
                "parameter resource (the Patient to match) is required",
                "Parameters.parameter.resource",
            )
        })?;
    let count = match params.one("count") {
        None => 0,
        Some(part) => part
            .get("valueInteger")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                HttpError::bad_request(
                    "invalid",
                    "parameter count must be a valueInteger",
                    "Parameters.parameter.count",
                )
            })?,
    };
    let only_certain = params
        .one("onlyCertainMatches")
        .and_then(|p| p.get("valueBoolean"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    use corridor_proto::identity::v1 as pb;
    let message = pb::MatchRequest {
        resource: resource.to_string(),
        count,
        only_certain_matches: only_certain,
    };
    let bundle = gateway
        .backends
        .identity()
        .r#match(gateway.backends.request(message, &call.context))
        .await
        .map_err(service_error("identity"))?
        .into_inner()
        .bundle
        .unwrap_or_default();
    let mut body = rest::bundle_json(&bundle.json)?;
    rest::absolutize(&mut body, call, &[]);
    subset_entries(&mut body, presentation);
    Ok(Reply::json(StatusCode::OK, body))
}

fn subset_entries(bundle: &mut Value, presentation: &Presentation) {
    if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
        for entry in entries {
            if let Some(resource) = entry.get_mut("resource") {
                presentation.subset(resource);
            }
        }
    }
}

async fn everything(
    gateway: &Gateway,
    call: &Call,
    id: &str,
    presentation: &Presentation,
) -> Result<Reply, HttpError> {
    use corridor_proto::encounters::v1 as pb;
    let mut message = pb::EverythingRequest {
        patient_id: id.to_owned(),
        ..Default::default()
    };
    for (name, value) in &call.params {
        match name.as_str() {
            "_since" => message.since.clone_from(value),
            "_count" => {
                message.count = value.parse().map_err(|_| {
                    HttpError::bad_request(
                        "invalid",
                        format!("_count must be a whole number, not '{value}'"),
                        "_count",
                    )
                })?;
            }
            "_page_token" => message.page_token.clone_from(value),
            "_format" | "_pretty" | "_elements" => {}
            other => {
                return Err(HttpError::bad_request(
                    "not-supported",
                    format!("$everything takes _since, _count and _page_token, not '{other}'"),
                    other,
                ));
            }
        }
    }
    let bundle = gateway
        .backends
        .encounters()
        .everything(gateway.backends.request(message, &call.context))
        .await
        .map_err(service_error("encounters"))?
        .into_inner()
        .bundle
        .unwrap_or_default();
    let mut body = rest::bundle_json(&bundle.json)?;
    rest::absolutize(&mut body, call, &presentation.link_params());
    subset_entries(&mut body, presentation);
    Ok(Reply::json(StatusCode::OK, body))
}

/// `$merge` (`merging`) or `$unmerge`.
async fn merge(gateway: &Gateway, call: &Call, merging: bool) -> Result<Reply, HttpError> {
    use corridor_proto::identity::v1 as pb;
    let params = Parameters::read(call)?;
    for unsupported in [
        "result-patient",
        "preview",
        "source-patient-identifier",
        "target-patient-identifier",
    ] {
        if params.one(unsupported).is_some() {
            return Err(HttpError::bad_request(
                "not-supported",
                format!(
                    "parameter {unsupported} is not supported; name both Patients by reference"
                ),
                &format!("Parameters.parameter.{unsupported}"),
            ));
        }
    }
    let source = params.reference("source-patient", "Patient")?.ok_or_else(|| {
        HttpError::bad_request(
            "required",
            "parameter source-patient (a reference to the Patient that is replaced) is required",
            "Parameters.parameter.source-patient",
        )
    })?;
    let decided_by = params.required("decided-by")?;
    let reason = params.string("reason").unwrap_or_default();
    let mut client = gateway.backends.identity();
    let (result, diagnostics) = if merging {
        let target = params.reference("target-patient", "Patient")?.ok_or_else(|| {
            HttpError::bad_request(
                "required",
                "parameter target-patient (a reference to the Patient that remains) is required",
                "Parameters.parameter.target-patient",
            )
        })?;
        let message = pb::MergeRequest {
            source_id: source.clone(),
            target_id: target.clone(),
            decided_by,
            reason,
        };
        let response = client
            .merge(gateway.backends.request(message, &call.context))
            .await
            .map_err(service_error("identity"))?
            .into_inner();
        (
            response.target.unwrap_or_default(),
            format!("Patient/{source} was merged into Patient/{target}"),
        )
    } else {
        let message = pb::UnmergeRequest {
            source_id: source.clone(),
            decided_by,
            reason,
        };
        let response = client
            .unmerge(gateway.backends.request(message, &call.context))
            .await
            .map_err(service_error("identity"))?
            .into_inner();
        (
            response.source.unwrap_or_default(),
            format!("Patient/{source} is its own record again"),
        )
    };
    let resource: Value = serde_json::from_str(&result.json).unwrap_or(Value::Null);
    Ok(Reply::json(
        StatusCode::OK,
        json!({
            "resourceType": "Parameters",
            "parameter": [
                {"name": "outcome", "resource": crate::reply::outcome("information", "informational", &diagnostics, None)},
                {"name": "result", "resource": resource},
            ]
        }),
    ))
}

async fn refer(gateway: &Gateway, call: &Call) -> Result<Reply, HttpError> {
    use corridor_proto::referrals::v1 as pb;
    let params = Parameters::read(call)?;
    let service_request = params
        .one("serviceRequest")
        .and_then(|p| p.get("resource"))
        .ok_or_else(|| {
            HttpError::bad_request(
                "required",
                "parameter serviceRequest (the referral's ServiceRequest) is required",
                "Parameters.parameter.serviceRequest",
            )
        })?;
    let draft = params
        .one("draft")
        .and_then(|p| p.get("valueBoolean"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let message = pb::CreateReferralRequest {
        service_request: service_request.to_string(),
        draft,
    };
    let response = gateway
        .backends
        .referrals()
        .create_referral(gateway.backends.request(message, &call.context))
        .await
        .map_err(service_error("referrals"))?
        .into_inner();
    let sr = response.service_request.unwrap_or_default();
    let task = response.task.unwrap_or_default();
    let part = |name: &str, r: &corridor_proto::fhir::v1::Resource| json!({"name": name, "resource": serde_json::from_str::<Value>(&r.json).unwrap_or(Value::Null)});
    let location = call.absolute(&format!(
        "ServiceRequest/{}/_history/{}",
        sr.id, sr.version_id
    ));
    Ok(Reply::json(
        StatusCode::CREATED,
        json!({"resourceType": "Parameters", "parameter": [part("serviceRequest", &sr), part("task", &task)]}),
    )
    .header(header::LOCATION, location))
}

async fn transition(gateway: &Gateway, call: &Call, id: &str) -> Result<Reply, HttpError> {
    use corridor_proto::referrals::v1 as pb;
    let params = Parameters::read(call)?;
    let status = params.required("status")?;
    let outputs = params
        .all("output")
        .map(|p| {
            p.pointer("/valueReference/reference")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    HttpError::bad_request(
                        "invalid",
                        "parameter output must be a valueReference",
                        "Parameters.parameter.output",
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let if_match = call.header("if-match").ok_or_else(|| {
        HttpError::at(
            StatusCode::PRECONDITION_REQUIRED,
            "required",
            "send If-Match: W/\"<versionId>\" with the Task version you last saw, so that a transition never overwrites someone else's",
            "If-Match",
        )
    })?;
    let message = pb::TransitionRequest {
        task_id: id.to_owned(),
        if_match: if_match.to_owned(),
        status,
        reason: params.string("reason").unwrap_or_default(),
        outputs,
    };
    let task = gateway
        .backends
        .referrals()
        .transition(gateway.backends.request(message, &call.context))
        .await
        .map_err(service_error("referrals"))?
        .into_inner()
        .task
        .unwrap_or_default();
    Reply::resource(StatusCode::OK, &task)
}
