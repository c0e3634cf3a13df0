//! The JQ engine: jaq with jq 1.7 behaviour where a mapping can tell the
//! difference.
//!
//! Owns compiling a filter (with Ocean's single-quote rewrite applied by the
//! caller, see [`crate::rewrite`]) and running it. Knows nothing about
//! mappings or entities. Everything here runs inside the sandbox: `env` and
//! `$ENV` are empty objects, `input` has no inputs, `halt` is an error.
//!
//! jaq differs from jq 1.7.1 in ways a definition alone cannot fix (its
//! update operators fail on `null`, `/` by zero yields infinity, an array
//! index must be an integer, `?//` does not parse, ...). So a filter goes
//! through a small front end before jaq compiles it ([`front`]):
//!
//! 1. a token-level pass spells out what jaq's parser lacks: the
//!    destructuring alternative `?//` and number literals such as `.5`;
//! 2. jaq's own parser reads the result into its syntax tree, which is
//!    rewritten so that the operators whose jq semantics differ call jq
//!    definitions instead (`=` → `_assign`, `|=` → `_modify`, `/` → `_div`,
//!    computed array indices floor like jq's, ...);
//! 3. the tree is printed back as jq text, which jaq compiles together with
//!    [`COMPAT_DEFS`] and a few native helpers ([`natives`]).
//!
//! A filter the front end cannot read (a syntax error, a module directive)
//! is compiled as written, so that errors are jaq's and point into the
//! original text.

use std::rc::Rc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// Definitions that replace jaq's where jq 1.7.1 behaves differently and a
/// mapping can hit the difference. Each is jq 1.7.1's own definition (from
/// its `builtin.jq`) or its documented behaviour. Order matters: a
/// definition sees only those above it (and jaq's), so the path primitives
/// come first.
///
/// Names starting with `_` are internal: `_jaq_*` keep a handle on jaq's
/// filter before it is overridden; the front end's rewrites call `_assign`,
/// `_assign_jq`, `_modify`, `_modify_fast`, `_modify_<op>`, `_neg`, `_rng`
/// and `_last` (defined here) and `_div`, `_rem`, `_mul`, `_ix`, `_sx`,
/// `_ex`, `_tostr`, `_jqerr` ([`natives`]).
///
/// Updates (`=`, `|=`, `+=`, ...) first try jaq's own update, which agrees
/// with jq wherever it succeeds, and fall back to jq 1.7.1's definitions
/// (`_assign_jq`, `_modify`, built on native `setpath`/`delpaths`) when it
/// fails (a `null` or a missing array element on the way) or the update
/// yields nothing (jq deletes the paths afterwards, all at once).
const COMPAT_DEFS: &str = r#"
def _jaq_implode: implode;
def _jaq_utf8bytelength: utf8bytelength;
def _jaq_ltrimstr($x): ltrimstr($x);
def _jaq_rtrimstr($x): rtrimstr($x);
def _jaq_strftime($f): strftime($f);
def _jaq_strflocaltime($f): strflocaltime($f);
def _jaq_mktime: mktime;

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

def tojson: _jq_tojson;
def tostring: if isstring then . else _jq_tojson end;
def @json: _jq_tojson;
def @text: tostring;
def @html: tostring | escape_html;
def @uri: tostring | encode_uri;
def @base64: tostring | encode_base64;
def @base64d: tostring | _b64d;
def @base32d: tostring | _b32d;

def _tv: "\(type) (\(_jq_tojson | if utf8bytelength > 14 then .[:11] + "..." else . end))";
def fromjson: _fromjson;
def tonumber: if isnumber then .
  elif isstring then (_fromjson as $v | if $v | isnumber then $v else error("\(_tv) cannot be parsed as a number") end)
  else error("\(_tv) cannot be parsed as a number") end;
def has($k): _has($k);
def _jaq_match(re; flags): match(re; flags);
def match(re; flags): _jaq_match(re; flags)
  | . + {captures: [.captures[] | if has("name") then . else . + {name: null} end]};
def _rng($from; $upto): if . == null then . else .[$from:$upto] end;
def _neg(f): f | if isnumber then -. else error("\(_tv) cannot be negated") end;
def setpath($p; $v): _setpath($p; $v);
def delpaths($ps): _delpaths($ps);
def _assign_jq(paths; $v): reduce path(paths) as $p (.; setpath($p; $v));
def _modify(paths; update):
  reduce path(paths) as $p ([., []];
    . as [$x, $del]
    | label $out
    | ( (($x | getpath($p) | update) as $v | [($x | setpath($p; $v)), $del] | ., break $out),
        [$x, $del + [$p]] ))
  | . as [$x, $del] | $x | delpaths($del);
def _assign(paths; $v): . as $in | try (paths |= $v) catch ($in | _assign_jq(paths; $v));
def _modify_fast(paths; update): . as $in
  | try (paths |= (label $o | (update | ., break $o), error({__jq_modify_empty: true})))
    catch ($in | _modify(paths; update));
