//! Search over the encounters service's types. Every parameter is checked
//! with matching and non-matching resources, so that a wrong implementation
//! (a token that ignores its system, a date compared as a point instead of a
//! range, a reference to the wrong element, a page that repeats or skips)
//! returns the wrong set of ids and fails.

use std::time::Duration;

use corridor_proto::encounters::v1 as pb;
use corridor_tests::clinic::{self, ACT_CODE};
use corridor_tests::{Backend, Node, expression, for_each_backend, issue_code};
use serde_json::{Value, json};
use tonic::Code;

use crate::api;

for_each_backend!(
    encounter_patient_and_subject_select_each_patients_encounters,
    encounter_date_prefixes_compare_periods_as_ranges,
    encounter_status_class_type_and_identifier_tokens_respect_the_system,
    encounter_participant_service_provider_and_reason_code_match,
    observation_patient_subject_and_encounter_select_the_right_records,
    observation_code_matches_system_and_code_not_components,
    observation_date_status_and_category_match,
    condition_dates_statuses_code_and_category_match,
    immunization_vaccine_code_date_status_and_patient_match,
    allergy_intolerance_patient_code_statuses_dates_and_category_match,
    medication_statement_code_status_effective_context_and_category_match,
    document_reference_type_dates_encounter_status_and_category_match,
    communication_sent_received_sender_recipient_and_status_match,
    identifier_matches_system_and_value_on_every_type,
    encounter_and_subject_references_match_on_every_type,
    include_encounter_subject_adds_each_patient_once_from_identity,
    include_follows_other_reference_parameters,
    unknown_or_unusable_includes_are_refused_naming_include,
    last_updated_separates_earlier_and_later_writes_of_every_type,
    count_pages_through_every_match_once_for_every_type,
    sort_orders_every_type_by_its_date_both_ways_across_pages,
    search_follows_updates_and_deletes,
    unknown_parameters_and_bad_values_are_refused_by_name,
    tag_finds_on_every_type_what_an_organization_wrote_and_cannot_be_forged,
    procedure_code_date_status_and_category_match,
    diagnostic_report_code_dates_status_category_and_result_match,
    medication_request_code_dates_status_intent_and_category_match,
    care_plan_period_status_intent_category_and_activity_match,
    goal_lifecycle_dates_and_category_match,
    imaging_study_started_status_and_modality_match,
    claim_and_explanation_of_benefit_dates_status_use_provider_and_claim_match,
);

const SNOMED: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const CVX: &str = "http://hl7.org/fhir/sid/cvx";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
/// A local code system whose codes collide with SNOMED, LOINC and RxNorm
/// codes: a token search that ignores the system finds them too.
const LOCAL: &str = "http://example.org/fhir/CodeSystem/clinic-local";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const CONDITION_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const ALLERGY_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
const COMMUNICATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/communication-category";
const MEDICATION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/medication-statement-category";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

/// The parameters this suite checks, by type. A parameter added to the
/// service without a test here fails
/// [`every_search_parameter_of_every_type_has_a_test_here`].
const TESTED: &[(&str, &[&str])] = &[
    (
        "Encounter",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "date",
            "status",
            "class",
            "type",
            "participant",
            "participant-type",
            "service-provider",
            "reason-code",
        ],
    ),
    (
        "Observation",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "code",
            "date",
            "status",
            "category",
        ],
    ),
    (
        "Condition",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "code",
            "onset-date",
            "recorded-date",
            "clinical-status",
            "verification-status",
            "category",
        ],
    ),
    (
        "Communication",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "sent",
            "received",
            "sender",
            "recipient",
            "status",
            "category",
        ],
    ),
    (
        "Immunization",
        &[
            "_tag",
            "identifier",
            "patient",
            "encounter",
            "vaccine-code",
            "code",
            "date",
            "status",
        ],
    ),
    (
        "AllergyIntolerance",
        &[
            "_tag",
            "identifier",
            "patient",
            "encounter",
            "code",
            "date",
            "onset-date",
            "clinical-status",
            "verification-status",
            "criticality",
            "category",
        ],
    ),
    (
        "MedicationStatement",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "context",
            "code",
            "effective",
            "date",
            "status",
            "category",
        ],
    ),
    (
        "DocumentReference",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "type",
            "code",
            "date",
            "period",
            "status",
            "category",
        ],
    ),
    (
        "Procedure",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "code",
            "date",
            "status",
            "category",
        ],
    ),
    (
        "DiagnosticReport",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "code",
            "date",
            "issued",
            "status",
            "category",
            "result",
        ],
    ),
    (
        "MedicationRequest",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "code",
            "authoredon",
            "date",
            "status",
            "intent",
            "category",
        ],
    ),
    (
        "CarePlan",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "date",
            "status",
            "intent",
            "category",
            "activity-code",
        ],
    ),
    (
        "Goal",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "lifecycle-status",
            "start-date",
            "target-date",
            "category",
        ],
    ),
    (
        "ImagingStudy",
        &[
            "_tag",
            "identifier",
            "patient",
            "subject",
            "encounter",
            "started",
            "date",
            "status",
            "modality",
        ],
    ),
    (
        "Claim",
        &[
            "_tag",
            "identifier",
            "patient",
            "encounter",
            "created",
            "date",
            "status",
            "use",
            "provider",
        ],
    ),
    (
        "ExplanationOfBenefit",
        &[
            "_tag",
            "identifier",
            "patient",
            "encounter",
            "created",
            "date",
            "status",
            "claim",
            "provider",
        ],
    ),
];

#[test]
fn every_search_parameter_of_every_type_has_a_test_here() {
    let mut served: Vec<String> = corridor_encounters::RESOURCES
        .iter()
        .flat_map(|def| {
            def.params
                .iter()
                .map(move |p| format!("{}?{}", def.resource_type, p.name))
        })
        .collect();
    let mut tested: Vec<String> = TESTED
        .iter()
        .flat_map(|(t, params)| params.iter().map(move |p| format!("{t}?{p}")))
        .collect();
    served.sort();
    tested.sort();
    assert_eq!(
        tested, served,
        "TESTED lists every parameter the service serves"
    );
}

// === helpers ===

/// Create `resource`; its `Type/id`.
async fn make(node: &Node, resource: Value) -> String {
    let stored = api::create(node, &resource).await;
    format!("{}/{}", stored.resource_type, stored.id)
}

/// The `Type/id` of every match, sorted.
async fn found(node: &Node, resource_type: &str, params: &[(&str, &str)]) -> Vec<String> {
    let mut matches = api::entries(&api::search(node, resource_type, params).await, "match");
    matches.sort();
    matches
}

/// The expected matches, sorted like [`found`]'s.
fn set(refs: &[&String]) -> Vec<String> {
    let mut refs: Vec<String> = refs.iter().map(|r| (*r).clone()).collect();
    refs.sort();
    refs
}

/// The id part of `Type/id`.
fn id_of(reference: &str) -> &str {
    reference.split_once('/').map_or(reference, |(_, id)| id)
}

fn reference(to: &str) -> Value {
    json!({ "reference": to })
}

fn coding(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

/// A search that must be refused with INVALID_ARGUMENT; its status.
async fn refused(node: &Node, resource_type: &str, params: &[(&str, &str)]) -> tonic::Status {
    let status = api::try_search(node, resource_type, params)
        .await
        .expect_err(&format!("{resource_type}?{params:?} is refused"));
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{resource_type}?{params:?}: {status:?}"
    );
    status
}

/// A minimal valid Encounter of `subject` over `[start, end]`.
fn encounter(subject: &str, start: &str, end: Option<&str>) -> Value {
    let mut period = json!({ "start": start });
    if let Some(end) = end {
        period["end"] = json!(end);
    }
    json!({
        "resourceType": "Encounter",
        "status": if end.is_some() { "finished" } else { "in-progress" },
        "class": { "system": ACT_CODE, "code": "AMB" },
        "subject": reference(subject),
        "period": period,
    })
}

/// Every type the service owns, with the date parameter it sorts by.
const DATED: &[(&str, &str)] = &[
    ("Encounter", "date"),
    ("Observation", "date"),
    ("Condition", "onset-date"),
    ("Communication", "sent"),
    ("Immunization", "date"),
    ("AllergyIntolerance", "date"),
    ("MedicationStatement", "effective"),
    ("DocumentReference", "date"),
    ("Procedure", "date"),
    ("DiagnosticReport", "date"),
    ("MedicationRequest", "authoredon"),
    ("CarePlan", "date"),
    ("Goal", "start-date"),
    ("ImagingStudy", "started"),
    ("Claim", "created"),
    ("ExplanationOfBenefit", "created"),
];

