//! The streaming map pipeline behind `berth map` (and, later, the transform
//! stage of a sync): raw items in, Port entities out.
//!
//! Items are routed by `__Kind` to every resource entry of that kind, in
//! mapping order, grouped into batches per kind, account and region (a
//! plugin's lookups happen in the batch's scope), and mapped by the kind's
//! plugin in the sandbox, several batches at once. Every queue is bounded, so
//! memory does not grow with the input. Owns the [`Summary`] of a run; must
//! not touch Port or AWS.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

use crate::lookup::Scope;
use crate::mapping::{MappingFile, ResourceEntry};
use crate::plugin::{
    BatchError, BatchRequest, ItemError, ItemOutput, LoadedPlugin, PluginError, Registry, Tenant,
};

/// How a map run is shaped.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// Batches mapped at once.
    pub jobs: usize,
    /// Items per batch.
    pub batch_items: usize,
    /// How long a partial batch waits for more items before it is mapped
    /// (keeps a slow stream flowing).
    pub linger: Duration,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self {
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_items: 200,
            linger: Duration::from_millis(20),
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
    /// A raw item (its JSON text) of `kind`, discovered in `scope`.
    Item {
        kind: String,
        scope: Option<Scope>,
        line: String,
    },
    /// An input line that is not a raw item, with why.
    Bad(String),
}

/// The entities of one mapped batch, for a consumer in the same process (a sync).
#[derive(Debug, Clone)]
pub struct Mapped {
    pub kind: String,
    pub scope: Option<Scope>,
    /// Entity JSON texts, each with the index of the resource entry that produced it.
    pub entities: Vec<(usize, String)>,
    /// Items of the batch that failed (the scope's output is incomplete).
    pub failed_items: u64,
}

struct Batch {
    kind: String,
    scope: Option<Scope>,
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
        scope: Option<Scope>,
        entities: Vec<(usize, String)>,
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
pub fn item_name(item: &str, scope: Option<&Scope>) -> String {
    #[derive(Deserialize)]
    struct Named {
        #[serde(rename = "Identifier")]
        identifier: Option<String>,
    }
    let id = serde_json::from_str::<Named>(item)
        .ok()
        .and_then(|n| n.identifier)
        .unwrap_or_else(|| "(no Identifier)".into());
    match scope {
        Some(s) => format!("{id} ({}/{})", s.account_id, s.region),
        None => id,
    }
}

fn reader_thread<R: BufRead + Send + 'static>(input: R, tx: mpsc::Sender<RawInput>) {
    std::thread::spawn(move || {
        for (i, line) in input.lines().enumerate() {
            let msg = match line {
                Err(e) => RawInput::Bad(format!("input line {}: {e}", i + 1)),
                Ok(l) if l.trim().is_empty() => continue,
                Ok(l) => match serde_json::from_str::<Route>(&l) {
                    Err(e) => {
                        RawInput::Bad(format!("input line {}: not a JSON object: {e}", i + 1))
                    }
                    Ok(Route { kind: None, .. }) => {
                        RawInput::Bad(format!("input line {}: no __Kind", i + 1))
                    }
                    Ok(Route {
                        kind: Some(kind),
                        account,
                        region,
                    }) => RawInput::Item {
                        kind,
                        scope: match (account, region) {
                            (Some(account_id), Some(region)) => Some(Scope { account_id, region }),
                            _ => None,
                        },
                        line: l,
                    },
                },
            };
            if tx.blocking_send(msg).is_err() {
                break;
            }
        }
    });
}

