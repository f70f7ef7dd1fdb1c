//! Bad input: each is refused with INVALID_ARGUMENT and an OperationOutcome
//! that names what is wrong, and nothing is stored.

use corridor_tests::{Backend, IdentityApp, expression, for_each_backend, issue_code};
use tonic::Code;

use crate::api::{count_all, try_create};

for_each_backend!(
    malformed_json_is_refused_and_nothing_stored,
    wrong_or_missing_resource_type_is_refused_naming_resource_type,
    invalid_date_is_refused_naming_the_element,
    invalid_code_is_refused_naming_the_element,
    unknown_elements_are_refused_naming_their_path,
    empty_elements_are_refused,
    body_over_the_size_limit_is_refused,
    pathological_nesting_is_refused,
);

/// Send `body`, expect INVALID_ARGUMENT with `code` at `expr` (None: no
/// location), and check that nothing was stored.
async fn refused(app: &IdentityApp, body: &str, code: &str, expr: Option<&str>) {
    let err = try_create(app, body)
        .await
        .expect_err("bad input must be refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{body:.80}: {err:?}");
    assert_eq!(issue_code(&err), code, "{body:.80}");
    if let Some(expr) = expr {
        assert_eq!(expression(&err), expr, "{body:.80}");
    }
    assert_eq!(
        count_all(app).await,
        0,
        "nothing is stored after {body:.80}"
    );
}

async fn malformed_json_is_refused_and_nothing_stored(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    refused(
        &app,
        r#"{"resourceType": "Patient", "name": [}"#,
        "structure",
        None,
    )
    .await;
    refused(&app, "[]", "structure", None).await;
    refused(&app, "", "structure", None).await;
    app.stop().await;
}

async fn wrong_or_missing_resource_type_is_refused_naming_resource_type(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    refused(
        &app,
        r#"{"resourceType": "Observation", "status": "final", "code": {"text": "x"}}"#,
        "not-supported",
        Some("resourceType"),
    )
    .await;
    refused(
        &app,
        r#"{"resourceType": "Patien"}"#,
        "not-supported",
        Some("resourceType"),
    )
    .await;
    refused(
        &app,
        r#"{"name": [{"family": "X"}]}"#,
        "required",
        Some("resourceType"),
    )
    .await;
    refused(
        &app,
        r#"{"resourceType": 7}"#,
        "structure",
        Some("resourceType"),
    )
    .await;
    app.stop().await;
}

async fn invalid_date_is_refused_naming_the_element(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    refused(
        &app,
        r#"{"resourceType": "Patient", "birthDate": "1990-02-30"}"#,
        "value",
        Some("Patient.birthDate"),
    )
    .await;
    refused(
        &app,
        r#"{"resourceType": "Patient", "birthDate": "01/01/1990"}"#,
        "value",
        Some("Patient.birthDate"),
    )
    .await;
    app.stop().await;
}

async fn invalid_code_is_refused_naming_the_element(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    refused(
        &app,
        r#"{"resourceType": "Patient", "gender": "M"}"#,
        "value",
        Some("Patient.gender"),
    )
    .await;
    refused(
        &app,
        r#"{"resourceType": "Patient", "telecom": [{"system": "pigeon", "value": "x"}]}"#,
        "value",
        Some("Patient.telecom[0].system"),
    )
    .await;
    app.stop().await;
}

async fn unknown_elements_are_refused_naming_their_path(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    refused(
        &app,
        r#"{"resourceType": "Patient", "nickname": "Mo"}"#,
        "structure",
        Some("Patient.nickname"),
    )
    .await;
    refused(
        &app,
        r#"{"resourceType": "Patient", "name": [{"family": "X", "surname": "Y"}]}"#,
        "structure",
        Some("Patient.name[0].surname"),
    )
    .await;
    // deceased[x] is a choice type; a type it does not allow is unknown too.
    refused(
        &app,
        r#"{"resourceType": "Patient", "deceasedString": "yes"}"#,
        "structure",
        Some("Patient.deceasedString"),
    )
    .await;
    app.stop().await;
}

async fn empty_elements_are_refused(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    refused(
        &app,
        r#"{"resourceType": "Patient", "name": []}"#,
        "invalid",
        Some("Patient.name"),
    )
    .await;
    refused(
        &app,
        r#"{"resourceType": "Patient", "address": [{}]}"#,
        "invalid",
        Some("Patient.address[0]"),
    )
    .await;
    app.stop().await;
}

async fn body_over_the_size_limit_is_refused(backend: Backend) {
    let Some(app) = IdentityApp::spawn_with(backend, |c| c.limits.max_bytes = 2048).await else {
        return;
    };
    let note = "x".repeat(4096);
    let body = format!(r#"{{"resourceType": "Patient", "name": [{{"text": "{note}"}}]}}"#);
    refused(&app, &body, "too-long", None).await;
    let fits = r#"{"resourceType": "Patient", "name": [{"text": "short"}]}"#;
    try_create(&app, fits)
        .await
        .expect("a body under the limit is accepted");
    app.stop().await;
}

async fn pathological_nesting_is_refused(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let depth = 200;
    let mut ext = r#"{"url": "urn:x", "valueString": "leaf"}"#.to_owned();
    for _ in 0..depth {
        ext = format!(r#"{{"url": "urn:x", "extension": [{ext}]}}"#);
    }
    let body = format!(r#"{{"resourceType": "Patient", "extension": [{ext}]}}"#);
    refused(&app, &body, "too-costly", None).await;
    let arrays = format!(
        r#"{{"resourceType": "Patient", "x": {}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    refused(&app, &arrays, "too-costly", None).await;
    app.stop().await;
}
