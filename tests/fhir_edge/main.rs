//! The edge validator on its own: R4 JSON for every type Corridor serves,
//! and the checks that protect the parser.

use corridor_fhir::{Limits, SUPPORTED_TYPES, validate};
use corridor_tests::fixture;

#[test]
fn every_hl7_r4_example_of_a_served_type_is_accepted() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(fixture("hl7-r4")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let validated = validate(&text, SUPPORTED_TYPES, &Limits::default())
            .unwrap_or_else(|issue| panic!("{name} is refused: {issue}"));
        checked.push(validated.resource_type);
    }
    for t in SUPPORTED_TYPES {
        assert!(
            checked.iter().any(|c| c == t),
            "no HL7 example of {t} was checked"
        );
    }
}

#[test]
fn validated_content_is_the_clients_json_unchanged() {
    let text = r#"{"resourceType":"Patient","birthDate":"1990","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1990-01-01T10:00:00+03:00"}]},"multipleBirthInteger":2}"#;
    let validated = validate(text, &["Patient"], &Limits::default()).expect("valid");
    assert_eq!(serde_json::to_string(&validated.object).unwrap(), text);
}

#[test]
fn nesting_at_the_limit_is_accepted_and_one_deeper_is_refused() {
    let limits = Limits {
        max_depth: 4,
        ..Limits::default()
    };
    let ok = r#"{"resourceType":"Patient","name":[{"given":["a"]}]}"#;
    assert!(validate(ok, &["Patient"], &limits).is_ok());
    let deep = r#"{"resourceType":"Patient","name":[{"given":["a"],"extension":[{"url":"urn:x","valueString":"b"}]}]}"#;
    assert_eq!(
        validate(deep, &["Patient"], &limits).unwrap_err().code,
        "too-costly"
    );
}

#[test]
fn brackets_inside_strings_do_not_count_as_nesting() {
    let limits = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    let text = r#"{"resourceType":"Patient","name":[{"text":"[[[[{{{{\"]]"}]}"#;
    assert!(validate(text, &["Patient"], &limits).is_ok());
}

#[test]
fn missing_required_element_is_refused_naming_the_resource() {
    let issue = validate(
        r#"{"resourceType":"Observation"}"#,
        SUPPORTED_TYPES,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(issue.code, "value");
    assert!(
        issue.diagnostics.contains("status") || issue.diagnostics.contains("code"),
        "{issue}"
    );
}
