//! The front end: jq text in, jq text that jaq runs with jq's semantics out.

use super::CompileError;
use jaq_core::load::lex::{StrPart, Tok, Token};
use jaq_core::load::parse::{BinaryOp, Def, Pattern, Term};
use jaq_core::load::{Lexer, parse};
use jaq_core::ops::Math;
use jaq_core::path::{Opt, Part, Path};
use std::fmt::Write;

/// The translation of `code`, or `None` to compile `code` as written
/// (it does not parse, or it uses modules).
pub fn translate(code: &str) -> Result<Option<String>, CompileError> {
    directives(code)?;
    let pre = prepass(code);
    let text = pre.as_deref().unwrap_or(code);
    let Some(term) = parse(text, |p| p.term()) else {
        return Ok(None);
    };
    let term = rewrite(term)?;
    let mut out = String::with_capacity(text.len() * 2);
    print(&mut out, &term);
    Ok(Some(out))
}

/// Module directives jaq would accept but jq rejects (non-constant or
/// non-object metadata), and data imports (`import "f" as $v`), which
/// jaq would bind to the wrong values since the sandbox loads no
/// modules.
fn directives(code: &str) -> Result<(), CompileError> {
    let first = code.trim_start();
    if !["module", "import", "include"]
        .iter()
        .any(|d| first.starts_with(d))
    {
        return Ok(());
    }
    let Ok(tokens) = Lexer::new(code).lex() else {
        return Ok(());
    };
    let err = |message: &str, at: &str| CompileError {
        message: message.to_string(),
        position: super::offset_of(code, at),
    };
    let mut i = 0;
    while let Some(t) = tokens.get(i) {
        match t.0 {
            "module" => {
                let meta = tokens.get(i + 1);
                match meta {
                    Some(Token(m, Tok::Block(inner))) if m.starts_with('{') => {
                        if !constant(inner) {
                            return Err(err("Module metadata must be constant", m));
                        }
                    }
                    Some(Token(m, Tok::Block(inner))) if m.starts_with('(') || !constant(inner) => {
                        return Err(err("Module metadata must be constant", m));
                    }
                    Some(Token(m, _)) => {
                        return Err(err("Module metadata must be an object", m));
                    }
                    None => return Ok(()),
                }
            }
            "import" => {
                if let (
                    Some(Token(_, Tok::Str(_))),
                    Some(Token("as", _)),
                    Some(Token(v, Tok::Var)),
                ) = (tokens.get(i + 1), tokens.get(i + 2), tokens.get(i + 3))
                {
                    return Err(err(
                        "cannot import data: modules are not available in mappings",
                        v,
                    ));
                }
            }
            "include" => {}
            _ => return Ok(()),
        }
        // skip to the directive's `;`
        while tokens.get(i).is_some_and(|t| t.0 != ";") {
            i += 1;
        }
        i += 1;
    }
    Ok(())
}

/// Tokens of a constant JSON-like term: literals, strings without
/// interpolation, nested blocks of the same.
fn constant(tokens: &[Token<&str>]) -> bool {
    tokens.iter().all(|t| match &t.1 {
        Tok::Num | Tok::Sym => {
            !t.0.starts_with('.') && !matches!(t.0, "|" | "+" | "-" | "*" | "/" | "%")
        }
        Tok::Str(parts) => parts.iter().all(|p| !matches!(p, StrPart::Term(_))),
        Tok::Word => matches!(t.0, "true" | "false" | "null") || !t.0.contains("::"),
        Tok::Block(inner) => !t.0.starts_with('(') && constant(inner),
        Tok::Var | Tok::Fmt => false,
    })
}

// ------------------------------------------------------------------
// Token-level pass: `?//` and `.5`.

fn prepass(code: &str) -> Option<String> {
    let b = code.as_bytes();
    let dot_num = (0..b.len().saturating_sub(1)).any(|i| {
        b[i] == b'.' && b[i + 1].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
    });
    let var_key = code.contains(" as ") && code.contains(':');
    if !code.contains("?//") && !dot_num && !var_key {
        return None;
    }
    let tokens = Lexer::new(code).lex().ok()?;
    let mut p = Pre { code, n: 0 };
    Some(p.seq(&tokens, 0, code.len()))
}

