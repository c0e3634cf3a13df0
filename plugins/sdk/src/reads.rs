//! Which top-level keys of a raw item a JQ expression can read, so that a
//! plugin can skip the lookups that fill fields no expression of the batch
//! reads ([`reads`]).
//!
//! Owns only this static analysis of one expression's syntax tree, as jaq's
//! own parser reads it. Must not decide what a plugin looks up (the plugin
//! does, through [`Cloud`](crate::Cloud)) nor which expressions a mapping
//! has (the mapping engine, [`crate::mapping`]). `code` is the text the JQ
//! engine ([`crate::jq`]) is given, i.e. after Ocean's quote rewrite
//! ([`crate::rewrite`]).
//!
//! Soundness comes first: a [`Reads::Keys`] answer that misses a key would
//! drop data a mapping reads, so anything this module cannot follow answers
//! [`Reads::All`]. The analysis tracks whether a term's input may be the
//! item itself ("the root") and whether its output may be. It rests on one
//! invariant: no value but the root's own flow can *be* or *contain* the
//! root. Every construct that would bind the root to a variable, put it in an
//! array, object, string, error or arithmetic, or hand it to a function not
//! known to ignore its keys answers `All`, so a term whose input is not the
//! root can read nothing of it, and a `catch` handler (whose input is an
//! error value) never sees it. The item is a JSON object (enriching plugins
//! refuse anything else), so a constant-key step on it never raises an error
//! that could carry it.

use std::collections::BTreeSet;

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Pattern, Term};
use jaq_core::path::Part;

/// The top-level keys of its input an expression may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// Any key, or the item as a whole (`keys`, `tojson`, `.[]`, ...).
    All,
    /// At most these keys; each only by a path step such as `.k`.
    Keys(BTreeSet<String>),
}

impl Default for Reads {
    fn default() -> Self {
        Reads::Keys(BTreeSet::new())
    }
}

impl Reads {
    /// What either `self` or `other` may read.
    #[must_use]
    pub fn union(self, other: Reads) -> Reads {
        match (self, other) {
            (Reads::Keys(mut a), Reads::Keys(b)) => {
                a.extend(b);
                Reads::Keys(a)
            }
            _ => Reads::All,
        }
    }

    /// Whether the expression(s) may read `key`.
    pub fn may_read(&self, key: &str) -> bool {
        match self {
            Reads::All => true,
            Reads::Keys(keys) => keys.contains(key),
        }
    }
}

impl FromIterator<Reads> for Reads {
    fn from_iter<I: IntoIterator<Item = Reads>>(iter: I) -> Self {
        iter.into_iter().fold(Reads::default(), Reads::union)
    }
}

/// Which top-level keys of its input `code` may read. [`Reads::All`] when
/// jaq's parser does not read `code`: a syntax error, or syntax that only
/// the engine's front end spells out (`?//`, `.5`), which this module does
/// not follow.
pub fn reads(code: &str) -> Reads {
    let Some(term) = jaq_core::load::parse(code, |p| p.term()) else {
        return Reads::All;
    };
    let mut keys = BTreeSet::new();
    match flow(&term, true, &mut keys) {
        // The root as the result: whatever reads the result reads all of it.
        Ok(true) | Err(Whole) => Reads::All,
        Ok(false) => Reads::Keys(keys),
    }
}

/// The item may be read as a whole.
struct Whole;

type T<'s> = Term<&'s str>;

