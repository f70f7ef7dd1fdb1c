//! A nesting-depth check that runs before any recursive parser sees the input.

use crate::Issue;

/// Refuse JSON whose objects and arrays nest deeper than `max_depth`.
///
/// A single linear scan that tracks strings and escapes, so brackets inside
/// string values do not count.
pub(crate) fn check(bytes: &[u8], max_depth: usize) -> Result<(), Issue> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Issue::new(
                        "too-costly",
                        format!("JSON nests deeper than {max_depth} levels"),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