struct Pre<'a> {
    code: &'a str,
    /// Counter for fresh variable names.
    n: usize,
}

impl Pre<'_> {
    fn span(&self, s: &str) -> (usize, usize) {
        let r = jaq_core::load::span(self.code, s);
        (r.start, r.end)
    }

    /// `code[from..to]` with the rewrites applied to `tokens`, which lie
    /// in that range.
    fn seq(&mut self, tokens: &[Token<&str>], from: usize, to: usize) -> String {
        let mut out = String::new();
        let mut pos = from;
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            let (ts, te) = self.span(t.0);
            out.push_str(&self.code[pos..ts]);
            if let Some((pats, bar)) = alternatives(tokens, i) {
                let end = body_end(tokens, bar + 1);
                let body_from = self.span(tokens[bar].0).1;
                let body_to = tokens.get(end).map_or(to, |t| self.span(t.0).0);
                let body = self.seq(&tokens[bar + 1..end], body_from, body_to);
                let v = format!("$__alt{}", self.n);
                self.n += 1;
                let mut vars: Vec<&str> = Vec::new();
                for p in &pats {
                    pattern_vars(p, &mut vars);
                }
                let _ = write!(out, "as {v} | ");
                for x in &vars {
                    let _ = write!(out, "null as {x} | ");
                }
                // try ($v as P1 | body) catch (try ($v as P2 | body) catch ($v as Pn | body))
                let mut alt = String::new();
                for (k, p) in pats.iter().enumerate().rev() {
                    let this = format!("({v} as {} | {body})", self.pat(p));
                    alt = if k + 1 == pats.len() {
                        this
                    } else {
                        format!("(try {this} catch {alt})")
                    };
                }
                out.push_str(&alt);
                out.push(' ');
                pos = body_to;
                i = end;
                continue;
            }
            if t.0 == "as"
                && matches!(t.1, Tok::Word)
                && let Some(p @ Token(_, Tok::Block(_))) = tokens.get(i + 1)
            {
                let (ps, pe) = self.span(p.0);
                out.push_str(&self.code[ts..ps]);
                let pat = self.pat(p);
                out.push_str(&pat);
                pos = pe;
                i += 2;
                continue;
            }
            match &t.1 {
                Tok::Sym if t.0 == "." => {
                    let adjacent_num = tokens
                        .get(i + 1)
                        .is_some_and(|n| matches!(n.1, Tok::Num) && self.span(n.0).0 == te);
                    out.push_str(if adjacent_num { "0." } else { "." });
                }
                Tok::Block(inner) => {
                    out.push_str(&t.0[..1]);
                    let inner_text = self.seq(inner, ts + 1, te);
                    out.push_str(&inner_text);
                }
                _ => out.push_str(&self.code[ts..te]),
            }
            pos = te;
            i += 1;
        }
        out.push_str(&self.code[pos..to]);
        out
    }
}

impl Pre<'_> {
    /// A pattern token's text, with jq's `{$name: pattern}` entries
    /// (bind `$name` to the field and destructure it too) spelled as
    /// `{"name": $name, "name": pattern}`, which jaq reads.
    fn pat(&mut self, t: &Token<&str>) -> String {
        let (ts, te) = self.span(t.0);
        let Tok::Block(inner) = &t.1 else {
            return self.code[ts..te].to_string();
        };
        if t.0.starts_with('(') {
            return format!("({}", self.seq(inner, ts + 1, te));
        }
        let mut out = String::from(&t.0[..1]);
        let mut pos = ts + 1;
        for (i, x) in inner.iter().enumerate() {
            let (xs, xe) = self.span(x.0);
            out.push_str(&self.code[pos..xs]);
            if t.0.starts_with('{')
                && matches!(x.1, Tok::Var)
                && inner.get(i + 1).is_some_and(|n| n.0 == ":")
            {
                let name = &x.0[1..];
                let _ = write!(out, "\"{name}\": {}, \"{name}\"", x.0);
            } else if matches!(x.1, Tok::Block(_)) {
                let sub = self.pat(x);
                out.push_str(&sub);
            } else {
                out.push_str(&self.code[xs..xe]);
            }
            pos = xe;
        }
        out.push_str(&self.code[pos..te]);
        out
    }
}