/// A valid `resource_type` about `patient`, dated on day `day` of
/// January 2025 in the element its [`DATED`] parameter searches.
fn dated(resource_type: &str, patient: &str, day: u32) -> Value {
    let subject = reference(&format!("Patient/{patient}"));
    let date = format!("2025-01-{day:02}");
    let instant = format!("{date}T09:00:00Z");
    match resource_type {
        "Encounter" => json!({
            "resourceType": "Encounter",
            "status": "finished",
            "class": { "system": ACT_CODE, "code": "AMB" },
            "subject": subject,
            "period": { "start": instant, "end": format!("{date}T09:30:00Z") },
        }),
        "Observation" => json!({
            "resourceType": "Observation",
            "status": "final",
            "code": coding(LOINC, "8867-4"),
            "subject": subject,
            "effectiveDateTime": instant,
            "valueQuantity": { "value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min" },
        }),
        "Condition" => json!({
            "resourceType": "Condition",
            "clinicalStatus": coding(CONDITION_CLINICAL, "active"),
            "code": coding(SNOMED, "38341003"),
            "subject": subject,
            "onsetDateTime": date,
        }),
        "Communication" => json!({
            "resourceType": "Communication",
            "status": "completed",
            "subject": subject,
            "sent": instant,
            "payload": [{ "contentString": format!("message of day {day}") }],
        }),
        "Immunization" => json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": coding(CVX, "140"),
            "patient": subject,
            "occurrenceDateTime": date,
        }),
        "AllergyIntolerance" => json!({
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": coding(ALLERGY_CLINICAL, "active"),
            "code": coding(SNOMED, "91936005"),
            "patient": subject,
            "recordedDate": date,
        }),
        "MedicationStatement" => json!({
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": coding(RXNORM, "197361"),
            "subject": subject,
            "effectiveDateTime": date,
        }),
        "DocumentReference" => json!({
            "resourceType": "DocumentReference",
            "status": "current",
            "type": coding(LOINC, "11506-3"),
            "subject": subject,
            "date": instant,
            "content": [{ "attachment": { "contentType": "text/plain", "data": "bm90ZQ==" } }],
        }),
        "Procedure" => json!({
            "resourceType": "Procedure",
            "status": "completed",
            "code": coding(SNOMED, "18949003"),
            "subject": subject,
            "performedDateTime": instant,
        }),
        "DiagnosticReport" => json!({
            "resourceType": "DiagnosticReport",
            "status": "final",
            "code": coding(LOINC, "58410-2"),
            "subject": subject,
            "effectiveDateTime": instant,
        }),
        "MedicationRequest" => json!({
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": coding(RXNORM, "308182"),
            "subject": subject,
            "authoredOn": date,
        }),
        "CarePlan" => json!({
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": subject,
            "period": { "start": instant, "end": format!("{date}T18:00:00Z") },
        }),
        "Goal" => json!({
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "description": { "text": format!("goal of day {day}") },
            "subject": subject,
            "startDate": date,
        }),
        "ImagingStudy" => json!({
            "resourceType": "ImagingStudy",
            "status": "available",
            "subject": subject,
            "started": instant,
        }),
        "Claim" | "ExplanationOfBenefit" => clinic::claim_like(
            resource_type,
            &format!("Patient/{patient}"),
            &date,
            "Organization/clinic-1",
        ),
        other => panic!("no dated sample of {other}"),
    }
}

/// The `_page_token` of a Bundle's `next` link, if it has one.
fn next_token(bundle: &Value) -> Option<String> {
    let url = bundle["link"]
        .as_array()?
        .iter()
        .find(|link| link["relation"] == "next")?["url"]
        .as_str()?;
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("_page_token="))
        .map(str::to_owned)
}

/// The `Type/id` of every match, in the order served.
async fn in_order(node: &Node, resource_type: &str, params: &[(&str, &str)]) -> Vec<String> {
    api::entries(&api::search(node, resource_type, params).await, "match")
}

/// Follow `next` links through a search with `_count=count`: every match in
/// the order served, and how many pages it took. Every page must report
/// `total`.
async fn all_pages(
    node: &Node,
    resource_type: &str,
    params: &[(&str, &str)],
    count: usize,
    total: usize,
) -> (Vec<String>, usize) {
    let count = count.to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut query = params.to_vec();
        query.push(("_count", &count));
        if let Some(token) = &token {
            query.push(("_page_token", token));
        }
        let bundle = api::search(node, resource_type, &query).await;
        pages += 1;
        assert_eq!(
            bundle["total"], total,
            "{resource_type}: total on page {pages}"
        );
        seen.extend(api::entries(&bundle, "match"));
        match next_token(&bundle) {
            Some(next) => token = Some(next),
            None => break,
        }
        assert!(pages <= total + 1, "{resource_type}: paging never ends");
    }
    (seen, pages)
}

// === Encounter ===

async fn encounter_patient_and_subject_select_each_patients_encounters(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = clinic::register_patient(&node, "Tesfay").await;
    let b = clinic::register_patient(&node, "Haile").await;
    let (pa, pb) = (format!("Patient/{a}"), format!("Patient/{b}"));
    let a1 = make(&node, encounter(&pa, "2026-01-05T09:00:00Z", None)).await;
    let a2 = make(&node, encounter(&pa, "2026-02-05T09:00:00Z", None)).await;
    let b1 = make(&node, encounter(&pb, "2026-01-05T09:00:00Z", None)).await;
    let group = make(
        &node,
        encounter("Group/family-7", "2026-01-05T09:00:00Z", None),
    )
    .await;

    assert_eq!(
        found(&node, "Encounter", &[("patient", &pa)]).await,
        set(&[&a1, &a2])
    );
    assert_eq!(
        found(&node, "Encounter", &[("patient", &b)]).await,
        set(&[&b1]),
        "a bare id is a Patient id: patient has one target type"
    );
    assert_eq!(
        found(&node, "Encounter", &[("subject", &pb)]).await,
        set(&[&b1])
    );
    assert_eq!(
        found(&node, "Encounter", &[("subject", "Group/family-7")]).await,
        set(&[&group])
    );
    assert_eq!(
        found(&node, "Encounter", &[("patient", &format!("{pa},{pb}"))]).await,
        set(&[&a1, &a2, &b1]),
        "comma is OR"
    );
    assert_eq!(
        found(&node, "Encounter", &[("patient", "Patient/nobody")]).await,
        set(&[])
    );

    let err = refused(&node, "Encounter", &[("patient", "Group/family-7")]).await;
    assert_eq!(expression(&err), "patient", "patient names only Patients");
    let err = refused(&node, "Encounter", &[("subject", &a)]).await;
    assert_eq!(
        expression(&err),
        "subject",
        "a bare id is ambiguous between Patient and Group"
    );
    node.stop().await;
}

async fn encounter_date_prefixes_compare_periods_as_ranges(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    // One hour on March 1st; four days from March 2nd 09:00; open since the 10th.
    let hour = make(
        &node,
        encounter(&p, "2024-03-01T09:00:00Z", Some("2024-03-01T10:00:00Z")),
    )
    .await;
    let days = make(
        &node,
        encounter(&p, "2024-03-02T09:00:00Z", Some("2024-03-05T10:00:00Z")),
    )
    .await;
    let open = make(&node, encounter(&p, "2024-03-10T08:00:00Z", None)).await;

    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("2024-03-01", vec![&hour]),
        ("eq2024-03-02", vec![]),
        ("eq2024-03", vec![&hour, &days]),
        ("2024", vec![&hour, &days]),
        ("ne2024-03-01", vec![&days, &open]),
        ("lt2024-03-02", vec![&hour]),
        ("lt2024-03-02T09:00:00Z", vec![&hour]),
        ("le2024-03-01", vec![&hour]),
        ("gt2024-03-04", vec![&days, &open]),
        ("gt2024-03-01T10:00:00Z", vec![&days, &open]),
        ("ge2024-03-02", vec![&days, &open]),
        ("ge2024-03-06", vec![&open]),
        ("sa2024-03-01", vec![&days, &open]),
        ("eb2024-03-02", vec![&hour]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            found(&node, "Encounter", &[("date", query)]).await,
            set(&expected),
            "date={query}"
        );
    }
    assert_eq!(
        found(
            &node,
            "Encounter",
            &[("date", "ge2024-03-02"), ("date", "lt2024-03-06")]
        )
        .await,
        set(&[&days]),
        "two date parameters are AND: a window"
    );
    assert_eq!(
        found(&node, "Encounter", &[("date", "2024-03-01,2024-03-11")]).await,
        set(&[&hour]),
        "an open period is not contained in any day"
    );
    node.stop().await;
}

