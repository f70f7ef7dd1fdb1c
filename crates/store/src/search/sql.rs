//! Translation of a parsed query into SQL that runs unchanged on SQLite and
//! PostgreSQL. Every value is a bound parameter; nothing from the client is
//! ever spliced into the SQL text.

use super::ParamKind;
use super::access::{Access, Condition};
use super::query::{Clause, DateMatch, Match, Prefix, Query, SortKey};
use crate::text::like_escape;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// `WHERE` and `ORDER BY` bodies for the `resources r` table, with their
/// arguments. The first `where_args` arguments belong to the `WHERE` body.
#[derive(Debug)]
pub(crate) struct Sql {
    pub where_sql: String,
    pub order_sql: String,
    pub args: Vec<Arg>,
    pub where_args: usize,
}

struct Builder {
    args: Vec<Arg>,
}

impl Builder {
    fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.bind(Arg::Text(s.to_owned()))
    }

    fn int(&mut self, n: i64) -> String {
        self.bind(Arg::Int(n))
    }
}

/// The index rows of the resource `r` of the outer query; used by `_sort`,
/// where one lookup per result row is what is wanted.
const ROWS_OF_R: &str =
    "FROM search_index s WHERE s.resource_type = r.resource_type AND s.resource_id = r.id";

/// The largest code point: every string that starts with `p` sorts, byte
/// by byte, at or after `p` and before `p` followed by this.
const MAX_CHAR: char = '\u{10FFFF}';

pub(crate) fn build(resource_type: &str, query: &Query<'_>, access: Option<&Access>) -> Sql {
    let mut b = Builder { args: Vec::new() };
    let mut conds = vec![
        format!("r.resource_type = {}", b.text(resource_type)),
        format!("r.deleted = {}", b.int(0)),
    ];
    for clause in &query.clauses {
        conds.push(clause_sql(&mut b, resource_type, clause));
    }
    if let Some(access) = access {
        conds.push(access_sql(&mut b, Some(resource_type), access));
    }
    let where_sql = conds.join(" AND ");
    let where_args = b.args.len();
    let mut order: Vec<String> = query
        .sort
        .iter()
        .map(|(key, desc)| {
            let expr = match key {
                SortKey::Id => "r.id".to_owned(),
                SortKey::LastUpdated => "r.last_updated_ms".to_owned(),
                SortKey::Param(p) => {
                    let column = if p.kind == ParamKind::Date {
                        "s.date_lo"
                    } else {
                        "s.text_norm"
                    };
                    let exact_only = if p.kind == ParamKind::Date {
                        ""
                    } else {
                        " AND s.text_exact IS NOT NULL"
                    };
                    format!(
                        "(SELECT MIN({column}) {ROWS_OF_R} AND s.param = {}{exact_only})",
                        b.text(p.name)
                    )
                }
            };
            format!("{expr} {} NULLS LAST", if *desc { "DESC" } else { "ASC" })
        })
        .collect();
    // Ids never change, so they make the order total and paging stable.
    order.push("r.id ASC".to_owned());
    Sql {
        where_sql,
        order_sql: order.join(", "),
        args: b.args,
        where_args,
    }
}

/// A clause as SQL over `resources r`. Indexed parameters become an
/// uncorrelated `r.id IN (SELECT ...)`, so that each is answered once from
/// its index (type, parameter, value) rather than once per resource.
fn clause_sql(b: &mut Builder, resource_type: &str, clause: &Clause<'_>) -> String {
    match clause {
        Clause::Id(ids) => {
            let ids: Vec<String> = ids.iter().map(|id| b.text(id)).collect();
            format!("r.id IN ({})", ids.join(", "))
        }
        Clause::LastUpdated(dates) => {
            let ors: Vec<String> = dates
                .iter()
                .map(|d| date_sql(b, d, "r.last_updated_ms", "(r.last_updated_ms + 1)"))
                .collect();
            format!("({})", ors.join(" OR "))
        }
        Clause::Missing(param, missing) => {
            let not = if *missing { "NOT " } else { "" };
            let (t, p) = (b.text(resource_type), b.text(param.name));
            format!(
                "r.id {not}IN (SELECT s.resource_id FROM search_index s WHERE s.resource_type = {t} AND s.param = {p})"
            )
        }
        Clause::Param(param, matches) => {
            let (t, p) = (b.text(resource_type), b.text(param.name));
            let ors: Vec<String> = matches.iter().map(|m| match_sql(b, m)).collect();
            format!(
                "r.id IN (SELECT s.resource_id FROM search_index s WHERE s.resource_type = {t} AND s.param = {p} AND ({}))",
                ors.join(" OR ")
            )
        }
    }
}

