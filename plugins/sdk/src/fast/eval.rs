//! Evaluating an [`Expr`] on a [`Doc`] with jaq's semantics.
//!
//! Every supported construct has at most one output, so a result is
//! `Ok(Some(v))`, `Ok(None)` (no output) or `Err` (an error as first output).
//! Values taken from the document stay references to its nodes; strings,
//! `null`s and the common operations on them are handled natively, and rare
//! cases (arithmetic on numbers, arrays, objects; number comparisons) are
//! handed to jaq's own value type so that they agree with jaq by
//! construction.

use std::borrow::Cow;

use jaq_core::ValT;
use jaq_json::Val;

use super::doc::{Doc, Kind};
use super::parse::{CmpOp, Expr, Lit, MathOp, Re, Step};
use crate::jq::regex::Slots;
use crate::json_out;

/// jq 1.7.1 ignores errors on the left of `//`; jaq 3 (the engine this fast
/// path must agree with) passes them through. Flip this if the engine ever
/// gets jq's behaviour.
const ALT_IGNORES_ERRORS: bool = false;

/// A value during evaluation.
#[derive(Clone, Debug)]
pub(crate) enum V<'a> {
    Null,
    Bool(bool),
    /// A value of the document.
    Node(u32),
    /// A string (content, unescaped).
    Str(Cow<'a, str>),
    /// Anything else computed (numbers, objects from `capture`, ...).
    Val(Val),
}

pub(crate) type R<'a> = Result<Option<V<'a>>, String>;

/// Type classes that matter for the native fast paths.
#[derive(Clone, Copy, PartialEq, Eq)]
enum K {
    Null,
    False,
    True,
    Num,
    /// Node string or `V::Str` (content available as `str`).
    Str,
    Arr,
    Obj,
    /// A jaq value that is not null/boolean (handled by jaq).
    Other,
}

fn kind(doc: &Doc<'_>, v: &V<'_>) -> K {
    match v {
        V::Null => K::Null,
        V::Bool(false) => K::False,
        V::Bool(true) => K::True,
        V::Str(_) => K::Str,
        V::Node(i) => match doc.kind(*i) {
            Kind::Null => K::Null,
            Kind::False => K::False,
            Kind::True => K::True,
            Kind::Num => K::Num,
            Kind::Str => K::Str,
            Kind::Arr => K::Arr,
            Kind::Obj => K::Obj,
        },
        V::Val(Val::Null) => K::Null,
        V::Val(Val::Bool(b)) => {
            if *b {
                K::True
            } else {
                K::False
            }
        }
        V::Val(_) => K::Other,
    }
}

fn truthy(doc: &Doc<'_>, v: &V<'_>) -> bool {
    !matches!(kind(doc, v), K::Null | K::False)
}

/// String content of a `K::Str` value.
fn str_of<'a>(doc: &Doc<'a>, v: &V<'a>) -> Cow<'a, str> {
    match v {
        V::Node(i) => doc.str_content(*i),
        V::Str(s) => s.clone(),
        _ => unreachable!("not a native string"),
    }
}

/// The value as a jaq value (what jaq would have for it).
pub(crate) fn to_val(doc: &Doc<'_>, v: &V<'_>) -> Val {
    match v {
        V::Null => Val::Null,
        V::Bool(b) => Val::Bool(*b),
        V::Str(s) => Val::from(s.to_string()),
        V::Val(v) => v.clone(),
        V::Node(i) => match doc.kind(*i) {
            Kind::Null => Val::Null,
            Kind::False => Val::Bool(false),
            Kind::True => Val::Bool(true),
            Kind::Str => Val::from(doc.str_content(*i).into_owned()),
            _ => {
                jaq_json::read::parse_single(doc.raw(*i).as_bytes()).expect("validated JSON parses")
            }
        },
    }
}

fn bytes_to_v<'a>(b: Vec<u8>) -> V<'a> {
    match String::from_utf8(b) {
        Ok(s) => V::Str(Cow::Owned(s)),
        Err(e) => V::Val(Val::utf8_str(e.into_bytes())),
    }
}

fn type_name(doc: &Doc<'_>, v: &V<'_>) -> &'static str {
    match v {
        V::Null => "null",
        V::Bool(_) => "boolean",
        V::Str(_) => "string",
        V::Node(i) => doc.kind(*i).name(),
        V::Val(v) => crate::jq::type_name(v),
    }
}