async fn encounter_status_class_type_and_identifier_tokens_respect_the_system(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    // The clinic's own virtual encounter: finished, class VR, SNOMED type.
    let virtual_visit = make(&node, clinic::virtual_encounter(id_of(&p))).await;
    let walk_in = make(
        &node,
        json!({
            "resourceType": "Encounter",
            "identifier": [{ "system": "urn:corridor:visit", "value": "V-1" }],
            "status": "in-progress",
            "class": { "system": ACT_CODE, "code": "AMB" },
            "type": [coding(LOCAL, "185317003")],
            "subject": reference(&p),
        }),
    )
    .await;
    let home = make(
        &node,
        json!({
            "resourceType": "Encounter",
            "identifier": [{ "system": "urn:other:visit", "value": "V-1" }],
            "status": "planned",
            "class": { "system": LOCAL, "code": "VR" },
            "type": [{ "coding": [{ "code": "185317003" }] }],
            "subject": reference(&p),
        }),
    )
    .await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("status", "finished".into(), vec![&virtual_visit]),
        ("status", "in-progress".into(), vec![&walk_in]),
        (
            "status",
            "finished,planned".into(),
            vec![&virtual_visit, &home],
        ),
        ("status", "arrived".into(), vec![]),
        ("class", format!("{ACT_CODE}|VR"), vec![&virtual_visit]),
        ("class", "VR".into(), vec![&virtual_visit, &home]),
        ("class", format!("{LOCAL}|VR"), vec![&home]),
        (
            "class",
            format!("{ACT_CODE}|"),
            vec![&virtual_visit, &walk_in],
        ),
        ("type", format!("{SNOMED}|185317003"), vec![&virtual_visit]),
        ("type", format!("{LOCAL}|185317003"), vec![&walk_in]),
        ("type", "|185317003".into(), vec![&home]),
        (
            "type",
            "185317003".into(),
            vec![&virtual_visit, &walk_in, &home],
        ),
        (
            "identifier",
            "urn:corridor:visit|V-1".into(),
            vec![&walk_in],
        ),
        ("identifier", "V-1".into(), vec![&walk_in, &home]),
        ("identifier", "urn:corridor:visit|V-2".into(), vec![]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "Encounter", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    assert_eq!(
        found(
            &node,
            "Encounter",
            &[("class", "VR"), ("status", "planned")]
        )
        .await,
        set(&[&home]),
        "parameters are AND"
    );
    node.stop().await;
}

async fn encounter_participant_service_provider_and_reason_code_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    // Dr Amani with an interpreter, for hypertension, at the NGO clinic.
    let amani = make(&node, clinic::virtual_encounter(id_of(&p))).await;
    let bekele = make(
        &node,
        json!({
            "resourceType": "Encounter",
            "status": "finished",
            "class": { "system": ACT_CODE, "code": "AMB" },
            "subject": reference(&p),
            "participant": [{
                "type": [coding(PARTICIPATION_TYPE, "PPRF")],
                "individual": reference("Practitioner/dr-bekele"),
            }],
            "reasonCode": [coding(SNOMED, "195967001")],
            "serviceProvider": reference("Organization/red-crescent"),
        }),
    )
    .await;
    // The reason code under another system, and no participant.
    let other = make(
        &node,
        json!({
            "resourceType": "Encounter",
            "status": "finished",
            "class": { "system": ACT_CODE, "code": "AMB" },
            "subject": reference(&p),
            "reasonCode": [coding(LOCAL, "38341003")],
        }),
    )
    .await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("participant", clinic::CLINICIAN.into(), vec![&amani]),
        ("participant", clinic::INTERPRETER.into(), vec![&amani]),
        (
            "participant",
            "Practitioner/dr-bekele".into(),
            vec![&bekele],
        ),
        (
            "participant",
            "Practitioner/interpreter-tigrinya".into(),
            vec![],
        ),
        (
            "participant-type",
            format!("{PARTICIPATION_TYPE}|INTRP"),
            vec![&amani],
        ),
        ("participant-type", "PPRF".into(), vec![&amani, &bekele]),
        (
            "service-provider",
            "Organization/ngo-clinic".into(),
            vec![&amani],
        ),
        ("service-provider", "red-crescent".into(), vec![&bekele]),
        ("reason-code", format!("{SNOMED}|38341003"), vec![&amani]),
        ("reason-code", "38341003".into(), vec![&amani, &other]),
        ("reason-code", "195967001".into(), vec![&bekele]),
        ("reason-code", format!("{SNOMED}|"), vec![&amani, &bekele]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "Encounter", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    let err = refused(&node, "Encounter", &[("participant", "dr-amani")]).await;
    assert_eq!(
        expression(&err),
        "participant",
        "a bare id is ambiguous among the participant types"
    );
    let err = refused(
        &node,
        "Encounter",
        &[("service-provider", "Practitioner/dr-amani")],
    )
    .await;
    assert_eq!(expression(&err), "service-provider");
    node.stop().await;
}

// === Observation ===

async fn observation_patient_subject_and_encounter_select_the_right_records(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let b = format!("Patient/{}", clinic::register_patient(&node, "Haile").await);
    let ea = make(&node, encounter(&a, "2026-01-05T09:00:00Z", None)).await;
    let eb = make(&node, encounter(&b, "2026-01-06T09:00:00Z", None)).await;
    let observation = |subject: &str, encounter: Option<&str>| {
        let mut obs = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": coding(LOINC, "8867-4"),
            "subject": reference(subject),
        });
        if let Some(encounter) = encounter {
            obs["encounter"] = reference(encounter);
        }
        obs
    };
    let a_in_ea = make(&node, observation(&a, Some(&ea))).await;
    let a_alone = make(&node, observation(&a, None)).await;
    let b_in_eb = make(&node, observation(&b, Some(&eb))).await;
    let group = make(&node, observation("Group/household-3", None)).await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("patient", a.clone(), vec![&a_in_ea, &a_alone]),
        ("patient", id_of(&b).into(), vec![&b_in_eb]),
        ("subject", a.clone(), vec![&a_in_ea, &a_alone]),
        ("subject", "Group/household-3".into(), vec![&group]),
        ("encounter", ea.clone(), vec![&a_in_ea]),
        ("encounter", id_of(&eb).into(), vec![&b_in_eb]),
        ("encounter", format!("{ea},{eb}"), vec![&a_in_ea, &b_in_eb]),
        ("encounter", "Encounter/none".into(), vec![]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "Observation", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    assert_eq!(
        found(&node, "Observation", &[("patient", &a), ("encounter", &eb)]).await,
        set(&[]),
        "patient AND encounter"
    );
    let err = refused(&node, "Observation", &[("encounter", &a)]).await;
    assert_eq!(expression(&err), "encounter");
    node.stop().await;
}

async fn observation_code_matches_system_and_code_not_components(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let observation = |code: Value| {
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": code,
            "subject": reference(&p),
        })
    };
    let heart_rate = make(&node, observation(coding(LOINC, "8867-4"))).await;
    let local = make(&node, observation(coding(LOCAL, "8867-4"))).await;
    let mut panel = observation(coding(LOINC, "85354-9"));
    panel["component"] = json!([
        { "code": coding(LOINC, "8480-6"),
          "valueQuantity": { "value": 152, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
        { "code": coding(LOINC, "8462-4"),
          "valueQuantity": { "value": 96, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" } },
    ]);
    let panel = make(&node, panel).await;
    // Two codings: found by either.
    let both = make(
        &node,
        observation(json!({ "coding": [
            { "system": LOINC, "code": "29463-7" },
            { "system": SNOMED, "code": "27113001" },
        ] })),
    )
    .await;

    let cases: Vec<(String, Vec<&String>)> = vec![
        (format!("{LOINC}|8867-4"), vec![&heart_rate]),
        (format!("{LOCAL}|8867-4"), vec![&local]),
        ("8867-4".into(), vec![&heart_rate, &local]),
        (format!("{LOINC}|"), vec![&heart_rate, &panel, &both]),
        (
            format!("{LOINC}|8867-4,{LOINC}|85354-9"),
            vec![&heart_rate, &panel],
        ),
        ("8480-6".into(), vec![]),
        (format!("{SNOMED}|27113001"), vec![&both]),
        (format!("{SNOMED}|29463-7"), vec![]),
    ];
    for (value, expected) in cases {
        assert_eq!(
            found(&node, "Observation", &[("code", &value)]).await,
            set(&expected),
            "code={value}"
        );
    }
    node.stop().await;
}

async fn observation_date_status_and_category_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let vital = coding(OBSERVATION_CATEGORY, "vital-signs");
    let lab = coding(OBSERVATION_CATEGORY, "laboratory");
    let at_time = make(
        &node,
        json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [vital],
            "code": coding(LOINC, "8867-4"),
            "subject": reference(&p),
            "effectiveDateTime": "2025-01-10T08:00:00Z",
        }),
    )
    .await;
    let over_days = make(
        &node,
        json!({
            "resourceType": "Observation",
            "status": "preliminary",
            "category": [lab],
            "code": coding(LOINC, "2339-0"),
            "subject": reference(&p),
            "effectivePeriod": { "start": "2025-01-12", "end": "2025-01-14" },
        }),
    )
    .await;
    let instant = make(
        &node,
        json!({
            "resourceType": "Observation",
            "status": "amended",
            "category": [vital, coding(LOCAL, "laboratory")],
            "code": coding(LOINC, "8310-5"),
            "subject": reference(&p),
            "effectiveInstant": "2025-01-20T10:00:00.000Z",
        }),
    )
    .await;
    let undated = make(
        &node,
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": coding(LOINC, "8867-4"),
            "subject": reference(&p),
        }),
    )
    .await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("date", "2025-01-10".into(), vec![&at_time]),
        (
            "date",
            "2025-01".into(),
            vec![&at_time, &over_days, &instant],
        ),
        ("date", "2025-01-13".into(), vec![]),
        ("date", "ge2025-01-13".into(), vec![&over_days, &instant]),
        ("date", "lt2025-01-12".into(), vec![&at_time]),
        ("date", "eb2025-01-12".into(), vec![&at_time]),
        ("date", "2025-01-20T10:00:00Z".into(), vec![&instant]),
        ("status", "final".into(), vec![&at_time, &undated]),
        (
            "status",
            "preliminary,amended".into(),
            vec![&over_days, &instant],
        ),
        ("status", "cancelled".into(), vec![]),
        (
            "category",
            format!("{OBSERVATION_CATEGORY}|vital-signs"),
            vec![&at_time, &instant],
        ),
        (
            "category",
            format!("{OBSERVATION_CATEGORY}|laboratory"),
            vec![&over_days],
        ),
        ("category", "laboratory".into(), vec![&over_days, &instant]),
        ("category", "social-history".into(), vec![]),
        ("status", "unknown".into(), vec![]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "Observation", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    assert_eq!(
        found(
            &node,
            "Observation",
            &[("status", "final"), ("date", "2025")]
        )
        .await,
        set(&[&at_time]),
        "an undated observation has no date to match"
    );
    node.stop().await;
}

// === Condition ===

async fn condition_dates_statuses_code_and_category_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let hypertension = make(
        &node,
        json!({
            "resourceType": "Condition",
            "clinicalStatus": coding(CONDITION_CLINICAL, "active"),
            "verificationStatus": coding(CONDITION_VERIFICATION, "confirmed"),
            "category": [coding(CONDITION_CATEGORY, "encounter-diagnosis")],
            "code": coding(SNOMED, "38341003"),
            "subject": reference(&p),
            "onsetDateTime": "2019-06",
            "recordedDate": "2019-07-01",
        }),
    )
    .await;
    let diabetes = make(
        &node,
        json!({
            "resourceType": "Condition",
            "clinicalStatus": coding(CONDITION_CLINICAL, "resolved"),
            "verificationStatus": coding(CONDITION_VERIFICATION, "provisional"),
            "category": [coding(CONDITION_CATEGORY, "problem-list-item")],
            "code": coding(SNOMED, "44054006"),
            "subject": reference(&p),
            "onsetPeriod": { "start": "2021-01-01", "end": "2021-03-01" },
            "recordedDate": "2021-01-15T10:00:00Z",
        }),
    )
    .await;
    let icd = make(
        &node,
        json!({
            "resourceType": "Condition",
            "clinicalStatus": coding(CONDITION_CLINICAL, "inactive"),
            "category": [coding(CONDITION_CATEGORY, "problem-list-item")],
            "code": coding("http://hl7.org/fhir/sid/icd-10", "I10"),
            "subject": reference(&p),
        }),
    )
    .await;
    let local = make(
        &node,
        json!({
            "resourceType": "Condition",
            // A local "active" beside the required FHIR code.
            "clinicalStatus": { "coding": [
                { "system": CONDITION_CLINICAL, "code": "recurrence" },
                { "system": LOCAL, "code": "active" },
            ] },
            "code": coding(LOCAL, "38341003"),
            "subject": reference(&p),
            "onsetDateTime": "2023-05-04T10:00:00Z",
        }),
    )
    .await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("onset-date", "2019".into(), vec![&hypertension]),
        ("onset-date", "2019-06-15".into(), vec![]),
        ("onset-date", "ge2020".into(), vec![&diabetes, &local]),
        (
            "onset-date",
            "lt2021-02-01".into(),
            vec![&hypertension, &diabetes],
        ),
        ("onset-date", "sa2019-12-31".into(), vec![&diabetes, &local]),
        ("onset-date", "eb2021-03-01".into(), vec![&hypertension]),
        ("onset-date", "eq2021".into(), vec![&diabetes]),
        ("recorded-date", "2019-07-01".into(), vec![&hypertension]),
        ("recorded-date", "ge2020".into(), vec![&diabetes]),
        (
            "recorded-date",
            "2021-01-15T10:00:00Z".into(),
            vec![&diabetes],
        ),
        (
            "verification-status",
            "confirmed".into(),
            vec![&hypertension],
        ),
        (
            "verification-status",
            format!("{CONDITION_VERIFICATION}|provisional"),
            vec![&diabetes],
        ),
        ("verification-status", "refuted".into(), vec![]),
        (
            "clinical-status",
            "active".into(),
            vec![&hypertension, &local],
        ),
        (
            "clinical-status",
            format!("{CONDITION_CLINICAL}|active"),
            vec![&hypertension],
        ),
        (
            "clinical-status",
            format!("{CONDITION_CLINICAL}|resolved"),
            vec![&diabetes],
        ),
        ("clinical-status", "inactive".into(), vec![&icd]),
        ("code", format!("{SNOMED}|38341003"), vec![&hypertension]),
        ("code", "38341003".into(), vec![&hypertension, &local]),
        ("code", "I10".into(), vec![&icd]),
        (
            "category",
            "problem-list-item".into(),
            vec![&diabetes, &icd],
        ),
        (
            "category",
            format!("{CONDITION_CATEGORY}|encounter-diagnosis"),
            vec![&hypertension],
        ),
        ("category", format!("{LOCAL}|problem-list-item"), vec![]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "Condition", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    node.stop().await;
}

