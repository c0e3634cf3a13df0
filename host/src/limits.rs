//! Every limit, timeout and retry budget Berth applies, declared once, as data.
//!
//! A limit is a field of one of the trees below, with its unit in its key (`...Ms`,
//! `...Seconds`, `...Mb`, `...Kb`: MiB and KiB), its default and why in its doc comment:
//!
//! - [`TenantLimits`]: the `limits:` key of a sync config (`berth sync`, `berth run`, a tenant
//!   of `berth serve`), and what `berth map` and `berth jq` run under: the plugin sandbox
//!   ([`Limits`]), the batch size, AWS discovery ([`AwsLimits`]), the Port client
//!   ([`PortLimits`], with its [`RetryPolicy`]) and the wasmtime engine ([`EngineLimits`]);
//! - [`WorkerLimits`] and [`ListenerLimits`]: the `worker:` and `listener:` keys of
//!   `berth serve`'s own config (`serve::config`), which are the process's, not a tenant's; so
//!   is its `engine:` key, an [`EngineLimits`] (a tenant's `limits.engine` is refused).
//!
//! ```yaml
//! limits:
//!   plugin: {memoryMb: 256, timeoutMs: 30000}   # or the first spellings pluginMemoryMb, pluginTimeoutMs
//!   batchItems: 50
//!   aws: {maxInFlight: 64, callTimeoutMs: 30000}
//!   port: {concurrency: 8, retry: {maxAttempts: 10}}
//! ```
//!
//! Port's and AWS's published maxima are the defaults of their fields and the bound every value
//! is checked against ([`PORT_MAX_BULK_ENTITIES`] and the like), or constants where Berth always
//! asks for the most ([`AWS_ORGANIZATIONS_MAX_PAGE_SIZE`]). The databases' parameter cap is a
//! constant too ([`STORE_ROWS_PER_STATEMENT`]). Two bounds stay constants ([`MAX_PLUGIN_BYTES`],
//! [`MAX_TABLE_ELEMENTS`]): the code that applies them has no limits in scope. Three environment variables override a tree ([`ENV`]). Under `berth serve`, the
//! operator's `tenantPolicy.limits` is a tree of the same shape whose values bound every knob a
//! tenant can turn ([`TenantLimits::under`]).
//!
//! Owns: the declarations, defaults, units, parsing and checking of every limit, the environment
//! table and the comparison with an operator's ceiling. Must not touch: applying them (the
//! plugin host, discovery, the Port client, `serve` and the runner read these values) or any other key of a
//! config file.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Serde adapters that keep a limit's unit in its key while the field holds the type the code
/// uses (a `Duration`, a byte count).
mod unit {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    fn scaled<'de, D: Deserializer<'de>>(d: D, scale: usize) -> Result<usize, D::Error> {
        let n = u64::deserialize(d)?;
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is too large")))
    }

    /// A `Duration` written as whole milliseconds.
    pub mod ms {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64(u64::try_from(v.as_millis()).unwrap_or(u64::MAX))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            u64::deserialize(d).map(Duration::from_millis)
        }
    }

    /// A `Duration` written as whole seconds.
    pub mod secs {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64(v.as_secs())
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            u64::deserialize(d).map(Duration::from_secs)
        }
    }

    /// A byte count written as whole MiB (a value set in code that is not a whole MiB is
    /// written rounded down).
    pub mod mib {
        use super::*;
        pub fn serialize<S: Serializer>(v: &usize, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64((*v >> 20) as u64)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
            scaled(d, 1 << 20)
        }
    }

    /// A byte count written as whole KiB.
    pub mod kib {
        use super::*;
        pub fn serialize<S: Serializer>(v: &usize, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64((*v >> 10) as u64)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
            scaled(d, 1 << 10)
        }
    }
}

// ---- bounds that are not data ----

/// Largest `.wasm` file accepted (64 MiB; the shipped plugins are a few MiB). A constant because
/// `plugin::instance` checks it while loading a file, before any tenant's limits apply.
pub const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// Most elements a guest table may grow to (2^20). A Rust guest's tables hold a few hundred
/// function references; this only stops a hostile guest from growing one without end, which
/// the memory limit does not cover. A constant because `plugin::host` builds the resource
/// limiter before any tenant's limits are in scope.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Longest log line kept from a plugin, in characters; the rest is cut. With the per-call
/// line budget (`plugin.logLinesPerCall`) it bounds what a plugin can put in the host's log.
pub const PLUGIN_LOG_LINE_CHARS: usize = 2000;

/// How long a partial batch of the map pipeline waits for more items before it is mapped
/// (keeps a slow stream, such as `berth map --watch` or a discovery page at a time, flowing).
pub const MAP_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Most raw items `berth map`'s reader thread sends down the pipeline's input channel at once:
/// one wake-up per chunk rather than per item; a chunk of ~1.3 KB items is ~330 KB in flight.
pub const MAP_INPUT_CHUNK: usize = 256;

/// How long the plugin directory's watcher waits after a change before it rescans, so that a
/// `.wasm` being copied in is read once, whole.
pub const PLUGIN_RELOAD_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(200);

/// A Port access token is replaced once less than this, or a tenth of its lifetime (whichever
/// is smaller), is left: a 3 h token is renewed a minute early, a short-lived one just in time.
pub const PORT_TOKEN_REFRESH_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Attempts at creating or upgrading the store's schema, the n-th retry after `n × 50 ms`.
/// Several workers starting together on one Postgres race on `CREATE TABLE IF NOT EXISTS` (not
/// atomic across sessions: the loser fails on a catalog unique index); a retry then finds the
/// winner's tables.
pub const STORE_MIGRATE_ATTEMPTS: u32 = 4;
pub const STORE_MIGRATE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// Clock difference between Berth and STS tolerated when `berth serve` retires a signing key.
pub const IDENTITY_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(60);

// ---- Port's and AWS's published maxima ----

/// Entities per bulk upsert call: the `maxItems` of Port's bulk endpoint.
pub const PORT_MAX_BULK_ENTITIES: usize = 20;
/// Largest request body Port accepts (1 MiB); a larger one is answered 413.
pub const PORT_MAX_BODY_BYTES: usize = 1 << 20;
/// Ids per bulk delete call: Port's cap (and Ocean's batch size).
pub const PORT_MAX_BULK_DELETE: usize = 100;
/// Entities per search page: Port's maximum `limit`.
pub const PORT_MAX_SEARCH_PAGE: u32 = 1000;
/// `MaxResults` of Cloud Control `ListResources`: AWS refuses more than 100.
pub const AWS_MAX_PAGE_SIZE: i32 = 100;
/// `MaxResults` of Organizations `ListAccounts`, `ListAccountsForParent` and `ListChildren`:
/// AWS refuses more than 20. Always asked for (`discovery::accounts`): an organization's listing is
/// read once per sync, so the fewest calls is all there is to choose.
pub const AWS_ORGANIZATIONS_MAX_PAGE_SIZE: i32 = 20;
/// `MaxResults` of Account Management `ListRegions`: AWS refuses more than 50 (there are fewer
/// regions than that today, so one call per account).
pub const AWS_LIST_REGIONS_MAX_PAGE_SIZE: i32 = 50;
/// `DurationSeconds` of `sts:AssumeRole`: AWS refuses less than 900 and more than 43 200 (and
/// the role's own maximum, one hour unless raised, or one hour for a chained role).
pub const AWS_SESSION_SECONDS: std::ops::RangeInclusive<u64> = 900..=43_200;

// ---- the state database's ----

/// Bind parameters one SQL statement may carry on both databases the store runs on: SQLite's
/// `SQLITE_MAX_VARIABLE_NUMBER` (32 766 since SQLite 3.32); Postgres's wire protocol allows
/// 65 535.
pub const SQL_MAX_PARAMETERS: usize = 32_766;

/// Rows per multi-row statement of the state store (`store`): 500 rows of at most 8 parameters
/// (an entity state's columns) is 4 000 parameters, far below [`SQL_MAX_PARAMETERS`], and one
/// round trip per 500 rows already makes the statement's own cost negligible. A constant, not a
/// config key: past the databases' cap a statement is refused, so it is not a trade-off to
/// tune.
pub const STORE_ROWS_PER_STATEMENT: usize = 500;
const _: () = assert!(STORE_ROWS_PER_STATEMENT * 8 <= SQL_MAX_PARAMETERS);

