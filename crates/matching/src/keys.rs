//! Blocking keys: the values under which a Patient is indexed so that
//! `$match` reads only the records that share one with the query, never
//! every patient. A record is indexed under
//! - each name token with its birth year (`n:<token>:<year>`),
//! - each pair of its name tokens, in either order (`p:<a>:<b>`), which
//!   finds records without a birth date and with swapped names,
//! - each identifier (`i:<system>|<value>`) and phone (`t:<e164>`).
//!
//! A name token is keyed by its consonant skeleton, the form in which
//! scripts and romanizations meet. A query asks for its tokens with the
//! birth years two either side of its own.

use std::collections::BTreeSet;

use crate::person::Person;

/// Years either side of the query's birth year that blocking looks in.
const YEAR_SPREAD: i32 = 2;
/// Name tokens (the first ones) that form pairs: bounds the keys of
/// people with very long names.
const PAIR_TOKENS: usize = 5;

/// The keys a stored Patient is indexed under.
pub fn index_keys(person: &Person) -> Vec<String> {
    keys(person, 0)
}

/// The keys a `$match` query looks up.
pub fn query_keys(person: &Person) -> Vec<String> {
    keys(person, YEAR_SPREAD)
}

fn keys(person: &Person, spread: i32) -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut tokens: Vec<&str> = Vec::new();
    for name in &person.names {
        for token in name.given.iter().chain(&name.family) {
            for form in &token.forms {
                let key = form.key();
                if !key.is_empty() && !tokens.contains(&key) {
                    tokens.push(key);
                }
            }
        }
    }
    if let Some(birth) = person.birth {
        for token in &tokens {
            for year in birth.year - spread..=birth.year + spread {
                out.insert(format!("n:{token}:{year}"));
            }
        }
    }
    let paired = &tokens[..tokens.len().min(PAIR_TOKENS)];
    for (i, a) in paired.iter().enumerate() {
        for b in &paired[i + 1..] {
            let (x, y) = if a < b { (a, b) } else { (b, a) };
            out.insert(format!("p:{x}:{y}"));
        }
    }
    for id in &person.identifiers {
        out.insert(format!("i:{}|{}", id.system, id.value));
    }
    for phone in &person.phones {
        out.insert(format!("t:{phone}"));
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rules;
    use serde_json::json;

    fn person(v: serde_json::Value) -> Person {
        Person::from_patient(&v, &Rules::default_rules())
    }

    #[test]
    fn arabic_script_and_its_romanization_share_keys() {
        let latin = index_keys(&person(
            json!({"name": [{"given": ["Mohammed"], "family": "Al-Hassan"}], "birthDate": "1990-05-01"}),
        ));
        let arabic = query_keys(&person(
            json!({"name": [{"given": ["محمد"], "family": "الحسن"}], "birthDate": "1991"}),
        ));
        assert!(
            latin.iter().any(|k| arabic.contains(k)),
            "{latin:?} / {arabic:?}"
        );
        assert!(latin.contains(&"p:hsn:mhmd".to_owned()), "{latin:?}");
    }

    #[test]
    fn a_query_reaches_two_years_either_side_but_the_index_holds_one() {
        let p = person(json!({"name": [{"family": "Tesfaye"}], "birthDate": "1990"}));
        assert_eq!(index_keys(&p), ["n:tsf:1990"]);
        assert_eq!(query_keys(&p).len(), 5);
    }

    #[test]
    fn identifiers_and_phones_are_keys() {
        let p = person(
            json!({"identifier": [{"system": "urn:x", "value": "a-1"}], "telecom": [{"system": "phone", "value": "+963 944 123 456"}]}),
        );
        assert_eq!(index_keys(&p), ["i:urn:x|A1", "t:+963944123456"]);
    }
}