def _modify_add(paths; $v): _modify_fast(paths; . + $v);
def _modify_sub(paths; $v): _modify_fast(paths; . - $v);
def _modify_mul(paths; $v): _modify_fast(paths; _mul(.; $v));
def _modify_div(paths; $v): _modify_fast(paths; _div(.; $v));
def _modify_rem(paths; $v): _modify_fast(paths; _rem(.; $v));
def _modify_alt(paths; $v): _modify_fast(paths; . // $v);
def map_values(f): _modify_fast(.[]; f);
def del(f): delpaths([path(f)]);
def to_entries: [keys_unsorted[] as $k | {key: $k, value: .[$k]}];
def from_entries: reduce .[] as $x ({};
    . + { ($x | if .key == null then .k // .name // .Name // .K // .Key
                else .key end
              | if type == "string" then . else tojson end):
          ($x | if has("value") then .value elif has("v") then .v else .Value end)
        });
def with_entries(f): to_entries | map(f) | from_entries;
def walk(f): def w: if type == "object" then map_values(w) elif type == "array" then map(w) else . end | f; w;
def pick(pathexps): . as $in | reduce path(pathexps) as $a (null; setpath($a; $in | getpath($a)));
def paths(node_filter): . as $dot | paths | select(. as $p | $dot | getpath($p) | node_filter);
def leaf_paths: paths(scalars);

def join($x): reduce .[] as $i (null;
    (if . == null then "" else . + $x end) +
    ($i | if isstring then . elif isnumber or isboolean then tostring else . // "" end)
  ) // "";
def @sh: [if isarray then .[] end
          | if isstring then "'" + escape_sh + "'"
            elif isarray or isobject then error("\(_tv) can not be escaped for shell")
            else _jq_tojson end] | join(" ");
def _flatten($x): reduce .[] as $i ([]; if $i | type == "array" and $x != 0 then . + ($i | _flatten($x - 1)) else . + [$i] end);
def flatten($x): if $x < 0 then error("flatten depth must not be negative") else _flatten($x) end;
def flatten: _flatten(-1);
def nth($n): .[$n];
def nth($n; g):
  if $n < 0 then error("nth doesn't support negative indices")
  else label $out | foreach g as $item ($n + 1; . - 1; if . <= 0 then $item, break $out else empty end) end;
def last(f): reduce f as $x (null; $x);
def _last(f): reduce f as $x (null; $x);
def _jaq_range($from; $upto; $by): range($from; $upto; $by);
def range($from; $upto; $by): if $by == 0 then empty else _jaq_range($from; $upto; $by) end;
def limit($n; f):
  if $n > 0 then label $out | foreach f as $item ($n; . - 1; $item, if . <= 0 then break $out else empty end)
  elif $n == 0 then empty
  else f end;
def implode:
  if isarray | not then error("implode input must be an array")
  else map(if (isnumber | not) or isnan then error("\(_tv) can't be imploded, unicode codepoint needs to be numeric")
           else floor | if . < 0 or . > 1114111 or (. >= 55296 and . <= 57343) then 65533 else . end end)
       | _jaq_implode end;
def ascii: [.] | implode;
def utf8bytelength: if isstring then _jaq_utf8bytelength else error("\(_tv) only strings have UTF-8 byte length") end;
def ltrimstr($x): if isstring and ($x | isstring) then _jaq_ltrimstr($x) else . end;
def rtrimstr($x): if isstring and ($x | isstring) then _jaq_rtrimstr($x) else . end;
def _tm_check(msg): if isarray and all(.[]; isnumber) then . else error(msg) end;
def strftime($f): if isnumber then gmtime end | _tm_check("strftime/1 requires parsed datetime inputs") | _jaq_strftime($f);
def strflocaltime($f): if isnumber then localtime end | _tm_check("strflocaltime/1 requires parsed datetime inputs") | _jaq_strflocaltime($f);
def mktime: if isarray | not then error("mktime requires array of 6 numbers")
  else _tm_check("mktime requires parsed datetime inputs") | _jaq_mktime end;
def todate: if type == "array" then mktime end | strftime("%Y-%m-%dT%H:%M:%SZ");
def todateiso8601: strftime("%Y-%m-%dT%H:%M:%SZ");
def dateadd(u; n): . + n;
def datesub(u; n): . - n;
def date: todate;

def match($val): ($val | type) as $vt
  | if $vt == "string" then match($val; "")
    elif $vt == "array" and ($val | length) > 1 then match($val[0]; $val[1] // "")
    elif $vt == "array" and ($val | length) > 0 then match($val[0]; "")
    else error($vt + " not a string or array") end;
def test($val): ($val | type) as $vt
  | if $vt == "string" then test($val; "")
    elif $vt == "array" and ($val | length) > 1 then test($val[0]; $val[1] // "")
    elif $vt == "array" and ($val | length) > 0 then test($val[0]; "")
    else error($vt + " not a string or array") end;
def capture($val): ($val | type) as $vt
  | if $vt == "string" then capture($val; "")
    elif $vt == "array" and ($val | length) > 1 then capture($val[0]; $val[1] // "")
    elif $vt == "array" and ($val | length) > 0 then capture($val[0]; "")
    else error($vt + " not a string or array") end;

def INDEX(stream; idx_expr): reduce stream as $row ({}; . + {($row | idx_expr | tostring): $row});
def INDEX(idx_expr): INDEX(.[]; idx_expr);
def JOIN($idx; idx_expr): [.[] | [., $idx[idx_expr]]];
def JOIN($idx; stream; idx_expr): stream | [., $idx[idx_expr]];
def JOIN($idx; stream; idx_expr; join_expr): stream | [., $idx[idx_expr]] | join_expr;
def IN(s): any(s == .; .);
def IN(src; s): any(src == s; .);

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

def builtins: ["IN/1","IN/2","INDEX/1","INDEX/2","JOIN/2","JOIN/3","JOIN/4","abs/0","acos/0","acosh/0",
  "add/0","all/0","all/1","all/2","any/0","any/1","any/2","arrays/0","ascii/0","ascii_downcase/0",
  "ascii_upcase/0","asin/0","asinh/0","atan/0","atan2/2","atanh/0","booleans/0","bsearch/1",
  "builtins/0","capture/1","capture/2","cbrt/0","ceil/0","combinations/0","combinations/1",
  "contains/1","copysign/2","cos/0","cosh/0","debug/0","debug/1","del/1","delpaths/1","drem/2",
  "empty/0","endswith/1","env/0","erf/0","erfc/0","error/0","error/1","exp/0","exp10/0","exp2/0",
  "explode/0","expm1/0","fabs/0","fdim/2","finites/0","first/0","first/1","flatten/0","flatten/1",
  "floor/0","fma/3","fmax/2","fmin/2","fmod/2","format/1","frexp/0","from_entries/0","fromdate/0",
  "fromdateiso8601/0","fromjson/0","fromstream/1","gamma/0","get_search_list/0","getpath/1",
  "gmtime/0","group_by/1","gsub/2","gsub/3","halt/0","halt_error/0","halt_error/1","has/1",
  "hypot/2","implode/0","in/1","index/1","indices/1","infinite/0","input/0","input_filename/0",
  "input_line_number/0","inputs/0","inside/1","isempty/1","isinfinite/0","isnan/0","isnormal/0",
  "isvalid/1","iterables/0","j0/0","j1/0","join/1","keys/0","keys_unsorted/0","last/0","last/1",
  "ldexp/2","leaf_paths/0","length/0","lgamma/0","lgamma_r/0","limit/2","localtime/0","log/0",
  "log10/0","log1p/0","log2/0","logb/0","ltrimstr/1","map/1","map_values/1","match/1","match/2",
  "max/0","max_by/1","min/0","min_by/1","mktime/0","modf/0","modulemeta/0","nan/0","nearbyint/0",
  "nextafter/2","nexttoward/2","normals/0","not/0","now/0","nth/1","nth/2","nulls/0","numbers/0",
  "objects/0","path/1","paths/0","paths/1","pick/1","pow/2","pow10/0","range/1","range/2",
  "range/3","recurse/0","recurse/1","recurse/2","reduce/0","repeat/1","reverse/0","rindex/1",
  "rint/0","round/0","rtrimstr/1","scalars/0","scalb/2","scalbln/2","scan/1","scan/2","select/1",
  "setpath/2","significand/0","sin/0","sinh/0","sort/0","sort_by/1","split/1","split/2",
  "splits/1","splits/2","sqrt/0","startswith/1","stderr/0","strflocaltime/1","strftime/1",
  "strings/0","strptime/1","sub/2","sub/3","tan/0","tanh/0","test/1","test/2","tgamma/0",
  "to_entries/0","toarray/0","todate/0","todateiso8601/0","tojson/0","tonumber/0","tostream/0",
  "tostring/0","transpose/0","trunc/0","truncate_stream/1","type/0","unique/0","unique_by/1",
  "until/2","utf8bytelength/0","values/0","walk/1","while/2","with_entries/1","y0/0","y1/0"];
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

    /// [`COMPAT_DEFS`], parsed once per thread.
    static COMPAT: Vec<jaq_core::load::parse::Def<&'static str>> =
        jaq_core::load::parse(COMPAT_DEFS, |p| p.defs()).expect("compat defs parse");
}

fn char_offset(code: &str, byte: usize) -> u32 {
    code[..byte.min(code.len())].chars().count() as u32
}

fn offset_of(code: &str, part: &str) -> Option<u32> {
    let start = part.as_ptr() as usize;
    let base = code.as_ptr() as usize;
    (start >= base && start <= base + code.len()).then(|| char_offset(code, start - base))
}

/// Where the identifier `name` first occurs in `code` as a whole word.
fn find_word(code: &str, name: &str) -> Option<u32> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == ':';
    let mut from = 0;
    while let Some(i) = code[from..].find(name).map(|i| i + from) {
        let before = code[..i].chars().next_back();
        let after = code[i + name.len()..].chars().next();
        if !before.is_some_and(ident) && !after.is_some_and(ident) {
            return Some(char_offset(code, i));
        }
        from = i + name.len().max(1);
    }
    None
}

impl Program {
    /// Compile `code` with the compat definitions and the sandbox globals.
    pub fn compile(code: &str) -> Result<Self, CompileError> {
        Self::compile_with_vars(code, &[])
    }

    /// Compile with extra named variables (`$name`), given without the `$`.
    pub fn compile_with_vars(code: &str, vars: &[String]) -> Result<Self, CompileError> {
        match front::translate(code)? {
            Some(translated) => match Self::compile_text(&translated, vars, Some(code)) {
                Ok(p) => Ok(p),
                // The printed program should always parse; if it does not,
                // that is a front-end bug: fall back to jaq on the original.
                Err(Fail::Load(_)) => {
                    Self::compile_text(code, vars, None).map_err(Fail::into_error)
                }
                Err(e) => Err(e.into_error()),
            },
            None => Self::compile_text(code, vars, None).map_err(Fail::into_error),
        }
    }

    /// Compile jq text. `original` is the filter as the user wrote it when
    /// `code` is the front end's translation (for error positions).
    fn compile_text(code: &str, vars: &[String], original: Option<&str>) -> Result<Self, Fail> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .chain(COMPAT.with(|c| c.clone()));
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs())
            .chain(natives::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| Fail::Load(load_error(code, errs)))?;
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
                        position = position.or_else(|| match original {
                            Some(orig) => find_word(orig, name),
                            None => offset_of(code, name),
                        });
                    }
                }
                Fail::Compile(CompileError { message, position })
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
            Some(Err(e)) => First::Error(error_text(e)),
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
                    outs.push(Err(error_text(e)));
                    break;
                }
            }
        }
        outs
    }
}

