//! Discovery: every (account, region, kind) scope read through Cloud
//! Control (and Organizations for `AWS::Organizations::Account`), each page
//! streamed on as it arrives, each scope ending **complete**, **denied** or
//! **failed** — never silently empty.
//!
//! The work pool is tokio's work-stealing scheduler with two bounds: scopes
//! active at once (`max_active_scopes`, which bounds memory: a scope holds
//! at most one page and its in-flight gets) and API calls in flight
//! (`max_in_flight`, in `call.rs`). Accounts are prepared concurrently
//! (`max_concurrent_accounts`) and each account's scopes start as soon as it
//! is ready, so there are no waves: a slow account or region holds up
//! nothing but itself. Within a scope the next `ListResources` page is
//! fetched while the current page's `GetResource` calls run, so the list
//! and get buckets of a scope both stay busy. Every call is paced by its
//! API's bucket for the account and region (`limiter.rs`).
//!
//! Global kinds are listed once per account. A kind whose items must be
//! read in their home region ([`s3::read_in_home_region`]: S3 buckets) is
//! listed in the first region that works and its items handed to one
//! reader per home region, which reads them there; so it gets one scope per
//! region, like regional kinds, and every region's `GetResource` bucket
//! works at once. Which region an item goes to (or that it is homed in a
//! region not read) is [`s3::Assignment`]'s answer, asked once per item;
//! how homes are found and cached is `s3.rs`'s. Other global kinds (IAM,
//! Route 53, CloudFront, WAF) get one scope, in the region they were read
//! from. ECS services are listed per cluster.
//!
//! Every failure ends as a scope, so that reconciliation can never mistake
//! work that did not happen for resources that are gone: an account whose
//! role cannot be assumed, or whose regions cannot be listed, reports the
//! account-wide scope `account/*/*` (denied or failed) besides whatever it
//! did read; a task that panics reports its scope (`account/*/*` for an
//! account's task, `account/*/kind` for a global kind's, the exact scope for
//! a regional one) as failed, with the panic's message.
//!
//! Owns: [`Event`], [`RawItem`], the reports, and [`discover`]; a scope's
//! key and status are [`crate::scope`]'s, shared with the Port side. Must
//! not map items or decide deletions: the report says which scopes are
//! complete; the caller decides.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::accounts::{self, account_item};
use super::call::{CallCounts, CallError, CallStats, ErrorClass};
use super::config::KindPlan;
use super::s3;
use super::session::{AccountCtx, AwsSync};
use crate::scope::{ScopeKey, ScopeStatus};

pub const ORG_ACCOUNT_KIND: &str = "AWS::Organizations::Account";
/// Kinds whose list handler needs a parent in `ResourceModel`:
/// (kind, parent kind, model key).
const PARENTED: &[(&str, &str, &str)] = &[("AWS::ECS::Service", "AWS::ECS::Cluster", "Cluster")];

/// One `ListResources` page: items and the next token.
/// A resource as Cloud Control returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudResource {
    pub identifier: String,
    /// JSON text of the resource's properties.
    pub properties: String,
}

type Page = (Vec<CloudResource>, Option<String>);

/// How a kind's scopes are laid out in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Listed and read in every region, one scope each.
    Regional,
    /// Listed once, in the first region that works; one scope.
    Global,
    /// Listed once, each item read in its home region; one scope per region.
    PerHomeRegion,
}

fn layout(kind: &str) -> Layout {
    if s3::read_in_home_region(kind) {
        Layout::PerHomeRegion
    } else if matches!(
        kind.split("::").nth(1),
        Some("IAM" | "Route53" | "CloudFront" | "WAF" | "Organizations" | "GlobalAccelerator")
    ) {
        Layout::Global
    } else {
        Layout::Regional
    }
}

/// Kinds listed once per account rather than per region.
pub fn is_global_kind(kind: &str) -> bool {
    layout(kind) != Layout::Regional
}

/// A raw item as `berth map` takes it:
/// `{Identifier, Properties, __Kind, __Region, __AccountId}`, as the JSON line it travels as.
/// Discovery writes the line around Cloud Control's `Properties` text without parsing it into
/// a tree: the plugin parses each item once, nobody before it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawItem {
    pub kind: String,
    pub account_id: String,
    pub region: String,
    /// The item as one compact JSON object (no line break).
    pub line: String,
}

