//! Native helpers with jq 1.7.1's exact semantics: `setpath`/`delpaths`
//! (which jaq cannot express on `null` or past an array's end), `tojson`'s
//! number formatting, `@base64d`/`@base32d`, and the rewording of jaq's
//! error messages as jq's.

use jaq_core::native::{Filter, Fun, bome, run, v};
use jaq_core::{DataT, Error, RunPtr};
use jaq_json::{Map, Num, Rc, Val};
use std::fmt::Write;

pub fn funs<D: for<'a> DataT<V<'a> = Val>>() -> impl Iterator<Item = Fun<D>> {
    base().into_vec().into_iter().map(run)
}

fn base<D: for<'a> DataT<V<'a> = Val>>() -> Box<[Filter<RunPtr<D>>]> {
    Box::new([
        ("_setpath", v(2), |mut cv| {
            let value = cv.0.pop_var();
            let path = cv.0.pop_var();
            bome(setpath(cv.1, &path, value).map_err(Error::str))
        }),
        ("_delpaths", v(1), |mut cv| {
            let paths = cv.0.pop_var();
            bome(delpaths(cv.1, paths).map_err(Error::str))
        }),
        ("_jq_tojson", v(0), |cv| {
            let mut s = String::new();
            write(&mut s, &cv.1);
            bome(Ok(Val::from(s)))
        }),
        ("_jqerr", v(0), |cv| {
            let msg = match &cv.1 {
                Val::TStr(b) => jq_message(&String::from_utf8_lossy(b)),
                _ => None,
            };
            bome(Ok(msg.map_or(cv.1, Val::from)))
        }),
        ("_b64d", v(0), |cv| bome(base64d(&cv.1).map_err(Error::str))),
        ("_div", v(2), |mut cv| {
            let y = cv.0.pop_var();
            let x = cv.0.pop_var();
            bome(div(x, y))
        }),
        ("_rem", v(2), |mut cv| {
            let y = cv.0.pop_var();
            let x = cv.0.pop_var();
            bome(rem(x, y))
        }),
        ("_mul", v(2), |mut cv| {
            let y = cv.0.pop_var();
            let x = cv.0.pop_var();
            bome(mul(x, y))
        }),
        ("_ix", v(0), |cv| bome(Ok(index_key(cv.1)))),
        ("_sx", v(0), |cv| bome(Ok(slice_bound(cv.1, false)))),
        ("_ex", v(0), |cv| bome(Ok(slice_bound(cv.1, true)))),
        ("_tostr", v(0), |cv| {
            bome(Ok(match cv.1 {
                s @ (Val::TStr(_) | Val::BStr(_)) => s,
                v => Val::from(dump(&v)),
            }))
        }),
        ("_has", v(1), |mut cv| {
            let k = cv.0.pop_var();
            bome(has(&cv.1, &k).map(Val::Bool).map_err(Error::str))
        }),
        ("_fromjson", v(0), |cv| {
            let r = match &cv.1 {
                Val::TStr(b) | Val::BStr(b) => {
                    let text = String::from_utf8_lossy(b);
                    super::parse_json(&text).map_err(|e| format!("{e} (while parsing '{text}')"))
                }
                v => Err(format!("{} cannot be parsed as JSON", tv(v))),
            };
            bome(r.map_err(Error::str))
        }),
        ("_b32d", v(0), |cv| bome(base32d(&cv.1).map_err(Error::str))),
    ])
}

pub fn kind(v: &Val) -> &'static str {
    super::type_name(v)
}