// === Immunization ===

async fn immunization_vaccine_code_date_status_and_patient_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let b = format!("Patient/{}", clinic::register_patient(&node, "Haile").await);
    let immunization = |patient: &str, status: &str, vaccine: Value, date: &str| {
        json!({
            "resourceType": "Immunization",
            "status": status,
            "vaccineCode": vaccine,
            "patient": reference(patient),
            "occurrenceDateTime": date,
        })
    };
    let tdap = make(
        &node,
        immunization(&a, "completed", coding(CVX, "115"), "2024-10-02"),
    )
    .await;
    let flu_b = make(
        &node,
        immunization(&b, "completed", coding(CVX, "140"), "2025-10-15"),
    )
    .await;
    let flu_a = make(
        &node,
        immunization(&a, "not-done", coding(CVX, "140"), "2025-11-01T14:00:00Z"),
    )
    .await;
    let local = make(
        &node,
        immunization(&b, "entered-in-error", coding(LOCAL, "115"), "2023-01-01"),
    )
    .await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("vaccine-code", format!("{CVX}|115"), vec![&tdap]),
        ("vaccine-code", "115".into(), vec![&tdap, &local]),
        ("code", format!("{CVX}|140"), vec![&flu_b, &flu_a]),
        ("code", format!("{LOCAL}|115"), vec![&local]),
        ("date", "2025".into(), vec![&flu_b, &flu_a]),
        ("date", "2025-10-15".into(), vec![&flu_b]),
        ("date", "lt2025-10-15".into(), vec![&tdap, &local]),
        ("date", "le2025-10-15".into(), vec![&tdap, &flu_b, &local]),
        ("date", "gt2025-10-15".into(), vec![&flu_a]),
        ("date", "ge2025-11-01T14:00:00Z".into(), vec![&flu_a]),
        ("date", "gt2025-11-01T14:00:00Z".into(), vec![]),
        ("status", "completed".into(), vec![&tdap, &flu_b]),
        ("status", "not-done".into(), vec![&flu_a]),
        ("patient", a.clone(), vec![&tdap, &flu_a]),
        ("patient", id_of(&b).into(), vec![&flu_b, &local]),
        ("patient", "Patient/nobody".into(), vec![]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "Immunization", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    assert_eq!(
        found(&node, "Immunization", &[("patient", &a), ("code", "140")]).await,
        set(&[&flu_a])
    );
    node.stop().await;
}

// === AllergyIntolerance ===

async fn allergy_intolerance_patient_code_statuses_dates_and_category_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let b = format!("Patient/{}", clinic::register_patient(&node, "Haile").await);
    let penicillin = make(
        &node,
        json!({
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": coding(ALLERGY_CLINICAL, "active"),
            "category": ["medication"],
            "verificationStatus": coding(ALLERGY_VERIFICATION, "confirmed"),
            "criticality": "high",
            "code": coding(SNOMED, "91936005"),
            "patient": reference(&a),
            "onsetDateTime": "2010",
            "recordedDate": "2024-02-01",
        }),
    )
    .await;
    let peanuts = make(
        &node,
        json!({
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": coding(ALLERGY_CLINICAL, "resolved"),
            "verificationStatus": coding(ALLERGY_VERIFICATION, "unconfirmed"),
            "category": ["food"],
            "code": coding(SNOMED, "91935009"),
            "patient": reference(&b),
            "onsetPeriod": { "start": "2001-05-01", "end": "2003" },
            "recordedDate": "2025-03-04T10:00:00Z",
        }),
    )
    .await;
    // Coded as a local term, with the SNOMED substance in the reaction.
    let shellfish = make(
        &node,
        json!({
            "resourceType": "AllergyIntolerance",
            // A local "active" beside the required FHIR code.
            "clinicalStatus": { "coding": [
                { "system": ALLERGY_CLINICAL, "code": "inactive" },
                { "system": LOCAL, "code": "active" },
            ] },
            "category": ["food", "environment"],
            "code": coding(LOCAL, "91936005"),
            "patient": reference(&a),
            "reaction": [{
                "substance": coding(SNOMED, "227037002"),
                "manifestation": [coding(SNOMED, "39579001")],
            }],
        }),
    )
    .await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("patient", a.clone(), vec![&penicillin, &shellfish]),
        ("patient", id_of(&b).into(), vec![&peanuts]),
        ("code", format!("{SNOMED}|91936005"), vec![&penicillin]),
        ("code", "91936005".into(), vec![&penicillin, &shellfish]),
        ("code", format!("{SNOMED}|227037002"), vec![&shellfish]),
        ("code", "39579001".into(), vec![]),
        (
            "clinical-status",
            "active".into(),
            vec![&penicillin, &shellfish],
        ),
        (
            "clinical-status",
            format!("{ALLERGY_CLINICAL}|active"),
            vec![&penicillin],
        ),
        (
            "clinical-status",
            format!("{ALLERGY_CLINICAL}|resolved"),
            vec![&peanuts],
        ),
        ("category", "food".into(), vec![&peanuts, &shellfish]),
        ("category", "medication".into(), vec![&penicillin]),
        ("category", "biologic".into(), vec![]),
        ("criticality", "high".into(), vec![&penicillin]),
        ("criticality", "low".into(), vec![]),
        ("verification-status", "confirmed".into(), vec![&penicillin]),
        (
            "verification-status",
            format!("{ALLERGY_VERIFICATION}|unconfirmed"),
            vec![&peanuts],
        ),
        ("onset-date", "2010".into(), vec![&penicillin]),
        ("onset-date", "2002".into(), vec![]),
        ("onset-date", "lt2005".into(), vec![&peanuts]),
        ("onset-date", "eb2004".into(), vec![&peanuts]),
        ("onset-date", "sa2003".into(), vec![&penicillin]),
        ("date", "2024-02-01".into(), vec![&penicillin]),
        ("date", "ge2025".into(), vec![&peanuts]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "AllergyIntolerance", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    assert_eq!(
        found(
            &node,
            "AllergyIntolerance",
            &[("patient", &a), ("category", "food")]
        )
        .await,
        set(&[&shellfish])
    );
    node.stop().await;
}

// === MedicationStatement ===

async fn medication_statement_code_status_effective_context_and_category_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let b = format!("Patient/{}", clinic::register_patient(&node, "Haile").await);
    let ea = make(&node, encounter(&a, "2026-11-20T21:30:00Z", None)).await;
    let eb = make(&node, encounter(&b, "2026-12-01T08:00:00Z", None)).await;
    let amlodipine = make(
        &node,
        json!({
            "resourceType": "MedicationStatement",
            "status": "active",
            "category": coding(MEDICATION_CATEGORY, "community"),
            "medicationCodeableConcept": coding(RXNORM, "197361"),
            "subject": reference(&a),
            "context": reference(&ea),
            "effectiveDateTime": "2026-11-20",
        }),
    )
    .await;
    let metformin = make(
        &node,
        json!({
            "resourceType": "MedicationStatement",
            "status": "completed",
            "category": coding(MEDICATION_CATEGORY, "patientspecified"),
            "medicationCodeableConcept": coding(RXNORM, "860975"),
            "subject": reference(&a),
            "effectivePeriod": { "start": "2025-01-01", "end": "2025-06-30" },
        }),
    )
    .await;
    let formulary = make(
        &node,
        json!({
            "resourceType": "MedicationStatement",
            "status": "stopped",
            "medicationCodeableConcept": coding(LOCAL, "197361"),
            "subject": reference(&b),
            "context": reference(&eb),
            "effectiveDateTime": "2026-12-01T08:00:00Z",
        }),
    )
    .await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("code", format!("{RXNORM}|197361"), vec![&amlodipine]),
        ("code", "197361".into(), vec![&amlodipine, &formulary]),
        ("code", format!("{RXNORM}|"), vec![&amlodipine, &metformin]),
        ("status", "active".into(), vec![&amlodipine]),
        (
            "status",
            "completed,stopped".into(),
            vec![&metformin, &formulary],
        ),
        ("effective", "2025".into(), vec![&metformin]),
        ("effective", "2025-03".into(), vec![]),
        (
            "effective",
            "ge2026-11-20".into(),
            vec![&amlodipine, &formulary],
        ),
        ("effective", "lt2026-11-20".into(), vec![&metformin]),
        (
            "effective",
            "sa2025-06-30".into(),
            vec![&amlodipine, &formulary],
        ),
        ("date", "2026-11-20".into(), vec![&amlodipine]),
        ("encounter", ea.clone(), vec![&amlodipine]),
        ("encounter", id_of(&eb).into(), vec![&formulary]),
        ("context", eb.clone(), vec![&formulary]),
        ("patient", a.clone(), vec![&amlodipine, &metformin]),
        ("subject", b.clone(), vec![&formulary]),
        ("category", "community".into(), vec![&amlodipine]),
        (
            "category",
            format!("{MEDICATION_CATEGORY}|patientspecified"),
            vec![&metformin],
        ),
        ("category", "inpatient".into(), vec![]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "MedicationStatement", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    let err = refused(&node, "MedicationStatement", &[("context", id_of(&ea))]).await;
    assert_eq!(
        expression(&err),
        "context",
        "context names an Encounter or an EpisodeOfCare: a bare id is ambiguous"
    );
    node.stop().await;
}