/// Why compiling some text failed: it did not parse, or it named something
/// undefined.
enum Fail {
    Load(CompileError),
    Compile(CompileError),
}

impl Fail {
    fn into_error(self) -> CompileError {
        match self {
            Fail::Load(e) | Fail::Compile(e) => e,
        }
    }
}

/// An error as jq reports it: a string error is its text, another value is
/// its JSON followed by ` (not a string)`, and jaq's own messages are
/// reworded as jq 1.7.1 words them where the two differ only in wording.
fn error_text(e: jaq_core::Error<Val>) -> String {
    let shown = e.to_string();
    let v = e.into_val();
    match &v {
        Val::TStr(b) | Val::BStr(b) => {
            let s = String::from_utf8_lossy(b).into_owned();
            if shown == s {
                natives::jq_message(&s).unwrap_or(s)
            } else {
                s
            }
        }
        other => format!("{} (not a string)", natives::dump(other)),
    }
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
                    (
                        format!("expected {}, found {what}", expect.as_str()),
                        Some(found),
                    )
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

/// jq's name for a value's type (`type`).
pub fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::TStr(_) | Val::BStr(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
    }
}

/// Parse JSON text into a jaq value. A leading byte order mark is skipped,
/// as jq does.
pub fn parse_json(text: &str) -> Result<Val, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match jaq_json::read::parse_single(text.as_bytes()) {
        Ok(v) => Ok(v),
        Err(e) => natives::parse_nonfinite(text).ok_or_else(|| e.to_string()),
    }
}

/// The front end: jq text in, jq text that jaq runs with jq's semantics out.
mod front {
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
                        Some(Token(m, Tok::Block(inner)))
                            if m.starts_with('(') || !constant(inner) =>
                        {
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
            b[i] == b'.'
                && b[i + 1].is_ascii_digit()
                && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
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
                let mut args: Vec<T<'s>> =
                    args.into_iter().map(rewrite).collect::<Result<_, _>>()?;
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
            Term::Fold(_, xs, _, args) => {
                mentions_recursion(xs) || args.iter().any(mentions_recursion)
            }
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
                branches.iter().all(|(c, t)| single(c) && single(t))
                    && e.as_deref().is_none_or(single)
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
                    | "type" | "not" | "add" | "ascii_downcase" | "ascii_upcase" | "tonumber"
                    | "floor" | "sort" | "unique" | "reverse" | "to_entries" | "from_entries"
                    | "null" | "true" | "false",
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
            Term::Id
            | Term::Num(_)
            | Term::Var(_)
            | Term::Str(..)
            | Term::Arr(_)
            | Term::Obj(_) => print(out, t),
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
}

/// Native helpers with jq 1.7.1's exact semantics: `setpath`/`delpaths`
/// (which jaq cannot express on `null` or past an array's end), `tojson`'s
/// number formatting, `@base64d`/`@base32d`, and the rewording of jaq's
/// error messages as jq's.
mod natives {
    use jaq_core::native::{Filter, Fun, bome, run, v};
    use jaq_core::{DataT, Error, RunPtr};
    use jaq_json::{Map, Num, Rc, Val};
    use std::fmt::Write;

    pub fn funs<D: for<'a> DataT<V<'a> = Val>>() -> impl Iterator<Item = Fun<D>> {
        base().into_vec().into_iter().map(run)
    }

    fn base<D: for<'a> DataT<V<'a> = Val>>() -> Box<[Filter<RunPtr<D>>]> {
        Box::new([
            ("_setpath", v(2), |mut cv| {
                let value = cv.0.pop_var();
                let path = cv.0.pop_var();
                bome(setpath(cv.1, &path, value).map_err(Error::str))
            }),
            ("_delpaths", v(1), |mut cv| {
                let paths = cv.0.pop_var();
                bome(delpaths(cv.1, paths).map_err(Error::str))
            }),
            ("_jq_tojson", v(0), |cv| {
                let mut s = String::new();
                write(&mut s, &cv.1);
                bome(Ok(Val::from(s)))
            }),
            ("_jqerr", v(0), |cv| {
                let msg = match &cv.1 {
                    Val::TStr(b) => jq_message(&String::from_utf8_lossy(b)),
                    _ => None,
                };
                bome(Ok(msg.map_or(cv.1, Val::from)))
            }),
            ("_b64d", v(0), |cv| bome(base64d(&cv.1).map_err(Error::str))),
            ("_div", v(2), |mut cv| {
                let y = cv.0.pop_var();
                let x = cv.0.pop_var();
                bome(div(x, y))
            }),
            ("_rem", v(2), |mut cv| {
                let y = cv.0.pop_var();
                let x = cv.0.pop_var();
                bome(rem(x, y))
            }),
            ("_mul", v(2), |mut cv| {
                let y = cv.0.pop_var();
                let x = cv.0.pop_var();
                bome(mul(x, y))
            }),
            ("_ix", v(0), |cv| bome(Ok(index_key(cv.1)))),
            ("_sx", v(0), |cv| bome(Ok(slice_bound(cv.1, false)))),
            ("_ex", v(0), |cv| bome(Ok(slice_bound(cv.1, true)))),
            ("_tostr", v(0), |cv| {
                bome(Ok(match cv.1 {
                    s @ (Val::TStr(_) | Val::BStr(_)) => s,
                    v => Val::from(dump(&v)),
                }))
            }),
            ("_has", v(1), |mut cv| {
                let k = cv.0.pop_var();
                bome(has(&cv.1, &k).map(Val::Bool).map_err(Error::str))
            }),
            ("_fromjson", v(0), |cv| {
                let r = match &cv.1 {
                    Val::TStr(b) | Val::BStr(b) => {
                        let text = String::from_utf8_lossy(b);
                        super::parse_json(&text)
                            .map_err(|e| format!("{e} (while parsing '{text}')"))
                    }
                    v => Err(format!("{} cannot be parsed as JSON", tv(v))),
                };
                bome(r.map_err(Error::str))
            }),
            ("_b32d", v(0), |cv| bome(base32d(&cv.1).map_err(Error::str))),
        ])
    }

