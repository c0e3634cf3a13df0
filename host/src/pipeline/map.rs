//! The streaming map pipeline behind `berth map` (and, later, the transform
//! stage of a sync): raw items in, Port entities out.
//!
//! Items are routed by `__Kind` to every resource entry of that kind, in
//! mapping order, grouped into batches per kind, account and region (a
//! plugin's lookups happen in the batch's [`Place`]), and mapped by the kind's
//! plugin in the sandbox, several batches at once. Every queue is bounded, so
//! memory does not grow with the input. Owns the [`Summary`] of a run; must
//! not touch Port or AWS.

use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read, Write};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

use crate::mapping::{MappingFile, ResourceEntry};
use crate::plugin::{
    BatchRequest, Entity, Entry, EntryError, EntryOutput, ItemError, LoadedPlugin, PluginError,
    Registry, Tenant,
};
use crate::scope::Place;

/// How a map run is shaped.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// Batches mapped at once.
    pub jobs: usize,
    /// Items per batch: `limits.batchItems` (`crate::limits::TenantLimits::batch_items`, which
    /// explains the trade-off), for `berth map` and a sync alike.
    pub batch_items: usize,
    /// How long a partial batch may wait for more items, from its first item, before it is
    /// mapped while the input is idle (keeps a slow stream, such as a sync's discovery,
    /// flowing: a batch of a kind that trickles in is not held until it is full).
    pub linger: Duration,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self {
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_items: crate::limits::DEFAULT_BATCH_ITEMS,
            linger: crate::limits::MAP_LINGER,
        }
    }
}

/// Counts for one kind (or one resource entry).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KindStats {
    pub items: u64,
    pub entities: u64,
    pub filtered_out: u64,
    pub skipped: u64,
    pub errors: u64,
}

/// A field that was null, with how often and one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisconfiguredField {
    pub count: u64,
    pub message: String,
}

/// What a map run did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub kinds: BTreeMap<String, KindStats>,
    /// Per resource entry (by index): the items routed to it and what became of them.
    pub entries: BTreeMap<usize, KindStats>,
    /// (resource index, field path, expression) → occurrences.
    pub misconfigured: BTreeMap<(usize, String, String), MisconfiguredField>,
    /// Distinct error messages with their counts.
    pub errors: BTreeMap<String, u64>,
    /// For an item error message: the first item that failed so (identifier, account,
    /// region), so the cause can be looked up in AWS.
    pub examples: BTreeMap<String, String>,
}

impl Summary {
    /// Items that failed (bad input, selector, plugin failures).
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn error(&mut self, message: String, n: u64) {
        *self.errors.entry(message).or_default() += n;
    }

