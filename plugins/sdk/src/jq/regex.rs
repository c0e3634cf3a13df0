//! Regular expressions for both evaluators, on fancy-regex: jq's flags,
//! jq 1.7.1's search loop (`f_match` in jq's `src/builtin.c`), and the
//! natives jaq's regex builtins are defined with.
//!
//! Owns: reading jq's modifier letters, compiling a pattern (with a small
//! per-thread cache for patterns that arrive at run time), the sequence of
//! matches jq reports, and the match objects built from them. The fast path
//! ([`crate::fast`]) evaluates `capture`/`test`/`sub`/`gsub` through the same
//! [`Re::search`], so the two evaluators cannot disagree about what matched.
//! Must not know about mappings or the fast path's values.
//!
//! jq compiles with Oniguruma's Perl syntax, whose default is single-line:
//! `^` is the start of the string and `$` its end or a final newline
//! (Oniguruma's `\Z`); fancy-regex's `$` is the very end, so an unescaped `$`
//! outside a class is compiled as `\Z`. The letters map as follows:
//!
//! | jq | Oniguruma option        | here                                   |
//! |----|-------------------------|----------------------------------------|
//! | g  | (search loop)           | every match, not only the first        |
//! | i  | `IGNORECASE`            | `case_insensitive`                     |
//! | x  | `EXTEND`                | `ignore_whitespace`                    |
//! | n  | `FIND_NOT_EMPTY`        | `find_not_empty`                       |
//! | s  | `SINGLELINE`            | nothing: already jq's default          |
//! | m  | `MULTILINE` (`.` ∋ `\n`)| `dot_matches_new_line`                 |
//! | p  | `MULTILINE\|SINGLELINE` | `dot_matches_new_line`                 |
//! | l  | `FIND_LONGEST`          | `leftmost_longest`: the longest match at the leftmost start |
//!
//! Known differences from Oniguruma: a group repeated zero times (`( )*`)
//! did not take part here (offset -1), where Oniguruma reports an empty
//! capture; syntax only Oniguruma has (`\K` variants, callouts, absent
//! operator) fails to compile.

use std::cell::RefCell;
use std::rc::Rc;

use fancy_regex::{Regex, RegexBuilder};
use jaq_core::native::{Filter, Fun, bome, run, v};
use jaq_core::{DataT, Error, RunPtr};
use jaq_json::{Map, Val};

/// jq's modifier letters.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Flags {
    /// `g`: every match.
    pub global: bool,
    not_empty: bool,
    ignore_case: bool,
    extended: bool,
    dot_all: bool,
    longest: bool,
}

impl Flags {
    /// Read a modifier string as jq does: any other letter rejects it whole.
    pub fn parse(flags: &str) -> Result<Self, String> {
        let mut f = Self::default();
        for c in flags.chars() {
            match c {
                'g' => f.global = true,
                'n' => f.not_empty = true,
                'i' => f.ignore_case = true,
                'x' => f.extended = true,
                'm' | 'p' => f.dot_all = true,
                's' => {}
                'l' => f.longest = true,
                _ => return Err(format!("{flags} is not a valid modifier string")),
            }
        }
        Ok(f)
    }
}

/// Byte range of each group of one match, group 0 first; `None` for a group
/// that did not take part.
pub type Slots = Vec<Option<(usize, usize)>>;

/// A compiled pattern with its flags.
pub struct Re {
    /// `None` when the `n` flag leaves nothing the pattern could match.
    re: Option<Regex>,
    /// Group names, group 0 first.
    names: Vec<Option<String>>,
    pub flags: Flags,
}

impl std::fmt::Debug for Re {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Re")
            .field("re", &self.re.as_ref().map(Regex::as_str))
            .field("flags", &self.flags)
            .finish()
    }
}

/// `pattern` with every unescaped `$` outside a class spelled `\Z`.
fn single_line(pattern: &str) -> std::borrow::Cow<'_, str> {
    if !pattern.contains('$') {
        return pattern.into();
    }
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut class = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '[' => {
                class += 1;
                out.push(c);
            }
            ']' if class > 0 => {
                class -= 1;
                out.push(c);
            }
            '$' if class == 0 => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.into()
}