/// If `tokens[i]` is the `as` of `as P1 ?// P2 ... |`, its patterns and
/// the index of the `|`.
fn alternatives<'t, 's>(
    tokens: &'t [Token<&'s str>],
    i: usize,
) -> Option<(Vec<&'t Token<&'s str>>, usize)> {
    let is_pat = |t: &Token<&str>| {
        matches!(t.1, Tok::Var) || matches!(&t.1, Tok::Block(_) if !t.0.starts_with('('))
    };
    if !(tokens[i].0 == "as" && matches!(tokens[i].1, Tok::Word)) {
        return None;
    }
    let mut pats = vec![tokens.get(i + 1).filter(|t| is_pat(t))?];
    let mut j = i + 2;
    while tokens.get(j).is_some_and(|t| t.0 == "?")
        && tokens.get(j + 1).is_some_and(|t| t.0 == "//")
    {
        pats.push(tokens.get(j + 2).filter(|t| is_pat(t))?);
        j += 3;
    }
    (pats.len() > 1 && tokens.get(j).is_some_and(|t| t.0 == "|")).then_some((pats, j))
}

/// Index of the token that ends the pipe starting at `tokens[k]`.
fn body_end(tokens: &[Token<&str>], k: usize) -> usize {
    let (mut ifs, mut defs) = (0usize, 0usize);
    for (j, t) in tokens.iter().enumerate().skip(k) {
        if matches!(
            t.1,
            Tok::Str(_) | Tok::Block(_) | Tok::Var | Tok::Num | Tok::Fmt
        ) {
            continue;
        }
        match t.0 {
            "if" => ifs += 1,
            "end" if ifs > 0 => ifs -= 1,
            "end" | "then" | "elif" | "else" if ifs == 0 => return j,
            "def" => defs += 1,
            ";" if defs > 0 => defs -= 1,
            ";" | ")" | "]" | "}" => return j,
            _ => {}
        }
    }
    tokens.len()
}

/// Variables bound by a pattern token (not those used in `(key)`s).
fn pattern_vars<'s>(t: &Token<&'s str>, vars: &mut Vec<&'s str>) {
    match &t.1 {
        Tok::Var if !vars.contains(&t.0) => vars.push(t.0),
        Tok::Block(inner) if !t.0.starts_with('(') => {
            for t in inner {
                pattern_vars(t, vars);
            }
        }
        _ => {}
    }
}

// ------------------------------------------------------------------
// Rewriting the syntax tree.

type T<'s> = Term<&'s str>;

fn call<'s>(name: &'s str, args: Vec<T<'s>>) -> T<'s> {
    Term::Call(name, args)
}

fn pipe<'s>(l: T<'s>, r: T<'s>) -> T<'s> {
    Term::BinOp(Box::new(l), BinaryOp::Pipe(None), Box::new(r))
}

/// A term whose value does not depend on the input.
fn is_const(t: &T) -> bool {
    match t {
        Term::Num(_) | Term::Var(_) => true,
        Term::Str(None, parts) => parts.iter().all(|p| !matches!(p, StrPart::Term(_))),
        Term::Neg(t) => matches!(**t, Term::Num(_)),
        _ => false,
    }
}

/// An integer literal that fits jaq's machine integer on any target.
fn is_int_literal(t: &T) -> bool {
    match t {
        Term::Num(n) => n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()),
        Term::Neg(t) => is_int_literal(t),
        _ => false,
    }
}

fn is_str_literal(t: &T) -> bool {
    matches!(t, Term::Str(None, parts) if parts.iter().all(|p| !matches!(p, StrPart::Term(_))))
}