    /// Resource entries that did not work: items reached them and none became an entity,
    /// because every one failed or was skipped for a falsy identifier or blueprint (a JQ that
    /// does not compile, or a typo that makes the identifier null). Items a selector filtered
    /// out are no failure. What such an entry would have written cannot be told from what it
    /// wrote, so reconciliation must not delete any of it. Returns (index, why).
    pub fn failed_entries(&self, mapping: &MappingFile) -> Vec<(usize, String)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.items > 0 && e.entities == 0 && e.skipped + e.errors > 0)
            .map(|(i, e)| {
                let kind = mapping.resources.get(*i).map_or("?", |r| r.kind.as_str());
                let field_errors: Vec<String> = self
                    .misconfigured
                    .iter()
                    .filter(|((idx, field, _), _)| {
                        idx == i && (field == "identifier" || field == "blueprint")
                    })
                    .map(|((_, field, expr), m)| format!("{field} `{expr}`: {}", m.message))
                    .collect();
                let mut why = format!(
                    "resources[{i}] {kind} produced no entity from {} items ({} skipped for a \
                     null identifier or blueprint, {} failed)",
                    e.items, e.skipped, e.errors
                );
                if !field_errors.is_empty() {
                    why.push_str(": ");
                    why.push_str(&field_errors.join("; "));
                }
                (*i, why)
            })
            .collect()
    }

    /// A human-readable report for stderr.
    pub fn render(&self, mapping: &MappingFile) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "{:<32} {:>8} {:>9} {:>9} {:>8} {:>7}\n",
            "kind", "items", "entities", "filtered", "skipped", "errors"
        ));
        for (kind, k) in &self.kinds {
            s.push_str(&format!(
                "{:<32} {:>8} {:>9} {:>9} {:>8} {:>7}\n",
                kind, k.items, k.entities, k.filtered_out, k.skipped, k.errors
            ));
        }
        if !self.misconfigured.is_empty() {
            s.push_str("\nmisconfigured fields (null in the entity):\n");
            for ((idx, field, expr), m) in &self.misconfigured {
                let kind = mapping.resources.get(*idx).map_or("?", |r| r.kind.as_str());
                s.push_str(&format!(
                    "  resources[{idx}] {kind} {field}: `{expr}` ({}x): {}\n",
                    m.count, m.message
                ));
            }
        }
        if !self.errors.is_empty() {
            s.push_str("\nerrors:\n");
            for (m, n) in self.errors.iter().take(50) {
                s.push_str(&format!("  ({n}x) {m}\n"));
                if let Some(item) = self.examples.get(m) {
                    s.push_str(&format!("        first item: {item}\n"));
                }
            }
            if self.errors.len() > 50 {
                s.push_str(&format!(
                    "  … and {} more distinct errors\n",
                    self.errors.len() - 50
                ));
            }
        }
        // Entries that produced nothing without failing: no item of their kind came, or
        // their selector filtered out every item.
        let idle: Vec<String> = mapping
            .resources
            .iter()
            .filter_map(|r| {
                let e = self.entries.get(&r.index).cloned().unwrap_or_default();
                let why = if e.items == 0 {
                    format!("no item of kind {} in the input", r.kind)
                } else if e.entities + e.skipped + e.errors == 0 && e.filtered_out > 0 {
                    format!("the selector matched none of its {} items", e.items)
                } else {
                    return None;
                };
                Some(format!("  resources[{}] {}: {why}\n", r.index, r.kind))
            })
            .collect();
        if !idle.is_empty() {
            s.push_str("\nnotes (entries that matched no item):\n");
            s.extend(idle);
        }
        s
    }
}

#[derive(Deserialize)]
struct Route {
    #[serde(rename = "__Kind")]
    kind: Option<String>,
    #[serde(rename = "__AccountId")]
    account: Option<String>,
    #[serde(rename = "__Region")]
    region: Option<String>,
}

/// One line of raw input, routed.
#[derive(Debug, Clone)]
pub enum RawInput {
    /// A raw item (its JSON text) of `kind`, discovered in `place`.
    Item {
        kind: String,
        place: Option<Place>,
        line: String,
    },
    /// An input line that is not a raw item, with why.
    Bad(String),
}

/// The entities of one mapped batch, for a consumer in the same process (a sync).
#[derive(Debug, Clone)]
pub struct Mapped {
    pub kind: String,
    pub place: Option<Place>,
    /// Entities, each with the index of the resource entry that produced it.
    pub entities: Vec<(usize, Entity)>,
    /// Items of the batch that failed (the scope's output is incomplete).
    pub failed_items: u64,
}

struct Batch {
    kind: String,
    place: Option<Place>,
    items: Vec<String>,
}

/// What one mapped batch sends to the writer.
enum Event {
    Items {
        kind: String,
        n: u64,
    },
    Output {
        kind: String,
        place: Option<Place>,
        entities: Vec<(usize, Entity)>,
        stats: KindStats,
        entries: Vec<(usize, KindStats)>,
        misconfigured: Vec<((usize, String, String), String)>,
        errors: Vec<(String, u64)>,
        /// (error message, the item it is about), for item errors.
        examples: Vec<(String, String)>,
    },
    Error(String),
}

