//! The one entry point to the JQ engine: a [`Filter`] is compiled once and
//! run on [`Input`]s; it evaluates on the fast path ([`crate::fast`]) when
//! the expression is in its subset and the input is plain JSON, and on jaq
//! ([`Program`]) otherwise. Mappings, `run-jq` (and so `berth jq` and the
//! jq 1.7.1 conformance suite) all go through here.
//!
//! Shadow mode (`cfg(any(debug_assertions, feature = "shadow"))`): every
//! evaluation that took the fast path is evaluated again on jaq, and any
//! difference in the first output, in emptiness or in error-ness panics
//! with both results. Error texts may differ (the fast path words some
//! errors its own way, see `fast/tests.rs`). Release plugins built by
//! `scripts/build-plugins --shadow` (what `scripts/test` runs) have it on.

use std::borrow::Cow;
use std::cell::OnceCell;

use jaq_json::Val;

use super::{CompileError, First, Program};
use crate::fast::{Decline, Doc, FastFilter};
use crate::json_out;

/// What a filter's first output was.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Compact JSON text, printed as jq prints it.
    Json(String),
    /// No output.
    Empty,
    Error(String),
}

/// One JSON input, parsed at most once whichever filters read it: indexed
/// for the fast path, and turned into a jaq value only when some filter
/// needs jaq.
pub struct Input<'a> {
    text: &'a str,
    /// `None` when the text is JSON only jaq reads (a byte order mark,
    /// `NaN`, nesting past the fast path's limit).
    doc: Option<Doc<'a>>,
    val: OnceCell<Result<Val, String>>,
}

impl<'a> Input<'a> {
    /// A raw item: exactly one JSON object.
    pub fn new(text: &'a str) -> Result<Self, String> {
        Ok(Self {
            text,
            doc: Some(Doc::new(text)?),
            val: OnceCell::new(),
        })
    }

    /// Any one JSON value, read as jq reads its inputs (`run-jq`); the error
    /// is jaq's when neither reader accepts the text.
    pub fn any(text: &'a str) -> Result<Self, String> {
        match Doc::any(text) {
            Ok(doc) => Ok(Self {
                text,
                doc: Some(doc),
                val: OnceCell::new(),
            }),
            Err(_) => {
                let val = super::parse_json(text)?;
                Ok(Self {
                    text,
                    doc: None,
                    val: OnceCell::from(Ok(val)),
                })
            }
        }
    }

    /// `null`, the input of `jq -n`.
    pub fn null() -> Input<'static> {
        Input::any("null").expect("null is JSON")
    }

    /// The JSON text as given.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// What the top-level field `field` of an object input holds, read from the index
    /// without building a value (for [`crate::Enricher::needs`]).
    pub fn field(&self, field: &str) -> Field<'a> {
        let Some(doc) = &self.doc else {
            return Field::Unknown;
        };
        if doc.kind(0) != crate::fast::Kind::Obj {
            return Field::Unknown;
        }
        match doc.get(0, field) {
            None => Field::Missing,
            Some(v) => match doc.kind(v) {
                crate::fast::Kind::Null => Field::Missing,
                crate::fast::Kind::Obj => Field::Object(doc.keys(v)),
                _ => Field::Other,
            },
        }
    }

    /// The input as a jaq value, parsed on first use.
    pub fn val(&self) -> Result<Val, String> {
        self.val
            .get_or_init(|| super::parse_json(self.text))
            .clone()
    }
}

/// What a top-level field of an input holds ([`Input::field`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<'a> {
    /// Absent, or null.
    Missing,
    /// An object, with its keys.
    Object(Vec<Cow<'a, str>>),
    /// Any other value.
    Other,
    /// The input was not indexed (JSON only jaq reads) or is not an object.
    Unknown,
}

/// A compiled JQ filter.
pub struct Filter {
    /// The filter as compiled (after Ocean's quote rewrite), for shadow
    /// mode's messages and for compiling jaq's program late.
    code: String,
    vars: Vec<String>,
    fast: Result<FastFilter, Decline>,
    /// Compiled up front when the fast path declined; otherwise only when
    /// something needs it (shadow mode).
    jaq: OnceCell<Result<Program, CompileError>>,
}

