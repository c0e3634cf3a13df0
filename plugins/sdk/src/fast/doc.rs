//! One validating pass over an item's JSON text that records every value as a
//! node of a flat "tape" (start/end offsets, kind, subtree end), so that
//! lookups never rescan text and sub-values can be copied out verbatim when
//! their text is already what jq would print.

use std::borrow::Cow;

use crate::json_out;

/// Nesting deeper than this is rejected (the writer and jaq's parser recurse).
pub(crate) const MAX_DEPTH: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Kind {
    Null,
    False,
    True,
    Num,
    Str,
    Arr,
    Obj,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::False | Kind::True => "boolean",
            Kind::Num => "number",
            Kind::Str => "string",
            Kind::Arr => "array",
            Kind::Obj => "object",
        }
    }
}

/// The raw text is exactly what `json_out::to_json` prints for the value
/// (for objects: provided no object in the subtree repeats a key).
const CLEAN: u8 = 1;
/// A string (or key) containing a backslash escape.
const ESC: u8 = 2;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    /// Byte offset of the value's first byte (`"` for strings).
    start: u32,
    /// Byte offset just past the value.
    end: u32,
    /// Index of the first node after this value's subtree.
    next: u32,
    kind: Kind,
    flags: u8,
}

/// A raw item's JSON text, validated and indexed in one pass.
///
/// Node 0 is the top-level value (an object for [`Doc::new`]). An object's
/// children are alternating key (string) and value nodes; an array's
/// children are its elements.
#[derive(Debug)]
pub struct Doc<'a> {
    text: &'a str,
    nodes: Vec<Node>,
}

impl<'a> Doc<'a> {
    /// Check that `text` is exactly one JSON object (RFC 8259, surrounding
    /// whitespace allowed) and index it.
    pub fn new(text: &'a str) -> Result<Self, String> {
        Self::build(text, false)
    }

    /// Check that `text` is exactly one JSON value of any kind (what `jq`
    /// reads as one input) and index it.
    pub fn any(text: &'a str) -> Result<Self, String> {
        Self::build(text, true)
    }

    fn build(text: &'a str, any: bool) -> Result<Self, String> {
        if text.len() >= u32::MAX as usize {
            return Err("JSON text too large".into());
        }
        let nodes = Builder::new(text.as_bytes()).run(any)?;
        Ok(Self { text, nodes })
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    #[inline]
    pub(crate) fn kind(&self, i: u32) -> Kind {
        self.nodes[i as usize].kind
    }

    /// The value's raw text.
    #[inline]
    pub(crate) fn raw(&self, i: u32) -> &'a str {
        let n = &self.nodes[i as usize];
        &self.text[n.start as usize..n.end as usize]
    }