/// Names a raw item for an error message: `Identifier (account/region)`. Only read on the
/// error path, so parsing the item again costs nothing in a healthy run.
pub fn item_name(item: &str, place: Option<&Place>) -> String {
    #[derive(Deserialize)]
    struct Named {
        #[serde(rename = "Identifier")]
        identifier: Option<String>,
    }
    let id = serde_json::from_str::<Named>(item)
        .ok()
        .and_then(|n| n.identifier)
        .unwrap_or_else(|| "(no Identifier)".into());
    match place {
        Some(s) => format!("{id} ({}/{})", s.account_id, s.region),
        None => id,
    }
}

/// One input line, routed by its `__Kind` (and scope) without building the item.
fn route(line: String, number: usize) -> Option<RawInput> {
    if line.trim().is_empty() {
        return None;
    }
    Some(match serde_json::from_str::<Route>(&line) {
        Err(e) => RawInput::Bad(format!("input line {number}: not a JSON object: {e}")),
        Ok(Route { kind: None, .. }) => RawInput::Bad(format!("input line {number}: no __Kind")),
        Ok(Route {
            kind: Some(kind),
            account,
            region,
        }) => RawInput::Item {
            kind,
            place: match (account, region) {
                (Some(account_id), Some(region)) => Some(Place { account_id, region }),
                _ => None,
            },
            line,
        },
    })
}

/// What the reader thread sends on: a line as read (its number and its bytes, without the
/// line end), or why the input could not be read on.
enum RawLine {
    Line(usize, Vec<u8>),
    Unreadable(String),
}

/// Reads lines on a thread of its own and sends them on in chunks: one wake-up of the
/// pipeline per chunk, not per item. A chunk goes as soon as the next line would have to wait
/// for the input (a live stream is not held back), or when it is full. The thread only splits
/// lines; checking and routing them ([`route_chunk`]) is work for every core.
fn reader_thread<R: Read + Send + 'static>(input: R, tx: mpsc::Sender<Vec<RawLine>>) {
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::with_capacity(256 << 10, input);
        let mut chunk = Vec::with_capacity(crate::limits::MAP_INPUT_CHUNK);
        // One buffer reused for every line, so each line is allocated once at its own size
        // (a fresh `Vec` per `read_until` grew through a reallocation per doubling).
        let mut buf = Vec::new();
        let mut number = 0;
        loop {
            if !chunk.is_empty()
                && (reader.buffer().is_empty() || chunk.len() >= crate::limits::MAP_INPUT_CHUNK)
            {
                let full = std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(crate::limits::MAP_INPUT_CHUNK),
                );
                if tx.blocking_send(full).is_err() {
                    return;
                }
            }
            number += 1;
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    let mut line: &[u8] = &buf;
                    if let Some(l) = line.strip_suffix(b"\n") {
                        line = l.strip_suffix(b"\r").unwrap_or(l);
                    }
                    chunk.push(RawLine::Line(number, line.to_vec()));
                }
                Err(e) => {
                    chunk.push(RawLine::Unreadable(format!("input line {number}: {e}")));
                    // An unreadable input does not get better by reading on.
                    break;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
    });
}

/// Checks and routes one chunk of lines.
fn route_chunk(chunk: Vec<RawLine>) -> Vec<RawInput> {
    chunk
        .into_iter()
        .filter_map(|raw| match raw {
            RawLine::Unreadable(why) => Some(RawInput::Bad(why)),
            RawLine::Line(number, line) => match String::from_utf8(line) {
                Ok(line) => route(line, number),
                // One bad line is that line's error; the next may be fine.
                Err(e) => Some(RawInput::Bad(format!(
                    "input line {number}: not UTF-8 text: {}",
                    e.utf8_error()
                ))),
            },
        })
        .collect()
}

/// Chunks routed on the runtime's threads at once, ahead of the one the pipeline waits for.
const ROUTE_AHEAD: usize = 4;

