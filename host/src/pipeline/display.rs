//! What `berth sync` shows on stderr: a live display of the running resync (one row per
//! resource entry, each stage's state and the elapsed time) and the summary it ends with.
//!
//! Owns the layout of both, fitted to the terminal's width (down to 80 columns), and the
//! choice between a live display (stderr is a terminal; drawn by indicatif) and plain,
//! colourless lines (it is not). The live display ends by replacing its frame with the
//! summary, whose rows are drawn by the same row renderer, so the last thing on screen is the
//! summary and no stale frame can contradict it. Must not touch: what the numbers mean (each
//! stage's report has it), the HTML report ([`crate::pipeline::report`]) or any resync logic.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::mapping::MappingFile;
use crate::pipeline::resync::{Progress, ProgressSnapshot, ResyncReport, Stage};
use crate::scope::ScopeStatus;

/// Narrowest layout; a narrower terminal wraps, as any program's output does.
pub const MIN_WIDTH: usize = 80;

/// Incomplete scopes listed in the summary; the rest are counted.
const INCOMPLETE_LINES: usize = 50;

/// The numeric columns: header and width.
const COLUMNS: [(&str, usize); 7] = [
    ("found", 7),
    ("mapped", 7),
    ("filtered", 8),
    ("upserted", 8),
    ("unchanged", 9),
    ("deleted", 7),
    ("failed", 6),
];

fn numbers_width() -> usize {
    COLUMNS.iter().map(|(_, w)| w + 1).sum()
}

/// One resource entry's line. Port's columns are `None` while the resync runs: they are
/// known only once Port has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub index: usize,
    pub kind: String,
    pub found: u64,
    pub mapped: u64,
    pub filtered: Option<u64>,
    pub upserted: Option<u64>,
    pub unchanged: Option<u64>,
    pub deleted: Option<u64>,
    pub failed: Option<u64>,
}

/// `resources[4] AWS::Lambda::Function` when it fits `width`, else shorter forms of it.
pub fn entry_name(index: usize, kind: &str, width: usize) -> String {
    let full = crate::mapping::entry_label(index, kind);
    if full.chars().count() <= width {
        return full;
    }
    let short = format!("[{index}] {}", kind.strip_prefix("AWS::").unwrap_or(kind));
    let n = short.chars().count();
    if n <= width {
        return short;
    }
    // Keep the index and the resource type whole; shorten the service.
    let bare = kind.strip_prefix("AWS::").unwrap_or(kind);
    if let Some((service, ty)) = bare.rsplit_once("::") {
        let fixed = format!("[{index}] ").chars().count() + 2 + ty.chars().count();
        let room = width.saturating_sub(fixed);
        if room >= 3 {
            let head: String = service.chars().take(room - 1).collect();
            return format!("[{index}] {head}…::{ty}");
        }
    }
    // Keep the start and the end.
    let keep = width.saturating_sub(1);
    let head = keep / 2;
    let tail = keep - head;
    let chars: Vec<char> = short.chars().collect();
    let mut s: String = chars[..head].iter().collect();
    s.push('…');
    s.extend(&chars[n - tail..]);
    s
}

fn name_width(rows: &[Row], width: usize) -> usize {
    let room = width.max(MIN_WIDTH) - numbers_width();
    let longest = rows
        .iter()
        .map(|r| {
            crate::mapping::entry_label(r.index, &r.kind)
                .chars()
                .count()
        })
        .max()
        .unwrap_or(0)
        .max("resource entry".len());
    longest.min(room)
}

/// The table: a header line and one line per row, none wider than `max(width, 80)`.
pub fn table(rows: &[Row], width: usize) -> Vec<String> {
    let nw = name_width(rows, width);
    let mut lines = Vec::with_capacity(rows.len() + 1);
    let mut h = format!("{:<nw$}", "resource entry");
    for (name, w) in COLUMNS {
        let _ = write!(h, " {name:>w$}");
    }
    lines.push(h);
    for r in rows {
        let mut l = format!("{:<nw$}", entry_name(r.index, &r.kind, nw));
        let cells = [
            Some(r.found),
            Some(r.mapped),
            r.filtered,
            r.upserted,
            r.unchanged,
            r.deleted,
            r.failed,
        ];
        for (v, (_, w)) in cells.iter().zip(COLUMNS) {
            match v {
                Some(v) => {
                    let _ = write!(l, " {v:>w$}");
                }
                None => {
                    let _ = write!(l, " {:>w$}", "·");
                }
            }
        }
        lines.push(l);
    }
    lines
}

