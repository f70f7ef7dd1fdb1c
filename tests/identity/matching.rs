//! Patient/$match and the master patient index over gRPC: matching across
//! scripts and name orders, contradictions, people's decisions that
//! re-matching never overrides, merge and unmerge, and the review queue.

use std::time::Duration;

use corridor_proto::identity::v1 as pb;
use corridor_tests::{Backend, IdentityApp, expression, for_each_backend};
use serde_json::{Value, json};
use tonic::Code;

for_each_backend!(
    a_patient_written_in_arabic_script_is_found_by_its_latin_romanization,
    a_record_with_given_and_family_names_swapped_matches,
    namesakes_born_the_same_year_with_different_passports_are_certainly_not,
    each_candidate_explains_which_fields_agreed_and_their_weights,
    only_certain_matches_leaves_out_the_rest,
    a_not_a_match_decision_survives_re_matching,
    a_new_look_alike_lands_in_the_review_queue_and_a_decision_clears_it,
    merge_replaces_the_source_and_resolve_follows_it,
    unmerge_restores_both_patients,
    link_and_unlink_write_both_records_and_remember_the_decision,
    match_of_an_empty_patient_is_refused_with_an_outcome,
    match_of_another_resource_type_is_refused_with_an_outcome,
    decisions_need_someone_who_decided,
    a_duplicate_with_a_very_common_name_is_found_by_what_it_rarely_shares,
);

fn patient(given: &str, family: &str, birth: &str, extra: Value) -> Value {
    let mut p = json!({
        "resourceType": "Patient",
        "name": [{"given": [given], "family": family}],
        "birthDate": birth,
        "gender": "male",
    });
    if let (Value::Object(p), Value::Object(extra)) = (&mut p, extra) {
        p.extend(extra);
    }
    p
}

/// The Match answer: (id, grade, entry) per candidate.
async fn r#match(
    app: &IdentityApp,
    query: &Value,
    only_certain: bool,
) -> Vec<(String, String, Value)> {
    let bundle = app
        .client
        .clone()
        .r#match(pb::MatchRequest {
            resource: query.to_string(),
            count: 0,
            only_certain_matches: only_certain,
        })
        .await
        .expect("match")
        .into_inner()
        .bundle
        .expect("bundle");
    let bundle: Value = serde_json::from_str(&bundle.json).unwrap();
    assert_eq!(bundle["type"], "searchset");
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let grade = e["search"]["extension"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["url"] == "http://hl7.org/fhir/StructureDefinition/match-grade")
                .expect("match-grade extension")["valueCode"]
                .as_str()
                .unwrap()
                .to_owned();
            (e["resource"]["id"].as_str().unwrap().to_owned(), grade, e)
        })
        .collect()
}

fn grade_of(found: &[(String, String, Value)], id: &str) -> Option<String> {
    found
        .iter()
        .find(|(i, _, _)| i == id)
        .map(|(_, g, _)| g.clone())
}

async fn a_patient_written_in_arabic_script_is_found_by_its_latin_romanization(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let arabic = app
        .register(&patient(
            "محمد",
            "الحسن",
            "1990-01-01",
            json!({"address": [{"country": "SY"}]}),
        ))
        .await;
    app.register(&patient("Omar", "Khalil", "1990-01-01", json!({})))
        .await;
    let found = r#match(
        &app,
        &patient(
            "Mohammed",
            "Al-Hassan",
            "1990",
            json!({"address": [{"country": "SY"}]}),
        ),
        false,
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, arabic);
    assert!(["possible", "probable", "certain"].contains(&found[0].1.as_str()));
    // And the other way round, with another romanization.
    let found = r#match(
        &app,
        &patient("Muhammad", "Alhasan", "1990-01-01", json!({})),
        false,
    )
    .await;
    assert!(grade_of(&found, &arabic).is_some(), "{found:?}");
    app.stop().await;
}

async fn a_record_with_given_and_family_names_swapped_matches(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let id = app
        .register(&patient("Tesfaye", "Gebremedhin", "1988-03-12", json!({})))
        .await;
    let found = r#match(
        &app,
        &patient("Gebremedhin", "Tesfaye", "1988-03-12", json!({})),
        false,
    )
    .await;
    assert_eq!(
        grade_of(&found, &id).as_deref(),
        Some("certain"),
        "{found:?}"
    );
    app.stop().await;
}

