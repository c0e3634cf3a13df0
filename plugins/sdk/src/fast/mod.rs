//! Native fast path for the JQ expressions mappings use most (plain paths,
//! literals, `select`, `+`, `//`, `capture`, `sub`, ...), evaluated straight
//! on the item's JSON text without building jaq values. Anything outside the
//! supported subset returns `None` from [`FastFilter::compile`] and runs on
//! jaq instead; within the subset results are identical to jaq's (checked by
//! differential tests in `tests.rs`).
//!
//! * [`Doc::new`] validates the item in one pass and records every value as
//!   a node of a flat tape (offsets, kind, end of subtree, whether its text is
//!   already canonical), so lookups walk keys without rescanning text and
//!   sub-values are copied out verbatim when that is what jq would print.
//! * `parse` turns an expression of the subset into an `Expr` (jaq's lexer
//!   rules and precedences); regexes are compiled once there.
//! * `eval` evaluates it: each supported construct yields at most one output.
//!
//! Supported: literals (`null`, `true`, `false`, numbers, strings with
//! escapes and `\(...)` interpolation), `.`, `.a`, `."a"`, `.["a"]`, `.[n]`,
//! `?` after steps and terms, `|`, `//`, `and`, `or`, `not`, `==`, `!=`, `<`,
//! `<=`, `>`, `>=`, `+`, `-`, `*`, `/`, `%`, `(...)`, `select(f)`,
//! `if ... then ... (elif ...)* (else ...)? end`, `try f` (no `catch`),
//! `empty`, `tostring`, `ascii_downcase`, `ascii_upcase`, and with literal
//! string arguments `capture(re)`, `capture(re; flags)` (not `g`),
//! `test(re)`, `test(re; flags)`, `sub`/`gsub(re; "lit")` and
//! `sub`/`gsub(re; "lit"; flags)`.

mod doc;
mod eval;
mod parse;
mod re;
#[cfg(test)]
mod tests;

pub use doc::Doc;

/// What an expression's first output was.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Compact JSON text, printed as jq prints it.
    Json(String),
    /// No output.
    Empty,
    Error(String),
}

/// A compiled expression from the supported subset.
pub struct FastFilter {
    expr: parse::Expr,
    /// The output when it does not depend on the input (`"cloudResource"`,
    /// `true`).
    constant: Option<String>,
}

impl FastFilter {
    /// `code` is the expression after Ocean's quote rewrite.
    pub fn compile(code: &str) -> Option<Self> {
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
        Some(Self { expr, constant })
    }

    /// The first output on `doc`.
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
}