fn rewrite<'s>(t: T<'s>) -> Result<T<'s>, CompileError> {
    fn r(t: T) -> Result<Box<T>, CompileError> {
        Ok(Box::new(rewrite(t)?))
    }
    Ok(match t {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Var(_) | Term::Break(_) => t,
        Term::Str(fmt, parts) => {
            let plain = fmt.is_none() || fmt == Some("@text");
            let parts = parts
                .into_iter()
                .map(|p| {
                    Ok(match p {
                        StrPart::Term(t) if plain => {
                            StrPart::Term(pipe(rewrite(t)?, call("_tostr", vec![])))
                        }
                        StrPart::Term(t) => StrPart::Term(rewrite(t)?),
                        p => p,
                    })
                })
                .collect::<Result<_, CompileError>>()?;
            Term::Str(fmt, parts)
        }
        Term::Arr(t) => Term::Arr(t.map(|t| r(*t)).transpose()?),
        Term::Obj(kvs) => {
            let mut out = Vec::with_capacity(kvs.len());
            for (k, v) in kvs {
                if let Term::Num(n) = &k {
                    return Err(CompileError {
                        message: format!("Cannot use number ({n}) as object key"),
                        position: None,
                    });
                }
                out.push((rewrite(k)?, v.map(rewrite).transpose()?));
            }
            Term::Obj(out)
        }
        Term::Neg(t) => match *t {
            Term::Num(n) => Term::Neg(Box::new(Term::Num(n))),
            t => call("_neg", vec![rewrite(t)?]),
        },
        Term::BinOp(l, op, rt) => {
            let (l, rt) = (rewrite(*l)?, rewrite(*rt)?);
            // jaq's own update is used where it agrees with jq (see
            // `_assign`/`_modify_fast`), except on recursive paths,
            // whose set jq fixes before updating.
            let recursive = mentions_recursion(&l);
            match op {
                BinaryOp::Assign if recursive => call("_assign_jq", vec![l, rt]),
                BinaryOp::Assign => call("_assign", vec![l, rt]),
                BinaryOp::Update if recursive => call("_modify", vec![l, rt]),
                BinaryOp::Update => call("_modify_fast", vec![l, rt]),
                BinaryOp::UpdateMath(m) => {
                    let name = match m {
                        Math::Add => "_modify_add",
                        Math::Sub => "_modify_sub",
                        Math::Mul => "_modify_mul",
                        Math::Div => "_modify_div",
                        Math::Rem => "_modify_rem",
                    };
                    call(name, vec![l, rt])
                }
                BinaryOp::UpdateAlt => call("_modify_alt", vec![l, rt]),
                BinaryOp::Math(Math::Div) => call("_div", vec![l, rt]),
                BinaryOp::Math(Math::Rem) => call("_rem", vec![l, rt]),
                BinaryOp::Math(Math::Mul) => call("_mul", vec![l, rt]),
                BinaryOp::Pipe(Some(p)) => Term::BinOp(
                    Box::new(l),
                    BinaryOp::Pipe(Some(rewrite_pat(p)?)),
                    Box::new(rt),
                ),
                op => Term::BinOp(Box::new(l), op, Box::new(rt)),
            }
        }
        Term::Label(x, t) => Term::Label(x, r(*t)?),
        Term::Fold(k, xs, p, args) => {
            let mut args: Vec<T<'s>> = args.into_iter().map(rewrite).collect::<Result<_, _>>()?;
            // jq 1.7.1 keeps the update's last output as the state, and
            // null when it has none; jaq would end the reduction with
            // nothing, or (foreach) run the rest once per output.
            if k == "reduce" && args.len() == 2 {
                let update = args.pop().expect("two arguments");
                args.push(if single(&update) {
                    update
                } else {
                    call("_last", vec![update])
                });
            } else if k == "foreach" && (args.len() == 2 || args.len() == 3) {
                // state [s, outs]: init | [., []];
                // update: [.[0] | update] | [.[-1], .];
                // extract: .[1][] | extract
                let extract = (args.len() == 3).then(|| args.pop().expect("three arguments"));
                let update = args.pop().expect("update");
                let init = args.pop().expect("init");
                let idx = |t: T<'s>, i: &'s str| {
                    Term::Path(
                        Box::new(t),
                        Path(vec![(Part::Index(Term::Num(i)), Opt::Essential)]),
                    )
                };
                let last = Term::Path(
                    Box::new(Term::Id),
                    Path(vec![(
                        Part::Index(Term::Neg(Box::new(Term::Num("1")))),
                        Opt::Essential,
                    )]),
                );
                let pair = |a: T<'s>, b: T<'s>| {
                    Term::Arr(Some(Box::new(Term::BinOp(
                        Box::new(a),
                        BinaryOp::Comma,
                        Box::new(b),
                    ))))
                };
                args.push(pipe(init, pair(Term::Id, Term::Arr(None))));
                let collected = Term::Arr(Some(Box::new(pipe(idx(Term::Id, "0"), update))));
                args.push(pipe(collected, pair(last, Term::Id)));
                let outs = Term::Path(
                    Box::new(idx(Term::Id, "1")),
                    Path(vec![(Part::Range(None, None), Opt::Essential)]),
                );
                args.push(match extract {
                    Some(e) => pipe(outs, e),
                    None => outs,
                });
            }
            Term::Fold(k, r(*xs)?, rewrite_pat(p)?, args)
        }
        Term::TryCatch(t, c) => {
            let c = match c {
                Some(c) => Some(Box::new(pipe(call("_jqerr", vec![]), rewrite(*c)?))),
                None => None,
            };
            Term::TryCatch(r(*t)?, c)
        }
        Term::IfThenElse(branches, e) => Term::IfThenElse(
            branches
                .into_iter()
                .map(|(c, t)| Ok((rewrite(c)?, rewrite(t)?)))
                .collect::<Result<_, CompileError>>()?,
            e.map(|e| r(*e)).transpose()?,
        ),
        Term::Def(defs, body) => Term::Def(
            defs.into_iter()
                .map(|d| {
                    Ok(Def {
                        name: d.name,
                        args: d.args,
                        body: rewrite(d.body)?,
                    })
                })
                .collect::<Result<_, CompileError>>()?,
            r(*body)?,
        ),
        Term::Call(name, args) => Term::Call(
            name,
            args.into_iter().map(rewrite).collect::<Result<_, _>>()?,
        ),
        Term::Path(t, path) => rewrite_path(rewrite(*t)?, path)?,
    })
}

