//! Patient, Organization and Practitioner search. Each parameter and date
//! prefix is checked with data chosen so that a wrong implementation fails.

use corridor_proto::fhir::v1::SearchParameter;
use corridor_proto::identity::v1 as pb;
use corridor_tests::{Backend, IdentityApp, expression, for_each_backend};
use serde_json::{Value, json};
use tonic::Code;

use crate::api::{create, entry_ids, ids, one, search, sorted, try_search};

for_each_backend!(
    id_matches_only_the_listed_ids,
    identifier_matches_system_and_value_forms,
    name_family_and_given_match_prefixes_ignoring_case_and_accents,
    exact_modifier_matches_the_whole_value_with_case_and_accents,
    birthdate_prefixes_follow_fhir_range_semantics,
    partial_birthdates_match_by_their_precision,
    gender_country_phone_and_organization_match,
    last_updated_separates_earlier_and_later_writes,
    count_and_page_tokens_walk_every_result_once,
    sort_orders_by_family_and_by_descending_birthdate,
    unknown_parameters_modifiers_and_values_are_refused_by_name,
    organization_and_practitioner_parameters_match,
);

async fn patient(app: &IdentityApp, body: Value) -> String {
    let mut body = body;
    body["resourceType"] = json!("Patient");
    create(app, &body).await.id
}

async fn id_matches_only_the_listed_ids(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let a = patient(&app, json!({})).await;
    let b = patient(&app, json!({})).await;
    let _c = patient(&app, json!({})).await;
    assert_eq!(ids(&search(&app, "Patient", &[("_id", &a)]).await), one(&a));
    assert_eq!(
        ids(&search(&app, "Patient", &[("_id", &format!("{a},{b}"))]).await),
        sorted(vec![a, b])
    );
    app.stop().await;
}

async fn identifier_matches_system_and_value_forms(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let unhcr = patient(
        &app,
        json!({"identifier": [{"system": "urn:unhcr", "value": "123"}]}),
    )
    .await;
    let mrn = patient(
        &app,
        json!({"identifier": [{"system": "urn:mrn", "value": "123"}]}),
    )
    .await;
    let bare = patient(&app, json!({"identifier": [{"value": "123"}]})).await;
    let other = patient(
        &app,
        json!({"identifier": [{"system": "urn:unhcr", "value": "999"}]}),
    )
    .await;
    let find = |q: &'static str| {
        let app = &app;
        async move { ids(&search(app, "Patient", &[("identifier", q)]).await) }
    };
    assert_eq!(find("urn:unhcr|123").await, one(&unhcr));
    assert_eq!(
        find("|123").await,
        one(&bare),
        "|value matches only identifiers without a system"
    );
    assert_eq!(
        find("urn:unhcr|").await,
        sorted(vec![unhcr.clone(), other.clone()])
    );
    assert_eq!(find("123").await, sorted(vec![unhcr, mrn, bare]));
    assert_eq!(
        find("12").await,
        Vec::<String>::new(),
        "tokens match whole values, not prefixes"
    );
    app.stop().await;
}

async fn name_family_and_given_match_prefixes_ignoring_case_and_accents(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let zoe = patient(
        &app,
        json!({"name": [{"family": "Ngô", "given": ["Zoë", "Thi"]}]}),
    )
    .await;
    let hassan = patient(
        &app,
        json!({"name": [{"family": "Al-Hassan", "given": ["Mohammed"]}]}),
    )
    .await;
    let names = |p: &'static str, v: &'static str| {
        let app = &app;
        async move { ids(&search(app, "Patient", &[(p, v)]).await) }
    };
    assert_eq!(names("given", "zoe").await, one(&zoe), "accent-insensitive");
    assert_eq!(
        names("given", "ZO").await,
        one(&zoe),
        "case-insensitive prefix"
    );
    assert_eq!(
        names("given", "oe").await,
        Vec::<String>::new(),
        "prefix, not substring"
    );
    assert_eq!(names("given:contains", "oe").await, one(&zoe));
    assert_eq!(names("family", "ngo").await, one(&zoe));
    assert_eq!(
        names("family", "zoe").await,
        Vec::<String>::new(),
        "family does not match given names"
    );
    assert_eq!(
        names("name", "thi").await,
        one(&zoe),
        "name matches any part"
    );
    assert_eq!(
        names("family", "hassan").await,
        one(&hassan),
        "a word inside a hyphenated name"
    );
    assert_eq!(names("name", "al-has").await, one(&hassan));
    assert_eq!(
        ids(&search(&app, "Patient", &[("name", "zoe,mohammed")]).await),
        sorted(vec![zoe.clone(), hassan]),
        "comma is OR"
    );
    assert_eq!(
        ids(&search(&app, "Patient", &[("given", "zoe"), ("family", "al")]).await),
        Vec::<String>::new(),
        "parameters are AND"
    );
    app.stop().await;
}

