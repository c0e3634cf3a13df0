//! What an operator reads after a resync: a self-contained HTML report file (the terminal's
//! summary is [`crate::pipeline::display`]'s): the run's header (version, config, start, outcome), an
//! accounts × kinds matrix that stays one screen wide for a whole Organization (only incomplete
//! scopes are listed one by one), counts per resource entry, deletions, refusals and kept
//! entities called out, misconfigured fields with their JQ expressions, the slowest scopes;
//! and the page of a resync that failed.
//!
//! Owns the rendering only. Must not touch: the numbers' meaning (each stage's report has it)
//! or any I/O besides the string it returns.

use std::fmt::Write as _;

use crate::mapping::MappingFile;
use crate::pipeline::resync::ResyncReport;
use crate::scope::ScopeStatus;

fn esc(text: &str) -> String {
    let mut o = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// What a report says about the run itself; the resync's own report has the counts.
#[derive(Debug, Clone)]
pub struct ReportHeader {
    /// The config file the run read (or whatever names a tenant's config).
    pub config: String,
    pub started: jiff::Timestamp,
    pub duration: std::time::Duration,
    pub dry_run: bool,
}

impl ReportHeader {
    /// A run that started `duration` ago.
    pub fn ended_now(
        config: impl Into<String>,
        duration: std::time::Duration,
        dry_run: bool,
    ) -> Self {
        let now = jiff::Timestamp::now();
        Self {
            config: config.into(),
            started: now.saturating_sub(duration).unwrap_or(now),
            duration,
            dry_run,
        }
    }

    /// The header of a resync that has just finished.
    pub fn for_report(config: impl Into<String>, r: &ResyncReport) -> Self {
        Self::ended_now(config, r.elapsed, r.push.dry_run)
    }
}

/// How a whole run ended, as the report's header and colours say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunOutcome {
    Complete,
    Partial,
    Failed,
}

impl RunOutcome {
    fn label(self) -> &'static str {
        match self {
            RunOutcome::Complete => "complete",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed => "failed",
        }
    }
}

/// A matrix cell's (or one listed scope's) status. Ordered by severity: a cell shows the
/// worst of its regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    /// No scope of this account × kind was reported.
    NotRead,
    Complete,
    /// Discovered in full, but some of its entities failed to map or load.
    Partial,
    Denied,
    Failed,
}

impl Level {
    const ALL: [Level; 5] = [
        Level::Complete,
        Level::Partial,
        Level::Denied,
        Level::Failed,
        Level::NotRead,
    ];

    fn label(self) -> &'static str {
        match self {
            Level::NotRead => "not read",
            Level::Complete => "complete",
            Level::Partial => "partial",
            Level::Denied => "denied",
            Level::Failed => "failed",
        }
    }

    /// The CSS class; one letter, since a large Organization has thousands of cells.
    fn class(self) -> &'static str {
        match self {
            Level::NotRead => "n",
            Level::Complete => "c",
            Level::Partial => "p",
            Level::Denied => "d",
            Level::Failed => "f",
        }
    }

    fn meaning(self) -> &'static str {
        match self {
            Level::NotRead => "no scope of this kind was reported for the account",
            Level::Complete => "every region read; every entity mapped and loaded",
            Level::Partial => "read in full, but some entities failed to map or load",
            Level::Denied => "AWS refused access in some region",
            Level::Failed => "reading failed in some region (or the whole account)",
        }
    }
}

fn level_of(s: &ScopeStatus) -> Level {
    match s {
        ScopeStatus::Complete => Level::Complete,
        ScopeStatus::Denied(_) => Level::Denied,
        ScopeStatus::Failed(_) => Level::Failed,
    }
}

