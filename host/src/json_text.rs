//! Re-indenting JSON text the way `jq` prints it, without parsing numbers
//! (so `1.0`, big integers and the like print exactly as the engine wrote
//! them). Owns only text layout.

/// `compact` (valid JSON) indented with two spaces, as `jq` prints it.
pub fn pretty(compact: &str) -> String {
    let b = compact.as_bytes();
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut i = 0;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push_str(&compact[start..=i.min(b.len() - 1)]);
            }
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                if b.get(i + 1) == Some(&close) {
                    out.push(c as char);
                    out.push(close as char);
                    i += 1;
                } else {
                    out.push(c as char);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c as char);
            }
            b',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            b':' => out.push_str(": "),
            b' ' | b'\n' | b'\t' | b'\r' => {}
            _ => {
                // A run of a number or literal.
                let start = i;
                while i + 1 < b.len() && !b",:]} \n\t\r".contains(&b[i + 1]) {
                    i += 1;
                }
                out.push_str(&compact[start..=i]);
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pretty;

    #[test]
    fn indents_like_jq() {
        assert_eq!(
            pretty(r#"{"a":[1,2.0],"b":{},"c":[],"d":"x,{}:\"y"}"#),
            "{\n  \"a\": [\n    1,\n    2.0\n  ],\n  \"b\": {},\n  \"c\": [],\n  \"d\": \"x,{}:\\\"y\"\n}"
        );
        assert_eq!(pretty("12345678901234567890"), "12345678901234567890");
        assert_eq!(pretty("\"s\""), "\"s\"");
    }
}
