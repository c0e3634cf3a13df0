//! A tenant's AWS side ([`AwsTenant`]: configuration, limits, the adaptive
//! limiter, kept across syncs) and one sync's view of AWS ([`AwsSync`]:
//! base credentials, the account list — fetched anew at every sync —, each
//! account's role and regions, and the per-sync caches).
//!
//! Owns: credential chaining (base → org role → member role), account
//! preparation (an account whose role cannot be assumed is kept, marked
//! with its error, and the others go on), the Cloud Control primitives
//! (list a page, get one, both paced and retried), and the caches of
//! repeated Cloud Control reads (lists, gets). Keeps the sync's S3 bucket
//! home table (`s3.rs`'s `BucketHomes`) and hands it out with
//! [`AwsSync::bucket_homes`], but knows nothing of S3: `s3.rs` fills and
//! reads it. Must not decide what to read (that is `discover`) or talk to
//! Port.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::sync::OnceCell;

use super::accounts::{self, OrgAccount};
use super::arn::{Arn, Partition};
use super::call::{CallError, CallStats, Caller, ErrorClass, Target, sdk};
use super::clients::ClientFactory;
use super::config::{AccountSource, AuthMethod, AwsConfig, AwsConfigError};
use super::credentials::{self, CachedCredentials, StsContext};
use super::limiter::Limiter;
use super::limits::AwsLimits;
use super::s3;
use crate::discovery::CloudResource;

/// Why a sync could not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsError {
    #[error("{0}")]
    Config(#[from] AwsConfigError),
    #[error("base credentials ({source_name}): {error}")]
    Credentials {
        source_name: String,
        error: CallError,
    },
    #[error("cannot assume the organization role: {0}")]
    OrgRole(CallError),
    #[error("cannot list the organization's accounts: {0}")]
    Accounts(CallError),
}

/// One tenant's AWS side. Cheap to keep; every sync starts from it.
#[derive(Debug)]
pub struct AwsTenant {
    pub id: String,
    config: AwsConfig,
    limits: Arc<AwsLimits>,
    caller: Caller,
    factory: ClientFactory,
    partition: Partition,
}

impl AwsTenant {
    pub fn new(
        id: impl Into<String>,
        config: AwsConfig,
        limits: AwsLimits,
    ) -> Result<Arc<Self>, AwsConfigError> {
        config.check()?;
        let limits = Arc::new(limits);
        let limiter = Arc::new(Limiter::new(limits.clone()));
        Ok(Arc::new(Self {
            id: id.into(),
            partition: config.partition(),
            factory: ClientFactory::new(config.endpoint_url.clone(), limits.clone()),
            caller: Caller::new(limits.clone(), limiter)
                .with_endpoint(config.endpoint_url.as_deref()),
            limits,
            config,
        }))
    }

    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    pub fn limits(&self) -> &AwsLimits {
        &self.limits
    }

