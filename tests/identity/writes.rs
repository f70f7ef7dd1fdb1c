//! Versioned writes: ids and meta, history, vread, tombstones, If-Match,
//! conditional create under a race, and idempotency keys.

use std::collections::HashSet;

use corridor_proto::identity::v1 as pb;
use corridor_tests::{Backend, IdentityApp, expression, for_each_backend, issue_code};
use serde_json::json;
use tonic::Code;

use crate::api::{self, count_all, create, create_if_none_exist, create_with_key, read, update};

for_each_backend!(
    create_assigns_id_and_version_and_ignores_client_meta,
    update_makes_a_new_version_and_vread_returns_old_ones,
    stale_if_match_is_rejected_and_nothing_is_written,
    concurrent_updates_without_if_match_each_get_their_own_version,
    delete_writes_a_tombstone_that_read_reports_and_history_keeps,
    update_of_an_unknown_id_is_not_found_and_creates_nothing,
    update_body_with_another_id_is_refused,
    fifty_concurrent_conditional_creates_make_exactly_one_patient,
    conditional_create_matching_two_resources_is_refused,
    retried_create_with_the_same_idempotency_key_makes_one_patient,
    concurrent_retries_with_one_idempotency_key_make_one_patient,
    idempotency_key_reused_for_another_request_is_refused,
    deleting_twice_with_idempotency_keys_writes_one_tombstone,
);

async fn create_assigns_id_and_version_and_ignores_client_meta(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let sent = json!({
        "resourceType": "Patient",
        "id": "client-chosen",
        "meta": {"versionId": "99", "lastUpdated": "2000-01-01T00:00:00Z", "tag": [{"system": "urn:t", "code": "x"}]},
        "name": [{"family": "Tesfaye"}]
    });
    let created = create(&app, &sent).await;
    assert_ne!(created.id, "client-chosen");
    assert_eq!(created.version_id, "1");
    let body = api::json(&created);
    assert_eq!(body["id"], created.id.as_str());
    assert_eq!(body["meta"]["versionId"], "1");
    assert_eq!(body["meta"]["lastUpdated"], created.last_updated.as_str());
    assert_eq!(
        body["meta"]["tag"][0]["code"], "x",
        "client meta other than versionId/lastUpdated is kept"
    );
    let again = read(&app, "Patient", &created.id).await.expect("read");
    assert_eq!(again.json, created.json);
    app.stop().await;
}

async fn update_makes_a_new_version_and_vread_returns_old_ones(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let v1 = create(
        &app,
        &json!({"resourceType": "Patient", "gender": "female"}),
    )
    .await;
    let v2 = update(
        &app,
        "Patient",
        &v1.id,
        &json!({"resourceType": "Patient", "gender": "male"}),
        "1",
    )
    .await
    .expect("update");
    assert_eq!(v2.version_id, "2");
    assert_eq!(
        api::json(&read(&app, "Patient", &v1.id).await.unwrap())["gender"],
        "male"
    );
    let old = app
        .client
        .clone()
        .vread(pb::VreadRequest {
            resource_type: "Patient".into(),
            id: v1.id.clone(),
            version_id: "1".into(),
        })
        .await
        .expect("vread")
        .into_inner()
        .resource
        .unwrap();
    assert_eq!(api::json(&old)["gender"], "female");
    let missing = app
        .client
        .clone()
        .vread(pb::VreadRequest {
            resource_type: "Patient".into(),
            id: v1.id.clone(),
            version_id: "3".into(),
        })
        .await
        .expect_err("no version 3");
    assert_eq!(missing.code(), Code::NotFound);
    let history = api::history(&app, "Patient", &v1.id).await;
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 2);
    let versions: Vec<_> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].clone())
        .collect();
    assert_eq!(versions, [json!("2"), json!("1")], "newest first");
    assert_eq!(history["entry"][1]["request"]["method"], "POST");
    assert_eq!(history["entry"][0]["request"]["method"], "PUT");
    app.stop().await;
}