async fn exact_modifier_matches_the_whole_value_with_case_and_accents(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let zoe = patient(&app, json!({"name": [{"family": "Ngô", "given": ["Zoë"]}]})).await;
    assert_eq!(
        ids(&search(&app, "Patient", &[("given:exact", "Zoë")]).await),
        [zoe]
    );
    assert!(
        ids(&search(&app, "Patient", &[("given:exact", "zoë")]).await).is_empty(),
        "case matters"
    );
    assert!(
        ids(&search(&app, "Patient", &[("given:exact", "Zoe")]).await).is_empty(),
        "accents matter"
    );
    assert!(
        ids(&search(&app, "Patient", &[("family:exact", "Ng")]).await).is_empty(),
        "whole value"
    );
    app.stop().await;
}

async fn birthdate_prefixes_follow_fhir_range_semantics(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let may3 = patient(&app, json!({"birthDate": "1990-05-03"})).await;
    let dec31 = patient(&app, json!({"birthDate": "1990-12-31"})).await;
    let jan1 = patient(&app, json!({"birthDate": "1991-01-01"})).await;
    let year = patient(&app, json!({"birthDate": "1990"})).await;
    let _none = patient(&app, json!({})).await;
    let cases: [(&str, Vec<&String>); 12] = [
        ("1990-05-03", vec![&may3]),
        ("eq1990-12-31", vec![&dec31]),
        ("ne1990-05-03", vec![&dec31, &jan1, &year]),
        ("lt1990-12-31", vec![&may3, &year]),
        ("gt1990-12-31", vec![&jan1]),
        ("le1990-05-03", vec![&may3, &year]),
        ("ge1990-12-31", vec![&dec31, &jan1]),
        ("sa1990", vec![&jan1]),
        ("eb1991", vec![&may3, &dec31, &year]),
        ("sa1990-05-03", vec![&dec31, &jan1]),
        ("eb1990-05-04", vec![&may3]),
        ("ge1991-01-01T00:00:00Z", vec![&jan1]),
    ];
    for (query, expected) in cases {
        let found = ids(&search(&app, "Patient", &[("birthdate", query)]).await);
        let expected = sorted(expected.into_iter().cloned().collect());
        assert_eq!(found, expected, "birthdate={query}");
    }
    app.stop().await;
}

async fn partial_birthdates_match_by_their_precision(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let may3 = patient(&app, json!({"birthDate": "1990-05-03"})).await;
    let june = patient(&app, json!({"birthDate": "1990-06"})).await;
    let year = patient(&app, json!({"birthDate": "1990"})).await;
    let find = |q: &'static str| {
        let app = &app;
        async move { ids(&search(app, "Patient", &[("birthdate", q)]).await) }
    };
    assert_eq!(
        find("1990").await,
        sorted(vec![may3.clone(), june.clone(), year.clone()]),
        "a year holds every date in it"
    );
    assert_eq!(
        find("1990-05").await,
        one(&may3),
        "a month holds its days but not a year-only date"
    );
    assert_eq!(
        find("1990-06-15").await,
        Vec::<String>::new(),
        "a day does not hold a whole month"
    );
    assert_eq!(find("ge1990-06").await, sorted(vec![june, year]));
    app.stop().await;
}

