//! jq 1.7.1's own test suite, run through Berth's sandboxed JQ engine.
//!
//! The `.test` files under `tests/jq-conformance/jq-1.7.1/` are jq's, vendored
//! unchanged (see the `COPYING` next to them). This runner reads them the way
//! jq's `--run-tests` does (`src/jq_test.c`):
//!
//! - blank lines and lines starting with `#` (after spaces/tabs) between
//!   cases are skipped;
//! - a case is a program line, an input line, then expected outputs, one JSON
//!   value a line, until a blank or `#` line (or the end of the file);
//! - `%%FAIL` / `%%FAIL IGNORE MSG` make the next case "must not compile":
//!   the program line is followed by one line with jq's error message. We
//!   count such a case as passed when compilation fails and never compare
//!   the message (jaq's messages differ from jq's);
//! - a program that fails to compile counts as failed and the lines after
//!   it are skipped up to the next blank line;
//! - outputs are compared with expected values by value (jq's `jv_equal`):
//!   numbers numerically (so `1.0` equals `1`), object keys in any order;
//! - fewer outputs than expected, or an error before all expected outputs,
//!   fails the case; an extra value fails it; an error after all expected
//!   outputs does not.
//!
//! Each case is one `run_jq` call into the sandbox, reusing one tenant so the
//! instance is reused. A case that traps or times out fails without
//! affecting the next one.
//!
//! Known failures are listed in `tests/jq-conformance/expected-failures.txt`
//! as `FILE:LINE<TAB>reason` (LINE is the program's line). The test fails
//! when a case fails that is not listed, when a listed case passes, and when
//! `jq.test` + `man.test` pass below 95%. `BERTH_JQ_BLESS=1` rewrites the
//! list from this run, keeping existing reasons and writing `TODO` for new
//! ones. `BERTH_JQ_VERBOSE=1` prints every failing case in detail.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth::limits::{EngineLimits, Limits};
use berth::plugin::{AotCache, JqOutput, JqRequest, LoadedPlugin, PluginEngine, Registry, Tenant};

const PLUGIN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugins");
const SUITE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/jq-conformance/jq-1.7.1");
const EXPECTED_FAILURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/jq-conformance/expected-failures.txt"
);

/// jq's test files, in the order they are reported.
const FILES: [&str; 6] = [
    "jq.test",
    "man.test",
    "manonig.test",
    "onig.test",
    "base64.test",
    "optional.test",
];

/// Files whose combined pass rate is asserted.
const HEADLINE: [&str; 2] = ["jq.test", "man.test"];
const MIN_HEADLINE_RATE: f64 = 0.95;

// ---------------------------------------------------------------------------
// Reading jq's test-file format.

/// A test case as jq's runner reads it.
#[derive(Debug, Clone)]
struct Case {
    file: &'static str,
    /// 1-based line number of the program.
    line: usize,
    program: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Run on `input`, expecting `expected` (line number, text).
    Run {
        input: Option<String>,
        expected: Vec<(usize, String)>,
    },
    /// `%%FAIL` (message checked by jq) or `%%FAIL IGNORE MSG`.
    MustFail { message: Option<String> },
}

/// jq_test.c `skipline`: blank, or `#` after leading spaces and tabs.
fn skipline(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#') || t == "\r"
}

/// Reads the cases of one file. Where the next case starts depends on the
/// run: when a program fails to compile jq skips to the first *blank* line
/// after the program, whereas a compiled case ends at a blank *or* comment
/// line. So the runner reads one case, runs it, and on a compile error
/// rewinds to `resume_if_uncompiled` and skips as jq does.
struct Reader<'a> {
    file: &'static str,
    lines: Vec<&'a str>,
    /// Index of the next line to read (0-based).
    pos: usize,
    /// For the case just read: the index of the line after its program.
    resume_if_uncompiled: Option<usize>,
}