async fn stale_if_match_is_rejected_and_nothing_is_written(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let v1 = create(
        &app,
        &json!({"resourceType": "Patient", "gender": "female"}),
    )
    .await;
    update(
        &app,
        "Patient",
        &v1.id,
        &json!({"resourceType": "Patient", "gender": "male"}),
        "W/\"1\"",
    )
    .await
    .expect("fresh If-Match");
    let stale = update(
        &app,
        "Patient",
        &v1.id,
        &json!({"resourceType": "Patient", "gender": "other"}),
        "W/\"1\"",
    )
    .await
    .expect_err("stale If-Match must fail");
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert_eq!(issue_code(&stale), "conflict");
    assert_eq!(expression(&stale), "If-Match");
    let now = read(&app, "Patient", &v1.id).await.unwrap();
    assert_eq!(now.version_id, "2");
    assert_eq!(api::json(&now)["gender"], "male");
    let bad = update(
        &app,
        "Patient",
        &v1.id,
        &json!({"resourceType": "Patient"}),
        "latest",
    )
    .await
    .expect_err("not a version");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(expression(&bad), "If-Match");
    app.stop().await;
}

async fn concurrent_updates_without_if_match_each_get_their_own_version(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let v1 = create(&app, &json!({"resourceType": "Patient"})).await;
    let writers = 20;
    let tasks: Vec<_> = (0..writers)
        .map(|n| {
            let client = app.client.clone();
            let id = v1.id.clone();
            tokio::spawn(async move {
                let request = pb::UpdateRequest {
                    resource_type: "Patient".into(),
                    id,
                    resource: json!({"resourceType": "Patient", "identifier": [{"system": "urn:writer", "value": n.to_string()}]}).to_string(),
                    if_match: String::new(),
                };
                client.clone().update(request).await.map(|r| r.into_inner().resource.unwrap().version_id)
            })
        })
        .collect();
    let mut versions = HashSet::new();
    for task in tasks {
        versions.insert(task.await.unwrap().expect("update succeeds"));
    }
    assert_eq!(
        versions.len(),
        writers,
        "every update got a distinct version: none overwrote another"
    );
    assert_eq!(
        read(&app, "Patient", &v1.id).await.unwrap().version_id,
        (writers + 1).to_string()
    );
    app.stop().await;
}

async fn delete_writes_a_tombstone_that_read_reports_and_history_keeps(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let v1 = create(
        &app,
        &json!({"resourceType": "Patient", "name": [{"family": "Gone"}]}),
    )
    .await;
    let deleted = app
        .client
        .clone()
        .delete(pb::DeleteRequest {
            resource_type: "Patient".into(),
            id: v1.id.clone(),
            if_match: String::new(),
        })
        .await
        .expect("delete")
        .into_inner()
        .resource
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.version_id, "2");
    let err = read(&app, "Patient", &v1.id).await.expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(issue_code(&err), "deleted");
    assert_eq!(
        api::search(&app, "Patient", &[("family", "gone")]).await["total"],
        0,
        "deleted resources leave search"
    );
    let history = api::history(&app, "Patient", &v1.id).await;
    assert_eq!(history["entry"][0]["request"]["method"], "DELETE");
    assert!(history["entry"][0].get("resource").is_none());
    let unknown = read(&app, "Patient", "no-such-id")
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(issue_code(&unknown), "not-found");
    app.stop().await;
}

async fn update_of_an_unknown_id_is_not_found_and_creates_nothing(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let err = update(
        &app,
        "Patient",
        "nobody",
        &json!({"resourceType": "Patient"}),
        "",
    )
    .await
    .expect_err("unknown id");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(count_all(&app).await, 0);
    app.stop().await;
}

async fn update_body_with_another_id_is_refused(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let v1 = create(&app, &json!({"resourceType": "Patient"})).await;
    let err = update(
        &app,
        "Patient",
        &v1.id,
        &json!({"resourceType": "Patient", "id": "other"}),
        "",
    )
    .await
    .expect_err("id mismatch");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "Patient.id");
    let wrong_type = update(
        &app,
        "Patient",
        &v1.id,
        &json!({"resourceType": "Organization"}),
        "",
    )
    .await
    .expect_err("type mismatch");
    assert_eq!(wrong_type.code(), Code::InvalidArgument);
    assert_eq!(expression(&wrong_type), "resourceType");
    assert_eq!(read(&app, "Patient", &v1.id).await.unwrap().version_id, "1");
    app.stop().await;
}

