//! Parsing of a FHIR query (`name[:modifier]=value` pairs) against a
//! resource type's parameters. Anything not understood is refused with an
//! issue that names it: a search that silently ignored a misspelled
//! parameter would return the wrong patients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use corridor_fhir::Issue;
use sha2::{Digest, Sha256};

use super::{ParamKind, ResourceDef, SearchParam};
use crate::{date, search::index::normalize_reference};

/// Page size when `_count` is absent.
pub const DEFAULT_COUNT: i64 = 20;
/// Largest page a client may ask for.
pub const MAX_COUNT: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefix {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Sa,
    Eb,
}

/// A date value with its prefix, as a range `[lo, hi)` of Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateMatch {
    pub prefix: Prefix,
    pub lo: i64,
    pub hi: i64,
}

/// What one comma-separated value of an indexed parameter asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// Folded prefix, or folded substring with `contains`.
    Text {
        folded: String,
        contains: bool,
    },
    /// Exact, case- and accent-sensitive.
    Exact(String),
    /// `system`: None matches any system; Some(None) only values without one.
    Token {
        system: Option<Option<String>>,
        code: Option<String>,
    },
    Date(DateMatch),
    Reference(String),
}

/// One parameter occurrence. Clauses are AND-ed; the values inside one
/// clause (comma-separated in the query) are OR-ed.
#[derive(Debug, Clone)]
pub(crate) enum Clause<'a> {
    Id(Vec<String>),
    LastUpdated(Vec<DateMatch>),
    /// `:missing=true` (no value) or `:missing=false` (some value).
    Missing(&'a SearchParam, bool),
    Param(&'a SearchParam, Vec<Match>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SortKey<'a> {
    Id,
    LastUpdated,
    Param(&'a SearchParam),
}

/// One `_include`: the references of `param`, of type `target` if given.
#[derive(Debug, Clone)]
pub(crate) struct Include<'a> {
    pub param: &'a SearchParam,
    pub target: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Query<'a> {
    pub clauses: Vec<Clause<'a>>,
    pub sort: Vec<(SortKey<'a>, bool)>,
    pub count: i64,
    pub offset: i64,
    /// Reference parameters whose targets `_include` asks for.
    pub includes: Vec<Include<'a>>,
    /// The query's parameters other than `_page_token`, for links.
    pub params: Vec<(String, String)>,
    pub fingerprint: String,
}

fn invalid(param: &str, message: impl Into<String>) -> Issue {
    Issue::new("invalid", message).at(param.to_owned())
}

/// Parse `params` for `def`. `page_token` (from the request field) wins over
/// a `_page_token` parameter.
pub(crate) fn parse<'a>(
    def: &'a ResourceDef,
    params: &[(String, String)],
    page_token: Option<&str>,
) -> Result<Query<'a>, Issue> {
    let mut clauses = Vec::new();
    let mut sort = Vec::new();
    let mut count = DEFAULT_COUNT;
    let mut includes = Vec::new();
    let mut token_param = None;
    let mut kept = Vec::new();
    for (raw_name, value) in params {
        let (name, modifier) = match raw_name.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (raw_name.as_str(), None),
        };
        if name == "_page_token" {
            token_param = Some(value.clone());
            continue;
        }
        kept.push((raw_name.clone(), value.clone()));
        if value.is_empty() {
            return Err(invalid(
                raw_name,
                format!("search parameter '{raw_name}' has no value"),
            ));
        }
        match name {
            "_count" => {
                no_modifier(raw_name, modifier)?;
                count = value
                    .parse::<i64>()
                    .ok()
                    .filter(|c| (0..=MAX_COUNT).contains(c))
                    .ok_or_else(|| {
                        invalid(
                            raw_name,
                            format!(
                                "_count must be a whole number from 0 to {MAX_COUNT}, not '{value}'"
                            ),
                        )
                    })?;
            }
            "_sort" => {
                no_modifier(raw_name, modifier)?;
                for key in value.split(',') {
                    let (desc, key) = match key.strip_prefix('-') {
                        Some(k) => (true, k),
                        None => (false, key),
                    };
                    let sort_key = match key {
                        "_id" => SortKey::Id,
                        "_lastUpdated" => SortKey::LastUpdated,
                        other => match def.param(other).filter(|_| def.sortable.contains(&other)) {
                            Some(p) => SortKey::Param(p),
                            None => {
                                return Err(invalid(
                                    "_sort",
                                    format!(
                                        "cannot sort {} by '{other}'; sortable: _id, _lastUpdated{}",
                                        def.resource_type,
                                        def.sortable
                                            .iter()
                                            .map(|s| format!(", {s}"))
                                            .collect::<String>()
                                    ),
                                ));
                            }
                        },
                    };
                    sort.push((sort_key, desc));
                }
            }
            "_include" => {
                no_modifier(raw_name, modifier)?;
                includes.push(include(def, value)?);
            }
            "_id" => {
                no_modifier(raw_name, modifier)?;
                clauses.push(Clause::Id(value.split(',').map(str::to_owned).collect()));
            }
            "_lastUpdated" => {
                no_modifier(raw_name, modifier)?;
                let matches = value
                    .split(',')
                    .map(|v| date_match(raw_name, v))
                    .collect::<Result<_, _>>()?;
                clauses.push(Clause::LastUpdated(matches));
            }
            _ => {
                let Some(param) = def.param(name) else {
                    return Err(Issue::new(
                        "not-supported",
                        format!(
                            "unknown search parameter '{name}' for {}; supported: {}",
                            def.resource_type,
                            supported(def)
                        ),
                    )
                    .at(raw_name.clone()));
                };
                clauses.push(param_clause(param, raw_name, modifier, value)?);
            }
        }
    }
    let fingerprint = fingerprint(def.resource_type, &kept);
    let offset = match page_token
        .filter(|t| !t.is_empty())
        .or(token_param.as_deref())
    {
        Some(token) => decode_token(token, &fingerprint)?,
        None => 0,
    };
    Ok(Query {
        clauses,
        sort,
        count,
        offset,
        includes,
        params: kept,
        fingerprint,
    })
}