impl<'a> Reader<'a> {
    fn new(file: &'static str, text: &'a str) -> Self {
        // `str::lines` drops a trailing "\r" too; jq's files have none.
        Self {
            file,
            lines: text.lines().collect(),
            pos: 0,
            resume_if_uncompiled: None,
        }
    }

    fn next_line(&mut self) -> Option<(usize, &'a str)> {
        let l = self.lines.get(self.pos)?;
        self.pos += 1;
        Some((self.pos, l))
    }

    /// The next case, or None at the end of the file.
    fn next_case(&mut self) -> Option<Case> {
        let mut must_fail: Option<bool> = None; // Some(check_msg)
        loop {
            let (n, line) = self.next_line()?;
            if skipline(line) {
                continue;
            }
            if line == "%%FAIL" || line == "%%FAIL IGNORE MSG" {
                must_fail = Some(line == "%%FAIL");
                continue;
            }
            let program = line.to_string();
            if let Some(check_msg) = must_fail {
                let message = self.next_line().map(|(_, m)| m.to_string());
                return Some(Case {
                    file: self.file,
                    line: n,
                    program,
                    kind: Kind::MustFail {
                        message: if check_msg { message } else { None },
                    },
                });
            }
            let after_program = self.pos;
            let input = self.next_line().map(|(_, l)| l.to_string());
            let mut expected = Vec::new();
            if input.is_some() {
                while let Some((m, l)) = self.next_line() {
                    if skipline(l) {
                        break;
                    }
                    expected.push((m, l.to_string()));
                }
            }
            let case = Case {
                file: self.file,
                line: n,
                program,
                kind: Kind::Run { input, expected },
            };
            self.resume_if_uncompiled = Some(after_program);
            return Some(case);
        }
    }
}

// ---------------------------------------------------------------------------
// JSON values compared as jq's jv_equal does.

#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl PartialEq for J {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (J::Null, J::Null) => true,
            (J::Bool(a), J::Bool(b)) => a == b,
            // jq: NaN equals nothing, not even NaN.
            (J::Num(a), J::Num(b)) => a == b,
            (J::Str(a), J::Str(b)) => a == b,
            (J::Arr(a), J::Arr(b)) => a == b,
            (J::Obj(a), J::Obj(b)) => {
                let a: BTreeMap<&str, &J> = a.iter().map(|(k, v)| (k.as_str(), v)).collect();
                let b: BTreeMap<&str, &J> = b.iter().map(|(k, v)| (k.as_str(), v)).collect();
                a == b
            }
            _ => false,
        }
    }
}

/// A JSON parser accepting what jq 1.7.1's `jv_parse` accepts in the test
/// files: plain JSON plus the `nan`/`NaN`/`Infinity` literals (decNumber's).
/// Duplicate object keys keep the last value, as jq does.
struct P<'a> {
    s: &'a [u8],
    i: usize,
}