async fn namesakes_born_the_same_year_with_different_passports_are_certainly_not(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let passport = |n: &str| json!({"identifier": [{"system": "http://hl7.org/fhir/sid/passport-SYR", "value": n}]});
    let first = app
        .register(&patient("Ahmed", "Ali", "1990-01-01", passport("N1234567")))
        .await;
    let found = r#match(
        &app,
        &patient("Ahmed", "Ali", "1990", passport("N7654321")),
        false,
    )
    .await;
    assert_eq!(
        grade_of(&found, &first).as_deref(),
        Some("certainly-not"),
        "{found:?}"
    );
    // The same passport, by contrast, is near-certain.
    let found = r#match(
        &app,
        &patient("Ahmad", "Aly", "1991", passport("N1234567")),
        false,
    )
    .await;
    assert_eq!(
        grade_of(&found, &first).as_deref(),
        Some("certain"),
        "{found:?}"
    );
    app.stop().await;
}

async fn each_candidate_explains_which_fields_agreed_and_their_weights(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    app.register(&patient(
        "Yusuf",
        "Haidari",
        "1995-06-14",
        json!({"telecom": [{"system": "phone", "value": "+93 70 123 4567"}]}),
    ))
    .await;
    let found = r#match(
        &app,
        &patient(
            "Yousef",
            "Heidari",
            "1995-06-14",
            json!({"telecom": [{"system": "phone", "value": "0093701234567"}]}),
        ),
        false,
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    let search = &found[0].2["search"];
    let score = search["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    let evidence = search["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["url"] == "https://corridor.health/fhir/StructureDefinition/match-evidence")
        .expect("evidence extension");
    let comparisons: Vec<(String, String, f64)> = evidence["extension"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["url"] == "comparison")
        .map(|c| {
            let part = |name: &str| {
                c["extension"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["url"] == name)
                    .cloned()
                    .unwrap()
            };
            (
                part("field")["valueCode"].as_str().unwrap().to_owned(),
                part("level")["valueCode"].as_str().unwrap().to_owned(),
                part("weight")["valueDecimal"].as_f64().unwrap(),
            )
        })
        .collect();
    let level = |field: &str| {
        comparisons
            .iter()
            .find(|(f, _, _)| f == field)
            .unwrap_or_else(|| panic!("no {field} in {comparisons:?}"))
    };
    assert_eq!(level("birthdate").1, "exact");
    assert_eq!(level("phone").1, "agree");
    assert_eq!(level("given").1, "variant");
    assert!(level("phone").2 > 0.0 && level("birthdate").2 > 0.0);
    let total = evidence["extension"][0]["valueDecimal"].as_f64().unwrap();
    let sum: f64 = comparisons.iter().map(|c| c.2).sum();
    assert!((total - sum).abs() < 0.01, "total {total} is the sum {sum}");
    app.stop().await;
}

async fn only_certain_matches_leaves_out_the_rest(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let exact = app
        .register(&patient("Amina", "Yusuf", "1979-02-03", json!({})))
        .await;
    let vague = app
        .register(&patient("Amina", "Yousuf", "1979", json!({})))
        .await;
    let query = patient("Amina", "Yusuf", "1979-02-03", json!({}));
    let all = r#match(&app, &query, false).await;
    assert!(grade_of(&all, &vague).is_some(), "{all:?}");
    let certain = r#match(&app, &query, true).await;
    assert_eq!(certain.len(), 1, "{certain:?}");
    assert_eq!(certain[0].0, exact);
    app.stop().await;
}

async fn decide(
    app: &IdentityApp,
    a: &str,
    b: &str,
    decision: pb::Decision,
) -> Result<pb::Review, tonic::Status> {
    app.client
        .clone()
        .decide_review(pb::DecideReviewRequest {
            patient_id: a.to_owned(),
            candidate_id: b.to_owned(),
            decision: decision as i32,
            decided_by: "Practitioner/case-manager-1".to_owned(),
            reason: "checked the documents".to_owned(),
        })
        .await
        .map(|r| r.into_inner().review.expect("review"))
}

async fn reviews(app: &IdentityApp, status: &str) -> Vec<pb::Review> {
    app.client
        .clone()
        .list_reviews(pb::ListReviewsRequest {
            status: status.to_owned(),
            count: 0,
            page_token: String::new(),
        })
        .await
        .expect("list reviews")
        .into_inner()
        .reviews
}