    pub fn kind(v: &Val) -> &'static str {
        super::type_name(v)
    }

    fn str_of(v: &Val) -> Option<String> {
        match v {
            Val::TStr(b) | Val::BStr(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    fn f64_of(n: &Num) -> f64 {
        match n {
            Num::Int(i) => *i as f64,
            Num::Float(f) => *f,
            Num::BigInt(b) => b.to_string().parse().unwrap_or(f64::NAN),
            Num::Dec(d) => d.parse().unwrap_or(f64::NAN),
        }
    }

    fn num_of(v: &Val) -> Option<f64> {
        match v {
            Val::Num(n) => Some(f64_of(n)),
            _ => None,
        }
    }

    fn int(i: i64) -> Val {
        Val::Num(Num::from_integral(i))
    }

    // --------------------------------------------------------------
    // jq's value dump (`tojson`), numbers as jq 1.7.1 prints them.

    /// `v` as jq's `tojson` writes it.
    pub fn dump(v: &Val) -> String {
        let mut s = String::new();
        write(&mut s, v);
        s
    }

    /// `v` as jq's `tojson` writes it, truncated the way jq's error
    /// messages truncate values (`bufsize` bytes including the NUL).
    fn dump_trunc(v: &Val, bufsize: usize) -> String {
        let s = dump(v);
        if s.len() > bufsize - 1 {
            let mut cut = bufsize - 4;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}...", &s[..cut])
        } else {
            s
        }
    }

    fn tv(v: &Val) -> String {
        format!("{} ({})", kind(v), dump_trunc(v, 15))
    }

    pub fn write(out: &mut String, v: &Val) {
        match v {
            Val::Null => out.push_str("null"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Num(n) => write_num(out, n),
            Val::TStr(b) | Val::BStr(b) => {
                crate::json_out::write_str(out, &String::from_utf8_lossy(b))
            }
            Val::Arr(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, x);
                }
                out.push(']');
            }
            Val::Obj(o) => {
                out.push('{');
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match str_of(k) {
                        Some(k) => crate::json_out::write_str(out, &k),
                        None => crate::json_out::write_str(out, &dump(k)),
                    }
                    out.push(':');
                    write(out, x);
                }
                out.push('}');
            }
        }
    }

    fn write_num(out: &mut String, n: &Num) {
        match n {
            Num::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Num::BigInt(b) => {
                let _ = write!(out, "{b}");
            }
            Num::Float(f) => out.push_str(&fmt_f64(*f)),
            // jq 1.7.1 prints an unchanged literal canonicalised by
            // decNumber (`dec_canonical`: `100e-2` as `1.00`); the fast path
            // (crate::fast) and jaq keep the literal's own spelling, so this
            // does too, to stay consistent within Berth.
            Num::Dec(d) => out.push_str(d),
        }
    }

    /// A double as jq prints it (`jvp_dtoa_fmt`: shortest round-trip
    /// digits; exponent form below 1e-4 or beyond 15 trailing zeros).
    pub fn fmt_f64(f: f64) -> String {
        if f.is_nan() {
            return "null".into();
        }
        let f = f.clamp(f64::MIN, f64::MAX);
        if f == 0.0 {
            return if f.is_sign_negative() {
                "-0".into()
            } else {
                "0".into()
            };
        }
        let sci = format!("{:e}", f.abs());
        let (mant, exp) = sci.split_once('e').expect("{:e} has an exponent");
        let digits: String = mant.chars().filter(|c| *c != '.').collect();
        let decpt: i64 = exp.parse::<i64>().expect("exponent") + 1;
        let nd = digits.len() as i64;
        let mut s = String::new();
        if f < 0.0 {
            s.push('-');
        }
        if decpt <= -4 || decpt > nd + 15 {
            s.push_str(&digits[..1]);
            if nd > 1 {
                s.push('.');
                s.push_str(&digits[1..]);
            }
            let e = decpt - 1;
            let _ = write!(s, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
        } else if decpt <= 0 {
            s.push_str("0.");
            for _ in 0..-decpt {
                s.push('0');
            }
            s.push_str(&digits);
        } else if decpt >= nd {
            s.push_str(&digits);
            for _ in 0..decpt - nd {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..decpt as usize]);
            s.push('.');
            s.push_str(&digits[decpt as usize..]);
        }
        s
    }