/// Compact JSON text of the value, as `json_out::to_json` prints it.
pub(crate) fn render(doc: &Doc<'_>, v: &V<'_>) -> String {
    match v {
        V::Null => "null".into(),
        V::Bool(b) => if *b { "true" } else { "false" }.into(),
        V::Node(i) => {
            let mut out = String::with_capacity(doc.raw(*i).len());
            doc.write(&mut out, *i);
            out
        }
        V::Str(s) => {
            let mut out = String::with_capacity(s.len() + 2);
            let plain = !s
                .bytes()
                .any(|c| c < 0x20 || matches!(c, b'"' | b'\\' | 0x7f));
            if plain && super::doc::raw_copy_ok() {
                out.push('"');
                out.push_str(s);
                out.push('"');
            } else {
                json_out::write_str(&mut out, s);
            }
            out
        }
        V::Val(v) => json_out::to_json(v),
    }
}

fn lit<'a>(l: &'a Lit) -> V<'a> {
    match l {
        Lit::Null => V::Null,
        Lit::Bool(b) => V::Bool(*b),
        Lit::Str(s) => V::Str(Cow::Borrowed(s)),
        Lit::Num(n) => V::Val(Val::Num(
            jaq_json::read::parse_single_num(n.as_bytes()).expect("checked at compile time"),
        )),
    }
}

fn index<'a>(doc: &Doc<'a>, v: V<'a>, step: &Step) -> Result<V<'a>, String> {
    match (v, step) {
        (V::Node(i), Step::Key(k)) => match doc.kind(i) {
            Kind::Obj => Ok(doc.get(i, k).map_or(V::Null, V::Node)),
            Kind::Null => Ok(V::Null),
            t => Err(format!("Cannot index {} with string \"{k}\"", t.name())),
        },
        (V::Node(i), Step::Idx(n)) => match doc.kind(i) {
            Kind::Arr => Ok(doc.elem(i, *n).map_or(V::Null, V::Node)),
            // jaq looks numbers up in objects (and finds nothing).
            Kind::Obj | Kind::Null => Ok(V::Null),
            t => Err(format!("Cannot index {} with number", t.name())),
        },
        (V::Null, _) => Ok(V::Null),
        (V::Val(v), step) => {
            let idx = match step {
                Step::Key(k) => Val::from(k.clone()),
                Step::Idx(n) => Val::from(*n),
            };
            v.index(&idx).map(V::Val).map_err(|e| e.to_string())
        }
        (v @ (V::Bool(_) | V::Str(_)), Step::Key(k)) => {
            let t = if matches!(v, V::Bool(_)) {
                "boolean"
            } else {
                "string"
            };
            Err(format!("Cannot index {t} with string \"{k}\""))
        }
        (v @ (V::Bool(_) | V::Str(_)), Step::Idx(_)) => {
            let t = if matches!(v, V::Bool(_)) {
                "boolean"
            } else {
                "string"
            };
            Err(format!("Cannot index {t} with number"))
        }
    }
}

/// Both sides of a binary operator, with jaq's cartesian-product order:
/// no output if either side has none, else the left error, else the right.
fn both<'a>(
    doc: &Doc<'a>,
    l: &'a Expr,
    r: &'a Expr,
    v: &V<'a>,
) -> Result<Option<(V<'a>, V<'a>)>, String> {
    let lv = eval(doc, l, v);
    if matches!(lv, Ok(None)) {
        return Ok(None);
    }
    let rv = eval(doc, r, v);
    match (lv, rv) {
        (_, Ok(None)) => Ok(None),
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(Some(a)), Ok(Some(b))) => Ok(Some((a, b))),
        (Ok(None), _) => unreachable!(),
    }
}

