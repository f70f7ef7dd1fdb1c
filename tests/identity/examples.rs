//! Real data from outside the project survives create then read with its
//! content intact, apart from the server-assigned id and meta: every HL7 R4
//! example Patient, Organization and Practitioner, and the Synthea sample's.

use corridor_tests::{Backend, IdentityApp, fixture, for_each_backend};
use serde_json::Value;

use crate::api::{json, read, try_create};

for_each_backend!(
    hl7_examples_survive_create_and_read,
    synthea_resources_survive_create_and_read
);

const IDENTITY_TYPES: &[&str] = &["Patient", "Organization", "Practitioner"];

fn hl7_examples() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture("hl7-r4")).expect("tests/fixtures/hl7-r4") {
        let path = entry.unwrap().path();
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if IDENTITY_TYPES.contains(&value["resourceType"].as_str().unwrap_or_default()) {
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                value,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The resource without what the server owns: id, meta.versionId and
/// meta.lastUpdated (and meta itself when nothing else is left in it).
fn client_content(mut value: Value) -> Value {
    let object = value.as_object_mut().expect("object");
    object.remove("id");
    if let Some(meta) = object.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            object.remove("meta");
        }
    }
    value
}

async fn round_trip(app: &IdentityApp, name: &str, original: &Value) {
    let created = try_create(app, &original.to_string())
        .await
        .unwrap_or_else(|e| panic!("{name} is refused: {}", e.message()));
    let stored = read(app, &created.resource_type, &created.id)
        .await
        .expect("read back");
    assert_eq!(
        client_content(json(&stored)),
        client_content(original.clone()),
        "{name} changed on the way through"
    );
}

async fn hl7_examples_survive_create_and_read(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let examples = hl7_examples();
    for t in IDENTITY_TYPES {
        assert!(
            examples.iter().any(|(_, v)| v["resourceType"] == *t),
            "fixtures hold a {t} example"
        );
    }
    for (name, example) in &examples {
        round_trip(&app, name, example).await;
    }
    app.stop().await;
}

async fn synthea_resources_survive_create_and_read(backend: Backend) {
    let Some(app) = IdentityApp::spawn(backend).await else {
        return;
    };
    let ndjson =
        std::fs::read_to_string(fixture("synthea-r4/identity.ndjson")).expect("synthea fixture");
    let mut count = 0;
    for (n, line) in ndjson.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let resource: Value = serde_json::from_str(line).unwrap();
        round_trip(&app, &format!("synthea line {}", n + 1), &resource).await;
        count += 1;
    }
    assert!(count > 400, "the Synthea fixture holds {count} resources");
    app.stop().await;
}