// === DocumentReference ===

async fn document_reference_type_dates_encounter_status_and_category_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let b = format!("Patient/{}", clinic::register_patient(&node, "Haile").await);
    let ea = make(&node, encounter(&a, "2026-11-20T21:30:00Z", None)).await;
    let eb = make(&node, encounter(&b, "2026-11-21T08:30:00Z", None)).await;
    let document =
        |status: &str, kind: Value, subject: &str, date: &str, encounter: Option<&str>| {
            let mut doc = json!({
                "resourceType": "DocumentReference",
                "status": status,
                "type": kind,
                "subject": reference(subject),
                "date": date,
                "content": [{ "attachment": { "contentType": "text/plain", "data": "bm90ZQ==" } }],
            });
            if let Some(encounter) = encounter {
                doc["context"] = json!({ "encounter": [reference(encounter)] });
            }
            doc
        };
    let mut note = document(
        "current",
        coding(LOINC, "11506-3"),
        &a,
        "2026-11-20T21:56:00Z",
        Some(&ea),
    );
    note["category"] = json!([coding(LOCAL, "clinical-note")]);
    note["context"]["period"] =
        json!({ "start": "2026-11-20T21:30:00Z", "end": "2026-11-20T21:55:00Z" });
    let note = make(&node, note).await;
    // A discharge summary of a stay from the 15th to the 21st.
    let mut summary = document(
        "superseded",
        coding(LOINC, "18842-5"),
        &b,
        "2026-11-21T09:00:00Z",
        Some(&eb),
    );
    summary["category"] = json!([coding(LOCAL, "discharge")]);
    summary["context"]["period"] = json!({ "start": "2026-11-15", "end": "2026-11-21" });
    let summary = make(&node, summary).await;
    // 13:00 at UTC+2 is 11:00 UTC.
    let local = make(
        &node,
        document(
            "current",
            coding(LOCAL, "11506-3"),
            &a,
            "2026-11-21T13:00:00+02:00",
            None,
        ),
    )
    .await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        ("type", format!("{LOINC}|11506-3"), vec![&note]),
        ("type", "11506-3".into(), vec![&note, &local]),
        ("code", format!("{LOINC}|18842-5"), vec![&summary]),
        ("code", format!("{LOCAL}|11506-3"), vec![&local]),
        ("date", "2026-11-20".into(), vec![&note]),
        ("date", "2026-11-21".into(), vec![&summary, &local]),
        ("date", "ge2026-11-21T12:00:00Z".into(), vec![]),
        (
            "date",
            "lt2026-11-21T12:00:00Z".into(),
            vec![&note, &summary, &local],
        ),
        ("date", "gt2026-11-21T10:00:00Z".into(), vec![&local]),
        ("period", "2026-11-20".into(), vec![&note]),
        ("period", "lt2026-11-16".into(), vec![&summary]),
        ("period", "ge2026-11-20T22:00:00Z".into(), vec![&summary]),
        ("period", "2026-11".into(), vec![&note, &summary]),
        ("category", "clinical-note".into(), vec![&note]),
        ("category", format!("{LOCAL}|discharge"), vec![&summary]),
        ("category", format!("{LOINC}|discharge"), vec![]),
        ("encounter", ea.clone(), vec![&note]),
        ("encounter", id_of(&eb).into(), vec![&summary]),
        ("status", "current".into(), vec![&note, &local]),
        ("status", "superseded".into(), vec![&summary]),
        ("patient", a.clone(), vec![&note, &local]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "DocumentReference", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    node.stop().await;
}

// === Communication ===

async fn communication_sent_received_sender_recipient_and_status_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let b = format!("Patient/{}", clinic::register_patient(&node, "Haile").await);
    let ea = make(&node, encounter(&a, "2026-11-20T21:30:00Z", None)).await;
    let eb = make(&node, encounter(&b, "2026-11-21T07:30:00Z", None)).await;
    let message = |subject: &str, encounter: &str, sender: &str, sent: &str| {
        json!({
            "resourceType": "Communication",
            "status": "completed",
            "subject": reference(subject),
            "encounter": reference(encounter),
            "sender": reference(sender),
            "sent": sent,
            "payload": [{ "contentString": "ሰላም" }],
        })
    };
    let mut doctor_to_a = message(&a, &ea, clinic::CLINICIAN, "2026-11-20T21:35:00Z");
    doctor_to_a["category"] = json!([coding(COMMUNICATION_CATEGORY, "notification")]);
    doctor_to_a["recipient"] = json!([reference(&a)]);
    doctor_to_a["received"] = json!("2026-11-20T21:35:05Z");
    let doctor_to_a = make(&node, doctor_to_a).await;
    let mut a_replies = message(&a, &ea, &a, "2026-11-20T21:36:00Z");
    a_replies["recipient"] = json!([reference(clinic::CLINICIAN)]);
    let a_replies = make(&node, a_replies).await;
    // Still being interpreted: in progress.
    let mut doctor_to_b = message(&b, &eb, clinic::CLINICIAN, "2026-11-21T08:00:00Z");
    doctor_to_b["status"] = json!("in-progress");
    doctor_to_b["category"] = json!([coding(COMMUNICATION_CATEGORY, "instruction")]);
    doctor_to_b["recipient"] = json!([reference(&b), reference(clinic::INTERPRETER)]);
    doctor_to_b["received"] = json!("2026-11-21T08:05:00Z");
    let doctor_to_b = make(&node, doctor_to_b).await;

    let cases: Vec<(&str, String, Vec<&String>)> = vec![
        (
            "sender",
            clinic::CLINICIAN.into(),
            vec![&doctor_to_a, &doctor_to_b],
        ),
        ("sender", a.clone(), vec![&a_replies]),
        ("sender", clinic::INTERPRETER.into(), vec![]),
        ("encounter", ea.clone(), vec![&doctor_to_a, &a_replies]),
        ("encounter", id_of(&eb).into(), vec![&doctor_to_b]),
        ("sent", "2026-11-20".into(), vec![&doctor_to_a, &a_replies]),
        ("sent", "2026-11-20T21:35:00Z".into(), vec![&doctor_to_a]),
        (
            "sent",
            "gt2026-11-20T21:35:00Z".into(),
            vec![&a_replies, &doctor_to_b],
        ),
        ("sent", "le2026-11-20T21:35:00Z".into(), vec![&doctor_to_a]),
        ("sent", "lt2026-11-20T21:36:00Z".into(), vec![&doctor_to_a]),
        ("sent", "ge2026-11-21".into(), vec![&doctor_to_b]),
        ("patient", b.clone(), vec![&doctor_to_b]),
        ("received", "2026-11-20".into(), vec![&doctor_to_a]),
        ("received", "ge2026-11-21".into(), vec![&doctor_to_b]),
        ("recipient", a.clone(), vec![&doctor_to_a]),
        ("recipient", clinic::INTERPRETER.into(), vec![&doctor_to_b]),
        ("recipient", clinic::CLINICIAN.into(), vec![&a_replies]),
        ("status", "completed".into(), vec![&doctor_to_a, &a_replies]),
        ("status", "in-progress".into(), vec![&doctor_to_b]),
        ("category", "notification".into(), vec![&doctor_to_a]),
        (
            "category",
            format!("{COMMUNICATION_CATEGORY}|instruction"),
            vec![&doctor_to_b],
        ),
        ("category", "alert".into(), vec![]),
    ];
    for (name, value, expected) in cases {
        assert_eq!(
            found(&node, "Communication", &[(name, &value)]).await,
            set(&expected),
            "{name}={value}"
        );
    }
    assert_eq!(
        found(
            &node,
            "Communication",
            &[("encounter", &ea), ("sender", clinic::CLINICIAN)]
        )
        .await,
        set(&[&doctor_to_a])
    );
    let err = refused(&node, "Communication", &[("sender", "dr-amani")]).await;
    assert_eq!(expression(&err), "sender", "sender has many target types");
    node.stop().await;
}

// === Parameters every type shares ===

async fn identifier_matches_system_and_value_on_every_type(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = clinic::register_patient(&node, "Tesfay").await;
    for &(resource_type, _) in DATED {
        let identified = |identifier: Value, day| {
            let mut resource = dated(resource_type, &patient, day);
            resource["identifier"] = json!([identifier]);
            resource
        };
        let ours = make(
            &node,
            identified(
                json!({ "system": "urn:corridor:record", "value": "X-1" }),
                1,
            ),
        )
        .await;
        let theirs = make(
            &node,
            identified(json!({ "system": "urn:other:record", "value": "X-1" }), 2),
        )
        .await;
        let bare = make(&node, identified(json!({ "value": "X-1" }), 3)).await;
        make(&node, dated(resource_type, &patient, 4)).await;
        let cases: Vec<(&str, Vec<&String>)> = vec![
            ("urn:corridor:record|X-1", vec![&ours]),
            ("X-1", vec![&ours, &theirs, &bare]),
            ("|X-1", vec![&bare]),
            ("urn:other:record|", vec![&theirs]),
            ("urn:corridor:record|X-2", vec![]),
            ("X", vec![]),
        ];
        for (value, expected) in cases {
            assert_eq!(
                found(&node, resource_type, &[("identifier", value)]).await,
                set(&expected),
                "{resource_type}?identifier={value}"
            );
        }
    }
    node.stop().await;
}

