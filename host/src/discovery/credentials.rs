//! Credentials: the base identity (the SDK default chain, static keys, or
//! OIDC web identity) and roles assumed from it (the organization role,
//! member roles), each cached and refreshed before it expires.
//!
//! Every source is a fetch function behind one [`CachedCredentials`]: it
//! hands out the cached credentials while they have more than the refresh
//! margin left (at most half their lifetime, so short sessions still get
//! reused), and otherwise fetches once for all waiting callers. STS calls go
//! through the tenant's [`Caller`], so they are paced and retried like any
//! other. A web identity token is fetched again at every refresh: read from
//! its file (a platform that rotates it), or minted by `berth serve`'s
//! issuer for the tenant ([`TokenMint`]).
//!
//! Owns: [`CachedCredentials`] and the fetchers. Must not log secrets: the
//! `Debug` impls print names and key prefixes only.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use futures::future::BoxFuture;

use super::arn::Arn;
use super::call::{CallError, CallStats, Caller, ErrorClass, Target, sdk};
use super::clients::ClientFactory;
use super::config::redact_key;

/// Mints a fresh web identity token (`berth serve`'s issuer, for one tenant). Compared by
/// identity: two configs are equal only when they share the same minter.
#[derive(Clone)]
pub struct TokenMint(Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>);

impl TokenMint {
    pub fn new(
        f: impl Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(f))
    }
}

impl fmt::Debug for TokenMint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenMint")
    }
}

impl PartialEq for TokenMint {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TokenMint {}

/// Where a web identity token comes from at each refresh.
#[derive(Debug, Clone)]
pub enum TokenSource {
    File(PathBuf),
    Mint(TokenMint),
}

impl TokenSource {
    async fn token(&self, api: &'static str) -> Result<String, CallError> {
        match self {
            Self::File(file) => tokio::fs::read_to_string(file)
                .await
                .map(|t| t.trim().to_string())
                .map_err(|e| {
                    CallError::new(
                        ErrorClass::Fatal,
                        api,
                        "TokenFile",
                        format!(
                            "cannot read the web identity token file {}: {e}",
                            file.display()
                        ),
                    )
                }),
            Self::Mint(mint) => (mint.0)().await.map_err(|e| {
                CallError::new(
                    ErrorClass::Fatal,
                    api,
                    "TokenMint",
                    format!("cannot mint this tenant's identity token: {e}"),
                )
            }),
        }
    }
}

type Fetch = Box<dyn Fn() -> BoxFuture<'static, Result<Credentials, CallError>> + Send + Sync>;

struct Cached {
    creds: Credentials,
    fetched: SystemTime,
}

/// One credentials source, cached and refreshed before expiry.
pub struct CachedCredentials {
    name: String,
    fetch: Fetch,
    margin: Duration,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl fmt::Debug for CachedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedCredentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A short, secret-free description of credentials for logs.
pub fn describe(c: &Credentials) -> String {
    format!(
        "{} (expires {:?})",
        redact_key(c.access_key_id()),
        c.expiry()
    )
}

impl CachedCredentials {
    fn new(name: String, margin: Duration, fetch: Fetch) -> Arc<Self> {
        Arc::new(Self {
            name,
            fetch,
            margin,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Valid credentials: cached, or fetched now.
    pub async fn get(&self) -> Result<Credentials, CallError> {
        let mut slot = self.cache.lock().await;
        let now = SystemTime::now();
        if let Some(c) = &*slot
            && fresh(c, now, self.margin)
        {
            return Ok(c.creds.clone());
        }
        let creds = (self.fetch)().await?;
        tracing::debug!(source = %self.name, creds = %describe(&creds), "credentials fetched");
        *slot = Some(Cached {
            creds: creds.clone(),
            fetched: now,
        });
        Ok(creds)
    }

    /// As an SDK credentials provider.
    pub fn shared(self: &Arc<Self>) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(Provider(self.clone()))
    }
}

fn fresh(c: &Cached, now: SystemTime, margin: Duration) -> bool {
    let Some(exp) = c.creds.expiry() else {
        return true;
    };
    let life = exp.duration_since(c.fetched).unwrap_or_default();
    let margin = margin.min(life / 2);
    exp.duration_since(now).is_ok_and(|left| left > margin)
}

#[derive(Debug)]
struct Provider(Arc<CachedCredentials>);

impl ProvideCredentials for Provider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.0.get().await.map_err(CredentialsError::provider_error)
        })
    }
}