    /// The tenant's rate limiter (its buckets and counters).
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.caller.limiter
    }

    pub fn partition(&self) -> Partition {
        self.partition
    }

    pub(crate) fn factory_organizations(
        &self,
        region: &str,
        creds: SharedCredentialsProvider,
    ) -> aws_sdk_organizations::Client {
        self.factory.organizations(region, creds)
    }

    fn home_region(&self) -> &'static str {
        self.partition.default_region()
    }

    fn sts_ctx(&self, stats: &Arc<CallStats>) -> StsContext {
        StsContext {
            factory: self.factory.clone(),
            caller: self.caller.clone(),
            stats: stats.clone(),
            region: self.home_region().to_string(),
            session_duration: self.limits.session_duration,
            margin: self.limits.refresh_margin,
        }
    }

    async fn base_credentials(
        &self,
        stats: &Arc<CallStats>,
    ) -> Result<Arc<CachedCredentials>, AwsError> {
        let a = &self.config.auth;
        let margin = self.limits.refresh_margin;
        let creds = match a.method {
            AuthMethod::Static => credentials::static_keys(
                a.access_key_id.as_deref().unwrap_or_default(),
                a.secret_access_key
                    .as_ref()
                    .map(|s| s.expose())
                    .unwrap_or_default(),
                a.session_token.as_ref().map(|s| s.expose()),
                margin,
            ),
            AuthMethod::Default => {
                credentials::default_chain(self.home_region(), self.factory.endpoint_url(), margin)
                    .await
            }
            AuthMethod::WebIdentity => {
                let role = a
                    .role_arn
                    .clone()
                    .or_else(|| std::env::var("AWS_ROLE_ARN").ok())
                    .ok_or_else(|| {
                        AwsConfigError(
                            "aws.auth: `method: webIdentity` needs roleArn (or AWS_ROLE_ARN)"
                                .into(),
                        )
                    })?;
                let file = a
                    .token_file
                    .clone()
                    .or_else(|| std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").map(Into::into))
                    .ok_or_else(|| AwsConfigError("aws.auth: `method: webIdentity` needs tokenFile (or AWS_WEB_IDENTITY_TOKEN_FILE)".into()))?;
                self.web_identity(stats, &role, credentials::TokenSource::File(file))?
            }
            AuthMethod::BerthIdentity => {
                let mint = a.tokens.clone().ok_or_else(|| {
                    AwsConfigError(
                        "aws.auth: `method: berthIdentity` works only for a tenant of `berth serve` with an `identity:` section (use webIdentity with a token file elsewhere)"
                            .into(),
                    )
                })?;
                let role = a.role_arn.clone().unwrap_or_default();
                self.web_identity(stats, &role, credentials::TokenSource::Mint(mint))?
            }
        };
        creds.get().await.map_err(|error| AwsError::Credentials {
            source_name: creds.name().to_string(),
            error,
        })?;
        Ok(creds)
    }

    fn web_identity(
        &self,
        stats: &Arc<CallStats>,
        role: &str,
        tokens: credentials::TokenSource,
    ) -> Result<Arc<CachedCredentials>, AwsError> {
        let role = super::arn::parse_role_arn(role)
            .map_err(|e| AwsConfigError(format!("aws.auth.roleArn: {e}")))?;
        let session = self
            .config
            .auth
            .session_name
            .clone()
            .unwrap_or_else(|| self.config.session_name.clone());
        Ok(credentials::web_identity(
            self.sts_ctx(stats),
            role,
            tokens,
            session,
        ))
    }

    /// Start a sync: resolve the base credentials and list the accounts
    /// (never reused from an earlier sync, so new and removed accounts are
    /// seen at once). Accounts' roles and regions are resolved lazily, by
    /// discovery or the first lookup, once each.
    pub async fn start_sync(self: &Arc<Self>) -> Result<Arc<AwsSync>, AwsError> {
        let stats = Arc::new(CallStats::default());
        let base = self.base_credentials(&stats).await?;
        let region = self.home_region();
        let mut notes = Vec::new();
        let (specs, source, org) = match self.config.account_source() {
            AccountSource::Single => {
                let id = self.caller_account(&base, &stats).await?;
                (
                    vec![AccountSpec {
                        id,
                        name: None,
                        role_arn: None,
                    }],
                    base,
                    None,
                )
            }
            AccountSource::Roles(arns) => {
                let specs = arns
                    .into_iter()
                    .map(|a| AccountSpec {
                        id: a.account_id.clone(),
                        name: None,
                        role_arn: Some(a),
                    })
                    .collect();
                (specs, base, None)
            }
            AccountSource::Organization {
                org_role,
                member_path,
                member_name,
                ou_ids,
                through_base,
            } => {
                let org_creds = if through_base {
                    base
                } else {
                    let creds = credentials::assume_role(
                        self.sts_ctx(&stats),
                        base,
                        org_role.clone(),
                        self.config.external_id.clone(),
                        self.config.session_name.clone(),
                    );
                    creds.get().await.map_err(AwsError::OrgRole)?;
                    creds
                };
                let client = self.factory.organizations(region, org_creds.shared());
                let mgmt = org_role.account_id.clone();
                let listed = if ou_ids.is_empty() {
                    accounts::list_accounts(&self.caller, &stats, &client, &mgmt, region).await
                } else {
                    accounts::list_accounts_under(
                        &self.caller,
                        &stats,
                        &client,
                        &mgmt,
                        region,
                        &ou_ids,
                    )
                    .await
                };
                match listed {
                    Ok(list) => {
                        let specs = list
                            .iter()
                            .map(|a| AccountSpec {
                                id: a.id.clone(),
                                name: a.name.clone(),
                                role_arn: Some(Arn::role(
                                    self.partition,
                                    &a.id,
                                    &member_path,
                                    &member_name,
                                )),
                            })
                            .collect();
                        (
                            specs,
                            org_creds,
                            Some(OrgListing {
                                management_account: mgmt,
                                accounts: list,
                            }),
                        )
                    }
                    Err(e) if e.class == ErrorClass::NotInOrganization => {
                        notes.push(format!(
                            "account {mgmt} is not in an organization: reading it alone, through {org_role}"
                        ));
                        (
                            vec![AccountSpec {
                                id: mgmt,
                                name: None,
                                role_arn: None,
                            }],
                            org_creds,
                            None,
                        )
                    }
                    Err(e) => return Err(AwsError::Accounts(e)),
                }
            }
        };
        Ok(Arc::new(AwsSync {
            tenant: self.clone(),
            accounts: specs,
            org,
            notes,
            source,
            setup_stats: stats,
            prepared: Mutex::new(HashMap::new()),
            lists: Mutex::new(HashMap::new()),
            gets: GenCells::new(self.limits().lookup_cache_entries),
            bucket_homes: s3::BucketHomes::new(self.factory.reqwest(), self.factory.endpoint_url()),
        }))
    }

    async fn caller_account(
        &self,
        creds: &Arc<CachedCredentials>,
        stats: &CallStats,
    ) -> Result<String, AwsError> {
        const API: &str = "sts:GetCallerIdentity";
        let region = self.home_region();
        let sts = self.factory.sts(region, Some(creds.shared()));
        let out = self
            .caller
            .call(
                Target {
                    api: API,
                    account_id: "-",
                    region,
                },
                stats,
                true,
                || sdk(API, sts.get_caller_identity().send()),
            )
            .await
            .map_err(|error| AwsError::Credentials {
                source_name: creds.name().to_string(),
                error,
            })?;
        Ok(out.account().unwrap_or_default().to_string())
    }
}