fn math<'a>(doc: &Doc<'a>, op: MathOp, l: V<'a>, r: V<'a>) -> R<'a> {
    if op == MathOp::Add {
        let (kl, kr) = (kind(doc, &l), kind(doc, &r));
        if kl == K::Null {
            return Ok(Some(r));
        }
        if kr == K::Null {
            return Ok(Some(l));
        }
        if kl == K::Str && kr == K::Str {
            let (a, b) = (str_of(doc, &l), str_of(doc, &r));
            let mut s = String::with_capacity(a.len() + b.len());
            s.push_str(&a);
            s.push_str(&b);
            return Ok(Some(V::Str(Cow::Owned(s))));
        }
    }
    let (l, r) = (to_val(doc, &l), to_val(doc, &r));
    let res = match op {
        MathOp::Add => l + r,
        MathOp::Sub => l - r,
    };
    res.map(|v| Some(V::Val(v))).map_err(|e| e.to_string())
}

fn equal<'a>(doc: &Doc<'a>, l: &V<'a>, r: &V<'a>) -> bool {
    let (kl, kr) = (kind(doc, l), kind(doc, r));
    match (kl, kr) {
        (K::Str, K::Str) => match (l, r) {
            (V::Node(a), V::Node(b)) => doc.str_content(*a) == doc.str_content(*b),
            _ => str_of(doc, l) == str_of(doc, r),
        },
        (K::Null, K::Null) | (K::False, K::False) | (K::True, K::True) => true,
        (K::Other, _) | (_, K::Other) => to_val(doc, l) == to_val(doc, r),
        (a, b) if a != b => false,
        // numbers, arrays, objects
        _ => to_val(doc, l) == to_val(doc, r),
    }
}

fn compare<'a>(doc: &Doc<'a>, op: CmpOp, l: &V<'a>, r: &V<'a>) -> bool {
    match op {
        CmpOp::Eq => equal(doc, l, r),
        CmpOp::Ne => !equal(doc, l, r),
        _ => {
            let (l, r) = (to_val(doc, l), to_val(doc, r));
            match op {
                CmpOp::Lt => l < r,
                CmpOp::Le => l <= r,
                CmpOp::Gt => l > r,
                CmpOp::Ge => l >= r,
                CmpOp::Eq | CmpOp::Ne => unreachable!(),
            }
        }
    }
}

/// The string a regex function applies to, or jq's error.
fn regex_input<'a>(doc: &Doc<'a>, v: &V<'a>) -> Result<Cow<'a, str>, String> {
    match v {
        V::Node(i) if doc.kind(*i) == Kind::Str => Ok(doc.str_content(*i)),
        V::Str(s) => Ok(s.clone()),
        V::Val(Val::TStr(b)) => Ok(Cow::Owned(String::from_utf8_lossy(b).into_owned())),
        _ => Err(format!(
            "{} cannot be matched, as it is not a string",
            crate::jq::type_value(&to_val(doc, v))
        )),
    }
}

/// A substring of the regex input, borrowed from the document when it can.
fn sub_str<'a>(s: &Cow<'a, str>, a: usize, b: usize) -> V<'a> {
    V::Str(match s {
        Cow::Borrowed(s) => Cow::Borrowed(&s[a..b]),
        Cow::Owned(s) => Cow::Owned(s[a..b].to_string()),
    })
}

/// jq's `capture` object of one match: every named group, `null` for one
/// that did not take part; of two groups with one name the later wins.
fn capture_obj(re: &Re, s: &str, slots: &Slots) -> Val {
    let mut map = jaq_json::Map::default();
    for (name, slot) in re.names().iter().zip(slots) {
        if let Some(n) = name {
            let v = slot.map_or(Val::Null, |(a, b)| Val::from(s[a..b].to_string()));
            map.insert(Val::from(n.clone()), v);
        }
    }
    Val::obj(map)
}