/// The items per plugin call of `berth map` and of a sync, when nothing sets `batchItems`; see
/// [`TenantLimits::batch_items`] for the trade-off.
pub const DEFAULT_BATCH_ITEMS: usize = 50;

// ---- the plugin sandbox ----

/// Limits applied to every plugin call of one tenant (`limits.plugin`). Per tenant: the hosted
/// runtime gives each tenant its own, so nothing here is process-wide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Limits {
    /// `memoryMb`: most linear memory one plugin instance may grow to, MiB (default 256; at most
    /// `engine.maxMemoryMb`, the pool's slot size).
    #[serde(rename = "memoryMb", with = "unit::mib")]
    pub max_memory_bytes: usize,
    /// `timeoutMs`: time budget of the guest's own work in one call into a plugin (a batch,
    /// `describe`, a `berth jq` run), ms (default 30 000): wall-clock time minus the time spent
    /// waiting on host lookups, which AWS rate limits stretch and the guest cannot help.
    #[serde(rename = "timeoutMs", with = "unit::ms")]
    pub call_timeout: Duration,
    /// `wallTimeoutMs`: wall-clock cap of one call, lookups included, ms (default 600 000;
    /// never less than `timeoutMs`).
    #[serde(rename = "wallTimeoutMs", with = "unit::ms")]
    pub call_wall_timeout: Duration,
    /// `hostGraceMs`: time allowed on top of the wall-clock cap for a host import to return
    /// before the call is abandoned, ms (default 5 000): epochs only interrupt guest code.
    #[serde(rename = "hostGraceMs", with = "unit::ms")]
    pub host_grace: Duration,
    /// `inputMb`: most bytes of raw items (and mapping) handed to a plugin in one call, MiB
    /// (default 16).
    #[serde(rename = "inputMb", with = "unit::mib")]
    pub max_input_bytes: usize,
    /// `outputMb`: most bytes of output (entities, errors) accepted from one call, MiB
    /// (default 64).
    #[serde(rename = "outputMb", with = "unit::mib")]
    pub max_output_bytes: usize,
    /// `lookupMb`: most bytes of one Cloud Control answer handed to a plugin, MiB (default 4).
    #[serde(rename = "lookupMb", with = "unit::mib")]
    pub max_lookup_bytes: usize,
    /// `logLinesPerCall`: log lines a plugin may write per call before the rest are dropped
    /// (default 100).
    #[serde(rename = "logLinesPerCall")]
    pub max_log_lines_per_call: u32,
    /// `idleInstances`: idle, initialised instances kept per tenant and plugin for reuse
    /// (default 16; the process keeps at most `engine.idleInstancesTotal` in all).
    #[serde(rename = "idleInstances")]
    pub max_idle_instances: usize,
    /// `callsPerInstance`: an instance is retired after this many calls, which bounds
    /// fragmentation of its memory (default 10 000).
    #[serde(rename = "callsPerInstance")]
    pub max_calls_per_instance: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(30),
            call_wall_timeout: Duration::from_secs(600),
            host_grace: Duration::from_secs(5),
            max_input_bytes: 16 << 20,
            max_output_bytes: 64 << 20,
            max_lookup_bytes: 4 << 20,
            max_log_lines_per_call: 100,
            max_idle_instances: 16,
            max_calls_per_instance: 10_000,
        }
    }
}

impl Limits {
    /// The plugin part of [`TenantLimits::from_env`].
    pub fn from_env() -> Result<Self, String> {
        TenantLimits::from_env().map(|l| l.plugin)
    }
}

/// Engine-wide settings (`limits.engine`): shared by all tenants because one wasmtime engine
/// serves them all. Only capacities live here, never per-tenant budgets. `berth sync` and
/// `berth run` take them from their config file's `limits.engine`, `berth serve` from its own
/// config's `engine:`; a tenant of `berth serve` cannot set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct EngineLimits {
    /// `epochTickMs`: how often the epoch advances, ms (default 10): the granularity of call
    /// deadlines, and how often a CPU-bound guest yields to other tasks.
    #[serde(rename = "epochTickMs", with = "unit::ms")]
    pub epoch_tick: Duration,
    /// `pooledInstances`: concurrent instances the pooling allocator reserves room for
    /// (default 128).
    pub pooled_instances: u32,
    /// `idleInstancesTotal`: idle instances kept for reuse across every plugin and tenant of the
    /// process (default 64). Each holds a pool slot, so with many tenants (`berth serve`) a
    /// per-tenant cap alone would fill the pool with idle instances and leave none for calls.
    #[serde(rename = "idleInstancesTotal")]
    pub max_idle_instances_total: usize,
    /// `maxMemoryMb`: largest memory any tenant may be given, MiB (default 1024; the pool's
    /// slot size, so every slot reserves this much address space).
    #[serde(rename = "maxMemoryMb", with = "unit::mib")]
    pub max_memory_bytes: usize,
    /// `wasmStackMb`: wasm stack for guest code, MiB (default 4): deep jq recursion needs more
    /// than wasmtime's default, and an endless one must still end in a clean trap.
    #[serde(rename = "wasmStackMb", with = "unit::mib")]
    pub max_wasm_stack: usize,
}

impl EngineLimits {
    /// Nothing zero. The error names the key from `engine` (`engine.pooledInstances`), on one
    /// line: the key of `berth serve`'s config, and the path under `limits` of a sync config.
    pub fn check(&self) -> Result<(), String> {
        positive_ms("engine.epochTickMs", self.epoch_tick)?;
        positive("engine.pooledInstances", u64::from(self.pooled_instances))?;
        positive("engine.maxMemoryMb", (self.max_memory_bytes >> 20) as u64)?;
        positive("engine.wasmStackMb", (self.max_wasm_stack >> 20) as u64)
    }
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            epoch_tick: Duration::from_millis(10),
            pooled_instances: 128,
            max_idle_instances_total: 64,
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 4 << 20,
        }
    }
}

// ---- AWS discovery ----