async fn gender_country_phone_and_organization_match(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let org = create(
        &app,
        &json!({"resourceType": "Organization", "name": "Clinique Mobile"}),
    )
    .await
    .id;
    let amina = patient(&app, json!({
        "gender": "female",
        "address": [{"country": "Türkiye"}],
        "telecom": [{"system": "phone", "value": "+90 (532) 123-4567"}, {"system": "email", "value": "a@example.org"}],
        "managingOrganization": {"reference": format!("Organization/{org}")}
    }))
    .await;
    let yonas = patient(
        &app,
        json!({"gender": "male", "address": [{"country": "Ethiopia"}],
        "telecom": [{"system": "email", "value": "5550100@example.org"}]}),
    )
    .await;
    assert_eq!(
        ids(&search(&app, "Patient", &[("gender", "female")]).await),
        one(&amina)
    );
    assert_eq!(
        ids(&search(&app, "Patient", &[("gender", "male")]).await),
        one(&yonas)
    );
    assert_eq!(
        ids(&search(&app, "Patient", &[("address-country", "turk")]).await),
        one(&amina)
    );
    assert_eq!(
        ids(&search(&app, "Patient", &[("phone", "+905321234567")]).await),
        one(&amina)
    );
    assert!(
        ids(&search(&app, "Patient", &[("phone", "5550100")]).await).is_empty(),
        "an email address is not a phone"
    );
    let err = try_search(&app, "Patient", &[("phone", "a@example.org")])
        .await
        .expect_err("no digits");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "phone");
    assert_eq!(
        ids(&search(
            &app,
            "Patient",
            &[("organization", &format!("Organization/{org}"))]
        )
        .await),
        one(&amina)
    );
    assert_eq!(
        ids(&search(&app, "Patient", &[("organization", &org)]).await),
        [amina],
        "bare id of the only target type"
    );
    app.stop().await;
}