/// Whether updating the paths of `t` needs jq's own algorithm: they
/// recurse into the values being updated (`..`, `recurse`), where jaq's
/// update visits what it has just changed, or they contain a slice,
/// which jaq also updates on strings.
fn mentions_recursion(t: &T) -> bool {
    match t {
        Term::Recurse => true,
        Term::Call(name, args) => {
            matches!(*name, "recurse" | "walk" | "paths" | "leaf_paths" | "_rng")
                || args.iter().any(mentions_recursion)
        }
        Term::Id | Term::Num(_) | Term::Var(_) | Term::Break(_) => false,
        Term::Str(_, parts) => parts
            .iter()
            .any(|p| matches!(p, StrPart::Term(t) if mentions_recursion(t))),
        Term::Arr(t) => t.as_deref().is_some_and(mentions_recursion),
        Term::Obj(kvs) => kvs
            .iter()
            .any(|(k, v)| mentions_recursion(k) || v.as_ref().is_some_and(mentions_recursion)),
        Term::Neg(t) | Term::Label(_, t) => mentions_recursion(t),
        Term::BinOp(l, _, r) => mentions_recursion(l) || mentions_recursion(r),
        Term::Fold(_, xs, _, args) => mentions_recursion(xs) || args.iter().any(mentions_recursion),
        Term::TryCatch(t, c) => {
            mentions_recursion(t) || c.as_deref().is_some_and(mentions_recursion)
        }
        Term::IfThenElse(bs, e) => {
            bs.iter()
                .any(|(c, t)| mentions_recursion(c) || mentions_recursion(t))
                || e.as_deref().is_some_and(mentions_recursion)
        }
        Term::Def(defs, body) => {
            defs.iter().any(|d| mentions_recursion(&d.body)) || mentions_recursion(body)
        }
        Term::Path(t, path) => {
            mentions_recursion(t)
                || path.0.iter().any(|(part, _)| match part {
                    Part::Index(i) => mentions_recursion(i),
                    Part::Range(None, None) => false,
                    Part::Range(..) => true,
                })
        }
    }
}

