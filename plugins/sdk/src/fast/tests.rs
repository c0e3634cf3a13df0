//! Unit tests per construct, and differential tests against jaq (through
//! `crate::jq::Program` and `crate::json_out::to_json`, exactly what the
//! engine uses when the fast path declines).

use super::{Doc, FastFilter, Outcome};
use crate::jq::{First, Program};
use crate::json_out;

fn fast(code: &str, doc: &str) -> Outcome {
    let f =
        FastFilter::compile(code).unwrap_or_else(|e| panic!("not in the fast subset: {code}: {e}"));
    f.first(&Doc::new(doc).unwrap_or_else(|e| panic!("invalid doc {doc}: {e}")))
}

fn jaq(code: &str, doc: &str) -> Outcome {
    jaq_with(
        &Program::compile(code).unwrap_or_else(|e| panic!("jaq rejects {code}: {e}")),
        doc,
    )
}

fn jaq_with(p: &Program, doc: &str) -> Outcome {
    match p.first(crate::jq::parse_json(doc).expect("jaq parses doc")) {
        First::Value(v) => Outcome::Json(json_out::to_json(&v)),
        First::Empty => Outcome::Empty,
        First::Error(e) => Outcome::Error(e),
    }
}

fn json(s: &str) -> Outcome {
    Outcome::Json(s.to_string())
}

fn is_err(o: &Outcome) -> bool {
    matches!(o, Outcome::Error(_))
}

/// Same result, errors matching regardless of message.
fn same(a: &Outcome, b: &Outcome) -> bool {
    a == b || is_err(a) && is_err(b)
}

// ---------------------------------------------------------------- Doc::new