/// Static keys.
pub fn static_keys(
    access_key_id: &str,
    secret: &str,
    token: Option<&str>,
    margin: Duration,
) -> Arc<CachedCredentials> {
    let creds = Credentials::new(
        access_key_id,
        secret,
        token.map(str::to_string),
        None,
        "berth-static",
    );
    CachedCredentials::new(
        format!("static keys {}", redact_key(access_key_id)),
        margin,
        Box::new(move || {
            let c = creds.clone();
            Box::pin(async move { Ok(c) })
        }),
    )
}

/// The SDK's default chain, as the CLI and SDKs resolve it.
pub async fn default_chain(
    region: &str,
    endpoint_url: Option<&str>,
    margin: Duration,
) -> Arc<CachedCredentials> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()));
    if let Some(e) = endpoint_url {
        loader = loader.endpoint_url(e);
    }
    let conf = loader.load().await;
    let chain = conf.credentials_provider();
    CachedCredentials::new(
        "the default credentials chain".into(),
        margin,
        Box::new(move || {
            let chain = chain.clone();
            Box::pin(async move {
                let Some(chain) = chain else {
                    return Err(CallError::new(
                        ErrorClass::Fatal,
                        "credentials",
                        "NoCredentials",
                        "no credentials provider in the default chain",
                    ));
                };
                chain.provide_credentials().await.map_err(|e| {
                    let text = crate::error_text::chain(&e);
                    let class = if text.contains("AccessDenied") {
                        ErrorClass::Denied
                    } else if matches!(e, CredentialsError::CredentialsNotLoaded(_)) {
                        ErrorClass::Fatal
                    } else {
                        ErrorClass::Transient
                    };
                    CallError::new(class, "credentials", "DefaultChain", text)
                })
            })
        }),
    )
}

/// Context the STS fetchers need.
#[derive(Clone)]
pub struct StsContext {
    pub factory: ClientFactory,
    pub caller: Caller,
    pub stats: Arc<CallStats>,
    /// Where STS is called (the partition's default region).
    pub region: String,
    pub session_duration: Duration,
    pub margin: Duration,
}

fn sts_credentials(
    api: &'static str,
    c: Option<&aws_sdk_sts::types::Credentials>,
) -> Result<Credentials, CallError> {
    let c = c.ok_or_else(|| {
        CallError::new(
            ErrorClass::Fatal,
            api,
            "NoCredentials",
            "STS answered without credentials",
        )
    })?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "berth-sts",
    ))
}

/// OIDC web identity: a fresh token at every refresh.
pub fn web_identity(
    ctx: StsContext,
    role_arn: Arn,
    tokens: TokenSource,
    session_name: String,
) -> Arc<CachedCredentials> {
    let name = format!("web identity {role_arn}");
    let margin = ctx.margin;
    let ctx = Arc::new(ctx);
    CachedCredentials::new(
        name,
        margin,
        Box::new(move || {
            let ctx = ctx.clone();
            let role = role_arn.clone();
            let tokens = tokens.clone();
            let session = session_name.clone();
            Box::pin(async move {
                const API: &str = "sts:AssumeRoleWithWebIdentity";
                let token = tokens.token(API).await?;
                let sts = ctx.factory.sts(&ctx.region, None);
                let role_s = role.to_string();
                let out = ctx
                    .caller
                    .call(
                        Target {
                            api: API,
                            account_id: &role.account_id,
                            region: &ctx.region,
                        },
                        &ctx.stats,
                        false,
                        || {
                            sdk(
                                API,
                                sts.assume_role_with_web_identity()
                                    .role_arn(&role_s)
                                    .role_session_name(&session)
                                    .web_identity_token(&token)
                                    .duration_seconds(ctx.session_duration.as_secs() as i32)
                                    .send(),
                            )
                        },
                    )
                    .await?;
                sts_credentials(API, out.credentials())
            })
        }),
    )
}

