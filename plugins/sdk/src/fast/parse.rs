//! Parsing the supported jq subset into [`Expr`], following jaq's lexer and
//! operator precedences. Anything else makes [`parse`] return why it
//! declined ([`Decline`]): the parser notes the first construct it does not
//! implement where it meets it, so that costs nothing on the way in.

pub(crate) use crate::jq::regex::Re;

/// Why an expression is not in the fast subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decline {
    /// A builtin, keyword, operator or form the fast path does not
    /// implement, as it reads in messages (e.g. "`limit`").
    Outside(String),
    /// The expression reads `$variables` (or `$__loc__`, `$ENV`).
    Variables,
    /// Something else, said in full.
    Other(&'static str),
}

impl std::fmt::Display for Decline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decline::Outside(what) => write!(f, "{what} is outside the fast subset"),
            Decline::Variables => f.write_str("uses $variables"),
            Decline::Other(why) => f.write_str(why),
        }
    }
}

fn outside(what: &str) -> Decline {
    Decline::Outside(format!("`{what}`"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MathOp {
    Add,
    Sub,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

pub(crate) enum Step {
    Key(String),
    Idx(isize),
}

pub(crate) enum Lit {
    Null,
    Bool(bool),
    Str(String),
    /// A number literal's text (with its sign), read with jaq's reader when
    /// used so that filters hold no `Rc` and stay `Send + Sync`.
    Num(String),
}

/// Every construct yields at most one output (or an error), which is what
/// lets evaluation be a plain function returning `Result<Option<_>>`.
pub(crate) enum Expr {
    Id,
    Empty,
    Lit(Lit),
    /// `head` followed by path steps, each optional (`?`) or not.
    Path(Box<Expr>, Vec<(Step, bool)>),
    Pipe(Box<Expr>, Box<Expr>),
    /// `f?` / `try f`
    Try(Box<Expr>),
    Select(Box<Expr>),
    Not,
    ToString,
    /// `ascii_downcase` (false) / `ascii_upcase` (true)
    AsciiCase(bool),
    /// `l and r` (stop = false), `l or r` (stop = true)
    Logic(Box<Expr>, bool, Box<Expr>),
    Math(Box<Expr>, MathOp, Box<Expr>),
    Cmp(Box<Expr>, CmpOp, Box<Expr>),
    Alt(Box<Expr>, Box<Expr>),
    Ite(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `capture(re)`: object of the named groups of the first match.
    Capture(Box<Re>),
    /// `capture(re) | .name`
    CaptureGet(Box<Re>, String),
    /// `sub(re; "lit")`, `gsub(...)`
    Sub(Box<Re>, String),
    /// `test(re)`
    Test(Box<Re>),
}

pub(crate) fn parse(code: &str) -> Result<Expr, Decline> {
    let mut p = Parser {
        s: code,
        i: 0,
        why: None,
    };
    let e = p.pipe().and_then(|e| {
        p.ws()?;
        if p.i == code.len() {
            Some(e)
        } else {
            // A closing `)`, `]`, `end`, ... with nothing open.
            p.no(Decline::Other("does not parse (jaq reports why)"))
        }
    });
    match e {
        Some(e) => Ok(optimize(e)),
        None => Err(p
            .why
            .unwrap_or(Decline::Other("does not parse (jaq reports why)"))),
    }
}

/// Fuse `capture(re) | .name` so that no object is built.
fn optimize(e: Expr) -> Expr {
    use Expr::*;
    let b = |e: Box<Expr>| Box::new(optimize(*e));
    match e {
        Pipe(l, r) => {
            let l = optimize(*l);
            let r = optimize(*r);
            match (l, r) {
                (Capture(re), Path(head, steps)) if matches!(*head, Id) => fuse_capture(re, steps),
                (Capture(re), Pipe(rl, rr)) if matches!(&*rl, Path(h, _) if matches!(**h, Id)) => {
                    let Path(_, steps) = *rl else { unreachable!() };
                    Pipe(Box::new(fuse_capture(re, steps)), rr)
                }
                (l, r) => Pipe(Box::new(l), Box::new(r)),
            }
        }
        Path(head, steps) => match optimize(*head) {
            Capture(re) => fuse_capture(re, steps),
            head => Path(Box::new(head), steps),
        },
        Try(f) => Try(b(f)),
        Select(f) => Select(b(f)),
        Logic(l, s, r) => Logic(b(l), s, b(r)),
        Math(l, o, r) => Math(b(l), o, b(r)),
        Cmp(l, o, r) => Cmp(b(l), o, b(r)),
        Alt(l, r) => Alt(b(l), b(r)),
        Ite(c, t, f) => Ite(b(c), b(t), b(f)),
        e => e,
    }
}

fn fuse_capture(re: Box<Re>, mut steps: Vec<(Step, bool)>) -> Expr {
    // Indexing an object by a string never fails, so `?` does not matter.
    if let Some((Step::Key(_), _)) = steps.first() {
        let (Step::Key(name), _) = steps.remove(0) else {
            unreachable!()
        };
        let get = Expr::CaptureGet(re, name);
        if steps.is_empty() {
            get
        } else {
            Expr::Path(Box::new(get), steps)
        }
    } else {
        Expr::Path(Box::new(Expr::Capture(re)), steps)
    }
}

enum Op {
    Pipe,
    Alt,
    Or,
    And,
    Cmp(CmpOp),
    Math(MathOp),
}

impl Op {
    /// jaq's precedences (all left-associative except `|`).
    fn prec(&self) -> u8 {
        match self {
            Op::Pipe => 0,
            Op::Alt => 4,
            Op::Or => 5,
            Op::And => 6,
            Op::Cmp(CmpOp::Eq | CmpOp::Ne) => 7,
            Op::Cmp(_) => 8,
            Op::Math(MathOp::Add | MathOp::Sub) => 9,
        }
    }
}

struct Parser<'s> {
    s: &'s str,
    i: usize,
    /// Why parsing stopped: the first construct met outside the subset.
    why: Option<Decline>,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'s> Parser<'s> {
    /// Stop parsing because of `why` (the first reason given is kept: it is
    /// where parsing stopped, and every caller up the stack returns `None`).
    fn no<T>(&mut self, why: Decline) -> Option<T> {
        self.why.get_or_insert(why);
        None
    }

    fn rest(&self) -> &'s str {
        &self.s[self.i..]
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.s.as_bytes().get(self.i + k).copied()
    }

    /// Skip whitespace (as jaq's lexer does); comments are not supported.
    fn ws(&mut self) -> Option<()> {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.i += rest.len() - trimmed.len();
        if trimmed.starts_with('#') {
            return self.no(Decline::Other("has a comment"));
        }
        Some(())
    }

    fn eat(&mut self, c: u8) -> Option<bool> {
        self.ws()?;
        Some(if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        })
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c)?.then_some(())
    }

    fn word(&mut self) -> &'s str {
        let start = self.i;
        while self.peek().is_some_and(is_ident) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// The next binary operator, without consuming it. `Err` for operators
    /// outside the subset (`,`, `=`, `|=`, `as`, ...).
    fn peek_op(&mut self) -> Option<Result<(Op, usize), ()>> {
        if self.ws().is_none() {
            return Some(Err(()));
        }
        let rest = self.rest().as_bytes();
        let c = *rest.first()?;
        let hd = |c: u8| b"|=!<>+-*/%".contains(&c);
        let tl = |c: u8| hd(c) && c != b'-';
        if hd(c) {
            let len = 1 + rest[1..].iter().take_while(|&&c| tl(c)).count();
            let op = match &rest[..len] {
                b"|" => Op::Pipe,
                b"//" => Op::Alt,
                b"==" => Op::Cmp(CmpOp::Eq),
                b"!=" => Op::Cmp(CmpOp::Ne),
                b"<" => Op::Cmp(CmpOp::Lt),
                b"<=" => Op::Cmp(CmpOp::Le),
                b">" => Op::Cmp(CmpOp::Gt),
                b">=" => Op::Cmp(CmpOp::Ge),
                b"+" => Op::Math(MathOp::Add),
                b"-" => Op::Math(MathOp::Sub),
                // `*`, `/` and `%` follow jq 1.7.1 through the engine's own
                // helpers (string repetition, division by zero, float
                // modulo); a second implementation here could drift.
                other => {
                    let op = String::from_utf8_lossy(other).into_owned();
                    self.why.get_or_insert(outside(&op));
                    return Some(Err(()));
                }
            };
            return Some(Ok((op, len)));
        }
        if c == b',' {
            self.why.get_or_insert(outside(","));
            return Some(Err(()));
        }
        if is_ident_start(c) {
            let len = rest.iter().take_while(|&&c| is_ident(c)).count();
            if rest.get(len) == Some(&b':') && rest.get(len + 1) == Some(&b':') {
                self.why.get_or_insert(Decline::Other("uses a module"));
                return Some(Err(()));
            }
            return match &rest[..len] {
                b"and" => Some(Ok((Op::And, len))),
                b"or" => Some(Ok((Op::Or, len))),
                b"as" => {
                    self.why.get_or_insert(Decline::Variables);
                    Some(Err(()))
                }
                _ => None,
            };
        }
        None
    }

    fn pipe(&mut self) -> Option<Expr> {
        self.binary(0)
    }

    /// Precedence climbing.
    fn binary(&mut self, min: u8) -> Option<Expr> {
        let mut lhs = self.atom()?;
        loop {
            let (op, len) = match self.peek_op() {
                None => break,
                Some(Err(())) => return None,
                Some(Ok(x)) => x,
            };
            let prec = op.prec();
            if prec < min {
                break;
            }
            self.i += len;
            let right_assoc = matches!(op, Op::Pipe);
            let rhs = self.binary(if right_assoc { prec } else { prec + 1 })?;
            let (l, r) = (Box::new(lhs), Box::new(rhs));
            lhs = match op {
                Op::Pipe => Expr::Pipe(l, r),
                Op::Alt => Expr::Alt(l, r),
                Op::Or => Expr::Logic(l, true, r),
                Op::And => Expr::Logic(l, false, r),
                Op::Cmp(o) => Expr::Cmp(l, o, r),
                Op::Math(o) => Expr::Math(l, o, r),
            };
        }
        Some(lhs)
    }

    /// An atomic term followed by optional `?` and path steps.
    fn atom(&mut self) -> Option<Expr> {
        self.ws()?;
        let c = self.peek()?;
        let mut steps = Vec::new();
        let head = match c {
            b'.' => {
                self.i += 1;
                match self.peek() {
                    Some(b'.') => return self.no(outside("..")),
                    Some(c) if is_ident_start(c) => {
                        let key = self.word().to_string();
                        steps.push((Step::Key(key), self.opt()?));
                        Expr::Id
                    }
                    _ => {
                        // `."key"` (jaq also allows whitespace in between).
                        self.ws()?;
                        if self.peek() == Some(b'"') {
                            let key = self.plain_string()?;
                            steps.push((Step::Key(key), self.opt()?));
                        }
                        Expr::Id
                    }
                }
            }
            b'"' => self.string()?,
            b'0'..=b'9' => Expr::Lit(Lit::Num(self.number(false)?)),
            b'-' => {
                // Only a negative number literal.
                self.i += 1;
                self.ws()?;
                if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return self.no(Decline::Outside("`-` (negation)".into()));
                }
                let n = self.number(true)?;
                self.ws()?;
                if matches!(self.peek(), Some(b'?' | b'.' | b'[')) {
                    return self.no(Decline::Outside("`-` (negation)".into()));
                }
                Expr::Lit(Lit::Num(n))
            }
            b'(' => {
                self.i += 1;
                let e = self.pipe()?;
                self.expect(b')')?;
                e
            }
            c if is_ident_start(c) => self.call()?,
            b'$' => return self.no(Decline::Variables),
            b'[' => return self.no(Decline::Outside("`[...]` (array construction)".into())),
            b'{' => return self.no(Decline::Outside("`{...}` (object construction)".into())),
            b'@' => return self.no(Decline::Outside("`@format`".into())),
            _ => return self.no(Decline::Other("does not parse (jaq reports why)")),
        };
        let head = if steps.is_empty() && self.opt()? {
            Expr::Try(Box::new(head))
        } else {
            head
        };
        self.path(&mut steps)?;
        Some(if steps.is_empty() {
            head
        } else {
            Expr::Path(Box::new(head), steps)
        })
    }

    /// Any number of `?`.
    fn opt(&mut self) -> Option<bool> {
        let mut opt = false;
        while self.eat(b'?')? {
            opt = true;
        }
        Some(opt)
    }

    /// Path steps: `.key`, `."key"`, `["key"]`, `[n]`, `.[...]`, each with `?`.
    fn path(&mut self, steps: &mut Vec<(Step, bool)>) -> Option<()> {
        loop {
            self.ws()?;
            match self.peek() {
                Some(b'[') => {
                    self.i += 1;
                    let step = self.index()?;
                    steps.push((step, self.opt()?));
                }
                Some(b'.') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c) if is_ident_start(c) => {
                            let key = self.word().to_string();
                            steps.push((Step::Key(key), self.opt()?));
                        }
                        Some(b'.') => return self.no(outside("..")),
                        _ => {
                            self.ws()?;
                            match self.peek() {
                                Some(b'"') => {
                                    let key = self.plain_string()?;
                                    steps.push((Step::Key(key), self.opt()?));
                                }
                                Some(b'[') => {
                                    self.i += 1;
                                    let step = self.index()?;
                                    steps.push((step, self.opt()?));
                                }
                                _ => {
                                    return self
                                        .no(Decline::Other("does not parse (jaq reports why)"));
                                }
                            }
                        }
                    }
                }
                _ => return Some(()),
            }
        }
    }

    /// The inside of `[...]` (after `[`): a string or integer literal.
    fn index(&mut self) -> Option<Step> {
        self.ws()?;
        if self.peek() == Some(b']') {
            return self.no(outside(".[]"));
        }
        if self.peek() == Some(b':') {
            return self.no(Decline::Outside("`.[a:b]` (slicing)".into()));
        }
        let e = self.pipe()?;
        self.ws()?;
        if self.peek() == Some(b':') {
            return self.no(Decline::Outside("`.[a:b]` (slicing)".into()));
        }
        self.expect(b']')?;
        let computed = Decline::Other("a computed or fractional index is left to jaq");
        match e {
            Expr::Lit(Lit::Str(s)) => Some(Step::Key(s)),
            Expr::Lit(Lit::Num(n)) => {
                match jaq_json::read::parse_single_num(n.as_bytes()).and_then(|n| n.as_isize()) {
                    Some(n) => Some(Step::Idx(n)),
                    None => self.no(computed),
                }
            }
            _ => self.no(computed),
        }
    }

    /// A JSON-style number literal (jaq also lexes leading zeros, which we
    /// leave to jaq).
    fn number(&mut self, neg: bool) -> Option<String> {
        let start = self.i;
        let b = self.s.as_bytes();
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - s
        };
        let mut i = self.i;
        let unusual = Decline::Other("a number literal not written as in JSON is left to jaq");
        let int_len = digits(&mut i);
        if int_len == 0 || (int_len > 1 && b[start] == b'0') {
            return self.no(unusual);
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return self.no(unusual);
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return self.no(unusual);
            }
        }
        if b.get(i).is_some_and(|&c| is_ident(c) || c == b'.') {
            return self.no(unusual);
        }
        self.i = i;
        let tok = &self.s[start..i];
        let text = if neg {
            format!("-{tok}")
        } else {
            tok.to_string()
        };
        if jaq_json::read::parse_single_num(text.as_bytes()).is_none() {
            return self.no(unusual);
        }
        Some(text)
    }

    /// A string literal without interpolation.
    fn plain_string(&mut self) -> Option<String> {
        match self.string()? {
            Expr::Lit(Lit::Str(s)) => Some(s),
            _ => self.no(Decline::Other(
                "an interpolated key or argument is left to jaq",
            )),
        }
    }

    /// A string literal, possibly with `\(...)` interpolation, compiled the
    /// way jaq does: `"a\(f)b"` is `"a" + ((f | tostring) + "b")`.
    fn string(&mut self) -> Option<Expr> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut parts: Vec<Expr> = Vec::new();
        let mut lit = String::new();
        let bad = Decline::Other("a string literal the fast path does not read is left to jaq");
        loop {
            let rest = self.rest();
            let Some(n) = rest.find(['\\', '"']) else {
                return self.no(bad);
            };
            lit.push_str(&rest[..n]);
            self.i += n;
            let c = self.peek()?;
            self.i += 1;
            if c == b'"' {
                break;
            }
            let e = self.peek()?;
            self.i += 1;
            match e {
                b'\\' => lit.push('\\'),
                b'/' => lit.push('/'),
                b'"' => lit.push('"'),
                b'b' => lit.push('\u{8}'),
                b'f' => lit.push('\u{c}'),
                b'n' => lit.push('\n'),
                b'r' => lit.push('\r'),
                b't' => lit.push('\t'),
                b'u' => {
                    let cp = self
                        .s
                        .get(self.i..self.i + 4)
                        .filter(|hex| hex.bytes().all(|c| c.is_ascii_hexdigit()))
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok());
                    // Surrogates are an error in jaq's lexer.
                    match cp.and_then(char::from_u32) {
                        Some(c) => lit.push(c),
                        None => return self.no(bad),
                    }
                    self.i += 4;
                }
                b'(' => {
                    if !lit.is_empty() {
                        parts.push(Expr::Lit(Lit::Str(std::mem::take(&mut lit))));
                    }
                    let f = self.pipe()?;
                    self.expect(b')')?;
                    parts.push(Expr::Pipe(Box::new(f), Box::new(Expr::ToString)));
                }
                _ => return self.no(bad),
            }
        }
        if parts.is_empty() {
            return Some(Expr::Lit(Lit::Str(lit)));
        }
        if !lit.is_empty() {
            parts.push(Expr::Lit(Lit::Str(lit)));
        }
        let mut it = parts.into_iter().rev();
        let last = it.next()?;
        Some(it.fold(last, |acc, x| {
            Expr::Math(Box::new(x), MathOp::Add, Box::new(acc))
        }))
    }

    /// A string literal argument.
    fn str_arg(&mut self, name: &str) -> Option<String> {
        match self.pipe()? {
            Expr::Lit(Lit::Str(s)) => Some(s),
            _ => self.no(Decline::Outside(format!(
                "`{name}` with an argument other than a string literal"
            ))),
        }
    }

    /// `(a)`, `(a; b)` or `(a; b; c)` string arguments of `name`, between
    /// `min` and `max` of them.
    fn str_args(&mut self, name: &str, min: usize, max: usize) -> Option<Vec<String>> {
        self.ws()?;
        if self.peek() != Some(b'(') {
            return self.no(outside(&format!("{name}/0")));
        }
        self.i += 1;
        let mut args = vec![self.str_arg(name)?];
        while self.eat(b';')? {
            args.push(self.str_arg(name)?);
        }
        self.expect(b')')?;
        if (min..=max).contains(&args.len()) {
            Some(args)
        } else {
            self.no(outside(&format!("{name}/{}", args.len())))
        }
    }

    fn no_args(&mut self, name: &str) -> Option<()> {
        self.ws()?;
        if self.peek() == Some(b'(') {
            return self.no(outside(&format!("{name}/1")));
        }
        Some(())
    }

    /// A regex of `name`'s literal arguments, or why not.
    fn regex(&mut self, name: &str, pattern: &str, flags: &str) -> Option<Re> {
        match Re::new(pattern, flags) {
            Ok(re) => Some(re),
            Err(_) => self.no(Decline::Outside(format!(
                "`{name}` with an invalid regex or flags (jaq reports the error)"
            ))),
        }
    }

    fn call(&mut self) -> Option<Expr> {
        let name = self.word();
        if self.rest().starts_with("::") {
            return self.no(Decline::Other("uses a module"));
        }
        Some(match name {
            "true" => {
                self.no_args(name)?;
                Expr::Lit(Lit::Bool(true))
            }
            "false" => {
                self.no_args(name)?;
                Expr::Lit(Lit::Bool(false))
            }
            "null" => {
                self.no_args(name)?;
                Expr::Lit(Lit::Null)
            }
            "empty" => {
                self.no_args(name)?;
                Expr::Empty
            }
            "not" => {
                self.no_args(name)?;
                Expr::Not
            }
            "tostring" => {
                self.no_args(name)?;
                Expr::ToString
            }
            "ascii_downcase" | "ascii_upcase" => {
                self.no_args(name)?;
                Expr::AsciiCase(name == "ascii_upcase")
            }
            "select" => {
                self.ws()?;
                if self.peek() != Some(b'(') {
                    return self.no(outside("select/0"));
                }
                self.i += 1;
                let f = self.pipe()?;
                self.expect(b')')?;
                Expr::Select(Box::new(f))
            }
            "if" => self.ite()?,
            "try" => {
                let body = self.atom()?;
                self.ws()?;
                if self.rest().starts_with("catch") && !self.peek_at(5).is_some_and(is_ident) {
                    return self.no(outside("catch"));
                }
                Expr::Try(Box::new(body))
            }
            "capture" => {
                let a = self.str_args(name, 1, 2)?;
                let re = self.regex(name, &a[0], a.get(1).map_or("", |f| f))?;
                if re.flags.global {
                    return self.no(Decline::Other(
                        "`capture` with the g flag can have several outputs",
                    ));
                }
                Expr::Capture(Box::new(re))
            }
            "test" => {
                let a = self.str_args(name, 1, 2)?;
                Expr::Test(Box::new(self.regex(
                    name,
                    &a[0],
                    a.get(1).map_or("", |f| f),
                )?))
            }
            "sub" | "gsub" => {
                let a = self.str_args(name, 2, 3)?;
                let mut flags = a.get(2).cloned().unwrap_or_default();
                if name == "gsub" {
                    flags.insert(0, 'g');
                }
                Expr::Sub(Box::new(self.regex(name, &a[0], &flags)?), a[1].clone())
            }
            _ => return self.no(outside(name)),
        })
    }

    /// After `if`: `c then t (elif c then t)* (else e)? end`.
    fn ite(&mut self) -> Option<Expr> {
        let cond = self.pipe()?;
        self.keyword("then")?;
        let then = self.pipe()?;
        self.ws()?;
        let els = if self.try_keyword("elif") {
            self.ite()?
        } else if self.try_keyword("else") {
            let e = self.pipe()?;
            self.keyword("end")?;
            e
        } else {
            self.keyword("end")?;
            Expr::Id
        };
        Some(Expr::Ite(Box::new(cond), Box::new(then), Box::new(els)))
    }

    fn try_keyword(&mut self, kw: &str) -> bool {
        if self.ws().is_none() {
            return false;
        }
        let r = self.rest();
        if r.starts_with(kw) && !r.as_bytes().get(kw.len()).copied().is_some_and(is_ident) {
            self.i += kw.len();
            true
        } else {
            false
        }
    }

    fn keyword(&mut self, kw: &str) -> Option<()> {
        if self.try_keyword(kw) {
            Some(())
        } else {
            self.no(Decline::Other("does not parse (jaq reports why)"))
        }
    }
}