/// The rows of a running resync: what discovery found and what mapping made so far.
pub fn live_rows(snap: &ProgressSnapshot, mapping: &MappingFile) -> Vec<Row> {
    mapping
        .resources
        .iter()
        .map(|e| Row {
            index: e.index,
            kind: e.kind.clone(),
            found: snap.kinds.get(&e.kind).map_or(0, |k| k.discovered),
            mapped: snap.entries.get(&e.index).copied().unwrap_or(0),
            filtered: None,
            upserted: None,
            unchanged: None,
            deleted: None,
            failed: None,
        })
        .collect()
}

/// The rows of a finished resync, from its report.
pub fn report_rows(r: &ResyncReport) -> Vec<Row> {
    let mut rows: Vec<Row> = r
        .push
        .kinds
        .iter()
        .map(|k| Row {
            index: k.index,
            kind: k.kind.clone(),
            found: k.raw_extracted,
            mapped: k.transformed,
            filtered: Some(k.filtered_out),
            upserted: Some(k.loaded),
            unchanged: Some(k.skipped),
            deleted: Some(k.deleted),
            failed: Some(k.transform_failed + k.load_failed),
        })
        .collect();
    rows.sort_by_key(|r| r.index);
    rows
}

/// The line under the live table: elapsed time and each stage's state.
pub fn live_status(snap: &ProgressSnapshot, elapsed: Duration) -> String {
    let current = snap.current();
    let mut s = format!("{:>6.1}s ", elapsed.as_secs_f64());
    for stage in Stage::ALL {
        let mark = if snap.done.contains(&stage) {
            "✓"
        } else if Some(stage) == current {
            "▸"
        } else {
            "·"
        };
        let _ = write!(s, " {mark} {}", stage.name());
    }
    let (done, incomplete) = snap.kinds.values().fold((0, 0), |(d, i), k| {
        (d + k.scopes_done, i + k.scopes_incomplete)
    });
    let _ = write!(s, "   scopes {done} done");
    if incomplete > 0 {
        let _ = write!(s, ", {incomplete} incomplete");
    }
    s
}