/// An account a sync reads, before its role is assumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    pub id: String,
    pub name: Option<String>,
    /// `None`: read with the sync's source credentials directly.
    pub role_arn: Option<Arn>,
}

/// The organization's accounts as listed at the start of the sync.
#[derive(Debug, Clone)]
pub struct OrgListing {
    pub management_account: String,
    pub accounts: Vec<OrgAccount>,
}

/// An account, ready to read (or marked with why it cannot be).
pub struct AccountCtx {
    pub spec: AccountSpec,
    /// Regions to read, after `regions` and `regionPolicy`; partition's
    /// default region first, then the regions needing no opt-in.
    pub regions: Vec<String>,
    /// Set when the account cannot be read at all (its role was refused):
    /// the account is incomplete and nothing of it may be deleted.
    pub error: Option<String>,
    /// The role was refused (AccessDenied) rather than failing otherwise.
    pub denied: bool,
    /// Set when the account's enabled regions could not be listed: `regions` is then only
    /// the partition's regions that need no opt-in, so the account may hold entities in
    /// regions this sync does not read, so nothing of the account is deleted.
    pub regions_unknown: Option<String>,
    pub notes: Vec<String>,
    creds: Arc<CachedCredentials>,
    cc: Mutex<HashMap<String, aws_sdk_cloudcontrol::Client>>,
}

impl std::fmt::Debug for AccountCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCtx")
            .field("spec", &self.spec)
            .field("regions", &self.regions)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl AccountCtx {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn credentials(&self) -> SharedCredentialsProvider {
        self.creds.shared()
    }

    /// The account's credentials as Berth caches them, for the calls made
    /// without an SDK client: their errors keep their class (a refused role
    /// stays denied).
    pub(crate) fn cached_credentials(&self) -> &Arc<CachedCredentials> {
        &self.creds
    }
}

type ListKey = (String, String, String, Option<String>);
/// Per-key single-flight cells: the first caller reads, the others wait for its answer.
pub(super) type Cells<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;
type GetKey = (String, String, String, String);