impl Re {
    /// Compile `pattern` with jq's modifier string; errors are worded as
    /// jq's.
    pub fn new(pattern: &str, flags: &str) -> Result<Self, String> {
        let flags = Flags::parse(flags)?;
        let mut b = RegexBuilder::new(&single_line(pattern));
        b.oniguruma_mode(true)
            .case_insensitive(flags.ignore_case)
            .ignore_whitespace(flags.extended)
            .dot_matches_new_line(flags.dot_all)
            .find_not_empty(flags.not_empty)
            .leftmost_longest(flags.longest);
        let re = match b.build() {
            Ok(re) => Some(re),
            // Oniguruma compiles such a pattern and finds nothing.
            Err(fancy_regex::Error::CompileError(e))
                if flags.not_empty
                    && matches!(*e, fancy_regex::CompileError::PatternCanNeverMatch) =>
            {
                None
            }
            Err(e) => return Err(format!("{pattern} (at offset 0) is not a valid regex: {e}")),
        };
        let names = match &re {
            Some(re) => re.capture_names().map(|n| n.map(str::to_string)).collect(),
            None => vec![None],
        };
        Ok(Self { re, names, flags })
    }

    /// Group names, group 0 first (`None` for unnamed groups).
    pub fn names(&self) -> &[Option<String>] {
        &self.names
    }

    /// The matches jq reports in `s`: the first one, or with `g` every one.
    /// After an empty match the search resumes one character later; after a
    /// non-empty one at its end, where an empty match is allowed (so
    /// `gsub("$"; "x")` also replaces at the end of `"a"`). `found` returns
    /// false to stop early.
    pub fn search(&self, s: &str, mut found: impl FnMut(Slots) -> bool) -> Result<(), String> {
        let Some(re) = &self.re else {
            return Ok(());
        };
        let mut pos = 0;
        loop {
            let caps = match re.captures_from_pos(s, pos) {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("Regex failure: {e}")),
            };
            let slots: Slots = (0..self.names.len())
                .map(|g| caps.get(g).map(|m| (m.start(), m.end())))
                .collect();
            let (start, end) = slots[0].expect("group 0 takes part in a match");
            if !found(slots) || !self.flags.global {
                return Ok(());
            }
            pos = if start == end {
                match s[end..].chars().next() {
                    Some(c) => end + c.len_utf8(),
                    None => return Ok(()),
                }
            } else {
                end
            };
        }
    }

    /// The first match, if any.
    pub fn first(&self, s: &str) -> Result<Option<Slots>, String> {
        let mut first = None;
        self.search(s, |m| {
            first = Some(m);
            false
        })?;
        Ok(first)
    }

    /// Every match [`Re::search`] reports.
    pub fn all(&self, s: &str) -> Result<Vec<Slots>, String> {
        let mut out = Vec::new();
        self.search(s, |m| {
            out.push(m);
            true
        })?;
        Ok(out)
    }
}

thread_local! {
    /// Patterns compiled at run time by jaq's builtins, most recent last: a
    /// filter applies the same few patterns to every item.
    static CACHE: RefCell<Vec<(String, String, Rc<Re>)>> = const { RefCell::new(Vec::new()) };
}

const CACHE_SIZE: usize = 32;

fn cached(pattern: &str, flags: &str) -> Result<Rc<Re>, String> {
    if let Some(re) = CACHE.with(|c| {
        c.borrow()
            .iter()
            .rev()
            .find(|(p, f, _)| p == pattern && f == flags)
            .map(|(_, _, re)| re.clone())
    }) {
        return Ok(re);
    }
    let re = Rc::new(Re::new(pattern, flags)?);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_SIZE {
            c.remove(0);
        }
        c.push((pattern.to_string(), flags.to_string(), re.clone()));
    });
    Ok(re)
}