/// Routes the reader's chunks on the runtime's threads, several at once, and passes them on
/// in input order: the reader thread alone would otherwise do a fifth of `berth map`'s work,
/// more than its share of two cores.
async fn route_stage(mut raw: mpsc::Receiver<Vec<RawLine>>, tx: mpsc::Sender<Vec<RawInput>>) {
    let mut ahead = std::collections::VecDeque::with_capacity(ROUTE_AHEAD);
    loop {
        // Start every chunk that is ready, up to the window; wait for one only when none is
        // being routed.
        while ahead.len() < ROUTE_AHEAD {
            let chunk = if ahead.is_empty() {
                match raw.recv().await {
                    Some(c) => c,
                    None => return,
                }
            } else {
                match raw.try_recv() {
                    Ok(c) => c,
                    Err(_) => break,
                }
            };
            ahead.push_back(tokio::task::spawn_blocking(move || route_chunk(chunk)));
        }
        // The loop above returns, or leaves at least one chunk in the window.
        let front = ahead.pop_front().expect("a chunk is being routed");
        let routed = match front.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => vec![RawInput::Bad(format!(
                "routing input lines: {}",
                crate::panics::text(&*e.into_panic())
            ))],
            Err(e) => vec![RawInput::Bad(format!("routing input lines: {e}"))],
        };
        if tx.send(routed).await.is_err() {
            return;
        }
    }
}

fn entry_error_text(e: EntryError, plugin: &str) -> String {
    match e {
        EntryError::InvalidMapping(m) => format!("invalid mapping: {m}"),
        EntryError::UnsupportedKind(k) => format!("plugin {plugin} does not handle kind {k}"),
        EntryError::InvalidJq(j) => format!(
            "{}: invalid JQ `{}`{}: {}",
            j.field,
            j.expression,
            j.position
                .map(|p| format!(" at character {p}"))
                .unwrap_or_default(),
            j.message
        ),
    }
}

fn item_error_text(e: ItemError) -> String {
    match e {
        ItemError::InvalidItem(m) => format!("invalid item: {m}"),
        ItemError::Selector(m) => m,
        ItemError::ItemsToParse(m) => format!("itemsToParse: {m}"),
        ItemError::Enrichment(m) => format!("enrichment failed: {m}"),
    }
}

/// Calls of one resource entry that ran out of time in this run, per entry: after
/// [`Breaker::LIMIT`] of them, the entry's remaining batches fail at once instead of each
/// burning a full time budget (a mapping that never ends would otherwise spend the tenant's
/// limit once per batch, at other tenants' expense under `berth serve`).
#[derive(Debug, Default)]
struct Breaker {
    timeouts: std::sync::Mutex<HashMap<usize, u32>>,
}

impl Breaker {
    const LIMIT: u32 = 2;

    fn open(&self, entry: usize) -> bool {
        self.timeouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&entry)
            .is_some_and(|n| *n >= Self::LIMIT)
    }

    fn timed_out(&self, entry: usize) {
        *self
            .timeouts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(entry)
            .or_default() += 1;
    }
}

/// What became of a batch: per entry of the request, in its order, one result per item.
type EntryResults = Vec<Vec<Result<EntryOutput, String>>>;

/// One result per entry and item. When the plugin traps, the batch is split and retried so
/// that one poisoned item fails alone and its neighbours still map (a trap costs a fresh
/// instance, so this stays cheap). Time and memory limits are not retried: they would only
/// multiply the cost.
fn map_isolating<'a>(
    plugin: &'a LoadedPlugin,
    tenant: &'a Tenant,
    place: &'a Option<Place>,
    req: &'a BatchRequest,
    breaker: &'a Breaker,
) -> futures::future::BoxFuture<'a, EntryResults> {
    Box::pin(async move {
        let n = req.items.len();
        match plugin.map_batch(tenant, place.clone(), req).await {
            Ok(entries) => entries
                .into_iter()
                .map(|entry| match entry {
                    Ok(items) => items
                        .into_iter()
                        .map(|r| r.map_err(item_error_text))
                        .collect(),
                    Err(e) => vec![Err(entry_error_text(e, &plugin.info.name)); n],
                })
                .collect(),
            Err(PluginError::Trap { .. }) if n > 1 => {
                let half = |items: &[String]| BatchRequest {
                    kind: req.kind.clone(),
                    entries: req.entries.clone(),
                    items: items.to_vec(),
                };
                let (left, right) = (half(&req.items[..n / 2]), half(&req.items[n / 2..]));
                let mut out = map_isolating(plugin, tenant, place, &left, breaker).await;
                let rest = map_isolating(plugin, tenant, place, &right, breaker).await;
                for (o, r) in out.iter_mut().zip(rest) {
                    o.extend(r);
                }
                out
            }
            Err(e) => {
                if matches!(e, PluginError::Timeout { .. }) {
                    for entry in &req.entries {
                        breaker.timed_out(entry.index as usize);
                    }
                }
                let m = e.to_string();
                req.entries
                    .iter()
                    .map(|_| vec![Err(m.clone()); n])
                    .collect()
            }
        }
    })
}