    /// A string node's content with escapes resolved.
    pub(crate) fn str_content(&self, i: u32) -> Cow<'a, str> {
        let n = &self.nodes[i as usize];
        let inner = &self.text[n.start as usize + 1..n.end as usize - 1];
        if n.flags & ESC == 0 {
            Cow::Borrowed(inner)
        } else {
            Cow::Owned(unescape(inner))
        }
    }

    fn key_is(&self, k: u32, key: &str) -> bool {
        let n = &self.nodes[k as usize];
        if n.flags & ESC == 0 {
            let inner = &self.text.as_bytes()[n.start as usize + 1..n.end as usize - 1];
            inner == key.as_bytes()
        } else {
            self.str_content(k) == key
        }
    }

    /// `obj[key]` for an object node: the value node of the last occurrence
    /// of `key` (jq keeps the last of duplicate keys).
    pub(crate) fn get(&self, obj: u32, key: &str) -> Option<u32> {
        let end = self.nodes[obj as usize].next;
        let mut k = obj + 1;
        let mut found = None;
        while k < end {
            let v = k + 1;
            if self.key_is(k, key) {
                found = Some(v);
            }
            k = self.nodes[v as usize].next;
        }
        found
    }

    /// The keys of an object node, escapes resolved, in order.
    pub(crate) fn keys(&self, obj: u32) -> Vec<Cow<'a, str>> {
        let end = self.nodes[obj as usize].next;
        let mut k = obj + 1;
        let mut keys = Vec::new();
        while k < end {
            keys.push(self.str_content(k));
            k = self.nodes[k as usize + 1].next;
        }
        keys
    }

    /// The element nodes of an array (or the key/value nodes of an object).
    fn children(&self, c: u32) -> Children<'_, 'a> {
        Children {
            doc: self,
            at: c + 1,
            end: self.nodes[c as usize].next,
        }
    }

    /// `arr[idx]` for an array node, negative indices counting from the end.
    pub(crate) fn elem(&self, arr: u32, idx: isize) -> Option<u32> {
        let i = if idx >= 0 {
            idx as usize
        } else {
            let len = self.children(arr).count();
            len.checked_sub(idx.unsigned_abs())?
        };
        self.children(arr).nth(i)
    }

    /// Whether some object in the subtree of `i` repeats a key.
    fn has_dup_keys(&self, i: u32) -> bool {
        let n = &self.nodes[i as usize];
        if !matches!(n.kind, Kind::Obj | Kind::Arr) {
            return false;
        }
        (i..n.next).any(|j| self.nodes[j as usize].kind == Kind::Obj && self.obj_has_dup(j))
    }

    fn obj_has_dup(&self, obj: u32) -> bool {
        let keys: Vec<u32> = self.children(obj).step_by(2).collect();
        if keys.len() < 2 {
            return false;
        }
        let any_esc = keys
            .iter()
            .any(|&k| self.nodes[k as usize].flags & ESC != 0);
        let content = |k: u32| -> Cow<'a, str> {
            if any_esc {
                self.str_content(k)
            } else {
                Cow::Borrowed(self.raw(k))
            }
        };
        if keys.len() <= 16 {
            let cs: Vec<Cow<'a, str>> = keys.iter().map(|&k| content(k)).collect();
            (1..cs.len()).any(|a| cs[..a].contains(&cs[a]))
        } else {
            let mut seen = std::collections::HashSet::with_capacity(keys.len());
            !keys.iter().all(|&k| seen.insert(content(k)))
        }
    }

    /// Append the value as `json_out::to_json` prints jaq's parse of it.
    pub(crate) fn write(&self, out: &mut String, i: u32) {
        let n = &self.nodes[i as usize];
        let no_dups = match n.kind {
            Kind::Arr | Kind::Obj => !self.has_dup_keys(i),
            _ => true,
        };
        self.write_inner(out, i, no_dups);
    }

    fn write_inner(&self, out: &mut String, i: u32, no_dups: bool) {
        let n = self.nodes[i as usize];
        if n.flags & CLEAN != 0 && no_dups && raw_copy_ok() {
            out.push_str(self.raw(i));
            return;
        }
        match n.kind {
            Kind::Null => out.push_str("null"),
            Kind::False => out.push_str("false"),
            Kind::True => out.push_str("true"),
            Kind::Num => write_num(out, self.raw(i)),
            Kind::Str => json_out::write_str(out, &self.str_content(i)),
            Kind::Arr => {
                out.push('[');
                for (x, e) in self.children(i).enumerate() {
                    if x > 0 {
                        out.push(',');
                    }
                    self.write_inner(out, e, no_dups);
                }
                out.push(']');
            }
            Kind::Obj => {
                if no_dups || !self.obj_has_dup(i) {
                    out.push('{');
                    let mut ch = self.children(i);
                    let mut first = true;
                    while let (Some(k), Some(v)) = (ch.next(), ch.next()) {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        self.write_inner(out, k, true);
                        out.push(':');
                        self.write_inner(out, v, no_dups);
                    }
                    out.push('}');
                } else {
                    // First occurrence's position, last occurrence's value.
                    let mut entries: Vec<(Cow<'a, str>, u32)> = Vec::new();
                    let mut ch = self.children(i);
                    while let (Some(k), Some(v)) = (ch.next(), ch.next()) {
                        let key = self.str_content(k);
                        match entries.iter_mut().find(|(e, _)| *e == key) {
                            Some(e) => e.1 = v,
                            None => entries.push((key, v)),
                        }
                    }
                    out.push('{');
                    for (x, (k, v)) in entries.iter().enumerate() {
                        if x > 0 {
                            out.push(',');
                        }
                        json_out::write_str(out, k);
                        out.push(':');
                        self.write_inner(out, *v, false);
                    }
                    out.push('}');
                }
            }
        }
    }
}

struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    at: u32,
    end: u32,
}

impl Iterator for Children<'_, '_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.at < self.end {
            let i = self.at;
            self.at = self.doc.nodes[i as usize].next;
            Some(i)
        } else {
            None
        }
    }
}

/// A number token (valid JSON) as `json_out` prints jaq's reading of it.
fn write_num(out: &mut String, tok: &str) {
    match jaq_json::read::parse_single_num(tok.as_bytes()) {
        Some(n) => json_out::write_json(out, &jaq_json::Val::Num(n)),
        None => out.push_str(tok),
    }
}

/// Whether `json_out` prints strings, small integers, arrays and objects the
/// way this module assumes when it copies raw text (jq's compact style).
/// Checked once; if `json_out` ever changes style, everything is
/// re-serialised through it instead of copied.
pub(crate) fn raw_copy_ok() -> bool {
    use std::sync::OnceLock;
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        let text =
            r#"{"a":[1,-23,0,123456789012345,"x\"\\\n\t\r\b\f\u001b\u007f/é😀"],"":{},"b":[]}"#;
        jaq_json::read::parse_single(text.as_bytes()).is_ok_and(|v| json_out::to_json(&v) == text)
    })
}