/// The end-of-resync summary: the table (the live display's last frame), then the outcome,
/// AWS and Port figures, and everything that did not go well, each with what it means for
/// deletion.
pub fn summary(r: &ResyncReport, mapping: &MappingFile, width: usize) -> String {
    let mut s = String::new();
    for l in table(&report_rows(r), width) {
        let _ = writeln!(s, "{l}");
    }
    let outcome = if r.is_complete() {
        "complete"
    } else {
        "partial"
    };
    let _ = writeln!(
        s,
        "\n{outcome} in {:.1}s{}",
        r.elapsed.as_secs_f64(),
        if r.push.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    let (mut complete, mut denied, mut failed) = (0, 0, 0);
    for sc in &r.discovery.scopes {
        match sc.status {
            ScopeStatus::Complete => complete += 1,
            ScopeStatus::Denied(_) => denied += 1,
            ScopeStatus::Failed(_) => failed += 1,
        }
    }
    let _ = writeln!(
        s,
        "scopes: {complete} complete, {denied} denied, {failed} failed"
    );
    let calls = r.discovery.calls();
    let lookups: u64 = r.lookups.values().map(|c| c.calls).sum();
    let _ = writeln!(
        s,
        "AWS: {} discovery calls (retries {}, throttles {}), {lookups} lookup calls",
        calls.calls, calls.retries, calls.throttles
    );
    for (api, c) in &r.lookups {
        let _ = writeln!(s, "  {api}: {} calls", c.calls);
    }
    let _ = writeln!(
        s,
        "Port: {} upserted ({} failed), {} deleted ({} failed)",
        r.push.loaded, r.push.load_failed, r.push.deleted, r.push.delete_failed
    );
    let deleting: Vec<_> = r.push.kinds.iter().filter(|k| k.deleted > 0).collect();
    if !deleting.is_empty() {
        let _ = writeln!(s, "deleted from Port (no longer in AWS):");
        for k in deleting {
            let _ = writeln!(
                s,
                "  ! resources[{}] {}: {} entities",
                k.index, k.kind, k.deleted
            );
        }
    }
    if let Some(why) = &r.push.refused {
        let _ = writeln!(s, "deletion refused: {why}");
    }
    for (why, n) in &r.push.kept {
        let _ = writeln!(s, "kept {n} stale entities: {why}");
    }

    let mut incomplete = Vec::new();
    for a in &r.discovery.accounts {
        if let Some(e) = &a.error {
            incomplete.push(format!("account {} not read: {e}", a.account_id));
        }
    }
    let mut listed = std::collections::HashSet::new();
    for sc in &r.discovery.scopes {
        if let ScopeStatus::Denied(why) | ScopeStatus::Failed(why) = &sc.status {
            let text = sc.key.to_text();
            incomplete.push(format!("{} {text}: {why}", sc.status.label()));
            listed.insert(text);
        }
    }
    // Scopes discovery read in full whose entities then failed (their reason says so).
    for (k, st) in &r.push.incomplete_scopes {
        let text = k.to_text();
        if !listed.contains(&text) {
            let why = st.reason().unwrap_or(crate::scope::ENTITIES_FAILED);
            incomplete.push(format!("{} {text}: {why}", st.label()));
        }
    }
    for (bp, why) in &r.push.blocked_blueprints {
        incomplete.push(format!("mapping failed: {why}; blueprint {bp}"));
    }
    if !incomplete.is_empty() {
        let _ = writeln!(
            s,
            "not complete (nothing they could have produced is deleted):"
        );
        // An Organization can have thousands; the report lists every one.
        for l in incomplete.iter().take(INCOMPLETE_LINES) {
            let _ = writeln!(s, "  {l}");
        }
        if incomplete.len() > INCOMPLETE_LINES {
            let _ = writeln!(
                s,
                "  … and {} more (the report lists them all)",
                incomplete.len() - INCOMPLETE_LINES
            );
        }
    }
    if r.push.duplicates > 0 {
        let _ = writeln!(
            s,
            "{} entities shared an identifier across accounts or regions; each was \
             written once",
            r.push.duplicates
        );
    }
    if !r.map.misconfigured.is_empty() {
        let _ = writeln!(s, "misconfigured fields (null in the entity):");
        for ((idx, field, expr), m) in &r.map.misconfigured {
            let kind = mapping.resources.get(*idx).map_or("?", |e| e.kind.as_str());
            let _ = writeln!(
                s,
                "  resources[{idx}] {kind} {field} ({}x): {}\n    `{expr}`",
                m.count, m.message
            );
        }
    }
    let errors: Vec<_> = r.map.errors.iter().chain(r.push.errors.iter()).collect();
    if !errors.is_empty() {
        let _ = writeln!(s, "errors:");
        for (m, n) in errors.iter().take(20) {
            let _ = writeln!(s, "  ({n}x) {m}");
            if let Some(item) = r.map.examples.get(*m) {
                let _ = writeln!(s, "        first item: {item}");
            }
        }
        if errors.len() > 20 {
            let _ = writeln!(
                s,
                "  … and {} more distinct errors (see the report)",
                errors.len() - 20
            );
        }
    }
    s
}

/// The live display drawing now, if any: log lines are written around its frame instead of
/// through it.
static DRAWING: std::sync::Mutex<Option<MultiProgress>> = std::sync::Mutex::new(None);

/// stderr for the log: while a live display draws, each line is written with the frame
/// lifted (indicatif's `suspend`), so a warning during a sync is one clean line above the
/// frame instead of a torn frame. Use as the `tracing_subscriber` writer.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let multi = DRAWING.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match multi {
            Some(m) => m.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// Where the display goes.
pub enum Target {
    /// A terminal (or a stand-in for one in tests): a live display.
    Term(Box<dyn TermClone>),
    /// Anything else: a plain line as each stage finishes.
    Plain(Box<dyn std::io::Write + Send>),
}

/// A terminal the display can draw on and, at the end, print the summary to.
pub trait TermClone: TermLike {
    fn boxed(&self) -> Box<dyn TermLike>;
}

impl<T: TermLike + Clone + 'static> TermClone for T {
    fn boxed(&self) -> Box<dyn TermLike> {
        Box::new(self.clone())
    }
}

impl Target {
    /// stderr: live on a terminal, plain lines otherwise.
    pub fn stderr() -> Self {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            Target::Term(Box::new(console::Term::stderr()))
        } else {
            Target::Plain(Box::new(std::io::stderr()))
        }
    }
}