/// Limits of one tenant's AWS discovery (`limits.aws`). Each `discovery::AwsTenant` owns its own
/// value and its own rate limiter, so nothing here is process-wide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AwsLimits {
    // ---- rate limiter (per API per account+region; `discovery::limiter`) ----
    /// `initialRate`: calls/s a bucket starts at (default 20); it climbs from here until AWS
    /// throttles.
    pub initial_rate: f64,
    /// `minRate`: calls/s a bucket never goes below, so progress never stops (default 0.5).
    pub min_rate: f64,
    /// `maxRate`: calls/s a bucket never exceeds (default 1000).
    pub max_rate: f64,
    /// `slowStartStep`: calls/s added per accepted call before the first throttle, so the rate
    /// grows exponentially (×e per second at 1.0; default 2).
    pub slow_start_step: f64,
    /// `burst`: calls a bucket lets through at once after being idle (default 5).
    pub burst: f64,
    /// `decreaseFactor`: multiplicative decrease on a throttle, CUBIC's beta (default 0.85).
    pub decrease_factor: f64,
    /// `cubicC`: growth constant of the cubic climb back, calls/s per s³ (default 0.4).
    pub cubic_c: f64,
    /// `decreaseCooldownMs`: throttles this soon after a decrease answer calls sent before it
    /// and do not decrease again, ms (default 500).
    #[serde(rename = "decreaseCooldownMs", with = "unit::ms")]
    pub decrease_cooldown: Duration,
    /// `measureWindowMs`: window over which the accepted call rate is measured, ms
    /// (default 1000).
    #[serde(rename = "measureWindowMs", with = "unit::ms")]
    pub measure_window: Duration,

    // ---- retries (`discovery::call`) ----
    /// `maxAttempts`: attempts for a call that fails transiently (5xx, timeout, connection;
    /// default 5).
    pub max_attempts: u32,
    /// `maxThrottledAttempts`: attempts for a call that keeps being throttled (default 60);
    /// past this the scope fails (it is never taken for an empty result).
    pub max_throttled_attempts: u32,
    /// `backoffBaseMs`: first backoff, ms (default 50); doubles per attempt, full jitter.
    #[serde(rename = "backoffBaseMs", with = "unit::ms")]
    pub backoff_base: Duration,
    /// `backoffMaxMs`: cap on one backoff, ms (default 5000).
    #[serde(rename = "backoffMaxMs", with = "unit::ms")]
    pub backoff_max: Duration,

    // ---- timeouts ----
    /// `callTimeoutMs`: one API call, from send to the last byte, ms (default 30 000).
    #[serde(rename = "callTimeoutMs", with = "unit::ms")]
    pub call_timeout: Duration,
    /// `connectTimeoutMs`: TCP and TLS connect, ms (default 5000).
    #[serde(rename = "connectTimeoutMs", with = "unit::ms")]
    pub connect_timeout: Duration,

    // ---- concurrency and memory ----
    /// `maxInFlight`: API calls in flight at once, over all accounts, regions and kinds
    /// (default 64).
    pub max_in_flight: usize,
    /// `maxActiveScopes`: scopes (account × region × kind) being read at once (default 128).
    pub max_active_scopes: usize,
    /// `maxConcurrentAccounts`: accounts prepared (role assumed, regions listed) at once
    /// (default 10).
    pub max_concurrent_accounts: usize,
    /// `getConcurrencyPerScope`: `GetResource` calls in flight per scope (default 16).
    pub get_concurrency_per_scope: usize,
    /// `pageSize`: `MaxResults` of `ListResources` (default and most: 100, AWS's maximum).
    pub page_size: i32,
    /// `maxPages`: pages of one scope's listing before it is taken for a `NextToken` loop and
    /// fails (default 1 000 000).
    pub max_pages: u64,
    /// `channelItems`: raw items buffered between discovery and its consumer (default 1024).
    pub channel_items: usize,
    /// `lookupCacheEntries`: plugins' `GetResource` answers kept per sync, per generation
    /// (default 2048; two generations make a bounded, least-recently-used-like cache, so memory
    /// does not grow with the estate).
    pub lookup_cache_entries: usize,

    // ---- credentials ----
    /// `sessionDurationSeconds`: assumed-role sessions are requested for this long, s
    /// (default 3600; 900 to 43 200, see [`AWS_SESSION_SECONDS`]).
    #[serde(rename = "sessionDurationSeconds", with = "unit::secs")]
    pub session_duration: Duration,
    /// `refreshMarginSeconds`: credentials are refreshed when they have less than this left, s
    /// (default 300; less than the session).
    #[serde(rename = "refreshMarginSeconds", with = "unit::secs")]
    pub refresh_margin: Duration,
}

impl Default for AwsLimits {
    fn default() -> Self {
        Self {
            initial_rate: 20.0,
            min_rate: 0.5,
            max_rate: 1_000.0,
            slow_start_step: 2.0,
            burst: 5.0,
            decrease_factor: 0.85,
            cubic_c: 0.4,
            decrease_cooldown: Duration::from_millis(500),
            measure_window: Duration::from_secs(1),
            max_attempts: 5,
            max_throttled_attempts: 60,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_in_flight: 64,
            max_active_scopes: 128,
            max_concurrent_accounts: 10,
            get_concurrency_per_scope: 16,
            page_size: AWS_MAX_PAGE_SIZE,
            max_pages: 1_000_000,
            channel_items: 1024,
            lookup_cache_entries: 2048,
            session_duration: Duration::from_secs(3600),
            refresh_margin: Duration::from_secs(300),
        }
    }
}

// ---- Port ----

/// How often and how long a Port call is retried (`limits.port.retry`). The default is
/// Ocean's: 10 attempts, 0.3 s · 2^n, capped at 300 s. Tests shrink the delays to milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RetryPolicy {
    /// `maxAttempts`: attempts in all, the first one included (default 10; at least 1).
    pub max_attempts: u32,
    /// `baseDelayMs`: backoff of the first retry, ms (default 300); doubles on each further
    /// one.
    #[serde(rename = "baseDelayMs", with = "unit::ms")]
    pub base_delay: Duration,
    /// `maxDelayMs`: cap on every wait, the server's own hints included, ms (default 300 000).
    #[serde(rename = "maxDelayMs", with = "unit::ms")]
    pub max_delay: Duration,
    /// `jitter`: fraction (0 to 1) of a backoff delay that is randomised away, so callers that
    /// failed together do not retry together (default 0.25).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(300),
            max_delay: Duration::from_secs(300),
            jitter: 0.25,
        }
    }
}

/// Limits of one tenant's Port client (`limits.port`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PortLimits {
    /// `concurrency`: requests in flight at once, across every caller of the client
    /// (default 8). `port.concurrency`, its first spelling, wins when given.
    pub concurrency: usize,
    /// `requestTimeoutMs`: per-attempt timeout of a request, ms (default 60 000).
    #[serde(rename = "requestTimeoutMs", with = "unit::ms")]
    pub request_timeout: Duration,
    /// `retry`: the retry policy of every call.
    pub retry: RetryPolicy,
    /// `loopbackRefusedAttempts`: attempts in all when a loopback address refuses the
    /// connection (default 3). Nothing listens there, and nothing will by waiting minutes (a
    /// mistyped port, a local Port that is not started): a user should hear it at once. Remote
    /// hosts keep the whole policy (a load balancer between deployments refuses for a while).
    pub loopback_refused_attempts: u32,
    /// `bulkEntities`: entities per bulk upsert call (default and most: 20,
    /// [`PORT_MAX_BULK_ENTITIES`]).
    #[serde(rename = "bulkEntities")]
    pub max_bulk_entities: usize,
    /// `bodyKb`: largest request body sent, KiB (default and most: 1024,
    /// [`PORT_MAX_BODY_BYTES`]); a bulk upsert is cut to fit.
    #[serde(rename = "bodyKb", with = "unit::kib")]
    pub max_body_bytes: usize,
    /// `bulkDelete`: ids per bulk delete call (default and most: 100,
    /// [`PORT_MAX_BULK_DELETE`]).
    #[serde(rename = "bulkDelete")]
    pub max_bulk_delete: usize,
    /// `searchPage`: entities per page when listing what the integration owns (default and
    /// most: 1000, [`PORT_MAX_SEARCH_PAGE`]).
    pub search_page: u32,
    /// `startupBaseDelayMs`: `berth run` only: the first wait before it tries again to reach
    /// Port and build its setup when Port cannot be reached at start, ms (default 1000);
    /// doubles per attempt, jittered by `retry.jitter`. It tries until Port answers or it is
    /// stopped: a service started before Port is reachable should come up with it, not exit.
    #[serde(rename = "startupBaseDelayMs", with = "unit::ms")]
    pub startup_base_delay: Duration,
    /// `startupMaxDelayMs`: cap on that wait, ms (default 60 000): a Port that is down is asked
    /// once a minute, and one that is back is noticed within a minute.
    #[serde(rename = "startupMaxDelayMs", with = "unit::ms")]
    pub startup_max_delay: Duration,
}

impl Default for PortLimits {
    fn default() -> Self {
        Self {
            concurrency: 8,
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            loopback_refused_attempts: 3,
            max_bulk_entities: PORT_MAX_BULK_ENTITIES,
            max_body_bytes: PORT_MAX_BODY_BYTES,
            max_bulk_delete: PORT_MAX_BULK_DELETE,
            search_page: PORT_MAX_SEARCH_PAGE,
            startup_base_delay: Duration::from_secs(1),
            startup_max_delay: Duration::from_secs(60),
        }
    }
}

// ---- the tree of a `limits:` key ----