/// Analyses `t` run on an input that is the root iff `root_in`, adding the
/// keys it reads to `keys`. `Ok(out)`: `out` says whether an output of `t`
/// may be the root itself.
fn flow(t: &T<'_>, root_in: bool, keys: &mut BTreeSet<String>) -> Result<bool, Whole> {
    if !root_in {
        // The invariant (module doc): nothing reachable from here holds the root.
        return Ok(false);
    }
    match t {
        Term::Id => Ok(true),
        Term::Recurse | Term::Def(..) => Err(Whole),
        Term::Num(_) | Term::Var(_) | Term::Break(_) | Term::Arr(None) => Ok(false),
        Term::Str(_, parts) => {
            for part in parts {
                if let StrPart::Term(t) = part {
                    used(t, keys)?;
                }
            }
            Ok(false)
        }
        Term::Arr(Some(t)) | Term::Neg(t) => used(t, keys).map(|()| false),
        Term::Obj(entries) => {
            for (k, v) in entries {
                match (k, v) {
                    // `{$x}`: the variable's value, under its name.
                    (Term::Var(_), None) => {}
                    // `{k}` is `{k: .[k]}`.
                    (k, None) => {
                        keys.insert(const_str(k).ok_or(Whole)?);
                    }
                    (k, Some(v)) => {
                        used(k, keys)?;
                        used(v, keys)?;
                    }
                }
            }
            Ok(false)
        }
        Term::BinOp(l, op, r) => match op {
            BinaryOp::Pipe(None) => {
                let mid = flow(l, true, keys)?;
                flow(r, mid, keys)
            }
            // `l as $x | r`: `r` runs on the same input as `l`.
            BinaryOp::Pipe(Some(p)) => {
                let bound = flow(l, true, keys)?;
                bind(p, bound, keys)?;
                flow(r, true, keys)
            }
            BinaryOp::Comma | BinaryOp::Alt => {
                let l = flow(l, true, keys)?;
                let r = flow(r, true, keys)?;
                Ok(l || r)
            }
            BinaryOp::Or | BinaryOp::And | BinaryOp::Math(_) | BinaryOp::Cmp(_) => {
                used(l, keys)?;
                used(r, keys)?;
                Ok(false)
            }
            // Updates rebuild the root; not worth following.
            BinaryOp::Assign | BinaryOp::Update | BinaryOp::UpdateMath(_) | BinaryOp::UpdateAlt => {
                Err(Whole)
            }
        },
        Term::Label(_, t) => flow(t, true, keys),
        // `reduce xs as $x (init; update)`, `foreach ... (init; update; extract)`:
        // `update` and `extract` run on the accumulator, which starts as `init`.
        Term::Fold(_, xs, p, args) => {
            let bound = flow(xs, true, keys)?;
            bind(p, bound, keys)?;
            match &args[..] {
                [init, _] | [init, _, _] => used(init, keys).map(|()| false),
                _ => Err(Whole),
            }
        }
        // See the module doc for why the handler's input is never the root.
        Term::TryCatch(t, _) => flow(t, true, keys),
        Term::IfThenElse(branches, otherwise) => {
            let mut out = false;
            for (cond, then) in branches {
                used(cond, keys)?;
                out |= flow(then, true, keys)?;
            }
            // Without `else`, the input is passed through.
            out |= match otherwise {
                Some(e) => flow(e, true, keys)?,
                None => true,
            };
            Ok(out)
        }
        Term::Call(name, args) => call(name, args, keys),
        Term::Path(head, path) => {
            let root = flow(head, true, keys)?;
            if root {
                match path.0.first() {
                    Some((Part::Index(k), _)) => {
                        keys.insert(const_str(k).ok_or(Whole)?);
                    }
                    Some((Part::Range(..), _)) => return Err(Whole),
                    None => return Ok(true),
                }
            }
            // Index terms run on the path term's own input (`.a[.b]` reads `b`).
            for (part, _) in &path.0 {
                match part {
                    Part::Index(i) => used(i, keys)?,
                    Part::Range(from, upto) => {
                        for i in [from, upto].into_iter().flatten() {
                            used(i, keys)?;
                        }
                    }
                }
            }
            Ok(false)
        }
    }
}

/// Analyses `t` run on the root, whose outputs are consumed as values (an
/// operand, a key, a condition, an array element): the root among them is
/// a whole-item use.
fn used(t: &T<'_>, keys: &mut BTreeSet<String>) -> Result<(), Whole> {
    match flow(t, true, keys)? {
        true => Err(Whole),
        false => Ok(()),
    }
}