/// The pending reviews, once the queue has caught up with `want` of them.
async fn pending(app: &IdentityApp, want: usize) -> Vec<pb::Review> {
    for _ in 0..100 {
        let found = reviews(app, "pending").await;
        if found.len() >= want {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reviews(app, "pending").await
}

fn pair_is(review: &pb::Review, a: &str, b: &str) -> bool {
    (review.patient_id == a && review.candidate_id == b)
        || (review.patient_id == b && review.candidate_id == a)
}

async fn a_new_look_alike_lands_in_the_review_queue_and_a_decision_clears_it(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let first = app
        .register(&patient("Fatima", "Noori", "1985", json!({})))
        .await;
    let second = app
        .register(&patient("Fatemeh", "Nouri", "1985-07-01", json!({})))
        .await;
    let queue = pending(&app, 1).await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert!(pair_is(&queue[0], &first, &second));
    assert!(["possible", "probable", "certain"].contains(&queue[0].grade.as_str()));
    let evidence: Value = serde_json::from_str(&queue[0].evidence).unwrap();
    assert!(
        evidence["comparisons"].as_array().unwrap().len() >= 3,
        "{evidence}"
    );

    let decided = decide(&app, &second, &first, pb::Decision::Match)
        .await
        .unwrap();
    assert_eq!(decided.status, "match");
    assert_eq!(decided.decided_by, "Practitioner/case-manager-1");
    assert!(reviews(&app, "pending").await.is_empty());
    assert_eq!(reviews(&app, "match").await.len(), 1);
    // A match decision links the two records.
    let read = app.read("Patient", &first).await;
    assert_eq!(
        read["link"][0]["other"]["reference"],
        format!("Patient/{second}")
    );
    assert_eq!(read["link"][0]["type"], "seealso");
    // A pair nobody queued is not in the queue to decide.
    let third = app
        .register(&patient("Oleksandr", "Shevchenko", "1970-01-20", json!({})))
        .await;
    let err = decide(&app, &first, &third, pb::Decision::NotMatch)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}

async fn a_not_a_match_decision_survives_re_matching(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let first = app
        .register(&patient("Abdulrahman", "Osman", "1992-04-05", json!({})))
        .await;
    let twin = app
        .register(&patient("Abdul Rahman", "Osman", "1992-04-05", json!({})))
        .await;
    let queue = pending(&app, 1).await;
    assert!(queue.iter().any(|r| pair_is(r, &first, &twin)), "{queue:?}");
    decide(&app, &first, &twin, pb::Decision::NotMatch)
        .await
        .unwrap();

    // Writing the twin again re-matches it; the decision stands.
    let mut again = app.read("Patient", &twin).await;
    again["telecom"] = json!([{"system": "phone", "value": "+249 91 234 5678"}]);
    app.client
        .clone()
        .update(pb::UpdateRequest {
            resource_type: "Patient".to_owned(),
            id: twin.clone(),
            resource: again.to_string(),
            if_match: String::new(),
        })
        .await
        .unwrap();
    // A later write that the queue has seen proves the twin's was seen too.
    let later = app
        .register(&patient("Abdurrahman", "Osman", "1992", json!({})))
        .await;
    let queue = pending(&app, 2).await;
    assert!(queue.iter().any(|r| r.patient_id == later), "{queue:?}");
    assert!(
        !queue.iter().any(|r| pair_is(r, &first, &twin)),
        "{queue:?}"
    );
    let decided = reviews(&app, "not-match").await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].reason, "checked the documents");
    // $match from the twin shows the decision, not a score.
    let mut query = app.read("Patient", &twin).await;
    query.as_object_mut().unwrap().remove("meta");
    let found = r#match(&app, &query, false).await;
    assert_eq!(
        grade_of(&found, &first).as_deref(),
        Some("certainly-not"),
        "{found:?}"
    );
    assert!(
        grade_of(&found, &twin).is_none(),
        "a Patient is not its own candidate"
    );
    app.stop().await;
}

async fn merge(app: &IdentityApp, source: &str, target: &str) -> pb::MergeResponse {
    app.client
        .clone()
        .merge(pb::MergeRequest {
            source_id: source.to_owned(),
            target_id: target.to_owned(),
            decided_by: "Practitioner/mpi-steward".to_owned(),
            reason: "same UNHCR case".to_owned(),
        })
        .await
        .expect("merge")
        .into_inner()
}

async fn resolve(app: &IdentityApp, id: &str) -> pb::ResolvePatientResponse {
    app.client
        .clone()
        .resolve_patient(pb::ResolvePatientRequest {
            patient_id: id.to_owned(),
        })
        .await
        .expect("resolve")
        .into_inner()
}