/// Every limit one sync config sets: its `limits:` key. Missing keys keep their defaults; an
/// unknown key is an error naming its path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "TenantLimitsDoc")]
pub struct TenantLimits {
    /// `plugin`: the plugin sandbox of every call.
    pub plugin: Limits,
    /// `batchItems`: items per plugin call, in `berth map` and in a sync alike (default 50,
    /// [`DEFAULT_BATCH_ITEMS`]). Larger batches share a call's fixed cost (microseconds: the
    /// instance and its compiled mapping are reused) over more items; smaller ones give a sync
    /// more batches to run at once, which is what hides lookup latency: an enriching plugin
    /// waits on its lookups within its batch, so a page of 200 items mapped as one batch waits
    /// on 200 lookups in turn, while at 50 four batches wait side by side (up to
    /// `concurrentBatches`). One call's input is also bounded by `plugin.inputMb`.
    pub batch_items: usize,
    /// `concurrentBatches`: batches mapped at once during a sync (default 32). More than the
    /// cores: enriching plugins spend most of a call waiting on AWS lookups, which other
    /// batches can overlap. `berth map` uses `--jobs` (default: the cores).
    pub concurrent_batches: usize,
    /// `aws`: discovery's rates, retries, timeouts and concurrency.
    pub aws: AwsLimits,
    /// `port`: the Port client's concurrency, timeouts, retries and batch sizes.
    pub port: PortLimits,
    /// `engine`: the process's wasmtime engine (not settable by a tenant of `berth serve`).
    pub engine: EngineLimits,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            plugin: Limits::default(),
            batch_items: DEFAULT_BATCH_ITEMS,
            concurrent_batches: 32,
            aws: AwsLimits::default(),
            port: PortLimits::default(),
            engine: EngineLimits::default(),
        }
    }
}

/// The first, flat spellings of `limits:` keys, still accepted: (key, its path in the tree).
pub const ALIASES: &[(&str, &str)] = &[
    ("pluginMemoryMb", "plugin.memoryMb"),
    ("pluginTimeoutMs", "plugin.timeoutMs"),
];

/// The environment variables that override a tree, and the key each sets. `berth map`,
/// `berth jq`, `berth sync` and `berth run` read them (over the config file's `limits:`);
/// `berth serve` does not (a tenant's limits are its document's, under the operator's policy).
pub const ENV: &[(&str, &str)] = &[
    ("BERTH_PLUGIN_MEMORY_MB", "plugin.memoryMb"),
    ("BERTH_PLUGIN_TIMEOUT_MS", "plugin.timeoutMs"),
    ("BERTH_BATCH_ITEMS", "batchItems"),
];

/// Knobs the operator's policy bounds from below rather than above: the waits between retries,
/// where less is the aggressive direction (a tenant may back off longer, never shorter).
pub const FLOORS: &[&str] = &[
    "aws.backoffBaseMs",
    "aws.backoffMaxMs",
    "port.retry.baseDelayMs",
    "port.retry.maxDelayMs",
    "port.startupBaseDelayMs",
    "port.startupMaxDelayMs",
];

/// The part of the tree a tenant of `berth serve` cannot set at all: one engine serves every
/// tenant, so its capacities are the operator's.
pub const OPERATOR_ONLY: &str = "engine";

/// `limits:` as written: every section optional, so that the first spellings can be told from
/// the sections they moved into.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct TenantLimitsDoc {
    plugin: Option<Limits>,
    batch_items: Option<usize>,
    concurrent_batches: Option<usize>,
    aws: Option<AwsLimits>,
    port: Option<PortLimits>,
    engine: Option<EngineLimits>,
    /// First spelling of `plugin.memoryMb`.
    plugin_memory_mb: Option<u64>,
    /// First spelling of `plugin.timeoutMs`.
    plugin_timeout_ms: Option<u64>,
}

impl TryFrom<TenantLimitsDoc> for TenantLimits {
    type Error = String;

    fn try_from(d: TenantLimitsDoc) -> Result<Self, String> {
        let has_plugin = d.plugin.is_some();
        let mut plugin = d.plugin.unwrap_or_default();
        for (key, path, set) in [
            (
                "pluginMemoryMb",
                "plugin.memoryMb",
                d.plugin_memory_mb.is_some(),
            ),
            (
                "pluginTimeoutMs",
                "plugin.timeoutMs",
                d.plugin_timeout_ms.is_some(),
            ),
        ] {
            if set && has_plugin {
                return Err(format!(
                    "limits.{key}: the first spelling of limits.{path}; with a `plugin` section, \
                     write it there"
                ));
            }
        }
        if let Some(mb) = d.plugin_memory_mb {
            plugin.max_memory_bytes = usize::try_from(mb)
                .ok()
                .and_then(|m| m.checked_mul(1 << 20))
                .ok_or_else(|| format!("limits.pluginMemoryMb: {mb} is too large"))?;
        }
        if let Some(ms) = d.plugin_timeout_ms {
            plugin.call_timeout = Duration::from_millis(ms);
        }
        let defaults = TenantLimits::default();
        let l = TenantLimits {
            plugin,
            batch_items: d.batch_items.unwrap_or(defaults.batch_items),
            concurrent_batches: d.concurrent_batches.unwrap_or(defaults.concurrent_batches),
            aws: d.aws.unwrap_or(defaults.aws),
            port: d.port.unwrap_or(defaults.port),
            engine: d.engine.clone().unwrap_or(defaults.engine),
        };
        if d.engine.is_some() {
            l.check()?;
        } else {
            l.check_without_engine()?;
        }
        Ok(l)
    }
}

/// `Err("key: why")` unless `ok`.
fn need(ok: bool, key: &str, why: impl std::fmt::Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{key}: {why}"))
    }
}

fn positive(key: &str, n: u64) -> Result<(), String> {
    need(n > 0, key, "must be at least 1")
}

fn positive_ms(key: &str, d: Duration) -> Result<(), String> {
    need(d >= Duration::from_millis(1), key, "must be at least 1")
}

impl TenantLimits {
    /// Checks what defaults cannot guarantee once values are set: nothing zero that would stop
    /// work, orders between related values, and Port's and AWS's maxima. The error names the
    /// key (`limits.` and its path) and why, on one line.
    pub fn check(&self) -> Result<(), String> {
        self.check_values(true).map_err(|e| format!("limits.{e}"))
    }

    /// `check`, but for a tree whose engine is not known yet: a `limits:` section without
    /// `engine:` runs on the engine of whatever process reads it (`berth sync`'s own, or the
    /// operator's under `berth serve`), so the plugin memory is held against it only once that
    /// engine is in the tree (`check` after `apply_env`, or `under` the operator's ceiling).
    fn check_without_engine(&self) -> Result<(), String> {
        self.check_values(false).map_err(|e| format!("limits.{e}"))
    }

    fn check_values(&self, engine_known: bool) -> Result<(), String> {
        let p = &self.plugin;
        for (key, n) in [
            ("plugin.memoryMb", (p.max_memory_bytes >> 20) as u64),
            ("plugin.inputMb", (p.max_input_bytes >> 20) as u64),
            ("plugin.outputMb", (p.max_output_bytes >> 20) as u64),
            ("plugin.lookupMb", (p.max_lookup_bytes >> 20) as u64),
            (
                "plugin.callsPerInstance",
                u64::from(p.max_calls_per_instance),
            ),
            ("batchItems", self.batch_items as u64),
            ("concurrentBatches", self.concurrent_batches as u64),
        ] {
            positive(key, n)?;
        }
        positive_ms("plugin.timeoutMs", p.call_timeout)?;
        positive_ms("plugin.wallTimeoutMs", p.call_wall_timeout)?;
        need(
            !engine_known || p.max_memory_bytes <= self.engine.max_memory_bytes,
            "plugin.memoryMb",
            format_args!(
                "at most engine.maxMemoryMb ({}), the pool's slot size",
                self.engine.max_memory_bytes >> 20
            ),
        )?;
        self.engine.check()?;
        self.check_aws()?;
        self.check_port()
    }