fn parse_json(text: &str) -> Result<J, String> {
    let mut p = P {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing text at byte {}", p.i));
    }
    Ok(v)
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<J, String> {
        self.ws();
        match self.s.get(self.i) {
            None => Err("unexpected end".into()),
            Some(b'{') => {
                self.i += 1;
                let mut kv: Vec<(String, J)> = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(J::Obj(kv));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return Err(format!("object key must be a string at byte {}", self.i));
                    }
                    let k = self.string()?;
                    self.eat(b':')?;
                    let v = self.value()?;
                    kv.retain(|(k2, _)| *k2 != k);
                    kv.push((k, v));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(J::Obj(kv));
                        }
                        _ => return Err(format!("expected `,` or `}}` at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(J::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(J::Arr(a));
                        }
                        _ => return Err(format!("expected `,` or `]` at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(J::Str(self.string()?)),
            Some(_) => {
                // A literal token: everything up to a structural character.
                let start = self.i;
                while self.i < self.s.len()
                    && !matches!(
                        self.s[self.i],
                        b' ' | b'\t'
                            | b'\n'
                            | b'\r'
                            | b','
                            | b']'
                            | b'}'
                            | b':'
                            | b'['
                            | b'{'
                            | b'"'
                    )
                {
                    self.i += 1;
                }
                let tok = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                literal(tok)
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // opening quote
        let mut out: Vec<u16> = Vec::new();
        let mut s = String::new();
        let flush = |out: &mut Vec<u16>, s: &mut String| {
            s.extend(char::decode_utf16(out.drain(..)).map(|r| r.unwrap_or('\u{fffd}')));
        };
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            match c {
                b'"' => {
                    self.i += 1;
                    flush(&mut out, &mut s);
                    return Ok(s);
                }
                b'\\' => {
                    let e = *self.s.get(self.i + 1).ok_or("unterminated escape")?;
                    self.i += 2;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u16::from_str_radix(h, 16).ok())
                                .ok_or("bad \\u escape")?;
                            self.i += 4;
                            out.push(hex);
                            continue;
                        }
                        other => return Err(format!("invalid escape \\{}", other as char)),
                    };
                    flush(&mut out, &mut s);
                    s.push(ch);
                }
                _ => {
                    flush(&mut out, &mut s);
                    // Copy one UTF-8 character.
                    let rest = std::str::from_utf8(&self.s[self.i..])
                        .map_err(|e| format!("invalid UTF-8: {e}"))?;
                    let ch = rest.chars().next().expect("non-empty");
                    s.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }
}

fn literal(tok: &str) -> Result<J, String> {
    match tok {
        "null" => return Ok(J::Null),
        "true" => return Ok(J::Bool(true)),
        "false" => return Ok(J::Bool(false)),
        _ => {}
    }
    let (neg, body) = match tok.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    let lower = body.to_ascii_lowercase();
    let f = if lower.starts_with("nan") && lower[3..].bytes().all(|b| b.is_ascii_digit()) {
        f64::NAN
    } else if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        body.parse::<f64>()
            .map_err(|_| format!("invalid numeric literal `{tok}`"))?
    } else {
        return Err(format!("invalid literal `{tok}`"));
    };
    Ok(J::Num(if neg { -f } else { f }))
}

// ---------------------------------------------------------------------------
// Running.

#[derive(Debug, Clone)]
struct Outcome {
    passed: bool,
    /// Why it failed (for the report).
    detail: String,
}

fn pass() -> Outcome {
    Outcome {
        passed: true,
        detail: String::new(),
    }
}

fn fail(detail: impl Into<String>) -> Outcome {
    Outcome {
        passed: false,
        detail: detail.into(),
    }
}

enum Ran {
    /// The program did not compile (message).
    NoCompile(String),
    /// Outputs (values as JSON text, or an error ending the run).
    Outputs(Vec<JqOutput>),
    /// The sandbox call itself failed (trap, timeout, ...).
    Broken(String),
}

async fn run(plugin: &LoadedPlugin, tenant: &Tenant, program: &str, input: Option<&str>) -> Ran {
    let req = JqRequest {
        filter: program.to_string(),
        inputs: input.map(|i| vec![i.to_string()]).unwrap_or_default(),
        null_input: input.is_none(),
        vars: Vec::new(),
    };
    match plugin.run_jq(tenant, &req).await {
        Ok(Ok(outs)) => Ran::Outputs(outs),
        Ok(Err(e)) => Ran::NoCompile(e.message),
        Err(e) => Ran::Broken(e.to_string()),
    }
}

fn show(o: &JqOutput) -> String {
    match o {
        JqOutput::Value(v) => v.clone(),
        JqOutput::Error(e) => format!("<error: {e}>"),
    }
}

/// Compare outputs with expected values as jq_test.c does.
fn judge(expected: &[(usize, String)], outs: &[JqOutput]) -> Outcome {
    let mut outs = outs.iter();
    for (n, text) in expected {
        let want = match parse_json(text) {
            Ok(v) => v,
            Err(e) => {
                return fail(format!(
                    "expected value on line {n} is not JSON ({e}): {text}"
                ));
            }
        };
        match outs.next() {
            None => {
                return fail(format!(
                    "insufficient results: expected {text}, got nothing"
                ));
            }
            Some(JqOutput::Error(e)) => {
                return fail(format!("expected {text}, got error: {e}"));
            }
            Some(JqOutput::Value(got)) => match parse_json(got) {
                Err(e) => return fail(format!("output is not JSON ({e}): {got}")),
                Ok(g) if g != want => return fail(format!("expected {text}, got {got}")),
                Ok(_) => {}
            },
        }
    }
    match outs.next() {
        Some(JqOutput::Value(v)) => fail(format!("superfluous result: {v}")),
        // An error after all expected outputs is not a result (jq ignores it).
        _ => pass(),
    }
}

struct Result1 {
    case: Case,
    outcome: Outcome,
    outputs: Vec<String>,
}

async fn run_file(plugin: &LoadedPlugin, tenant: &Tenant, file: &'static str) -> Vec<Result1> {
    let path = Path::new(SUITE_DIR).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut reader = Reader::new(file, &text);
    let mut results = Vec::new();
    while let Some(case) = reader.next_case() {
        let resume = reader.resume_if_uncompiled.take();
        let (outcome, outputs) = match &case.kind {
            Kind::MustFail { message } => match run(plugin, tenant, &case.program, None).await {
                Ran::NoCompile(ours) => (pass(), vec![format!("<compile error: {ours}>")]),
                Ran::Outputs(o) => (
                    fail(format!(
                        "compiled, but jq rejects this program{}",
                        message
                            .as_ref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    )),
                    o.iter().map(show).collect(),
                ),
                Ran::Broken(e) => (fail(format!("trap: {e}")), vec![]),
            },
            Kind::Run { input: None, .. } => (fail("no input line before end of file"), vec![]),
            Kind::Run {
                input: Some(input),
                expected,
            } => match run(plugin, tenant, &case.program, Some(input)).await {
                Ran::NoCompile(msg) => {
                    // jq skips to the first blank line after the program.
                    if let Some(at) = resume {
                        reader.pos = at;
                        while let Some((_, l)) = reader.next_line() {
                            if l.trim_end_matches('\r').is_empty() {
                                break;
                            }
                        }
                    }
                    (fail(format!("does not compile: {msg}")), vec![])
                }
                Ran::Broken(e) => (fail(format!("trap: {e}")), vec![]),
                Ran::Outputs(o) => {
                    if let Some(JqOutput::Error(e)) = o.first()
                        && e.starts_with("invalid JSON input")
                    {
                        (fail(format!("input rejected: {e}")), vec![show(&o[0])])
                    } else {
                        (judge(expected, &o), o.iter().map(show).collect())
                    }
                }
            },
        };
        results.push(Result1 {
            case,
            outcome,
            outputs,
        });
    }
    results
}

// ---------------------------------------------------------------------------
// The expected-failures list.

fn key(file: &str, line: usize) -> String {
    format!("{file}:{line}")
}

/// `FILE:LINE` → reason, from the checked-in list.
fn read_expected() -> BTreeMap<String, String> {
    let text = match std::fs::read_to_string(EXPECTED_FAILURES) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("cannot read {EXPECTED_FAILURES}: {e}"),
    };
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, reason) = line.split_once('\t').unwrap_or_else(|| {
            panic!(
                "{EXPECTED_FAILURES}:{}: expected `FILE:LINE<TAB>reason`",
                i + 1
            )
        });
        assert!(
            out.insert(k.trim().to_string(), reason.trim().to_string())
                .is_none(),
            "{EXPECTED_FAILURES}:{}: {k} listed twice",
            i + 1
        );
    }
    out
}