/// A running display; [`Live::finish`] ends it with the summary.
pub struct Live {
    task: tokio::task::JoinHandle<Box<dyn Drawer>>,
    stop: tokio::sync::watch::Sender<bool>,
}

trait Drawer: Send {
    fn draw(&mut self, snap: &ProgressSnapshot, elapsed: Duration);
    fn end(&mut self, summary: &str);
}

struct TermDrawer {
    term: Box<dyn TermClone>,
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
    mapping: Arc<MappingFile>,
    hidden: usize,
}

impl Drawer for TermDrawer {
    fn draw(&mut self, snap: &ProgressSnapshot, elapsed: Duration) {
        let width = usize::from(self.term.width()).max(MIN_WIDTH);
        let mut lines = table(&live_rows(snap, &self.mapping), width);
        if self.hidden > 0 {
            lines.truncate(self.bars.len() - 2);
            lines.push(format!("… {} more resource entries", self.hidden));
        }
        lines.push(live_status(snap, elapsed));
        for (bar, line) in self.bars.iter().zip(lines) {
            bar.set_message(line);
        }
    }

    fn end(&mut self, summary: &str) {
        *DRAWING.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let _ = self.multi.clear();
        for bar in &self.bars {
            bar.finish_and_clear();
        }
        for l in summary.lines() {
            let _ = self.term.write_line(l);
        }
        let _ = self.term.flush();
    }
}

struct PlainDrawer {
    out: Box<dyn std::io::Write + Send>,
    said: Vec<Stage>,
    last: Duration,
}

impl PlainDrawer {
    /// A line every this often while nothing finishes, so a log shows the resync is alive.
    const EVERY: Duration = Duration::from_secs(30);
}

impl Drawer for PlainDrawer {
    fn draw(&mut self, snap: &ProgressSnapshot, elapsed: Duration) {
        let found: u64 = snap.kinds.values().map(|k| k.discovered).sum();
        let mapped: u64 = snap.entries.values().sum();
        let mut wrote = false;
        for stage in &snap.done {
            if self.said.contains(stage) {
                continue;
            }
            self.said.push(*stage);
            let what = match stage {
                Stage::Discover => {
                    let (d, i) = snap.kinds.values().fold((0, 0), |(d, i), k| {
                        (d + k.scopes_done, i + k.scopes_incomplete)
                    });
                    format!("{found} items from {} scopes ({i} incomplete)", d + i)
                }
                Stage::Map => format!("{mapped} entities"),
                Stage::Upsert | Stage::Reconcile => String::new(),
            };
            let _ = writeln!(
                self.out,
                "[{:.1}s] {} finished{}{what}",
                elapsed.as_secs_f64(),
                stage.name(),
                if what.is_empty() { "" } else { ": " }
            );
            wrote = true;
        }
        if wrote {
            self.last = elapsed;
        } else if elapsed >= self.last + Self::EVERY {
            self.last = elapsed;
            let _ = writeln!(
                self.out,
                "[{:.1}s] running: {found} items found, {mapped} entities mapped",
                elapsed.as_secs_f64()
            );
        }
    }

    fn end(&mut self, summary: &str) {
        let _ = write!(self.out, "{summary}");
        let _ = self.out.flush();
    }
}