    fn check_aws(&self) -> Result<(), String> {
        let a = &self.aws;
        for (key, v) in [
            ("aws.initialRate", a.initial_rate),
            ("aws.minRate", a.min_rate),
            ("aws.maxRate", a.max_rate),
            ("aws.cubicC", a.cubic_c),
        ] {
            need(v.is_finite() && v > 0.0, key, "must be a number above 0")?;
        }
        need(
            a.slow_start_step.is_finite() && a.slow_start_step >= 0.0,
            "aws.slowStartStep",
            "must be a number, 0 or more",
        )?;
        need(
            a.burst.is_finite() && a.burst >= 1.0,
            "aws.burst",
            "must be at least 1",
        )?;
        need(
            a.decrease_factor > 0.0 && a.decrease_factor < 1.0,
            "aws.decreaseFactor",
            "must be above 0 and below 1",
        )?;
        need(
            a.min_rate <= a.initial_rate && a.initial_rate <= a.max_rate,
            "aws.initialRate",
            format_args!(
                "must lie between minRate ({}) and maxRate ({})",
                a.min_rate, a.max_rate
            ),
        )?;
        for (key, n) in [
            ("aws.maxAttempts", u64::from(a.max_attempts)),
            (
                "aws.maxThrottledAttempts",
                u64::from(a.max_throttled_attempts),
            ),
            ("aws.maxInFlight", a.max_in_flight as u64),
            ("aws.maxActiveScopes", a.max_active_scopes as u64),
            (
                "aws.maxConcurrentAccounts",
                a.max_concurrent_accounts as u64,
            ),
            (
                "aws.getConcurrencyPerScope",
                a.get_concurrency_per_scope as u64,
            ),
            ("aws.maxPages", a.max_pages),
            ("aws.channelItems", a.channel_items as u64),
        ] {
            positive(key, n)?;
        }
        for (key, d) in [
            ("aws.callTimeoutMs", a.call_timeout),
            ("aws.connectTimeoutMs", a.connect_timeout),
            ("aws.measureWindowMs", a.measure_window),
            ("aws.backoffBaseMs", a.backoff_base),
        ] {
            positive_ms(key, d)?;
        }
        need(
            a.backoff_base <= a.backoff_max,
            "aws.backoffMaxMs",
            "must be at least backoffBaseMs",
        )?;
        need(
            (1..=AWS_MAX_PAGE_SIZE).contains(&a.page_size),
            "aws.pageSize",
            format_args!("1 to {AWS_MAX_PAGE_SIZE}, the most ListResources returns"),
        )?;
        need(
            AWS_SESSION_SECONDS.contains(&a.session_duration.as_secs()),
            "aws.sessionDurationSeconds",
            format_args!(
                "{} to {}, what sts:AssumeRole accepts",
                AWS_SESSION_SECONDS.start(),
                AWS_SESSION_SECONDS.end()
            ),
        )?;
        need(
            a.refresh_margin < a.session_duration,
            "aws.refreshMarginSeconds",
            "must be less than sessionDurationSeconds",
        )
    }

    fn check_port(&self) -> Result<(), String> {
        let p = &self.port;
        positive("port.concurrency", p.concurrency as u64)?;
        positive_ms("port.requestTimeoutMs", p.request_timeout)?;
        positive("port.retry.maxAttempts", u64::from(p.retry.max_attempts))?;
        positive(
            "port.loopbackRefusedAttempts",
            u64::from(p.loopback_refused_attempts),
        )?;
        need(
            p.retry.base_delay <= p.retry.max_delay,
            "port.retry.maxDelayMs",
            "must be at least baseDelayMs",
        )?;
        positive_ms("port.startupBaseDelayMs", p.startup_base_delay)?;
        need(
            p.startup_base_delay <= p.startup_max_delay,
            "port.startupMaxDelayMs",
            "must be at least startupBaseDelayMs",
        )?;
        need(
            (0.0..=1.0).contains(&p.retry.jitter),
            "port.retry.jitter",
            "must be between 0 and 1",
        )?;
        for (key, v, max, why) in [
            (
                "port.bulkEntities",
                p.max_bulk_entities,
                PORT_MAX_BULK_ENTITIES,
                "the most Port's bulk upsert takes",
            ),
            (
                "port.bulkDelete",
                p.max_bulk_delete,
                PORT_MAX_BULK_DELETE,
                "the most Port's bulk delete takes",
            ),
            (
                "port.searchPage",
                p.search_page as usize,
                PORT_MAX_SEARCH_PAGE as usize,
                "Port's largest page",
            ),
        ] {
            need(
                (1..=max).contains(&v),
                key,
                format_args!("1 to {max}, {why}"),
            )?;
        }
        need(
            p.max_body_bytes >= 1 << 10 && p.max_body_bytes <= PORT_MAX_BODY_BYTES,
            "port.bodyKb",
            format_args!(
                "1 to {}, the largest body Port accepts",
                PORT_MAX_BODY_BYTES >> 10
            ),
        )
    }

    /// The ceiling `berth serve` puts on every tenant when its operator sets none
    /// (`tenantPolicy.limits`): the defaults, except a plugin call time of 10 s (a hosted
    /// tenant's mapping that needs more is better fixed than waited for), up to 500 items per
    /// batch (ten times the default, still well inside `plugin.inputMb`) and 16 Port requests
    /// in flight (twice the default: a tenant may speed up its own pushes a little, not open
    /// hundreds of connections from the worker).
    pub fn default_ceiling() -> Self {
        let mut l = Self::default();
        l.plugin.call_timeout = Duration::from_secs(10);
        l.batch_items = 500;
        l.port.concurrency = 16;
        l
    }

    /// Defaults overridden by the [`ENV`] variables that are set.
    pub fn from_env() -> Result<Self, String> {
        let mut l = Self::default();
        l.apply_env(process_env)?;
        l.check()?;
        Ok(l)
    }

    /// Overrides the keys of [`ENV`] whose variable `var` returns. An error names the variable,
    /// its value and why, on one line.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        for (name, path) in ENV {
            let Some(text) = var(name) else { continue };
            let n: u64 = text.trim().parse().map_err(|_| {
                format!("{name}={text:?}: not a whole number (it sets limits.{path})")
            })?;
            *self = self
                .overlay(&nested(path, Value::from(n)))
                .and_then(|l| l.check().map(|()| l))
                .map_err(|e| format!("{name}={text:?}: {e}"))?;
        }
        Ok(())
    }

    /// This tree with the keys of `raw` (a `limits:` section as JSON, first spellings
    /// accepted) set over it, checked. An unknown key or a value of the wrong shape is an
    /// error naming its path (`limits.` and the path in the tree).
    pub fn overlay(&self, raw: &Value) -> Result<Self, String> {
        let mut tree = serde_json::to_value(self).expect("limits serialise");
        let raw = canonical(raw).map_err(|e| format!("limits.{e}"))?;
        merge_known(&mut tree, &raw, "").map_err(|e| format!("limits.{e}"))?;
        // The engine is held against the plugin memory only when `raw` sets it: otherwise it is
        // a default the reader's own engine replaces (`check` once it has, see
        // `check_without_engine`).
        let engine = tree
            .as_object_mut()
            .and_then(|t| t.remove(OPERATOR_ONLY))
            .expect("the tree has an engine");
        let wrote_engine = raw.get(OPERATOR_ONLY).is_some();
        let named = |e: serde_json::Error| {
            let e = e.to_string();
            if e.starts_with("limits.") {
                e
            } else {
                format!("limits: {e}")
            }
        };
        let mut l: Self = serde_json::from_value(tree).map_err(named)?;
        l.engine = serde_json::from_value(engine).map_err(named)?;
        if wrote_engine {
            l.check()?;
        }
        Ok(l)
    }

    /// The plugin sandbox of this tree, onto `l` (all of it: the tree holds the defaults of
    /// what its file left out).
    pub fn apply(&self, l: &mut Limits) {
        *l = self.plugin.clone();
    }

    /// This tree under an operator's `ceiling`, a tree of the same shape: every knob at most
    /// the ceiling's value (at least, for the [`FLOORS`]). `written` maps the paths the tenant
    /// set (canonical, as [`written_keys`] gives them) to the key to name in an error: a value
    /// the tenant set past the bound is refused; a default past it is moved to the bound, so
    /// the worker never falls back to a built-in default above the operator's. The
    /// [`OPERATOR_ONLY`] part is refused when written and otherwise the ceiling's: the operator's
    /// engine (`serve::config` puts the serve config's `engine:` there), so that the tenant's
    /// values are checked against the engine that runs them.
    pub fn under(
        &self,
        ceiling: &TenantLimits,
        written: &BTreeMap<String, String>,
    ) -> Result<TenantLimits, String> {
        let engine_prefix = format!("{OPERATOR_ONLY}.");
        if let Some((_, key)) = written
            .iter()
            .find(|(path, _)| path.starts_with(&engine_prefix))
        {
            return Err(format!(
                "{key}: one engine serves every tenant; the operator sets it"
            ));
        }
        let mut mine = serde_json::to_value(self).expect("limits serialise");
        let bound = serde_json::to_value(ceiling).expect("limits serialise");
        mine[OPERATOR_ONLY] = bound[OPERATOR_ONLY].clone();
        let mut leaves = Vec::new();
        leaf_paths(&mine, "", &mut leaves);
        for path in leaves {
            if path.starts_with(&engine_prefix) {
                continue;
            }
            let pointer = format!("/{}", path.replace('.', "/"));
            let (Some(v), Some(b)) = (
                mine.pointer(&pointer).and_then(Value::as_f64),
                bound.pointer(&pointer).cloned(),
            ) else {
                continue;
            };
            let limit = b.as_f64().unwrap_or(f64::NAN);
            let floor = FLOORS.contains(&path.as_str());
            let past = if floor { v < limit } else { v > limit };
            if !past {
                continue;
            }
            if let Some(key) = written.get(&path) {
                let side = if floor { "at least" } else { "at most" };
                return Err(format!("{key}: {side} {b} here"));
            }
            *mine.pointer_mut(&pointer).expect("a leaf just read") = b;
        }
        serde_json::from_value(mine).map_err(|e| e.to_string())
    }
}

