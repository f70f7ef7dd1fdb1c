//! SMART on FHIR scopes, version 2 (`system/Patient.rs`,
//! `system/*.cruds`), with the version 1 forms (`system/Patient.read`,
//! `.write`, `.*`) read as their v2 equivalents.
//!
//! Only `system/` scopes are accepted: a backend service acts for its
//! organization, not for a user or a patient. Query-restricted scopes
//! (`system/Observation.rs?category=…`) are refused rather than widened.

use std::fmt;

/// One interaction a scope may permit (SMART v2's c, r, u, d, s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Interaction {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Interaction {
    const ALL: [(char, Interaction); 5] = [
        ('c', Interaction::Create),
        ('r', Interaction::Read),
        ('u', Interaction::Update),
        ('d', Interaction::Delete),
        ('s', Interaction::Search),
    ];

    /// The SMART v2 letter of the interaction (`c`, `r`, `u`, `d`, `s`).
    pub fn letter(self) -> char {
        Self::ALL
            .iter()
            .find(|(_, i)| *i == self)
            .map_or('?', |(c, _)| *c)
    }
}

/// One granted scope: a resource type (or every type) and interactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// None for `*`.
    pub resource_type: Option<String>,
    pub interactions: Vec<Interaction>,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters: String = self.interactions.iter().map(|i| i.letter()).collect();
        write!(
            f,
            "system/{}.{letters}",
            self.resource_type.as_deref().unwrap_or("*")
        )
    }
}

/// A refused scope string, with why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope '{scope}': {why}")]
pub struct ScopeError {
    pub scope: String,
    pub why: String,
}

/// The scopes of a token or a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parse a space-separated scope string. Every scope must be valid:
    /// one that is not is refused by name, never ignored.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        text.split_whitespace()
            .map(parse_one)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether some scope permits `interaction` on `resource_type`.
    pub fn allows(&self, resource_type: &str, interaction: Interaction) -> bool {
        self.0.iter().any(|s| {
            s.resource_type
                .as_deref()
                .is_none_or(|t| t == resource_type)
                && s.interactions.contains(&interaction)
        })
    }

    /// The scopes of `self` that `granted` also covers: what a client gets
    /// when it asks for more than it was registered with.
    pub fn within(&self, granted: &Scopes) -> Scopes {
        let mut out = Vec::new();
        for asked in &self.0 {
            let interactions: Vec<Interaction> = asked
                .interactions
                .iter()
                .copied()
                .filter(|i| match &asked.resource_type {
                    Some(t) => granted.allows(t, *i),
                    None => granted
                        .0
                        .iter()
                        .any(|g| g.resource_type.is_none() && g.interactions.contains(i)),
                })
                .collect();
            if !interactions.is_empty() {
                out.push(Scope {
                    resource_type: asked.resource_type.clone(),
                    interactions,
                });
            }
        }
        Scopes(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(Scope::to_string).collect();
        f.write_str(&parts.join(" "))
    }
}

fn parse_one(text: &str) -> Result<Scope, ScopeError> {
    let refuse = |why: &str| ScopeError {
        scope: text.to_owned(),
        why: why.to_owned(),
    };
    let rest = text
        .strip_prefix("system/")
        .ok_or_else(|| refuse("only system/ scopes are granted to backend services"))?;
    if rest.contains('?') {
        return Err(refuse("query-restricted scopes are not supported"));
    }
    let (resource_type, permissions) = rest
        .split_once('.')
        .ok_or_else(|| refuse("expected system/<Type>.<permissions>, e.g. system/Patient.rs"))?;
    let resource_type = match resource_type {
        "*" => None,
        t if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()) => Some(t.to_owned()),
        _ => return Err(refuse("the resource type must be a FHIR type name or *")),
    };
    let interactions = match permissions {
        // SMART v1 forms.
        "read" => vec![Interaction::Read, Interaction::Search],
        "write" => vec![
            Interaction::Create,
            Interaction::Update,
            Interaction::Delete,
        ],
        "*" => Interaction::ALL.iter().map(|(_, i)| *i).collect(),
        letters => {
            let mut out = Vec::new();
            let mut last = None;
            for c in letters.chars() {
                let Some(position) = Interaction::ALL.iter().position(|(l, _)| *l == c) else {
                    return Err(refuse("permissions are letters of cruds, in that order"));
                };
                if last.is_some_and(|l| position <= l) {
                    return Err(refuse("permissions are letters of cruds, in that order"));
                }
                last = Some(position);
                out.push(Interaction::ALL[position].1);
            }
            if out.is_empty() {
                return Err(refuse("no permissions"));
            }
            out
        }
    };
    Ok(Scope {
        resource_type,
        interactions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_scopes_permit_exactly_their_letters() {
        let scopes = Scopes::parse("system/Patient.rs system/Encounter.cruds").unwrap();
        assert!(scopes.allows("Patient", Interaction::Read));
        assert!(scopes.allows("Patient", Interaction::Search));
        assert!(!scopes.allows("Patient", Interaction::Create));
        assert!(!scopes.allows("Observation", Interaction::Read));
        for i in [
            Interaction::Create,
            Interaction::Read,
            Interaction::Update,
            Interaction::Delete,
            Interaction::Search,
        ] {
            assert!(scopes.allows("Encounter", i));
        }
    }

    #[test]
    fn v1_forms_and_wildcards_read_as_v2() {
        let scopes = Scopes::parse("system/*.read system/Patient.write").unwrap();
        assert!(scopes.allows("Observation", Interaction::Search));
        assert!(!scopes.allows("Observation", Interaction::Update));
        assert!(scopes.allows("Patient", Interaction::Update));
        assert_eq!(scopes.to_string(), "system/*.rs system/Patient.cud");
    }

    #[test]
    fn user_patient_query_and_malformed_scopes_are_refused_by_name() {
        for (text, says) in [
            ("user/Patient.rs", "only system/"),
            ("patient/*.rs", "only system/"),
            (
                "system/Observation.rs?category=laboratory",
                "query-restricted",
            ),
            ("system/Patient.sr", "in that order"),
            ("system/Patient.rx", "letters of cruds"),
            ("system/Patient", "expected system/<Type>"),
            ("system/Pat-ient.rs", "FHIR type name"),
        ] {
            let err = Scopes::parse(&format!("system/Patient.rs {text}")).unwrap_err();
            assert_eq!(err.scope, text);
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn a_request_is_cut_down_to_what_the_client_was_granted() {
        let granted = Scopes::parse("system/Patient.rs system/Encounter.cruds").unwrap();
        let asked =
            Scopes::parse("system/Patient.cruds system/Observation.rs system/*.rs").unwrap();
        assert_eq!(asked.within(&granted).to_string(), "system/Patient.rs");
    }
}
