//! The matching rules file: comparisons, their levels with m and u
//! probabilities, grade thresholds and normalization settings. The default
//! ships as `rules.toml` beside this crate and is documented there.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The rules that ship with Corridor.
pub const DEFAULT_RULES: &str = include_str!("../rules.toml");

/// Every comparison and its levels, best first. The rules file must give
/// m and u for each, and nothing else.
pub const COMPARISONS: &[(&str, &[&str])] = &[
    ("family", &["exact", "variant", "similar", "different"]),
    ("given", &["exact", "variant", "similar", "different"]),
    (
        "birthdate",
        &[
            "exact",
            "day-month-swapped",
            "same-year",
            "within-two-years",
            "different",
        ],
    ),
    ("sex", &["agree", "disagree"]),
    ("identifier", &["agree", "disagree"]),
    ("phone", &["agree", "disagree"]),
    ("country", &["agree", "disagree"]),
    ("birthplace", &["agree", "disagree"]),
    ("nationality", &["agree", "disagree"]),
];

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("matching rules: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("matching rules: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probabilities {
    m: f64,
    u: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    scoring: Scoring,
    grades: Grades,
    identifiers: Identifiers,
    comparisons: BTreeMap<String, BTreeMap<String, Probabilities>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scoring {
    prior_log2_odds: f64,
    name_similarity: f64,
    estimated_dates: Vec<String>,
    default_phone_region: String,
    candidates: usize,
    records_per_key: usize,
}

/// Total weights at which a pair gets each grade.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grades {
    pub certain: f64,
    pub probable: f64,
    pub possible: f64,
    /// One comparison weighing this or less marks a pair below `possible`
    /// as certainly-not.
    pub contradiction: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identifiers {
    strong: Vec<String>,
}

/// Validated rules, with each level's weight worked out.
#[derive(Debug, Clone)]
pub struct Rules {
    pub grades: Grades,
    pub prior_log2_odds: f64,
    pub name_similarity: f64,
    /// (month, day) pairs of estimated birth dates.
    pub estimated_dates: Vec<(u32, u32)>,
    pub default_phone_region: Option<String>,
    pub candidates: usize,
    /// At most this many records are read under any one blocking key.
    pub records_per_key: usize,
    strong_identifiers: Vec<String>,
    /// (comparison, level) -> log2(m/u).
    weights: BTreeMap<(String, String), f64>,
}

impl Rules {
    /// The shipped defaults.
    pub fn default_rules() -> Self {
        Self::parse(DEFAULT_RULES).expect("the shipped matching rules are valid")
    }

    /// Parse and check a rules file.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let file: File = toml::from_str(text)?;
        let invalid = |s: String| Err(RulesError::Invalid(s));
        let mut weights = BTreeMap::new();
        for (comparison, levels) in &file.comparisons {
            let Some((_, known)) = COMPARISONS.iter().find(|(c, _)| c == comparison) else {
                let names: Vec<&str> = COMPARISONS.iter().map(|(c, _)| *c).collect();
                return invalid(format!(
                    "unknown comparison '{comparison}'; the comparisons are {}",
                    names.join(", ")
                ));
            };
            for level in levels.keys() {
                if !known.contains(&level.as_str()) {
                    return invalid(format!(
                        "comparison '{comparison}' has no level '{level}'; its levels are {}",
                        known.join(", ")
                    ));
                }
            }
            let (mut m_sum, mut u_sum) = (0.0, 0.0);
            for level in *known {
                let Some(p) = levels.get(*level) else {
                    return invalid(format!(
                        "comparison '{comparison}' needs level '{level}' (m and u)"
                    ));
                };
                for (name, value) in [("m", p.m), ("u", p.u)] {
                    if !(value > 0.0 && value <= 1.0) {
                        return invalid(format!(
                            "{comparison}.{level}.{name} is {value}; probabilities lie in (0, 1]"
                        ));
                    }
                }
                m_sum += p.m;
                u_sum += p.u;
                weights.insert(
                    ((*comparison).clone(), (*level).to_owned()),
                    (p.m / p.u).log2(),
                );
            }
            for (name, sum) in [("m", m_sum), ("u", u_sum)] {
                if sum > 1.0 + 1e-9 {
                    return invalid(format!(
                        "the {name} probabilities of '{comparison}' sum to {sum:.4}; they may not exceed 1"
                    ));
                }
            }
        }
        for (comparison, _) in COMPARISONS {
            if !file.comparisons.contains_key(*comparison) {
                return invalid(format!("comparison '{comparison}' is missing"));
            }
        }
        let g = file.grades;
        if !(g.certain > g.probable && g.probable > g.possible && g.possible > g.contradiction) {
            return invalid(format!(
                "grades must fall: certain ({}) > probable ({}) > possible ({}) > contradiction ({})",
                g.certain, g.probable, g.possible, g.contradiction
            ));
        }
        let s = file.scoring;
        if !(0.0..=1.0).contains(&s.name_similarity) {
            return invalid(format!(
                "scoring.name_similarity is {}; it lies in [0, 1]",
                s.name_similarity
            ));
        }
        if s.candidates == 0 {
            return invalid("scoring.candidates must be at least 1".to_owned());
        }
        if s.records_per_key < s.candidates {
            return invalid(format!(
                "scoring.records_per_key ({}) must be at least scoring.candidates ({})",
                s.records_per_key, s.candidates
            ));
        }
        let mut estimated_dates = Vec::new();
        for text in &s.estimated_dates {
            let parsed = text
                .split_once('-')
                .and_then(|(m, d)| Some((m.parse::<u32>().ok()?, d.parse::<u32>().ok()?)))
                .filter(|(m, d)| (1..=12).contains(m) && (1..=31).contains(d));
            match parsed {
                Some(md) => estimated_dates.push(md),
                None => {
                    return invalid(format!(
                        "scoring.estimated_dates: '{text}' is not a month-day like \"01-01\""
                    ));
                }
            }
        }
        let region = s.default_phone_region.trim().to_ascii_uppercase();
        if !region.is_empty() && region.parse::<phonenumber::country::Id>().is_err() {
            return invalid(format!(
                "scoring.default_phone_region: '{region}' is not an ISO 3166 alpha-2 region"
            ));
        }
        Ok(Self {
            grades: g,
            prior_log2_odds: s.prior_log2_odds,
            name_similarity: s.name_similarity,
            estimated_dates,
            default_phone_region: (!region.is_empty()).then_some(region),
            candidates: s.candidates,
            records_per_key: s.records_per_key,
            strong_identifiers: file.identifiers.strong,
            weights,
        })
    }

    /// The weight of `level` of `comparison`.
    pub fn weight(&self, comparison: &str, level: &str) -> f64 {
        self.weights
            .get(&(comparison.to_owned(), level.to_owned()))
            .copied()
            .unwrap_or_else(|| {
                panic!("no level {comparison}.{level}: COMPARISONS and the scorer disagree")
            })
    }

    /// Whether `system` names a strong identifier.
    pub fn is_strong(&self, system: &str) -> bool {
        self.strong_identifiers
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => system.starts_with(prefix),
                None => system == pattern,
            })
    }

    /// The score (0..1) of a total weight.
    pub fn score(&self, weight: f64) -> f64 {
        1.0 / (1.0 + (-(weight + self.prior_log2_odds)).exp2())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_load_and_weigh_agreement_above_disagreement() {
        let rules = Rules::default_rules();
        for (comparison, levels) in COMPARISONS {
            let first = rules.weight(comparison, levels[0]);
            let last = rules.weight(comparison, levels[levels.len() - 1]);
            assert!(first > 0.0 && last < 0.0, "{comparison}: {first} / {last}");
        }
        assert!(rules.is_strong("http://hl7.org/fhir/sid/passport-SYR"));
        assert!(!rules.is_strong("urn:corridor:mrn:clinic-a"));
    }

    #[test]
    fn an_unknown_level_is_refused_by_name() {
        let text = DEFAULT_RULES.replace(
            "[comparisons.sex]\n",
            "[comparisons.sex]\nmaybe = { m = 0.1, u = 0.1 }\n",
        );
        let err = Rules::parse(&text).unwrap_err().to_string();
        assert!(err.contains("'sex' has no level 'maybe'"), "{err}");
    }

    #[test]
    fn a_missing_level_or_comparison_is_refused() {
        let text = DEFAULT_RULES.replace("agree = { m = 0.98, u = 0.5 }\n", "");
        let err = Rules::parse(&text).unwrap_err().to_string();
        assert!(err.contains("'sex' needs level 'agree'"), "{err}");
    }

    #[test]
    fn probabilities_that_sum_past_one_are_refused() {
        let text = DEFAULT_RULES.replace(
            "disagree = { m = 0.02, u = 0.5 }",
            "disagree = { m = 0.5, u = 0.5 }",
        );
        let err = Rules::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("m probabilities of 'sex' sum to 1.48"),
            "{err}"
        );
    }

    #[test]
    fn fewer_records_per_key_than_candidates_are_refused() {
        let text = DEFAULT_RULES.replace("records_per_key = 500", "records_per_key = 50");
        let err = Rules::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("records_per_key (50) must be at least scoring.candidates (100)"),
            "{err}"
        );
    }

    #[test]
    fn grades_out_of_order_are_refused() {
        let text = DEFAULT_RULES.replace("probable = 16.0", "probable = 30.0");
        let err = Rules::parse(&text).unwrap_err().to_string();
        assert!(err.contains("grades must fall"), "{err}");
    }

    #[test]
    fn the_score_is_a_probability_that_grows_with_the_weight() {
        let rules = Rules::default_rules();
        assert!(rules.score(-50.0) < 0.001);
        assert!(rules.score(60.0) > 0.999);
        assert!(rules.score(10.0) < rules.score(20.0));
    }
}