/// The process's environment variable `name`, for [`TenantLimits::apply_env`] (a value that is
/// not UTF-8 is kept, lossily, so that it is refused as a number rather than ignored).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

/// `{"a": {"b": v}}` for `a.b`.
fn nested(path: &str, v: Value) -> Value {
    path.rsplit('.').fold(v, |inner, key| {
        let mut m = serde_json::Map::new();
        m.insert(key.to_string(), inner);
        Value::Object(m)
    })
}

/// `raw` with the first spellings ([`ALIASES`]) moved to their paths; one given both ways is an
/// error.
fn canonical(raw: &Value) -> Result<Value, String> {
    let Value::Object(top) = raw else {
        return Err("expected a section of limits".into());
    };
    let mut out = Value::Object(serde_json::Map::new());
    for (k, v) in top {
        match ALIASES.iter().find(|(alias, _)| alias == k) {
            Some((_, path)) => {
                let pointer = format!("/{}", path.replace('.', "/"));
                if raw.pointer(&pointer).is_some() {
                    return Err(format!(
                        "{k}: the first spelling of {path}; give one of them"
                    ));
                }
                merge_into(&mut out, &nested(path, v.clone()));
            }
            None => merge_into(&mut out, &nested(k, v.clone())),
        }
    }
    Ok(out)
}

/// Sets every leaf of `from` in `into`, creating sections as needed.
fn merge_into(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge_into(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Sets every leaf of `from` in `into`, where `into` already has that key with the same shape
/// (a section or a number).
fn merge_known(into: &mut Value, from: &Value, path: &str) -> Result<(), String> {
    let (Value::Object(into), Value::Object(from)) = (into, from) else {
        return Err(format!("{path}: expected a section"));
    };
    for (k, v) in from {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        let Some(slot) = into.get_mut(k) else {
            let known: Vec<&str> = into.keys().map(String::as_str).collect();
            return Err(format!("{p}: unknown key (known: {})", known.join(", ")));
        };
        match (slot.is_object(), v) {
            (true, Value::Object(_)) => merge_known(slot, v, &p)?,
            (true, _) => return Err(format!("{p}: expected a section")),
            // A count or a duration is written whole: the default's own form tells which.
            (false, Value::Number(n)) if slot.is_u64() && !n.is_u64() => {
                return Err(format!("{p}: expected a whole number, 0 or more"));
            }
            (false, Value::Number(_)) => *slot = v.clone(),
            (false, _) => return Err(format!("{p}: expected a number")),
        }
    }
    Ok(())
}

/// Every leaf of `v`, as a dotted path.
fn leaf_paths(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                leaf_paths(v, &p, out);
            }
        }
        _ => out.push(path.to_string()),
    }
}

/// The keys set in `raw` (a `limits:` section as JSON): each leaf's path in the tree (first
/// spellings resolved), with the path as written.
pub fn written_keys(raw: &Value) -> BTreeMap<String, String> {
    let mut leaves = Vec::new();
    leaf_paths(raw, "", &mut leaves);
    leaves
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|written| {
            let path = ALIASES
                .iter()
                .find(|(alias, _)| *alias == written)
                .map_or_else(|| written.clone(), |(_, path)| path.to_string());
            (path, written)
        })
        .collect()
}

// ---- `berth serve`'s own process ----

/// Every limit and timeout of one `berth serve` worker process (the serve config's `worker:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct WorkerLimits {
    /// `maxConcurrentSyncs`: tenants synced at once by this worker (default 1024). A sync
    /// spends most of its time waiting on its own tenant's AWS and Port rate limits, and the
    /// CPU work of all of them is shared by `workSlots`, so this is set high: a tenant falling
    /// due beyond it waits for a running sync to end (with 500 due at once and 256 places, the
    /// last waited minutes).
    pub max_concurrent_syncs: usize,
    /// `workSlots`: plugin batches mapped at once across all tenants, shared fairly
    /// (`crate::plugin::fair`; default four per core).
    pub work_slots: usize,
    /// `leaseSeconds`: a lease not renewed for this long is taken by another worker, s
    /// (default 30).
    pub lease_seconds: u64,
    /// `heartbeatSeconds`: how often a lease is renewed, s (default 5; at most half of
    /// `leaseSeconds`).
    pub heartbeat_seconds: u64,
    /// `pollMillis`: how often the worker looks for due tenants, ms (default 500).
    pub poll_millis: u64,
    /// `portPollSeconds`: how often each tenant's Port resync request is polled, s (default 60;
    /// 0: never).
    pub port_poll_seconds: u64,
    /// `portPollBudgetSeconds`: the least time one read of a tenant's Port resync request may
    /// take, s (default 10); a read may take `portPollSeconds` when that is longer. Frequent
    /// polling must not cut short a read that a slow Port (token refresh, retries) needs.
    pub port_poll_budget_seconds: u64,
    /// `maxCachedTenants`: tenant setups (clients, mapping, AWS sessions) kept between syncs
    /// (default 1000).
    pub max_cached_tenants: usize,
}

impl Default for WorkerLimits {
    fn default() -> Self {
        Self {
            max_concurrent_syncs: 1_024,
            work_slots: std::thread::available_parallelism().map_or(2, |n| n.get() * 4),
            lease_seconds: 30,
            heartbeat_seconds: 5,
            poll_millis: 500,
            port_poll_seconds: 60,
            port_poll_budget_seconds: 10,
            max_cached_tenants: 1_000,
        }
    }
}

impl WorkerLimits {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_seconds)
    }
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_millis)
    }
    /// The time budget of one read of a tenant's Port resync request.
    pub fn port_poll_budget(&self) -> Duration {
        Duration::from_secs(self.port_poll_seconds.max(self.port_poll_budget_seconds))
    }

    /// The error names the key under `worker`.
    pub fn check(&self) -> Result<(), String> {
        if self.max_concurrent_syncs == 0 || self.work_slots == 0 {
            return Err(
                "worker.maxConcurrentSyncs and worker.workSlots: must be at least 1".into(),
            );
        }
        if self.port_poll_budget_seconds == 0 {
            return Err("worker.portPollBudgetSeconds: must be at least 1".into());
        }
        if self.heartbeat_seconds == 0 || self.heartbeat_seconds * 2 > self.lease_seconds {
            return Err(format!(
                "worker.heartbeatSeconds: must be at least 1 and at most half of leaseSeconds ({})",
                self.lease_seconds
            ));
        }
        Ok(())
    }
}