/// Whether `t` surely yields exactly one output or an error (then the
/// `_last` around a reduce update is not needed).
fn single(t: &T) -> bool {
    match t {
        Term::Id | Term::Num(_) | Term::Var(_) | Term::Arr(_) => true,
        Term::Str(_, parts) => parts.iter().all(|p| match p {
            StrPart::Term(t) => single(t),
            _ => true,
        }),
        Term::Obj(kvs) => kvs
            .iter()
            .all(|(k, v)| single(k) && v.as_ref().is_none_or(single)),
        Term::Neg(t) => single(t),
        Term::BinOp(l, op, r) => {
            matches!(
                op,
                BinaryOp::Pipe(_)
                    | BinaryOp::Math(_)
                    | BinaryOp::Cmp(_)
                    | BinaryOp::And
                    | BinaryOp::Or
            ) && single(l)
                && single(r)
        }
        Term::Path(t, path) => {
            single(t)
                && path.0.iter().all(|(part, opt)| {
                    matches!(opt, Opt::Essential)
                        && match part {
                            Part::Index(i) => single(i),
                            Part::Range(a, b) => {
                                (a.is_some() || b.is_some())
                                    && a.as_ref().is_none_or(single)
                                    && b.as_ref().is_none_or(single)
                            }
                        }
                })
        }
        Term::IfThenElse(branches, e) => {
            branches.iter().all(|(c, t)| single(c) && single(t)) && e.as_deref().is_none_or(single)
        }
        Term::Call(name, args) => match (*name, &args[..]) {
            ("_modify" | "_modify_fast", [_, _]) => true,
            (
                "_assign" | "_assign_jq" | "_modify_add" | "_modify_sub" | "_modify_mul"
                | "_modify_div" | "_modify_rem" | "_modify_alt",
                [_, v],
            ) => single(v),
            ("_div" | "_rem" | "_mul", [a, b]) => single(a) && single(b),
            (
                "_ix" | "_tostr" | "_sx" | "_ex" | "length" | "tostring" | "tojson" | "keys"
                | "type" | "not" | "add" | "ascii_downcase" | "ascii_upcase" | "tonumber" | "floor"
                | "sort" | "unique" | "reverse" | "to_entries" | "from_entries" | "null" | "true"
                | "false",
                [],
            ) => true,
            ("setpath", [p, v]) => single(p) && single(v),
            ("_rng", [a, b]) => single(a) && single(b),
            _ => false,
        },
        _ => false,
    }
}

fn rewrite_pat(p: Pattern<&str>) -> Result<Pattern<&str>, CompileError> {
    Ok(match p {
        Pattern::Var(_) => p,
        Pattern::Arr(ps) => {
            Pattern::Arr(ps.into_iter().map(rewrite_pat).collect::<Result<_, _>>()?)
        }
        Pattern::Obj(kvs) => Pattern::Obj(
            kvs.into_iter()
                .map(|(k, p)| Ok((rewrite(k)?, rewrite_pat(p)?)))
                .collect::<Result<_, CompileError>>()?,
        ),
    })
}