impl RawItem {
    fn cloud(kind: &str, account_id: &str, region: &str, r: &CloudResource) -> Self {
        let quoted = |s: &str| Value::from(s).to_string();
        let props = r.properties.trim();
        // Valid JSON on one line goes in as it is (validating builds no tree); anything else
        // as before: re-written compactly, or kept as a string when it is not JSON at all.
        let props = if !props.contains(['\n', '\r'])
            && serde_json::from_str::<serde::de::IgnoredAny>(props).is_ok()
        {
            std::borrow::Cow::Borrowed(props)
        } else {
            let v = serde_json::from_str::<Value>(props)
                .unwrap_or_else(|_| Value::String(r.properties.clone()));
            std::borrow::Cow::Owned(v.to_string())
        };
        Self {
            kind: kind.into(),
            account_id: account_id.into(),
            region: region.into(),
            line: format!(
                "{{\"Identifier\":{},\"Properties\":{props},\"__Kind\":{},\"__Region\":{},\"__AccountId\":{}}}",
                quoted(&r.identifier),
                quoted(kind),
                quoted(region),
                quoted(account_id),
            ),
        }
    }

    /// The item parsed, for callers off the hot path (tests, `berth discover --lookups`).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.line).unwrap_or(Value::Null)
    }

    /// One JSON line.
    pub fn to_json_line(&self) -> String {
        self.line.clone()
    }

    /// The item's scope and its JSON line, taken apart without copying.
    pub fn into_parts(self) -> (ScopeKey, String) {
        (
            ScopeKey::new(self.account_id, self.region, self.kind),
            self.line,
        )
    }
}

/// The end of one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeReport {
    pub key: ScopeKey,
    pub status: ScopeStatus,
    pub items: u64,
    /// Listed but gone by the time `GetResource` asked.
    pub vanished: u64,
    /// Global kinds: listed here but homed in a region not read.
    pub outside_regions: u64,
    pub calls: CallCounts,
    pub elapsed: Duration,
}

/// One account of the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReport {
    pub account_id: String,
    pub name: Option<String>,
    pub role_arn: Option<String>,
    pub regions: Vec<String>,
    /// Set when the account could not be read at all: it is incomplete.
    pub error: Option<String>,
    pub notes: Vec<String>,
}

/// What a discovery run streams.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Item(RawItem),
    /// An account is ready (or could not be read); its scopes follow.
    Account(AccountReport),
    /// A scope ended; all its items were sent before this.
    Scope(ScopeReport),
}

/// Everything a discovery run did.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryReport {
    pub accounts: Vec<AccountReport>,
    pub scopes: Vec<ScopeReport>,
    /// Calls to set the sync up (credentials, accounts, regions).
    pub setup: CallCounts,
    pub notes: Vec<String>,
    pub elapsed: Duration,
}

impl DiscoveryReport {
    /// Every account was read and every scope is complete.
    pub fn is_complete(&self) -> bool {
        self.accounts.iter().all(|a| a.error.is_none())
            && self
                .scopes
                .iter()
                .all(|s| s.status == ScopeStatus::Complete)
    }

    pub fn items(&self) -> u64 {
        self.scopes.iter().map(|s| s.items).sum()
    }

    pub fn calls(&self) -> CallCounts {
        let mut c = self.setup;
        for s in &self.scopes {
            c += s.calls;
        }
        c
    }

    pub fn scope(&self, account_id: &str, region: &str, kind: &str) -> Option<&ScopeReport> {
        self.scopes.iter().find(|s| {
            s.key.account_id == account_id && s.key.region == region && s.key.kind == kind
        })
    }