fn str_of(v: &Val) -> Option<String> {
    match v {
        Val::TStr(b) | Val::BStr(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn f64_of(n: &Num) -> f64 {
    match n {
        Num::Int(i) => *i as f64,
        Num::Float(f) => *f,
        Num::BigInt(b) => b.to_string().parse().unwrap_or(f64::NAN),
        Num::Dec(d) => d.parse().unwrap_or(f64::NAN),
    }
}

fn num_of(v: &Val) -> Option<f64> {
    match v {
        Val::Num(n) => Some(f64_of(n)),
        _ => None,
    }
}

fn int(i: i64) -> Val {
    Val::Num(Num::from_integral(i))
}

// --------------------------------------------------------------
// jq's value dump (`tojson`), numbers as jq 1.7.1 prints them.

/// `v` as jq's `tojson` writes it.
pub fn dump(v: &Val) -> String {
    let mut s = String::new();
    write(&mut s, v);
    s
}

/// `v` as jq's `tojson` writes it, truncated the way jq's error
/// messages truncate values (`bufsize` bytes including the NUL).
fn dump_trunc(v: &Val, bufsize: usize) -> String {
    let s = dump(v);
    if s.len() > bufsize - 1 {
        let mut cut = bufsize - 4;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

pub(crate) fn tv(v: &Val) -> String {
    format!("{} ({})", kind(v), dump_trunc(v, 15))
}

pub fn write(out: &mut String, v: &Val) {
    crate::json_out::write_json_with(out, v, write_num)
}

fn write_num(out: &mut String, n: &Num) {
    match n {
        Num::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Num::BigInt(b) => {
            let _ = write!(out, "{b}");
        }
        Num::Float(f) => out.push_str(&fmt_f64(*f)),
        // jq 1.7.1 prints an unchanged literal canonicalised by
        // decNumber (`dec_canonical`: `100e-2` as `1.00`); the fast path
        // (crate::fast) and jaq keep the literal's own spelling, so this
        // does too, to stay consistent within Berth.
        Num::Dec(d) => out.push_str(d),
    }
}

/// A double as jq prints it (`jvp_dtoa_fmt`: shortest round-trip
/// digits; exponent form below 1e-4 or beyond 15 trailing zeros).
pub fn fmt_f64(f: f64) -> String {
    if f.is_nan() {
        return "null".into();
    }
    let f = f.clamp(f64::MIN, f64::MAX);
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let decpt: i64 = exp.parse::<i64>().expect("exponent") + 1;
    let nd = digits.len() as i64;
    let mut s = String::new();
    if f < 0.0 {
        s.push('-');
    }
    if decpt <= -4 || decpt > nd + 15 {
        s.push_str(&digits[..1]);
        if nd > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let e = decpt - 1;
        let _ = write!(s, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    } else if decpt <= 0 {
        s.push_str("0.");
        for _ in 0..-decpt {
            s.push('0');
        }
        s.push_str(&digits);
    } else if decpt >= nd {
        s.push_str(&digits);
        for _ in 0..decpt - nd {
            s.push('0');
        }
    } else {
        s.push_str(&digits[..decpt as usize]);
        s.push('.');
        s.push_str(&digits[decpt as usize..]);
    }
    s
}

/// A number literal as jq 1.7.1 prints an unchanged literal (decNumber's
/// to-scientific-string): `1.000` stays, `100e-2` is `1.00`, `1e2` is
/// `1E+2`.
#[cfg_attr(not(test), allow(dead_code))]
fn dec_canonical(lit: &str) -> Option<String> {
    let (neg, body) = match lit.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, lit.strip_prefix('+').unwrap_or(lit)),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty()
        || !(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut coef: String = format!("{int}{frac}").trim_start_matches('0').to_string();
    if coef.is_empty() {
        coef.push('0');
    }
    let exp = exp - frac.len() as i64;
    let adjusted = exp + coef.len() as i64 - 1;
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if exp <= 0 && adjusted >= -6 {
        if exp == 0 {
            s.push_str(&coef);
        } else {
            let point = coef.len() as i64 + exp;
            if point > 0 {
                s.push_str(&coef[..point as usize]);
                s.push('.');
                s.push_str(&coef[point as usize..]);
            } else {
                s.push_str("0.");
                for _ in 0..-point {
                    s.push('0');
                }
                s.push_str(&coef);
            }
        }
    } else {
        s.push_str(&coef[..1]);
        if coef.len() > 1 {
            s.push('.');
            s.push_str(&coef[1..]);
        }
        let _ = write!(
            s,
            "E{}{}",
            if adjusted < 0 { '-' } else { '+' },
            adjusted.abs()
        );
    }
    Some(s)
}

// --------------------------------------------------------------
// Operators whose jq 1.7.1 semantics differ from jaq's.

fn int_val(i: f64) -> Val {
    if (isize::MIN as f64..=isize::MAX as f64).contains(&i) {
        Val::Num(Num::Int(i as isize))
    } else {
        Val::Num(Num::from_str_radix(&format!("{i:.0}"), 10).unwrap_or(Num::Float(i)))
    }
}

/// `x / y`: jq refuses to divide a number by zero.
fn div(x: Val, y: Val) -> Result<Val, Error<Val>> {
    if let (Val::Num(_), Val::Num(n)) = (&x, &y)
        && f64_of(n) == 0.0
    {
        return Err(Error::str(format!(
            "{} and {} cannot be divided because the divisor is zero",
            tv(&x),
            tv(&y)
        )));
    }
    x / y
}

/// jq's `dtoi`: a double to intmax_t, saturating.
fn dtoi(f: f64) -> i64 {
    f as i64
}

/// `x % y`: jq truncates both to integers (saturating), NaN gives NaN,
/// a zero divisor is an error.
fn rem(x: Val, y: Val) -> Result<Val, Error<Val>> {
    let (Val::Num(a), Val::Num(b)) = (&x, &y) else {
        return x % y;
    };
    if let (Num::Int(a), Num::Int(b)) = (a, b)
        && *b != 0
    {
        return Ok(Val::Num(Num::Int(if *b == -1 { 0 } else { a % b })));
    }
    let (a, b) = (f64_of(a), f64_of(b));
    if a.is_nan() || b.is_nan() {
        return Ok(Val::from(f64::NAN));
    }
    let d = dtoi(b);
    if d == 0 {
        return Err(Error::str(format!(
            "{} and {} cannot be divided (remainder) because the divisor is zero",
            tv(&x),
            tv(&y)
        )));
    }
    Ok(Val::Num(Num::from_integral(if d == -1 {
        0
    } else {
        dtoi(a) % d
    })))
}

/// `x * y`: a string times a number repeats the string (truncating the
/// count; null for a negative or NaN count).
fn mul(x: Val, y: Val) -> Result<Val, Error<Val>> {
    let (s, n) = match (&x, &y) {
        (Val::TStr(s), Val::Num(n)) | (Val::Num(n), Val::TStr(s)) => (s, f64_of(n)),
        _ => return x * y,
    };
    if n < 0.0 || n.is_nan() {
        return Ok(Val::Null);
    }
    let k = n.min(i32::MAX as f64) as usize;
    Ok(Val::from(String::from_utf8_lossy(s).repeat(k)))
}

/// An array index as jq uses it: a fractional index is floored, NaN
/// reads as null (a huge negative index, which `set` reports as jq's NaN
/// error).
fn index_key(v: Val) -> Val {
    match &v {
        Val::Num(Num::Float(_) | Num::Dec(_)) => {
            let Val::Num(n) = &v else { unreachable!() };
            let f = f64_of(n);
            if f.is_nan() {
                Val::Num(Num::from_str_radix("-100000000000000000000", 10).expect("integer"))
            } else if f.is_infinite() {
                v
            } else {
                int_val(f.floor())
            }
        }
        _ => v,
    }
}

/// A slice bound as jq uses it: start floors, end ceils, NaN is open,
/// out-of-range values clamp.
fn slice_bound(v: Val, end: bool) -> Val {
    let Val::Num(n) = &v else { return v };
    if matches!(n, Num::Int(_)) {
        return v;
    }
    let f = f64_of(n);
    const LIM: f64 = 2147483647.0;
    if f.is_nan() || (end && f >= LIM) || (!end && f <= -LIM) {
        Val::Null
    } else if f >= LIM {
        int_val(LIM)
    } else if f <= -LIM {
        int_val(-LIM)
    } else {
        int_val(if end { f.ceil() } else { f.floor() })
    }
}

/// jq's `has`.
fn has(t: &Val, k: &Val) -> Result<bool, String> {
    match (t, k) {
        (Val::Null, _) => Ok(false),
        (Val::Obj(o), Val::TStr(_) | Val::BStr(_)) => Ok(o.contains_key(k)),
        (Val::Arr(a), Val::Num(n)) => {
            let f = f64_of(n);
            Ok(!f.is_nan() && f.trunc() >= 0.0 && f.trunc() < a.len() as f64)
        }
        _ => Err(format!(
            "Cannot check whether {} has a {} key",
            kind(t),
            kind(k)
        )),
    }
}

// --------------------------------------------------------------
// Paths (jq's jv_get / jv_set / jv_setpath / jv_delpaths).

/// jq's `parse_slice`: the `[start, end)` a slice key selects in a
/// sequence of `len`.
fn parse_slice(len: usize, key: &Val) -> Option<(usize, usize)> {
    let Val::Obj(o) = key else { return None };
    let get = |k: &str| {
        o.get(&Val::from(k.to_string()))
            .cloned()
            .unwrap_or(Val::Null)
    };
    let len_f = len as f64;
    let start = match get("start") {
        Val::Null => 0.0,
        v => num_of(&v)?,
    };
    let end = match get("end") {
        Val::Null => len_f,
        v => num_of(&v)?,
    };
    let (mut start, mut end) = (
        if start.is_nan() { 0.0 } else { start },
        if end.is_nan() { len_f } else { end },
    );
    if start < 0.0 {
        start += len_f;
    }
    if end < 0.0 {
        end += len_f;
    }
    let start = start.clamp(0.0, len_f).floor();
    let end = end.clamp(0.0, len_f).ceil().max(start);
    Some((start as usize, end as usize))
}

fn index_err(t: &Val, k: &Val) -> String {
    match str_of(k) {
        Some(s) if s.len() < 30 => format!("Cannot index {} with string \"{s}\"", kind(t)),
        _ => format!("Cannot index {} with {}", kind(t), kind(k)),
    }
}

/// jq's `jv_get`: `t[k]`.
fn get(t: &Val, k: &Val) -> Result<Val, String> {
    match (t, k) {
        (Val::Obj(o), Val::TStr(_) | Val::BStr(_)) => Ok(o.get(k).cloned().unwrap_or(Val::Null)),
        (Val::Arr(a), Val::Num(n)) => {
            let f = f64_of(n);
            if f.is_nan() {
                return Ok(Val::Null);
            }
            let mut i = f.floor();
            if i < 0.0 {
                i += a.len() as f64;
            }
            Ok(if i >= 0.0 && i < a.len() as f64 {
                a[i as usize].clone()
            } else {
                Val::Null
            })
        }
        (Val::Arr(a), Val::Obj(_)) => match parse_slice(a.len(), k) {
            Some((s, e)) => Ok(Val::Arr(Rc::new(a[s..e].to_vec()))),
            None => Err("Start and end indices of an array slice must be numbers".into()),
        },
        (Val::TStr(b), Val::Obj(_)) => {
            let s = String::from_utf8_lossy(b);
            let chars: Vec<char> = s.chars().collect();
            match parse_slice(chars.len(), k) {
                Some((st, e)) => Ok(Val::from(chars[st..e].iter().collect::<String>())),
                None => Err("Start and end indices of an string slice must be numbers".into()),
            }
        }
        (Val::Arr(a), Val::Arr(b)) => {
            if b.is_empty() {
                return Ok(Val::Null);
            }
            let hits = (0..a.len().saturating_sub(b.len() - 1))
                .filter(|&i| a[i..i + b.len()] == b[..])
                .map(|i| int(i as i64));
            Ok(Val::Arr(Rc::new(hits.collect())))
        }
        (Val::Null, Val::TStr(_) | Val::BStr(_) | Val::Num(_) | Val::Obj(_)) => Ok(Val::Null),
        _ => Err(index_err(t, k)),
    }
}

/// Arrays larger than this are refused, as jq does.
const MAX_ARRAY: f64 = (1u64 << 29) as f64;

/// jq's `jv_set`: `t` with `t[k]` replaced by `v`.
fn set(t: Val, k: &Val, v: Val) -> Result<Val, String> {
    match (t, k) {
        (t @ (Val::Obj(_) | Val::Null), Val::TStr(_) | Val::BStr(_)) => {
            let mut o = match t {
                Val::Obj(o) => o,
                _ => Rc::new(Map::default()),
            };
            Rc::make_mut(&mut o).insert(k.clone(), v);
            Ok(Val::Obj(o))
        }
        (t @ (Val::Arr(_) | Val::Null), Val::Num(n)) => {
            let f = f64_of(n);
            // `_ix` turns a NaN index into -1e20 so that reading it
            // yields null; setting it is jq's NaN error.
            if f.is_nan() || f <= -9e19 {
                return Err("Cannot set array element at NaN index".into());
            }
            let mut a = match t {
                Val::Arr(a) => a,
                _ => Rc::new(Vec::new()),
            };
            let mut i = f.trunc().clamp(i32::MIN as f64, i32::MAX as f64);
            if i < 0.0 {
                i += a.len() as f64;
                if i < 0.0 {
                    return Err("Out of bounds negative array index".into());
                }
            }
            if i >= MAX_ARRAY {
                return Err("Array index too large".into());
            }
            let i = i as usize;
            let m = Rc::make_mut(&mut a);
            if i >= m.len() {
                m.resize(i + 1, Val::Null);
            }
            m[i] = v;
            Ok(Val::Arr(a))
        }
        (t @ (Val::Arr(_) | Val::Null), Val::Obj(_)) => {
            let mut a = match t {
                Val::Arr(a) => a,
                _ => Rc::new(Vec::new()),
            };
            let Some((s, e)) = parse_slice(a.len(), k) else {
                return Err("Start and end indices of an array slice must be numbers".into());
            };
            let Val::Arr(ins) = v else {
                return Err("A slice of an array can only be assigned another array".into());
            };
            Rc::make_mut(&mut a).splice(s..e, ins.iter().cloned());
            Ok(Val::Arr(a))
        }
        (Val::TStr(_) | Val::BStr(_), Val::Obj(_)) => Err("Cannot update string slices".into()),
        (t, k) => Err(format!(
            "Cannot update field at {} index of {}",
            kind(k),
            kind(&t)
        )),
    }
}

/// jq's `setpath`.
pub fn setpath(root: Val, path: &Val, value: Val) -> Result<Val, String> {
    let Val::Arr(p) = path else {
        return Err("Path must be specified as an array".into());
    };
    setpath_at(root, p, value)
}

fn setpath_at(root: Val, path: &[Val], value: Val) -> Result<Val, String> {
    let Some((k, rest)) = path.split_first() else {
        return Ok(value);
    };
    let sub = get(&root, k)?;
    if rest.is_empty() {
        drop(sub);
        return set(root, k, value);
    }
    // Drop root's reference to the child first so that updating the
    // child does not copy it (jq does the same).
    let root = match k {
        Val::Obj(_) => root,
        _ => set(root, k, Val::Null)?,
    };
    let sub = setpath_at(sub, rest, value)?;
    set(root, k, sub)
}

/// jq's `delpaths`.
pub fn delpaths(v: Val, paths: Val) -> Result<Val, String> {
    let Val::Arr(ps) = paths else {
        return Err("Paths must be specified as an array".into());
    };
    let mut ps: Vec<Val> = ps.iter().cloned().collect();
    ps.sort();
    let mut lists: Vec<Rc<Vec<Val>>> = Vec::with_capacity(ps.len());
    for p in ps {
        match p {
            Val::Arr(a) => lists.push(a),
            other => {
                return Err(format!(
                    "Path must be specified as array, not {}",
                    kind(&other)
                ));
            }
        }
    }
    if lists.is_empty() {
        return Ok(v);
    }
    if lists[0].is_empty() {
        return Ok(Val::Null);
    }
    let refs: Vec<&[Val]> = lists.iter().map(|l| &l[..]).collect();
    delpaths_sorted(v, &refs)
}

/// `paths` are sorted, non-empty, relative to `object`.
fn delpaths_sorted(mut object: Val, paths: &[&[Val]]) -> Result<Val, String> {
    let mut delkeys: Vec<Val> = Vec::new();
    let mut i = 0;
    while i < paths.len() {
        let key = &paths[i][0];
        let mut j = i;
        while j < paths.len() && &paths[j][0] == key {
            j += 1;
        }
        if paths[i].len() == 1 {
            delkeys.push(key.clone());
        } else {
            let sub = get(&object, key)?;
            if !matches!(sub, Val::Null) {
                let rest: Vec<&[Val]> = paths[i..j]
                    .iter()
                    .map(|p| &p[1..])
                    .filter(|p| !p.is_empty())
                    .collect();
                let new = delpaths_sorted(sub, &rest)?;
                object = set(object, key, new)?;
            }
        }
        i = j;
    }
    dels(object, delkeys)
}

/// jq's `jv_dels`: delete the (sorted) `keys` of `t` at once.
fn dels(t: Val, keys: Vec<Val>) -> Result<Val, String> {
    if keys.is_empty() {
        return Ok(t);
    }
    match t {
        Val::Null => Ok(Val::Null),
        Val::Arr(a) => {
            let len = a.len();
            let mut del = vec![false; len];
            for k in &keys {
                match k {
                    Val::Num(n) => {
                        let f = f64_of(n);
                        if f.is_nan() {
                            continue;
                        }
                        let i = if f < 0.0 {
                            len as f64 + f.trunc()
                        } else {
                            f.trunc()
                        };
                        if i >= 0.0 && i < len as f64 {
                            del[i as usize] = true;
                        }
                    }
                    Val::Obj(_) => {
                        let (s, e) = parse_slice(len, k)
                            .ok_or("Start and end indices of an array slice must be numbers")?;
                        del[s..e].iter_mut().for_each(|d| *d = true);
                    }
                    other => {
                        return Err(format!("Cannot delete {} element of array", kind(other)));
                    }
                }
            }
            let kept = a
                .iter()
                .zip(del)
                .filter(|(_, d)| !d)
                .map(|(x, _)| x.clone());
            Ok(Val::Arr(Rc::new(kept.collect())))
        }
        Val::Obj(mut o) => {
            for k in &keys {
                if !matches!(k, Val::TStr(_) | Val::BStr(_)) {
                    return Err(format!("Cannot delete {} field of object", kind(k)));
                }
                Rc::make_mut(&mut o).shift_remove(k);
            }
            Ok(Val::Obj(o))
        }
        other => Err(format!("Cannot delete fields from {}", kind(&other))),
    }
}

/// JSON text that jq 1.7.1 reads but plain JSON does not: the bare
/// literals `nan` (optionally with a digit payload), `NaN` and
/// `Infinity`, signed or not. They are swapped for marker strings,
/// parsed, and swapped back.
pub fn parse_nonfinite(text: &str) -> Option<Val> {
    const NAN: &str = "\"\\u0000jq-nan\"";
    const INF: &str = "\"\\u0000jq-inf\"";
    const NINF: &str = "\"\\u0000jq--inf\"";
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let (mut i, mut changed) = (0, false);
    while i < b.len() {
        match b[i] {
            b'"' => {
                // copy the string literal verbatim
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                out.push_str(&text[start..i]);
            }
            c if c == b'-' || c.is_ascii_alphabetic() => {
                let start = i;
                let neg = c == b'-';
                let mut j = i + usize::from(neg);
                while j < b.len() && (b[j].is_ascii_alphanumeric()) {
                    j += 1;
                }
                let word = &text[start + usize::from(neg)..j];
                let lower = word.to_ascii_lowercase();
                let marker =
                    if lower.starts_with("nan") && lower[3..].bytes().all(|d| d.is_ascii_digit()) {
                        Some(NAN)
                    } else if lower == "infinity" || lower == "inf" {
                        Some(if neg { NINF } else { INF })
                    } else {
                        None
                    };
                match marker {
                    Some(m) => {
                        out.push_str(m);
                        changed = true;
                    }
                    None => out.push_str(&text[start..j.max(start + 1)]),
                }
                i = j.max(start + 1);
            }
            _ => {
                let start = i;
                i += 1;
                while i < b.len() && !text.is_char_boundary(i) {
                    i += 1;
                }
                out.push_str(&text[start..i]);
            }
        }
    }
    if !changed {
        return None;
    }
    let v = jaq_json::read::parse_single(out.as_bytes()).ok()?;
    Some(unmark(v))
}

fn unmark(v: Val) -> Val {
    match v {
        Val::TStr(ref b) if b.starts_with(b"\0jq-") => match &b[..] {
            b"\0jq-nan" => Val::from(f64::NAN),
            b"\0jq-inf" => Val::from(f64::INFINITY),
            b"\0jq--inf" => Val::from(f64::NEG_INFINITY),
            _ => v,
        },
        Val::Arr(a) => Val::Arr(Rc::new(a.iter().cloned().map(unmark).collect())),
        Val::Obj(o) => Val::obj(
            o.iter()
                .map(|(k, x)| (k.clone(), unmark(x.clone())))
                .collect(),
        ),
        v => v,
    }
}

// --------------------------------------------------------------
// @base64d / @base32d as jq 1.7.1 decodes them.

fn base64d(v: &Val) -> Result<Val, String> {
    let s = str_of(v).unwrap_or_default();
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut code, mut n) = (0u32, 0);
    for &c in s.as_bytes().iter().take_while(|&&c| c != b'=') {
        let d = val(c).ok_or_else(|| format!("{} is not valid base64 data", tv(v)))?;
        code = code << 6 | d;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(code >> 16) as u8, (code >> 8) as u8, code as u8]);
            code = 0;
            n = 0;
        }
    }
    match n {
        3 => out.extend_from_slice(&[(code >> 10) as u8, (code >> 2) as u8]),
        2 => out.push((code >> 4) as u8),
        1 => return Err(format!("{} trailing base64 byte found", tv(v))),
        _ => {}
    }
    Ok(Val::from(String::from_utf8_lossy(&out).into_owned()))
}

fn base32d(v: &Val) -> Result<Val, String> {
    let s = str_of(v).unwrap_or_default();
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0);
    for &c in s.as_bytes().iter().take_while(|&&c| c != b'=') {
        let d = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(format!("{} is not valid base32 data", tv(v))),
        } as u64;
        acc = acc << 5 | d;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(Val::from(String::from_utf8_lossy(&out).into_owned()))
}

// --------------------------------------------------------------
// jaq's error messages, worded as jq's.

fn parse_val(s: &str) -> Option<Val> {
    jaq_json::read::parse_single(s.as_bytes()).ok()
}

/// jq 1.7.1's wording of a jaq error message, if it is one of jaq's
/// whose jq counterpart is known.
pub fn jq_message(msg: &str) -> Option<String> {
    if let Some(v) = msg
        .strip_prefix("cannot use ")
        .and_then(|m| m.strip_suffix(" as iterable (array or object)"))
        .and_then(parse_val)
    {
        return Some(format!("Cannot iterate over {}", tv(&v)));
    }
    if let Some(rest) = msg.strip_prefix("cannot index ") {
        // "cannot index T with K": find the split where both parse.
        for (i, _) in rest.match_indices(" with ") {
            if let (Some(t), Some(k)) = (parse_val(&rest[..i]), parse_val(&rest[i + 6..])) {
                return Some(index_err(&t, &k));
            }
        }
    }
    if let Some(rest) = msg.strip_prefix("cannot calculate ") {
        for (op, verb) in [
            (" + ", "added"),
            (" - ", "subtracted"),
            (" * ", "multiplied"),
            (" / ", "divided"),
            (" % ", "divided"),
        ] {
            for (i, _) in rest.match_indices(op) {
                if let (Some(l), Some(r)) = (parse_val(&rest[..i]), parse_val(&rest[i + 3..])) {
                    return Some(format!("{} and {} cannot be {verb}", tv(&l), tv(&r)));
                }
            }
        }
    }
    if let Some(v) = msg
        .strip_prefix("invalid path expression with input ")
        .and_then(parse_val)
    {
        return Some(format!(
            "Invalid path expression with result {}",
            dump_trunc(&v, 30)
        ));
    }
    if let Some(v) = msg.strip_suffix(" has no length").and_then(parse_val) {
        return Some(format!("{} has no length", tv(&v)));
    }
    if let Some(v) = msg
        .strip_prefix("cannot use ")
        .and_then(|m| m.strip_suffix(" as number"))
        .and_then(parse_val)
    {
        return Some(format!("{} number required", tv(&v)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_jq() {
        assert_eq!(fmt_f64(3.0), "3");
        assert_eq!(fmt_f64(1.5), "1.5");
        assert_eq!(fmt_f64(-0.25), "-0.25");
        assert_eq!(fmt_f64(0.0001), "0.0001");
        assert_eq!(fmt_f64(0.00001), "1e-05");
        assert_eq!(fmt_f64(1e15), "1000000000000000");
        assert_eq!(fmt_f64(1e17), "1e+17");
        assert_eq!(fmt_f64(123456789012345680.0), "123456789012345680");
        assert_eq!(fmt_f64(f64::INFINITY), "1.7976931348623157e+308");
        assert_eq!(fmt_f64(1e100), "1e+100");
    }

    #[test]
    fn literals_print_like_decnumber() {
        assert_eq!(dec_canonical("1.000").as_deref(), Some("1.000"));
        assert_eq!(dec_canonical("100e-2").as_deref(), Some("1.00"));
        assert_eq!(dec_canonical("1e2").as_deref(), Some("1E+2"));
        assert_eq!(dec_canonical("0.00001").as_deref(), Some("0.00001"));
        assert_eq!(dec_canonical("1E-7").as_deref(), Some("1E-7"));
        assert_eq!(dec_canonical("-1.5").as_deref(), Some("-1.5"));
    }

    #[test]
    fn messages_worded_as_jq() {
        assert_eq!(
            jq_message("cannot use 123 as iterable (array or object)").as_deref(),
            Some("Cannot iterate over number (123)")
        );
        assert_eq!(
            jq_message("cannot index 1 with \"a\"").as_deref(),
            Some("Cannot index number with string \"a\"")
        );
        assert_eq!(
            jq_message("cannot calculate \"1,2,\" + {\"a\":{\"b\":{\"c\":33}}}").as_deref(),
            Some("string (\"1,2,\") and object ({\"a\":{\"b\":{...) cannot be added")
        );
        assert_eq!(jq_message("something else"), None);
    }
}