/// `AssumeRole` from `source`, with an external id and session name.
pub fn assume_role(
    ctx: StsContext,
    source: Arc<CachedCredentials>,
    role_arn: Arn,
    external_id: Option<String>,
    session_name: String,
) -> Arc<CachedCredentials> {
    let name = format!("role {role_arn}");
    let margin = ctx.margin;
    let ctx = Arc::new(ctx);
    let sts = ctx.factory.sts(&ctx.region, Some(source.shared()));
    CachedCredentials::new(
        name,
        margin,
        Box::new(move || {
            let ctx = ctx.clone();
            let sts = sts.clone();
            let role = role_arn.clone();
            let ext = external_id.clone();
            let session = session_name.clone();
            let source = source.clone();
            Box::pin(async move {
                const API: &str = "sts:AssumeRole";
                // Resolve the source first so its own failure is reported as
                // such, not as this role's.
                source.get().await?;
                let role_s = role.to_string();
                let out = ctx
                    .caller
                    .call(
                        Target {
                            api: API,
                            account_id: &role.account_id,
                            region: &ctx.region,
                        },
                        &ctx.stats,
                        false,
                        || {
                            sdk(
                                API,
                                sts.assume_role()
                                    .role_arn(&role_s)
                                    .role_session_name(&session)
                                    .set_external_id(ext.clone())
                                    .duration_seconds(ctx.session_duration.as_secs() as i32)
                                    .send(),
                            )
                        },
                    )
                    .await
                    .map_err(|e| CallError {
                        message: format!("cannot assume {role}: {}", e.message),
                        ..e
                    })?;
                sts_credentials(API, out.credentials())
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_uses_margin_capped_at_half_life() {
        let now = SystemTime::now();
        let c = |life: u64, fetched_ago: u64| Cached {
            creds: Credentials::new(
                "AKIA1",
                "s",
                None,
                Some(now - Duration::from_secs(fetched_ago) + Duration::from_secs(life)),
                "t",
            ),
            fetched: now - Duration::from_secs(fetched_ago),
        };
        let margin = Duration::from_secs(300);
        assert!(fresh(&c(3600, 0), now, margin));
        assert!(!fresh(&c(3600, 3400), now, margin), "inside the margin");
        assert!(
            fresh(&c(10, 2), now, margin),
            "short session: half its life"
        );
        assert!(!fresh(&c(10, 6), now, margin));
        let forever = Cached {
            creds: Credentials::new("AKIA1", "s", None, None, "t"),
            fetched: now,
        };
        assert!(fresh(&forever, now, margin));
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let c = static_keys(
            "AKIAVERYSECRETKEY",
            "the-secret-key",
            Some("the-token"),
            Duration::ZERO,
        );
        let d = format!("{c:?}");
        assert!(
            !d.contains("the-secret-key") && !d.contains("VERYSECRET"),
            "{d}"
        );
        let creds = Credentials::new(
            "AKIAVERYSECRETKEY",
            "the-secret-key",
            Some("the-token".into()),
            None,
            "t",
        );
        let s = describe(&creds);
        assert!(
            !s.contains("the-secret") && !s.contains("the-token") && !s.contains("VERYSECRET"),
            "{s}"
        );
        // The SDK's own Debug redacts too; keep relying on it only in addition.
        let d = format!("{creds:?}");
        assert!(
            !d.contains("the-secret-key") && !d.contains("the-token"),
            "{d}"
        );
    }
}
