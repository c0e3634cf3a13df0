//! AWS discovery: credentials, accounts, regions, and reading resources
//! through Cloud Control into raw items, as a stream.
//!
//! Owns everything that talks to AWS: [`config`] (the `aws:` section),
//! [`arn`] (ARNs and partitions), [`credentials`] (default chain, static,
//! web identity, assumed roles, refresh), [`clients`] (SDK clients without
//! SDK retries), [`limiter`] and [`call`] (adaptive per-API rate limiting,
//! retries, counters), [`accounts`] (Organizations, OUs, enabled regions),
//! [`s3`] (bucket home regions), [`session`] (a tenant and one sync),
//! [`discover`] (the scopes, the bounded work pool, the item stream and the
//! completeness report). The plugins' lookups use this module's sessions
//! from [`crate::plugin::lookup::aws`]; `berth discover` is the binary's.
//! Must not map items or talk to Port.
//!
//! Wiring discovery into a sync:
//! ```ignore
//! let tenant = AwsTenant::new("tenant-1", aws_config, AwsLimits::default())?; // keep across syncs
//! let sync = tenant.start_sync().await?;              // accounts listed anew
//! let lookup = Arc::new(AwsLookup::new(sync.clone()));   // plugin::lookup, for the plugins
//! let (tx, mut rx) = tokio::sync::mpsc::channel(tenant.limits().channel_items);
//! let run = tokio::spawn(discover(sync.clone(), kinds_from_mapping(&mapping)?, tx));
//! while let Some(ev) = rx.recv().await { /* Event::Item → map; Event::Scope → completeness */ }
//! let report = run.await?;                               // DiscoveryReport
//! ```

pub mod accounts;
pub mod arn;
pub mod call;
pub mod clients;
pub mod config;
pub mod credentials;
pub mod discover;
pub mod limiter;
pub mod limits;
pub mod s3;
pub mod session;

pub use config::{AwsConfig, KindPlan, RegionPolicy, kinds_from_mapping};
pub use discover::{
    AccountReport, CloudResource, DiscoveryReport, Event, RawItem, ScopeReport, discover,
};
pub use limits::AwsLimits;
pub use session::{AwsError, AwsSync, AwsTenant};