/// `resource` as recorded during `encounter`, in the element its type
/// names the Encounter with.
fn during(mut resource: Value, encounter: &str) -> Value {
    let link = reference(encounter);
    match resource["resourceType"].as_str() {
        Some("MedicationStatement") => resource["context"] = link,
        Some("DocumentReference") => resource["context"] = json!({ "encounter": [link] }),
        Some("Claim" | "ExplanationOfBenefit") => {
            resource["item"] = json!([{
                "sequence": 1,
                "productOrService": coding(SNOMED, "185349003"),
                "encounter": [link],
            }]);
        }
        _ => resource["encounter"] = link,
    }
    resource
}

async fn encounter_and_subject_references_match_on_every_type(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = clinic::register_patient(&node, "Tesfay").await;
    let pa = format!("Patient/{a}");
    let first = make(&node, encounter(&pa, "2025-01-01T09:00:00Z", None)).await;
    let second = make(&node, encounter(&pa, "2025-01-02T09:00:00Z", None)).await;
    for resource_type in [
        "Observation",
        "Condition",
        "Communication",
        "Immunization",
        "AllergyIntolerance",
        "MedicationStatement",
        "DocumentReference",
        "Procedure",
        "DiagnosticReport",
        "MedicationRequest",
        "CarePlan",
        "ImagingStudy",
        "Claim",
        "ExplanationOfBenefit",
    ] {
        let in_first = make(&node, during(dated(resource_type, &a, 1), &first)).await;
        let in_second = make(&node, during(dated(resource_type, &a, 2), &second)).await;
        let outside = make(&node, dated(resource_type, &a, 3)).await;
        let cases: Vec<(String, Vec<&String>)> = vec![
            (first.clone(), vec![&in_first]),
            (id_of(&second).to_owned(), vec![&in_second]),
            (format!("{first},{second}"), vec![&in_first, &in_second]),
            ("Encounter/elsewhere".to_owned(), vec![]),
        ];
        for (value, expected) in cases {
            assert_eq!(
                found(&node, resource_type, &[("encounter", &value)]).await,
                set(&expected),
                "{resource_type}?encounter={value}"
            );
        }
        assert_eq!(
            found(&node, resource_type, &[("patient", &pa)]).await,
            set(&[&in_first, &in_second, &outside]),
            "{resource_type}?patient"
        );
    }
    // Types whose subject may be a Group as well as a Patient.
    for resource_type in [
        "Encounter",
        "Observation",
        "Condition",
        "Communication",
        "MedicationStatement",
        "DocumentReference",
        "Procedure",
        "DiagnosticReport",
        "MedicationRequest",
        "CarePlan",
        "Goal",
        "ImagingStudy",
    ] {
        make(&node, dated(resource_type, &a, 5)).await;
        let mut resource = dated(resource_type, &a, 4);
        resource["subject"] = reference("Group/household-3");
        let household = make(&node, resource).await;
        assert_eq!(
            found(&node, resource_type, &[("subject", "Group/household-3")]).await,
            set(&[&household]),
            "{resource_type}?subject=Group"
        );
        let patients = found(&node, resource_type, &[("subject", &pa)]).await;
        assert!(
            !patients.is_empty() && !patients.contains(&household),
            "{resource_type}?subject=Patient: {patients:?}"
        );
        assert_eq!(
            patients,
            found(&node, resource_type, &[("patient", &pa)]).await,
            "{resource_type}: subject=Patient/x and patient=x agree"
        );
        let err = refused(&node, resource_type, &[("patient", "Group/household-3")]).await;
        assert_eq!(expression(&err), "patient", "{resource_type}");
    }
    node.stop().await;
}

// === _include ===

async fn include_encounter_subject_adds_each_patient_once_from_identity(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = clinic::register_patient(&node, "Tesfay").await;
    let b = clinic::register_patient(&node, "Haile").await;
    let (pa, pb) = (format!("Patient/{a}"), format!("Patient/{b}"));
    let a1 = make(&node, encounter(&pa, "2026-01-05T09:00:00Z", None)).await;
    let a2 = make(&node, encounter(&pa, "2026-02-05T09:00:00Z", None)).await;
    let b1 = make(&node, encounter(&pb, "2026-03-05T09:00:00Z", None)).await;
    let group = make(
        &node,
        encounter("Group/family-7", "2026-04-05T09:00:00Z", None),
    )
    .await;

    let bundle = api::search(
        &node,
        "Encounter",
        &[("patient", &pa), ("_include", "Encounter:subject")],
    )
    .await;
    let mut matches = api::entries(&bundle, "match");
    matches.sort();
    assert_eq!(matches, set(&[&a1, &a2]));
    assert_eq!(
        api::entries(&bundle, "include"),
        set(&[&pa]),
        "the shared Patient is included once"
    );
    assert_eq!(bundle["total"], 2, "total counts matches, not includes");
    let patient = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["search"]["mode"] == "include")
        .expect("included entry");
    assert_eq!(patient["resource"]["resourceType"], "Patient");
    assert_eq!(
        patient["resource"]["name"][0]["family"], "Tesfay",
        "the Patient as the identity service holds it"
    );
    assert_eq!(patient["fullUrl"], pa.as_str());

    let everyone = api::search(&node, "Encounter", &[("_include", "Encounter:subject")]).await;
    let mut included = api::entries(&everyone, "include");
    included.sort();
    assert_eq!(
        included,
        set(&[&pa, &pb]),
        "each Patient once; a Group identity does not hold adds nothing"
    );
    let mut matches = api::entries(&everyone, "match");
    matches.sort();
    assert_eq!(matches, set(&[&a1, &a2, &b1, &group]));

    let typed = api::search(
        &node,
        "Encounter",
        &[("patient", &pb), ("_include", "Encounter:subject:Patient")],
    )
    .await;
    assert_eq!(api::entries(&typed, "include"), set(&[&pb]));
    let plain = api::search(&node, "Encounter", &[("patient", &pb)]).await;
    assert!(
        api::entries(&plain, "include").is_empty(),
        "nothing is included unless asked"
    );
    node.stop().await;
}

async fn include_follows_other_reference_parameters(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let a = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let ea = make(&node, encounter(&a, "2026-01-05T09:00:00Z", None)).await;
    let obs = make(
        &node,
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": coding(LOINC, "8867-4"),
            "subject": reference(&a),
            "encounter": reference(&ea),
        }),
    )
    .await;
    let bundle = api::search(
        &node,
        "Observation",
        &[
            ("_include", "Observation:encounter"),
            ("_include", "Observation:patient"),
        ],
    )
    .await;
    assert_eq!(api::entries(&bundle, "match"), [obs]);
    let mut included = api::entries(&bundle, "include");
    included.sort();
    assert_eq!(
        included,
        set(&[&a, &ea]),
        "the Encounter from this service, the Patient from identity"
    );
    let imm = make(
        &node,
        json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": coding(CVX, "140"),
            "patient": reference(&a),
            "occurrenceDateTime": "2025-10-15",
        }),
    )
    .await;
    let bundle = api::search(
        &node,
        "Immunization",
        &[("_include", "Immunization:patient")],
    )
    .await;
    assert_eq!(api::entries(&bundle, "match"), [imm]);
    assert_eq!(api::entries(&bundle, "include"), [a]);
    node.stop().await;
}

async fn unknown_or_unusable_includes_are_refused_naming_include(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    make(&node, encounter(&p, "2026-01-05T09:00:00Z", None)).await;
    for value in [
        "Encounter:practitioner",
        "Encounter:status",
        "Observation:subject",
        "Encounter:subject:Practitioner",
        "subject",
        "Encounter:subject:Patient:extra",
    ] {
        let err = refused(&node, "Encounter", &[("_include", value)]).await;
        assert_eq!(expression(&err), "_include", "_include={value}");
    }
    node.stop().await;
}

// === _lastUpdated, _count, paging, _sort on every type ===

async fn last_updated_separates_earlier_and_later_writes_of_every_type(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = clinic::register_patient(&node, "Tesfay").await;
    for &(resource_type, _) in DATED {
        let first = api::create(&node, &dated(resource_type, &patient, 1)).await;
        tokio::time::sleep(Duration::from_millis(15)).await;
        let second = api::create(&node, &dated(resource_type, &patient, 2)).await;
        let (f, s) = (
            format!("{resource_type}/{}", first.id),
            format!("{resource_type}/{}", second.id),
        );
        let boundary = &first.last_updated;
        let cases: Vec<(String, Vec<&String>)> = vec![
            (format!("gt{boundary}"), vec![&s]),
            (format!("le{boundary}"), vec![&f]),
            (boundary.clone(), vec![&f]),
            (format!("ge{}", second.last_updated), vec![&s]),
            ("ge2000-01-01".into(), vec![&f, &s]),
            ("lt2000-01-01".into(), vec![]),
        ];
        for (value, expected) in cases {
            assert_eq!(
                found(&node, resource_type, &[("_lastUpdated", &value)]).await,
                set(&expected),
                "{resource_type}?_lastUpdated={value}"
            );
        }
    }
    node.stop().await;
}

async fn count_pages_through_every_match_once_for_every_type(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let mut served: Vec<&str> = corridor_encounters::RESOURCES
        .iter()
        .map(|def| def.resource_type)
        .collect();
    let mut listed: Vec<&str> = DATED.iter().map(|(t, _)| *t).collect();
    served.sort_unstable();
    listed.sort_unstable();
    assert_eq!(listed, served, "every type the service owns is paged here");

    let a = clinic::register_patient(&node, "Tesfay").await;
    let b = clinic::register_patient(&node, "Haile").await;
    let pa = format!("Patient/{a}");
    for &(resource_type, _) in DATED {
        let mut created = Vec::new();
        for day in 1..=5 {
            created.push(make(&node, dated(resource_type, &a, day)).await);
        }
        // Another patient's: never on the pages.
        make(&node, dated(resource_type, &b, 6)).await;
        created.sort();

        let (seen, pages) = all_pages(&node, resource_type, &[("patient", &pa)], 2, 5).await;
        assert_eq!(pages, 3, "{resource_type}: 5 matches in pages of 2");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{resource_type}: no match twice");
        assert_eq!(unique, created, "{resource_type}: every match, once");

        let first = api::search(&node, resource_type, &[("patient", &pa), ("_count", "2")]).await;
        assert_eq!(
            api::entries(&first, "match").len(),
            2,
            "{resource_type}: _count=2"
        );

        let (_, pages) = all_pages(&node, resource_type, &[("patient", &pa)], 5, 5).await;
        assert_eq!(pages, 1, "{resource_type}: no next link when all fit");

        let counted = api::search(&node, resource_type, &[("_count", "0")]).await;
        assert_eq!(
            counted["total"], 6,
            "{resource_type}: _count=0 still counts"
        );
        assert!(
            api::entries(&counted, "match").is_empty(),
            "{resource_type}: _count=0 returns no entries"
        );
        assert_eq!(next_token(&counted), None);
    }
    node.stop().await;
}