const HEADER: &str = "\
# jq 1.7.1 test cases (tests/jq-conformance/jq-1.7.1/*.test) that Berth's
# sandboxed JQ engine (jq::Filter in plugins/sdk/src/jq/: jaq with COMPAT_DEFS, and the fast path) fails.
# One line per case: FILE:LINE<TAB>reason, LINE being the program's line.
# Checked by tests/tests/jq_conformance.rs: a failing case missing here is a
# regression, a listed case that passes must be removed.
# Regenerate with BERTH_JQ_BLESS=1 (keeps reasons, writes TODO for new ones).
";

fn write_expected(failures: &[(String, String)]) {
    let mut text = String::from(HEADER);
    for (k, reason) in failures {
        let _ = writeln!(text, "{k}\t{reason}");
    }
    std::fs::write(EXPECTED_FAILURES, text)
        .unwrap_or_else(|e| panic!("cannot write {EXPECTED_FAILURES}: {e}"));
}

// ---------------------------------------------------------------------------

async fn open_plugin() -> (Arc<Registry>, Arc<LoadedPlugin>) {
    let dir = PathBuf::from(PLUGIN_DIR);
    let generic = dir.join("generic.wasm");
    assert!(
        generic.exists(),
        "{} is missing: build the plugins first with `scripts/build-plugins`",
        generic.display()
    );
    let engine = PluginEngine::new(EngineLimits::default()).expect("wasmtime engine");
    let cache = AotCache::at(dir.join("../test-aot-cache")).expect("AOT cache dir");
    let registry = Registry::open(engine, cache, &dir)
        .await
        .unwrap_or_else(|e| panic!("loading plugins from {}: {e}", dir.display()));
    let snap = registry.snapshot();
    assert!(
        snap.errors.is_empty(),
        "plugins in {} failed to load (rebuild with `scripts/build-plugins`): {:?}",
        dir.display(),
        snap.errors.iter().map(|e| &e.message).collect::<Vec<_>>()
    );
    let plugin = snap.any().unwrap_or_else(|| {
        panic!(
            "no plugin in {}: run `scripts/build-plugins`",
            dir.display()
        )
    });
    (registry, plugin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jq_1_7_1_conformance() {
    let (_registry, plugin) = open_plugin().await;
    let tenant = Tenant::new(
        "jq-tests",
        Limits {
            call_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        Arc::new(berth::plugin::lookup::Offline),
    );
    let bless = std::env::var("BERTH_JQ_BLESS").is_ok_and(|v| v == "1");
    let verbose = std::env::var("BERTH_JQ_VERBOSE").is_ok_and(|v| v == "1");

    let mut all: Vec<Result1> = Vec::new();
    for file in FILES {
        all.extend(run_file(&plugin, &tenant, file).await);
    }

    // Per-file table.
    let mut table = String::new();
    let _ = writeln!(table, "\njq 1.7.1 conformance (through the sandbox)");
    let _ = writeln!(
        table,
        "{:<16} {:>6} {:>7} {:>7} {:>9}",
        "file", "cases", "passed", "failed", "pass rate"
    );
    let (mut head_cases, mut head_passed) = (0usize, 0usize);
    let (mut tot_cases, mut tot_passed) = (0usize, 0usize);
    for file in FILES {
        let cases = all.iter().filter(|r| r.case.file == file).count();
        let passed = all
            .iter()
            .filter(|r| r.case.file == file && r.outcome.passed)
            .count();
        let _ = writeln!(
            table,
            "{:<16} {:>6} {:>7} {:>7} {:>8.1}%",
            file,
            cases,
            passed,
            cases - passed,
            100.0 * passed as f64 / cases.max(1) as f64
        );
        if HEADLINE.contains(&file) {
            head_cases += cases;
            head_passed += passed;
        }
        tot_cases += cases;
        tot_passed += passed;
    }
    let head_rate = head_passed as f64 / head_cases.max(1) as f64;
    let must_fail = all
        .iter()
        .filter(|r| matches!(r.case.kind, Kind::MustFail { .. }))
        .count();
    let must_fail_passed = all
        .iter()
        .filter(|r| matches!(r.case.kind, Kind::MustFail { .. }) && r.outcome.passed)
        .count();
    let _ = writeln!(
        table,
        "{:<16} {:>6} {:>7} {:>7} {:>8.1}%",
        "all",
        tot_cases,
        tot_passed,
        tot_cases - tot_passed,
        100.0 * tot_passed as f64 / tot_cases.max(1) as f64
    );
    let _ = writeln!(
        table,
        "jq.test + man.test: {head_passed}/{head_cases} = {:.2}% (required: {:.0}%)",
        100.0 * head_rate,
        100.0 * MIN_HEADLINE_RATE
    );
    let _ = writeln!(
        table,
        "%%FAIL cases: {must_fail_passed}/{must_fail} rejected at compile time (counted as passed; \
         error messages are jaq's and not compared with jq's)"
    );
    println!("{table}");

    let describe = |r: &Result1| {
        let mut s = format!(
            "{}:{}: {}\n    {}",
            r.case.file, r.case.line, r.case.program, r.outcome.detail
        );
        if let Kind::Run {
            input: Some(i),
            expected,
        } = &r.case.kind
        {
            let _ = write!(s, "\n    input:    {i}");
            let exp: Vec<&str> = expected.iter().map(|(_, e)| e.as_str()).collect();
            let _ = write!(s, "\n    expected: {}", exp.join(" | "));
        }
        if !r.outputs.is_empty() {
            let _ = write!(s, "\n    got:      {}", r.outputs.join(" | "));
        }
        s
    };

    let listed = read_expected();
    let failing: Vec<&Result1> = all.iter().filter(|r| !r.outcome.passed).collect();
    if verbose {
        println!("failing cases:");
        for r in &failing {
            let k = key(r.case.file, r.case.line);
            println!(
                "{}\n    listed: {}",
                describe(r),
                listed.get(&k).map(String::as_str).unwrap_or("NO")
            );
        }
    }

    let regressions: Vec<&&Result1> = failing
        .iter()
        .filter(|r| !listed.contains_key(&key(r.case.file, r.case.line)))
        .collect();
    let known: std::collections::BTreeSet<String> =
        all.iter().map(|r| key(r.case.file, r.case.line)).collect();
    let now_passing: Vec<&Result1> = all
        .iter()
        .filter(|r| r.outcome.passed && listed.contains_key(&key(r.case.file, r.case.line)))
        .collect();
    let stale: Vec<&String> = listed.keys().filter(|k| !known.contains(*k)).collect();

    if bless {
        let list: Vec<(String, String)> = failing
            .iter()
            .map(|r| {
                let k = key(r.case.file, r.case.line);
                let reason = listed.get(&k).cloned().unwrap_or_else(|| "TODO".into());
                (k, reason)
            })
            .collect();
        write_expected(&list);
        println!(
            "BERTH_JQ_BLESS: wrote {} expected failures to {EXPECTED_FAILURES} ({} new, marked TODO)",
            list.len(),
            regressions.len()
        );
    }

    let mut problems = Vec::new();
    if !bless {
        if !regressions.is_empty() {
            let mut s = format!(
                "{} case(s) fail that are not in expected-failures.txt (regressions):\n",
                regressions.len()
            );
            for r in &regressions {
                let _ = writeln!(s, "  {}", describe(r));
            }
            problems.push(s);
        }
        if !now_passing.is_empty() || !stale.is_empty() {
            let mut s = String::from(
                "expected-failures.txt lists cases that now pass (or no longer exist); remove these lines:\n",
            );
            for r in &now_passing {
                let _ = writeln!(s, "  {}:{}\t{}", r.case.file, r.case.line, r.case.program);
            }
            for k in &stale {
                let _ = writeln!(s, "  {k}\t(no such case)");
            }
            problems.push(s);
        }
    }
    if head_rate < MIN_HEADLINE_RATE {
        problems.push(format!(
            "jq.test + man.test pass rate {:.2}% is below {:.0}%",
            100.0 * head_rate,
            100.0 * MIN_HEADLINE_RATE
        ));
    }
    for p in &problems {
        println!("{p}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