/// A token bucket: `perSecond` requests on average, `burst` at once after a quiet spell. Both
/// keys are required: half a rate has no sensible default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// Every limit of the admin API's listener (the serve config's `listener:`): what an
/// unauthenticated or abusive client can hold of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ListenerLimits {
    /// `headerTimeoutSeconds`: a request's head must arrive within this of the connection
    /// opening, or of the previous response on a kept-alive connection, s (default 10). hyper
    /// starts the same timer when a connection goes idle, so it is also the keep-alive idle
    /// timeout.
    pub header_timeout_seconds: u64,
    /// `bodyTimeoutSeconds`: a request's whole body must arrive within this once its handler
    /// starts reading it, s (default 30; bodies are read only after the token is checked).
    pub body_timeout_seconds: u64,
    /// `tokenRate`: per bearer token, after it is checked (default 50/s, burst 100): one
    /// tenant's automation cannot starve the others' or the operator's calls. High enough that
    /// a dashboard or a test polling a handful of tenants several times a second is never
    /// refused; low enough that one client cannot monopolise the sealing and the state store
    /// behind the API.
    pub token_rate: Rate,
    /// `addressRate`: per client address (IPv6: per /64), every request, authenticated or not
    /// (`/healthz`, `/openapi.json`, wrong tokens; default 100/s, burst 200). Behind a reverse
    /// proxy every client shares the proxy's address.
    pub address_rate: Rate,
    /// `addressSweepSeconds`: how often the addresses whose buckets have refilled are dropped
    /// from the per-address table, s (default 60): the table holds the addresses seen lately,
    /// not every address ever seen. A dropped address is indistinguishable from a new one.
    pub address_sweep_seconds: u64,
    /// `bodyKb`: largest request body read, KiB (default 1024): a tenant document with an
    /// inline mapping is a few KiB to a few hundred; a larger body is refused with 413, from its
    /// `Content-Length` when it has one, before any of it is read.
    #[serde(rename = "bodyKb", with = "unit::kib")]
    pub max_body_bytes: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            token_rate: Rate {
                per_second: 50,
                burst: 100,
            },
            address_rate: Rate {
                per_second: 100,
                burst: 200,
            },
            address_sweep_seconds: 60,
            max_body_bytes: 1 << 20,
        }
    }
}