async fn merge_replaces_the_source_and_resolve_follows_it(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let source = app
        .register(&patient("Ali", "Rezaei", "1980", json!({"active": true})))
        .await;
    let target = app
        .register(&patient("Ali", "Rezaie", "1980-03-21", json!({})))
        .await;
    let older = app
        .register(&patient("Ali", "Rezai", "1980", json!({})))
        .await;
    merge(&app, &older, &source).await;
    let answer = merge(&app, &source, &target).await;
    let merged: Value = serde_json::from_str(&answer.source.unwrap().json).unwrap();
    assert_eq!(merged["active"], false);
    let links = merged["link"].as_array().unwrap();
    assert_eq!(
        links.len(),
        2,
        "it still replaces the older record: {links:?}"
    );
    assert!(links.contains(
        &json!({"other": {"reference": format!("Patient/{target}")}, "type": "replaced-by"})
    ));
    let kept: Value = serde_json::from_str(&answer.target.unwrap().json).unwrap();
    assert_eq!(kept["link"][0]["type"], "replaces");
    // Merging again changes nothing.
    let again = merge(&app, &source, &target).await;
    assert_eq!(again.source.unwrap().version_id, "3");

    for id in [&older, &source, &target] {
        let resolved = resolve(&app, id).await;
        assert_eq!(resolved.current_id, target);
        let mut ids = resolved.merged_ids.clone();
        ids.sort();
        let mut want = vec![older.clone(), source.clone(), target.clone()];
        want.sort();
        assert_eq!(ids, want);
    }
    // A merged-away record is no longer a candidate; its target is.
    let found = r#match(&app, &patient("Ali", "Rezaei", "1980", json!({})), false).await;
    assert!(
        grade_of(&found, &source).is_none() && grade_of(&found, &target).is_some(),
        "{found:?}"
    );
    // Nothing can be merged into a record that was merged away.
    let other = app
        .register(&patient("Sara", "Ahmadi", "2001", json!({})))
        .await;
    let err = app
        .client
        .clone()
        .merge(pb::MergeRequest {
            source_id: other,
            target_id: source.clone(),
            decided_by: "x".to_owned(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(expression(&err), "target_id");
    app.stop().await;
}

async fn unmerge_restores_both_patients(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let source = app
        .register(&patient("Hawa", "Abdi", "1999", json!({"active": true})))
        .await;
    let target = app
        .register(&patient("Hawo", "Abdi", "1999-01-01", json!({})))
        .await;
    merge(&app, &source, &target).await;
    let answer = app
        .client
        .clone()
        .unmerge(pb::UnmergeRequest {
            source_id: source.clone(),
            decided_by: "Practitioner/mpi-steward".to_owned(),
            reason: "two sisters".to_owned(),
        })
        .await
        .expect("unmerge")
        .into_inner();
    let restored: Value = serde_json::from_str(&answer.source.unwrap().json).unwrap();
    assert_eq!(restored["active"], true);
    assert!(restored.get("link").is_none(), "{restored}");
    let target_now = app.read("Patient", &target).await;
    assert!(target_now.get("link").is_none(), "{target_now}");
    assert!(target_now.get("active").is_none());
    assert_eq!(resolve(&app, &source).await.current_id, source);
    assert_eq!(
        resolve(&app, &target).await.merged_ids,
        vec![target.clone()]
    );
    // The unmerge is remembered as "not the same person".
    let mut query = restored.clone();
    query.as_object_mut().unwrap().remove("meta");
    let found = r#match(&app, &query, false).await;
    assert_eq!(
        grade_of(&found, &target).as_deref(),
        Some("certainly-not"),
        "{found:?}"
    );
    // Unmerging what is not merged says so.
    let err = app
        .client
        .clone()
        .unmerge(pb::UnmergeRequest {
            source_id: source.clone(),
            decided_by: "x".to_owned(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    app.stop().await;
}

async fn link_and_unlink_write_both_records_and_remember_the_decision(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let a = app
        .register(&patient("Dawit", "Haile", "1975", json!({})))
        .await;
    let b = app
        .register(&patient("Dawit", "Hailu", "1975", json!({})))
        .await;
    let linked = app
        .client
        .clone()
        .link(pb::LinkRequest {
            patient_id: a.clone(),
            other_id: b.clone(),
            decided_by: "Practitioner/1".to_owned(),
            reason: String::new(),
        })
        .await
        .expect("link")
        .into_inner();
    let pa: Value = serde_json::from_str(&linked.patient.unwrap().json).unwrap();
    let pb_: Value = serde_json::from_str(&linked.other.unwrap().json).unwrap();
    assert_eq!(pa["link"][0]["other"]["reference"], format!("Patient/{b}"));
    assert_eq!(pb_["link"][0]["other"]["reference"], format!("Patient/{a}"));
    assert_eq!(resolve(&app, &a).await.linked_ids, vec![b.clone()]);
    app.client
        .clone()
        .unlink(pb::UnlinkRequest {
            patient_id: b.clone(),
            other_id: a.clone(),
            decided_by: "Practitioner/2".to_owned(),
            reason: "different fathers".to_owned(),
        })
        .await
        .expect("unlink");
    assert!(app.read("Patient", &a).await.get("link").is_none());
    assert!(app.read("Patient", &b).await.get("link").is_none());
    assert!(resolve(&app, &a).await.linked_ids.is_empty());
    let decided = reviews(&app, "not-match").await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].decided_by, "Practitioner/2");
    app.stop().await;
}

async fn match_of_an_empty_patient_is_refused_with_an_outcome(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let err = app
        .client
        .clone()
        .r#match(pb::MatchRequest {
            resource: json!({"resourceType": "Patient", "gender": "female"}).to_string(),
            count: 0,
            only_certain_matches: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "Patient");
    assert!(
        corridor_tests::outcome(&err)["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("nothing to match on")
    );
    app.stop().await;
}

async fn match_of_another_resource_type_is_refused_with_an_outcome(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let err = app
        .client
        .clone()
        .r#match(pb::MatchRequest {
            resource: json!({"resourceType": "Organization", "name": "Clinic"}).to_string(),
            count: 0,
            only_certain_matches: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "resourceType");
    let err = app
        .client
        .clone()
        .r#match(pb::MatchRequest {
            resource: "{not json".to_owned(),
            count: 0,
            only_certain_matches: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = app
        .client
        .clone()
        .r#match(pb::MatchRequest {
            resource: json!({"resourceType": "Patient", "birthDate": "1990"}).to_string(),
            count: 1000,
            only_certain_matches: false,
        })
        .await
        .unwrap_err();
    assert_eq!(expression(&err), "count");
    app.stop().await;
}

async fn decisions_need_someone_who_decided(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let a = app
        .register(&patient("Omar", "Said", "1990", json!({})))
        .await;
    let b = app
        .register(&patient("Omar", "Saeed", "1990", json!({})))
        .await;
    let err = app
        .client
        .clone()
        .merge(pb::MergeRequest {
            source_id: a.clone(),
            target_id: b.clone(),
            decided_by: " ".to_owned(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "decided_by");
    // Nothing was written.
    assert!(app.read("Patient", &a).await.get("link").is_none());
    let err = app
        .client
        .clone()
        .link(pb::LinkRequest {
            patient_id: a.clone(),
            other_id: a.clone(),
            decided_by: "x".to_owned(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(expression(&err), "other_id");
    app.stop().await;
}

/// Rules that read at most 4 records under any one key and score 3.
fn tight_rules() -> corridor_matching::Rules {
    let text = corridor_matching::rules::DEFAULT_RULES
        .replace("candidates = 100", "candidates = 3")
        .replace("records_per_key = 500", "records_per_key = 4");
    corridor_matching::Rules::parse(&text).expect("valid rules")
}

async fn a_duplicate_with_a_very_common_name_is_found_by_what_it_rarely_shares(backend: Backend) {
    let Some(app) = IdentityApp::spawn_with_rules(backend, tight_rules()).await else {
        return;
    };
    // Twelve namesakes: more than the 4 records read under each name key.
    for n in 0..12 {
        let phone =
            json!({"telecom": [{"system": "phone", "value": format!("+963 944 000 1{n:02}")}]});
        app.register(&patient("Mohammed", "Ahmed", "1990-01-01", phone))
            .await;
    }
    let phone = json!({"telecom": [{"system": "phone", "value": "+963 944 555 777"}]});
    let id = app
        .register(&patient("Mohammed", "Ahmed", "1990-01-01", phone))
        .await;
    let query = patient(
        "Muhammad",
        "Ahmad",
        "1990",
        json!({"telecom": [{"system": "phone", "value": "00963944555777"}]}),
    );
    let found = r#match(&app, &query, false).await;
    assert_eq!(
        found.first().map(|(i, _, _)| i.as_str()),
        Some(id.as_str()),
        "the record sharing the phone comes first: {:?}",
        found.iter().map(|(i, g, _)| (i, g)).collect::<Vec<_>>()
    );
    app.stop().await;
}
