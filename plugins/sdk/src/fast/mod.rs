//! The JQ engine's accelerator: a native evaluator for the expressions
//! mappings use most (plain paths, literals, `select`, `+`, `//`, `capture`,
//! `sub`, ...), run straight on the input's JSON text without building jaq
//! values. It is not an engine of its own: [`crate::jq::Filter`] compiles
//! every expression, uses this evaluator when [`FastFilter::compile`]
//! accepts it, and jaq otherwise. Within the subset results are jaq's
//! (differential tests in `tests.rs`; in shadow mode, debug builds and
//! `scripts/build-plugins --shadow`, every evaluation here is checked
//! against jaq). Error texts may differ where the engine's are jq's
//! rewording of jaq's and this module words the error itself.
//!
//! Owns: the tape ([`Doc`]), the subset's parser and evaluator. Must not
//! own regex semantics (those are [`crate::jq::regex`]'s, shared with jaq's
//! regex builtins) or decide which engine runs (that is the filter's).
//!
//! * [`Doc::new`] validates the item in one pass and records every value as
//!   a node of a flat tape (offsets, kind, end of subtree, whether its text is
//!   already canonical), so lookups walk keys without rescanning text and
//!   sub-values are copied out verbatim when that is what jq would print.
//! * `parse` turns an expression of the subset into an `Expr` (jaq's lexer
//!   rules and precedences), or says why it declines ([`Decline`], which
//!   `berth map --explain` shows); regexes are compiled once there.
//! * `eval` evaluates it: each supported construct yields at most one output.
//!
//! Supported: literals (`null`, `true`, `false`, numbers, strings with
//! escapes and `\(...)` interpolation), `.`, `.a`, `."a"`, `.["a"]`, `.[n]`,
//! `?` after steps and terms, `|`, `//`, `and`, `or`, `not`, `==`, `!=`, `<`,
//! `<=`, `>`, `>=`, `+`, `-`, `(...)`, `select(f)`,
//! `if ... then ... (elif ...)* (else ...)? end`, `try f` (no `catch`),
//! `empty`, `tostring`, `ascii_downcase`, `ascii_upcase`, and with literal
//! string arguments `capture(re)`, `capture(re; flags)` (not `g`),
//! `test(re)`, `test(re; flags)`, `sub`/`gsub(re; "lit")` and
//! `sub`/`gsub(re; "lit"; flags)`.

mod doc;
mod eval;
mod parse;
#[cfg(test)]
mod tests;

use jaq_json::Val;

pub use crate::jq::Outcome;
pub use doc::Doc;
pub(crate) use doc::Kind;
pub use parse::Decline;

/// A compiled expression from the supported subset.
pub struct FastFilter {
    expr: parse::Expr,
    /// The output when it does not depend on the input (`"cloudResource"`,
    /// `true`).
    constant: Option<String>,
}

impl FastFilter {
    /// `code` is the expression after Ocean's quote rewrite.
    pub fn compile(code: &str) -> Result<Self, Decline> {
        let expr = parse::parse(code)?;
        let constant = match &expr {
            parse::Expr::Lit(parse::Lit::Null | parse::Lit::Bool(_) | parse::Lit::Str(_)) => {
                // The document is irrelevant for a literal.
                let doc = Doc::new("{}").expect("valid");
                match eval::eval(&doc, &expr, &eval::V::Node(0)) {
                    Ok(Some(v)) => Some(eval::render(&doc, &v)),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(Self { expr, constant })
    }

    /// The first (and only) output on `doc`.
    pub fn first(&self, doc: &Doc<'_>) -> Outcome {
        if let Some(c) = &self.constant {
            return Outcome::Json(c.clone());
        }
        match eval::eval(doc, &self.expr, &eval::V::Node(0)) {
            Ok(Some(v)) => Outcome::Json(eval::render(doc, &v)),
            Ok(None) => Outcome::Empty,
            Err(e) => Outcome::Error(e),
        }
    }

    /// The first output on `doc` as a jaq value.
    pub fn first_val(&self, doc: &Doc<'_>) -> Result<Option<Val>, String> {
        Ok(eval::eval(doc, &self.expr, &eval::V::Node(0))?.map(|v| eval::to_val(doc, &v)))
    }
}