/// `_include=Type:param[:Target]`: `param` is one of `Type`'s reference
/// parameters, and `Target`, when given, one of its target types.
fn include<'a>(def: &'a ResourceDef, value: &str) -> Result<Include<'a>, Issue> {
    let mut parts = value.split(':');
    let (source, name, target, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    let found = match (source, name, rest) {
        (Some(source), Some(name), None) if source == def.resource_type => def
            .param(name)
            .and_then(|param| match param.kind {
                ParamKind::Reference(targets) => Some((param, targets)),
                _ => None,
            })
            .filter(|(_, targets)| target.is_none_or(|t| targets.contains(&t))),
        _ => None,
    };
    let Some((param, _)) = found else {
        let choices: Vec<String> = def
            .params
            .iter()
            .filter(|p| matches!(p.kind, ParamKind::Reference(_)))
            .map(|p| format!("{}:{}", def.resource_type, p.name))
            .collect();
        return Err(Issue::new(
            "not-supported",
            format!(
                "cannot _include '{value}'; this search can include {} (optionally :TargetType)",
                choices.join(", ")
            ),
        )
        .at("_include"));
    };
    Ok(Include {
        param,
        target: target.map(str::to_owned),
    })
}

fn supported(def: &ResourceDef) -> String {
    let mut names: Vec<&str> = def.params.iter().map(|p| p.name).collect();
    names.extend(["_id", "_lastUpdated", "_count", "_sort", "_include"]);
    names.join(", ")
}

fn no_modifier(raw_name: &str, modifier: Option<&str>) -> Result<(), Issue> {
    match modifier {
        None => Ok(()),
        Some(m) => Err(Issue::new(
            "not-supported",
            format!("modifier ':{m}' is not supported on '{raw_name}'"),
        )
        .at(raw_name.to_owned())),
    }
}

fn param_clause<'a>(
    param: &'a SearchParam,
    raw_name: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Clause<'a>, Issue> {
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => {
                return Err(invalid(
                    raw_name,
                    format!("':missing' takes true or false, not '{value}'"),
                ));
            }
        };
        return Ok(Clause::Missing(param, missing));
    }
    let values = split_values(value);
    let matches = match (param.kind, modifier) {
        (ParamKind::String, None) => values
            .iter()
            .map(|v| Match::Text {
                folded: crate::text::fold(v),
                contains: false,
            })
            .collect(),
        (ParamKind::String, Some("contains")) => values
            .iter()
            .map(|v| Match::Text {
                folded: crate::text::fold(v),
                contains: true,
            })
            .collect(),
        (ParamKind::String, Some("exact")) => values.into_iter().map(Match::Exact).collect(),
        (ParamKind::Token, None) => values.iter().map(|v| token_match(v)).collect(),
        (ParamKind::Phone, None) => values
            .iter()
            .map(|v| {
                let code = crate::text::phone(v.rsplit('|').next().unwrap_or(v));
                if code.is_empty() {
                    Err(invalid(
                        raw_name,
                        format!("'{v}' has no digits to match a phone number"),
                    ))
                } else {
                    Ok(Match::Token {
                        system: None,
                        code: Some(code),
                    })
                }
            })
            .collect::<Result<_, _>>()?,
        (ParamKind::Date, None) => values
            .iter()
            .map(|v| date_match(raw_name, v).map(Match::Date))
            .collect::<Result<_, _>>()?,
        (ParamKind::Reference(targets), None) => values
            .iter()
            .map(|v| reference_match(raw_name, targets, v))
            .collect::<Result<_, _>>()?,
        (_, Some(m)) => {
            return Err(Issue::new(
                "not-supported",
                format!("modifier ':{m}' is not supported on '{}'", param.name),
            )
            .at(raw_name.to_owned()));
        }
    };
    Ok(Clause::Param(param, matches))
}

