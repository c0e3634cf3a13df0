//! The JQ engine: jaq with jq 1.7 behaviour where a mapping can tell the
//! difference.
//!
//! Owns compiling a filter (with Ocean's single-quote rewrite applied by the
//! caller, see [`crate::rewrite`]) and running it. Knows nothing about
//! mappings or entities. Everything here runs inside the sandbox: `env` and
//! `$ENV` are empty objects, `input` has no inputs, `halt` is an error.

use std::rc::Rc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// Definitions that replace jaq's where jq 1.7.1 behaves differently and a
/// mapping can hit the difference. Each is jq 1.7.1's own definition (from
/// its `builtin.jq`) or its documented behaviour.
const COMPAT_DEFS: &str = r#"
def env: $ENV;
def input: error("No more inputs");
def inputs: empty;
def halt: error("halt is not available in mappings");
def halt_error: error("halt_error is not available in mappings");
def halt_error($code): error("halt_error is not available in mappings");
def input_filename: null;
def input_line_number: 0;
def get_search_list: [];
def have_decnum: false;
def have_literal_numbers: true;
def builtins: [];
def from_entries: reduce .[] as $x ({};
    . + { ($x | if .key == null then .k // .name // .Name // .K // .Key
                else .key end
              | if type == "string" then . else tojson end):
          ($x | if has("value") then .value elif has("v") then .v else .Value end)
        });
def join($x): reduce .[] as $i (null;
    (if . == null then "" else . + $x end) +
    ($i | if . == null then "" elif type == "string" then . else tojson end)
  ) // "";
def todate: if type == "array" then mktime end | todateiso8601;
def dateadd(u; n): . + n;
def datesub(u; n): . - n;
def date: todate;
def ascii: [.] | implode;
def leaf_paths: paths(scalars);
def tostream: path(def r: (.[]?|r), .; r) as $p | getpath($p) | reduce path(.[]?) as $q ([$p, .]; [$p+$q]);
def fromstream(f): { x: null, e: false } as $init
  | foreach f as $i ($init;
      if .e then $init else . end
      | if $i | length == 2
        then setpath(["e"]; $i[0] | length == 0) | setpath(["x"] + $i[0]; $i[1])
        else setpath(["e"]; $i[0] | length == 1) end;
      if .e then .x else empty end);
def truncate_stream(stream): . as $n | null | stream | . as $input | if (.[0]|length) > $n then setpath([0];.[0][$n:]) else empty end;
def getpath_or_null(p): getpath(p);
def @csv: if type != "array" then error("\(type) (\(tojson)) cannot be csv-formatted, only an array can be")
  else map(if type == "number" then tostring
           elif type == "string" then "\"" + gsub("\""; "\"\"") + "\""
           elif type == "boolean" then tostring
           elif . == null then ""
           else error("\(type) (\(tojson)) is not valid in a csv row") end) | join(",") end;
def @tsv: if type != "array" then error("\(type) (\(tojson)) cannot be tsv-formatted, only an array can be")
  else map(if type == "string" then gsub("\\\\"; "\\\\") | gsub("\t"; "\\t") | gsub("\n"; "\\n") | gsub("\r"; "\\r")
           elif type == "number" or type == "boolean" then tostring
           elif . == null then ""
           else error("\(type) (\(tojson)) is not valid in a tsv row") end) | join("\t") end;
