//! FHIR search: parameter definitions, the index rows they produce, and the
//! translation of a FHIR query into SQL that runs on SQLite and PostgreSQL.

pub mod access;
pub(crate) mod index;
pub(crate) mod query;
pub(crate) mod sql;

/// How a search parameter's values are indexed and matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// FHIR string: prefix match, case- and accent-insensitive; `:exact` and
    /// `:contains` modifiers. HumanName and Address values index every part.
    String,
    /// FHIR token: `[system]|[code]`, `|code`, `system|` or `code`.
    /// Identifier, Coding, CodeableConcept, code and boolean values.
    Token,
    /// A token whose code is a phone number, compared as '+' and digits.
    Phone,
    /// FHIR date: date, dateTime, instant or Period, with prefixes.
    Date,
    /// FHIR reference to one of the listed resource types.
    Reference(&'static [&'static str]),
}

/// One search parameter of a resource type.
#[derive(Debug, Clone, Copy)]
pub struct SearchParam {
    /// The name used in queries, e.g. "birthdate".
    pub name: &'static str,
    pub kind: ParamKind,
    /// Element paths below the resource, dot-separated. A segment may filter
    /// array items on a child value: `telecom(system=phone).value`.
    pub paths: &'static [&'static str],
}

/// A resource type a store serves, with its search parameters.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    pub resource_type: &'static str,
    pub params: &'static [SearchParam],
    /// Parameters `_sort` accepts besides `_id` and `_lastUpdated`
    /// (string and date parameters only).
    pub sortable: &'static [&'static str],
    /// A stream that every write of this type is appended to, in commit
    /// order, in the write's own transaction (an outbox of changes that
    /// readers follow with `stream_after`).
    pub announce: Option<&'static str>,
    /// Blocking keys for matching, indexed with every version (see
    /// [`Store::candidates`](crate::Store::candidates)). They are not a
    /// search parameter: a query cannot name them.
    pub keys: Option<Keys>,
}

/// How a resource type's blocking keys are made (table `match_keys`).
#[derive(Debug, Clone, Copy)]
pub struct Keys {
    /// The keys of one resource.
    pub extract: fn(&serde_json::Value) -> Vec<String>,
}

impl ResourceDef {
    pub(crate) fn param(&self, name: &str) -> Option<&SearchParam> {
        self.params.iter().find(|p| p.name == name)
    }
}