/// Map one batch against every resource entry of its kind, in one call per batch: the
/// plugin parses and enriches each item once whatever the number of entries.
async fn map_one(
    registry: &Registry,
    tenant: &Tenant,
    entries: &[ResourceEntry],
    batch: Batch,
    breaker: &Breaker,
) -> Event {
    crate::panics::inject("map.batch", &batch.kind);
    let n = batch.items.len() as u64;
    let mut stats = KindStats::default();
    let mut entities = Vec::new();
    let mut misconfigured = Vec::new();
    let mut errors: Vec<(String, u64)> = Vec::new();
    let mut examples: Vec<(String, String)> = Vec::new();
    let snapshot = registry.snapshot();
    // A kind whose plugin file failed to load is an error here, never a fallback to `*`.
    let plugin = match snapshot.serve(&batch.kind, |name| tenant.allows(name)) {
        Ok(p) => p,
        Err(why) => {
            stats.errors += n;
            errors.push((why.to_string(), n));
            let failed = KindStats {
                items: n,
                errors: n,
                ..KindStats::default()
            };
            return Event::Output {
                kind: batch.kind,
                place: batch.place,
                entities,
                stats,
                entries: entries.iter().map(|e| (e.index, failed.clone())).collect(),
                misconfigured,
                errors,
                examples,
            };
        }
    };
    let mut per_entry = Vec::with_capacity(entries.len());
    // An entry whose calls ran out of time too often fails at once instead of each batch
    // burning a full time budget.
    let (open, tripped): (Vec<&ResourceEntry>, Vec<&ResourceEntry>) =
        entries.iter().partition(|e| !breaker.open(e.index));
    for entry in tripped {
        let m = format!(
            "{}: not mapped: resources[{}] ran out of time {} times in this sync",
            crate::mapping::entry_label(entry.index, &entry.kind),
            entry.index,
            Breaker::LIMIT
        );
        errors.push((m, n));
        stats.errors += n;
        per_entry.push((
            entry.index,
            KindStats {
                items: n,
                errors: n,
                ..KindStats::default()
            },
        ));
    }
    let req = BatchRequest {
        kind: batch.kind.clone(),
        entries: open
            .iter()
            .map(|e| Entry {
                index: e.index as u32,
                mapping: e.json.clone(),
            })
            .collect(),
        items: batch.items,
    };
    let results = if req.entries.is_empty() {
        Vec::new()
    } else {
        map_isolating(&plugin, tenant, &batch.place, &req, breaker).await
    };
    for (entry, results) in open.iter().zip(results) {
        let mut es = KindStats {
            items: n,
            ..KindStats::default()
        };
        let at = crate::mapping::entry_label(entry.index, &entry.kind);
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(o) => {
                    es.entities += o.entities.len() as u64;
                    es.filtered_out += u64::from(o.filtered_out);
                    es.skipped += u64::from(o.skipped);
                    entities.extend(o.entities.into_iter().map(|e| (entry.index, e)));
                    for m in o.misconfigured {
                        misconfigured.push(((entry.index, m.field, m.expression), m.message));
                    }
                }
                Err(m) => {
                    es.errors += 1;
                    let m = format!("{at}: {m}");
                    if let Some(item) = req.items.get(i) {
                        examples.push((m.clone(), item_name(item, batch.place.as_ref())));
                    }
                    errors.push((m, 1));
                }
            }
        }
        stats.entities += es.entities;
        stats.filtered_out += es.filtered_out;
        stats.skipped += es.skipped;
        stats.errors += es.errors;
        per_entry.push((entry.index, es));
    }
    Event::Output {
        kind: batch.kind,
        place: batch.place,
        entities,
        stats,
        entries: per_entry,
        misconfigured,
        errors,
        examples,
    }
}