impl Filter {
    /// Compile `code` (already through [`crate::rewrite::ocean_format_filter`]).
    pub fn compile(code: &str) -> Result<Self, CompileError> {
        Self::compile_with_vars(code, &[])
    }

    /// Compile with named variables (`$name`, given without the `$`), whose
    /// values [`Filter::all`] receives in the same order. The fast subset
    /// has no variables, so an expression that uses them runs on jaq.
    pub fn compile_with_vars(code: &str, vars: &[String]) -> Result<Self, CompileError> {
        let fast = FastFilter::compile(code);
        let jaq = match fast {
            Ok(_) => OnceCell::new(),
            Err(_) => OnceCell::from(Ok(Program::compile_with_vars(code, vars)?)),
        };
        Ok(Self {
            code: code.to_string(),
            vars: vars.to_vec(),
            fast,
            jaq,
        })
    }

    /// Whether inputs the fast path can read are evaluated there.
    pub fn is_fast(&self) -> bool {
        self.fast.is_ok()
    }

    /// Why the fast path does not evaluate this filter (`None` if it does).
    pub fn declined(&self) -> Option<&Decline> {
        self.fast.as_ref().err()
    }

    fn program(&self) -> &Program {
        match self
            .jaq
            .get_or_init(|| Program::compile_with_vars(&self.code, &self.vars))
        {
            Ok(p) => p,
            // The fast parser accepts a subset of what jaq compiles; the
            // differential tests in `fast/tests.rs` hold it to that.
            Err(e) => panic!(
                "jaq rejects `{}`, which the fast path accepted: {e}",
                self.code
            ),
        }
    }

    /// The first output on `input`, as JSON text.
    pub fn first(&self, input: &Input<'_>) -> Outcome {
        if let (Ok(fast), Some(doc)) = (&self.fast, &input.doc) {
            let out = fast_outcome(fast.first(doc));
            #[cfg(any(debug_assertions, feature = "shadow"))]
            self.shadow(input, std::slice::from_ref(&out));
            return out;
        }
        self.jaq_first(input)
    }

    fn jaq_first(&self, input: &Input<'_>) -> Outcome {
        match input.val() {
            Err(e) => Outcome::Error(e),
            Ok(v) => match self.program().first(v) {
                First::Value(v) => Outcome::Json(json_out::to_json(&v)),
                First::Empty => Outcome::Empty,
                First::Error(e) => Outcome::Error(e),
            },
        }
    }

    /// The first output on `input` as a jaq value (for callers that go on
    /// working with it, such as `itemsToParse`).
    pub fn first_value(&self, input: &Input<'_>) -> First {
        if let (Ok(fast), Some(doc)) = (&self.fast, &input.doc) {
            let out = match fast.first_val(doc) {
                Ok(Some(v)) => First::Value(v),
                Ok(None) => First::Empty,
                Err(e) => First::Error(jq_worded(e)),
            };
            #[cfg(any(debug_assertions, feature = "shadow"))]
            self.shadow(
                input,
                &[match &out {
                    First::Value(v) => Outcome::Json(json_out::to_json(v)),
                    First::Empty => Outcome::Empty,
                    First::Error(e) => Outcome::Error(e.clone()),
                }],
            );
            return out;
        }
        match input.val() {
            Err(e) => First::Error(e),
            Ok(v) => self.program().first(v),
        }
    }

    /// Every output on `input` as JSON text, stopping at the first error
    /// (jq's command-line behaviour) and after `limit` outputs (then an
    /// error says so). `vars` are the values of the compiled variables.
    pub fn all(
        &self,
        input: &Input<'_>,
        vars: &[Val],
        limit: usize,
    ) -> Vec<Result<String, String>> {
        if let (Ok(fast), Some(doc)) = (&self.fast, &input.doc) {
            // Every construct of the fast subset has at most one output.
            let out = fast_outcome(fast.first(doc));
            #[cfg(any(debug_assertions, feature = "shadow"))]
            self.shadow_all(input, vars, &out);
            return match out {
                Outcome::Json(j) => vec![Ok(j)],
                Outcome::Empty => Vec::new(),
                Outcome::Error(e) => vec![Err(e)],
            };
        }
        self.jaq_all(input, vars, limit)
    }