impl ListenerLimits {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_seconds)
    }
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_seconds)
    }
    pub fn address_sweep(&self) -> Duration {
        Duration::from_secs(self.address_sweep_seconds)
    }

    /// The error names the key under `listener`.
    pub fn check(&self) -> Result<(), String> {
        if self.header_timeout_seconds == 0 || self.body_timeout_seconds == 0 {
            return Err(
                "listener.headerTimeoutSeconds and listener.bodyTimeoutSeconds: must be at least 1"
                    .into(),
            );
        }
        if self.address_sweep_seconds == 0 {
            return Err("listener.addressSweepSeconds: must be at least 1".into());
        }
        if self.max_body_bytes == 0 {
            return Err("listener.bodyKb: must be at least 1".into());
        }
        for (key, r) in [
            ("listener.tokenRate", self.token_rate),
            ("listener.addressRate", self.address_rate),
        ] {
            if r.per_second == 0 || r.burst == 0 {
                return Err(format!("{key}: perSecond and burst must be at least 1"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Result<TenantLimits, String> {
        serde_norway::from_str::<TenantLimits>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn nested_keys_set_the_tree_and_the_rest_keep_defaults() {
        let l = yaml(
            "plugin: {memoryMb: 128, timeoutMs: 5000}\nbatchItems: 200\n\
             aws: {maxInFlight: 8, backoffMaxMs: 2000, sessionDurationSeconds: 900}\n\
             port: {bulkEntities: 10, bodyKb: 512, retry: {maxAttempts: 3}}\n",
        )
        .unwrap();
        assert_eq!(l.plugin.max_memory_bytes, 128 << 20);
        assert_eq!(l.plugin.call_timeout, Duration::from_secs(5));
        assert_eq!(l.plugin.max_input_bytes, Limits::default().max_input_bytes);
        assert_eq!(l.batch_items, 200);
        assert_eq!(l.aws.max_in_flight, 8);
        assert_eq!(l.aws.backoff_max, Duration::from_secs(2));
        assert_eq!(l.aws.session_duration, Duration::from_secs(900));
        assert_eq!(l.aws.page_size, AwsLimits::default().page_size);
        assert_eq!(l.port.max_bulk_entities, 10);
        assert_eq!(l.port.max_body_bytes, 512 << 10);
        assert_eq!(l.port.retry.max_attempts, 3);
        assert_eq!(l.port.retry.base_delay, RetryPolicy::default().base_delay);
        assert_eq!(yaml("{}").unwrap(), TenantLimits::default());
    }

    #[test]
    fn the_first_spellings_are_still_read() {
        let l = yaml("pluginMemoryMb: 64\npluginTimeoutMs: 1500\nbatchItems: 7\n").unwrap();
        assert_eq!(l.plugin.max_memory_bytes, 64 << 20);
        assert_eq!(l.plugin.call_timeout, Duration::from_millis(1500));
        assert_eq!(l.batch_items, 7);
        let e = yaml("pluginMemoryMb: 64\nplugin: {timeoutMs: 9}\n").unwrap_err();
        assert!(
            e.contains("pluginMemoryMb") && e.contains("plugin.memoryMb"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_path() {
        let e = yaml("plugin: {memoryMbb: 1}\n").unwrap_err();
        assert!(e.contains("plugin") && e.contains("memoryMbb"), "{e}");
        let e = yaml("aws: {retry: {maxAttempts: 1}}\n").unwrap_err();
        assert!(e.contains("aws") && e.contains("retry"), "{e}");
        let e = yaml("port:\n  retry: {attempts: 3}\n").unwrap_err();
        assert!(
            e.contains("port.retry") && e.contains("attempts") && e.contains("line 2"),
            "{e}"
        );
        let e = yaml("batchitems: 3\n").unwrap_err();
        assert!(e.contains("batchitems"), "{e}");
        // The JSON route (environment, policies) names the whole path too.
        let e = TenantLimits::default()
            .overlay(&json!({"port": {"retry": {"attempts": 3}}}))
            .unwrap_err();
        assert!(
            e.starts_with("limits.port.retry.attempts: unknown key"),
            "{e}"
        );
        let e = TenantLimits::default()
            .overlay(&json!({"aws": 3}))
            .unwrap_err();
        assert_eq!(e, "limits.aws: expected a section");
    }

    #[test]
    fn values_are_checked_against_zero_order_and_published_maxima() {
        for (text, key) in [
            ("batchItems: 0", "batchItems"),
            ("plugin: {memoryMb: 0}", "plugin.memoryMb"),
            (
                "plugin: {memoryMb: 2048}\nengine: {maxMemoryMb: 1024}",
                "engine.maxMemoryMb",
            ),
            ("port: {bulkEntities: 21}", "port.bulkEntities"),
            ("port: {bodyKb: 1025}", "port.bodyKb"),
            ("port: {bulkDelete: 101}", "port.bulkDelete"),
            ("port: {searchPage: 1001}", "port.searchPage"),
            ("port: {retry: {jitter: 2}}", "port.retry.jitter"),
            ("port: {startupBaseDelayMs: 0}", "port.startupBaseDelayMs"),
            (
                "port: {startupBaseDelayMs: 61000}",
                "port.startupMaxDelayMs",
            ),
            ("aws: {pageSize: 101}", "aws.pageSize"),
            (
                "aws: {sessionDurationSeconds: 60}",
                "aws.sessionDurationSeconds",
            ),
            ("aws: {decreaseFactor: 1}", "aws.decreaseFactor"),
            ("aws: {minRate: 50}", "aws.initialRate"),
            ("aws: {backoffBaseMs: 10000}", "aws.backoffMaxMs"),
            ("engine: {pooledInstances: 0}", "engine.pooledInstances"),
        ] {
            let e = yaml(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        // Without `engine:` the plugin memory waits for the reader's engine (`check`).
        let l = yaml("plugin: {memoryMb: 2048}").unwrap();
        assert!(l.check().unwrap_err().contains("engine.maxMemoryMb (1024)"));
        // The maxima themselves are accepted.
        yaml("port: {bulkEntities: 20, bodyKb: 1024, bulkDelete: 100, searchPage: 1000}\naws: {pageSize: 100}")
            .unwrap();
    }

    #[test]
    fn the_environment_table_overrides_and_names_the_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let mut l = yaml("batchItems: 200\nplugin: {memoryMb: 128}").unwrap();
        l.apply_env(env(&[
            ("BERTH_PLUGIN_MEMORY_MB", "96"),
            ("BERTH_PLUGIN_TIMEOUT_MS", " 2500 "),
        ]))
        .unwrap();
        assert_eq!(l.plugin.max_memory_bytes, 96 << 20);
        assert_eq!(l.plugin.call_timeout, Duration::from_millis(2500));
        assert_eq!(
            l.batch_items, 200,
            "a variable that is not set changes nothing"
        );
        l.apply_env(env(&[("BERTH_BATCH_ITEMS", "7")])).unwrap();
        assert_eq!(l.batch_items, 7);

        let e = l
            .apply_env(env(&[("BERTH_BATCH_ITEMS", "ten")]))
            .unwrap_err();
        assert_eq!(
            e,
            r#"BERTH_BATCH_ITEMS="ten": not a whole number (it sets limits.batchItems)"#
        );
        let e = l
            .apply_env(env(&[("BERTH_PLUGIN_MEMORY_MB", "-1")]))
            .unwrap_err();
        assert!(
            e.starts_with("BERTH_PLUGIN_MEMORY_MB=\"-1\": not a whole number"),
            "{e}"
        );
        let e = l.apply_env(env(&[("BERTH_BATCH_ITEMS", "0")])).unwrap_err();
        assert_eq!(
            e,
            r#"BERTH_BATCH_ITEMS="0": limits.batchItems: must be at least 1"#
        );
        let e = l
            .apply_env(env(&[("BERTH_PLUGIN_MEMORY_MB", "4096")]))
            .unwrap_err();
        assert!(
            e.starts_with(
                "BERTH_PLUGIN_MEMORY_MB=\"4096\": limits.plugin.memoryMb: at most engine.maxMemoryMb"
            ),
            "{e}"
        );
        // Every variable of the table sets a key that exists.
        for (name, path) in ENV {
            TenantLimits::default()
                .overlay(&nested(path, json!(1)))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn the_tree_round_trips_through_its_keys() {
        let l = yaml("plugin: {memoryMb: 128}\naws: {initialRate: 3.5, minRate: 0.25}").unwrap();
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["plugin"]["memoryMb"], 128);
        assert_eq!(v["plugin"]["timeoutMs"], 30_000);
        assert_eq!(v["aws"]["sessionDurationSeconds"], 3600);
        assert_eq!(v["port"]["bodyKb"], 1024);
        assert_eq!(serde_json::from_value::<TenantLimits>(v).unwrap(), l);
    }

    fn written(raw: Value) -> BTreeMap<String, String> {
        written_keys(&raw)
            .into_iter()
            .map(|(path, key)| (path, format!("config.limits.{key}")))
            .collect()
    }

    /// One knob of each class (plugin sandbox, batch, AWS count and rate, Port, a floor, the
    /// engine): past the operator's bound it is refused when the tenant set it and moved to the
    /// bound when it did not.
    #[test]
    fn the_ceiling_bounds_every_class_of_knob() {
        let ceiling = TenantLimits::default()
            .overlay(&json!({
                "plugin": {"memoryMb": 64, "wallTimeoutMs": 60_000},
                "batchItems": 20,
                "aws": {"maxInFlight": 4, "initialRate": 5, "maxRate": 10, "backoffBaseMs": 200,
                        "backoffMaxMs": 8000},
                "port": {"concurrency": 2, "bulkEntities": 10},
            }))
            .unwrap();
        // Left out: lowered to the ceiling (raised to a floor).
        let l = TenantLimits::default()
            .under(&ceiling, &BTreeMap::new())
            .unwrap();
        assert_eq!(l.plugin.max_memory_bytes, 64 << 20);
        assert_eq!(l.plugin.call_wall_timeout, Duration::from_secs(60));
        assert_eq!(l.batch_items, 20);
        assert_eq!(l.aws.max_in_flight, 4);
        assert_eq!(l.aws.initial_rate, 5.0);
        assert_eq!(l.aws.backoff_base, Duration::from_millis(200));
        assert_eq!(l.port.concurrency, 2);
        assert_eq!(l.port.max_bulk_entities, 10);
        // Values under the ceiling are kept.
        assert_eq!(l.aws.min_rate, 0.5);
        assert_eq!(l.plugin.call_timeout, Duration::from_secs(30));

        // Set within: kept. Set past: refused, naming the key as written.
        for (raw, ok) in [
            (json!({"pluginMemoryMb": 32}), true),
            (json!({"pluginMemoryMb": 65}), false),
            (json!({"plugin": {"memoryMb": 65}}), false),
            (json!({"batchItems": 21}), false),
            (json!({"aws": {"maxInFlight": 5}}), false),
            (json!({"aws": {"initialRate": 5.5}}), false),
            (json!({"aws": {"backoffBaseMs": 400}}), true),
            (json!({"aws": {"backoffBaseMs": 100}}), false),
            (json!({"port": {"bulkEntities": 11}}), false),
            (json!({"port": {"concurrency": 1}}), true),
        ] {
            let tenant = TenantLimits::default().overlay(&raw).unwrap();
            let keys = written(raw.clone());
            let got = tenant.under(&ceiling, &keys);
            let key = keys.values().next().unwrap();
            match (ok, got) {
                (true, Ok(_)) => {}
                (false, Err(e)) => {
                    assert!(e.starts_with(&format!("{key}: at ")), "{raw}: {e}");
                }
                (_, got) => panic!("{raw}: {got:?}"),
            }
        }
        let e = TenantLimits::default()
            .under(&ceiling, &written(json!({"aws": {"backoffMaxMs": 4000}})))
            .unwrap_err();
        assert_eq!(e, "config.limits.aws.backoffMaxMs: at least 8000 here");
        let e = TenantLimits::default()
            .under(&ceiling, &written(json!({"pluginMemoryMb": 65})))
            .unwrap_err();
        assert_eq!(e, "config.limits.pluginMemoryMb: at most 64 here");

        // The engine is the operator's: refused when written, never taken from a tenant.
        let e = TenantLimits::default()
            .under(
                &ceiling,
                &written(json!({"engine": {"pooledInstances": 1}})),
            )
            .unwrap_err();
        assert!(
            e.starts_with("config.limits.engine.pooledInstances: one engine"),
            "{e}"
        );
        // What a tenant's tree holds there is replaced by the ceiling's: the operator's engine.
        let mut big = TenantLimits::default();
        big.engine.pooled_instances = 100_000;
        let mut operators = ceiling.clone();
        operators.engine.pooled_instances = 7;
        operators.engine.max_memory_bytes = 64 << 20;
        assert_eq!(
            big.under(&operators, &BTreeMap::new()).unwrap().engine,
            operators.engine
        );
        // The tenant's values are checked against that engine, not the built-in one.
        operators.plugin.max_memory_bytes = 128 << 20;
        operators.engine.max_memory_bytes = 96 << 20;
        let e = TenantLimits::default()
            .under(&operators, &BTreeMap::new())
            .unwrap_err();
        assert!(
            e.contains("limits.plugin.memoryMb: at most engine.maxMemoryMb (96)"),
            "{e}"
        );
    }

    #[test]
    fn every_floor_and_alias_names_a_key_of_the_tree() {
        let v = serde_json::to_value(TenantLimits::default()).unwrap();
        for path in FLOORS.iter().chain(ALIASES.iter().map(|(_, p)| p)) {
            let pointer = format!("/{}", path.replace('.', "/"));
            assert!(v.pointer(&pointer).is_some_and(Value::is_number), "{path}");
        }
        assert!(v.get(OPERATOR_ONLY).is_some_and(Value::is_object));
    }

    #[test]
    fn the_default_ceiling_is_a_valid_tree_above_the_defaults_where_it_differs() {
        let c = TenantLimits::default_ceiling();
        c.check().unwrap();
        assert!(c.batch_items > DEFAULT_BATCH_ITEMS);
        assert!(c.plugin.call_timeout < Limits::default().call_timeout);
    }
}