impl Live {
    /// Starts drawing `progress` on `target` until [`Live::finish`].
    pub fn start(progress: Arc<Progress>, mapping: Arc<MappingFile>, target: Target) -> Self {
        let started = Instant::now();
        let mut drawer: Box<dyn Drawer> = match target {
            Target::Term(term) => {
                let height = usize::from(term.height()).max(4);
                // A frame taller than the terminal cannot be redrawn in place.
                let rows = mapping.resources.len();
                let room = height.saturating_sub(3);
                let hidden = rows.saturating_sub(room);
                let lines = if hidden > 0 { room + 1 } else { rows } + 2;
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::term_like_with_hz(
                    term.boxed(),
                    10,
                ));
                let style = ProgressStyle::with_template("{wide_msg}")
                    .expect("a constant template is valid");
                let bars = (0..lines)
                    .map(|_| multi.add(ProgressBar::new_spinner().with_style(style.clone())))
                    .collect();
                *DRAWING.lock().unwrap_or_else(|e| e.into_inner()) = Some(multi.clone());
                Box::new(TermDrawer {
                    term,
                    multi,
                    bars,
                    mapping,
                    hidden,
                })
            }
            Target::Plain(out) => Box::new(PlainDrawer {
                out,
                said: Vec::new(),
                last: Duration::ZERO,
            }),
        };
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                drawer.draw(&progress.snapshot(), started.elapsed());
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stopped.changed() => {
                        drawer.draw(&progress.snapshot(), started.elapsed());
                        return drawer;
                    }
                }
            }
        });
        Live { task, stop }
    }

    /// Stops the live display and prints `summary` in its place.
    pub async fn finish(self, summary: &str) {
        let _ = self.stop.send(true);
        if let Ok(mut drawer) = self.task.await {
            drawer.end(summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::metrics::KindCounters;
    use crate::catalog::push::{Outcome, Plan, PushReport};
    use crate::discovery::ScopeReport;
    use crate::scope::ScopeKey;
    use indicatif::InMemoryTerm;

    const MAPPING: &str = "resources:
  - kind: AWS::Lambda::Function
    port:
      entity:
        mappings:
          identifier: .Identifier
          blueprint: '\"lambda\"'
  - kind: AWS::ElasticLoadBalancingV2::LoadBalancer
    port:
      entity:
        mappings:
          identifier: .Identifier
          blueprint: '\"lb\"'
  - kind: AWS::ElasticLoadBalancingV2::LoadBalancer
    port:
      entity:
        mappings:
          identifier: .Identifier
          blueprint: '\"lb2\"'
";

    fn counters(kind: &str, index: usize, found: u64, mapped: u64, deleted: u64) -> KindCounters {
        KindCounters {
            kind: kind.into(),
            index,
            raw_extracted: found,
            transformed: mapped,
            loaded: mapped,
            deleted,
            ..KindCounters::default()
        }
    }

    fn report() -> ResyncReport {
        let scope = |account: &str, kind: &str, status| ScopeReport {
            key: ScopeKey {
                account_id: account.into(),
                region: "us-east-1".into(),
                kind: kind.into(),
            },
            status,
            items: 3,
            vanished: 0,
            outside_regions: 0,
            calls: Default::default(),
            elapsed: Duration::from_millis(20),
        };
        let lb = "AWS::ElasticLoadBalancingV2::LoadBalancer";
        ResyncReport {
            discovery: crate::discovery::DiscoveryReport {
                scopes: vec![
                    scope(
                        "111111111111",
                        "AWS::Lambda::Function",
                        ScopeStatus::Complete,
                    ),
                    scope("111111111111", lb, ScopeStatus::Complete),
                    scope(
                        "222222222222",
                        lb,
                        ScopeStatus::Denied("AccessDenied: not allowed".into()),
                    ),
                ],
                ..Default::default()
            },
            map: crate::pipeline::map::Summary::default(),
            push: PushReport {
                sync_id: "s1".into(),
                dry_run: false,
                plan: Plan::default(),
                loaded: 9,
                load_failed: 0,
                deleted: 2,
                delete_failed: 0,
                refused: None,
                kept: Default::default(),
                blocked_blueprints: Default::default(),
                errors: Default::default(),
                duplicates: 0,
                kinds: vec![
                    counters("AWS::Lambda::Function", 0, 300, 300, 2),
                    counters(lb, 1, 600, 600, 0),
                    counters(lb, 2, 600, 600, 0),
                ],
                incomplete_scopes: Vec::new(),
                outcome: Outcome::Partial,
                seconds: 1.0,
            },
            lookups: Default::default(),
            elapsed: Duration::from_secs(3),
        }
    }

    #[test]
    fn names_fit_the_column_and_keep_both_ends() {
        assert_eq!(
            entry_name(4, "AWS::Lambda::Function", 40),
            "resources[4] AWS::Lambda::Function"
        );
        assert_eq!(
            entry_name(4, "AWS::Lambda::Function", 21),
            "[4] Lambda::Function"
        );
        let n = entry_name(12, "AWS::ElasticLoadBalancingV2::LoadBalancer", 24);
        assert_eq!(n, "[12] Elas…::LoadBalancer");
        let n = entry_name(12, "AWS::ElasticLoadBalancingV2::LoadBalancer", 12);
        assert_eq!(n.chars().count(), 12, "{n}");
    }

    #[test]
    fn every_line_fits_80_columns_and_160_shows_full_names() {
        let mapping = MappingFile::parse(MAPPING, "m.yaml").unwrap();
        let r = report();
        for line in table(&report_rows(&r), 80) {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
        let wide = table(&report_rows(&r), 160).join("\n");
        assert!(
            wide.contains("resources[1] AWS::ElasticLoadBalancingV2::LoadBalancer"),
            "{wide}"
        );
        let s = summary(&r, &mapping, 80);
        assert!(
            s.contains("! resources[0] AWS::Lambda::Function: 2 entities"),
            "{s}"
        );
        assert!(
            s.contains("denied 222222222222/us-east-1/AWS::ElasticLoadBalancingV2::LoadBalancer: AccessDenied: not allowed"),
            "{s}"
        );
        assert!(s.contains("\npartial in 3.0s\n"), "{s}");
    }

    /// The live display counts per resource entry as the report does: two entries of one
    /// kind each show their own 600, not the kind's 1200 (nor 300 from a stale frame).
    #[test]
    fn live_rows_count_per_entry_like_the_report() {
        let mapping = MappingFile::parse(MAPPING, "m.yaml").unwrap();
        let progress = Progress::default();
        let lb = "AWS::ElasticLoadBalancingV2::LoadBalancer";
        progress.discovered_for_test(lb, 600);
        progress.discovered_for_test("AWS::Lambda::Function", 300);
        progress.mapped("AWS::Lambda::Function", &[(0, 300)].into());
        progress.mapped(lb, &[(1, 600)].into());
        progress.mapped(lb, &[(2, 600)].into());
        let live = live_rows(&progress.snapshot(), &mapping);
        let done = report_rows(&report());
        for (l, d) in live.iter().zip(&done) {
            assert_eq!((l.index, l.found, l.mapped), (d.index, d.found, d.mapped));
        }
    }

    /// On a terminal, the last frame is the summary: nothing of the live frame is left.
    #[tokio::test]
    async fn the_final_frame_is_the_summary_at_80_and_160_columns() {
        let mapping = Arc::new(MappingFile::parse(MAPPING, "m.yaml").unwrap());
        for cols in [80u16, 160] {
            let term = InMemoryTerm::new(40, cols);
            let progress = Arc::new(Progress::default());
            let live = Live::start(
                progress.clone(),
                mapping.clone(),
                Target::Term(Box::new(term.clone())),
            );
            progress.discovered_for_test("AWS::Lambda::Function", 100);
            progress.mapped("AWS::Lambda::Function", &[(0, 50)].into());
            tokio::time::sleep(Duration::from_millis(450)).await;
            let frame = term.contents();
            assert!(frame.contains("discover"), "{frame}");
            for line in frame.lines() {
                assert!(line.chars().count() <= usize::from(cols), "{line:?}");
            }
            let s = summary(&report(), &mapping, usize::from(cols));
            live.finish(&s).await;
            // The terminal wraps lines longer than its width, as a real one does.
            let wrapped: Vec<String> = s
                .lines()
                .flat_map(|l| {
                    let chars: Vec<char> = l.chars().collect();
                    if chars.is_empty() {
                        return vec![String::new()];
                    }
                    chars
                        .chunks(usize::from(cols))
                        .map(|c| c.iter().collect())
                        .collect()
                })
                .collect();
            let screen = term.contents();
            assert_eq!(
                screen.trim_end(),
                wrapped.join("\n").trim_end(),
                "at {cols} columns"
            );
        }
    }

    #[tokio::test]
    async fn plain_output_has_no_escape_codes_and_ends_with_the_summary() {
        #[derive(Clone, Default)]
        struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mapping = Arc::new(MappingFile::parse(MAPPING, "m.yaml").unwrap());
        let buf = Buf::default();
        let progress = Arc::new(Progress::default());
        let live = Live::start(
            progress.clone(),
            mapping.clone(),
            Target::Plain(Box::new(buf.clone())),
        );
        progress.discovered_for_test("AWS::Lambda::Function", 100);
        progress.finished(Stage::Discover);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let s = summary(&report(), &mapping, 80);
        live.finish(&s).await;
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains('\x1b'), "{out}");
        let first = out.lines().next().unwrap();
        assert!(
            first.ends_with("discover finished: 100 items from 0 scopes (0 incomplete)"),
            "{out}"
        );
        assert!(out.ends_with(&s), "{out}");
    }
}