    fn jaq_all(
        &self,
        input: &Input<'_>,
        vars: &[Val],
        limit: usize,
    ) -> Vec<Result<String, String>> {
        match input.val() {
            Err(e) => vec![Err(e)],
            Ok(v) => self
                .program()
                .all(v, vars, limit)
                .into_iter()
                .map(|r| r.map(|v| json_out::to_json(&v)))
                .collect(),
        }
    }

    /// Shadow mode for [`Filter::first`]/[`Filter::first_value`]: jaq's
    /// first output must agree with the fast path's.
    #[cfg(any(debug_assertions, feature = "shadow"))]
    fn shadow(&self, input: &Input<'_>, fast: &[Outcome]) {
        let jaq = self.jaq_first(input);
        self.agree(input, fast, std::slice::from_ref(&jaq));
    }

    /// Shadow mode for [`Filter::all`]: jaq must have the same outputs (at
    /// most one, so two are enough to tell).
    #[cfg(any(debug_assertions, feature = "shadow"))]
    fn shadow_all(&self, input: &Input<'_>, vars: &[Val], fast: &Outcome) {
        let jaq: Vec<Outcome> = self
            .jaq_all(input, vars, 2)
            .into_iter()
            .map(|r| match r {
                Ok(j) => Outcome::Json(j),
                Err(e) => Outcome::Error(e),
            })
            .collect();
        let fast: &[Outcome] = match fast {
            Outcome::Empty => &[],
            one => std::slice::from_ref(one),
        };
        self.agree(input, fast, &jaq);
    }

    #[cfg(any(debug_assertions, feature = "shadow"))]
    fn agree(&self, input: &Input<'_>, fast: &[Outcome], jaq: &[Outcome]) {
        let same = fast.len() == jaq.len()
            && fast.iter().zip(jaq).all(|(a, b)| match (a, b) {
                (Outcome::Error(_), Outcome::Error(_)) => true,
                (a, b) => a == b,
            });
        if !same {
            let text = input.text();
            let prefix: String = text.chars().take(300).collect();
            let more = if prefix.len() < text.len() { "…" } else { "" };
            panic!(
                "shadow mode: the fast path and jaq disagree on `{}`\n  input: {prefix}{more}\n  fast:  {fast:?}\n  jaq:   {jaq:?}",
                self.code
            );
        }
    }
}

/// The fast path's errors come from its own code or from jaq's value
/// operations; the latter get jq's wording as jaq's errors do.
fn jq_worded(e: String) -> String {
    super::natives::jq_message(&e).unwrap_or(e)
}