pub(crate) fn eval<'a>(doc: &Doc<'a>, e: &'a Expr, v: &V<'a>) -> R<'a> {
    match e {
        Expr::Id => Ok(Some(v.clone())),
        Expr::Empty => Ok(None),
        Expr::Lit(l) => Ok(Some(lit(l))),
        Expr::Path(head, steps) => {
            let mut cur = match head.as_ref() {
                Expr::Id => v.clone(),
                head => match eval(doc, head, v)? {
                    Some(x) => x,
                    None => return Ok(None),
                },
            };
            for (step, opt) in steps {
                match index(doc, cur, step) {
                    Ok(x) => cur = x,
                    Err(e) => return if *opt { Ok(None) } else { Err(e) },
                }
            }
            Ok(Some(cur))
        }
        Expr::Pipe(l, r) => match eval(doc, l, v)? {
            Some(x) => eval(doc, r, &x),
            None => Ok(None),
        },
        Expr::Try(f) => eval(doc, f, v).or(Ok(None)),
        Expr::Select(c) => match eval(doc, c, v)? {
            Some(x) if truthy(doc, &x) => Ok(Some(v.clone())),
            _ => Ok(None),
        },
        Expr::Not => Ok(Some(V::Bool(!truthy(doc, v)))),
        Expr::ToString => Ok(Some(match v {
            V::Str(s) => V::Str(s.clone()),
            V::Node(i) if doc.kind(*i) == Kind::Str => V::Str(doc.str_content(*i)),
            V::Val(Val::TStr(b)) => V::Val(Val::TStr(b.clone())),
            _ => match to_val(doc, v).into_string() {
                Val::TStr(b) => bytes_to_v(b.to_vec()),
                other => V::Val(other),
            },
        })),
        Expr::AsciiCase(upper) => {
            let conv = |b: &[u8]| -> Vec<u8> {
                if *upper {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                }
            };
            match kind(doc, v) {
                K::Str => Ok(Some(bytes_to_v(conv(str_of(doc, v).as_bytes())))),
                _ => match v {
                    V::Val(Val::TStr(b)) => Ok(Some(V::Val(Val::utf8_str(conv(b))))),
                    _ => Err(format!(
                        "{} ({}) cannot be case-converted",
                        type_name(doc, v),
                        render(doc, v)
                    )),
                },
            }
        }
        Expr::Logic(l, stop, r) => {
            let Some(x) = eval(doc, l, v)? else {
                return Ok(None);
            };
            if truthy(doc, &x) == *stop {
                return Ok(Some(V::Bool(*stop)));
            }
            Ok(eval(doc, r, v)?.map(|y| V::Bool(truthy(doc, &y))))
        }
        Expr::Math(l, op, r) => match both(doc, l, r, v)? {
            Some((a, b)) => math(doc, *op, a, b),
            None => Ok(None),
        },
        Expr::Cmp(l, op, r) => {
            Ok(both(doc, l, r, v)?.map(|(a, b)| V::Bool(compare(doc, *op, &a, &b))))
        }
        Expr::Alt(l, r) => match eval(doc, l, v) {
            Ok(Some(x)) if truthy(doc, &x) => Ok(Some(x)),
            Err(e) if !ALT_IGNORES_ERRORS => Err(e),
            _ => eval(doc, r, v),
        },
        Expr::Ite(c, t, f) => match eval(doc, c, v)? {
            Some(x) => eval(doc, if truthy(doc, &x) { t } else { f }, v),
            None => Ok(None),
        },
        Expr::Capture(re) => {
            let s = regex_input(doc, v)?;
            match re.first(&s)? {
                Some(slots) => Ok(Some(V::Val(capture_obj(re, &s, &slots)))),
                None => Ok(None),
            }
        }
        Expr::CaptureGet(re, name) => {
            let s = regex_input(doc, v)?;
            let Some(slots) = re.first(&s)? else {
                return Ok(None);
            };
            // The last group of that name (`capture` builds the object in
            // group order), null if it did not take part or none has it.
            let group = re.names().iter().rposition(|n| n.as_deref() == Some(name));
            Ok(Some(match group.and_then(|g| slots[g]) {
                Some((a, b)) => sub_str(&s, a, b),
                None => V::Null,
            }))
        }
        Expr::Sub(re, repl) => {
            // jq 1.7.1's `sub` with one replacement: the text between
            // matches, each match replaced; no match leaves the input.
            let s = regex_input(doc, v)?;
            let mut out = String::with_capacity(s.len() + repl.len());
            let mut last = 0;
            re.search(&s, |slots| {
                let (a, b) = slots[0].expect("group 0 takes part in a match");
                out.push_str(&s[last..a]);
                out.push_str(repl);
                last = b;
                true
            })?;
            out.push_str(&s[last..]);
            Ok(Some(V::Str(Cow::Owned(out))))
        }
        Expr::Test(re) => {
            let s = regex_input(doc, v)?;
            Ok(Some(V::Bool(re.first(&s)?.is_some())))
        }
    }
}