type CellMap<K, V> = HashMap<K, Arc<OnceCell<V>>>;

/// Single-flight cells like [`Cells`], bounded: two generations of at most `cap` keys each. A
/// key found in the old generation moves to the new one; when the new one is full, the old
/// one is dropped. Recently used answers stay; the cache never holds more than 2 × `cap`.
struct GenCells<K, V> {
    cap: usize,
    /// (current, previous).
    gens: Mutex<(CellMap<K, V>, CellMap<K, V>)>,
}

impl<K: std::hash::Hash + Eq, V> GenCells<K, V> {
    fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            gens: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    fn cell(&self, key: K) -> Arc<OnceCell<V>> {
        let mut g = self.gens.lock().expect("cache lock");
        let (current, previous) = &mut *g;
        if let Some(c) = current.get(&key) {
            return c.clone();
        }
        let c = previous.remove(&key).unwrap_or_default();
        if current.len() >= self.cap {
            *previous = std::mem::take(current);
        }
        g.0.insert(key, c.clone());
        c
    }
}

/// One sync's view of AWS. Shared by discovery and the lookups.
pub struct AwsSync {
    pub(crate) tenant: Arc<AwsTenant>,
    accounts: Vec<AccountSpec>,
    pub(crate) org: Option<OrgListing>,
    pub(crate) notes: Vec<String>,
    source: Arc<CachedCredentials>,
    /// Calls made to set the sync up (credentials, accounts, regions).
    pub setup_stats: Arc<CallStats>,
    prepared: Cells<String, Arc<AccountCtx>>,
    lists: Cells<ListKey, Arc<Vec<CloudResource>>>,
    gets: GenCells<GetKey, Option<CloudResource>>,
    bucket_homes: s3::BucketHomes,
}

impl std::fmt::Debug for AwsSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSync")
            .field("tenant", &self.tenant.id)
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

pub(super) fn cell<K: std::hash::Hash + Eq, V>(
    map: &Mutex<HashMap<K, Arc<OnceCell<V>>>>,
    key: K,
) -> Arc<OnceCell<V>> {
    map.lock()
        .expect("cache lock")
        .entry(key)
        .or_default()
        .clone()
}

impl AwsSync {
    pub fn tenant(&self) -> &Arc<AwsTenant> {
        &self.tenant
    }

    /// The accounts of this sync, as listed at its start.
    pub fn accounts(&self) -> &[AccountSpec] {
        &self.accounts
    }

    /// True when [`AwsSync::accounts`] is the whole truth about which accounts the tenant
    /// covers: read from Organizations, or the configured role list. An account missing from
    /// it has left (its entities may go); not so after a fallback to a single account.
    pub fn accounts_are_authoritative(&self) -> bool {
        self.org.is_some() || !self.tenant.config.account_role_arns.is_empty()
    }

    pub(crate) fn caller(&self) -> &Caller {
        &self.tenant.caller
    }

    pub fn limits(&self) -> &AwsLimits {
        &self.tenant.limits
    }

    pub(crate) fn partition(&self) -> Partition {
        self.tenant.partition
    }

    /// The sync's S3 bucket home table; `s3.rs` reads and fills it.
    pub(crate) fn bucket_homes(&self) -> &s3::BucketHomes {
        &self.bucket_homes
    }

    /// The account, prepared once per sync (role assumed, regions listed);
    /// `None` if it is not part of this sync.
    pub async fn account(&self, id: &str) -> Option<Arc<AccountCtx>> {
        let spec = self.accounts.iter().find(|a| a.id == id)?.clone();
        let c = cell(&self.prepared, id.to_string());
        Some(c.get_or_init(|| self.prepare(spec)).await.clone())
    }