fn duration_text(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

const PARTIAL_CAUSE: &str = crate::scope::ENTITIES_FAILED;
/// Causes shown in a cell's hover text; the rest are in the list below the matrix.
const CELL_CAUSES: usize = 3;

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em 2em;color:#222}\
h1{font-size:1.5em;margin:0 0 .6em}h2{font-size:1.15em;margin:1.8em 0 .4em}\
table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}\
th{background:#f5f5f5}\
.hdr th{text-align:left;font-weight:600}.hdr td{text-align:left}\
.bad{color:#b00}.ok{color:#070}.o-complete{color:#070}.o-partial{color:#a55a00}.o-failed{color:#b00}\
.bar{background:#4a7;height:12px;display:inline-block}code{background:#f3f3f3;padding:0 3px}\
pre{background:#f6f6f6;padding:.6em 1em;white-space:pre-wrap}\
.note{border-left:5px solid #999;background:#f6f6f6;padding:.4em 1em;margin:.8em 0;max-width:60em}\
.note p,.note ul{margin:.3em 0}\
.note.warn{border-color:#d08000;background:#fff6e0}\
.note.del{border-color:#c00;background:#fdecec}\
.note.okay{border-color:#3a3;background:#eef8ee}\
.mx th{position:sticky;top:0;z-index:1;font-size:12px;font-weight:600;vertical-align:bottom;\
text-align:center;max-width:9em}\
.mx td{text-align:center;min-width:4.5em;font-variant-numeric:tabular-nums}\
.mx td:first-child{text-align:left;white-space:nowrap}\
.mx td,.mx th{padding:2px 6px}.mx small{display:block;font-size:11px;line-height:1.1}.mx .tot td{font-weight:600;background:#fafafa}\
.m{color:#777}\
.c{background:#cdebd3}.p{background:#ffe38f}.d{background:#f7b27a}\
.f{background:#d9534f;color:#fff}.n{background:#eee;color:#999}\
.legend span{display:inline-block;padding:1px 8px;margin:0 4px 4px 0;border:1px solid #bbb}\
.sc td,.sc th,.ent td:nth-child(2),.ent th:nth-child(2){text-align:left}\
.nav a{margin-right:1em}.txt td,.txt th{text-align:left}";

/// The document's start and the header every report has (also a failed run's).
fn open(h: &mut String, title: &str, header: &ReportHeader, outcome: RunOutcome) {
    let started = header
        .started
        .round(
            jiff::TimestampRound::new()
                .smallest(jiff::Unit::Second)
                .mode(jiff::RoundMode::Trunc),
        )
        .unwrap_or(header.started);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1><table class=\"hdr\">\
         <tr><th>outcome</th><td><b class=\"o-{o}\">{o}</b></td></tr>\
         <tr><th>started</th><td>{started}</td></tr>\
         <tr><th>duration</th><td>{dur}</td></tr>\
         <tr><th>dry run</th><td>{dry}</td></tr>\
         <tr><th>config</th><td><code>{cfg}</code></td></tr>\
         <tr><th>Berth</th><td>{v}</td></tr>",
        t = esc(title),
        o = outcome.label(),
        dur = duration_text(header.duration),
        dry = if header.dry_run {
            "yes: nothing was written to Port or the state store"
        } else {
            "no"
        },
        cfg = esc(&header.config),
        v = env!("CARGO_PKG_VERSION"),
    );
}

/// One (account × kind) cell of the matrix.
#[derive(Default)]
struct Cell {
    level: Option<Level>,
    /// Regions per level, in [`Level::ALL`] order.
    regions: [u32; 5],
    items: u64,
    calls: crate::discovery::call::CallCounts,
    seconds: f64,
    /// (region, level, cause) of the first few incomplete regions.
    causes: Vec<String>,
    more_causes: usize,
}

impl Cell {
    fn add_region(&mut self, level: Level) {
        if let Some(i) = Level::ALL.iter().position(|l| *l == level) {
            self.regions[i] += 1;
        }
        self.raise(level);
    }

    fn raise(&mut self, level: Level) {
        self.level = Some(self.level.map_or(level, |l| l.max(level)));
    }

    fn cause(&mut self, text: String) {
        if self.causes.len() < CELL_CAUSES {
            self.causes.push(text);
        } else {
            self.more_causes += 1;
        }
    }
}

/// An incomplete scope, as listed below the matrix.
struct Listed {
    account: String,
    region: String,
    kind: String,
    level: Level,
    cause: String,
}

/// The HTML report of a resync that ran to its end: one file, no scripts, no external assets.
/// Scopes are shown as an accounts × kinds matrix (regions folded into each cell), so it stays
/// readable for an Organization of hundreds of accounts; only incomplete scopes are listed.
pub fn html(r: &ResyncReport, header: &ReportHeader, mapping: &MappingFile, title: &str) -> String {
    let mut h = String::new();
    let outcome = if r.is_complete() {
        RunOutcome::Complete
    } else {
        RunOutcome::Partial
    };
    open(&mut h, title, header, outcome);
    let calls = r.discovery.calls();
    let _ = write!(
        h,
        "<tr><th>sync id</th><td><code>{}</code></td></tr>\
         <tr><th>AWS calls</th><td>{} for discovery (retries {}, throttles {})</td></tr>",
        esc(&r.push.sync_id),
        calls.calls,
        calls.retries,
        calls.throttles
    );
    // Plugins' lookups cost AWS calls too (under a rate limit, wall time): per API and type.
    let lookups: Vec<String> = r
        .lookups
        .iter()
        .map(|(api, c)| format!("{} {}", esc(api), c.calls))
        .collect();
    let _ = write!(
        h,
        "<tr><th>lookup calls</th><td>{}{}</td></tr></table>",
        r.lookups.values().map(|c| c.calls).sum::<u64>(),
        if lookups.is_empty() {
            String::new()
        } else {
            format!("<br>{}", lookups.join("<br>"))
        }
    );
    // In-page links only: at Organization scale the matrix alone is screens long.
    h.push_str(
        "<p class=\"nav\"><a href=\"#matrix\">accounts × kinds</a>\
         <a href=\"#incomplete\">incomplete scopes</a><a href=\"#entries\">per resource entry</a>\
         <a href=\"#reconciliation\">reconciliation and deletions</a>\
         <a href=\"#timings\">timings</a></p>",
    );

    matrix(&mut h, r, mapping);
    entries(&mut h, r);
    deletions(&mut h, r);

    if !r.map.misconfigured.is_empty() {
        h.push_str(
            "<h2 id=\"misconfigured\">Misconfigured fields</h2><p>These fields were null in the entities (Ocean's \
             behaviour); the expression is the mapping's.</p><table class=\"txt\"><tr><th>resource</th>\
             <th>field</th><th>expression</th><th>entities</th><th>why</th></tr>",
        );
        for ((idx, field, expr), m) in &r.map.misconfigured {
            let kind = mapping.resources.get(*idx).map_or("?", |e| e.kind.as_str());
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td>\
                 <td>{}</td></tr>",
                esc(&crate::mapping::entry_label(*idx, kind)),
                esc(field),
                esc(expr),
                m.count,
                esc(&m.message)
            );
        }
        h.push_str("</table>");
    }

    let errors: Vec<_> = r.map.errors.iter().chain(r.push.errors.iter()).collect();
    if !errors.is_empty() {
        h.push_str(
            "<h2 id=\"failures\">Failures</h2><table><tr><th>cause</th><th>count</th>\
             <th>first item</th></tr>",
        );
        for (m, n) in errors.iter().take(200) {
            let item = r.map.examples.get(*m).map_or("", String::as_str);
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{n}</td><td>{}</td></tr>",
                esc(m),
                esc(item)
            );
        }
        h.push_str("</table>");
        if errors.len() > 200 {
            let _ = write!(h, "<p>… and {} more causes.</p>", errors.len() - 200);
        }
    }

    // Timings: the slowest scopes as bars, scaled to the slowest.
    let mut slow: Vec<_> = r.discovery.scopes.iter().collect();
    slow.sort_by_key(|s| std::cmp::Reverse(s.elapsed));
    let max = slow
        .first()
        .map_or(0.0, |s| s.elapsed.as_secs_f64())
        .max(1e-9);
    h.push_str(
        "<h2 id=\"timings\">Timings</h2><p>The slowest scopes.</p><table><tr><th>scope</th><th>seconds</th>\
         <th></th></tr>",
    );
    for s in slow.iter().take(20) {
        let secs = s.elapsed.as_secs_f64();
        let _ = write!(
            h,
            "<tr><td>{}/{}/{}</td><td>{secs:.2}</td><td style=\"text-align:left\">\
             <span class=\"bar\" style=\"width:{}px\"></span></td></tr>",
            esc(&s.key.account_id),
            esc(&s.key.region),
            esc(&s.key.kind),
            (secs / max * 400.0).round() as u64
        );
    }
    let _ = writeln!(
        h,
        "<tr><td>whole resync</td><td>{:.2}</td><td></td></tr></table></body></html>",
        r.elapsed.as_secs_f64()
    );
    h
}

/// Accounts × kinds, each cell the worst status over its regions, then every incomplete scope.
fn matrix(h: &mut String, r: &ResyncReport, mapping: &MappingFile) {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    // Kinds in mapping order, then any other kind discovery reported.
    let mut kinds: Vec<&str> = Vec::new();
    for e in &mapping.resources {
        if !kinds.contains(&e.kind.as_str()) {
            kinds.push(&e.kind);
        }
    }
    let extra: BTreeSet<&str> = r
        .discovery
        .scopes
        .iter()
        .map(|s| s.key.kind.as_str())
        .filter(|k| !kinds.contains(k))
        .collect();
    kinds.extend(extra);
    let column: HashMap<&str, usize> = kinds.iter().enumerate().map(|(i, k)| (*k, i)).collect();

    let mut accounts: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    for a in &r.discovery.accounts {
        accounts.insert(&a.account_id, a.name.as_deref());
    }
    for s in &r.discovery.scopes {
        accounts.entry(&s.key.account_id).or_insert(None);
    }
    let row: HashMap<&str, usize> = accounts.keys().enumerate().map(|(i, a)| (*a, i)).collect();
    let mut cells: Vec<Vec<Cell>> = (0..accounts.len())
        .map(|_| (0..kinds.len()).map(|_| Cell::default()).collect())
        .collect();
    // Why a whole account (or account × kind) is incomplete.
    let mut row_causes: Vec<Vec<String>> = vec![Vec::new(); accounts.len()];

    let push_status: HashMap<String, Level> = r
        .push
        .incomplete_scopes
        .iter()
        .map(|(k, s)| (k.to_text(), level_of(s)))
        .collect();
    let mut listed: Vec<Listed> = Vec::new();
    let mut listed_keys: BTreeSet<String> = BTreeSet::new();

    for a in &r.discovery.accounts {
        if let Some(e) = &a.error {
            let cause = format!("account not read: {e}");
            if let Some(&i) = row.get(a.account_id.as_str()) {
                for c in &mut cells[i] {
                    c.raise(Level::Failed);
                }
                row_causes[i].push(cause.clone());
            }
            listed_keys.insert(format!("{}/*/*", a.account_id));
            listed.push(Listed {
                account: a.account_id.clone(),
                region: "*".into(),
                kind: "*".into(),
                level: Level::Failed,
                cause,
            });
        }
    }
    for s in &r.discovery.scopes {
        let text = s.key.to_text();
        let (mut level, mut cause) = (level_of(&s.status), s.status.reason().map(str::to_string));
        if level == Level::Complete && push_status.get(&text).is_some_and(|l| *l > Level::Complete)
        {
            level = Level::Partial;
            cause = Some(PARTIAL_CAUSE.to_string());
        }
        let (Some(&i), Some(&j)) = (
            row.get(s.key.account_id.as_str()),
            column.get(s.key.kind.as_str()),
        ) else {
            continue;
        };
        let c = &mut cells[i][j];
        c.add_region(level);
        c.items += s.items;
        c.calls += s.calls;
        c.seconds += s.elapsed.as_secs_f64();
        if let Some(why) = cause {
            c.cause(format!("{} {}: {why}", level.label(), s.key.region));
            if listed_keys.insert(text) {
                listed.push(Listed {
                    account: s.key.account_id.clone(),
                    region: s.key.region.clone(),
                    kind: s.key.kind.clone(),
                    level,
                    cause: why,
                });
            }
        }
    }
    // What only the push knows: wildcard scopes (an account or a global kind that could not be
    // enumerated) and entities of no known scope.
    for (k, s) in &r.push.incomplete_scopes {
        let text = k.to_text();
        if !listed_keys.insert(text) {
            continue;
        }
        let level = level_of(s).max(Level::Partial);
        let cause = if k.region == "*" && k.account_id != "*" {
            "not enumerated; nothing of it was deleted".to_string()
        } else {
            PARTIAL_CAUSE.to_string()
        };
        if k.region == "*"
            && let Some(&i) = row.get(k.account_id.as_str())
        {
            if k.kind == "*" {
                for c in &mut cells[i] {
                    c.raise(level);
                }
                row_causes[i].push(format!("{}: {cause}", level.label()));
            } else if let Some(&j) = column.get(k.kind.as_str()) {
                cells[i][j].raise(level);
                cells[i][j].cause(format!("{} all regions: {cause}", level.label()));
            }
        }
        listed.push(Listed {
            account: k.account_id.clone(),
            region: k.region.clone(),
            kind: k.kind.clone(),
            level,
            cause,
        });
    }

    let incomplete_cells = cells
        .iter()
        .flatten()
        .filter(|c| c.level.is_some_and(|l| l > Level::Complete))
        .count();
    let _ = write!(
        h,
        "<h2 id=\"matrix\">Accounts × kinds</h2><p>{} accounts, {} kinds, {} scopes (account × region × kind); \
         {} of {} cells not complete. Each cell is the worst status of its regions and shows \
         the items discovered (and, when not complete, how many of its regions were not); \
         hover over a cell for its regions, calls, time and causes.</p>\
         <p class=\"legend\">",
        accounts.len(),
        kinds.len(),
        r.discovery.scopes.len(),
        incomplete_cells,
        accounts.len() * kinds.len(),
    );
    for l in Level::ALL {
        let _ = write!(
            h,
            "<span class=\"{}\" title=\"{}\">{}</span>",
            l.class(),
            l.meaning(),
            l.label()
        );
    }
    h.push_str("</p><table class=\"mx\"><thead><tr><th>account</th>");
    for k in &kinds {
        // Column headers wrap at `::`: ten kinds side by side must fit a screen.
        let short = k.strip_prefix("AWS::").unwrap_or(k);
        let _ = write!(
            h,
            "<th title=\"{}\">{}</th>",
            esc(k),
            esc(short).replace("::", "::<wbr>")
        );
    }
    h.push_str("</tr></thead><tbody><tr class=\"tot\"><td>all accounts</td>");
    for j in 0..kinds.len() {
        let items: u64 = cells.iter().map(|row| row[j].items).sum();
        let bad = cells
            .iter()
            .filter(|row| row[j].level.is_some_and(|l| l > Level::Complete))
            .count();
        let _ = write!(
            h,
            "<td title=\"{} of {} accounts not complete\">{items}{}</td>",
            bad,
            accounts.len(),
            if bad > 0 {
                format!("<small class=\"bad\">{bad} not complete</small>")
            } else {
                String::new()
            }
        );
    }
    h.push_str("</tr>");
    for (i, (account, name)) in accounts.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td title=\"{}\">{}",
            esc(&row_causes[i].join("\n")),
            esc(account)
        );
        if let Some(n) = name {
            let _ = write!(h, " <span class=\"m\">{}</span>", esc(n));
        }
        if !row_causes[i].is_empty() {
            h.push_str(" <b class=\"bad\">not read</b>");
        }
        h.push_str("</td>");
        for (j, c) in cells[i].iter().enumerate() {
            let level = c.level.unwrap_or(Level::NotRead);
            let regions: u32 = c.regions.iter().sum();
            let mut tip = format!("{account} × {}\n{regions} regions", kinds[j]);
            let parts: Vec<String> = Level::ALL
                .iter()
                .zip(c.regions)
                .filter(|(_, n)| *n > 0)
                .map(|(l, n)| format!("{n} {}", l.label()))
                .collect();
            if !parts.is_empty() {
                let _ = write!(tip, ": {}", parts.join(", "));
            }
            let _ = write!(
                tip,
                "\nitems {}, AWS calls {} (retries {}, throttles {}), {:.1}s",
                c.items, c.calls.calls, c.calls.retries, c.calls.throttles, c.seconds
            );
            for why in row_causes[i].iter().chain(c.causes.iter()) {
                let _ = write!(tip, "\n{why}");
            }
            if c.more_causes > 0 {
                let _ = write!(tip, "\n… {} more below the matrix", c.more_causes);
            }
            let body = if regions == 0 {
                "–".to_string()
            } else {
                c.items.to_string()
            };
            let incomplete = regions - c.regions[0];
            let note = if level > Level::Complete && incomplete > 0 {
                format!("<small>{incomplete}/{regions} regions</small>")
            } else if level > Level::Complete {
                format!("<small>{}</small>", level.label())
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<td class=\"{}\" title=\"{}\">{body}{note}</td>",
                level.class(),
                esc(&tip)
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");

    if listed.is_empty() {
        h.push_str("<p class=\"ok\" id=\"incomplete\">Every scope completed.</p>");
        return;
    }
    listed.sort_by(|a, b| (&a.account, &a.kind, &a.region).cmp(&(&b.account, &b.kind, &b.region)));
    let _ = write!(
        h,
        "<h2 id=\"incomplete\">Incomplete scopes ({})</h2><p>Nothing these scopes could have produced was \
         deleted.</p><table class=\"sc\"><tr><th>account</th><th>region</th><th>kind</th>\
         <th>status</th><th>cause</th></tr>",
        listed.len()
    );
    for l in &listed {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            esc(&l.account),
            esc(&l.region),
            esc(&l.kind),
            l.level.class(),
            l.level.label(),
            esc(&l.cause)
        );
    }
    h.push_str("</table>");
}

/// Per resource entry, named `resources[i] Kind`.
fn entries(h: &mut String, r: &ResyncReport) {
    h.push_str(
        "<h2 id=\"entries\">Per resource entry</h2><table class=\"ent\"><tr><th>resource entry</th><th>blueprint</th>\
         <th>extracted</th><th>mapped</th><th>filtered</th><th>map failed</th><th>loaded</th>\
         <th>unchanged</th><th>load failed</th><th>deleted</th></tr>",
    );
    let mut kinds: Vec<_> = r.push.kinds.iter().collect();
    kinds.sort_by_key(|k| k.index);
    for k in kinds {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td>\
             <td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"{}\">{}</td></tr>",
            esc(&crate::mapping::entry_label(k.index, &k.kind)),
            esc(k.blueprint.as_deref().unwrap_or("")),
            k.raw_extracted,
            k.transformed,
            k.filtered_out,
            if k.transform_failed > 0 { "bad" } else { "" },
            k.transform_failed,
            k.loaded,
            k.skipped,
            if k.load_failed > 0 { "bad" } else { "" },
            k.load_failed,
            if k.deleted > 0 { "f" } else { "" },
            k.deleted
        );
    }
    h.push_str("</table>");
}

/// What reconciliation deleted, refused to delete and kept, called out.
fn deletions(h: &mut String, r: &ResyncReport) {
    let p = &r.push;
    let plan = p.plan.total();
    let _ = write!(
        h,
        "<h2 id=\"reconciliation\">Reconciliation</h2><p>{} created, {} updated, {} unchanged (no call), {} deleted.</p>",
        plan.create, plan.update, plan.unchanged, p.deleted
    );
    if p.dry_run {
        let _ = write!(
            h,
            "<div class=\"note warn\"><p><b>Dry run: nothing was deleted.</b> A real sync would \
             delete {}.</p>",
            plan.delete
        );
    } else if p.deleted > 0 || p.delete_failed > 0 {
        let _ = write!(
            h,
            "<div class=\"note del\"><p><b>{} entities were deleted from Port</b>{}.</p>",
            p.deleted,
            if p.delete_failed > 0 {
                format!(" ({} deletions failed)", p.delete_failed)
            } else {
                String::new()
            }
        );
    } else {
        h.push_str("<div class=\"note okay\"><p><b>Nothing was deleted.</b></p>");
    }
    let by_entry: Vec<_> = p.kinds.iter().filter(|k| k.deleted > 0).collect();
    if !by_entry.is_empty() {
        h.push_str("<ul>");
        for k in by_entry {
            let _ = write!(
                h,
                "<li>{}: {} deleted</li>",
                esc(&crate::mapping::entry_label(k.index, &k.kind)),
                k.deleted
            );
        }
        h.push_str("</ul>");
    }
    let by_blueprint: Vec<_> = p
        .plan
        .blueprints
        .iter()
        .filter(|(_, c)| c.delete > 0)
        .collect();
    if !by_blueprint.is_empty() {
        let _ = write!(
            h,
            "<p>By blueprint ({}):</p><ul>",
            if p.dry_run { "would delete" } else { "planned" }
        );
        for (bp, c) in by_blueprint {
            let _ = write!(h, "<li><code>{}</code>: {}</li>", esc(bp), c.delete);
        }
        h.push_str("</ul>");
    }
    h.push_str("</div>");

    if let Some(why) = &p.refused {
        let _ = write!(
            h,
            "<div class=\"note warn\"><p><b>Reconciliation refused to delete:</b> {}</p></div>",
            esc(why)
        );
    }
    if !p.blocked_blueprints.is_empty() || !p.kept.is_empty() {
        h.push_str("<div class=\"note warn\"><p><b>Stale entities kept</b></p><ul>");
        for (bp, why) in &p.blocked_blueprints {
            let _ = write!(
                h,
                "<li>nothing of blueprint <code>{}</code> was deleted: {}</li>",
                esc(bp),
                esc(why)
            );
        }
        for (why, n) in &p.kept {
            let _ = write!(h, "<li>{n} stale entities kept: {}</li>", esc(why));
        }
        h.push_str("</ul></div>");
    }
    if p.duplicates > 0 {
        // The push counts shared identifiers in total only, not per kind.
        let _ = write!(
            h,
            "<div class=\"note warn\"><p><b>Shared identifiers:</b> {} entities were produced \
             more than once (an identifier shared by several accounts, regions or items); one \
             write each was kept.</p></div>",
            p.duplicates
        );
    }
}

/// The report of a resync that failed before it finished: the header, the cause, and what
/// that means for Port.
///
/// `reconciling`: it failed after reconciliation began, so some deletions may have been
/// applied (each was proven by then; the next resync finishes the rest).
pub fn failed_html(header: &ReportHeader, error: &str, title: &str, reconciling: bool) -> String {
    let mut h = String::new();
    open(&mut h, title, header, RunOutcome::Failed);
    let _ = write!(h, "</table><h2>Cause</h2><pre>{}</pre>", esc(error));
    if reconciling {
        h.push_str(
            "<div class=\"note del\"><p><b>It failed during reconciliation.</b> Deletions \
             already sent to Port (each of an entity proven gone) may have been applied; the \
             rest waits for the next resync.</p></div></body></html>",
        );
    } else {
        h.push_str(
            "<div class=\"note okay\"><p><b>Nothing was deleted.</b> A failed resync does not \
             reconcile: entities missing from this run stay in Port until a resync \
             completes.</p></div></body></html>",
        );
    }
    h
}
