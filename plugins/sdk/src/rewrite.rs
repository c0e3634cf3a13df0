//! Ocean's single-quote rewrite (`docs/ocean-mapping.md`, "Single quotes"),
//! reproduced exactly so that mappings written for Ocean behave the same here.
//!
//! Ocean runs `re.sub(r"(^|\s)'(?!\s|\")|(?<!\s|\")'(\s|$)", r'\1"\2', expr)`.
//! The `regex` family of crates has no look-around, so this module emulates
//! Python's left-to-right, non-overlapping scan by hand. Owns nothing else.

/// Python's `\s` for `str` patterns: Unicode whitespace, which (unlike
/// Rust's `char::is_whitespace`) includes the ASCII separators 0x1C..=0x1F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Apply Ocean's rewrite. Returns the input unchanged when it has no `'`.
pub fn ocean_format_filter(expr: &str) -> String {
    if !expr.contains('\'') {
        return expr.to_string();
    }
    let chars: Vec<char> = expr.chars().collect();
    let n = chars.len();
    let mut out = String::with_capacity(expr.len());
    let mut p = 0;
    // Lookahead `(?!\s|")` at position i.
    let opening_ok = |i: usize| i >= n || !(is_py_space(chars[i]) || chars[i] == '"');
    while p < n {
        // Alternative 1: (^|\s)'(?!\s|")
        if p == 0 && chars[0] == '\'' && opening_ok(1) {
            out.push('"');
            p += 1;
            continue;
        }
        if is_py_space(chars[p]) && p + 1 < n && chars[p + 1] == '\'' && opening_ok(p + 2) {
            out.push(chars[p]);
            out.push('"');
            p += 2;
            continue;
        }
        // Alternative 2: (?<!\s|")'(\s|$)
        if chars[p] == '\'' && (p == 0 || !(is_py_space(chars[p - 1]) || chars[p - 1] == '"')) {
            if p + 1 < n && is_py_space(chars[p + 1]) {
                out.push('"');
                out.push(chars[p + 1]);
                p += 2;
                continue;
            }
            // `$` matches at the very end, and before a final newline (which
            // `\s` above already took).
            if p + 1 == n {
                out.push('"');
                p += 1;
                continue;
            }
        }
        out.push(chars[p]);
        p += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ocean_format_filter as f;

    #[test]
    fn rewrites_like_ocean() {
        assert_eq!(f("'abc'"), "\"abc\"");
        assert_eq!(f(".a == 'x'"), ".a == \"x\"");
        assert_eq!(f("join('-')"), "join('-')");
        assert_eq!(f(".x | test('a b')"), ".x | test('a b')");
        // The space eaten by a closing quote is not seen as the next quote's
        // opening context (Python's scan is non-overlapping).
        assert_eq!(f("'a' 'b'"), "\"a\" 'b\"");
        assert_eq!(f("\"it's\""), "\"it's\"");
        assert_eq!(f(".a"), ".a");
    }
}