/// `head` followed by `path`: computed indices floor (`_ix`), slice
/// bounds floor/ceil (`_sx`/`_ex`), and a slice with constant bounds
/// of `null` is `null` (`_rng`).
fn rewrite_path<'s>(mut head: T<'s>, path: Path<T<'s>>) -> Result<T<'s>, CompileError> {
    let mut parts: Vec<(Part<T<'s>>, Opt)> = Vec::new();
    for (part, opt) in path.0 {
        match part {
            Part::Index(i) => {
                let i = rewrite(i)?;
                let i = if is_str_literal(&i) || is_int_literal(&i) {
                    i
                } else {
                    pipe(i, call("_ix", vec![]))
                };
                parts.push((Part::Index(i), opt));
            }
            Part::Range(None, None) => parts.push((Part::Range(None, None), opt)),
            Part::Range(a, b) => {
                let a = a.map(rewrite).transpose()?;
                let b = b.map(rewrite).transpose()?;
                let consts = a.as_ref().is_none_or(is_const) && b.as_ref().is_none_or(is_const);
                let fix = |x: Option<T<'s>>, f: &'static str| {
                    x.map(|x| {
                        if is_int_literal(&x) {
                            x
                        } else {
                            pipe(x, call(f, vec![]))
                        }
                    })
                };
                if consts {
                    // head[parts] | _rng(a; b), then the rest of the path
                    let prefix = std::mem::take(&mut parts);
                    let base = if prefix.is_empty() {
                        head
                    } else {
                        Term::Path(Box::new(head), Path(prefix))
                    };
                    let null = || Term::Call("null", vec![]);
                    let rng = call(
                        "_rng",
                        vec![
                            fix(a, "_sx").unwrap_or_else(null),
                            fix(b, "_ex").unwrap_or_else(null),
                        ],
                    );
                    let rng = match opt {
                        Opt::Optional => Term::TryCatch(Box::new(rng), None),
                        Opt::Essential => rng,
                    };
                    head = pipe(base, rng);
                } else {
                    parts.push((Part::Range(fix(a, "_sx"), fix(b, "_ex")), opt));
                }
            }
        }
    }
    Ok(if parts.is_empty() {
        head
    } else {
        Term::Path(Box::new(head), Path(parts))
    })
}

// ------------------------------------------------------------------
// Printing the tree back as jq text (fully parenthesised).

fn print(out: &mut String, t: &T) {
    match t {
        Term::Id => out.push('.'),
        Term::Recurse => out.push_str(".."),
        Term::Num(n) => out.push_str(n),
        Term::Str(fmt, parts) => {
            if let Some(f) = fmt {
                out.push_str(f);
                out.push(' ');
            }
            print_str(out, parts);
        }
        Term::Arr(None) => out.push_str("[]"),
        Term::Arr(Some(t)) => {
            out.push('[');
            print(out, t);
            out.push(']');
        }
        Term::Obj(kvs) => {
            out.push('{');
            for (i, (k, v)) in kvs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match (k, v) {
                    (Term::Var(x), None) => out.push_str(x),
                    (Term::Var(x), Some(v)) => {
                        out.push_str(x);
                        out.push_str(": ");
                        paren(out, v);
                    }
                    (Term::Str(..), None) => print(out, k),
                    (Term::Str(..), Some(v)) => {
                        print(out, k);
                        out.push_str(": ");
                        paren(out, v);
                    }
                    (k, v) => {
                        paren(out, k);
                        out.push_str(": ");
                        match v {
                            Some(v) => paren(out, v),
                            None => paren(out, k),
                        }
                    }
                }
            }
            out.push('}');
        }
        Term::Neg(t) => {
            out.push_str("(-");
            paren(out, t);
            out.push(')');
        }
        Term::BinOp(l, op, r) => {
            out.push('(');
            paren(out, l);
            match op {
                BinaryOp::Pipe(None) => out.push_str(" | "),
                BinaryOp::Pipe(Some(p)) => {
                    out.push_str(" as ");
                    print_pat(out, p);
                    out.push_str(" | ");
                }
                BinaryOp::Comma => out.push_str(", "),
                BinaryOp::Alt => out.push_str(" // "),
                BinaryOp::Or => out.push_str(" or "),
                BinaryOp::And => out.push_str(" and "),
                BinaryOp::Math(m) => {
                    let _ = write!(out, " {} ", m.as_str());
                }
                BinaryOp::Cmp(c) => {
                    let _ = write!(out, " {} ", c.as_str());
                }
                BinaryOp::Assign => out.push_str(" = "),
                BinaryOp::Update => out.push_str(" |= "),
                BinaryOp::UpdateMath(m) => {
                    let _ = write!(out, " {}= ", m.as_str());
                }
                BinaryOp::UpdateAlt => out.push_str(" //= "),
            }
            paren(out, r);
            out.push(')');
        }
        Term::Label(x, t) => {
            let _ = write!(out, "(label {x} | ");
            paren(out, t);
            out.push(')');
        }
        Term::Break(x) => {
            let _ = write!(out, "break {x}");
        }
        Term::Fold(kind, xs, p, args) => {
            let _ = write!(out, "({kind} ");
            paren(out, xs);
            out.push_str(" as ");
            print_pat(out, p);
            out.push_str(" (");
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str("; ");
                }
                print(out, a);
            }
            out.push_str("))");
        }
        Term::TryCatch(t, c) => {
            out.push_str("(try ");
            paren(out, t);
            if let Some(c) = c {
                out.push_str(" catch ");
                paren(out, c);
            }
            out.push(')');
        }
        Term::IfThenElse(branches, e) => {
            out.push('(');
            for (i, (c, t)) in branches.iter().enumerate() {
                out.push_str(if i == 0 { "if " } else { " elif " });
                print(out, c);
                out.push_str(" then ");
                print(out, t);
            }
            if let Some(e) = e {
                out.push_str(" else ");
                print(out, e);
            }
            out.push_str(" end)");
        }
        Term::Def(defs, body) => {
            out.push('(');
            for d in defs {
                let _ = write!(out, "def {}", d.name);
                if !d.args.is_empty() {
                    let _ = write!(out, "({})", d.args.join("; "));
                }
                out.push_str(": ");
                print(out, &d.body);
                out.push_str("; ");
            }
            print(out, body);
            out.push(')');
        }
        Term::Call(name, args) => {
            out.push_str(name);
            if !args.is_empty() {
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str("; ");
                    }
                    print(out, a);
                }
                out.push(')');
            }
        }
        Term::Var(x) => out.push_str(x),
        Term::Path(t, path) => {
            paren(out, t);
            for (part, opt) in &path.0 {
                out.push('[');
                match part {
                    Part::Index(i) => print(out, i),
                    Part::Range(a, b) => {
                        if let Some(a) = a {
                            paren(out, a);
                        }
                        if a.is_some() || b.is_some() {
                            out.push(':');
                        }
                        if let Some(b) = b {
                            paren(out, b);
                        }
                    }
                }
                out.push(']');
                if let Opt::Optional = opt {
                    out.push('?');
                }
            }
        }
    }
}

