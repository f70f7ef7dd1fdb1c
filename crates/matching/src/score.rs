//! Fellegi-Sunter comparison of two people: each field's level, its
//! weight, and the grade of the total, with the evidence kept so that a
//! person can see why two records were paired.

use serde::Serialize;

use crate::names::{Agreement, Token, agree};
use crate::person::{Name, Person};
use crate::rules::Rules;

/// One field's contribution.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub field: &'static str,
    pub level: &'static str,
    pub weight: f64,
    /// What was compared, for a person to read.
    pub detail: String,
}

/// Everything that was compared, and the total.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    pub weight: f64,
    pub comparisons: Vec<Comparison>,
}

impl Evidence {
    /// The sum of the weights in favour.
    pub fn for_weight(&self) -> f64 {
        self.comparisons.iter().map(|c| c.weight.max(0.0)).sum()
    }

    /// The strongest single weight against.
    pub fn strongest_against(&self) -> f64 {
        self.comparisons
            .iter()
            .map(|c| c.weight)
            .fold(0.0, f64::min)
    }
}

/// FHIR match-grade codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grade {
    CertainlyNot,
    Possible,
    Probable,
    Certain,
}

impl Grade {
    pub fn code(self) -> &'static str {
        match self {
            Self::Certain => "certain",
            Self::Probable => "probable",
            Self::Possible => "possible",
            Self::CertainlyNot => "certainly-not",
        }
    }
}

/// The grade of a pair, or None when it is neither a possible match nor
/// ruled out by a contradiction.
pub fn grade(evidence: &Evidence, rules: &Rules) -> Option<Grade> {
    let g = rules.grades;
    let w = evidence.weight;
    if w >= g.certain {
        Some(Grade::Certain)
    } else if w >= g.probable {
        Some(Grade::Probable)
    } else if w >= g.possible {
        Some(Grade::Possible)
    } else if evidence.strongest_against() <= g.contradiction {
        Some(Grade::CertainlyNot)
    } else {
        None
    }
}

/// Compare two people under `rules`.
pub fn compare(a: &Person, b: &Person, rules: &Rules) -> Evidence {
    let mut out = Vec::new();
    names(a, b, rules, &mut out);
    if let (Some(x), Some(y)) = (a.birth, b.birth) {
        let level = x.compare(&y, &rules.estimated_dates).name();
        out.push(Comparison {
            field: "birthdate",
            level,
            weight: rules.weight("birthdate", level),
            detail: format!("{} / {}", show_date(x), show_date(y)),
        });
    }
    if let (Some(x), Some(y)) = (&a.sex, &b.sex) {
        agreement(&mut out, rules, "sex", x == y, format!("{x} / {y}"));
    }
    identifiers(a, b, rules, &mut out);
    sets(&mut out, rules, "phone", &a.phones, &b.phones);
    sets(&mut out, rules, "country", &a.countries, &b.countries);
    sets(&mut out, rules, "birthplace", &a.birthplace, &b.birthplace);
    sets(
        &mut out,
        rules,
        "nationality",
        &a.nationality,
        &b.nationality,
    );
    Evidence {
        weight: out.iter().map(|c| c.weight).sum(),
        comparisons: out,
    }
}

fn show_date(d: crate::dates::BirthDate) -> String {
    match (d.month, d.day) {
        (Some(m), Some(day)) => format!("{:04}-{m:02}-{day:02}", d.year),
        (Some(m), None) => format!("{:04}-{m:02}", d.year),
        _ => format!("{:04}", d.year),
    }
}

fn agreement(
    out: &mut Vec<Comparison>,
    rules: &Rules,
    field: &'static str,
    agrees: bool,
    detail: String,
) {
    let level = if agrees { "agree" } else { "disagree" };
    out.push(Comparison {
        field,
        level,
        weight: rules.weight(field, level),
        detail,
    });
}

fn sets(out: &mut Vec<Comparison>, rules: &Rules, field: &'static str, a: &[String], b: &[String]) {
    if a.is_empty() || b.is_empty() {
        return;
    }
    let agrees = a.iter().any(|x| b.contains(x));
    agreement(
        out,
        rules,
        field,
        agrees,
        format!("{} / {}", a.join(", "), b.join(", ")),
    );
}

/// Identifiers: the same value of any system agrees; different values of
/// a strong system, with none the same, disagree.
fn identifiers(a: &Person, b: &Person, rules: &Rules, out: &mut Vec<Comparison>) {
    if let Some(same) = a.identifiers.iter().find(|x| b.identifiers.contains(x)) {
        agreement(
            out,
            rules,
            "identifier",
            true,
            format!("{}|{}", same.system, same.value),
        );
        return;
    }
    let clash = a.identifiers.iter().find_map(|x| {
        if !rules.is_strong(&x.system) {
            return None;
        }
        b.identifiers
            .iter()
            .find(|y| y.system == x.system)
            .map(|y| format!("{}: {} / {}", x.system, x.value, y.value))
    });
    if let Some(detail) = clash {
        agreement(out, rules, "identifier", false, detail);
    }
}

fn level_name(a: Agreement) -> &'static str {
    match a {
        Agreement::Exact => "exact",
        Agreement::Variant => "variant",
        Agreement::Similar => "similar",
        Agreement::Different => "different",
    }
}