async fn sort_orders_every_type_by_its_date_both_ways_across_pages(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = clinic::register_patient(&node, "Tesfay").await;
    for &(resource_type, date) in DATED {
        // Written in an order that is neither ascending nor descending, a
        // few milliseconds apart so that _lastUpdated tells them apart.
        let mut written = Vec::new();
        for day in [15, 3, 27] {
            written.push(make(&node, dated(resource_type, &patient, day)).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let [mid, early, late] = <[String; 3]>::try_from(written).expect("three");
        let ascending = vec![early.clone(), mid.clone(), late.clone()];
        let descending = vec![late.clone(), mid.clone(), early.clone()];
        assert_eq!(
            in_order(&node, resource_type, &[("_sort", date)]).await,
            ascending,
            "{resource_type}?_sort={date}"
        );
        let desc = format!("-{date}");
        assert_eq!(
            in_order(&node, resource_type, &[("_sort", &desc)]).await,
            descending,
            "{resource_type}?_sort={desc}"
        );
        let (paged, _) = all_pages(&node, resource_type, &[("_sort", desc.as_str())], 1, 3).await;
        assert_eq!(
            paged, descending,
            "{resource_type}?_sort={desc}&_count=1: pages keep the order"
        );
        assert_eq!(
            in_order(&node, resource_type, &[("_sort", "_lastUpdated")]).await,
            vec![mid.clone(), early.clone(), late.clone()],
            "{resource_type}?_sort=_lastUpdated"
        );
        assert_eq!(
            in_order(&node, resource_type, &[("_sort", "-_lastUpdated")]).await,
            vec![late, early, mid],
            "{resource_type}?_sort=-_lastUpdated"
        );
    }
    node.stop().await;
}

// === Writes and errors ===

async fn search_follows_updates_and_deletes(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    let planned = make(&node, encounter(&p, "2026-01-05T09:00:00Z", None)).await;
    let other = make(&node, encounter(&p, "2026-01-06T09:00:00Z", None)).await;
    assert_eq!(
        found(&node, "Encounter", &[("status", "in-progress")]).await,
        set(&[&planned, &other])
    );

    let id = id_of(&planned);
    let mut finished = encounter(&p, "2026-01-05T09:00:00Z", Some("2026-01-05T09:40:00Z"));
    finished["id"] = json!(id);
    api::try_update(&node, "Encounter", id, &finished)
        .await
        .expect("update");
    assert_eq!(
        found(&node, "Encounter", &[("status", "in-progress")]).await,
        set(&[&other]),
        "the old status no longer matches"
    );
    assert_eq!(
        found(&node, "Encounter", &[("status", "finished")]).await,
        set(&[&planned])
    );
    assert_eq!(
        found(&node, "Encounter", &[("date", "gt2026-01-05T12:00:00Z")]).await,
        set(&[&other]),
        "the new period replaced the open one"
    );

    node.encounters
        .client
        .clone()
        .delete(pb::DeleteRequest {
            resource_type: "Encounter".into(),
            id: id.to_owned(),
            if_match: String::new(),
        })
        .await
        .expect("delete");
    assert_eq!(
        found(&node, "Encounter", &[("status", "finished")]).await,
        set(&[])
    );
    assert_eq!(
        found(&node, "Encounter", &[("patient", &p)]).await,
        set(&[&other])
    );
    assert_eq!(api::count(&node, "Encounter").await, 1);
    node.stop().await;
}

async fn unknown_parameters_and_bad_values_are_refused_by_name(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let p = format!(
        "Patient/{}",
        clinic::register_patient(&node, "Tesfay").await
    );
    make(&node, encounter(&p, "2026-01-05T09:00:00Z", None)).await;
    for &(resource_type, _) in DATED {
        let err = refused(&node, resource_type, &[("colour", "red")]).await;
        assert_eq!(expression(&err), "colour", "{resource_type}?colour");
        assert_eq!(issue_code(&err), "not-supported", "{resource_type}?colour");
    }
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        // Parameters of other types are unknown here.
        ("Encounter", "code", "8867-4", "code"),
        ("Immunization", "subject", &p, "subject"),
        ("Communication", "code", "x", "code"),
        ("Encounter", "statu", "finished", "statu"),
        ("Encounter", "status:text", "finished", "status:text"),
        ("Encounter", "date", "ap2026", "date"),
        ("Observation", "date", "2026-13-01", "date"),
        ("Encounter", "_sort", "status", "_sort"),
        ("Encounter", "_count", "many", "_count"),
        ("Encounter", "_count", "-1", "_count"),
        ("Encounter", "_page_token", "not-a-token", "_page_token"),
    ];
    for (resource_type, name, value, expr) in cases {
        let err = refused(&node, resource_type, &[(name, value)]).await;
        assert_eq!(expression(&err), expr, "{resource_type}?{name}={value}");
    }
    // A token from one search is refused by another.
    for day in 1..=3 {
        make(&node, dated("Encounter", id_of(&p), day)).await;
    }
    let first = api::search(
        &node,
        "Encounter",
        &[("status", "finished"), ("_count", "1")],
    )
    .await;
    let token = next_token(&first).expect("a next page");
    let err = refused(
        &node,
        "Encounter",
        &[("status", "in-progress"), ("_page_token", &token)],
    )
    .await;
    assert_eq!(expression(&err), "_page_token");
    let err = refused(&node, "Patient", &[]).await;
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "Patient is identity's type, not searched here"
    );
    node.stop().await;
}

/// `_tag` with the author system finds what an organization wrote, on every
/// type; a client that sends another organization's author tag is
/// overruled, since the service stamps the writer itself.
async fn tag_finds_on_every_type_what_an_organization_wrote_and_cannot_be_forged(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let patient = clinic::register_patient(&node, "Tesfay").await;
    let author = corridor_encounters::access::AUTHOR_SYSTEM;
    let ours = format!("{author}|{}", corridor_tests::TEST_ORGANIZATION);
    let theirs = format!("{author}|Organization/someone-else");
    for &(resource_type, _) in DATED {
        let mut resource = dated(resource_type, &patient, 1);
        resource["meta"] =
            json!({"tag": [{"system": author, "code": "Organization/someone-else"}]});
        let created = api::create(&node, &resource).await;
        let id = format!("{resource_type}/{}", created.id);
        assert_eq!(
            found(&node, resource_type, &[("_tag", &ours)]).await,
            set(&[&id]),
            "{resource_type}?_tag={ours}"
        );
        assert!(
            found(&node, resource_type, &[("_tag", &theirs)])
                .await
                .is_empty(),
            "{resource_type}: the forged author tag was replaced"
        );
    }
    node.stop().await;
}

// === The rest of a hospital's record: Procedure, DiagnosticReport,
// MedicationRequest, CarePlan, Goal, ImagingStudy, Claim, ExplanationOfBenefit ===

const DIAGNOSTIC_SERVICE: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
const MEDICATION_REQUEST_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/medicationrequest-category";
const GOAL_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/goal-category";
const DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";

/// Check each `(parameter, value, expected matches)` of `resource_type`.
async fn expect_cases(node: &Node, resource_type: &str, cases: Vec<(&str, String, Vec<&String>)>) {
    for (name, value, expected) in cases {
        assert_eq!(
            found(node, resource_type, &[(name, &value)]).await,
            set(&expected),
            "{resource_type}?{name}={value}"
        );
    }
}

async fn two_patients(node: &Node) -> (String, String) {
    (
        format!("Patient/{}", clinic::register_patient(node, "Tesfay").await),
        format!("Patient/{}", clinic::register_patient(node, "Haile").await),
    )
}

async fn procedure_code_date_status_and_category_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (a, b) = two_patients(&node).await;
    let suture = make(
        &node,
        json!({
            "resourceType": "Procedure",
            "status": "completed",
            "category": coding(SNOMED, "387713003"),
            "code": coding(SNOMED, "18949003"),
            "subject": reference(&a),
            "performedDateTime": "2026-11-20T21:30:00Z",
        }),
    )
    .await;
    let physio = make(
        &node,
        json!({
            "resourceType": "Procedure",
            "status": "in-progress",
            "code": coding(LOCAL, "18949003"),
            "subject": reference(&b),
            "performedPeriod": { "start": "2025-01-01", "end": "2025-03-31" },
        }),
    )
    .await;
    expect_cases(
        &node,
        "Procedure",
        vec![
            ("code", format!("{SNOMED}|18949003"), vec![&suture]),
            ("code", "18949003".into(), vec![&suture, &physio]),
            ("date", "2026-11-20".into(), vec![&suture]),
            // eq: the searched range must contain the whole period.
            ("date", "2025".into(), vec![&physio]),
            ("date", "2025-02".into(), vec![]),
            ("date", "gt2025-12-31".into(), vec![&suture]),
            ("status", "completed".into(), vec![&suture]),
            ("status", "in-progress,stopped".into(), vec![&physio]),
            ("category", format!("{SNOMED}|387713003"), vec![&suture]),
            ("category", format!("{LOCAL}|387713003"), vec![]),
            ("patient", a.clone(), vec![&suture]),
            ("subject", b.clone(), vec![&physio]),
        ],
    )
    .await;
    node.stop().await;
}