async fn last_updated_separates_earlier_and_later_writes(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let first = create(&app, &json!({"resourceType": "Patient"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = create(&app, &json!({"resourceType": "Patient"})).await;
    let boundary = &first.last_updated;
    assert_eq!(
        ids(&search(
            &app,
            "Patient",
            &[("_lastUpdated", &format!("gt{boundary}"))]
        )
        .await),
        one(&second.id)
    );
    assert_eq!(
        ids(&search(
            &app,
            "Patient",
            &[("_lastUpdated", &format!("le{boundary}"))]
        )
        .await),
        one(&first.id)
    );
    assert_eq!(
        ids(&search(&app, "Patient", &[("_lastUpdated", boundary)]).await),
        [first.id]
    );
    app.stop().await;
}

async fn count_and_page_tokens_walk_every_result_once(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let mut all = Vec::new();
    for n in 0..5 {
        all.push(
            patient(
                &app,
                json!({"identifier": [{"system": "urn:page", "value": n.to_string()}]}),
            )
            .await,
        );
    }
    let _unrelated = patient(&app, json!({})).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let request = pb::SearchRequest {
            resource_type: "Patient".into(),
            parameters: vec![
                SearchParameter {
                    name: "identifier".into(),
                    value: "urn:page|".into(),
                },
                SearchParameter {
                    name: "_count".into(),
                    value: "2".into(),
                },
            ],
            page_token: token.clone(),
        };
        let bundle = app
            .client
            .clone()
            .search(request)
            .await
            .expect("page")
            .into_inner()
            .bundle
            .unwrap();
        let json: Value = serde_json::from_str(&bundle.json).unwrap();
        assert_eq!(bundle.total, 5);
        assert_eq!(json["total"], 5);
        seen.extend(entry_ids(&json));
        pages += 1;
        let next = json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].clone());
        assert_eq!(
            next.is_some(),
            !bundle.next_page_token.is_empty(),
            "next link and token agree"
        );
        if bundle.next_page_token.is_empty() {
            break;
        }
        token = bundle.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(sorted(seen), sorted(all));
    let foreign = pb::SearchRequest {
        resource_type: "Patient".into(),
        parameters: vec![],
        page_token: token,
    };
    let err = app
        .client
        .clone()
        .search(foreign)
        .await
        .expect_err("token from another search");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(expression(&err), "_page_token");
    app.stop().await;
}

async fn sort_orders_by_family_and_by_descending_birthdate(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let c = patient(
        &app,
        json!({"name": [{"family": "Çelik"}], "birthDate": "1970"}),
    )
    .await;
    let a = patient(
        &app,
        json!({"name": [{"family": "abebe"}], "birthDate": "2001-02-03"}),
    )
    .await;
    let b = patient(
        &app,
        json!({"name": [{"family": "Bashir"}], "birthDate": "1985-07-01"}),
    )
    .await;
    assert_eq!(
        entry_ids(&search(&app, "Patient", &[("_sort", "family")]).await),
        [a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(
        entry_ids(&search(&app, "Patient", &[("_sort", "-birthdate")]).await),
        [a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(
        entry_ids(&search(&app, "Patient", &[("_sort", "birthdate")]).await),
        [c, b, a]
    );
    app.stop().await;
}

async fn unknown_parameters_modifiers_and_values_are_refused_by_name(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    patient(&app, json!({})).await;
    for (name, value, expr) in [
        ("birthdat", "1990", "birthdat"),
        ("gender:exact", "male", "gender:exact"),
        ("birthdate", "ap1990", "birthdate"),
        ("birthdate", "1990-13-01", "birthdate"),
        ("_count", "-1", "_count"),
        ("_sort", "gender", "_sort"),
        ("organization", "Patient/1", "organization"),
    ] {
        let err = try_search(&app, "Patient", &[(name, value)])
            .await
            .expect_err(name);
        assert_eq!(err.code(), Code::InvalidArgument, "{name}={value}");
        assert_eq!(expression(&err), expr, "{name}={value}");
    }
    let err = try_search(&app, "Observation", &[])
        .await
        .expect_err("type not served");
    assert_eq!(err.code(), Code::InvalidArgument);
    app.stop().await;
}

async fn organization_and_practitioner_parameters_match(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let parent = create(&app, &json!({"resourceType": "Organization", "name": "Médecins du Monde",
        "identifier": [{"system": "urn:ngo", "value": "MDM"}],
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "cg"}]}]})).await.id;
    let child = create(&app, &json!({"resourceType": "Organization", "name": "Antenne Calais", "alias": ["MdM Calais"],
        "partOf": {"reference": format!("Organization/{parent}")},
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}]})).await.id;
    let org = |p: &'static str, v: String| {
        let app = &app;
        async move { ids(&search(app, "Organization", &[(p, &v)]).await) }
    };
    assert_eq!(org("name", "medecins".into()).await, one(&parent));
    assert_eq!(
        org("name", "mdm".into()).await,
        one(&child),
        "alias is searched too"
    );
    assert_eq!(org("identifier", "urn:ngo|MDM".into()).await, one(&parent));
    assert_eq!(
        org(
            "type",
            "http://terminology.hl7.org/CodeSystem/organization-type|prov".into()
        )
        .await,
        one(&child)
    );
    assert_eq!(
        org("partof", format!("Organization/{parent}")).await,
        [child]
    );
    let doc = create(
        &app,
        &json!({"resourceType": "Practitioner", "name": [{"family": "Haile", "given": ["Selam"]}],
        "identifier": [{"system": "urn:license", "value": "L-1"}]}),
    )
    .await
    .id;
    assert_eq!(
        ids(&search(&app, "Practitioner", &[("name", "sela")]).await),
        one(&doc)
    );
    assert_eq!(
        ids(&search(&app, "Practitioner", &[("identifier", "urn:license|L-1")]).await),
        [doc]
    );
    assert!(
        ids(&search(&app, "Practitioner", &[("name", "medecins")]).await).is_empty(),
        "types are searched apart"
    );
    app.stop().await;
}