    async fn prepare(&self, spec: AccountSpec) -> Arc<AccountCtx> {
        let t = &self.tenant;
        let creds = match &spec.role_arn {
            Some(role) => credentials::assume_role(
                t.sts_ctx(&self.setup_stats),
                self.source.clone(),
                role.clone(),
                t.config.external_id.clone(),
                t.config.session_name.clone(),
            ),
            None => self.source.clone(),
        };
        let mut ctx = AccountCtx {
            spec,
            regions: Vec::new(),
            error: None,
            denied: false,
            regions_unknown: None,
            notes: Vec::new(),
            creds,
            cc: Mutex::new(HashMap::new()),
        };
        if let Err(e) = ctx.creds.get().await {
            ctx.denied = e.class == ErrorClass::Denied;
            ctx.error = Some(e.to_string());
            return Arc::new(ctx);
        }
        let partition = t.partition;
        let listed = if !t.config.regions.is_empty() {
            t.config.regions.clone()
        } else if partition == Partition::Aws {
            let client = t.factory.account(t.home_region(), ctx.creds.shared());
            match accounts::enabled_regions(
                &t.caller,
                &self.setup_stats,
                &client,
                ctx.id(),
                t.home_region(),
            )
            .await
            {
                Ok(r) => {
                    // Region names become endpoint host names: an answer that is not a region
                    // of the partition is not read (and, being unread, keeps its entities).
                    let (ok, odd): (Vec<String>, Vec<String>) = r
                        .into_iter()
                        .partition(|r| super::config::is_region_of(partition, r));
                    if !odd.is_empty() {
                        let why = format!(
                            "ListRegions named regions that are not regions of the {} partition: {}",
                            partition.as_str(),
                            odd.join(", ")
                        );
                        ctx.notes.push(why.clone());
                        ctx.regions_unknown = Some(why);
                    }
                    ok
                }
                Err(e) => {
                    ctx.notes.push(format!(
                        "cannot list enabled regions ({e}); reading the regions that need no opt-in"
                    ));
                    ctx.regions_unknown =
                        Some(format!("its enabled regions could not be listed: {e}"));
                    partition
                        .fallback_regions()
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                }
            }
        } else {
            partition
                .fallback_regions()
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        ctx.regions = order_regions(
            partition,
            listed
                .into_iter()
                .filter(|r| t.config.region_policy.allows(r))
                .collect(),
        );
        Arc::new(ctx)
    }

    fn cc(&self, acct: &AccountCtx, region: &str) -> aws_sdk_cloudcontrol::Client {
        let mut m = acct.cc.lock().expect("client lock");
        m.entry(region.to_string())
            .or_insert_with(|| {
                self.tenant
                    .factory
                    .cloudcontrol(region, acct.creds.shared())
            })
            .clone()
    }

    /// Whether a call takes one of the tenant's in-flight slots. Plugins' lookups do not:
    /// discovery futures hold slots while their stream waits for the item channel to drain,
    /// and it drains only as mapping (and so the lookups) progresses; lookups needing a slot
    /// deadlocked a large sync. They stay bounded by the map pipeline (one lookup at a time
    /// per batch in flight) and paced by the same rate buckets.
    fn bounded(&self, stats: &CallStats) -> bool {
        !stats.lookups
    }

    /// One `ListResources` page.
    pub(crate) async fn list_page(
        &self,
        acct: &AccountCtx,
        region: &str,
        type_name: &str,
        model: Option<&str>,
        token: Option<String>,
        stats: &CallStats,
    ) -> Result<(Vec<CloudResource>, Option<String>), CallError> {
        const API: &str = "cloudcontrol:ListResources";
        let client = self.cc(acct, region);
        let page_size = self
            .limits()
            .page_size
            .clamp(1, crate::limits::AWS_MAX_PAGE_SIZE);
        let out = self
            .caller()
            .call(
                Target {
                    api: API,
                    account_id: acct.id(),
                    region,
                },
                stats,
                self.bounded(stats),
                || {
                    sdk(
                        API,
                        client
                            .list_resources()
                            .type_name(type_name)
                            .set_resource_model(model.map(str::to_string))
                            .set_next_token(token.clone())
                            .max_results(page_size)
                            .send(),
                    )
                },
            )
            .await?;
        let items = out
            .resource_descriptions()
            .iter()
            .map(|d| CloudResource {
                identifier: d.identifier().unwrap_or_default().to_string(),
                properties: d.properties().unwrap_or("{}").to_string(),
            })
            .collect();
        Ok((
            items,
            out.next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        ))
    }

    /// `GetResource`; `None` when the resource does not exist (any more).
    pub(crate) async fn get(
        &self,
        acct: &AccountCtx,
        region: &str,
        type_name: &str,
        identifier: &str,
        stats: &CallStats,
    ) -> Result<Option<CloudResource>, CallError> {
        const API: &str = "cloudcontrol:GetResource";
        let client = self.cc(acct, region);
        let r = self
            .caller()
            .call(
                Target {
                    api: API,
                    account_id: acct.id(),
                    region,
                },
                stats,
                self.bounded(stats),
                || {
                    sdk(
                        API,
                        client
                            .get_resource()
                            .type_name(type_name)
                            .identifier(identifier)
                            .send(),
                    )
                },
            )
            .await;
        match r {
            Ok(out) => Ok(out.resource_description().map(|d| CloudResource {
                identifier: d.identifier().unwrap_or(identifier).to_string(),
                properties: d.properties().unwrap_or("{}").to_string(),
            })),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every resource of a type (all pages), cached for the sync.
    pub(crate) async fn list_all_cached(
        &self,
        acct: &AccountCtx,
        region: &str,
        type_name: &str,
        model: Option<&str>,
        stats: &CallStats,
    ) -> Result<Arc<Vec<CloudResource>>, CallError> {
        let key = (
            acct.id().to_string(),
            region.to_string(),
            type_name.to_string(),
            model.map(str::to_string),
        );
        let c = cell(&self.lists, key);
        c.get_or_try_init(|| async {
            let mut all = Vec::new();
            let mut token = None;
            loop {
                let (items, next) = self
                    .list_page(acct, region, type_name, model, token, stats)
                    .await?;
                all.extend(items);
                match next {
                    Some(t) => token = Some(t),
                    None => return Ok(Arc::new(all)),
                }
            }
        })
        .await
        .cloned()
    }

    /// `GetResource`, cached for the sync.
    pub(crate) async fn get_cached(
        &self,
        acct: &AccountCtx,
        region: &str,
        type_name: &str,
        identifier: &str,
        stats: &CallStats,
    ) -> Result<Option<CloudResource>, CallError> {
        let key = (
            acct.id().to_string(),
            region.to_string(),
            type_name.to_string(),
            identifier.to_string(),
        );
        let c = self.gets.cell(key);
        c.get_or_try_init(|| self.get(acct, region, type_name, identifier, stats))
            .await
            .cloned()
    }
}

/// The partition's default region first, then regions needing no opt-in
/// (in their usual order), then the rest (sorted): where global kinds are
/// tried, in order.
pub fn order_regions(partition: Partition, mut regions: Vec<String>) -> Vec<String> {
    regions.sort();
    regions.dedup();
    let rank = |r: &str| {
        if r == partition.default_region() {
            0
        } else if let Some(i) = partition.fallback_regions().iter().position(|x| *x == r) {
            1 + i
        } else {
            1000
        }
    };
    regions.sort_by_key(|r| rank(r));
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_region_first_then_no_opt_in_regions() {
        let r = order_regions(
            Partition::Aws,
            vec![
                "af-south-1".into(),
                "eu-west-1".into(),
                "us-east-1".into(),
                "ap-east-1".into(),
                "us-west-2".into(),
            ],
        );
        assert_eq!(
            r,
            vec![
                "us-east-1",
                "us-west-2",
                "eu-west-1",
                "af-south-1",
                "ap-east-1"
            ]
        );
    }

    /// The lookup cache stays within two generations, keeps what is used, and forgets the rest.
    #[tokio::test]
    async fn lookup_cache_is_bounded_and_keeps_recent_answers() {
        let cache: GenCells<u32, u32> = GenCells::new(4);
        cache.cell(0).get_or_init(|| async { 100 }).await;
        for k in 1..100u32 {
            cache.cell(k).get_or_init(|| async move { k }).await;
            // Key 0 is used all along: it survives every rotation.
            assert_eq!(cache.cell(0).get().copied(), Some(100));
            let g = cache.gens.lock().unwrap();
            assert!(g.0.len() + g.1.len() <= 8, "{} + {}", g.0.len(), g.1.len());
        }
        assert_eq!(
            cache.cell(1).get(),
            None,
            "an old, unused answer is forgotten"
        );
        assert_eq!(cache.cell(99).get().copied(), Some(99));
    }
}