fn paren(out: &mut String, t: &T) {
    match t {
        Term::Id | Term::Num(_) | Term::Var(_) | Term::Str(..) | Term::Arr(_) | Term::Obj(_) => {
            print(out, t)
        }
        Term::Call(..) | Term::Recurse => print(out, t),
        _ => {
            out.push('(');
            print(out, t);
            out.push(')');
        }
    }
}

fn print_str(out: &mut String, parts: &[StrPart<&str, T>]) {
    out.push('"');
    for p in parts {
        match p {
            StrPart::Str(s) => out.push_str(s),
            StrPart::Char(c) => match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (*c as u32) < 0x20 || *c == '\u{7f}' => {
                    let _ = write!(out, "\\u{:04x}", *c as u32);
                }
                c => out.push(*c),
            },
            StrPart::Term(t) => {
                out.push_str("\\(");
                print(out, t);
                out.push(')');
            }
        }
    }
    out.push('"');
}

fn print_pat(out: &mut String, p: &Pattern<&str>) {
    match p {
        Pattern::Var(x) => out.push_str(x),
        Pattern::Arr(ps) => {
            out.push('[');
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_pat(out, p);
            }
            out.push(']');
        }
        Pattern::Obj(kvs) => {
            out.push('{');
            for (i, (k, p)) in kvs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if is_str_literal(k) {
                    print(out, k);
                } else {
                    out.push('(');
                    print(out, k);
                    out.push(')');
                }
                out.push_str(": ");
                print_pat(out, p);
            }
            out.push('}');
        }
    }
}