/// Resolve the escapes of a validated JSON string body.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut lit = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&s[lit..i]);
        let c = b[i + 1];
        i += 2;
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hi = hex4(&b[i..i + 4]).unwrap_or(0xfffd);
                i += 4;
                let cp = if (0xD800..0xDC00).contains(&hi) {
                    let lo = hex4(&b[i + 2..i + 6]).unwrap_or(0xDC00);
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
            }
            _ => unreachable!("validated escape"),
        }
        lit = i;
    }
    out.push_str(&s[lit..]);
    out
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        v = (v << 4) | (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Bytes that end a run of plain string content.
const fn special_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t
}
static SPECIAL: [bool; 256] = special_table();

#[inline]
fn has_special8(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let lt20 = w.wrapping_sub(LO * 0x20) & !w & HI;
    lt20 | has_zero(w ^ (LO * b'"' as u64))
        | has_zero(w ^ (LO * b'\\' as u64))
        | has_zero(w ^ (LO * 0x7f))
        != 0
}

struct Builder<'t> {
    b: &'t [u8],
    i: usize,
    nodes: Vec<Node>,
    /// Open containers (node indices).
    stack: Vec<u32>,
}

enum State {
    /// Right after `{` or `[`.
    Open,
    /// Expecting an object member or array element.
    Member,
    /// After a value.
    After,
}

impl<'t> Builder<'t> {
    fn new(b: &'t [u8]) -> Self {
        Self {
            b,
            i: 0,
            nodes: Vec::with_capacity(b.len() / 8 + 8),
            stack: Vec::with_capacity(16),
        }
    }