async fn diagnostic_report_code_dates_status_category_and_result_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (a, _) = two_patients(&node).await;
    let pa = id_of(&a).to_owned();
    let hemoglobin = make(&node, dated("Observation", &pa, 3)).await;
    let other = make(&node, dated("Observation", &pa, 4)).await;
    let cbc = make(
        &node,
        json!({
            "resourceType": "DiagnosticReport",
            "status": "final",
            "category": [coding(DIAGNOSTIC_SERVICE, "LAB")],
            "code": coding(LOINC, "58410-2"),
            "subject": reference(&a),
            "effectiveDateTime": "2026-11-20T09:00:00Z",
            "issued": "2026-11-21T10:00:00Z",
            "result": [reference(&hemoglobin)],
        }),
    )
    .await;
    let chest = make(
        &node,
        json!({
            "resourceType": "DiagnosticReport",
            "status": "preliminary",
            "category": [coding(DIAGNOSTIC_SERVICE, "RAD")],
            "code": coding(LOCAL, "58410-2"),
            "subject": reference(&a),
            "effectivePeriod": { "start": "2025-05-01", "end": "2025-05-02" },
            "issued": "2025-05-03T08:00:00Z",
        }),
    )
    .await;
    expect_cases(
        &node,
        "DiagnosticReport",
        vec![
            ("code", format!("{LOINC}|58410-2"), vec![&cbc]),
            ("code", "58410-2".into(), vec![&cbc, &chest]),
            ("date", "2026-11-20".into(), vec![&cbc]),
            ("date", "2025-05".into(), vec![&chest]),
            ("issued", "2026-11-21".into(), vec![&cbc]),
            ("issued", "lt2026-01-01".into(), vec![&chest]),
            ("status", "final".into(), vec![&cbc]),
            ("status", "preliminary".into(), vec![&chest]),
            ("category", "LAB".into(), vec![&cbc]),
            (
                "category",
                format!("{DIAGNOSTIC_SERVICE}|RAD"),
                vec![&chest],
            ),
            ("result", hemoglobin.clone(), vec![&cbc]),
            ("result", other.clone(), vec![]),
        ],
    )
    .await;
    node.stop().await;
}

async fn medication_request_code_dates_status_intent_and_category_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (a, b) = two_patients(&node).await;
    let amoxicillin = make(
        &node,
        json!({
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "category": [coding(MEDICATION_REQUEST_CATEGORY, "outpatient")],
            "medicationCodeableConcept": coding(RXNORM, "308182"),
            "subject": reference(&a),
            "authoredOn": "2026-11-20",
        }),
    )
    .await;
    let proposal = make(
        &node,
        json!({
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "proposal",
            "medicationCodeableConcept": coding(LOCAL, "308182"),
            "subject": reference(&b),
            "authoredOn": "2025-02-10T12:00:00Z",
        }),
    )
    .await;
    expect_cases(
        &node,
        "MedicationRequest",
        vec![
            ("code", format!("{RXNORM}|308182"), vec![&amoxicillin]),
            ("code", "308182".into(), vec![&amoxicillin, &proposal]),
            ("authoredon", "2026-11-20".into(), vec![&amoxicillin]),
            ("authoredon", "le2025-12-31".into(), vec![&proposal]),
            ("date", "2025-02-10".into(), vec![&proposal]),
            ("status", "active".into(), vec![&amoxicillin]),
            ("intent", "proposal".into(), vec![&proposal]),
            ("intent", "plan".into(), vec![]),
            ("category", "outpatient".into(), vec![&amoxicillin]),
            ("patient", a.clone(), vec![&amoxicillin]),
            ("subject", b.clone(), vec![&proposal]),
        ],
    )
    .await;
    node.stop().await;
}

async fn care_plan_period_status_intent_category_and_activity_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (a, _) = two_patients(&node).await;
    let diabetes = make(
        &node,
        json!({
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "category": [coding(SNOMED, "698360004")],
            "subject": reference(&a),
            "period": { "start": "2026-11-01" },
            "activity": [{ "detail": { "status": "in-progress", "code": coding(SNOMED, "160670007") } }],
        }),
    )
    .await;
    let rehab = make(
        &node,
        json!({
            "resourceType": "CarePlan",
            "status": "completed",
            "intent": "order",
            "category": [coding(LOCAL, "698360004")],
            "subject": reference(&a),
            "period": { "start": "2025-01-01", "end": "2025-02-28" },
            "activity": [{ "detail": { "status": "completed", "code": coding(LOCAL, "160670007") } }],
        }),
    )
    .await;
    expect_cases(
        &node,
        "CarePlan",
        vec![
            ("date", "2025".into(), vec![&rehab]),
            ("date", "2025-02".into(), vec![]),
            ("date", "ge2026-11-01".into(), vec![&diabetes]),
            ("status", "active".into(), vec![&diabetes]),
            ("intent", "order".into(), vec![&rehab]),
            ("category", format!("{SNOMED}|698360004"), vec![&diabetes]),
            ("category", "698360004".into(), vec![&diabetes, &rehab]),
            ("activity-code", format!("{LOCAL}|160670007"), vec![&rehab]),
            ("activity-code", format!("{SNOMED}|999"), vec![]),
        ],
    )
    .await;
    node.stop().await;
}

async fn goal_lifecycle_dates_and_category_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (a, b) = two_patients(&node).await;
    let weight = make(
        &node,
        json!({
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "category": [coding(GOAL_CATEGORY, "dietary")],
            "description": { "text": "Lose 5 kg" },
            "subject": reference(&a),
            "startDate": "2026-11-01",
            "target": [{ "dueDate": "2027-05-01" }],
        }),
    )
    .await;
    let walking = make(
        &node,
        json!({
            "resourceType": "Goal",
            "lifecycleStatus": "completed",
            "category": [coding(GOAL_CATEGORY, "physiotherapy")],
            "description": { "text": "Walk without a cane" },
            "subject": reference(&b),
            "startDate": "2025-01-10",
            "target": [{ "dueDate": "2025-04-01" }],
        }),
    )
    .await;
    expect_cases(
        &node,
        "Goal",
        vec![
            ("lifecycle-status", "active".into(), vec![&weight]),
            (
                "lifecycle-status",
                "completed,cancelled".into(),
                vec![&walking],
            ),
            ("start-date", "2026-11-01".into(), vec![&weight]),
            ("start-date", "lt2026-01-01".into(), vec![&walking]),
            ("target-date", "2027-05".into(), vec![&weight]),
            ("target-date", "2025-04-01".into(), vec![&walking]),
            (
                "category",
                format!("{GOAL_CATEGORY}|dietary"),
                vec![&weight],
            ),
            ("category", "behavioral".into(), vec![]),
            ("patient", b.clone(), vec![&walking]),
            ("subject", a.clone(), vec![&weight]),
        ],
    )
    .await;
    node.stop().await;
}

async fn imaging_study_started_status_and_modality_match(backend: Backend) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (a, _) = two_patients(&node).await;
    let series = |uid: &str, system: &str, modality: &str| json!([{ "uid": uid, "modality": { "system": system, "code": modality } }]);
    let ct = make(
        &node,
        json!({
            "resourceType": "ImagingStudy",
            "status": "available",
            "subject": reference(&a),
            "started": "2026-11-20T10:00:00Z",
            "series": series("2.25.1", DICOM, "CT"),
        }),
    )
    .await;
    let mr = make(
        &node,
        json!({
            "resourceType": "ImagingStudy",
            "status": "registered",
            "subject": reference(&a),
            "started": "2025-06-01T08:00:00Z",
            "series": series("2.25.2", LOCAL, "CT"),
        }),
    )
    .await;
    expect_cases(
        &node,
        "ImagingStudy",
        vec![
            ("started", "2026-11-20".into(), vec![&ct]),
            ("date", "lt2026-01-01".into(), vec![&mr]),
            ("status", "available".into(), vec![&ct]),
            ("status", "registered".into(), vec![&mr]),
            ("modality", format!("{DICOM}|CT"), vec![&ct]),
            ("modality", "CT".into(), vec![&ct, &mr]),
            ("modality", format!("{DICOM}|MR"), vec![]),
        ],
    )
    .await;
    node.stop().await;
}

async fn claim_and_explanation_of_benefit_dates_status_use_provider_and_claim_match(
    backend: Backend,
) {
    let Some(node) = Node::spawn(backend).await else {
        return;
    };
    let (a, b) = two_patients(&node).await;
    let hospital = "Organization/clinic-1";
    let doctor = "Practitioner/dr-2";
    let first = make(
        &node,
        clinic::claim_like("Claim", &a, "2026-11-20", hospital),
    )
    .await;
    let mut preauth = clinic::claim_like("Claim", &b, "2025-03-05T10:00:00Z", doctor);
    preauth["use"] = json!("preauthorization");
    preauth["status"] = json!("draft");
    let preauth = make(&node, preauth).await;
    expect_cases(
        &node,
        "Claim",
        vec![
            ("created", "2026-11-20".into(), vec![&first]),
            ("date", "lt2026-01-01".into(), vec![&preauth]),
            ("status", "active".into(), vec![&first]),
            ("use", "preauthorization".into(), vec![&preauth]),
            ("use", "predetermination".into(), vec![]),
            ("provider", hospital.into(), vec![&first]),
            ("provider", doctor.into(), vec![&preauth]),
            ("patient", b.clone(), vec![&preauth]),
        ],
    )
    .await;

    let mut explained = clinic::claim_like("ExplanationOfBenefit", &a, "2026-11-22", hospital);
    explained["claim"] = reference(&first);
    let explained = make(&node, explained).await;
    let mut cancelled = clinic::claim_like("ExplanationOfBenefit", &b, "2025-03-06", doctor);
    cancelled["status"] = json!("cancelled");
    cancelled["claim"] = reference(&preauth);
    let cancelled = make(&node, cancelled).await;
    expect_cases(
        &node,
        "ExplanationOfBenefit",
        vec![
            ("created", "2026-11-22".into(), vec![&explained]),
            ("date", "2025".into(), vec![&cancelled]),
            ("status", "cancelled".into(), vec![&cancelled]),
            ("claim", first.clone(), vec![&explained]),
            ("claim", id_of(&preauth).into(), vec![&cancelled]),
            ("provider", doctor.into(), vec![&cancelled]),
            ("patient", a.clone(), vec![&explained]),
        ],
    )
    .await;
    node.stop().await;
}