def _b32enc: explode | [.[] | [128,64,32,16,8,4,2,1] as $m | $m[] as $b | if (. / $b | floor) % 2 == 1 then 1 else 0 end]
  | [range(0; length; 5) as $i | .[$i:$i+5] | . + [range(5 - length) | 0] | .[0]*16 + .[1]*8 + .[2]*4 + .[3]*2 + .[4]]
  | map("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[.:.+1]) | join("") as $s
  | $s + ("========"[: ((8 - ($s | length) % 8) % 8)]);
def @base32: tostring | explode | [.[] | if . > 127 then error("@base32 supports ASCII input here") end] | implode | _b32enc;
"#;

/// Global variables every filter may use; values are supplied at run time.
const GLOBALS: [&str; 2] = ["$ENV", "$__loc__"];

/// A filter that failed to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    /// Character offset in the filter where the problem was found.
    pub position: Option<u32>,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some(p) => write!(f, "{} (at character {p})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The first output of a filter, as Ocean takes it (`next(iter(...), None)`).
#[derive(Debug, Clone)]
pub enum First {
    Value(Val),
    /// The filter yielded nothing.
    Empty,
    Error(String),
}

/// A compiled filter, reusable across inputs.
pub struct Program {
    filter: Filter,
    /// Names of `--arg`-style variables, in declaration order after GLOBALS.
    extra_vars: Vec<String>,
}

/// A handle to one named variable's slot, for [`Program::run`].
pub type VarValues = Vec<Val>;

thread_local! {
    static GLOBAL_VALUES: Rc<[Val; 2]> = Rc::new([
        Val::obj(Default::default()),
        {
            let mut m = jaq_json::Map::default();
            m.insert(Val::from("file".to_string()), Val::from("<top-level>".to_string()));
            m.insert(Val::from("line".to_string()), Val::from(1isize));
            Val::obj(m)
        },
    ]);
}

fn char_offset(code: &str, byte: usize) -> u32 {
    code[..byte.min(code.len())].chars().count() as u32
}

fn offset_of(code: &str, part: &str) -> Option<u32> {
    let start = part.as_ptr() as usize;
    let base = code.as_ptr() as usize;
    (start >= base && start <= base + code.len()).then(|| char_offset(code, start - base))
}

impl Program {
    /// Compile `code` with the compat definitions and the sandbox globals.
    pub fn compile(code: &str) -> Result<Self, CompileError> {
        Self::compile_with_vars(code, &[])
    }

    /// Compile with extra named variables (`$name`), given without the `$`.
    pub fn compile_with_vars(code: &str, vars: &[String]) -> Result<Self, CompileError> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .chain(compat_defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| load_error(code, errs))?;
        let var_names: Vec<String> = vars.iter().map(|v| format!("${v}")).collect();
        let globals = GLOBALS
            .iter()
            .copied()
            .chain(var_names.iter().map(String::as_str));
        let filter = Compiler::default()
            .with_funs(funs)
            .with_global_vars(globals)
            .compile(modules)
            .map_err(|errs| {
                let mut message = String::new();
                let mut position = None;
                for (_file, errs) in errs {
                    for (name, undefined) in errs {
                        if !message.is_empty() {
                            message.push_str("; ");
                        }
                        message.push_str(&format!("undefined {} `{name}`", undefined.as_str()));
                        position = position.or_else(|| offset_of(code, name));
                    }
                }
                CompileError { message, position }
            })?;
        Ok(Self {
            filter,
            extra_vars: vars.to_vec(),
        })
    }

    fn ctx<'a>(&'a self, extra: &[Val]) -> Ctx<'a, Data> {
        debug_assert_eq!(extra.len(), self.extra_vars.len());
        let globals = GLOBAL_VALUES.with(|g| g.clone());
        let vars = globals.iter().cloned().chain(extra.iter().cloned());
        Ctx::new(&self.filter.lut, Vars::new(vars))
    }

    /// The first output for `input`.
    pub fn first(&self, input: Val) -> First {
        let ctx = self.ctx(&[]);
        let mut out = self.filter.id.run((ctx, input)).map(unwrap_valr);
        match out.next() {
            None => First::Empty,
            Some(Ok(v)) => First::Value(v),
            Some(Err(e)) => First::Error(e.to_string()),
        }
    }

    /// Every output for `input`, stopping at the first error (jq's
    /// command-line behaviour). At most `limit` outputs are produced so that
    /// an endless generator ends with an error instead of eating memory.
    pub fn all(&self, input: Val, vars: &[Val], limit: usize) -> Vec<Result<Val, String>> {
        let ctx = self.ctx(vars);
        let mut outs = Vec::new();
        for r in self.filter.id.run((ctx, input)).map(unwrap_valr) {
            if outs.len() >= limit {
                outs.push(Err(format!("more than {limit} outputs")));
                break;
            }
            match r {
                Ok(v) => outs.push(Ok(v)),
                Err(e) => {
                    outs.push(Err(e.to_string()));
                    break;
                }
            }
        }
        outs
    }
}

