//! Writing jaq values as JSON text the way jq prints them (compact).
//!
//! jaq's own `Display` is a JSON superset (NaN, byte strings, non-string
//! keys); Port needs plain JSON, and jq prints NaN as `null` and infinities as
//! ±1.7976931348623157e+308. Owns only this conversion.

use jaq_json::{Num, Val};
use std::fmt::Write;

/// Compact JSON for `v`, as `jq -c` prints it.
pub fn to_json(v: &Val) -> String {
    let mut s = String::new();
    write_json(&mut s, v);
    s
}

/// Append the compact JSON for `v` to `out`.
pub fn write_json(out: &mut String, v: &Val) {
    write_json_with(out, v, write_num)
}

/// Compact JSON for `v` with numbers written by `num` (the engine's
/// `tojson` prints numbers as jq does, entities as Ocean hands them over).
pub fn write_json_with(out: &mut String, v: &Val, num: fn(&mut String, &Num)) {
    match v {
        Val::Null => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Num(n) => num(out, n),
        Val::TStr(b) | Val::BStr(b) => write_str(out, &String::from_utf8_lossy(b)),
        Val::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_with(out, x, num);
            }
            out.push(']');
        }
        Val::Obj(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    Val::TStr(b) | Val::BStr(b) => write_str(out, &String::from_utf8_lossy(b)),
                    other => {
                        let mut key = String::new();
                        write_json_with(&mut key, other, num);
                        write_str(out, &key);
                    }
                }
                out.push(':');
                write_json_with(out, x, num);
            }
            out.push('}');
        }
    }
}

fn write_num(out: &mut String, n: &Num) {
    match n {
        Num::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Num::Float(f) => write_f64(out, *f),
        Num::Dec(d) => write_f64(out, d.parse().unwrap_or(f64::NAN)),
        Num::BigInt(b) => write_f64(out, b.to_string().parse().unwrap_or(f64::NAN)),
    }
}

/// Numbers as Ocean hands them to Port: libjq works in doubles and jq.py
/// turns every whole-valued double into a Python int, so `128.0` becomes
/// `128` and big integers lose precision exactly as a double does. Other
/// numbers print as Python's `repr(float)` (shortest round-trip digits,
/// exponent below 1e-4). NaN prints as null and infinities clamp to the
/// largest double, as jq prints them.
pub fn write_f64(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("null");
    } else if f.is_infinite() || f.abs() == f64::MAX {
        // What jq prints for infinities and the largest double.
        out.push_str(if f > 0.0 {
            "1.7976931348623157e+308"
        } else {
            "-1.7976931348623157e+308"
        });
    } else if f == f.trunc() {
        if f.abs() < 9.0e15 {
            let _ = write!(out, "{}", f as i64);
        } else {
            // Exact decimal expansion of the double, as Python's int(f).
            let _ = write!(out, "{f:.0}");
        }
    } else if f.abs() < 1e-4 {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "{mant}e{sign}{:02}", exp.abs());
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Append `s` as a JSON string literal with jq's escaping.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{7f}' => out.push_str("\\u007f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_jq() {
        let p = |f: f64| {
            let mut s = String::new();
            write_f64(&mut s, f);
            s
        };
        assert_eq!(p(1.0), "1");
        assert_eq!(p(1.5), "1.5");
        assert_eq!(p(f64::NAN), "null");
        assert_eq!(p(-0.0), "0");
        assert_eq!(p(f64::INFINITY), "1.7976931348623157e+308");
        assert_eq!(p(f64::MIN), "-1.7976931348623157e+308");
        assert_eq!(p(0.00001), "1e-05");
        assert_eq!(p(1.25e-7), "1.25e-07");
        assert_eq!(p(0.001), "0.001");
        assert_eq!(p(12345678901234567890.0), "12345678901234567168");
    }
}