/// A call `name(args)` on the root. Only functions whose definition the
/// SDK's engine takes unchanged from jaq (or `jq::COMPAT_DEFS`), and which
/// ignore the keys of their input, are followed; a local `def` of the same
/// name already answered `All` (`Term::Def`).
fn call(name: &str, args: &[T<'_>], keys: &mut BTreeSet<String>) -> Result<bool, Whole> {
    match (name, args) {
        ("empty" | "not" | "null" | "true" | "false" | "nan" | "infinite" | "now" | "env", []) => {
            Ok(false)
        }
        // The arguments alone make the output (`error/0` raises its input: not here).
        ("error", [_]) | ("range", [_] | [_, _] | [_, _, _]) => {
            for a in args {
                used(a, keys)?;
            }
            Ok(false)
        }
        // `if f then . else empty end`
        ("select", [f]) => used(f, keys).map(|()| true),
        // Outputs of `f` as they are.
        ("first" | "last", [f]) => flow(f, true, keys),
        ("limit", [n, f]) => {
            used(n, keys)?;
            flow(f, true, keys)
        }
        ("isempty", [f]) => {
            flow(f, true, keys)?;
            Ok(false)
        }
        // `isempty(g | cond and empty)`: `cond` runs on `g`'s outputs.
        ("any" | "all", [g, cond]) => {
            let root = flow(g, true, keys)?;
            if flow(cond, root, keys)? {
                return Err(Whole);
            }
            Ok(false)
        }
        _ => Err(Whole),
    }
}

/// Binds the pattern `p` to a value that may be the root iff `root`. Only an
/// object pattern with constant keys reads the root by keys; its nested
/// patterns destructure the values under them, never the root.
fn bind(p: &Pattern<&str>, root: bool, keys: &mut BTreeSet<String>) -> Result<(), Whole> {
    match p {
        Pattern::Var(_) | Pattern::Arr(_) if root => Err(Whole),
        Pattern::Var(_) => Ok(()),
        Pattern::Arr(ps) => ps.iter().try_for_each(|p| bind(p, false, keys)),
        Pattern::Obj(entries) => {
            for (k, sub) in entries {
                if root {
                    keys.insert(const_str(k).ok_or(Whole)?);
                }
                // jq runs key terms on the input of `as`, jaq on the value
                // destructured; taking the root covers both.
                used(k, keys)?;
                bind(sub, false, keys)?;
            }
            Ok(())
        }
    }
}

/// The string `t` always is, when it is a string literal without
/// interpolation.
fn const_str(t: &T<'_>) -> Option<String> {
    let Term::Str(None, parts) = t else {
        return None;
    };
    let mut s = String::new();
    for part in parts {
        match part {
            StrPart::Str(x) => s.push_str(x),
            StrPart::Char(c) => s.push(*c),
            StrPart::Term(_) => return None,
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::ocean_format_filter;

    fn keys(code: &str) -> Vec<String> {
        match reads(code) {
            Reads::Keys(k) => k.into_iter().collect(),
            Reads::All => panic!("`{code}` answered All"),
        }
    }

    fn all(code: &str) -> bool {
        reads(code) == Reads::All
    }

    #[test]
    fn reads_path_steps_by_their_first_key() {
        assert_eq!(keys(".a"), ["a"]);
        assert_eq!(keys(".Properties.Tags"), ["Properties"]);
        assert_eq!(keys(".\"__Subnet\".Id"), ["__Subnet"]);
        assert_eq!(keys(".[\"k\"][0]"), ["k"]);
        assert_eq!(keys(".a?.b[]?"), ["a"]);
        assert_eq!(keys(".\"a\\u0062\""), ["ab"]);
        // An index term runs on the same input.
        assert_eq!(keys(".a[.b]"), ["a", "b"]);
    }

    #[test]
    fn a_first_step_that_is_not_a_constant_key_reads_everything() {
        for code in [
            "[.[]]",
            ".[]",
            ".[0]",
            ".[1:]",
            ".[$__loc__.file]",
            ".[.a]",
            ".\"\\(.a)\"",
            "..",
        ] {
            assert!(all(code), "{code}");
        }
    }

    #[test]
    fn the_root_as_a_result_or_operand_reads_everything() {
        for code in [
            ".",
            "select(.a)",
            "select(.a) | tojson",
            ".a, .",
            "if .a then . else 1 end",
            "if .a then 1 end",
            ". == {}",
            ". and .a",
            "[.]",
            "{x: .}",
            "\"\\(.)\"",
            "-.",
            "(.a | not), .",
            "try . catch 1",
        ] {
            assert!(all(code), "{code}");
        }
    }

    #[test]
    fn functions_are_all_unless_known_to_ignore_keys() {
        for code in [
            "to_entries",
            "tostring",
            "tojson",
            "@json",
            "@base64",
            "keys",
            "length",
            "getpath([\"x\"])",
            "has(\"x\")",
            "map(.a)",
            "recurse",
            "error",
            "first",
            "paths",
            "del(.a)",
            "input",
        ] {
            assert!(all(code), "{code}");
        }
        assert_eq!(keys("empty"), Vec::<String>::new());
        assert_eq!(keys("$__loc__"), Vec::<String>::new());
        assert_eq!(keys("$ENV.HOME, env.HOME"), Vec::<String>::new());
        assert_eq!(keys("null, true, false, not"), Vec::<String>::new());
        assert_eq!(keys("error(.a)"), ["a"]);
        assert!(all("error(.)"));
        assert_eq!(keys("range(.n)"), ["n"]);
        assert_eq!(keys("first(.a[]), last(.b[])"), ["a", "b"]);
        assert_eq!(keys("limit(.n; .a[])"), ["a", "n"]);
        assert_eq!(keys("isempty(.a[])"), ["a"]);
        assert_eq!(keys("any(.Tags[]; .Key == \"x\")"), ["Tags"]);
        assert_eq!(keys("any(.; .a)"), ["a"]);
        assert_eq!(keys("all(.a; .)"), ["a"]);
        assert!(all("any(.; .)"));
    }

    #[test]
    fn non_root_inputs_read_nothing_more() {
        assert_eq!(keys(".Properties | keys"), ["Properties"]);
        assert_eq!(keys(".Properties.Tags | map(.Key)"), ["Properties"]);
        assert_eq!(keys(".a | tostring"), ["a"]);
        assert_eq!(keys(".a | to_entries | .[] | .."), ["a"]);
        assert_eq!(keys(".a | def f: .; f"), ["a"]);
        assert_eq!(keys(".Tags | from_entries | .Name"), ["Tags"]);
        assert_eq!(keys("select(.a) | .b"), ["a", "b"]);
        assert_eq!(keys("(.a | select(.x)) | .y"), ["a"]);
    }

    #[test]
    fn combinators_take_the_union() {
        assert_eq!(keys(".a // .b"), ["a", "b"]);
        assert_eq!(keys(".a, .b"), ["a", "b"]);
        assert_eq!(keys(".a and .b or .c"), ["a", "b", "c"]);
        assert_eq!(keys(".a + .b * 2"), ["a", "b"]);
        assert_eq!(
            keys("if .a then .b elif .c then .d else .e end"),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(keys("try .a catch .b"), ["a"]);
        assert_eq!(keys(".a?"), ["a"]);
        assert_eq!(keys("label $out | .a, break $out"), ["a"]);
        assert_eq!(keys("[.a[] | .b]"), ["a"]);
        assert_eq!(keys("\"\\(.x)-\\(.y)\""), ["x", "y"]);
        assert_eq!(keys("@base64 \"id:\\(.x)\""), ["x"]);
    }

    #[test]
    fn objects_read_their_keys_and_values() {
        assert_eq!(keys("{a}"), ["a"]);
        assert_eq!(keys("{\"b\", $__loc__}"), ["b"]);
        assert_eq!(keys("{x: .a, (.k): 1}"), ["a", "k"]);
        assert!(all("{\"\\(.k)\"}"));
        assert!(all("{(.): 1}"));
    }

    #[test]
    fn variables_bound_to_the_root_read_everything() {
        assert!(all(". as $x | $x.b"));
        assert!(all(". as [$a] | $a"));
        assert_eq!(keys(".a as $v | .b"), ["a", "b"]);
        assert_eq!(keys(". as {a: $x, $b} | $x"), ["a", "b"]);
        assert_eq!(keys(". as {a: {b: $x}} | $x"), ["a"]);
        assert!(all(". as {(.k): $x} | $x"));
        assert_eq!(keys(".a as {(.k): $x} | $x"), ["a", "k"]);
    }

    #[test]
    fn folds_and_definitions() {
        assert_eq!(keys("reduce .a[] as $x (0; . + $x)"), ["a"]);
        assert_eq!(keys("foreach .a[] as $x (.n; . + $x; [., $x])"), ["a", "n"]);
        assert!(all("reduce . as $x (0; 1)"));
        assert!(all("reduce .a[] as $x (.; .)"));
        assert!(all("def f: .; f"));
        assert!(all("def empty: keys; empty"));
        assert!(all(".a = 1"));
        assert!(all(".a |= 1"));
    }

    #[test]
    fn unparseable_reads_everything() {
        assert!(all(""));
        assert!(all(".a |"));
        // jq syntax only the engine's front end knows.
        assert!(all(". as [$a] ?// {$a} | $a"));
        assert!(all(". as {$a: $b} | $b"));
        assert!(all(".5"));
    }

    #[test]
    fn ocean_quote_rewrites_are_analysed_after_the_rewrite() {
        let r = |src: &str| reads(&ocean_format_filter(src));
        // Single quotes do not lex: the raw text reads everything.
        assert_eq!(reads(".Properties.Env == 'prod'"), Reads::All);
        assert_eq!(
            r(".Properties.Env == 'prod'"),
            Reads::Keys(["Properties".to_string()].into())
        );
        assert_eq!(
            r("'arn:' + .Arn + '/' + .__Region"),
            Reads::Keys(["Arn".to_string(), "__Region".to_string()].into())
        );
        assert_eq!(
            r(".Properties.Engine == 'postgres' or .__Engine == 'mysql'"),
            Reads::Keys(["Properties".to_string(), "__Engine".to_string()].into())
        );
        // Left unrewritten (Ocean's regex needs a space or the end after a
        // closing quote), so unparseable.
        assert_eq!(r(".__Subnet | join('-')"), Reads::All);
        assert_eq!(r(".Tags[] | select(.Key == 'Name') | .Value"), Reads::All);
    }

    #[test]
    fn the_default_mapping_reads_no_enrichment_field() {
        for code in [
            ".Identifier",
            "\"cloudResource\"",
            ".__Kind",
            ".Properties | select(.Arn != null) | \"https://console.aws.amazon.com/go/view?arn=\" + .Arn",
            ".Properties.RegionalDomainName | capture(\".*\\\\.(?<region>[^\\\\.]+)\\\\.amazonaws\\\\.com\") | .region",
            ".JoinedTimestamp | sub(\" \"; \"T\")",
            "true",
        ] {
            let r = reads(&ocean_format_filter(code));
            assert!(
                !r.may_read("__SecurityGroups") && !r.may_read("__Tags") && r != Reads::All,
                "{code}: {r:?}"
            );
        }
    }

    #[test]
    fn union_and_may_read() {
        let a = Reads::Keys(["a".to_string()].into());
        let b = Reads::Keys(["b".to_string()].into());
        let ab = a.clone().union(b.clone());
        assert!(ab.may_read("a") && ab.may_read("b") && !ab.may_read("c"));
        assert_eq!(a.clone().union(Reads::All), Reads::All);
        assert_eq!(Reads::All.union(b.clone()), Reads::All);
        assert!(Reads::All.may_read("anything"));
        assert_eq!([a, b].into_iter().collect::<Reads>(), ab);
        assert_eq!(
            std::iter::empty::<Reads>().collect::<Reads>(),
            Reads::default()
        );
    }
}