/// The best agreement between any token of `a` and any of `b`, with the
/// two tokens.
fn best(a: &[Token], b: &[Token], cut: f64) -> Option<(Agreement, String)> {
    let mut best: Option<(Agreement, String)> = None;
    for x in a {
        for y in b {
            let level = agree(x, y, cut);
            if best.as_ref().is_none_or(|(l, _)| level > *l) {
                best = Some((level, format!("{} / {}", x.written, y.written)));
            }
        }
    }
    best
}

/// Given and family names: the better of the straight and the swapped
/// reading, over every pair of the two people's names.
fn names(a: &Person, b: &Person, rules: &Rules, out: &mut Vec<Comparison>) {
    let mut chosen: Option<(f64, Vec<Comparison>)> = None;
    for x in &a.names {
        for y in &b.names {
            for swapped in [false, true] {
                let found = name_pair(x, y, swapped, rules);
                let total: f64 = found.iter().map(|c| c.weight).sum();
                if !found.is_empty() && chosen.as_ref().is_none_or(|(t, _)| total > *t) {
                    chosen = Some((total, found));
                }
            }
        }
    }
    if let Some((_, found)) = chosen {
        out.extend(found);
    }
}

fn name_pair(x: &Name, y: &Name, swapped: bool, rules: &Rules) -> Vec<Comparison> {
    let (y_family, y_given) = if swapped {
        (&y.given, &y.family)
    } else {
        (&y.family, &y.given)
    };
    let cut = rules.name_similarity;
    let mut out = Vec::new();
    for (field, mine, theirs) in [
        ("family", &x.family, y_family),
        ("given", &x.given, y_given),
    ] {
        if let Some((level, detail)) = best(mine, theirs, cut) {
            let level = level_name(level);
            out.push(Comparison {
                field,
                level,
                weight: rules.weight(field, level),
                detail: if swapped {
                    format!("{detail} (given and family swapped)")
                } else {
                    detail
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn person(v: serde_json::Value) -> Person {
        Person::from_patient(&v, &Rules::default_rules())
    }

    fn graded(a: serde_json::Value, b: serde_json::Value) -> (Option<Grade>, Evidence) {
        let rules = Rules::default_rules();
        let e = compare(&person(a), &person(b), &rules);
        (grade(&e, &rules), e)
    }

    #[test]
    fn the_same_person_across_scripts_and_estimated_dates_is_a_possible_match_at_least() {
        let (grade, evidence) = graded(
            json!({"name": [{"given": ["Mohammed"], "family": "Al-Hassan"}], "birthDate": "1990", "gender": "male"}),
            json!({"name": [{"given": ["محمد"], "family": "الحسن"}], "birthDate": "1990-01-01", "gender": "male"}),
        );
        assert!(grade >= Some(Grade::Possible), "{evidence:?}");
    }

    #[test]
    fn swapped_given_and_family_names_are_read_both_ways() {
        let (grade, evidence) = graded(
            json!({"name": [{"given": ["Tesfaye"], "family": "Gebremedhin"}], "birthDate": "1988-03-12", "gender": "male"}),
            json!({"name": [{"given": ["Gebremedhin"], "family": "Tesfaye"}], "birthDate": "1988-03-12", "gender": "male"}),
        );
        assert_eq!(grade, Some(Grade::Certain), "{evidence:?}");
        assert!(evidence.comparisons[0].detail.contains("swapped"));
    }

    #[test]
    fn different_passports_of_one_country_rule_out_namesakes_born_the_same_year() {
        let (grade, evidence) = graded(
            json!({"name": [{"given": ["Ahmed"], "family": "Ali"}], "birthDate": "1990-01-01", "gender": "male",
                   "identifier": [{"system": "http://hl7.org/fhir/sid/passport-SYR", "value": "N123456"}]}),
            json!({"name": [{"given": ["Ahmed"], "family": "Ali"}], "birthDate": "1990", "gender": "male",
                   "identifier": [{"system": "http://hl7.org/fhir/sid/passport-SYR", "value": "N654321"}]}),
        );
        assert_eq!(grade, Some(Grade::CertainlyNot), "{evidence:?}");
        assert!(evidence.for_weight() >= Rules::default_rules().grades.possible);
    }

    #[test]
    fn the_same_strong_identifier_is_near_certain() {
        let (grade, _) = graded(
            json!({"name": [{"family": "Ali"}], "identifier": [{"system": "https://www.unhcr.org/proGres/individual", "value": "123-45C67890"}]}),
            json!({"name": [{"family": "Aly"}], "identifier": [{"system": "https://www.unhcr.org/proGres/individual", "value": "12345C67890"}]}),
        );
        assert_eq!(grade, Some(Grade::Certain));
    }

    #[test]
    fn namesakes_with_an_estimated_birth_year_are_not_certain() {
        let (grade, evidence) = graded(
            json!({"name": [{"given": ["Mohammed"], "family": "Ahmed"}], "birthDate": "1990-01-01", "gender": "male", "address": [{"country": "SY"}]}),
            json!({"name": [{"given": ["Mohammed"], "family": "Ahmed"}], "birthDate": "1990-01-01", "gender": "male", "address": [{"country": "SY"}]}),
        );
        assert!(grade < Some(Grade::Certain), "{evidence:?}");
    }

    #[test]
    fn unrelated_people_get_no_grade() {
        let (grade, _) = graded(
            json!({"name": [{"given": ["Amina"], "family": "Yusuf"}], "birthDate": "1975-05-02", "gender": "female"}),
            json!({"name": [{"given": ["Oleksandr"], "family": "Shevchenko"}], "birthDate": "2001-11-30", "gender": "male"}),
        );
        assert_eq!(grade, None);
    }
}
