//! What matching reads from a FHIR Patient, normalized: names as tokens,
//! birth date, sex, identifiers, phones in E.164, countries, place of birth
//! and nationality.

use serde_json::Value;

use crate::dates::BirthDate;
use crate::names::{self, Token};
use crate::rules::Rules;

const NATIONALITY: &str = "http://hl7.org/fhir/StructureDefinition/patient-nationality";
const BIRTH_PLACE: &str = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace";

/// One HumanName as tokens.
#[derive(Debug, Clone, Default)]
pub struct Name {
    pub given: Vec<Token>,
    pub family: Vec<Token>,
}

/// An identifier with its value normalized (upper case, letters and
/// digits only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

/// The comparable content of one Patient.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub names: Vec<Name>,
    pub birth: Option<BirthDate>,
    pub sex: Option<String>,
    pub identifiers: Vec<Identifier>,
    pub phones: Vec<String>,
    pub countries: Vec<String>,
    pub birthplace: Vec<String>,
    pub nationality: Vec<String>,
}

impl Person {
    /// Read a Patient resource.
    pub fn from_patient(patient: &Value, rules: &Rules) -> Self {
        let countries: Vec<String> = list(patient, "address")
            .filter_map(|a| a.get("country").and_then(Value::as_str))
            .map(country)
            .filter(|c| !c.is_empty())
            .fold(Vec::new(), push_unique);
        let region = countries
            .iter()
            .find(|c| c.len() == 2)
            .cloned()
            .or_else(|| rules.default_phone_region.clone());
        let phones = list(patient, "telecom")
            .filter(|t| t.get("system").and_then(Value::as_str) == Some("phone"))
            .filter_map(|t| t.get("value").and_then(Value::as_str))
            .filter_map(|raw| phone(raw, region.as_deref()))
            .fold(Vec::new(), push_unique);
        let identifiers = list(patient, "identifier")
            .filter_map(|i| {
                let system = i.get("system")?.as_str()?.trim();
                let value: String = i
                    .get("value")?
                    .as_str()?
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                (!system.is_empty() && !value.is_empty()).then(|| Identifier {
                    system: system.to_owned(),
                    value,
                })
            })
            .fold(Vec::new(), push_unique);
        let sex = patient
            .get("gender")
            .and_then(Value::as_str)
            .filter(|g| matches!(*g, "male" | "female" | "other"))
            .map(str::to_owned);
        let birth = patient
            .get("birthDate")
            .and_then(Value::as_str)
            .and_then(BirthDate::parse);
        let mut birthplace = Vec::new();
        let mut nationality = Vec::new();
        for ext in list(patient, "extension") {
            match ext.get("url").and_then(Value::as_str) {
                Some(BIRTH_PLACE) => {
                    if let Some(c) = ext.pointer("/valueAddress/country").and_then(Value::as_str) {
                        birthplace = push_unique(birthplace, country(c));
                    }
                }
                Some(NATIONALITY) => {
                    for part in list(ext, "extension") {
                        if part.get("url").and_then(Value::as_str) == Some("code") {
                            for coding in list(&part["valueCodeableConcept"], "coding") {
                                if let Some(code) = coding.get("code").and_then(Value::as_str) {
                                    nationality = push_unique(nationality, country(code));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Self {
            names: list(patient, "name").filter_map(name).collect(),
            birth,
            sex,
            identifiers,
            phones,
            countries,
            birthplace,
            nationality,
        }
    }

    /// Whether the Patient says anything matching can use.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
            && self.birth.is_none()
            && self.identifiers.is_empty()
            && self.phones.is_empty()
    }
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}

fn push_unique<T: PartialEq>(mut v: Vec<T>, item: T) -> Vec<T> {
    if !v.contains(&item) {
        v.push(item);
    }
    v
}

/// A HumanName's tokens. A name given only as text is split: its last
/// word is taken as the family name.
fn name(value: &Value) -> Option<Name> {
    let given: Vec<Token> = list(value, "given")
        .filter_map(Value::as_str)
        .flat_map(names::tokens)
        .collect();
    let family: Vec<Token> = value
        .get("family")
        .and_then(Value::as_str)
        .map(names::tokens)
        .unwrap_or_default();
    if !given.is_empty() || !family.is_empty() {
        return Some(Name { given, family });
    }
    let mut all = names::tokens(value.get("text")?.as_str()?);
    let family = all.pop()?;
    Some(Name {
        given: all,
        family: vec![family],
    })
}

fn country(text: &str) -> String {
    text.trim().to_uppercase()
}

/// Compiled patterns of the phone number metadata kept at once. The
/// `phonenumber` crate compiles a region's patterns on first use into one
/// process-wide LRU cache of 100, which a registry with people from more
/// than a few countries overflows on every number: parsing then spent
/// 95% of its time recompiling (500 µs a Patient instead of 20). The
/// numbers of 40 countries used 254 patterns; this leaves room for every
/// region.
const PHONE_PATTERNS: usize = 4_096;

/// A phone number in E.164, or (when it cannot be placed in a region) its
/// digits after an international prefix.
pub fn phone(raw: &str, region: Option<&str>) -> Option<String> {
    static PATTERNS: std::sync::Once = std::sync::Once::new();
    PATTERNS.call_once(|| {
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            cache.set_capacity(PHONE_PATTERNS);
        }
    });
    let trimmed = raw.trim();
    let international = match trimmed.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => trimmed.to_owned(),
    };
    let region = region.and_then(|r| r.parse::<phonenumber::country::Id>().ok());
    if let Ok(number) = phonenumber::parse(region, &international)
        && phonenumber::is_valid(&number)
    {
        return Some(number.format().mode(phonenumber::Mode::E164).to_string());
    }
    let digits: String = international.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 6).then(|| {
        if international.starts_with('+') {
            format!("+{digits}")
        } else {
            digits
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phone_numbers_in_any_format_become_e164() {
        for raw in ["+963 944 123 456", "00963944123456", "+963-944-123456"] {
            assert_eq!(phone(raw, None).as_deref(), Some("+963944123456"), "{raw}");
        }
        // A national number is placed by the address country.
        assert_eq!(
            phone("0944 123 456", Some("SY")).as_deref(),
            Some("+963944123456")
        );
        assert_eq!(
            phone("0151 2345 6789", Some("DE")).as_deref(),
            Some("+4915123456789")
        );
    }

    #[test]
    fn numbers_of_many_countries_keep_their_patterns_compiled() {
        phone("+963 944 123 456", None);
        let cache = phonenumber::metadata::DATABASE.cache();
        let cache = cache.lock().expect("pattern cache");
        assert!(
            cache.capacity() >= PHONE_PATTERNS,
            "the phone pattern cache holds {}, not {PHONE_PATTERNS}",
            cache.capacity()
        );
    }

    #[test]
    fn a_patient_is_read_into_comparable_parts() {
        let rules = Rules::default_rules();
        let p = Person::from_patient(
            &json!({
                "resourceType": "Patient",
                "name": [{"given": ["Mohammed Ali"], "family": "Al-Hassan"}, {"text": "محمد الحسن"}],
                "birthDate": "1990-01-01",
                "gender": "male",
                "identifier": [{"system": "http://hl7.org/fhir/sid/passport-SYR", "value": "n 0123-456"}],
                "telecom": [{"system": "phone", "value": "0944 123 456"}, {"system": "email", "value": "x@y"}],
                "address": [{"country": "sy"}],
                "extension": [
                    {"url": NATIONALITY, "extension": [{"url": "code", "valueCodeableConcept": {"coding": [{"system": "urn:iso:std:iso:3166", "code": "SY"}]}}]},
                    {"url": BIRTH_PLACE, "valueAddress": {"city": "Aleppo", "country": "SY"}}
                ]
            }),
            &rules,
        );
        assert_eq!(p.names.len(), 2);
        assert_eq!(p.names[0].given.len(), 2);
        assert_eq!(p.names[0].family[0].forms[0].folded, "hasan");
        assert_eq!(p.names[1].family[0].forms[0].skeleton, "hsn");
        assert_eq!(p.birth.unwrap().year, 1990);
        assert_eq!(p.identifiers[0].value, "N0123456");
        assert_eq!(p.phones, ["+963944123456"]);
        assert_eq!(p.countries, ["SY"]);
        assert_eq!(p.nationality, ["SY"]);
        assert_eq!(p.birthplace, ["SY"]);
    }

    #[test]
    fn an_empty_patient_is_empty() {
        let rules = Rules::default_rules();
        assert!(Person::from_patient(&json!({"resourceType": "Patient"}), &rules).is_empty());
    }
}