fn compat_defs() -> impl Iterator<Item = jaq_core::load::parse::Def<&'static str>> {
    jaq_core::load::parse(COMPAT_DEFS, |p| p.defs())
        .expect("compat defs parse")
        .into_iter()
}

fn load_error(code: &str, errs: jaq_core::load::Errors<&str, ()>) -> CompileError {
    use jaq_core::load::Error;
    let mut message = String::new();
    let mut position = None;
    for (_file, err) in errs {
        let (msg, at): (String, Option<&str>) = match err {
            Error::Io(errs) => (
                errs.into_iter()
                    .map(|(p, e)| format!("cannot load module `{p}`: {e}"))
                    .collect::<Vec<_>>()
                    .join("; "),
                None,
            ),
            Error::Lex(errs) => match errs.into_iter().next() {
                Some((expect, at)) => (format!("expected {}", expect.as_str()), Some(at)),
                None => ("lex error".into(), None),
            },
            Error::Parse(errs) => match errs.into_iter().next() {
                Some((expect, found)) => {
                    let found_text: &str = found;
                    let what = if found_text.is_empty() {
                        "end of input".to_string()
                    } else {
                        format!("`{}`", found_text.chars().take(20).collect::<String>())
                    };
                    (format!("expected {}, found {what}", expect.as_str()), Some(found))
                }
                None => ("parse error".into(), None),
            },
        };
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(&msg);
        if position.is_none() {
            position = at.and_then(|at| offset_of(code, at));
        }
    }
    CompileError { message, position }
}

/// Parse JSON text into a jaq value.
pub fn parse_json(text: &str) -> Result<Val, String> {
    jaq_json::read::parse_single(text.as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(code: &str, input: &str) -> String {
        match Program::compile(code).unwrap().first(parse_json(input).unwrap()) {
            First::Value(v) => crate::json_out::to_json(&v),
            First::Empty => "<empty>".into(),
            First::Error(e) => format!("<error {e}>"),
        }
    }

    #[test]
    fn from_entries_accepts_aws_tags() {
        assert_eq!(
            first("from_entries", r#"[{"Key":"a","Value":"b"},{"key":"c","value":1}]"#),
            r#"{"a":"b","c":1}"#
        );
    }

    #[test]
    fn env_is_empty_in_the_sandbox() {
        assert_eq!(first("$ENV", "null"), "{}");
        assert_eq!(first("env.HOME", "null"), "null");
    }

    #[test]
    fn join_renders_null_as_empty() {
        assert_eq!(first(r#"join("-")"#, r#"[1,"a",null]"#), r#""1-a-""#);
    }

    #[test]
    fn csv_and_tsv() {
        assert_eq!(first("@csv", r#"[1,"a\"b",null]"#), r#""1,\"a\"\"b\",""#);
        assert_eq!(first("@tsv", r#"["a\tb",2]"#), r#""a\\tb\t2""#);
    }

    #[test]
    fn todate_on_strptime_output() {
        assert_eq!(
            first(r#"strptime("%Y-%m-%dT%H:%M:%SZ") | todate"#, r#""2015-03-05T23:51:47Z""#),
            r#""2015-03-05T23:51:47Z""#
        );
    }

    #[test]
    fn compile_error_has_position() {
        let e = Program::compile(".a | foo(").err().expect("compile error");
        assert!(e.position.is_some(), "{e:?}");
        let e = Program::compile(".a | nosuchfn").err().expect("compile error");
        assert_eq!(e.position, Some(5), "{e:?}");
    }
}
