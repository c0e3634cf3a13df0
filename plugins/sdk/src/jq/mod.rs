//! The JQ engine: one [`Filter`] type through which mappings and `run-jq`
//! (so `berth jq` and the jq 1.7.1 conformance suite) compile and run every
//! expression. A filter evaluates on the fast path ([`crate::fast`], an
//! accelerator for the common mapping expressions, run on the input's JSON
//! text) when the expression is in its subset, and on jaq with jq 1.7
//! behaviour otherwise; [`Input`] holds one parsed input for any number of
//! filters. In shadow mode (debug builds, and release plugins built with
//! `scripts/build-plugins --shadow`, which `scripts/test` uses) every
//! fast-path evaluation is repeated on jaq and a difference panics
//! (see [`Filter`]). Regular expressions, for both paths, are fancy-regex with
//! jq's flags and search loop ([`regex`]).
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
//!    [`COMPAT_DEFS`] and a few native helpers ([`natives`], [`regex`]).
//!
//! A filter the front end cannot read (a syntax error, a module directive)
//! is compiled as written, so that errors are jaq's and point into the
//! original text.

use std::rc::Rc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

pub use filter::{Field, Filter, Input, Outcome};

type Data = data::JustLut<Val>;
type JaqFilter = jaq_core::Filter<Data>;

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
/// `_ex`, `_tostr`, `_jqerr` ([`natives`]). The regex builtins are jq
/// 1.7.1's definitions on the native `_match_impl` ([`regex`]); jaq-std's own
/// (`sub` yields a cartesian product of replacements, `scan` drops groups
/// that did not take part) are shadowed here.
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
def match(re; flags): _match_impl(re; flags; false)[];
def test(re; flags): _match_impl(re; flags; true);
def _capture_object: reduce (.captures[] | select(.name != null)) as $c ({}; . + {($c.name): $c.string});
def capture(re; flags): match(re; flags) | _capture_object;
def scan($re; $flags): match($re; "g" + $flags)
  | if (.captures | length) > 0 then [.captures[].string] else .string end;
def scan($re): scan($re; null);
def split($re; flags): split_($re; "g" + flags);
def splits($re; flags): split($re; flags)[];
def splits($re): splits($re; null);
def sub($re; str; $flags): . as $in
  | (reduce _match_impl($re; $flags; false)[] as $edit ({result: [], previous: 0};
        $in[.previous:($edit | .offset)] as $gap
        | [$edit | _capture_object | str] as $inserts
        | .result as $r
        | {result: [range(0; [($r | length), ($inserts | length)] | max) as $ix
                    | if $ix < ($inserts | length) then $r[$ix] + $gap + $inserts[$ix] else $r[$ix] end],
           previous: ($edit | .offset + .length)})
     | .result[] + $in[.previous:])
    // $in;
def sub($re; str): sub($re; str; "");
def gsub($re; str; $flags): sub($re; str; $flags + "g");
def gsub($re; str): sub($re; str; "g");
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
    filter: JaqFilter,
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
        // jaq-std's regex natives run on regex-bites; ours (same names and
        // shapes, fancy-regex, jq's flags and search loop) replace them.
        let funs = jaq_core::funs()
            .chain(jaq_std::funs().filter(|(name, _, _)| !regex::JAQ_STD_NATIVES.contains(name)))
            .chain(jaq_json::funs())
            .chain(natives::funs())
            .chain(regex::funs());
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

/// `type (value)` as jq's error messages show a value.
pub(crate) fn type_value(v: &Val) -> String {
    natives::tv(v)
}

mod filter;
mod front;
mod natives;
pub(crate) mod regex;

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

    /// The regex builtins as jq 1.7.1 defines them, on fancy-regex.
    #[test]
    fn regex_builtins_as_jq_1_7_1() {
        // One result per output of the replacement, across all matches.
        assert_eq!(
            all(
                r#"gsub("(?<a>.)"; "\(.a|ascii_upcase)", "\(.a|ascii_downcase)", "c")"#,
                r#""aB""#
            ),
            r#""AB" "ab" "cc""#
        );
        assert_eq!(all(r#"sub("x"; "y", "z")"#, r#""abc""#), r#""abc""#);
        assert_eq!(first(r#"gsub("$"; "!")"#, r#""ab""#), r#""ab!""#);
        assert_eq!(first(r#"gsub(""; "-")"#, r#""aé""#), r#""-a-é-""#);
        assert_eq!(
            first(r#"gsub("(?<x>[a-z])(?<y>\\d)?"; "\(.x)\(.y)")"#, r#""a1b""#),
            r#""a1bnull""#
        );
        // A group that did not take part: offset -1, string null.
        assert_eq!(
            first(
                r#"[match("(a)?b"; "g") | .captures[0].offset]"#,
                r#""b ab""#
            ),
            "[-1,2]"
        );
        assert_eq!(
            first(r#"capture("(?<a>x)?(?<b>y)")"#, r#""y""#),
            r#"{"a":null,"b":"y"}"#
        );
        assert_eq!(
            all(r#"scan("(a)?(b)")"#, r#""b ab""#),
            r#"[null,"b"] ["a","b"]"#
        );
        assert_eq!(all(r#"scan("c")"#, r#""abcdc""#), r#""c" "c""#);
        assert_eq!(
            first(r#"[splits(", *")]"#, r#""a, b,c""#),
            r#"["a","b","c"]"#
        );
        assert_eq!(first(r#"split(", *"; null)"#, r#""a, b""#), r#"["a","b"]"#);
        assert_eq!(first(r#"[splits("")]"#, r#""ab""#), r#"["","a","b",""]"#);
        assert_eq!(first(r#"test("A"; "i")"#, r#""a""#), "true");
        assert_eq!(first(r#"test("(?<=a)b")"#, r#""ab""#), "true");
        assert_eq!(
            first(r#"[match("é+"; "g") | .offset]"#, r#""aéébé""#),
            "[1,4]"
        );
        assert_eq!(
            first(r#"try test("a"; "q") catch ."#, r#""a""#),
            r#""q is not a valid modifier string""#
        );
        assert_eq!(
            first(r#"try test("a") catch ."#, "1"),
            r#""number (1) cannot be matched, as it is not a string""#
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