fn batch_error_text(e: BatchError, plugin: &str) -> String {
    match e {
        BatchError::InvalidMapping(m) => format!("invalid mapping: {m}"),
        BatchError::UnsupportedKind(k) => format!("plugin {plugin} does not handle kind {k}"),
        BatchError::InvalidJq(j) => format!(
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

/// One result per item. When the plugin traps, the batch is split and
/// retried so that one poisoned item fails alone and its neighbours still
/// map (a trap costs a fresh instance, so this stays cheap). Time and
/// memory limits are not retried: they would only multiply the cost.
fn map_isolating<'a>(
    plugin: &'a LoadedPlugin,
    tenant: &'a Tenant,
    scope: &'a Option<Scope>,
    req: BatchRequest,
    breaker: &'a Breaker,
) -> futures::future::BoxFuture<'a, Vec<Result<ItemOutput, String>>> {
    Box::pin(async move {
        let n = req.items.len();
        let entry = req.resource_index as usize;
        if breaker.open(entry) {
            return vec![
                Err(format!(
                    "not mapped: resources[{entry}] ran out of time {} times in this sync",
                    Breaker::LIMIT
                ));
                n
            ];
        }
        match plugin.map_batch(tenant, scope.clone(), &req).await {
            Ok(Ok(results)) => results
                .into_iter()
                .map(|r| r.map_err(item_error_text))
                .collect(),
            Ok(Err(e)) => vec![Err(batch_error_text(e, &plugin.info.name)); n],
            Err(PluginError::Trap { .. }) if n > 1 => {
                let mut right = req.clone();
                let left_items = req.items[..n / 2].to_vec();
                right.items = req.items[n / 2..].to_vec();
                let left = BatchRequest {
                    items: left_items,
                    ..req
                };
                let mut out = map_isolating(plugin, tenant, scope, left, breaker).await;
                out.extend(map_isolating(plugin, tenant, scope, right, breaker).await);
                out
            }
            Err(e) => {
                if matches!(e, PluginError::Timeout { .. }) {
                    breaker.timed_out(entry);
                }
                vec![Err(e.to_string()); n]
            }
        }
    })
}

/// Map one batch against every resource entry of its kind.
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
    let (found, refused) = match snapshot.serve(&batch.kind, |name| tenant.allows(name)) {
        Ok(p) => (Some(p), None),
        Err(why) => (None, Some(why.to_string())),
    };
    let Some(plugin) = found else {
        stats.errors += n;
        errors.push((refused.unwrap_or_default(), n));
        let entries = entries
            .iter()
            .map(|e| {
                (
                    e.index,
                    KindStats {
                        items: n,
                        errors: n,
                        ..KindStats::default()
                    },
                )
            })
            .collect();
        return Event::Output {
            kind: batch.kind,
            scope: batch.scope,
            entities,
            stats,
            entries,
            misconfigured,
            errors,
            examples,
        };
    };
    let mut per_entry = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut es = KindStats {
            items: n,
            ..KindStats::default()
        };
        let req = BatchRequest {
            kind: batch.kind.clone(),
            resource_index: entry.index as u32,
            mapping: entry.json.clone(),
            items: batch.items.clone(),
        };
        let at = crate::mapping::entry_label(entry.index, &entry.kind);
        let results = map_isolating(&plugin, tenant, &batch.scope, req, breaker).await;
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
                    if let Some(item) = batch.items.get(i) {
                        examples.push((m.clone(), item_name(item, batch.scope.as_ref())));
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
        scope: batch.scope,
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
    scope: Option<Scope>,
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
        scope,
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
    R: BufRead + Send + 'static,
    W: Write + Send + 'static,
{
    let (in_tx, in_rx) = mpsc::channel::<RawInput>(4096);
    let (out_tx, mut out_rx) = mpsc::channel::<Mapped>(opts.jobs.max(1) * 4);
    reader_thread(input, in_tx);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        while let Some(m) = out_rx.blocking_recv() {
            for (_, e) in &m.entities {
                out.write_all(e.as_bytes())?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
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
    mut in_rx: mpsc::Receiver<RawInput>,
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
                    scope,
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
                            .or_insert(crate::map::MisconfiguredField { count: 0, message })
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
                        scope,
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
    let mut pending: HashMap<(String, Option<Scope>), Vec<String>> = HashMap::new();
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
            let (kind, scope, n) = (batch.kind.clone(), batch.scope.clone(), batch.items.len());
            let ev = match AssertUnwindSafe(map_one(&registry, &tenant, &entries, batch, &breaker))
                .catch_unwind()
                .await
            {
                Ok(ev) => ev,
                // A bug of the host's, not the plugin's (a trap is an error, not a panic): the
                // batch's items count as failed, so their scope is incomplete and nothing it
                // could have produced is deleted.
                Err(p) => failed_batch(kind, scope, n as u64, &entries, &crate::panics::text(&*p)),
            };
            let _ = ev_tx.send(ev).await;
        });
    };

    loop {
        let next = if pending.is_empty() {
            in_rx.recv().await.map(Some)
        } else {
            match tokio::time::timeout(opts.linger, in_rx.recv()).await {
                Ok(v) => v.map(Some),
                Err(_) => Some(None),
            }
        };
        let ended = next.is_none();
        let flush_all = match next {
            None => true,
            Some(None) => true,
            Some(Some(RawInput::Bad(m))) => {
                let _ = ev_tx.send(Event::Error(m)).await;
                false
            }
            Some(Some(RawInput::Item { kind, scope, line })) => {
                let _ = ev_tx
                    .send(Event::Items {
                        kind: kind.clone(),
                        n: 1,
                    })
                    .await;
                if mapping.for_kind(&kind).next().is_none() {
                    // No resource entry for this kind: nothing to map.
                    continue;
                }
                let key = (kind, scope);
                let group = pending.entry(key.clone()).or_default();
                group.push(line);
                if group.len() >= opts.batch_items {
                    let items = pending.remove(&key).unwrap_or_default();
                    let permit = permits.clone().acquire_owned().await.expect("semaphore");
                    dispatch(
                        Batch {
                            kind: key.0,
                            scope: key.1,
                            items,
                        },
                        &mut tasks,
                        permit,
                    );
                }
                false
            }
        };
        if flush_all {
            let mut groups: Vec<_> = pending.drain().collect();
            groups.sort_by(|a, b| a.0.cmp(&b.0));
            for ((kind, scope), items) in groups {
                let permit = permits.clone().acquire_owned().await.expect("semaphore");
                dispatch(Batch { kind, scope, items }, &mut tasks, permit);
            }
            while tasks.try_join_next().is_some() {}
            if ended {
                break;
            }
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
