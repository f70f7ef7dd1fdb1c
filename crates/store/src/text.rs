//! Normalization of strings for FHIR string search.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Fold a string for case- and accent-insensitive matching: compatibility
/// decomposition, combining marks removed, then lowercase. "Zoë", "ZOE" and
/// "zoe" all fold to "zoe".
pub(crate) fn fold(s: &str) -> String {
    s.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase()
}

/// The separate words of a name part, so that searching "hassan" finds
/// "Al-Hassan" and "van" finds "van Beethoven".
pub(crate) fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || c == '-' || c == '\'' || c == '’')
        .filter(|w| !w.is_empty())
}

/// A phone number reduced to a leading '+' and its digits, so that
/// "+44 (20) 7946-0000" and "+442079460000" are the same token.
pub(crate) fn phone(s: &str) -> String {
    let trimmed = s.trim().trim_start_matches("tel:");
    let mut out = String::with_capacity(trimmed.len());
    if trimmed.starts_with('+') {
        out.push('+');
    }
    out.extend(trimmed.chars().filter(char::is_ascii_digit));
    out
}

/// Escape `%`, `_` and `\` for a LIKE pattern written with `ESCAPE '\'`.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_removes_case_and_accents() {
        assert_eq!(fold("Zoë"), "zoe");
        assert_eq!(fold("ÁLVAREZ"), "alvarez");
        assert_eq!(fold("Nguyễn"), "nguyen");
    }

    #[test]
    fn words_split_on_spaces_hyphens_and_apostrophes() {
        assert_eq!(words("Al-Hassan").collect::<Vec<_>>(), ["Al", "Hassan"]);
        assert_eq!(
            words("O'Brien de la Cruz").collect::<Vec<_>>(),
            ["O", "Brien", "de", "la", "Cruz"]
        );
    }

    #[test]
    fn phone_keeps_plus_and_digits() {
        assert_eq!(phone("+44 (20) 7946-0000"), "+442079460000");
        assert_eq!(phone("tel:0201234"), "0201234");
    }

    #[test]
    fn like_escape_escapes_wildcards() {
        assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
    }
}