/// Character (code point) offsets of byte offsets into one string, cheap
/// when asked in increasing order.
struct Chars<'s> {
    s: &'s str,
    ascii: bool,
    byte: usize,
    char: usize,
}

impl<'s> Chars<'s> {
    fn new(s: &'s str) -> Self {
        Self {
            s,
            ascii: s.is_ascii(),
            byte: 0,
            char: 0,
        }
    }

    fn at(&mut self, byte: usize) -> usize {
        if self.ascii {
            return byte;
        }
        if byte < self.byte {
            (self.byte, self.char) = (0, 0);
        }
        self.char += self.s[self.byte..byte].chars().count();
        self.byte = byte;
        self.char
    }
}

fn int(n: usize) -> Val {
    Val::from(n as isize)
}

/// jq's object for one group (or the whole match, without `name`).
fn group_obj(s: &str, chars: &mut Chars<'_>, slot: Option<(usize, usize)>) -> Map {
    let mut m = Map::default();
    let key = |k: &str| Val::from(k.to_string());
    match slot {
        Some((a, b)) => {
            let offset = chars.at(a);
            m.insert(key("offset"), int(offset));
            m.insert(key("length"), int(chars.at(b) - offset));
            m.insert(key("string"), Val::from(s[a..b].to_string()));
        }
        None => {
            m.insert(key("offset"), Val::from(-1isize));
            m.insert(key("length"), int(0));
            m.insert(key("string"), Val::Null);
        }
    }
    m
}

fn name_val(n: &Option<String>) -> Val {
    n.as_ref().map_or(Val::Null, |n| Val::from(n.clone()))
}

/// jq's match object: offset, length, string, and captures with names.
fn jq_match(re: &Re, s: &str, chars: &mut Chars<'_>, slots: &Slots) -> Val {
    let mut m = group_obj(s, chars, slots[0]);
    let captures = slots[1..]
        .iter()
        .zip(&re.names[1..])
        .map(|(slot, name)| {
            let mut c = group_obj(s, chars, *slot);
            c.insert(Val::from("name".to_string()), name_val(name));
            Val::obj(c)
        })
        .collect();
    m.insert(Val::from("captures".to_string()), captures);
    Val::obj(m)
}

/// jaq-std's shape of one match: the whole match, then each group, each
/// with `name` only when the group has one.
fn jaq_match(re: &Re, s: &str, chars: &mut Chars<'_>, slots: &Slots) -> Val {
    slots
        .iter()
        .zip(&re.names)
        .map(|(slot, name)| {
            let mut c = group_obj(s, chars, *slot);
            if let Some(n) = name {
                c.insert(Val::from("name".to_string()), Val::from(n.clone()));
            }
            Val::obj(c)
        })
        .collect()
}

fn tv(v: &Val) -> String {
    super::natives::tv(v)
}

/// The string a regex builtin applies to, or jq's error.
fn subject(v: &Val) -> Result<String, String> {
    match v {
        Val::TStr(b) | Val::BStr(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        v => Err(format!(
            "{} cannot be matched, as it is not a string",
            tv(v)
        )),
    }
}

fn regex_arg(re: &Val, flags: &Val) -> Result<Rc<Re>, String> {
    let pattern = match re {
        Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b),
        v => return Err(format!("{} is not a string", tv(v))),
    };
    let flags = match flags {
        Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b),
        Val::Null => "".into(),
        v => return Err(format!("{} is not a string", tv(v))),
    };
    cached(&pattern, &flags)
}

/// `_match_impl(re; flags; test)`: jq 1.7.1's native, on which `match`,
/// `test`, `capture`, `scan`, `split/2`, `splits` and `sub`/`gsub` are
/// defined (`COMPAT_DEFS`).
fn match_impl(input: &Val, re: &Val, flags: &Val, test: &Val) -> Result<Val, String> {
    let s = subject(input)?;
    let re = regex_arg(re, flags)?;
    if !matches!(test, Val::Bool(false) | Val::Null) {
        return Ok(Val::Bool(re.first(&s)?.is_some()));
    }
    let mut chars = Chars::new(&s);
    Ok(re
        .all(&s)?
        .iter()
        .map(|m| jq_match(&re, &s, &mut chars, m))
        .collect())
}