    /// A number literal as jq 1.7.1 prints an unchanged literal (decNumber's
    /// to-scientific-string): `1.000` stays, `100e-2` is `1.00`, `1e2` is
    /// `1E+2`.
    #[cfg_attr(not(test), allow(dead_code))]
    fn dec_canonical(lit: &str) -> Option<String> {
        let (neg, body) = match lit.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, lit.strip_prefix('+').unwrap_or(lit)),
        };
        let (mant, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
            None => (body, 0),
        };
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        if int.is_empty() && frac.is_empty()
            || !(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let mut coef: String = format!("{int}{frac}").trim_start_matches('0').to_string();
        if coef.is_empty() {
            coef.push('0');
        }
        let exp = exp - frac.len() as i64;
        let adjusted = exp + coef.len() as i64 - 1;
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        if exp <= 0 && adjusted >= -6 {
            if exp == 0 {
                s.push_str(&coef);
            } else {
                let point = coef.len() as i64 + exp;
                if point > 0 {
                    s.push_str(&coef[..point as usize]);
                    s.push('.');
                    s.push_str(&coef[point as usize..]);
                } else {
                    s.push_str("0.");
                    for _ in 0..-point {
                        s.push('0');
                    }
                    s.push_str(&coef);
                }
            }
        } else {
            s.push_str(&coef[..1]);
            if coef.len() > 1 {
                s.push('.');
                s.push_str(&coef[1..]);
            }
            let _ = write!(
                s,
                "E{}{}",
                if adjusted < 0 { '-' } else { '+' },
                adjusted.abs()
            );
        }
        Some(s)
    }

    // --------------------------------------------------------------
    // Operators whose jq 1.7.1 semantics differ from jaq's.

    fn int_val(i: f64) -> Val {
        if (isize::MIN as f64..=isize::MAX as f64).contains(&i) {
            Val::Num(Num::Int(i as isize))
        } else {
            Val::Num(Num::from_str_radix(&format!("{i:.0}"), 10).unwrap_or(Num::Float(i)))
        }
    }

    /// `x / y`: jq refuses to divide a number by zero.
    fn div(x: Val, y: Val) -> Result<Val, Error<Val>> {
        if let (Val::Num(_), Val::Num(n)) = (&x, &y)
            && f64_of(n) == 0.0
        {
            return Err(Error::str(format!(
                "{} and {} cannot be divided because the divisor is zero",
                tv(&x),
                tv(&y)
            )));
        }
        x / y
    }

    /// jq's `dtoi`: a double to intmax_t, saturating.
    fn dtoi(f: f64) -> i64 {
        f as i64
    }

    /// `x % y`: jq truncates both to integers (saturating), NaN gives NaN,
    /// a zero divisor is an error.
    fn rem(x: Val, y: Val) -> Result<Val, Error<Val>> {
        let (Val::Num(a), Val::Num(b)) = (&x, &y) else {
            return x % y;
        };
        if let (Num::Int(a), Num::Int(b)) = (a, b)
            && *b != 0
        {
            return Ok(Val::Num(Num::Int(if *b == -1 { 0 } else { a % b })));
        }
        let (a, b) = (f64_of(a), f64_of(b));
        if a.is_nan() || b.is_nan() {
            return Ok(Val::from(f64::NAN));
        }
        let d = dtoi(b);
        if d == 0 {
            return Err(Error::str(format!(
                "{} and {} cannot be divided (remainder) because the divisor is zero",
                tv(&x),
                tv(&y)
            )));
        }
        Ok(Val::Num(Num::from_integral(if d == -1 {
            0
        } else {
            dtoi(a) % d
        })))
    }

    /// `x * y`: a string times a number repeats the string (truncating the
    /// count; null for a negative or NaN count).
    fn mul(x: Val, y: Val) -> Result<Val, Error<Val>> {
        let (s, n) = match (&x, &y) {
            (Val::TStr(s), Val::Num(n)) | (Val::Num(n), Val::TStr(s)) => (s, f64_of(n)),
            _ => return x * y,
        };
        if n < 0.0 || n.is_nan() {
            return Ok(Val::Null);
        }
        let k = n.min(i32::MAX as f64) as usize;
        Ok(Val::from(String::from_utf8_lossy(s).repeat(k)))
    }

    /// An array index as jq uses it: a fractional index is floored, NaN
    /// reads as null (a huge negative index, which `set` reports as jq's NaN
    /// error).
    fn index_key(v: Val) -> Val {
        match &v {
            Val::Num(Num::Float(_) | Num::Dec(_)) => {
                let Val::Num(n) = &v else { unreachable!() };
                let f = f64_of(n);
                if f.is_nan() {
                    Val::Num(Num::from_str_radix("-100000000000000000000", 10).expect("integer"))
                } else if f.is_infinite() {
                    v
                } else {
                    int_val(f.floor())
                }
            }
            _ => v,
        }
    }

    /// A slice bound as jq uses it: start floors, end ceils, NaN is open,
    /// out-of-range values clamp.
    fn slice_bound(v: Val, end: bool) -> Val {
        let Val::Num(n) = &v else { return v };
        if matches!(n, Num::Int(_)) {
            return v;
        }
        let f = f64_of(n);
        const LIM: f64 = 2147483647.0;
        if f.is_nan() || (end && f >= LIM) || (!end && f <= -LIM) {
            Val::Null
        } else if f >= LIM {
            int_val(LIM)
        } else if f <= -LIM {
            int_val(-LIM)
        } else {
            int_val(if end { f.ceil() } else { f.floor() })
        }
    }

    /// jq's `has`.
    fn has(t: &Val, k: &Val) -> Result<bool, String> {
        match (t, k) {
            (Val::Null, _) => Ok(false),
            (Val::Obj(o), Val::TStr(_) | Val::BStr(_)) => Ok(o.contains_key(k)),
            (Val::Arr(a), Val::Num(n)) => {
                let f = f64_of(n);
                Ok(!f.is_nan() && f.trunc() >= 0.0 && f.trunc() < a.len() as f64)
            }
            _ => Err(format!(
                "Cannot check whether {} has a {} key",
                kind(t),
                kind(k)
            )),
        }
    }

    // --------------------------------------------------------------
    // Paths (jq's jv_get / jv_set / jv_setpath / jv_delpaths).

    /// jq's `parse_slice`: the `[start, end)` a slice key selects in a
    /// sequence of `len`.
    fn parse_slice(len: usize, key: &Val) -> Option<(usize, usize)> {
        let Val::Obj(o) = key else { return None };
        let get = |k: &str| {
            o.get(&Val::from(k.to_string()))
                .cloned()
                .unwrap_or(Val::Null)
        };
        let len_f = len as f64;
        let start = match get("start") {
            Val::Null => 0.0,
            v => num_of(&v)?,
        };
        let end = match get("end") {
            Val::Null => len_f,
            v => num_of(&v)?,
        };
        let (mut start, mut end) = (
            if start.is_nan() { 0.0 } else { start },
            if end.is_nan() { len_f } else { end },
        );
        if start < 0.0 {
            start += len_f;
        }
        if end < 0.0 {
            end += len_f;
        }
        let start = start.clamp(0.0, len_f).floor();
        let end = end.clamp(0.0, len_f).ceil().max(start);
        Some((start as usize, end as usize))
    }

    fn index_err(t: &Val, k: &Val) -> String {
        match str_of(k) {
            Some(s) if s.len() < 30 => format!("Cannot index {} with string \"{s}\"", kind(t)),
            _ => format!("Cannot index {} with {}", kind(t), kind(k)),
        }
    }

    /// jq's `jv_get`: `t[k]`.
    fn get(t: &Val, k: &Val) -> Result<Val, String> {
        match (t, k) {
            (Val::Obj(o), Val::TStr(_) | Val::BStr(_)) => {
                Ok(o.get(k).cloned().unwrap_or(Val::Null))
            }
            (Val::Arr(a), Val::Num(n)) => {
                let f = f64_of(n);
                if f.is_nan() {
                    return Ok(Val::Null);
                }
                let mut i = f.floor();
                if i < 0.0 {
                    i += a.len() as f64;
                }
                Ok(if i >= 0.0 && i < a.len() as f64 {
                    a[i as usize].clone()
                } else {
                    Val::Null
                })
            }
            (Val::Arr(a), Val::Obj(_)) => match parse_slice(a.len(), k) {
                Some((s, e)) => Ok(Val::Arr(Rc::new(a[s..e].to_vec()))),
                None => Err("Start and end indices of an array slice must be numbers".into()),
            },
            (Val::TStr(b), Val::Obj(_)) => {
                let s = String::from_utf8_lossy(b);
                let chars: Vec<char> = s.chars().collect();
                match parse_slice(chars.len(), k) {
                    Some((st, e)) => Ok(Val::from(chars[st..e].iter().collect::<String>())),
                    None => Err("Start and end indices of an string slice must be numbers".into()),
                }
            }
            (Val::Arr(a), Val::Arr(b)) => {
                if b.is_empty() {
                    return Ok(Val::Null);
                }
                let hits = (0..a.len().saturating_sub(b.len() - 1))
                    .filter(|&i| a[i..i + b.len()] == b[..])
                    .map(|i| int(i as i64));
                Ok(Val::Arr(Rc::new(hits.collect())))
            }
            (Val::Null, Val::TStr(_) | Val::BStr(_) | Val::Num(_) | Val::Obj(_)) => Ok(Val::Null),
            _ => Err(index_err(t, k)),
        }
    }

    /// Arrays larger than this are refused, as jq does.
    const MAX_ARRAY: f64 = (1u64 << 29) as f64;

    /// jq's `jv_set`: `t` with `t[k]` replaced by `v`.
    fn set(t: Val, k: &Val, v: Val) -> Result<Val, String> {
        match (t, k) {
            (t @ (Val::Obj(_) | Val::Null), Val::TStr(_) | Val::BStr(_)) => {
                let mut o = match t {
                    Val::Obj(o) => o,
                    _ => Rc::new(Map::default()),
                };
                Rc::make_mut(&mut o).insert(k.clone(), v);
                Ok(Val::Obj(o))
            }
            (t @ (Val::Arr(_) | Val::Null), Val::Num(n)) => {
                let f = f64_of(n);
                // `_ix` turns a NaN index into -1e20 so that reading it
                // yields null; setting it is jq's NaN error.
                if f.is_nan() || f <= -9e19 {
                    return Err("Cannot set array element at NaN index".into());
                }
                let mut a = match t {
                    Val::Arr(a) => a,
                    _ => Rc::new(Vec::new()),
                };
                let mut i = f.trunc().clamp(i32::MIN as f64, i32::MAX as f64);
                if i < 0.0 {
                    i += a.len() as f64;
                    if i < 0.0 {
                        return Err("Out of bounds negative array index".into());
                    }
                }
                if i >= MAX_ARRAY {
                    return Err("Array index too large".into());
                }
                let i = i as usize;
                let m = Rc::make_mut(&mut a);
                if i >= m.len() {
                    m.resize(i + 1, Val::Null);
                }
                m[i] = v;
                Ok(Val::Arr(a))
            }
            (t @ (Val::Arr(_) | Val::Null), Val::Obj(_)) => {
                let mut a = match t {
                    Val::Arr(a) => a,
                    _ => Rc::new(Vec::new()),
                };
                let Some((s, e)) = parse_slice(a.len(), k) else {
                    return Err("Start and end indices of an array slice must be numbers".into());
                };
                let Val::Arr(ins) = v else {
                    return Err("A slice of an array can only be assigned another array".into());
                };
                Rc::make_mut(&mut a).splice(s..e, ins.iter().cloned());
                Ok(Val::Arr(a))
            }
            (Val::TStr(_) | Val::BStr(_), Val::Obj(_)) => Err("Cannot update string slices".into()),
            (t, k) => Err(format!(
                "Cannot update field at {} index of {}",
                kind(k),
                kind(&t)
            )),
        }
    }

    /// jq's `setpath`.
    pub fn setpath(root: Val, path: &Val, value: Val) -> Result<Val, String> {
        let Val::Arr(p) = path else {
            return Err("Path must be specified as an array".into());
        };
        setpath_at(root, p, value)
    }

    fn setpath_at(root: Val, path: &[Val], value: Val) -> Result<Val, String> {
        let Some((k, rest)) = path.split_first() else {
            return Ok(value);
        };
        let sub = get(&root, k)?;
        if rest.is_empty() {
            drop(sub);
            return set(root, k, value);
        }
        // Drop root's reference to the child first so that updating the
        // child does not copy it (jq does the same).
        let root = match k {
            Val::Obj(_) => root,
            _ => set(root, k, Val::Null)?,
        };
        let sub = setpath_at(sub, rest, value)?;
        set(root, k, sub)
    }

    /// jq's `delpaths`.
    pub fn delpaths(v: Val, paths: Val) -> Result<Val, String> {
        let Val::Arr(ps) = paths else {
            return Err("Paths must be specified as an array".into());
        };
        let mut ps: Vec<Val> = ps.iter().cloned().collect();
        ps.sort();
        let mut lists: Vec<Rc<Vec<Val>>> = Vec::with_capacity(ps.len());
        for p in ps {
            match p {
                Val::Arr(a) => lists.push(a),
                other => {
                    return Err(format!(
                        "Path must be specified as array, not {}",
                        kind(&other)
                    ));
                }
            }
        }
        if lists.is_empty() {
            return Ok(v);
        }
        if lists[0].is_empty() {
            return Ok(Val::Null);
        }
        let refs: Vec<&[Val]> = lists.iter().map(|l| &l[..]).collect();
        delpaths_sorted(v, &refs)
    }

    /// `paths` are sorted, non-empty, relative to `object`.
    fn delpaths_sorted(mut object: Val, paths: &[&[Val]]) -> Result<Val, String> {
        let mut delkeys: Vec<Val> = Vec::new();
        let mut i = 0;
        while i < paths.len() {
            let key = &paths[i][0];
            let mut j = i;
            while j < paths.len() && &paths[j][0] == key {
                j += 1;
            }
            if paths[i].len() == 1 {
                delkeys.push(key.clone());
            } else {
                let sub = get(&object, key)?;
                if !matches!(sub, Val::Null) {
                    let rest: Vec<&[Val]> = paths[i..j]
                        .iter()
                        .map(|p| &p[1..])
                        .filter(|p| !p.is_empty())
                        .collect();
                    let new = delpaths_sorted(sub, &rest)?;
                    object = set(object, key, new)?;
                }
            }
            i = j;
        }
        dels(object, delkeys)
    }

    /// jq's `jv_dels`: delete the (sorted) `keys` of `t` at once.
    fn dels(t: Val, keys: Vec<Val>) -> Result<Val, String> {
        if keys.is_empty() {
            return Ok(t);
        }
        match t {
            Val::Null => Ok(Val::Null),
            Val::Arr(a) => {
                let len = a.len();
                let mut del = vec![false; len];
                for k in &keys {
                    match k {
                        Val::Num(n) => {
                            let f = f64_of(n);
                            if f.is_nan() {
                                continue;
                            }
                            let i = if f < 0.0 {
                                len as f64 + f.trunc()
                            } else {
                                f.trunc()
                            };
                            if i >= 0.0 && i < len as f64 {
                                del[i as usize] = true;
                            }
                        }
                        Val::Obj(_) => {
                            let (s, e) = parse_slice(len, k)
                                .ok_or("Start and end indices of an array slice must be numbers")?;
                            del[s..e].iter_mut().for_each(|d| *d = true);
                        }
                        other => {
                            return Err(format!("Cannot delete {} element of array", kind(other)));
                        }
                    }
                }
                let kept = a
                    .iter()
                    .zip(del)
                    .filter(|(_, d)| !d)
                    .map(|(x, _)| x.clone());
                Ok(Val::Arr(Rc::new(kept.collect())))
            }
            Val::Obj(mut o) => {
                for k in &keys {
                    if !matches!(k, Val::TStr(_) | Val::BStr(_)) {
                        return Err(format!("Cannot delete {} field of object", kind(k)));
                    }
                    Rc::make_mut(&mut o).shift_remove(k);
                }
                Ok(Val::Obj(o))
            }
            other => Err(format!("Cannot delete fields from {}", kind(&other))),
        }
    }

    /// JSON text that jq 1.7.1 reads but plain JSON does not: the bare
    /// literals `nan` (optionally with a digit payload), `NaN` and
    /// `Infinity`, signed or not. They are swapped for marker strings,
    /// parsed, and swapped back.
    pub fn parse_nonfinite(text: &str) -> Option<Val> {
        const NAN: &str = "\"\\u0000jq-nan\"";
        const INF: &str = "\"\\u0000jq-inf\"";
        const NINF: &str = "\"\\u0000jq--inf\"";
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len() + 16);
        let (mut i, mut changed) = (0, false);
        while i < b.len() {
            match b[i] {
                b'"' => {
                    // copy the string literal verbatim
                    let start = i;
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    i = (i + 1).min(b.len());
                    out.push_str(&text[start..i]);
                }
                c if c == b'-' || c.is_ascii_alphabetic() => {
                    let start = i;
                    let neg = c == b'-';
                    let mut j = i + usize::from(neg);
                    while j < b.len() && (b[j].is_ascii_alphanumeric()) {
                        j += 1;
                    }
                    let word = &text[start + usize::from(neg)..j];
                    let lower = word.to_ascii_lowercase();
                    let marker = if lower.starts_with("nan")
                        && lower[3..].bytes().all(|d| d.is_ascii_digit())
                    {
                        Some(NAN)
                    } else if lower == "infinity" || lower == "inf" {
                        Some(if neg { NINF } else { INF })
                    } else {
                        None
                    };
                    match marker {
                        Some(m) => {
                            out.push_str(m);
                            changed = true;
                        }
                        None => out.push_str(&text[start..j.max(start + 1)]),
                    }
                    i = j.max(start + 1);
                }
                _ => {
                    let start = i;
                    i += 1;
                    while i < b.len() && !text.is_char_boundary(i) {
                        i += 1;
                    }
                    out.push_str(&text[start..i]);
                }
            }
        }
        if !changed {
            return None;
        }
        let v = jaq_json::read::parse_single(out.as_bytes()).ok()?;
        Some(unmark(v))
    }

    fn unmark(v: Val) -> Val {
        match v {
            Val::TStr(ref b) if b.starts_with(b"\0jq-") => match &b[..] {
                b"\0jq-nan" => Val::from(f64::NAN),
                b"\0jq-inf" => Val::from(f64::INFINITY),
                b"\0jq--inf" => Val::from(f64::NEG_INFINITY),
                _ => v,
            },
            Val::Arr(a) => Val::Arr(Rc::new(a.iter().cloned().map(unmark).collect())),
            Val::Obj(o) => Val::obj(
                o.iter()
                    .map(|(k, x)| (k.clone(), unmark(x.clone())))
                    .collect(),
            ),
            v => v,
        }
    }

    // --------------------------------------------------------------
    // @base64d / @base32d as jq 1.7.1 decodes them.

    fn base64d(v: &Val) -> Result<Val, String> {
        let s = str_of(v).unwrap_or_default();
        let val = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            } as u32)
        };
        let mut out = Vec::new();
        let (mut code, mut n) = (0u32, 0);
        for &c in s.as_bytes().iter().take_while(|&&c| c != b'=') {
            let d = val(c).ok_or_else(|| format!("{} is not valid base64 data", tv(v)))?;
            code = code << 6 | d;
            n += 1;
            if n == 4 {
                out.extend_from_slice(&[(code >> 16) as u8, (code >> 8) as u8, code as u8]);
                code = 0;
                n = 0;
            }
        }
        match n {
            3 => out.extend_from_slice(&[(code >> 10) as u8, (code >> 2) as u8]),
            2 => out.push((code >> 4) as u8),
            1 => return Err(format!("{} trailing base64 byte found", tv(v))),
            _ => {}
        }
        Ok(Val::from(String::from_utf8_lossy(&out).into_owned()))
    }

    fn base32d(v: &Val) -> Result<Val, String> {
        let s = str_of(v).unwrap_or_default();
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u64, 0);
        for &c in s.as_bytes().iter().take_while(|&&c| c != b'=') {
            let d = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a',
                b'2'..=b'7' => c - b'2' + 26,
                _ => return Err(format!("{} is not valid base32 data", tv(v))),
            } as u64;
            acc = acc << 5 | d;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Ok(Val::from(String::from_utf8_lossy(&out).into_owned()))
    }

    // --------------------------------------------------------------
    // jaq's error messages, worded as jq's.

    fn parse_val(s: &str) -> Option<Val> {
        jaq_json::read::parse_single(s.as_bytes()).ok()
    }

    /// jq 1.7.1's wording of a jaq error message, if it is one of jaq's
    /// whose jq counterpart is known.
    pub fn jq_message(msg: &str) -> Option<String> {
        if let Some(v) = msg
            .strip_prefix("cannot use ")
            .and_then(|m| m.strip_suffix(" as iterable (array or object)"))
            .and_then(parse_val)
        {
            return Some(format!("Cannot iterate over {}", tv(&v)));
        }
        if let Some(rest) = msg.strip_prefix("cannot index ") {
            // "cannot index T with K": find the split where both parse.
            for (i, _) in rest.match_indices(" with ") {
                if let (Some(t), Some(k)) = (parse_val(&rest[..i]), parse_val(&rest[i + 6..])) {
                    return Some(index_err(&t, &k));
                }
            }
        }
        if let Some(rest) = msg.strip_prefix("cannot calculate ") {
            for (op, verb) in [
                (" + ", "added"),
                (" - ", "subtracted"),
                (" * ", "multiplied"),
                (" / ", "divided"),
                (" % ", "divided"),
            ] {
                for (i, _) in rest.match_indices(op) {
                    if let (Some(l), Some(r)) = (parse_val(&rest[..i]), parse_val(&rest[i + 3..])) {
                        return Some(format!("{} and {} cannot be {verb}", tv(&l), tv(&r)));
                    }
                }
            }
        }
        if let Some(v) = msg
            .strip_prefix("invalid path expression with input ")
            .and_then(parse_val)
        {
            return Some(format!(
                "Invalid path expression with result {}",
                dump_trunc(&v, 30)
            ));
        }
        if let Some(v) = msg.strip_suffix(" has no length").and_then(parse_val) {
            return Some(format!("{} has no length", tv(&v)));
        }
        if let Some(v) = msg
            .strip_prefix("cannot use ")
            .and_then(|m| m.strip_suffix(" as number"))
            .and_then(parse_val)
        {
            return Some(format!("{} number required", tv(&v)));
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn doubles_print_like_jq() {
            assert_eq!(fmt_f64(3.0), "3");
            assert_eq!(fmt_f64(1.5), "1.5");
            assert_eq!(fmt_f64(-0.25), "-0.25");
            assert_eq!(fmt_f64(0.0001), "0.0001");
            assert_eq!(fmt_f64(0.00001), "1e-05");
            assert_eq!(fmt_f64(1e15), "1000000000000000");
            assert_eq!(fmt_f64(1e17), "1e+17");
            assert_eq!(fmt_f64(123456789012345680.0), "123456789012345680");
            assert_eq!(fmt_f64(f64::INFINITY), "1.7976931348623157e+308");
            assert_eq!(fmt_f64(1e100), "1e+100");
        }

        #[test]
        fn literals_print_like_decnumber() {
            assert_eq!(dec_canonical("1.000").as_deref(), Some("1.000"));
            assert_eq!(dec_canonical("100e-2").as_deref(), Some("1.00"));
            assert_eq!(dec_canonical("1e2").as_deref(), Some("1E+2"));
            assert_eq!(dec_canonical("0.00001").as_deref(), Some("0.00001"));
            assert_eq!(dec_canonical("1E-7").as_deref(), Some("1E-7"));
            assert_eq!(dec_canonical("-1.5").as_deref(), Some("-1.5"));
        }

        #[test]
        fn messages_worded_as_jq() {
            assert_eq!(
                jq_message("cannot use 123 as iterable (array or object)").as_deref(),
                Some("Cannot iterate over number (123)")
            );
            assert_eq!(
                jq_message("cannot index 1 with \"a\"").as_deref(),
                Some("Cannot index number with string \"a\"")
            );
            assert_eq!(
                jq_message("cannot calculate \"1,2,\" + {\"a\":{\"b\":{\"c\":33}}}").as_deref(),
                Some("string (\"1,2,\") and object ({\"a\":{\"b\":{...) cannot be added")
            );
            assert_eq!(jq_message("something else"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(code: &str, input: &str) -> String {
        match Program::compile(code)
            .unwrap()
            .first(parse_json(input).unwrap())
        {
            First::Value(v) => crate::json_out::to_json(&v),
            First::Empty => "<empty>".into(),
            First::Error(e) => format!("<error {e}>"),
        }
    }

    fn all(code: &str, input: &str) -> String {
        let outs = Program::compile(code)
            .unwrap()
            .all(parse_json(input).unwrap(), &[], 100);
        outs.into_iter()
            .map(|r| match r {
                Ok(v) => crate::json_out::to_json(&v),
                Err(e) => format!("<error {e}>"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn from_entries_accepts_aws_tags() {
        assert_eq!(
            first(
                "from_entries",
                r#"[{"Key":"a","Value":"b"},{"key":"c","value":1}]"#
            ),
            r#"{"a":"b","c":1}"#
        );
        assert_eq!(
            first("with_entries({Key: .key, Value: .value})", r#"{"a":"b"}"#),
            r#"{"a":"b"}"#
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
            first(
                r#"strptime("%Y-%m-%dT%H:%M:%SZ") | todate"#,
                r#""2015-03-05T23:51:47Z""#
            ),
            r#""2015-03-05T23:51:47Z""#
        );
    }

    #[test]
    fn compile_error_has_position() {
        let e = Program::compile(".a | foo(").err().expect("compile error");
        assert!(e.position.is_some(), "{e:?}");
        let e = Program::compile(".a | nosuchfn")
            .err()
            .expect("compile error");
        assert_eq!(e.position, Some(5), "{e:?}");
    }

    #[test]
    fn updates_create_what_is_missing() {
        assert_eq!(first(".a.b = 1", "null"), r#"{"a":{"b":1}}"#);
        assert_eq!(first(".a[2] = 1", "{}"), r#"{"a":[null,null,1]}"#);
        assert_eq!(first(".x += 1", "null"), r#"{"x":1}"#);
        assert_eq!(
            first("setpath([\"a\",\"b\"]; 1)", "null"),
            r#"{"a":{"b":1}}"#
        );
        assert_eq!(first("del(.[0,1])", "[1,2,3]"), "[3]");
        assert_eq!(first(".[] |= empty", "[1,2,3]"), "[]");
        assert_eq!(
            all("(.a, .b) = range(2)", "null"),
            r#"{"a":0,"b":0} {"a":1,"b":1}"#
        );
    }

    #[test]
    fn numbers_as_jq() {
        assert_eq!(first("[1,2,3] | .[4/2]", "null"), "3");
        assert_eq!(
            first("try (1/0) catch .", "null"),
            r#""number (1) and number (0) cannot be divided because the divisor is zero""#
        );
        assert_eq!(first("4/2 | tostring", "null"), r#""2""#);
        assert_eq!(first(r#""\(1.5 * 2)""#, "null"), r#""3""#);
        assert_eq!(first(".[1:3]", "null"), "null");
        assert_eq!(first("[range(10)] | .[1.2:3.5]", "null"), "[1,2,3]");
    }

    #[test]
    fn destructuring_alternatives() {
        assert_eq!(all(".[] as [$a] ?// $a | $a", "[[3],4]"), "3 4");
    }

    #[test]
    fn reduce_and_foreach_as_jq_1_7_1() {
        assert_eq!(first("reduce range(3) as $x (0; empty)", "null"), "null");
        assert_eq!(
            first(
                "reduce range(5) as $x (0; if $x == 2 then empty else . + $x end)",
                "null"
            ),
            "7"
        );
        assert_eq!(
            first(
                "[foreach range(4) as $x (0; if $x == 1 then empty else . + 1 end; [$x, .])]",
                "null"
            ),
            "[[0,1],[2,1],[3,2]]"
        );
        assert_eq!(
            first("[foreach (1,2) as $x (0; (. + $x, . - $x))]", "null"),
            "[1,-1,1,-3]"
        );
        assert_eq!(first("[limit(3; range(10))]", "null"), "[0,1,2]");
        assert_eq!(first("try (error(\"x\") // 1) catch .", "null"), r#""x""#);
    }

    #[test]
    fn errors_worded_as_jq() {
        assert_eq!(
            first("try (1 | .[]) catch .", "null"),
            r#""Cannot iterate over number (1)""#
        );
        assert_eq!(
            first("try (1 | .a) catch .", "null"),
            r#""Cannot index number with string \"a\"""#
        );
        assert_eq!(
            first("try ({} + 1) catch .", "null"),
            r#""object ({}) and number (1) cannot be added""#
        );
        assert_eq!(first(r#"error("x")"#, "null"), "<error x>");
        assert_eq!(
            first(r#"error({"a":1})"#, "null"),
            r#"<error {"a":1} (not a string)>"#
        );
    }

    #[test]
    fn strings_and_numbers_as_jq() {
        assert_eq!(
            first(
                "[.[] | try tonumber catch \"bad\"]",
                r#"["12", "2a", " 3 "]"#
            ),
            r#"[12,"bad",3]"#
        );
        assert_eq!(
            first("[.[] | ltrimstr(\"a\")]", r#"["ab", 1, null]"#),
            r#"["b",1,null]"#
        );
        assert_eq!(first("[.[length / 2]]", "[1,2,3]"), "[2]");
        assert_eq!(first("has(nan)", "[1]"), "false");
        assert_eq!(first("[.[] | isnan]", "[NaN, nan]"), "[true,true]");
        assert_eq!(
            first("implode", "[65, -1, 1114112]"),
            "\"A\u{fffd}\u{fffd}\""
        );
        assert_eq!(
            first("[.[] * \"ab\"]", "[0, 1.5, 2, -1]"),
            r#"["","ab","abab",null]"#
        );
        assert_eq!(
            first("[5 % (2, -1)], (try (1 % 0) catch .)", "null"),
            "[1,0]"
        );
        assert_eq!(first("1e1000 | tojson", "null"), r#""1e1000""#);
        assert_eq!(
            first("[.1, 1.5e-5, 1e17] | tojson", "null"),
            r#""[0.1,1.5e-5,1e17]""#
        );
        assert_eq!(
            first("[0.1 + 0.2, 3e17 * 1, 1 / 3] | tojson", "null"),
            r#""[0.30000000000000004,3e+17,0.3333333333333333]""#
        );
    }

    #[test]
    fn patterns_and_directives() {
        assert_eq!(
            first(". as {$a, $b: [$c]} | [$a, $b, $c]", r#"{"a":1,"b":[2]}"#),
            "[1,[2],2]"
        );
        assert_eq!(
            all(
                ".[] as [$a] ?// $a | if ($a | type) == \"number\" then $a else error(\"no\") end",
                "[[1],2]"
            ),
            "1 2"
        );
        assert!(Program::compile("{(0): 1}").is_err());
        assert!(Program::compile("module []; .").is_err());
        assert!(Program::compile(r#"import "x" as $x; $x"#).is_err());
        assert_eq!(
            first("try (1 | .[0] = 1) catch .", "null"),
            r#""Cannot index number with number""#
        );
        assert_eq!(
            first("[.[] | select(. > 1)] | .[0] += 10", "[1,2,3]"),
            "[12,3]"
        );
    }

    #[test]
    fn walk_is_bottom_up() {
        assert_eq!(
            first(
                "walk(if type == \"array\" then sort else . end)",
                "[[3,1],[2]]"
            ),
            "[[1,3],[2]]"
        );
    }
}