/// The rows `access` lets the caller see, in the same `WHERE`: so the
/// total and the pages count only those. `resource_type` is the type of
/// every row, or None when the rows are of several types.
fn access_sql(b: &mut Builder, resource_type: Option<&str>, access: &Access) -> String {
    let of_r = |b: &mut Builder| match resource_type {
        Some(t) => b.text(t),
        None => "r.resource_type".to_owned(),
    };
    let cond = |b: &mut Builder, c: &Condition| -> String {
        match c {
            Condition::Token {
                param,
                system,
                code,
            } => {
                let t = of_r(b);
                format!(
                    "r.id IN (SELECT s.resource_id FROM search_index s WHERE s.resource_type = {t} AND s.param = {} AND s.token_system = {} AND s.token_code = {})",
                    b.text(param),
                    b.text(system),
                    b.text(code)
                )
            }
            Condition::Refers { param, references } if !references.is_empty() => {
                let t = of_r(b);
                let p = b.text(param);
                let refs: Vec<String> = references.iter().map(|r| b.text(r)).collect();
                format!(
                    "r.id IN (SELECT s.resource_id FROM search_index s WHERE s.resource_type = {t} AND s.param = {p} AND s.ref IN ({}))",
                    refs.join(", ")
                )
            }
            Condition::Refers { .. } => "1 = 0".to_owned(),
            Condition::All => "1 = 1".to_owned(),
        }
    };
    let any: Vec<String> = access.any_of.iter().map(|c| cond(b, c)).collect();
    let mut sql = if any.is_empty() {
        "1 = 0".to_owned()
    } else {
        format!("({})", any.join(" OR "))
    };
    for excluded in &access.none_of {
        sql = format!("{sql} AND NOT {}", cond(b, excluded));
    }
    format!("({sql})")
}

/// [`access_sql`] for a query of its own: its placeholders start after
/// `bound` arguments already bound; the rows may be of several types.
pub(crate) fn access_clause(bound: usize, access: &Access) -> (String, Vec<Arg>) {
    let mut b = Builder {
        args: vec![Arg::Int(0); bound],
    };
    let sql = access_sql(&mut b, None, access);
    (sql, b.args.split_off(bound))
}

fn match_sql(b: &mut Builder, m: &Match) -> String {
    match m {
        // A prefix is a byte-wise range, which an index answers on both
        // backends (text_norm is BINARY in SQLite and COLLATE "C" in
        // PostgreSQL); a substring needs LIKE.
        Match::Text {
            folded,
            contains: false,
        } => {
            let upper = format!("{folded}{MAX_CHAR}");
            format!(
                "(s.text_norm >= {} AND s.text_norm < {})",
                b.text(folded),
                b.text(&upper)
            )
        }
        Match::Text {
            folded,
            contains: true,
        } => {
            let pattern = format!("%{}%", like_escape(folded));
            format!("s.text_norm LIKE {} ESCAPE '\\'", b.text(&pattern))
        }
        Match::Exact(v) => format!("s.text_exact = {}", b.text(v)),
        Match::Token { system, code } => {
            let mut parts = Vec::new();
            if let Some(code) = code {
                parts.push(format!("s.token_code = {}", b.text(code)));
            }
            match system {
                None => {}
                Some(None) => parts.push("s.token_system IS NULL".to_owned()),
                Some(Some(system)) => parts.push(format!("s.token_system = {}", b.text(system))),
            }
            format!("({})", parts.join(" AND "))
        }
        Match::Date(d) => date_sql(b, d, "s.date_lo", "s.date_hi"),
        Match::Reference(r) => format!("s.ref = {}", b.text(r)),
    }
}

/// FHIR date-prefix semantics over half-open ranges: the target value is
/// `[t_lo, t_hi)`, the search value `[lo, hi)`.
fn date_sql(b: &mut Builder, date: &DateMatch, t_lo: &str, t_hi: &str) -> String {
    let (lo, hi) = (b.int(date.lo), b.int(date.hi));
    let contained = format!("({t_lo} >= {lo} AND {t_hi} <= {hi})");
    match date.prefix {
        Prefix::Eq => contained,
        Prefix::Ne => format!("NOT {contained}"),
        Prefix::Gt => format!("({t_hi} > {hi})"),
        Prefix::Lt => format!("({t_lo} < {lo})"),
        Prefix::Ge => format!("({t_hi} > {hi} OR {contained})"),
        Prefix::Le => format!("({t_lo} < {lo} OR {contained})"),
        Prefix::Sa => format!("({t_lo} >= {hi})"),
        Prefix::Eb => format!("({t_hi} <= {lo})"),
    }
}