    /// The per-scope summary printed on stderr.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:<15} {:<28} {:<9} {:>7} {:>6} {:>7} {:>9} {:>8}",
            "account",
            "region",
            "kind",
            "status",
            "items",
            "calls",
            "retries",
            "throttles",
            "seconds"
        );
        for s in &self.scopes {
            let _ = writeln!(
                out,
                "{:<12} {:<15} {:<28} {:<9} {:>7} {:>6} {:>7} {:>9} {:>8.2}",
                s.key.account_id,
                s.key.region,
                s.key.kind,
                s.status.label(),
                s.items,
                s.calls.calls,
                s.calls.retries,
                s.calls.throttles,
                s.elapsed.as_secs_f64()
            );
            match &s.status {
                ScopeStatus::Complete => {}
                ScopeStatus::Denied(m) | ScopeStatus::Failed(m) => {
                    let _ = writeln!(out, "    {m}");
                }
            }
        }
        for a in &self.accounts {
            if let Some(e) = &a.error {
                let _ = writeln!(out, "account {} incomplete: {e}", a.account_id);
            }
            for n in &a.notes {
                let _ = writeln!(out, "account {}: {n}", a.account_id);
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let count = |l: &str| self.scopes.iter().filter(|s| s.status.label() == l).count();
        let c = self.calls();
        let _ = writeln!(
            out,
            "{} items; {} accounts ({} incomplete); {} scopes: {} complete, {} denied, {} failed; {} calls, {} retries, {} throttles; {:.2} s",
            self.items(),
            self.accounts.len(),
            self.accounts.iter().filter(|a| a.error.is_some()).count(),
            self.scopes.len(),
            count("complete"),
            count("denied"),
            count("failed"),
            c.calls,
            c.retries,
            c.throttles,
            self.elapsed.as_secs_f64()
        );
        out
    }
}

/// Why a scope stopped early.
#[derive(Debug)]
enum Stop {
    Call(CallError),
    /// The consumer went away.
    Cancelled,
    Other(String),
}

impl From<CallError> for Stop {
    fn from(e: CallError) -> Self {
        Stop::Call(e)
    }
}

/// An item whose home is unknown stops the whole listing: no region's
/// scope can be complete while it might be in any of them.
impl From<s3::HomeUnknown> for Stop {
    fn from(e: s3::HomeUnknown) -> Self {
        match e {
            s3::HomeUnknown::Denied(e) => Stop::Call(e),
            s3::HomeUnknown::Failed(m) => Stop::Other(m),
        }
    }
}

impl Stop {
    fn status(&self) -> ScopeStatus {
        match self {
            Stop::Call(e) if e.class == ErrorClass::Denied => ScopeStatus::Denied(e.to_string()),
            Stop::Call(e) => ScopeStatus::Failed(e.to_string()),
            Stop::Cancelled => {
                ScopeStatus::Failed("cancelled: the consumer stopped reading".into())
            }
            Stop::Other(m) => ScopeStatus::Failed(m.clone()),
        }
    }
}

/// One scope's counters.
#[derive(Debug)]
struct ScopeCtx {
    key: ScopeKey,
    stats: CallStats,
    items: AtomicU64,
    vanished: AtomicU64,
    outside: AtomicU64,
    started: Instant,
}