#[test]
fn doc_accepts_objects_only() {
    for ok in [
        "{}",
        " {} ",
        "\n\t{\"a\" : [ 1 , 2 ] }\r\n",
        r#"{"a":{"b":[{},[],"x",-0.5e+3,true,false,null]}}"#,
        r#"{"\u00e9\ud83d\ude00":"\/"}"#,
        "{\"del\":\"\u{7f}\"}",
    ] {
        assert!(Doc::new(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        " ",
        "[]",
        "1",
        "\"x\"",
        "null",
        "{",
        "}",
        "{}{}",
        "{} x",
        "{},",
        r#"{"a"}"#,
        r#"{"a":}"#,
        r#"{"a":1,}"#,
        r#"{,"a":1}"#,
        r#"{"a":1 "b":2}"#,
        r#"{a:1}"#,
        r#"{'a':1}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[,1]}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":-}"#,
        r#"{"a":+1}"#,
        r#"{"a":1e}"#,
        r#"{"a":NaN}"#,
        r#"{"a":Infinity}"#,
        r#"{"a":tru}"#,
        r#"{"a":nul}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\udc00"}"#,
        r#"{"a":"\ud800\u0041"}"#,
        "{\"a\":\"\n\"}",
        "{\"a\":\"\u{1}\"}",
        r#"{"a":"unterminated}"#,
        "{\"a\":1} # comment",
        r#"{"a":b"x"}"#,
    ] {
        assert!(Doc::new(bad).is_err(), "accepted {bad:?}");
    }
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(600), "]".repeat(600));
    assert!(Doc::new(&deep).is_err());
    let ok_deep = format!("{{\"a\":{}{}}}", "[".repeat(400), "]".repeat(400));
    assert!(Doc::new(&ok_deep).is_ok());
}

#[test]
fn doc_error_messages_are_clear() {
    assert!(Doc::new("[1]").unwrap_err().contains("not a JSON object"));
    assert!(Doc::new("").unwrap_err().contains("empty"));
    let e = Doc::new(r#"{"a":1,}"#).unwrap_err();
    assert!(e.contains("byte 7"), "{e}");
}

/// Random mutations of valid documents: `Doc::new` accepts exactly what a
/// strict JSON parser (serde_json) accepts as an object.
#[test]
fn doc_validation_matches_serde_json() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let seeds = docs();
    let alphabet: &[u8] = b"{}[]\":,\\/ \n\t0123456789-+.eEtruefalsn\x7fu";
    let mut checked = 0;
    for round in 0..6000 {
        let base = &seeds[round % seeds.len()];
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            let pos = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 if pos < bytes.len() => {
                    bytes.remove(pos);
                }
                1 if pos < bytes.len() => bytes[pos] = alphabet[rng.below(alphabet.len())],
                _ => bytes.insert(pos, alphabet[rng.below(alphabet.len())]),
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let serde = serde_json::from_str::<serde_json::Value>(&text);
        if let Err(e) = &serde {
            // serde_json refuses numbers beyond f64 and deep nesting; JSON does not.
            let m = e.to_string();
            if m.contains("out of range") || m.contains("recursion") {
                continue;
            }
        }
        let serde_ok = serde.is_ok_and(|v| v.is_object());
        let ours = Doc::new(&text);
        assert_eq!(ours.is_ok(), serde_ok, "{text:?}: {:?}", ours.err());
        checked += 1;
    }
    assert!(checked > 5000);
}

// ---------------------------------------------------------------- units

#[test]
fn literals() {
    let d = "{}";
    assert_eq!(fast("true", d), json("true"));
    assert_eq!(fast("false", d), json("false"));
    assert_eq!(fast("null", d), json("null"));
    assert_eq!(fast(r#""cloudResource""#, d), json(r#""cloudResource""#));
    assert_eq!(fast(r#""a\"b\\c\n\u00e9\/""#, d), json(r#""a\"b\\c\né/""#));
    assert_eq!(fast("1", d), json("1"));
    assert_eq!(fast("-3", d), jaq("-3", d));
    assert_eq!(fast("1.0", d), jaq("1.0", d));
    assert_eq!(fast("1e3", d), jaq("1e3", d));
}

#[test]
fn paths() {
    let d = r#"{"a":{"b":{"c":"x"}},"n":null,"s":"str","arr":[1,{"k":2}],"k y":3}"#;
    assert_eq!(fast(".", r#"{ "a" : 1 }"#), json(r#"{"a":1}"#));
    assert_eq!(fast(".a.b.c", d), json(r#""x""#));
    assert_eq!(fast(".a.missing", d), json("null"));
    assert_eq!(fast(".a.missing.deeper", d), json("null"));
    assert_eq!(fast(".n.x", d), json("null"));
    assert!(is_err(&fast(".s.x", d)));
    assert!(is_err(&fast(".arr.x", d)));
    assert_eq!(fast(r#".["a"]["b"]"#, d), json(r#"{"c":"x"}"#));
    assert_eq!(fast(r#"."k y""#, d), json("3"));
    assert_eq!(fast(r#".a."b".c"#, d), json(r#""x""#));
    assert_eq!(fast(".arr[1].k", d), json("2"));
    assert_eq!(fast(".arr[-1]", d), json(r#"{"k":2}"#));
    assert_eq!(fast(".arr[5]", d), json("null"));
    assert_eq!(fast(".s.x?", d), Outcome::Empty);
    assert_eq!(fast("try .s.x", d), Outcome::Empty);
    assert_eq!(fast("(.s.x)?", d), Outcome::Empty);
    assert!(is_err(&fast(".s.x?.y", r#"{"s":{"x":"v"}}"#)));
}

#[test]
fn keys_with_escapes_and_duplicates() {
    let d = r#"{"\u0061":1,"b\"q":2,"dup":1,"dup":2,"o":{"k":1,"k":{"z":1,"z":2}}}"#;
    assert_eq!(fast(".a", d), json("1"));
    assert_eq!(fast(r#".["b\"q"]"#, d), json("2"));
    assert_eq!(fast(".dup", d), json("2"));
    assert_eq!(fast(".o", d), json(r#"{"k":{"z":2}}"#));
    assert_eq!(fast(".", d), jaq(".", d));
}

#[test]
fn values_are_reserialised_when_not_canonical() {
    let d =
        "{ \"a\" : [ 1 , { \"b\" : \"\\u00e9\\/\\u001B\" } ] , \"n\" : -0 , \"t\" : \"\u{7f}\" }";
    assert_eq!(fast(".a", d), json(r#"[1,{"b":"é/\u001b"}]"#));
    assert_eq!(fast(".n", d), jaq(".n", d));
    assert_eq!(fast(".t", d), json(r#""\u007f""#));
    assert_eq!(fast(".", d), jaq(".", d));
}

#[test]
fn select_and_comparisons() {
    let link = r#".Properties | select(.Arn != null) | "https://console.aws.amazon.com/go/view?arn=" + .Arn"#;
    assert_eq!(
        fast(link, r#"{"Properties":{"Arn":"arn:aws:s3:::b"}}"#),
        json(r#""https://console.aws.amazon.com/go/view?arn=arn:aws:s3:::b""#)
    );
    assert_eq!(fast(link, r#"{"Properties":{}}"#), Outcome::Empty);
    assert_eq!(fast(link, r#"{}"#), Outcome::Empty);
    assert!(is_err(&fast(link, r#"{"Properties":"x"}"#)));
    assert!(is_err(&fast(link, r#"{"Properties":{"Arn":1}}"#)));
    assert_eq!(
        fast(r#"select(.a == "x") | .b"#, r#"{"a":"x","b":1}"#),
        json("1")
    );
    assert_eq!(
        fast(r#"select(.a == "x") | .b"#, r#"{"a":"y","b":1}"#),
        Outcome::Empty
    );
    assert_eq!(fast("select(.a) | 1", r#"{"a":false}"#), Outcome::Empty);
    assert_eq!(fast("select(.a) | 1", r#"{"a":0}"#), json("1"));
    assert_eq!(fast(".a == 1", r#"{"a":1.0}"#), json("true"));
    assert_eq!(fast(".a < .b", r#"{"a":1,"b":"x"}"#), json("true"));
}

#[test]
fn addition() {
    let d =
        r#"{"s":"a","t":"b","n":1,"m":2.5,"x":[1],"y":[2],"o":{"a":1,"b":2},"p":{"a":3,"c":4}}"#;
    assert_eq!(fast(".s + .t", d), json(r#""ab""#));
    assert_eq!(fast(".s + null", d), json(r#""a""#));
    assert_eq!(fast(".missing + .s", d), json(r#""a""#));
    assert_eq!(fast(".n + .m", d), jaq(".n + .m", d));
    assert_eq!(fast(".x + .y", d), json("[1,2]"));
    assert_eq!(fast(".o + .p", d), json(r#"{"a":3,"b":2,"c":4}"#));
    assert!(is_err(&fast(".s + .n", d)));
    assert!(is_err(&fast(".x + .o", d)));
    // jaq's cartesian order: no output wins over an error on the other side.
    assert_eq!(fast("empty + .s.x", d), Outcome::Empty);
    assert_eq!(fast(".s.x + empty", d), Outcome::Empty);
}

#[test]
fn alternative() {
    let d = r#"{"a":null,"b":false,"c":"c","s":"str"}"#;
    assert_eq!(fast(".a // .c", d), json(r#""c""#));
    assert_eq!(fast(".b // .a", d), json("null"));
    assert_eq!(fast(".c // .a", d), json(r#""c""#));
    assert_eq!(fast("empty // 1", d), json("1"));
    assert_eq!(fast(".a // empty", d), Outcome::Empty);
    assert!(same(&fast(".s.x // 1", d), &jaq(".s.x // 1", d)));
}

#[test]
fn regexes() {
    let region = r#".Properties.RegionalDomainName | capture(".*\\.(?<region>[^\\.]+)\\.amazonaws\\.com") | .region"#;
    let d = r#"{"Properties":{"RegionalDomainName":"b.s3.eu-west-1.amazonaws.com"}}"#;
    assert_eq!(fast(region, d), json(r#""eu-west-1""#));
    assert_eq!(
        fast(region, r#"{"Properties":{"RegionalDomainName":"nope"}}"#),
        Outcome::Empty
    );
    assert!(is_err(&fast(region, r#"{"Properties":{}}"#)));
    let ts = r#".JoinedTimestamp | sub(" "; "T")"#;
    assert_eq!(
        fast(ts, r#"{"JoinedTimestamp":"2020-01-01 10:00:00 x"}"#),
        json(r#""2020-01-01T10:00:00 x""#)
    );
    assert!(is_err(&fast(ts, r#"{}"#)));
    assert_eq!(
        fast(r#".s | gsub(" "; "_")"#, r#"{"s":"a b c"}"#),
        json(r#""a_b_c""#)
    );
    assert_eq!(
        fast(r#".s | test("B"; "i")"#, r#"{"s":"abc"}"#),
        json("true")
    );
    assert_eq!(
        fast(r#".s | capture("(?<x>a)(?<y>z)?")"#, r#"{"s":"abc"}"#),
        jaq(r#".s | capture("(?<x>a)(?<y>z)?")"#, r#"{"s":"abc"}"#)
    );
}

#[test]
fn interpolation_and_builtins() {
    let d = r#"{"s":"x","n":1.50,"a":[1,"b"],"o":{"k":null}}"#;
    assert_eq!(fast(r#""<\(.s)>""#, d), json(r#""<x>""#));
    assert_eq!(
        fast(r#""\(.n)-\(.a)-\(.o)-\(.missing)""#, d),
        jaq(r#""\(.n)-\(.a)-\(.o)-\(.missing)""#, d)
    );
    assert_eq!(fast(".s | ascii_upcase", d), json(r#""X""#));
    assert_eq!(fast(".n | tostring", d), jaq(".n | tostring", d));
    assert_eq!(
        fast("if .s then .n else .a end", d),
        jaq("if .s then .n else .a end", d)
    );
    assert_eq!(fast(".s and .o.k", d), json("false"));
    assert_eq!(fast(".o.k or .s", d), json("true"));
    assert_eq!(fast(".o.k | not", d), json("true"));
}

#[test]
fn outside_the_subset() {
    for code in [
        ".[]",
        ".a[]",
        ".a, .b",
        "[.a]",
        "{a: .a}",
        ".a as $x | $x",
        "$ENV",
        "map(.)",
        "length",
        "keys",
        ".a |= 1",
        "reduce .[] as $x (0; . + $x)",
        "..",
        "@base64",
        r#"capture("(?<a>.)"; "g")"#,
        r#"sub("a"; "\(.x)")"#,
        r#"test("(")"#,
        r#"test("a"; "q")"#,
        ".a # comment",
        "try .a catch .",
        "-.a",
        "007",
        ".a[1:2]",
        r#".["a\(1)"]"#,
        "not(1)",
        "def f: .; f",
        ".a.[0]x",
        "",
        "(.a",
    ] {
        assert!(FastFilter::compile(code).is_err(), "compiled {code}");
    }
}

/// Declining says why, in the words `berth map --explain` shows.
#[test]
fn declines_with_a_reason() {
    for (code, why) in [
        (
            "[limit(2; .[])]",
            "`[...]` (array construction) is outside the fast subset",
        ),
        ("limit(2; .a)", "`limit` is outside the fast subset"),
        (".a | length", "`length` is outside the fast subset"),
        (".a, .b", "`,` is outside the fast subset"),
        (".a * 2", "`*` is outside the fast subset"),
        (".a |= 1", "`|=` is outside the fast subset"),
        ("$x", "uses $variables"),
        (". as $x | $x", "uses $variables"),
        ("$__loc__", "uses $variables"),
        ("..", "`..` is outside the fast subset"),
        (".a[]", "`.[]` is outside the fast subset"),
        (".a[1:2]", "`.[a:b]` (slicing) is outside the fast subset"),
        ("-.a", "`-` (negation) is outside the fast subset"),
        ("try .a catch .", "`catch` is outside the fast subset"),
        (".a # note", "has a comment"),
        ("not(1)", "`not/1` is outside the fast subset"),
        (
            "{a: 1}",
            "`{...}` (object construction) is outside the fast subset",
        ),
        ("@base64", "`@format` is outside the fast subset"),
        (
            r#"capture("(?<a>.)"; "g")"#,
            "`capture` with the g flag can have several outputs",
        ),
        (
            r#"sub("a"; "\(.x)")"#,
            "`sub` with an argument other than a string literal is outside the fast subset",
        ),
        (
            r#"test("(")"#,
            "`test` with an invalid regex or flags (jaq reports the error) is outside the fast subset",
        ),
        ("test", "`test/0` is outside the fast subset"),
        (
            "007",
            "a number literal not written as in JSON is left to jaq",
        ),
        ("(.a", "does not parse (jaq reports why)"),
        ("", "does not parse (jaq reports why)"),
    ] {
        match FastFilter::compile(code) {
            Ok(_) => panic!("compiled {code}"),
            Err(e) => assert_eq!(e.to_string(), why, "{code}"),
        }
    }
}

/// `Doc::any` reads one JSON value of any kind, as strictly as `Doc::new`.
#[test]
fn doc_any_reads_every_kind_of_value() {
    for (text, code, want) in [
        ("[1, {\"a\": 2}]", ".[1].a", "2"),
        (" \"é\" ", ". + \"!\"", "\"é!\""),
        ("-1.50", ".", "-1.5"),
        ("null", ".a", "null"),
        ("true", "not", "false"),
        ("{\"a\":1}", ".a", "1"),
    ] {
        let doc = Doc::any(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let got = FastFilter::compile(code).unwrap().first(&doc);
        assert_eq!(got, jaq(code, text), "{code} on {text}");
        assert_eq!(got, json(want), "{code} on {text}");
    }
    for bad in [
        "",
        " ",
        "1 2",
        "[1,]",
        "nan",
        "\u{feff}1",
        "{\"a\"}",
        "[",
        "tru",
    ] {
        assert!(Doc::any(bad).is_err(), "accepted {bad:?}");
    }
    // Objects read the same either way.
    let text = r#"{"a":[1,{"b":null}]}"#;
    let f = FastFilter::compile(".a[1]").unwrap();
    assert_eq!(
        f.first(&Doc::any(text).unwrap()),
        f.first(&Doc::new(text).unwrap())
    );
}

#[test]
fn json_out_prints_canonical_text_verbatim() {
    // If this fails, json_out changed style: outputs stay correct (everything
    // is re-serialised through it) but lose the raw-copy speed-up; update
    // `doc::raw_copy_ok` and the CLEAN rules in `doc.rs`.
    assert!(super::doc::raw_copy_ok());
}

#[test]
fn filters_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<FastFilter>();
    check::<Doc<'static>>();
}

// ---------------------------------------------------------------- differential

/// Expressions of the seed mapping (docs/aws-hosted-by-port.md) and edge cases.
const EXPRS: &[&str] = &[
    // seed mapping
    "true",
    ".Identifier",
    r#""cloudResource""#,
    r#""awsAccount""#,
    ".__Kind",
    ".__Region",
    ".Properties.Tags",
    ".Properties.Arn",
    r#".Properties | select(.Arn != null) | "https://console.aws.amazon.com/go/view?arn=" + .Arn"#,
    ".__AccountId",
    r#".Properties.RegionalDomainName | capture(".*\\.(?<region>[^\\.]+)\\.amazonaws\\.com") | .region"#,
    r#".Properties.RegionalDomainName | capture(".*\\.(?<region>[^\\.]+)\\.amazonaws\\.com")"#,
    r#".JoinedTimestamp | sub(" "; "T")"#,
    ".Id",
    ".Name",
    ".Arn",
    ".Email",
    ".Status",
    ".JoinedMethod",
    ".Properties.FunctionName",
    ".Properties.MemorySize",
    ".Properties.Timeout",
    ".Properties.Runtime",
    ".Properties.DBInstanceIdentifier",
    ".Properties.ServiceArn",
    ".Properties.DesiredCount",
    // paths
    ".",
    ".Properties",
    ".Properties.Arn.x",
    ".Properties.Tags[0]",
    ".Properties.Tags[0].Key",
    ".Properties.Tags[-1].Value",
    ".Properties.Tags[10]",
    ".Properties.Tags.Key",
    ".Properties[0]",
    ".__Kind[0]",
    r#".["Properties"]["Arn"]"#,
    r#"."Properties"."Arn""#,
    r#".Properties."Arn""#,
    r#". "Identifier""#,
    r#".["__Region"]"#,
    ".Properties?.Arn",
    ".Properties.Arn?",
    ".__Kind.x?",
    ".__Kind?.x",
    "(.__Kind.x)?",
    "try .__Kind.x",
    ".nums",
    ".nums.int",
    ".nums.neg",
    ".nums.zero",
    ".nums.negzero",
    ".nums.dec",
    ".nums.dec0",
    ".nums.exp",
    ".nums.expneg",
    ".nums.big",
    ".nums.bigneg",
    ".nums.huge",
    ".nums.tiny",
    ".nums.f15",
    ".nums.f16",
    ".nums.pow53",
    ".nums.all",
    ".esc",
    ".esc.slash",
    ".esc.uni",
    ".esc.ctrl",
    ".esc.ctrlU",
    ".esc.quote",
    ".esc.emoji",
    ".esc.del",
    r#".esc["k\"ey"]"#,
    r#".esc["é"]"#,
    ".esc.A",
    ".dup",
    ".dup.a",
    ".nested",
    ".nested.o",
    ".nested.o.list[1]",
    ".ws",
    ".ws.inner",
    ".ws.inner.arr",
    ".and",
    ".if",
    ".a1_",
    // select / comparisons
    "select(.Identifier)",
    "select(.missing) | 1",
    r#"select(.__Kind == "AWS::S3::Bucket") | .Identifier"#,
    r#"select(.__Kind != "AWS::S3::Bucket") | .Identifier"#,
    ".Properties | select(.Tags) | .Tags",
    ".nums.int == 42",
    ".nums.dec0 == 1",
    ".nums.dec == 1.5",
    ".nums.negzero == 0",
    ".nums.big == 12345678901234567890",
    ".nums.exp == 1e2",
    ".esc.uni == \"é\"",
    ".esc == .esc",
    ".Properties.Tags == .Properties.Tags",
    ".dup == .dup",
    ".Properties != null",
    ".Properties.Arn == null",
    ".nums.int < 100",
    ".nums.dec >= 1.5",
    ".Identifier > \"a\"",
    ".Properties < .Properties.Tags",
    "null == false",
    // addition and arithmetic
    r#""arn:" + .Properties.Arn"#,
    r#".Properties.Arn + "/x""#,
    ".Identifier + .__Region",
    ".missing + .Identifier",
    ".Identifier + .missing",
    "null + null",
    ".nums.int + .nums.dec",
    ".nums.int + 1",
    ".nums.big + 1",
    ".nums.dec0 + 0",
    ".Properties.Tags + .Properties.Tags",
    ".nested.o + .dup",
    ".Identifier + 1",
    ".Properties + .Identifier",
    ".nums.int - 1",
    "empty + .Identifier.x",
    ".Identifier.x + empty",
    ".Identifier.x + .Properties.y",
    r#""a" + "b" + .__Kind"#,
    // alternative, logic, conditionals
    ".missing // .Identifier",
    ".Properties.Arn // \"none\"",
    ".flags.f // .flags.n // \"d\"",
    ".flags.f // empty",
    "empty // .Identifier",
    ".Identifier.x // 1",
    ".Properties and .Identifier",
    ".flags.f or .flags.n",
    ".flags.t and (.flags.n | not)",
    ".Identifier | not",
    "if .Properties then .Properties.Arn else \"none\" end",
    "if .flags.f then 1 elif .flags.n then 2 else 3 end",
    "if .missing then 1 end",
    "if .Identifier.x then 1 else 2 end",
    // strings and regexes
    r#""\(.Identifier)""#,
    r#""id=\(.Identifier) n=\(.nums.int) d=\(.nums.dec0) t=\(.Properties.Tags)""#,
    r#""\(.missing)|\(.flags.t)|\(.esc)""#,
    r#""\(.nums.huge) \(.nums.negzero) \(.nums.big)""#,
    ".nums.dec | tostring",
    ". | tostring",
    ".Identifier | tostring",
    ".Identifier | ascii_upcase",
    ".__Kind | ascii_downcase",
    ".nums.int | ascii_downcase",
    r#".Identifier | test("bucket")"#,
    r#".Identifier | test("BUCKET"; "i")"#,
    r#".nums | test("x")"#,
    r#".Identifier | gsub("-"; "_")"#,
    r#".Identifier | sub("(?<x>[a-z]+)"; "X")"#,
    r#".Identifier | sub(""; "^")"#,
    r#".Identifier | gsub(""; "|")"#,
    r#".esc.emoji | gsub(""; "|")"#,
    r#".Identifier | sub("E"; "e"; "gi")"#,
    r#".missing | sub("a"; "b")"#,
    r#".JoinedTimestamp | sub(" "; "T")"#,
    r#".Identifier | capture("(?<first>[^-]+)-(?<rest>.*)")"#,
    r#".Identifier | capture("(?<first>[^-]+)(?<opt>zzz)?")"#,
    r#".Identifier | capture("(?<first>[^-]+)(?<opt>zzz)?") | .opt"#,
    r#".Identifier | capture("nomatch(?<x>.)")"#,
    r#".Identifier | capture("(?<x>.)").x | ascii_upcase"#,
    r#".esc.uni | capture("(?<c>.)") | .c"#,
    r#".flags.t | capture("(?<c>.)")"#,
    // regexes beyond regex-bites: flags, look-around, backreferences, `$`
    r#".Identifier | test("(?<=-)b")"#,
    r#".Identifier | test("^(?!my)")"#,
    r#".Identifier | capture("(?<c>.)\\k<c>")"#,
    r#".Identifier | sub("$"; "!")"#,
    r#".Identifier | gsub("$"; "!")"#,
    r#".Identifier | gsub("^"; ">")"#,
    r#".Identifier | gsub("[a-z]*"; "<>")"#,
    r#".Identifier | gsub("[a-z]*"; "<>"; "n")"#,
    r#".Identifier | gsub("B U"; "_"; "xi")"#,
    r#".Identifier | test("t.h"; "p")"#,
    r#".Identifier | test("t.h"; "s")"#,
    r#".Identifier | sub("a|ab"; "+"; "l")"#,
    r#".Identifier | capture("(?<a>\\w+)-(?<a>\\w+)")"#,
    r#".Identifier | capture("(?<a>\\w+)-(?<a>zzz)?")"#,
    r#".Identifier | capture("(?<a>\\w+)-(?<a>zzz)?") | .a"#,
    r#".Identifier | capture("(?<x>é)?(?<y>.)") | .x"#,
    r#".esc.emoji | sub("(?<e>.)"; "[e]")"#,
    // literals
    "1",
    "-1",
    "1.0",
    "1.50",
    "-0",
    "1e3",
    "1E-2",
    "123456789012345678901234567890",
    "1e1000",
    r#""\u00e9\t\"\\\/""#,
    r#""""#,
    "null",
    "false",
    "empty",
];

/// Input documents: realistic AWS items plus edge cases.
fn docs() -> Vec<String> {
    let s3 = r#"{"Identifier":"my-bucket-123","Properties":{"Arn":"arn:aws:s3:::my-bucket-123","BucketName":"my-bucket-123","DomainName":"my-bucket-123.s3.amazonaws.com","RegionalDomainName":"my-bucket-123.s3.eu-west-1.amazonaws.com","DualStackDomainName":"my-bucket-123.s3.dualstack.eu-west-1.amazonaws.com","WebsiteURL":"http://my-bucket-123.s3-website-eu-west-1.amazonaws.com","BucketEncryption":{"ServerSideEncryptionConfiguration":[{"ServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"},"BucketKeyEnabled":false}]},"OwnershipControls":{"Rules":[{"ObjectOwnership":"BucketOwnerEnforced"}]},"PublicAccessBlockConfiguration":{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPublicBuckets":true},"VersioningConfiguration":{"Status":"Enabled"},"Tags":[{"Key":"env","Value":"prod"},{"Key":"team","Value":"data"}]},"__Kind":"AWS::S3::Bucket","__Region":"eu-west-1","__AccountId":"123456789012"}"#;
    let ec2 = r#"{"Identifier":"i-0abc123def4567890","Properties":{"Arn":"arn:aws:ec2:us-east-1:123456789012:instance/i-0abc123def4567890","InstanceId":"i-0abc123def4567890","InstanceType":"t3.micro","ImageId":"ami-0123456789abcdef0","Monitoring":false,"CpuOptions":{"CoreCount":1,"ThreadsPerCore":2},"BlockDeviceMappings":[{"DeviceName":"/dev/xvda","Ebs":{"VolumeSize":8,"VolumeType":"gp3","DeleteOnTermination":true,"Iops":3000}}],"NetworkInterfaces":[{"DeviceIndex":"0","SubnetId":"subnet-0123","GroupSet":["sg-1","sg-2"],"PrivateIpAddress":"10.0.1.23"}],"Tags":[{"Key":"Name","Value":"web-1"},{"Key":"cost","Value":"12.5"}],"MemorySize":128,"Timeout":3.0},"__Kind":"AWS::EC2::Instance","__Region":"us-east-1","__AccountId":"123456789012","JoinedTimestamp":"2021-03-04 05:06:07.123000+00:00"}"#;
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(ec2).unwrap())
            .unwrap();
    let edge = r#"{"Identifier":"Edge-Case_ID","Properties":{"Arn":null,"Tags":[],"RegionalDomainName":"bucket.s3.amazonaws.com"},
      "nums":{"int":42,"neg":-7,"zero":0,"negzero":-0,"dec":1.5,"dec0":1.0,"exp":1e2,"expneg":2.5E-3,"big":12345678901234567890,"bigneg":-98765432109876543210,"huge":1e400,"tiny":1e-400,"f15":123456789012345,"f16":1234567890123456,"pow53":9007199254740993,
        "all":[0,-0,1.0,-1.25e+10,100,0.1,1e-7,123456789012345678901234567890]},
      "esc":{"slash":"a\/b","uni":"\u00e9","ctrl":"\u001b","ctrlU":"\u001B\u0000","quote":"say \"hi\"\\","emoji":"\ud83d\ude00x","del":"\u007f","k\"ey":1,"é":2,"\u0041":"A"},
      "dup":{"a":1,"b":2,"a":{"x":1,"x":2}},
      "nested":{"o":{"list":[1,[2,[3]],{"k":"v"}],"e":{},"ea":[]}},
      "ws" : { "inner" : { "arr" : [ 1 , 2 , { "x" : "y" } ] } },
      "flags":{"t":true,"f":false,"n":null},
      "and":"kw","if":"kw2","a1_":"ident",
      "__Kind":"AWS::Test::Edge","__Region":"ap-south-1","__AccountId":"000000000000","JoinedTimestamp":"2020-01-01 00:00:00 +0000 UTC"}"#;
    vec![
        s3.to_string(),
        ec2.to_string(),
        pretty,
        edge.to_string(),
        "{}".to_string(),
        r#"{"Properties":null,"Identifier":null}"#.to_string(),
        r#"{"Properties":"string","Identifier":7,"__Kind":["AWS"],"JoinedTimestamp":12}"#.to_string(),
        r#"{"Properties":[1,2,3],"Identifier":false,"__Kind":{"a":1}}"#.to_string(),
        r#"{"Properties":{"Arn":1,"RegionalDomainName":5,"Tags":{"Key":"k"}},"Identifier":true}"#.to_string(),
        r#"{"Properties":{"Arn":false,"RegionalDomainName":null,"Tags":null}}"#.to_string(),
        r#"{"Properties":{"Arn":{"x":1},"RegionalDomainName":"x.s3.eu-west-1.amazonaws.com.evil","Tags":[{"Key":"a","Key":"b"}]}}"#.to_string(),
        r#"{"Identifier":"ünïcødé-名前","Properties":{"Arn":"arn:\u00e9","RegionalDomainName":"b.s3.\u00e9u.amazonaws.com"},"__Region":"\ud83d\ude00"}"#.to_string(),
        r#"{"Properties":{"Arn":""},"Identifier":"","flags":{"t":1,"f":0,"n":""}}"#.to_string(),
        "{\"Identifier\":\"tab\\there\",\"__Kind\":\"del\u{7f}\",\"Properties\":{\"Arn\":\"a\\/b\"}}".to_string(),
        r#"{"Identifier":"a","Identifier":"b","Properties":{"Arn":"x"},"Properties":{"Tags":[1]}}"#.to_string(),
        r#"{"Identifier":"esc","Properties":{"Arn":"arn:aws:iam::1:role/a\/b","Tags":[{"Key":"q\"uote","Value":"\u00e9\u001b\n"},{"Key":"k","Value":"v","Key":"k2"}],"Policy":"{\"Version\":\"2012-10-17\"}"}}"#.to_string(),
        r#"{"Identifier":"deep","Properties":{"Tags":[[[[[[{"a":[1,2,{"b":null}]}]]]]]],"Arn":"arn"},"nums":{"all":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}}"#.to_string(),
        r#"{"Properties":{"Arn":"arn:aws:s3:::x","RegionalDomainName":"a.b.c.s3.sa-east-1.amazonaws.com"},"__Kind":"AWS::S3::Bucket","__Region":"sa-east-1","Identifier":"x","flags":{"t":[],"f":{},"n":0}}"#.to_string(),
        // Whitespace everywhere (also inside some strings, which is fine).
        edge.replace(',', " ,\n\t").replace(':', " : ").replace('[', "[ ").replace('{', "{\r\n"),
        r#"{"nums":{"int":-42,"dec":-0.0,"dec0":10.00,"big":-12345678901234567890,"huge":-1e400,"negzero":0}}"#.to_string(),
    ]
}

#[test]
fn multiplication_division_and_modulo_run_on_jaq() {
    for code in [".n * 2", ".n / 4", ".n % 5", "2.5 * .s", ".o * .o"] {
        assert!(FastFilter::compile(code).is_err(), "{code}");
    }
}

#[test]
fn differential_corpus() {
    let docs = docs();
    let mut pairs = 0;
    let mut failures = Vec::new();
    for code in EXPRS {
        let fast = FastFilter::compile(code)
            .unwrap_or_else(|e| panic!("not in the fast subset: {code}: {e}"));
        let prog = Program::compile(code).unwrap_or_else(|e| panic!("jaq rejects {code}: {e}"));
        for d in &docs {
            let got = fast.first(&Doc::new(d).unwrap());
            let want = jaq_with(&prog, d);
            if !same(&got, &want) {
                failures.push(format!("{code}\n  on {d}\n  fast {got:?}\n  jaq  {want:?}"));
            }
            pairs += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {pairs} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(pairs, EXPRS.len() * docs.len());
    eprintln!(
        "corpus: {} expressions x {} docs = {pairs} pairs",
        EXPRS.len(),
        docs.len()
    );
    assert!(pairs >= 3500, "{pairs}");
}

/// The repository's mapping fixtures (seed AWS items, Ocean-semantics items)
/// against the corpus plus the fixtures' own field expressions.
#[test]
fn differential_fixtures() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut docs = Vec::new();
    for f in ["seed/items.jsonl", "ocean-semantics/items.jsonl"] {
        let Ok(text) = std::fs::read_to_string(root.join(f)) else {
            eprintln!("skipping missing fixture {f}");
            continue;
        };
        docs.extend(
            text.lines()
                .filter(|l| Doc::new(l).is_ok())
                .map(str::to_string),
        );
    }
    let extra = [
        ".id",
        ".team",
        r#".name + "-suffix""#,
        ".name.nested",
        ".float_int",
        ".float_frac",
        ".big_int",
        ".big_int | tostring",
        ".owner",
        r#".kind == "special""#,
        ".flag",
        ".member.enabled != false",
        r#".id + "/" + .member.name"#,
        ".member.index",
        r#".id + ":" + .item.name"#,
        r#".id == "items-1""#,
        ".title",
        ".bp",
        ".Tags",
        ".parts[1]",
        ".count",
    ];
    let mut pairs = 0;
    let mut failures = Vec::new();
    for code in EXPRS.iter().chain(&extra) {
        let fast = FastFilter::compile(code)
            .unwrap_or_else(|e| panic!("not in the fast subset: {code}: {e}"));
        let prog = Program::compile(code).unwrap();
        for d in &docs {
            let got = fast.first(&Doc::new(d).unwrap());
            let want = jaq_with(&prog, d);
            if !same(&got, &want) {
                failures.push(format!("{code}\n  on {d}\n  fast {got:?}\n  jaq  {want:?}"));
            }
            pairs += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("fixtures: {} docs, {pairs} pairs", docs.len());
}

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const KEYS: &[&str] = &["a", "b", "Arn", "é", "k y"];
const STRS: &[&str] = &[
    "",
    "x",
    "a b",
    "é",
    "😀",
    "q\"t",
    "back\\slash",
    "nl\n",
    "\u{1}",
    "\u{7f}",
    "/",
    "arn:aws:s3:::b",
];
const NUMS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-5",
    "1.0",
    "2.50",
    "1e2",
    "-1E-2",
    "0.1",
    "12345678901234567890",
    "123456789012345",
    "1234567890123456",
    "1e400",
];

fn gen_string(rng: &mut Rng, s: &str) -> String {
    // Randomly encode characters with escapes.
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if rng.below(4) == 0 => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    if rng.below(2) == 0 {
                        out.push_str(&format!("\\u{u:04X}"));
                    } else {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
            '/' if rng.below(2) == 0 => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn gen_ws(rng: &mut Rng) -> &'static str {
    const WS: [&str; 7] = ["", "", "", "", " ", "\n  ", "\t"];
    WS[rng.below(WS.len())]
}

fn gen_value(rng: &mut Rng, depth: usize) -> String {
    let choice = if depth >= 3 {
        rng.below(5)
    } else {
        rng.below(8)
    };
    match choice {
        0 => "null".into(),
        1 => rng.pick(&["true", "false"]).to_string(),
        2 => rng.pick(NUMS).to_string(),
        3 | 4 => {
            let s = *rng.pick(STRS);
            gen_string(rng, s)
        }
        5 => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n)
                .map(|_| {
                    format!(
                        "{}{}{}",
                        gen_ws(rng),
                        gen_value(rng, depth + 1),
                        gen_ws(rng)
                    )
                })
                .collect();
            format!("[{}]", items.join(","))
        }
        _ => gen_object(rng, depth + 1),
    }
}

fn gen_object(rng: &mut Rng, depth: usize) -> String {
    let n = rng.below(5);
    let items: Vec<String> = (0..n)
        .map(|_| {
            let k = *rng.pick(KEYS);
            let k = gen_string(rng, k);
            let v = gen_value(rng, depth);
            format!(
                "{}{k}{}:{}{v}{}",
                gen_ws(rng),
                gen_ws(rng),
                gen_ws(rng),
                gen_ws(rng)
            )
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

fn gen_key_step(rng: &mut Rng) -> String {
    let k = *rng.pick(KEYS);
    let ident = k.chars().all(|c| c.is_ascii_alphanumeric());
    match rng.below(3) {
        0 if ident => format!(".{k}"),
        1 => format!(".[{}]", serde_json::to_string(k).unwrap()),
        _ => format!(".{}", serde_json::to_string(k).unwrap()),
    }
}

fn gen_path(rng: &mut Rng) -> String {
    let mut p = String::new();
    for _ in 0..1 + rng.below(3) {
        p.push_str(&gen_key_step(rng));
        match rng.below(8) {
            0 => p.push('?'),
            1 => p.push_str(&format!("[{}]", rng.pick(&["0", "1", "-1"]))),
            _ => {}
        }
    }
    p
}

fn gen_expr(rng: &mut Rng, depth: usize) -> String {
    let leaf = depth >= 2;
    match if leaf { rng.below(4) } else { rng.below(16) } {
        0 | 1 => gen_path(rng),
        2 => ".".into(),
        3 => match rng.below(4) {
            0 => rng.pick(NUMS[..10].as_ref()).to_string(),
            1 => "null".into(),
            _ => serde_json::to_string(rng.pick(STRS)).unwrap(),
        },
        4 => format!(
            "{} | {}",
            gen_expr(rng, depth + 1),
            gen_expr(rng, depth + 1)
        ),
        5 => format!(
            "{} + {}",
            gen_expr(rng, depth + 1),
            gen_expr(rng, depth + 1)
        ),
        6 => format!(
            "{} // {}",
            gen_expr(rng, depth + 1),
            gen_expr(rng, depth + 1)
        ),
        7 => format!("select({})", gen_expr(rng, depth + 1)),
        8 => format!(
            "{} {} {}",
            gen_expr(rng, depth + 1),
            rng.pick(&["==", "!=", "<", ">="]),
            gen_expr(rng, depth + 1)
        ),
        9 => format!("\"<\\({})>\"", gen_expr(rng, depth + 1)),
        10 => format!("({})?", gen_expr(rng, depth + 1)),
        11 => format!(
            "{} | {}",
            gen_path(rng),
            rng.pick(&[
                r#"capture("(?<c>[a-z])") | .c"#,
                r#"sub("a"; "Z")"#,
                r#"gsub(""; "-")"#,
                r#"test("x")"#,
                "tostring",
                "ascii_upcase",
                "not",
            ])
        ),
        12 => format!(
            "{} and {}",
            gen_expr(rng, depth + 1),
            gen_expr(rng, depth + 1)
        ),
        13 => format!(
            "if {} then {} else {} end",
            gen_expr(rng, depth + 1),
            gen_expr(rng, depth + 1),
            gen_expr(rng, depth + 1)
        ),
        14 => format!(
            "{} - {}",
            gen_expr(rng, depth + 1),
            gen_expr(rng, depth + 1)
        ),
        _ => format!("empty // {}", gen_expr(rng, depth + 1)),
    }
}

#[test]
fn differential_random() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let docs: Vec<String> = (0..120)
        .map(|_| {
            format!(
                "{}{}{}",
                gen_ws(&mut rng),
                gen_object(&mut rng, 0),
                gen_ws(&mut rng)
            )
        })
        .collect();
    let mut pairs = 0;
    let mut failures = Vec::new();
    for _ in 0..400 {
        let code = gen_expr(&mut rng, 0);
        let Ok(prog) = Program::compile(&code) else {
            panic!("jaq rejects generated {code}");
        };
        let fast = FastFilter::compile(&code)
            .unwrap_or_else(|e| panic!("not in the fast subset: {code}: {e}"));
        for d in &docs {
            let got = fast.first(&Doc::new(d).unwrap_or_else(|e| panic!("{d}: {e}")));
            let want = jaq_with(&prog, d);
            if !same(&got, &want) && failures.len() < 30 {
                failures.push(format!("{code}\n  on {d}\n  fast {got:?}\n  jaq  {want:?}"));
            }
            pairs += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "differences (first {}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(pairs, 48_000);
}

/// Random token soup: whatever the fast parser accepts, jaq must accept too
/// and agree with on every document; nothing may panic.
#[test]
fn differential_token_soup() {
    const TOKS: &[&str] = &[
        ".",
        ".a",
        ".b",
        ".Arn",
        "[",
        "]",
        "(",
        ")",
        "|",
        "//",
        "+",
        "-",
        "*",
        "==",
        "!=",
        "<",
        "?",
        "\"s\"",
        "\"a\"",
        "1",
        "0",
        "2.5",
        "select(",
        "capture(\"(?<a>.)\")",
        "sub(\"a\"; \"b\")",
        "and",
        "or",
        "not",
        "if",
        "then",
        "else",
        "elif",
        "end",
        "try",
        " ",
        " ",
        " ",
        "\"<\\(",
        ";",
        ",",
        "$x",
        "é",
        "#",
        "null",
        "true",
        "empty",
        "tostring",
        "[0]",
        "[-1]",
        ".[\"a\"]",
        "..",
        "\"",
        "\\",
        ":",
        "{",
        "}",
        "as",
        "=",
        "|=",
        "@text",
        "def",
        "f",
        ".é",
        "\"\\u00e9\"",
    ];
    let mut rng = Rng(0xfeed_f00d_dead_beef);
    let docs: Vec<String> = (0..12).map(|_| gen_object(&mut rng, 0)).collect();
    let mut accepted = 0;
    let mut tried = 0;
    let mut failures = Vec::new();
    while tried < 60_000 {
        let n = 1 + rng.below(7);
        let code: String = (0..n).map(|_| *rng.pick(TOKS)).collect();
        tried += 1;
        let Ok(fast) = FastFilter::compile(&code) else {
            continue;
        };
        accepted += 1;
        let prog = match Program::compile(&code) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{code:?}: accepted, but jaq rejects it: {e}"));
                continue;
            }
        };
        for d in &docs {
            let got = fast.first(&Doc::new(d).unwrap());
            let want = jaq_with(&prog, d);
            if !same(&got, &want) {
                failures.push(format!(
                    "{code:?}\n  on {d}\n  fast {got:?}\n  jaq  {want:?}"
                ));
            }
        }
        if failures.len() > 20 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("token soup: {accepted} of {tried} accepted");
    assert!(accepted > 1000, "{accepted}");
}
