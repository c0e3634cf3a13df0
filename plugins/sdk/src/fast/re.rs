//! An exact accelerator for simple regular expressions.
//!
//! regex-bites (jaq's engine) only has a PikeVM, which spends ~2 µs on the
//! S3 region pattern `.*\.(?<region>[^\.]+)\.amazonaws\.com` over a 40-byte
//! domain name. For patterns made only of literals, `.`, simple classes,
//! greedy `*`/`+`/`?` on those, groups (capturing, named, non-capturing;
//! never quantified) and `^`/`$`, with no flags, this bounded backtracker
//! finds the same first match with the same groups: both implement
//! leftmost-first semantics (earliest start, then priority order), and the
//! visited set keeps the work at O(pattern × haystack). Anything else is
//! left to regex-bites (the caller always has it compiled as well).

/// One code point test.
#[derive(Debug, Clone)]
enum Atom {
    Char(char),
    /// `.`: anything but `\n`.
    Any,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Atom {
    #[inline]
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Char(x) => *x == c,
            Atom::Any => c != '\n',
            Atom::Class { negated, ranges } => {
                ranges.iter().any(|&(a, b)| a <= c && c <= b) != *negated
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Inst {
    One(Atom),
    /// Greedy `*`.
    Star(Atom),
    /// Greedy `?`.
    Opt(Atom),
    /// `^` (start of haystack, no multi-line flag)
    Start,
    /// `$`
    End,
    /// Record the position in a capture slot.
    Save(usize),
    Match,
}

/// A pattern in the supported subset.
#[derive(Debug)]
pub(crate) struct Simple {
    prog: Vec<Inst>,
    /// Number of capture groups, including group 0.
    groups: usize,
}

/// Largest visited set (in bits) a search may use; beyond, use regex-bites.
const MAX_VISITED: usize = 1 << 20;

impl Simple {
    /// `None` unless `pattern` (already accepted by regex-bites, compiled
    /// without flags) is in the subset.
    pub(crate) fn new(pattern: &str) -> Option<Self> {
        let mut p = Pat {
            c: pattern.chars().collect(),
            i: 0,
        };
        let mut prog = vec![Inst::Save(0)];
        let mut groups = 1;
        // Open groups: slot index of their end, or None for `(?:`.
        let mut open: Vec<Option<usize>> = Vec::new();
        // Whether the last instruction may take a quantifier.
        let mut quantifiable = false;
        while let Some(c) = p.next() {
            match c {
                '(' => {
                    if p.peek() == Some('?') {
                        p.next();
                        let k = p.next()?;
                        match k {
                            ':' => open.push(None),
                            '<' | 'P' => {
                                if k == 'P' && p.next()? != '<' {
                                    return None;
                                }
                                // The name (validated by regex-bites).
                                while p.next()? != '>' {}
                                open.push(Some(groups));
                                prog.push(Inst::Save(2 * groups));
                                groups += 1;
                            }
                            _ => return None,
                        }
                    } else {
                        open.push(Some(groups));
                        prog.push(Inst::Save(2 * groups));
                        groups += 1;
                    }
                    quantifiable = false;
                }
                ')' => {
                    if let Some(g) = open.pop()? {
                        prog.push(Inst::Save(2 * g + 1));
                    }
                    quantifiable = false;
                }
                '*' | '+' | '?' => {
                    if !quantifiable || matches!(p.peek(), Some('?' | '+' | '*' | '{')) {
                        return None;
                    }
                    let Some(Inst::One(atom)) = prog.pop() else {
                        return None;
                    };
                    match c {
                        '*' => prog.push(Inst::Star(atom)),
                        '?' => prog.push(Inst::Opt(atom)),
                        _ => {
                            prog.push(Inst::One(atom.clone()));
                            prog.push(Inst::Star(atom));
                        }
                    }
                    quantifiable = false;
                }
                '^' => {
                    prog.push(Inst::Start);
                    quantifiable = false;
                }
                '$' => {
                    prog.push(Inst::End);
                    quantifiable = false;
                }
                '.' => {
                    prog.push(Inst::One(Atom::Any));
                    quantifiable = true;
                }
                '[' => {
                    prog.push(Inst::One(p.class()?));
                    quantifiable = true;
                }
                '\\' => {
                    prog.push(Inst::One(Atom::Char(p.escaped()?)));
                    quantifiable = true;
                }
                c if is_meta(c) => return None,
                c => {
                    prog.push(Inst::One(Atom::Char(c)));
                    quantifiable = true;
                }
            }
        }
        if !open.is_empty() {
            return None;
        }
        prog.push(Inst::Save(1));
        prog.push(Inst::Match);
        Some(Self { prog, groups })
    }

    #[cfg(test)]
    fn groups(&self) -> usize {
        self.groups
    }

    /// The first match's capture slots (`2 * groups` byte offsets, group 0
    /// first); `Err(())` if the haystack is too large for this engine.
    pub(crate) fn captures(&self, hay: &str) -> Result<Option<Vec<Option<usize>>>, ()> {
        let n = hay.len();
        let width = n + 1;
        let bits = self.prog.len().checked_mul(width).ok_or(())?;
        if bits > MAX_VISITED {
            return Err(());
        }
        let mut visited = vec![0u64; bits.div_ceil(64)];
        let mut slots = vec![None; 2 * self.groups];
        let mut stack = Vec::new();
        let starts = hay.char_indices().map(|(i, _)| i).chain([n]);
        for start in starts {
            if self.backtrack(hay, start, &mut visited, &mut slots, &mut stack) {
                return Ok(Some(slots));
            }
        }
        Ok(None)
    }

    fn backtrack(
        &self,
        hay: &str,
        start: usize,
        visited: &mut [u64],
        slots: &mut [Option<usize>],
        stack: &mut Vec<Frame>,
    ) -> bool {
        let width = hay.len() + 1;
        let next_char = |pos: usize| hay[pos..].chars().next();
        stack.clear();
        stack.push(Frame::Step(0, start));
        while let Some(frame) = stack.pop() {
            let (mut pc, mut pos) = match frame {
                Frame::Restore(slot, old) => {
                    slots[slot] = old;
                    continue;
                }
                Frame::Step(pc, pos) => (pc, pos),
            };
            loop {
                let bit = pc * width + pos;
                if visited[bit / 64] & (1 << (bit % 64)) != 0 {
                    break;
                }
                visited[bit / 64] |= 1 << (bit % 64);
                match &self.prog[pc] {
                    Inst::One(a) => match next_char(pos) {
                        Some(c) if a.matches(c) => {
                            pc += 1;
                            pos += c.len_utf8();
                        }
                        _ => break,
                    },
                    Inst::Star(a) => match next_char(pos) {
                        Some(c) if a.matches(c) => {
                            stack.push(Frame::Step(pc + 1, pos));
                            pos += c.len_utf8();
                        }
                        _ => pc += 1,
                    },
                    Inst::Opt(a) => match next_char(pos) {
                        Some(c) if a.matches(c) => {
                            stack.push(Frame::Step(pc + 1, pos));
                            pc += 1;
                            pos += c.len_utf8();
                        }
                        _ => pc += 1,
                    },
                    Inst::Start => {
                        if pos != 0 {
                            break;
                        }
                        pc += 1;
                    }
                    Inst::End => {
                        if pos != hay.len() {
                            break;
                        }
                        pc += 1;
                    }
                    Inst::Save(slot) => {
                        stack.push(Frame::Restore(*slot, slots[*slot]));
                        slots[*slot] = Some(pos);
                        pc += 1;
                    }
                    Inst::Match => return true,
                }
            }
        }
        false
    }
}

enum Frame {
    Step(usize, usize),
    Restore(usize, Option<usize>),
}

/// regex-bites' meta characters (`#`, `&`, `-`, `~` are literal outside
/// classes there, but are left to it to be safe).
fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

struct Pat {
    c: Vec<char>,
    i: usize,
}

impl Pat {
    fn next(&mut self) -> Option<char> {
        let c = self.c.get(self.i).copied();
        self.i += 1;
        c
    }

    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }

    /// After `\`: only escaped meta characters and `/` (literal).
    fn escaped(&mut self) -> Option<char> {
        let c = self.next()?;
        (is_meta(c) || c == '/').then_some(c)
    }

    /// After `[`: literal characters, escaped meta characters and ranges.
    fn class(&mut self) -> Option<Atom> {
        let negated = self.peek() == Some('^');
        if negated {
            self.next();
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.next()?;
            let lo = match c {
                ']' if !first => break,
                '\\' => self.escaped()?,
                '[' | ']' | '-' | '&' | '~' => return None,
                c => c,
            };
            first = false;
            if self.peek() == Some('-') {
                self.next();
                let hi = match self.next()? {
                    '\\' => self.escaped()?,
                    '[' | ']' | '-' | '&' | '~' => return None,
                    c => c,
                };
                if hi < lo {
                    return None;
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Some(Atom::Class { negated, ranges })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_bites::bytes::RegexBuilder;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
        }
    }

    fn gen_atom(r: &mut Rng) -> String {
        const ATOMS: &[&str] = &[
            "a", "b", "é", ".", "\\.", "\\-", "[ab]", "[^a]", "[^\\.]", "[a-c]", "[^é\n]", "x",
            "\\/", "[.]", "[\\]a]", "[é-ú]",
        ];
        let a = ATOMS[r.below(ATOMS.len())].to_string();
        let q = ["", "", "", "*", "+", "?"][r.below(6)];
        a + q
    }

    fn gen_pattern(r: &mut Rng, depth: usize) -> String {
        let mut s = String::new();
        if depth == 0 && r.below(6) == 0 {
            s.push('^');
        }
        for _ in 0..1 + r.below(5) {
            if depth < 2 && r.below(5) == 0 {
                let open = ["(", "(?:", "(?<n>", "(?P<m>"][r.below(4)];
                s.push_str(open);
                s.push_str(&gen_pattern(r, depth + 1));
                s.push(')');
            } else {
                s.push_str(&gen_atom(r));
            }
        }
        if depth == 0 && r.below(6) == 0 {
            s.push('$');
        }
        s
    }

    fn gen_hay(r: &mut Rng) -> String {
        const CH: &[char] = &['a', 'b', 'c', '.', '-', 'é', 'ú', '\n', 'x', '/', ']'];
        (0..r.below(14)).map(|_| CH[r.below(CH.len())]).collect()
    }

    /// Same first match and groups as regex-bites on random patterns of the
    /// subset and random haystacks.
    #[test]
    fn agrees_with_regex_bites() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        let (mut compared, mut matched) = (0, 0);
        for _ in 0..3000 {
            let pat = gen_pattern(&mut r, 0);
            let Ok(re) = RegexBuilder::new(&pat).build() else {
                continue;
            };
            let simple = Simple::new(&pat).unwrap_or_else(|| panic!("not simple: {pat}"));
            assert_eq!(simple.groups(), re.captures_len(), "{pat}");
            for _ in 0..20 {
                let hay = gen_hay(&mut r);
                let want = re.captures(hay.as_bytes()).map(|c| {
                    (0..c.len())
                        .flat_map(|g| {
                            let m = c.get(g);
                            [m.map(|m| m.start()), m.map(|m| m.end())]
                        })
                        .collect::<Vec<_>>()
                });
                let got = simple.captures(&hay).unwrap();
                assert_eq!(got, want, "pattern {pat:?} on {hay:?}");
                compared += 1;
                matched += usize::from(want.is_some());
            }
        }
        assert!(compared > 50_000, "{compared}");
        // Both outcomes are well represented.
        assert!(
            matched > compared / 5 && matched < compared * 4 / 5,
            "{matched} of {compared}"
        );
    }

    #[test]
    fn the_s3_region_pattern() {
        let pat = r".*\.(?<region>[^\.]+)\.amazonaws\.com";
        let s = Simple::new(pat).unwrap();
        let hay = "my-bucket.s3.eu-west-1.amazonaws.com";
        let slots = s.captures(hay).unwrap().unwrap();
        assert_eq!(&hay[slots[2].unwrap()..slots[3].unwrap()], "eu-west-1");
        assert_eq!(s.captures("nope").unwrap(), None);
    }

    #[test]
    fn outside_the_subset() {
        for pat in [
            "a|b",
            "(a)*",
            "a{2}",
            "a*?",
            "\\d",
            "\\w+",
            "(?i)a",
            "[[:alpha:]]",
            "[a-]",
            "[-a]",
            "\\x41",
            "a#",
            "[a&b]",
            "\\bx",
        ] {
            assert!(Simple::new(pat).is_none(), "{pat}");
        }
    }
}