/// A batch none of whose items mapped, for `why`.
fn failed_batch(
    kind: String,
    place: Option<Place>,
    n: u64,
    entries: &[ResourceEntry],
    why: &str,
) -> Event {
    let failed = KindStats {
        items: n,
        errors: n,
        ..KindStats::default()
    };
    Event::Output {
        entries: entries.iter().map(|e| (e.index, failed.clone())).collect(),
        errors: vec![(format!("{kind}: mapping panicked: {why}"), n)],
        kind,
        place,
        entities: Vec::new(),
        stats: failed,
        misconfigured: Vec::new(),
        examples: Vec::new(),
    }
}

/// Map every raw item of `input` (JSON lines) and write each entity as a
/// line to `out`. Returns the run's summary; items that fail are counted
/// there, they do not stop the run.
pub async fn run<R, W>(
    registry: Arc<Registry>,
    mapping: Arc<MappingFile>,
    tenant: Tenant,
    input: R,
    mut out: W,
    opts: MapOptions,
) -> std::io::Result<Summary>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let (raw_tx, raw_rx) = mpsc::channel::<Vec<RawLine>>(16);
    let (in_tx, in_rx) = mpsc::channel::<Vec<RawInput>>(ROUTE_AHEAD);
    let (out_tx, mut out_rx) = mpsc::channel::<Mapped>(opts.jobs.max(1) * 4);
    reader_thread(input, raw_tx);
    tokio::spawn(route_stage(raw_rx, in_tx));
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        while let Some(m) = out_rx.blocking_recv() {
            for (_, e) in &m.entities {
                crate::catalog::port::entity::write_full_json(&mut out, &e.blueprint, &e.body)?;
                out.write_all(b"\n")?;
            }
            // A live stream sees each batch at once; a bulk run writes in big blocks.
            if out_rx.is_empty() {
                out.flush()?;
            }
        }
        Ok(())
    });
    let summary = run_stream(registry, mapping, tenant, in_rx, out_tx, opts).await;
    writer.await.map_err(std::io::Error::other)??;
    Ok(summary)
}