    fn err(&self, what: &str) -> String {
        if self.i >= self.b.len() {
            format!("invalid JSON: {what} at end of input")
        } else {
            format!("invalid JSON: {what} at byte {}", self.i)
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skip whitespace; inside a container, any whitespace makes its text
    /// non-canonical.
    #[inline]
    fn ws(&mut self) {
        let start = self.i;
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
        if self.i != start {
            self.dirty_parent();
        }
    }

    #[inline]
    fn dirty_parent(&mut self) {
        if let Some(&top) = self.stack.last() {
            self.nodes[top as usize].flags &= !CLEAN;
        }
    }

    fn leaf(&mut self, start: usize, kind: Kind, flags: u8) {
        let idx = self.nodes.len() as u32;
        self.nodes.push(Node {
            start: start as u32,
            end: self.i as u32,
            next: idx + 1,
            kind,
            flags,
        });
        if flags & CLEAN == 0 {
            self.dirty_parent();
        }
    }

    fn open(&mut self, kind: Kind) -> Result<(), String> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let idx = self.nodes.len() as u32;
        self.nodes.push(Node {
            start: self.i as u32,
            end: 0,
            next: 0,
            kind,
            flags: CLEAN,
        });
        self.stack.push(idx);
        self.i += 1;
        Ok(())
    }

    fn close(&mut self) {
        let top = self.stack.pop().expect("open container");
        self.i += 1;
        let next = self.nodes.len() as u32;
        let n = &mut self.nodes[top as usize];
        n.end = self.i as u32;
        n.next = next;
        if n.flags & CLEAN == 0 {
            self.dirty_parent();
        }
    }

    fn top_close(&self) -> u8 {
        match self.nodes[*self.stack.last().unwrap() as usize].kind {
            Kind::Obj => b'}',
            _ => b']',
        }
    }

    /// Read the text; `any`: the top-level value may be of any kind.
    fn run(mut self, any: bool) -> Result<Vec<Node>, String> {
        self.ws();
        let mut state = if any {
            if self.peek().is_none() {
                return Err("invalid JSON: empty input".into());
            }
            self.value()?
        } else {
            if self.peek() != Some(b'{') {
                return Err(match self.peek() {
                    None => "invalid JSON: empty input, expected an object".into(),
                    Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                        "not a JSON object (the item must be an object)".into()
                    }
                    Some(_) => self.err("expected `{`"),
                });
            }
            self.open(Kind::Obj)?;
            State::Open
        };
        loop {
            match state {
                State::Open => {
                    self.ws();
                    if self.peek() == Some(self.top_close()) {
                        self.close();
                        state = State::After;
                    } else {
                        state = State::Member;
                    }
                }
                State::Member => {
                    let in_obj = self.top_close() == b'}';
                    if in_obj {
                        if self.peek() != Some(b'"') {
                            return Err(self.err("expected a string key"));
                        }
                        self.string()?;
                        self.ws();
                        if self.peek() != Some(b':') {
                            return Err(self.err("expected `:`"));
                        }
                        self.i += 1;
                        self.ws();
                    }
                    state = self.value()?;
                }
                State::After => {
                    if self.stack.is_empty() {
                        break;
                    }
                    self.ws();
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            self.ws();
                            state = State::Member;
                        }
                        Some(c) if c == self.top_close() => {
                            self.close();
                        }
                        _ => return Err(self.err("expected `,` or the end of the container")),
                    }
                }
            }
        }
        // Trailing whitespace only.
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
        if self.i != self.b.len() {
            return Err(self.err("trailing characters after the JSON value"));
        }
        Ok(self.nodes)
    }

    /// Parse a value starting at the current byte; returns the next state.
    fn value(&mut self) -> Result<State, String> {
        let start = self.i;
        match self.peek() {
            Some(b'{') => {
                self.open(Kind::Obj)?;
                return Ok(State::Open);
            }
            Some(b'[') => {
                self.open(Kind::Arr)?;
                return Ok(State::Open);
            }
            Some(b'"') => self.string()?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't') => self.literal(b"true", Kind::True)?,
            Some(b'f') => self.literal(b"false", Kind::False)?,
            Some(b'n') => self.literal(b"null", Kind::Null)?,
            _ => {
                self.i = start;
                return Err(self.err("expected a value"));
            }
        }
        Ok(State::After)
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Result<(), String> {
        let start = self.i;
        if self.b[start..].starts_with(word) {
            self.i += word.len();
            self.leaf(start, kind, CLEAN);
            Ok(())
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn digits(&mut self) -> usize {
        let s = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - s
    }

    fn number(&mut self) -> Result<(), String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        let mut int = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            int = false;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after `.`"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            int = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        // Only small integers are known to print as written (jaq reads them
        // as machine integers); everything else goes through `json_out`.
        let tok = &self.b[start..self.i];
        let digits = tok.len() - usize::from(tok[0] == b'-');
        let clean = int && digits <= 15 && tok != b"-0";
        self.leaf(start, Kind::Num, if clean { CLEAN } else { 0 });
        Ok(())
    }

    fn string(&mut self) -> Result<(), String> {
        let start = self.i;
        let b = self.b;
        let mut j = start + 1;
        let mut flags = CLEAN;
        loop {
            while j + 8 <= b.len() {
                let w = u64::from_le_bytes(b[j..j + 8].try_into().unwrap());
                if has_special8(w) {
                    break;
                }
                j += 8;
            }
            while j < b.len() && !SPECIAL[b[j] as usize] {
                j += 1;
            }
            let Some(&c) = b.get(j) else {
                self.i = j;
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    self.i = j + 1;
                    self.leaf(start, Kind::Str, flags);
                    return Ok(());
                }
                b'\\' => {
                    flags |= ESC;
                    match b.get(j + 1) {
                        Some(b'"' | b'\\' | b'n' | b't' | b'r' | b'b' | b'f') => j += 2,
                        Some(b'/') => {
                            flags &= !CLEAN;
                            j += 2;
                        }
                        Some(b'u') => {
                            let Some(cp) = b.get(j + 2..j + 6).and_then(hex4) else {
                                self.i = j;
                                return Err(self.err("invalid \\u escape"));
                            };
                            if (0xDC00..0xE000).contains(&cp) {
                                self.i = j;
                                return Err(self.err("lone low surrogate in \\u escape"));
                            }
                            if (0xD800..0xDC00).contains(&cp) {
                                let lo = (b.get(j + 6) == Some(&b'\\')
                                    && b.get(j + 7) == Some(&b'u'))
                                .then(|| b.get(j + 8..j + 12).and_then(hex4))
                                .flatten();
                                match lo {
                                    Some(lo) if (0xDC00..0xE000).contains(&lo) => {}
                                    _ => {
                                        self.i = j;
                                        return Err(self.err("lone high surrogate in \\u escape"));
                                    }
                                }
                                flags &= !CLEAN;
                                j += 12;
                            } else {
                                // Canonical only where jq itself prints \uXXXX.
                                let canonical = (cp < 0x20
                                    && !matches!(cp, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)
                                    || cp == 0x7f)
                                    && b[j + 2..j + 6] == *format!("{cp:04x}").as_bytes();
                                if !canonical {
                                    flags &= !CLEAN;
                                }
                                j += 6;
                            }
                        }
                        _ => {
                            self.i = j;
                            return Err(self.err("invalid escape"));
                        }
                    }
                }
                0x7f => {
                    flags &= !CLEAN;
                    j += 1;
                }
                _ => {
                    self.i = j;
                    return Err(self.err("control character in string"));
                }
            }
        }
    }
}