fn fast_outcome(o: Outcome) -> Outcome {
    match o {
        Outcome::Error(e) => Outcome::Error(jq_worded(e)),
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(code: &str, input: &str) -> Outcome {
        Filter::compile(code)
            .unwrap()
            .first(&Input::any(input).unwrap())
    }

    #[test]
    fn picks_the_fast_path_when_it_can() {
        let f = Filter::compile(".a.b").unwrap();
        assert!(f.is_fast() && f.declined().is_none());
        // jaq's program is compiled only when something needs it.
        assert!(f.jaq.get().is_none());
        let f = Filter::compile("[limit(2; .[])]").unwrap();
        assert!(!f.is_fast());
        assert_eq!(
            f.declined().unwrap().to_string(),
            "`[...]` (array construction) is outside the fast subset"
        );
        let f = Filter::compile_with_vars("$x", &["x".into()]).unwrap();
        assert_eq!(f.declined().unwrap().to_string(), "uses $variables");
    }

    #[test]
    fn compile_errors_are_jaq_s() {
        let e = Filter::compile(".a | nosuchfn")
            .err()
            .expect("compile error");
        assert_eq!(e.position, Some(5));
        assert!(Filter::compile("(.a").is_err());
    }

    #[test]
    fn inputs_of_any_kind() {
        assert_eq!(first(".", "[1, 2]"), Outcome::Json("[1,2]".into()));
        assert_eq!(first(".a", "null"), Outcome::Json("null".into()));
        assert_eq!(first(". + 1", "1.5"), Outcome::Json("2.5".into()));
        assert_eq!(first(r#". == "x""#, r#""x""#), Outcome::Json("true".into()));
        // Only jaq reads these (a byte order mark, NaN).
        let bom = Input::any("\u{feff}{\"a\":1}").unwrap();
        assert!(bom.doc.is_none());
        assert_eq!(
            Filter::compile(".a").unwrap().first(&bom),
            Outcome::Json("1".into())
        );
        assert!(Input::any("nan").unwrap().doc.is_none());
        assert!(Input::any("{").is_err());
        assert!(Input::new("[1]").is_err());
        assert!(Input::null().doc.is_some());
    }

    #[test]
    fn fast_errors_are_worded_as_jq() {
        assert_eq!(
            first(".a.b", r#"{"a":1}"#),
            Outcome::Error("Cannot index number with string \"b\"".into())
        );
        assert_eq!(
            first(".a + 1", r#"{"a":{}}"#),
            Outcome::Error("object ({}) and number (1) cannot be added".into())
        );
    }

    #[test]
    fn all_outputs_on_either_path() {
        let f = Filter::compile(".a").unwrap();
        let input = Input::any(r#"{"a":[1]}"#).unwrap();
        assert_eq!(f.all(&input, &[], 10), vec![Ok("[1]".to_string())]);
        let f = Filter::compile(".a[]").unwrap();
        assert_eq!(f.all(&input, &[], 10), vec![Ok("1".to_string())]);
        let f = Filter::compile("range(5)").unwrap();
        let out = f.all(&Input::null(), &[], 2);
        assert_eq!(out.len(), 3);
        assert!(out[2].is_err());
        let f = Filter::compile("select(.a)").unwrap();
        assert!(f.all(&Input::any("{}").unwrap(), &[], 10).is_empty());
        let f = Filter::compile_with_vars("$x + 1", &["x".into()]).unwrap();
        assert_eq!(
            f.all(&Input::null(), &[Val::from(1isize)], 10),
            vec![Ok("2".to_string())]
        );
    }

    #[test]
    fn first_value_on_either_path() {
        let input = Input::new(r#"{"a":[1,{"b":"x"}]}"#).unwrap();
        let fast = Filter::compile(".a").unwrap();
        let slow = Filter::compile(".a | map(.)").unwrap();
        for f in [&fast, &slow] {
            match f.first_value(&input) {
                First::Value(v) => assert_eq!(json_out::to_json(&v), r#"[1,{"b":"x"}]"#),
                other => panic!("{other:?}"),
            }
        }
    }

    /// Shadow mode is on in debug builds: a disagreement panics with both
    /// results. (A fast path that agrees with jaq cannot show it, so this
    /// feeds the fast path a program jaq would evaluate differently.)
    #[cfg(debug_assertions)]
    #[test]
    fn shadow_mode_panics_on_a_difference() {
        let f = Filter {
            code: ".a".into(),
            vars: Vec::new(),
            fast: FastFilter::compile(".a"),
            jaq: OnceCell::from(Program::compile(".b")),
        };
        let input = Input::new(r#"{"a":1,"b":2}"#).unwrap();
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.first(&input)))
            .expect_err("the shadow must panic");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("disagree on `.a`"), "{msg}");
        assert!(msg.contains(r#"{"a":1,"b":2}"#), "{msg}");
        assert!(
            msg.contains("Json(\"1\")") && msg.contains("Json(\"2\")"),
            "{msg}"
        );
        // Agreement, also on errors whose texts differ, does not panic.
        let input = Input::new(r#"{"a":1,"b":1}"#).unwrap();
        assert_eq!(f.first(&input), Outcome::Json("1".into()));
    }
}