/// The pipeline behind [`run`], channel to channel: raw items in (a discovery stream, or lines
/// read by `run`), mapped batches out, in the order batches finish. Memory stays bounded by
/// the channels' capacities and the batches in flight. Returns when `input` is closed and
/// every batch was sent (or `out` was dropped).
pub async fn run_stream(
    registry: Arc<Registry>,
    mapping: Arc<MappingFile>,
    tenant: Tenant,
    mut in_rx: mpsc::Receiver<Vec<RawInput>>,
    out: mpsc::Sender<Mapped>,
    opts: MapOptions,
) -> Summary {
    let jobs = opts.jobs.max(1);
    let (ev_tx, mut ev_rx) = mpsc::channel::<Event>(jobs * 4);

    // The only owner of the summary; forwards entities.
    let collector = tokio::spawn(async move {
        let mut summary = Summary::default();
        while let Some(ev) = ev_rx.recv().await {
            match ev {
                Event::Items { kind, n } => summary.kinds.entry(kind).or_default().items += n,
                Event::Error(m) => summary.error(m, 1),
                Event::Output {
                    kind,
                    place,
                    entities,
                    stats,
                    entries,
                    misconfigured,
                    errors,
                    examples,
                } => {
                    for (i, e) in entries {
                        let t = summary.entries.entry(i).or_default();
                        t.items += e.items;
                        t.entities += e.entities;
                        t.filtered_out += e.filtered_out;
                        t.skipped += e.skipped;
                        t.errors += e.errors;
                    }
                    let k = summary.kinds.entry(kind.clone()).or_default();
                    k.entities += stats.entities;
                    k.filtered_out += stats.filtered_out;
                    k.skipped += stats.skipped;
                    k.errors += stats.errors;
                    for (key, message) in misconfigured {
                        summary
                            .misconfigured
                            .entry(key)
                            .or_insert(crate::pipeline::map::MisconfiguredField {
                                count: 0,
                                message,
                            })
                            .count += 1;
                    }
                    for (m, n) in errors {
                        summary.error(m, n);
                    }
                    for (m, item) in examples {
                        summary.examples.entry(m).or_insert(item);
                    }
                    let mapped = Mapped {
                        kind,
                        place,
                        entities,
                        failed_items: stats.errors,
                    };
                    // A consumer that went away wants nothing more; keep counting.
                    let _ = out.send(mapped).await;
                }
            }
        }
        summary
    });

    let permits = Arc::new(Semaphore::new(jobs));
    let breaker = Arc::new(Breaker::default());
    let mut tasks = tokio::task::JoinSet::new();
    // Each partial batch with the time its first item came: a batch is mapped when full, or
    // once it is `linger` old and no input is waiting (a busy input fills batches instead).
    let mut pending: HashMap<(String, Option<Place>), (Instant, Vec<String>)> = HashMap::new();
    let dispatch = |batch: Batch, tasks: &mut tokio::task::JoinSet<()>, permit| {
        let entries: Vec<ResourceEntry> = mapping.for_kind(&batch.kind).cloned().collect();
        let (registry, tenant, ev_tx) = (registry.clone(), tenant.clone(), ev_tx.clone());
        let breaker = breaker.clone();
        tasks.spawn(async move {
            let _permit = permit;
            // Under `berth serve`, CPU is shared with other tenants: wait for a fair slot.
            let _slot = match &tenant.share {
                Some((budget, weight)) => Some(
                    budget
                        .acquire(&tenant.id, *weight, batch.items.len() as u64)
                        .await,
                ),
                None => None,
            };
            let (kind, place, n) = (batch.kind.clone(), batch.place.clone(), batch.items.len());
            let ev = match AssertUnwindSafe(map_one(&registry, &tenant, &entries, batch, &breaker))
                .catch_unwind()
                .await
            {
                Ok(ev) => ev,
                // A bug of the host's, not the plugin's (a trap is an error, not a panic): the
                // batch's items count as failed, so their scope is incomplete and nothing it
                // could have produced is deleted.
                Err(p) => failed_batch(kind, place, n as u64, &entries, &crate::panics::text(&*p)),
            };
            let _ = ev_tx.send(ev).await;
        });
    };

    loop {
        let oldest = pending.values().map(|(since, _)| *since).min();
        let next = match oldest {
            None => in_rx.recv().await.map(Some),
            Some(since) => {
                let deadline = tokio::time::Instant::from_std(since + opts.linger);
                match tokio::time::timeout_at(deadline, in_rx.recv()).await {
                    Ok(v) => v.map(Some),
                    Err(_) => Some(None),
                }
            }
        };
        let ended = next.is_none();
        match next {
            None | Some(None) => {}
            Some(Some(chunk)) => {
                // Counted per chunk and kind: one event, not one per item.
                let mut seen: Vec<(String, u64)> = Vec::new();
                for input in chunk {
                    let (kind, place, line) = match input {
                        RawInput::Bad(m) => {
                            let _ = ev_tx.send(Event::Error(m)).await;
                            continue;
                        }
                        RawInput::Item { kind, place, line } => (kind, place, line),
                    };
                    match seen.iter_mut().find(|(k, _)| *k == kind) {
                        Some((_, n)) => *n += 1,
                        None => seen.push((kind.clone(), 1)),
                    }
                    if mapping.for_kind(&kind).next().is_none() {
                        // No resource entry for this kind: nothing to map.
                        continue;
                    }
                    // The key moves in; nothing is cloned per item.
                    let full = match pending.entry((kind, place)) {
                        Slot::Occupied(mut group) => {
                            group.get_mut().1.push(line);
                            (group.get().1.len() >= opts.batch_items)
                                .then(|| group.remove_entry())
                                .map(|(key, (_, items))| (key, items))
                        }
                        Slot::Vacant(v) if opts.batch_items <= 1 => {
                            Some((v.into_key(), vec![line]))
                        }
                        Slot::Vacant(v) => {
                            let mut group = Vec::with_capacity(opts.batch_items);
                            group.push(line);
                            v.insert((Instant::now(), group));
                            None
                        }
                    };
                    if let Some(((kind, place), items)) = full {
                        let permit = permits.clone().acquire_owned().await.expect("semaphore");
                        dispatch(Batch { kind, place, items }, &mut tasks, permit);
                    }
                }
                for (kind, n) in seen {
                    let _ = ev_tx.send(Event::Items { kind, n }).await;
                }
            }
        }
        // At the end every batch goes; otherwise those that waited long enough, unless more
        // input is already waiting to fill them.
        if ended || in_rx.is_empty() {
            let now = Instant::now();
            let mut groups: Vec<_> = pending
                .extract_if(|_, (since, _)| ended || now.duration_since(*since) >= opts.linger)
                .collect();
            groups.sort_by(|a, b| a.0.cmp(&b.0));
            for ((kind, place), (_, items)) in groups {
                let permit = permits.clone().acquire_owned().await.expect("semaphore");
                dispatch(Batch { kind, place, items }, &mut tasks, permit);
            }
            while tasks.try_join_next().is_some() {}
        }
        if ended {
            break;
        }
    }
    while tasks.join_next().await.is_some() {}
    drop(ev_tx);
    collector
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A `Write` into a shared buffer, for [`run_collect`].
#[derive(Clone, Default)]
struct SharedBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// [`run`], collecting the entity lines in memory (for tests and
/// `berth plugin test`; a real run streams).
pub async fn run_collect<R>(
    registry: Arc<Registry>,
    mapping: Arc<MappingFile>,
    tenant: Tenant,
    input: R,
    opts: MapOptions,
) -> std::io::Result<(Summary, Vec<String>)>
where
    R: BufRead + Send + 'static,
{
    let buf = SharedBuf::default();
    let summary = run(registry, mapping, tenant, input, buf.clone(), opts).await?;
    let bytes = std::mem::take(&mut *buf.0.lock().expect("buffer lock"));
    let text = String::from_utf8(bytes).map_err(std::io::Error::other)?;
    Ok((summary, text.lines().map(str::to_string).collect()))
}

/// `berth map --explain`: for every expression of every resource entry, which evaluator runs
/// it and why, as the entry's plugin compiles it.
pub async fn explain(registry: &Registry, mapping: &MappingFile, tenant: &Tenant) -> String {
    let mut s = String::new();
    let snapshot = registry.snapshot();
    for entry in &mapping.resources {
        let label = crate::mapping::entry_label(entry.index, &entry.kind);
        let plugin = match snapshot.serve(&entry.kind, |name| tenant.allows(name)) {
            Ok(p) => p,
            Err(why) => {
                s.push_str(&format!("{label}: {why}\n\n"));
                continue;
            }
        };
        let plugin_name = format!("{}@{}", plugin.info.name, plugin.info.version);
        match plugin.explain(tenant, &entry.json).await {
            Err(e) => s.push_str(&format!("{label} ({plugin_name}): {e}\n\n")),
            Ok(None) => s.push_str(&format!(
                "{label} ({plugin_name}): built for berth:plugin@{}, which cannot explain\n\n",
                plugin.info.api_version
            )),
            Ok(Some(Err(e))) => s.push_str(&format!(
                "{label} ({plugin_name}): {}\n\n",
                entry_error_text(e, &plugin.info.name)
            )),
            Ok(Some(Ok(fields))) => {
                let fast = fields.iter().filter(|f| f.engine == "fast").count();
                s.push_str(&format!(
                    "{label} ({plugin_name}): {fast} of {} expressions on the fast path\n",
                    fields.len()
                ));
                let width = fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
                for f in &fields {
                    s.push_str(&format!(
                        "  {:<width$}  {:<7}  {}\n",
                        f.field, f.engine, f.expression
                    ));
                    if f.engine != "fast" {
                        s.push_str(&format!("  {:<width$}           why: {}\n", "", f.why));
                    }
                }
                s.push('\n');
            }
        }
    }
    s
}