/// jaq-std's natives `matches`, `split_matches` and `split_` (`sm`: emit the
/// strings between matches, emit the matches), on this engine. jaq-std's
/// own definitions use them; jq's are in `COMPAT_DEFS`.
fn jaq_std_impl(input: &Val, re: &Val, flags: &Val, sm: (bool, bool)) -> Result<Val, String> {
    let s = subject(input)?;
    let re = regex_arg(re, flags)?;
    let mut chars = Chars::new(&s);
    let mut out = Vec::new();
    let mut last = 0;
    for m in re.all(&s)? {
        let (a, b) = m[0].expect("group 0 takes part in a match");
        if sm.0 {
            out.push(Val::from(s[last..a].to_string()));
            last = b;
        }
        if sm.1 {
            out.push(jaq_match(&re, &s, &mut chars, &m));
        }
    }
    if sm.0 {
        out.push(Val::from(s[last..].to_string()));
    }
    Ok(Val::from_iter(out))
}

/// Names of jaq-std's regex natives, which [`funs`] replaces.
pub const JAQ_STD_NATIVES: [&str; 3] = ["matches", "split_matches", "split_"];

pub fn funs<D: for<'a> DataT<V<'a> = Val>>() -> impl Iterator<Item = Fun<D>> {
    natives().into_vec().into_iter().map(run)
}