async fn fifty_concurrent_conditional_creates_make_exactly_one_patient(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let patient = json!({"resourceType": "Patient", "identifier": [{"system": "urn:unhcr:case", "value": "ETH-2024-0042"}]});
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = app.client.clone();
            let body = patient.to_string();
            tokio::spawn(async move {
                let request = pb::CreateRequest {
                    resource: body,
                    if_none_exist: "identifier=urn:unhcr:case|ETH-2024-0042".into(),
                };
                client.clone().create(request).await.map(|r| r.into_inner())
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let response = task.await.unwrap().expect("conditional create succeeds");
        ids.insert(response.resource.unwrap().id);
        created += usize::from(response.created);
    }
    assert_eq!(created, 1, "exactly one request created the patient");
    assert_eq!(ids.len(), 1, "every request got the same patient");
    assert_eq!(
        api::search(
            &app,
            "Patient",
            &[("identifier", "urn:unhcr:case|ETH-2024-0042")]
        )
        .await["total"],
        1
    );
    app.stop().await;
}

async fn conditional_create_matching_two_resources_is_refused(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    for _ in 0..2 {
        create(
            &app,
            &json!({"resourceType": "Patient", "name": [{"family": "Twin"}]}),
        )
        .await;
    }
    let err = create_if_none_exist(&app, &json!({"resourceType": "Patient"}), "family=Twin")
        .await
        .expect_err("two matches");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(issue_code(&err), "multiple-matches");
    let bad = create_if_none_exist(&app, &json!({"resourceType": "Patient"}), "nonsense=1")
        .await
        .expect_err("bad condition");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        expression(&bad).starts_with("If-None-Exist"),
        "{}",
        expression(&bad)
    );
    assert_eq!(count_all(&app).await, 2);
    app.stop().await;
}

async fn retried_create_with_the_same_idempotency_key_makes_one_patient(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Retry"}]});
    let (first, first_replayed) = create_with_key(&app, &patient, "field-visit-7f3a")
        .await
        .expect("first");
    let (second, second_replayed) = create_with_key(&app, &patient, "field-visit-7f3a")
        .await
        .expect("retry");
    assert!(!first_replayed);
    assert!(second_replayed, "the retry says it replayed");
    assert_eq!(
        first.resource, second.resource,
        "the retry returns the first result"
    );
    assert!(second.created, "the replay repeats the first answer");
    assert_eq!(
        api::search(&app, "Patient", &[("family", "retry")]).await["total"],
        1
    );
    app.stop().await;
}

async fn concurrent_retries_with_one_idempotency_key_make_one_patient(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Flaky"}]});
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let client = app.client.clone();
            let body = patient.to_string();
            tokio::spawn(async move {
                let mut request = tonic::Request::new(pb::CreateRequest {
                    resource: body,
                    if_none_exist: String::new(),
                });
                request
                    .metadata_mut()
                    .insert("idempotency-key", "bad-wifi-retry".parse().unwrap());
                client
                    .clone()
                    .create(request)
                    .await
                    .map(|r| r.into_inner().resource.unwrap().id)
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap().expect("create succeeds"));
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        api::search(&app, "Patient", &[("family", "flaky")]).await["total"],
        1
    );
    app.stop().await;
}

async fn idempotency_key_reused_for_another_request_is_refused(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    create_with_key(
        &app,
        &json!({"resourceType": "Patient", "gender": "male"}),
        "k-1",
    )
    .await
    .expect("first");
    let err = create_with_key(
        &app,
        &json!({"resourceType": "Patient", "gender": "female"}),
        "k-1",
    )
    .await
    .expect_err("different body");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "idempotency-key");
    assert_eq!(count_all(&app).await, 1);
    let bad_key = create_with_key(&app, &json!({"resourceType": "Patient"}), &"x".repeat(300))
        .await
        .expect_err("too long");
    assert_eq!(bad_key.code(), Code::InvalidArgument);
    assert_eq!(count_all(&app).await, 1);
    app.stop().await;
}

async fn deleting_twice_with_idempotency_keys_writes_one_tombstone(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let v1 = create(&app, &json!({"resourceType": "Patient"})).await;
    let delete = |key: &'static str| {
        let mut client = app.client.clone();
        let id = v1.id.clone();
        async move {
            let mut request = tonic::Request::new(pb::DeleteRequest {
                resource_type: "Patient".into(),
                id,
                if_match: String::new(),
            });
            request
                .metadata_mut()
                .insert("idempotency-key", key.parse().unwrap());
            client
                .delete(request)
                .await
                .map(|r| r.into_inner().resource.unwrap().version_id)
        }
    };
    assert_eq!(delete("del-1").await.expect("first delete"), "2");
    assert_eq!(
        delete("del-2").await.expect("deleting a deleted resource"),
        "2",
        "no second tombstone"
    );
    assert_eq!(
        delete("del-2").await.expect("retry of the second delete"),
        "2"
    );
    assert_eq!(
        delete("del-1").await.expect("retry of the first delete"),
        "2"
    );
    app.stop().await;
}