/// Split on commas that are not escaped with a backslash, and unescape.
fn split_values(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), out.last_mut()) {
                    last.push(next);
                }
            }
            ',' => out.push(String::new()),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

fn token_match(value: &str) -> Match {
    match value.split_once('|') {
        None => Match::Token {
            system: None,
            code: Some(value.to_owned()),
        },
        Some(("", code)) => Match::Token {
            system: Some(None),
            code: Some(code.to_owned()),
        },
        Some((system, "")) => Match::Token {
            system: Some(Some(system.to_owned())),
            code: None,
        },
        Some((system, code)) => Match::Token {
            system: Some(Some(system.to_owned())),
            code: Some(code.to_owned()),
        },
    }
}

fn date_match(raw_name: &str, value: &str) -> Result<DateMatch, Issue> {
    let prefixes = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("lt", Prefix::Lt),
        ("gt", Prefix::Gt),
        ("le", Prefix::Le),
        ("ge", Prefix::Ge),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
    ];
    let (prefix, rest) = match value
        .get(..2)
        .filter(|p| p.chars().all(|c| c.is_ascii_lowercase()))
    {
        Some(p) => match prefixes.iter().find(|(name, _)| *name == p) {
            Some((_, prefix)) => (*prefix, &value[2..]),
            None => {
                return Err(invalid(
                    raw_name,
                    format!("unsupported prefix '{p}'; use eq, ne, lt, gt, le, ge, sa or eb"),
                ));
            }
        },
        None => (Prefix::Eq, value),
    };
    let range = date::parse(rest).ok_or_else(|| {
        invalid(raw_name, format!("'{rest}' is not a FHIR date; use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[Z|±hh:mm]"))
    })?;
    Ok(DateMatch {
        prefix,
        lo: range.lo,
        hi: range.hi,
    })
}

fn reference_match(raw_name: &str, targets: &[&str], value: &str) -> Result<Match, Issue> {
    if !value.contains('/') {
        // A bare id: FHIR allows it when the parameter has one target type.
        return match targets {
            [only] => Ok(Match::Reference(format!("{only}/{value}"))),
            _ => Err(invalid(
                raw_name,
                format!(
                    "'{value}' is ambiguous; write Type/id, e.g. {}/{value}",
                    targets.first().copied().unwrap_or("Patient")
                ),
            )),
        };
    }
    let reference = normalize_reference(value).ok_or_else(|| {
        invalid(
            raw_name,
            format!("'{value}' is not a reference; write Type/id"),
        )
    })?;
    let kind = reference.split('/').next().unwrap_or_default();
    if !targets.contains(&kind) {
        return Err(invalid(
            raw_name,
            format!(
                "'{raw_name}' refers to {}, not {kind}",
                targets.join(" or ")
            ),
        ));
    }
    Ok(Match::Reference(reference))
}

fn fingerprint(resource_type: &str, params: &[(String, String)]) -> String {
    let mut hash = Sha256::new();
    hash.update(resource_type.as_bytes());
    for (name, value) in params.iter().filter(|(n, _)| n != "_count") {
        hash.update(b"\n");
        hash.update(name.as_bytes());
        hash.update(b"=");
        hash.update(value.as_bytes());
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An opaque continuation token: the offset, bound to the query it came from.
pub(crate) fn encode_token(offset: i64, fingerprint: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{offset}:{fingerprint}"))
}

pub(crate) fn decode_token(token: &str, fingerprint: &str) -> Result<i64, Issue> {
    let bad = || {
        invalid(
            "_page_token",
            "page token is not valid; start the search again without it",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, ':');
    let (Some("v1"), Some(offset), Some(fp)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if fp != fingerprint {
        return Err(invalid(
            "_page_token",
            "page token belongs to a different search; repeat the original query with it",
        ));
    }
    offset
        .parse::<i64>()
        .ok()
        .filter(|o| *o >= 0)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_commas_stay_in_one_value() {
        assert_eq!(split_values(r"a\,b,c"), ["a,b", "c"]);
    }

    #[test]
    fn token_forms_are_distinguished() {
        assert_eq!(
            token_match("x|1"),
            Match::Token {
                system: Some(Some("x".into())),
                code: Some("1".into())
            }
        );
        assert_eq!(
            token_match("|1"),
            Match::Token {
                system: Some(None),
                code: Some("1".into())
            }
        );
        assert_eq!(
            token_match("x|"),
            Match::Token {
                system: Some(Some("x".into())),
                code: None
            }
        );
        assert_eq!(
            token_match("1"),
            Match::Token {
                system: None,
                code: Some("1".into())
            }
        );
    }

    #[test]
    fn page_tokens_round_trip_and_are_bound_to_their_query() {
        let token = encode_token(40, "abc");
        assert_eq!(decode_token(&token, "abc").unwrap(), 40);
        assert!(decode_token(&token, "abd").is_err());
        assert!(decode_token("garbage!", "abc").is_err());
    }
}