fn natives<D: for<'a> DataT<V<'a> = Val>>() -> Box<[Filter<RunPtr<D>>]> {
    Box::new([
        ("_match_impl", v(3), |mut cv| {
            let test = cv.0.pop_var();
            let flags = cv.0.pop_var();
            let re = cv.0.pop_var();
            bome(match_impl(&cv.1, &re, &flags, &test).map_err(Error::str))
        }),
        ("matches", v(2), |mut cv| {
            let flags = cv.0.pop_var();
            let re = cv.0.pop_var();
            bome(jaq_std_impl(&cv.1, &re, &flags, (false, true)).map_err(Error::str))
        }),
        ("split_matches", v(2), |mut cv| {
            let flags = cv.0.pop_var();
            let re = cv.0.pop_var();
            bome(jaq_std_impl(&cv.1, &re, &flags, (true, true)).map_err(Error::str))
        }),
        ("split_", v(2), |mut cv| {
            let flags = cv.0.pop_var();
            let re = cv.0.pop_var();
            bome(jaq_std_impl(&cv.1, &re, &flags, (true, false)).map_err(Error::str))
        }),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(pattern: &str, flags: &str, s: &str) -> Vec<(usize, usize)> {
        Re::new(pattern, flags)
            .unwrap()
            .all(s)
            .unwrap()
            .into_iter()
            .map(|m| m[0].unwrap())
            .collect()
    }

    #[test]
    fn flags_as_jq_reads_them() {
        assert!(Flags::parse("gixnmpsl").is_ok());
        assert_eq!(
            Flags::parse("gq").unwrap_err(),
            "gq is not a valid modifier string"
        );
        assert!(Flags::parse("g").unwrap().global);
        assert!(!Flags::parse("").unwrap().global);
    }

    #[test]
    fn search_loop_as_jq_1_7_1() {
        // onig.test: empty matches everywhere, also at the end.
        assert_eq!(spans("", "g", "ab"), [(0, 0), (1, 1), (2, 2)]);
        assert_eq!(spans("$", "g", "a"), [(1, 1)]);
        assert_eq!(spans("^", "g", "a"), [(0, 0)]);
        // An empty match right after a non-empty one counts.
        assert_eq!(
            spans("[^a-z]*(?<x>[a-z]*)", "g", "123foo456bar"),
            [(0, 6), (6, 12), (12, 12)]
        );
        assert_eq!(spans("a*", "g", "baac"), [(0, 0), (1, 3), (3, 3), (4, 4)]);
        // Without `g`, the first match only.
        assert_eq!(spans("a", "", "aaa"), [(0, 1)]);
        // After an empty match the search moves one character, not one byte.
        assert_eq!(spans("", "g", "é"), [(0, 0), (2, 2)]);
    }

    #[test]
    fn flags_change_matching() {
        assert_eq!(spans("A", "gi", "aA"), [(0, 1), (1, 2)]);
        assert!(spans("a", "gi", "āáàä").is_empty());
        assert_eq!(spans("a b c # comment", "x", "xabc"), [(1, 4)]);
        assert!(spans("a.b", "", "a\nb").is_empty());
        assert_eq!(spans("a.b", "p", "a\nb"), [(0, 3)]);
        assert_eq!(spans("a.b", "m", "a\nb"), [(0, 3)]);
        assert!(spans("a.b", "s", "a\nb").is_empty());
        assert_eq!(spans("a*?", "gn", "baa"), [(1, 2), (2, 3)]);
        assert!(spans("( )*", "gn", "abc").is_empty());
        assert!(spans("", "gn", "abc").is_empty());
        assert_eq!(spans("a|aa", "l", "xaay"), [(1, 3)]);
        assert_eq!(spans("a|aa", "", "xaay"), [(1, 2)]);
    }

    #[test]
    fn dollar_is_end_or_final_newline() {
        assert_eq!(spans("b$", "", "ab\n"), [(1, 2)]);
        assert!(spans("a$", "", "a\nb").is_empty());
        assert!(spans("^b", "", "a\nb").is_empty());
        // Escaped and in a class it is a literal.
        assert_eq!(spans("\\$", "", "a$"), [(1, 2)]);
        assert_eq!(spans("[$]", "", "a$"), [(1, 2)]);
        assert_eq!(spans("[\\]$]", "", "a$"), [(1, 2)]);
    }

    #[test]
    fn oniguruma_syntax() {
        assert_eq!(spans("(?=u)", "g", "qux"), [(1, 1)]);
        assert_eq!(spans("(?<=a)b", "", "ab"), [(1, 2)]);
        assert_eq!(spans("(a)\\1", "", "xaa"), [(1, 3)]);
        assert_eq!(spans("\\h+", "", "xx0fz"), [(2, 4)]);
        assert_eq!(spans(".+?\\b", "", "a\u{304} two"), [(0, 3)]);
    }

    #[test]
    fn errors_worded_as_jq() {
        let e = Re::new("(", "").unwrap_err();
        assert!(
            e.starts_with("( (at offset 0) is not a valid regex: "),
            "{e}"
        );
        assert_eq!(
            match_impl(
                &Val::from(1isize),
                &Val::from("a".to_string()),
                &Val::Null,
                &Val::Null
            )
            .unwrap_err(),
            "number (1) cannot be matched, as it is not a string"
        );
        assert_eq!(
            match_impl(
                &Val::from("a".to_string()),
                &Val::from(1isize),
                &Val::Null,
                &Val::Null
            )
            .unwrap_err(),
            "number (1) is not a string"
        );
    }

    #[test]
    fn match_objects_count_code_points() {
        let s = Val::from("ā bār".to_string());
        let m = match_impl(
            &s,
            &Val::from("b(?<v>ā)(x)?".to_string()),
            &Val::Null,
            &Val::Bool(false),
        )
        .unwrap();
        assert_eq!(
            crate::json_out::to_json(&m),
            r#"[{"offset":2,"length":2,"string":"bā","captures":[{"offset":3,"length":1,"string":"ā","name":"v"},{"offset":-1,"length":0,"string":null,"name":null}]}]"#
        );
        let t = match_impl(
            &s,
            &Val::from("r$".to_string()),
            &Val::Null,
            &Val::Bool(true),
        )
        .unwrap();
        assert_eq!(t, Val::Bool(true));
    }
}