impl ScopeCtx {
    fn new(account_id: &str, region: &str, kind: &str) -> Arc<Self> {
        Arc::new(Self {
            key: ScopeKey::new(account_id, region, kind),
            stats: CallStats::default(),
            items: AtomicU64::new(0),
            vanished: AtomicU64::new(0),
            outside: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    fn report(&self, status: ScopeStatus) -> ScopeReport {
        ScopeReport {
            key: self.key.clone(),
            status,
            items: self.items.load(Ordering::Relaxed),
            vanished: self.vanished.load(Ordering::Relaxed),
            outside_regions: self.outside.load(Ordering::Relaxed),
            calls: self.stats.counts(),
            elapsed: self.started.elapsed(),
        }
    }
}

struct Shared {
    sync: Arc<AwsSync>,
    tx: mpsc::Sender<Event>,
    scopes: Semaphore,
    accounts_sem: Semaphore,
    reports: Mutex<Vec<ScopeReport>>,
    account_reports: Mutex<Vec<AccountReport>>,
}

impl Shared {
    async fn emit(&self, ctx: &ScopeCtx, item: RawItem) -> Result<(), Stop> {
        self.tx
            .send(Event::Item(item))
            .await
            .map_err(|_| Stop::Cancelled)?;
        ctx.items.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn finish(&self, ctx: &ScopeCtx, status: ScopeStatus) {
        let r = ctx.report(status);
        tracing::debug!(scope = %r.key.to_text(), status = r.status.label(), items = r.items, "scope done");
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r.clone());
        let _ = self.tx.send(Event::Scope(r)).await;
    }

    /// Ends a scope that no task will report (see the module doc).
    async fn finish_key(&self, key: &ScopeKey, status: ScopeStatus) {
        self.finish(
            &ScopeCtx::new(&key.account_id, &key.region, &key.kind),
            status,
        )
        .await;
    }
}

/// Runs one discovery task; if it panics, `key` (everything the task would have read) ends
/// failed with the panic's message instead of silently missing.
async fn guarded(sh: Arc<Shared>, key: ScopeKey, task: impl Future<Output = ()>) {
    if let Err(p) = AssertUnwindSafe(task).catch_unwind().await {
        let why = crate::panics::text(&*p);
        tracing::error!(scope = %key.to_text(), "discovery task panicked: {why}");
        sh.finish_key(
            &key,
            ScopeStatus::Failed(format!("discovery panicked: {why}")),
        )
        .await;
    }
}

/// Read every kind of `kinds` in every account and region of `sync`,
/// sending items and scope ends to `tx` as they happen. Returns when all
/// scopes have ended (or the receiver was dropped).
pub async fn discover(
    sync: Arc<AwsSync>,
    kinds: Vec<KindPlan>,
    tx: mpsc::Sender<Event>,
) -> DiscoveryReport {
    let started = Instant::now();
    let limits = sync.limits().clone();
    let sh = Arc::new(Shared {
        sync: sync.clone(),
        tx,
        scopes: Semaphore::new(limits.max_active_scopes.max(1)),
        accounts_sem: Semaphore::new(limits.max_concurrent_accounts.max(1)),
        reports: Mutex::new(Vec::new()),
        account_reports: Mutex::new(Vec::new()),
    });
    let (org_kind, kinds): (Vec<KindPlan>, Vec<KindPlan>) =
        kinds.into_iter().partition(|k| k.kind == ORG_ACCOUNT_KIND);
    let kinds = Arc::new(kinds);
    let mut tasks = JoinSet::new();
    if !org_kind.is_empty() {
        tasks.spawn(guarded(
            sh.clone(),
            ScopeKey::new("*", "*", ORG_ACCOUNT_KIND),
            org_accounts_scope(sh.clone()),
        ));
    }
    for spec in sync.accounts() {
        tasks.spawn(guarded(
            sh.clone(),
            ScopeKey::account_wide(&spec.id),
            account_task(sh.clone(), spec.id.clone(), kinds.clone()),
        ));
    }
    while let Some(r) = tasks.join_next().await {
        // Every task is guarded; a join error here is a cancellation.
        if let Err(e) = r {
            tracing::error!("discovery task ended abnormally: {e}");
        }
    }
    let mut scopes = std::mem::take(&mut *sh.reports.lock().unwrap_or_else(|e| e.into_inner()));
    scopes.sort_by(|a, b| a.key.cmp(&b.key));
    let mut accounts =
        std::mem::take(&mut *sh.account_reports.lock().unwrap_or_else(|e| e.into_inner()));
    accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    DiscoveryReport {
        accounts,
        scopes,
        setup: sync.setup_stats.counts(),
        notes: sync.notes.clone(),
        elapsed: started.elapsed(),
    }
}

async fn account_task(sh: Arc<Shared>, account_id: String, kinds: Arc<Vec<KindPlan>>) {
    crate::panics::inject("discover.account", &account_id);
    let acct = {
        let _permit = sh
            .accounts_sem
            .acquire()
            .await
            .expect("semaphore never closed");
        match sh.sync.account(&account_id).await {
            Some(a) => a,
            None => return,
        }
    };
    let report = AccountReport {
        account_id: acct.id().to_string(),
        name: acct.spec.name.clone(),
        role_arn: acct.spec.role_arn.as_ref().map(|a| a.to_string()),
        regions: acct.regions.clone(),
        error: acct.error.clone(),
        notes: acct.notes.clone(),
    };
    sh.account_reports
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(report.clone());
    if sh.tx.send(Event::Account(report)).await.is_err() {
        return;
    }
    let account_wide = ScopeKey::account_wide(acct.id());
    if let Some(e) = &acct.error {
        let status = if acct.denied {
            ScopeStatus::Denied(format!("the account's role could not be assumed: {e}"))
        } else {
            ScopeStatus::Failed(format!("the account's role could not be assumed: {e}"))
        };
        return sh.finish_key(&account_wide, status).await;
    }
    if let Some(e) = &acct.regions_unknown {
        sh.finish_key(&account_wide, ScopeStatus::Failed(e.clone()))
            .await;
    }
    let mut tasks = JoinSet::new();
    for plan in kinds.iter() {
        let regions: Vec<String> = acct
            .regions
            .iter()
            .filter(|r| plan.allows(r))
            .cloned()
            .collect();
        if regions.is_empty() {
            continue;
        }
        let kind_wide = ScopeKey::kind_wide(acct.id(), &plan.kind);
        match layout(&plan.kind) {
            Layout::PerHomeRegion => {
                let task = home_region_scopes(sh.clone(), acct.clone(), plan.clone(), regions);
                tasks.spawn(guarded(sh.clone(), kind_wide, task));
            }
            Layout::Global => {
                let task = global_scope(sh.clone(), acct.clone(), plan.clone(), regions);
                tasks.spawn(guarded(sh.clone(), kind_wide, task));
            }
            Layout::Regional => {
                for region in regions {
                    let key = ScopeKey::new(acct.id(), &region, &plan.kind);
                    let task = regional_scope(sh.clone(), acct.clone(), plan.clone(), region);
                    tasks.spawn(guarded(sh.clone(), key, task));
                }
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            tracing::error!("discovery task ended abnormally: {e}");
        }
    }
}

async fn regional_scope(sh: Arc<Shared>, acct: Arc<AccountCtx>, plan: KindPlan, region: String) {
    let _permit = sh.scopes.acquire().await.expect("semaphore never closed");
    let ctx = ScopeCtx::new(acct.id(), &region, &plan.kind);
    crate::panics::inject("discover.scope", &ctx.key.to_text());
    let r = match PARENTED.iter().find(|(k, _, _)| *k == plan.kind) {
        Some((_, parent, key)) => parented(&sh, &acct, &region, &plan, parent, key, &ctx).await,
        None => pages(&sh, &acct, &region, &plan, None, &ctx).await,
    };
    sh.finish(
        &ctx,
        r.map_or_else(|e| e.status(), |_| ScopeStatus::Complete),
    )
    .await;
}

/// A kind listed once per parent (ECS services per cluster).
async fn parented(
    sh: &Shared,
    acct: &AccountCtx,
    region: &str,
    plan: &KindPlan,
    parent: &str,
    key: &str,
    ctx: &ScopeCtx,
) -> Result<(), Stop> {
    let parents = sh
        .sync
        .list_all_cached(acct, region, parent, None, &ctx.stats)
        .await?;
    let k = sh.sync.limits().get_concurrency_per_scope.max(1);
    let mut runs = stream::iter(
        parents
            .iter()
            .map(|p| p.identifier.clone())
            .collect::<Vec<_>>(),
    )
    .map(|id| {
        let model = json!({ key: id }).to_string();
        async move {
            match pages(sh, acct, region, plan, Some(&model), ctx).await {
                // The parent went away between the two lists.
                Err(Stop::Call(e)) if e.class == ErrorClass::NotFound => Ok(()),
                r => r,
            }
        }
    })
    .buffer_unordered(k);
    while let Some(r) = runs.next().await {
        r?;
    }
    Ok(())
}

/// All pages of one listing; with `useGetResourceAPI`, each item read with
/// `GetResource` (the next page is fetched meanwhile).
async fn pages(
    sh: &Shared,
    acct: &AccountCtx,
    region: &str,
    plan: &KindPlan,
    model: Option<&str>,
    ctx: &ScopeCtx,
) -> Result<(), Stop> {
    let sync = &sh.sync;
    // With GetResource a listed item's own properties are never used: only identifiers are
    // kept, so the page waiting for its reads and the one fetched meanwhile (in every kind,
    // account and region at once) hold ids, not whole documents.
    let slim = |(mut items, next): (Vec<CloudResource>, Option<String>)| {
        if plan.use_get_resource_api {
            for r in &mut items {
                r.properties = String::new();
            }
        }
        (items, next)
    };
    let mut page = sync
        .list_page(acct, region, &plan.kind, model, None, &ctx.stats)
        .await
        .map(slim)?;
    let mut n = 1u64;
    loop {
        let (items, next) = page;
        let fetch_next = async {
            match next {
                Some(t) => Some(
                    sync.list_page(acct, region, &plan.kind, model, Some(t), &ctx.stats)
                        .await
                        .map(slim),
                ),
                None => None,
            }
        };
        let (next, done) = tokio::join!(fetch_next, emit_items(sh, acct, region, plan, items, ctx));
        done?;
        match next {
            None => return Ok(()),
            Some(p) => page = p?,
        }
        n += 1;
        // A scope that pages longer than `limits.aws.maxPages` is stuck in a `NextToken` loop.
        let max_pages = sync.limits().max_pages;
        if n > max_pages {
            return Err(Stop::Other(format!(
                "more than {max_pages} pages: NextToken never ends"
            )));
        }
    }
}

async fn emit_items(
    sh: &Shared,
    acct: &AccountCtx,
    region: &str,
    plan: &KindPlan,
    items: Vec<CloudResource>,
    ctx: &ScopeCtx,
) -> Result<(), Stop> {
    if !plan.use_get_resource_api {
        for r in &items {
            sh.emit(ctx, RawItem::cloud(&plan.kind, acct.id(), region, r))
                .await?;
        }
        return Ok(());
    }
    let k = sh.sync.limits().get_concurrency_per_scope.max(1);
    let mut gets = stream::iter(items)
        .map(|r: CloudResource| async move {
            sh.sync
                .get(acct, region, &plan.kind, &r.identifier, &ctx.stats)
                .await
        })
        .buffered(k);
    while let Some(r) = gets.next().await {
        match r? {
            Some(res) => {
                sh.emit(ctx, RawItem::cloud(&plan.kind, acct.id(), region, &res))
                    .await?
            }
            None => {
                ctx.vanished.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// A [`Layout::Global`] kind: read once, in the first region that works.
async fn global_scope(
    sh: Arc<Shared>,
    acct: Arc<AccountCtx>,
    plan: KindPlan,
    regions: Vec<String>,
) {
    let _permit = sh.scopes.acquire().await.expect("semaphore never closed");
    crate::panics::inject("discover.scope", &format!("{}/*/{}", acct.id(), plan.kind));
    let mut last: Option<(Arc<ScopeCtx>, Stop)> = None;
    for region in &regions {
        let ctx = ScopeCtx::new(acct.id(), region, &plan.kind);
        match pages(&sh, &acct, region, &plan, None, &ctx).await {
            Ok(()) => return sh.finish(&ctx, ScopeStatus::Complete).await,
            // Items already sent cannot be taken back: no second region.
            Err(e) if ctx.items.load(Ordering::Relaxed) > 0 || matches!(e, Stop::Cancelled) => {
                return sh.finish(&ctx, e.status()).await;
            }
            Err(e) => last = Some((ctx, e)),
        }
    }
    if let Some((ctx, e)) = last {
        sh.finish(&ctx, e.status()).await;
    }
}

/// A [`Layout::PerHomeRegion`] kind: listed once per account (first region
/// that works), each item read and reported in its home region.
async fn home_region_scopes(
    sh: Arc<Shared>,
    acct: Arc<AccountCtx>,
    plan: KindPlan,
    regions: Vec<String>,
) {
    let _permit = sh.scopes.acquire().await.expect("semaphore never closed");
    crate::panics::inject("discover.scope", &format!("{}/*/{}", acct.id(), plan.kind));
    let subs: BTreeMap<String, Arc<ScopeCtx>> = regions
        .iter()
        .map(|r| (r.clone(), ScopeCtx::new(acct.id(), r, &plan.kind)))
        .collect();
    let ended: Mutex<BTreeMap<String, ScopeStatus>> = Mutex::new(BTreeMap::new());
    let run = HomedRun {
        sh: &sh,
        acct: &acct,
        plan: &plan,
        regions: &regions,
        subs: &subs,
        ended: &ended,
    };
    let r = homed_read(&run).await;
    let ended = ended.into_inner().expect("lock");
    for (region, ctx) in &subs {
        let status = match (&r, ended.get(region)) {
            (_, Some(s)) => s.clone(),
            (Err(e), None) => e.status(),
            (Ok(()), None) => ScopeStatus::Complete,
        };
        sh.finish(ctx, status).await;
    }
}

/// One account's read of a [`Layout::PerHomeRegion`] kind: where each
/// item's reads and failures go.
struct HomedRun<'a> {
    sh: &'a Shared,
    acct: &'a AccountCtx,
    plan: &'a KindPlan,
    /// The regions read, in the order listing is tried.
    regions: &'a [String],
    subs: &'a BTreeMap<String, Arc<ScopeCtx>>,
    /// Regions whose scope already ended (denied or failed).
    ended: &'a Mutex<BTreeMap<String, ScopeStatus>>,
}

async fn homed_read(run: &HomedRun<'_>) -> Result<(), Stop> {
    let HomedRun { sh, regions, .. } = *run;
    // Items flow from the one listing to one reader per home region, so
    // every region's GetResource bucket is kept busy at once.
    let cap = sh.sync.limits().channel_items.max(1);
    let (txs, rxs): (BTreeMap<_, _>, Vec<_>) = regions
        .iter()
        .map(|r| {
            let (tx, rx) = mpsc::channel::<CloudResource>(cap);
            ((r.clone(), tx), (r.clone(), rx))
        })
        .unzip();
    let produce = async move {
        let r = homed_list(run, &txs).await;
        drop(txs);
        r
    };
    let readers = futures::future::join_all(
        rxs.into_iter()
            .map(|(region, rx)| home_reader(run, region, rx)),
    );
    let (listed, read) = tokio::join!(produce, readers);
    for r in read {
        r?;
    }
    listed
}

/// List the account's items (in the first region that answers) and hand
/// each to its home region's reader.
async fn homed_list(
    run: &HomedRun<'_>,
    txs: &BTreeMap<String, mpsc::Sender<CloudResource>>,
) -> Result<(), Stop> {
    let HomedRun {
        sh,
        acct,
        plan,
        regions,
        subs,
        ..
    } = *run;
    let sync = &sh.sync;
    let mut first: Option<(String, Page)> = None;
    let mut last_err = None;
    for region in regions {
        match sync
            .list_page(acct, region, &plan.kind, None, None, &subs[region].stats)
            .await
        {
            Ok(p) => {
                first = Some((region.clone(), p));
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((list_region, mut page)) = first else {
        return Err(Stop::Call(last_err.expect("at least one region was tried")));
    };
    let list_ctx = &subs[&list_region];
    // Home lookups count in the listing's scope, where they are made.
    let homes = s3::Assignment::new(sync, acct, regions, &list_ctx.stats);
    let homes = &homes;
    let k = sync.limits().get_concurrency_per_scope.max(1);
    loop {
        let (items, next) = page;
        let fetch_next = async {
            match next {
                Some(t) => Some(
                    sync.list_page(
                        acct,
                        &list_region,
                        &plan.kind,
                        None,
                        Some(t),
                        &list_ctx.stats,
                    )
                    .await,
                ),
                None => None,
            }
        };
        let route = async {
            let mut routed = stream::iter(items)
                .map(|b: CloudResource| async move {
                    let home = homes.region_of(&b.identifier).await?;
                    Ok::<_, Stop>((home, b))
                })
                .buffered(k);
            while let Some(r) = routed.next().await {
                let (home, b) = r?;
                match home.and_then(|h| txs.get(&h)) {
                    // A reader that stopped (its scope ended) drops the rest.
                    Some(tx) => {
                        let _ = tx.send(b).await;
                    }
                    None => {
                        list_ctx.outside.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok::<(), Stop>(())
        };
        let (next, done) = tokio::join!(fetch_next, route);
        done?;
        match next {
            None => return Ok(()),
            Some(p) => page = p?,
        }
    }
}

/// Read (and emit) one region's items as they arrive.
async fn home_reader(
    run: &HomedRun<'_>,
    region: String,
    rx: mpsc::Receiver<CloudResource>,
) -> Result<(), Stop> {
    let HomedRun {
        sh,
        acct,
        plan,
        subs,
        ended,
        ..
    } = *run;
    let ctx = &subs[&region];
    let k = sh.sync.limits().get_concurrency_per_scope.max(1);
    let items = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let reads = items
        .map(|b: CloudResource| {
            let region = region.as_str();
            async move {
                if !plan.use_get_resource_api {
                    return Ok(Some(b));
                }
                sh.sync
                    .get(acct, region, &plan.kind, &b.identifier, &ctx.stats)
                    .await
            }
        })
        .buffered(k);
    let mut reads = std::pin::pin!(reads);
    while let Some(r) = reads.next().await {
        match r {
            Ok(Some(res)) => {
                sh.emit(ctx, RawItem::cloud(&plan.kind, acct.id(), &region, &res))
                    .await?
            }
            Ok(None) => {
                ctx.vanished.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // Only this region's scope is incomplete; the receiver is
                // dropped on return, so the listing stops sending here.
                ended
                    .lock()
                    .expect("lock")
                    .entry(region.clone())
                    .or_insert_with(|| Stop::Call(e).status());
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `AWS::Organizations::Account`: the organization's ACTIVE accounts as
/// listed at the start of the sync, or (without an org role) listed now.
async fn org_accounts_scope(sh: Arc<Shared>) {
    let _permit = sh.scopes.acquire().await.expect("semaphore never closed");
    let region = sh.sync.partition().default_region();
    let r: Result<(String, Vec<accounts::OrgAccount>), Stop> = match &sh.sync.org {
        Some(o) => Ok((o.management_account.clone(), o.accounts.clone())),
        None => org_accounts_now(&sh, region).await,
    };
    let (mgmt, list, status) = match r {
        Ok((m, l)) => (m, l, ScopeStatus::Complete),
        Err(e) => (
            sh.sync
                .accounts()
                .first()
                .map(|a| a.id.clone())
                .unwrap_or_default(),
            Vec::new(),
            e.status(),
        ),
    };
    let ctx = ScopeCtx::new(&mgmt, region, ORG_ACCOUNT_KIND);
    for a in &list {
        let item = RawItem {
            kind: ORG_ACCOUNT_KIND.into(),
            account_id: mgmt.clone(),
            region: region.into(),
            line: account_item(a, region, &mgmt).to_string(),
        };
        if sh.emit(&ctx, item).await.is_err() {
            return sh.finish(&ctx, Stop::Cancelled.status()).await;
        }
    }
    sh.finish(&ctx, status).await;
}

async fn org_accounts_now(
    sh: &Shared,
    region: &str,
) -> Result<(String, Vec<accounts::OrgAccount>), Stop> {
    let first = sh
        .sync
        .accounts()
        .first()
        .map(|a| a.id.clone())
        .ok_or_else(|| Stop::Other("no account to list the organization from".into()))?;
    let acct = sh
        .sync
        .account(&first)
        .await
        .ok_or_else(|| Stop::Other("no account to list the organization from".into()))?;
    if let Some(e) = &acct.error {
        return Err(Stop::Other(e.clone()));
    }
    let client = sh
        .sync
        .tenant()
        .factory_organizations(region, acct.credentials());
    match accounts::list_accounts(
        sh.sync.caller(),
        &sh.sync.setup_stats,
        &client,
        &first,
        region,
    )
    .await
    {
        Ok(l) => Ok((first, l)),
        // Not in an organization: there are no organization accounts.
        Err(e) if e.class == ErrorClass::NotInOrganization => Ok((first, Vec::new())),
        Err(e) => Err(Stop::Call(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_kinds() {
        assert!(is_global_kind("AWS::S3::Bucket"));
        assert!(is_global_kind("AWS::IAM::Role"));
        assert!(!is_global_kind("AWS::S3::AccessPoint"));
        assert!(!is_global_kind("AWS::Route53Resolver::ResolverRule"));
        assert!(!is_global_kind("AWS::EC2::Instance"));
    }

    #[test]
    fn items_have_oceans_shape() {
        let r = CloudResource {
            identifier: "i-1".into(),
            properties: r#"{"InstanceId":"i-1"}"#.into(),
        };
        let it = RawItem::cloud("AWS::EC2::Instance", "111111111111", "eu-west-1", &r);
        assert_eq!(
            it.to_json_line(),
            r#"{"Identifier":"i-1","Properties":{"InstanceId":"i-1"},"__Kind":"AWS::EC2::Instance","__Region":"eu-west-1","__AccountId":"111111111111"}"#
        );
        // Properties on several lines are written compactly (an item is one line); text
        // that is not JSON stays a string; an identifier is escaped.
        let r = CloudResource {
            identifier: "a\"b".into(),
            properties: "{\n  \"A\": [1,\n 2]\n}".into(),
        };
        let it = RawItem::cloud("K", "1", "r", &r);
        assert!(!it.line.contains('\n'));
        assert_eq!(it.value()["Properties"], json!({"A": [1, 2]}));
        assert_eq!(it.value()["Identifier"], "a\"b");
        let r = CloudResource {
            identifier: "x".into(),
            properties: "not json".into(),
        };
        let it = RawItem::cloud("K", "1", "r", &r);
        assert_eq!(it.value()["Properties"], "not json");
    }

    #[test]
    fn denied_stops_are_denied_scopes() {
        let e = CallError::new(
            ErrorClass::Denied,
            "cloudcontrol:ListResources",
            "AccessDeniedException",
            "no",
        );
        assert_eq!(Stop::Call(e).status().label(), "denied");
        let e = CallError::new(
            ErrorClass::Throttled,
            "cloudcontrol:ListResources",
            "ThrottlingException",
            "x",
        );
        assert_eq!(Stop::Call(e).status().label(), "failed");
    }
}
