//! `berth serve` as its tenants' OIDC identity provider: the customer's AWS trusts Berth's
//! issuer (an IAM OIDC provider and a role, created by the templates in `deploy/aws/`), and
//! Berth exchanges a short-lived token it signed for the tenant for that role's credentials
//! (`AssumeRoleWithWebIdentity`). No long-lived AWS secret leaves the customer.
//!
//! - The issuer publishes its discovery document and its JWKS without authentication
//!   (`serve::api` routes them under the issuer's path).
//! - Signing keys (ECDSA, generated here) are sealed with the serve secret key and kept in the
//!   store, so every worker on a shared database signs with the same keys and publishes the
//!   same JWKS. Rotation is a schedule over those rows ([`plan`]): the next key is published
//!   `publishLeadSeconds` before it signs (a relying party that cached the JWKS has it before
//!   it meets a token signed by it), and a replaced key stays published until every token it
//!   signed has expired.
//! - A tenant's token: `iss` the issuer, `aud` `sts.amazonaws.com`, `sub`
//!   `tenant:<id>:<incarnation>` ([`subject`]: a deleted and re-created tenant is another
//!   subject, so the old customer's trust policy does not trust the new one), `exp` minutes
//!   away, a random `jti`.
//!
//! Owns: [`IdentityConfig`], key generation and sealing, the rotation schedule, the JWKS, the
//! discovery document and minting. Must not touch: HTTP (`serve::api`), what the token is
//! exchanged for (`discovery::credentials`), tenants' documents.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::secrets::SecretKey;
use crate::discovery::credentials::TokenMint;
use crate::store::{SigningKeyRow, Store, StoreError};

/// The audience STS expects in web identity tokens (the IAM OIDC provider's client id).
pub const AUDIENCE: &str = "sts.amazonaws.com";

/// Why a `berthIdentity` tenant cannot run on a serve without an `identity:` section (refused
/// when the tenant is PUT, and by the worker if the section was removed since).
pub const NEEDS_ISSUER: &str = "config.aws.auth.method: berthIdentity needs the operator to configure `identity:` in the serve config";

/// Clock difference between Berth and STS tolerated when retiring a key.
const CLOCK_SKEW_MS: i64 = crate::limits::IDENTITY_CLOCK_SKEW.as_millis() as i64;

/// Signing algorithms STS accepts that Berth generates keys for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SigningAlgorithm {
    #[default]
    ES256,
    ES384,
}

impl SigningAlgorithm {
    fn jws(self) -> Algorithm {
        match self {
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::ES256),
            "ES384" => Some(Self::ES384),
            _ => None,
        }
    }
}

/// `serve.identity`: Berth's OIDC issuer.
///
/// ```yaml
/// identity:
///   issuer: https://berth.example.com      # public; /.well-known/* is served under it
///   algorithm: ES256                       # or ES384 (STS accepts both)
///   rotationSeconds: 604800                # a new signing key every 7 days
///   publishLeadSeconds: 3600               # published this long before it signs
///   tokenSeconds: 900                      # a tenant token's lifetime
///   templatesUrl: https://my-bucket.s3.amazonaws.com/berth/  # where deploy/aws/ is published
///   consoleRegion: us-east-1               # the quick-create link's console region
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IdentityConfig {
    pub issuer: String,
    #[serde(default)]
    pub algorithm: SigningAlgorithm,
    #[serde(default = "d_rotation")]
    pub rotation_seconds: u64,
    #[serde(default = "d_lead")]
    pub publish_lead_seconds: u64,
    #[serde(default = "d_token")]
    pub token_seconds: u64,
    #[serde(default)]
    pub templates_url: Option<String>,
    #[serde(default = "d_console_region")]
    pub console_region: String,
}

fn d_rotation() -> u64 {
    7 * 24 * 3600
}
// Longer than any JWKS cache a relying party keeps in practice (STS refetches within the hour).
fn d_lead() -> u64 {
    3600
}
// Used once per sync start and credentials refresh; STS needs it only for the exchange.
fn d_token() -> u64 {
    900
}
fn d_console_region() -> String {
    "us-east-1".into()
}

/// True for a URL Berth may publish as an issuer or templates location: https, or http on a
/// loopback host (the local stack; STS itself accepts only https).
fn public_or_loopback(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        _ => false,
    }
}

impl IdentityConfig {
    /// Checks the section and normalises its URLs (no trailing `/` on the issuer, one on the
    /// templates location); errors name the key.
    pub fn check(&mut self) -> Result<(), String> {
        let issuer = reqwest::Url::parse(&self.issuer)
            .map_err(|e| format!("identity.issuer: not a URL ({e})"))?;
        if !public_or_loopback(&issuer)
            || issuer.query().is_some()
            || issuer.fragment().is_some()
            || !issuer.username().is_empty()
        {
            return Err(
                "identity.issuer: an https URL without query or fragment (http only on a loopback address)"
                    .into(),
            );
        }
        self.issuer = self.issuer.trim_end_matches('/').to_string();
        if let Some(t) = &mut self.templates_url {
            let u = reqwest::Url::parse(t)
                .map_err(|e| format!("identity.templatesUrl: not a URL ({e})"))?;
            if !public_or_loopback(&u) {
                return Err("identity.templatesUrl: an https URL".into());
            }
            if !t.ends_with('/') {
                t.push('/');
            }
        }
        if !(60..=3600).contains(&self.token_seconds) {
            return Err("identity.tokenSeconds: between 60 and 3600".into());
        }
        if self.publish_lead_seconds == 0 || self.rotation_seconds < 2 * self.publish_lead_seconds {
            return Err(
                "identity.rotationSeconds: at least twice publishLeadSeconds (which must be at least 1)"
                    .into(),
            );
        }
        if !crate::discovery::config::is_region_of(
            crate::discovery::arn::Partition::Aws,
            &self.console_region,
        ) {
            return Err("identity.consoleRegion: a region of the aws partition".into());
        }
        Ok(())
    }

    /// How the issuer's path prefixes `/.well-known/...` (empty for an issuer at the root).
    pub fn path(&self) -> String {
        reqwest::Url::parse(&self.issuer)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// The issuer without its scheme: how IAM names the provider and its condition keys
    /// (`<host/path>:sub`).
    pub fn host_path(&self) -> &str {
        self.issuer
            .split_once("://")
            .map_or(self.issuer.as_str(), |(_, rest)| rest)
    }

    fn lead_ms(&self) -> i64 {
        (self.publish_lead_seconds * 1000) as i64
    }
    fn rotation_ms(&self) -> i64 {
        (self.rotation_seconds * 1000) as i64
    }
    fn token_ms(&self) -> i64 {
        (self.token_seconds * 1000) as i64
    }

    /// How often the keys are re-read and the schedule applied: well within the lead, so every
    /// worker sees a new key long before it signs.
    pub fn tick(&self) -> Duration {
        Duration::from_millis((self.lead_ms() / 4).clamp(500, 30_000) as u64)
    }
}

/// The `sub` of a tenant incarnation's tokens.
pub fn subject(tenant: &str, incarnation: &str) -> String {
    if incarnation.is_empty() {
        format!("tenant:{tenant}")
    } else {
        format!("tenant:{tenant}:{incarnation}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "signing key {0} cannot be opened: it was sealed with another secret key (secretKeyEnv)"
    )]
    Sealed(String),
    #[error("signing key {kid}: {why}")]
    Key { kid: String, why: String },
    #[error("no signing key yet")]
    NoKey,
}

/// When each key is published, signs and retires: the timing half of a stored key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTimes {
    pub generation: i64,
    pub published_at: i64,
    pub signs_from: i64,
}

/// What the schedule asks for at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// A key to create: (generation, published_at, signs_from).
    pub create: Option<KeyTimes>,
    /// The generation that signs now.
    pub signer: Option<i64>,
    /// Generations in the JWKS now.
    pub published: Vec<i64>,
    /// Generations below this are retired: every token they signed has expired.
    pub retire_below: Option<i64>,
}

/// The rotation schedule over `keys` (oldest generation first) at `now` (Unix ms).
pub fn plan(keys: &[KeyTimes], now: i64, c: &IdentityConfig) -> Plan {
    let Some(newest) = keys.last() else {
        // The very first key signs at once: nobody can have cached a JWKS without it.
        return Plan {
            create: Some(KeyTimes {
                generation: 1,
                published_at: now,
                signs_from: now,
            }),
            ..Plan::default()
        };
    };
    let create = (newest.signs_from <= now
        && now >= newest.signs_from + c.rotation_ms() - c.lead_ms())
    .then(|| KeyTimes {
        generation: newest.generation + 1,
        published_at: now,
        signs_from: (newest.signs_from + c.rotation_ms()).max(now + c.lead_ms()),
    });
    // The newest key that signs by now; with clocks apart, the oldest rather than none.
    let signer = keys
        .iter()
        .rev()
        .find(|k| k.signs_from <= now)
        .unwrap_or(&keys[0])
        .generation;
    // A key is retired once a later one has signed for longer than a token lives.
    let retire_below = keys
        .iter()
        .rev()
        .find(|k| k.signs_from + c.token_ms() + CLOCK_SKEW_MS <= now)
        .map(|k| k.generation)
        .filter(|g| *g > keys[0].generation);
    let published = keys
        .iter()
        .filter(|k| retire_below.is_none_or(|r| k.generation >= r))
        .filter(|k| k.published_at <= now || k.generation == signer)
        .map(|k| k.generation)
        .collect();
    Plan {
        create,
        signer: Some(signer),
        published,
        retire_below,
    }
}

struct LiveKey {
    row: SigningKeyRow,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl LiveKey {
    fn times(&self) -> KeyTimes {
        KeyTimes {
            generation: self.row.generation,
            published_at: self.row.published_at,
            signs_from: self.row.signs_from,
        }
    }
}

struct Loaded {
    at: Instant,
    keys: Vec<Arc<LiveKey>>,
}

/// The issuer of one `berth serve` process (every worker on a database has one, with the same
/// keys).
pub struct Issuer {
    config: IdentityConfig,
    store: Store,
    seal: Arc<SecretKey>,
    loaded: tokio::sync::Mutex<Option<Loaded>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Issuer({})", self.config.issuer)
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

fn seal_context(kid: &str) -> String {
    // Tenant documents are sealed under the tenant id, which has no `:`.
    format!("signing-key:{kid}")
}

fn random_hex(n: usize) -> String {
    let mut bits = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bits).expect("the system random generator failed");
    hex::encode(bits)
}

impl Issuer {
    /// The issuer, with a signing key created if the store has none yet.
    pub async fn open(
        config: IdentityConfig,
        store: Store,
        seal: Arc<SecretKey>,
    ) -> Result<Arc<Self>, IdentityError> {
        let issuer = Arc::new(Self {
            config,
            store,
            seal,
            loaded: tokio::sync::Mutex::new(None),
        });
        issuer.rotate().await?;
        Ok(issuer)
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Re-reads the keys, creates the next one when the schedule says so and deletes retired
    /// ones. Run every [`IdentityConfig::tick`] by every worker; they agree through the store.
    pub async fn rotate(&self) -> Result<(), IdentityError> {
        let keys = self.reload().await?;
        let now = now_ms();
        let times: Vec<KeyTimes> = keys.iter().map(|k| k.times()).collect();
        let p = plan(&times, now, &self.config);
        if let Some(t) = p.create {
            let row = self.generate(t)?;
            if self.store.insert_signing_key(&row).await? {
                tracing::info!(
                    kid = %row.kid,
                    generation = row.generation,
                    "OIDC signing key created; it signs from {} ms from now",
                    row.signs_from - now
                );
            }
            self.reload().await?;
        }
        if let Some(below) = p.retire_below {
            let gone = self.store.delete_signing_keys_before(below).await?;
            if gone > 0 {
                tracing::info!(
                    "{gone} retired OIDC signing key(s) deleted (their tokens have expired)"
                );
                self.reload().await?;
            }
        }
        Ok(())
    }

    fn generate(&self, t: KeyTimes) -> Result<SigningKeyRow, IdentityError> {
        let alg = self.config.algorithm;
        let bad = |why: String| IdentityError::Key {
            kid: format!("generation {}", t.generation),
            why,
        };
        let curve = match alg {
            SigningAlgorithm::ES256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
            SigningAlgorithm::ES384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
        };
        let pair = EcdsaKeyPair::generate(curve).map_err(|e| bad(e.to_string()))?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|e| bad(e.to_string()))?;
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk =
            Jwk::from_encoding_key(&encoding, alg.jws()).map_err(|e| bad(e.to_string()))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| bad(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(SigningKeyRow {
            generation: t.generation,
            sealed: self.seal.seal(&seal_context(&kid), pkcs8.as_ref()),
            public_jwk: serde_json::to_string(&jwk).map_err(|e| bad(e.to_string()))?,
            kid,
            algorithm: alg.name().into(),
            published_at: t.published_at,
            signs_from: t.signs_from,
        })
    }

    /// Reads every key from the store, opening only those not already open.
    async fn reload(&self) -> Result<Vec<Arc<LiveKey>>, IdentityError> {
        let rows = self.store.signing_keys().await?;
        let mut loaded = self.loaded.lock().await;
        let previous = loaded.take().map(|l| l.keys).unwrap_or_default();
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(k) = previous.iter().find(|k| k.row == row) {
                keys.push(k.clone());
                continue;
            }
            let alg =
                SigningAlgorithm::from_name(&row.algorithm).ok_or_else(|| IdentityError::Key {
                    kid: row.kid.clone(),
                    why: format!("unknown algorithm {}", row.algorithm),
                })?;
            let pkcs8 = self
                .seal
                .open(&seal_context(&row.kid), &row.sealed)
                .map_err(|_| IdentityError::Sealed(row.kid.clone()))?;
            let mut jwk: Jwk =
                serde_json::from_str(&row.public_jwk).map_err(|e| IdentityError::Key {
                    kid: row.kid.clone(),
                    why: e.to_string(),
                })?;
            jwk.common.key_algorithm = Some(alg.jws().into());
            keys.push(Arc::new(LiveKey {
                encoding: EncodingKey::from_ec_der(&pkcs8),
                jwk,
                row,
            }));
        }
        *loaded = Some(Loaded {
            at: Instant::now(),
            keys: keys.clone(),
        });
        Ok(keys)
    }

    /// The keys, re-read when older than a tick (a key another worker created is seen well
    /// before it signs).
    async fn keys(&self) -> Result<Vec<Arc<LiveKey>>, IdentityError> {
        {
            let loaded = self.loaded.lock().await;
            if let Some(l) = loaded.as_ref()
                && l.at.elapsed() < self.config.tick()
            {
                return Ok(l.keys.clone());
            }
        }
        self.reload().await
    }

    /// The JWKS as published now.
    pub async fn jwks(&self) -> Result<JwkSet, IdentityError> {
        let keys = self.keys().await?;
        let times: Vec<KeyTimes> = keys.iter().map(|k| k.times()).collect();
        let p = plan(&times, now_ms(), &self.config);
        Ok(JwkSet {
            keys: keys
                .iter()
                .filter(|k| p.published.contains(&k.row.generation))
                .map(|k| k.jwk.clone())
                .collect(),
        })
    }

    /// `/.well-known/openid-configuration`.
    pub fn discovery(&self) -> Value {
        let iss = &self.config.issuer;
        json!({
            "issuer": iss,
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.config.algorithm.name()],
            "claims_supported": ["aud", "exp", "iat", "iss", "jti", "nbf", "sub"],
        })
    }

    /// A token for `sub`, valid from now for `tokenSeconds`.
    pub async fn mint(&self, sub: &str) -> Result<String, IdentityError> {
        self.mint_at(sub, SystemTime::now()).await
    }

    /// A token for `sub` as if minted at `at`, with the key that signs at that instant (tests
    /// use it for expired tokens).
    pub async fn mint_at(&self, sub: &str, at: SystemTime) -> Result<String, IdentityError> {
        let now = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as i64;
        let keys = self.keys().await?;
        let times: Vec<KeyTimes> = keys.iter().map(|k| k.times()).collect();
        let signer = plan(&times, now, &self.config)
            .signer
            .and_then(|g| keys.iter().find(|k| k.row.generation == g))
            .ok_or(IdentityError::NoKey)?;
        let mut header = Header::new(self.config.algorithm.jws());
        header.kid = Some(signer.row.kid.clone());
        header.typ = Some("JWT".into());
        let secs = now / 1000;
        let claims = Claims {
            iss: &self.config.issuer,
            sub,
            aud: AUDIENCE,
            iat: secs,
            nbf: secs,
            exp: secs + self.config.token_seconds as i64,
            jti: random_hex(16),
        };
        jsonwebtoken::encode(&header, &claims, &signer.encoding).map_err(|e| IdentityError::Key {
            kid: signer.row.kid.clone(),
            why: e.to_string(),
        })
    }

    /// What the AWS side calls for a fresh token of `sub` (at the start of a sync and before
    /// its credentials expire).
    pub fn minter(self: &Arc<Self>, sub: String) -> TokenMint {
        let issuer = self.clone();
        TokenMint::new(move || {
            let issuer = issuer.clone();
            let sub = sub.clone();
            Box::pin(async move { issuer.mint(&sub).await.map_err(|e| e.to_string()) })
        })
    }

    /// Runs [`Issuer::rotate`] every tick until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.config.tick());
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(e) = self.rotate().await {
                        tracing::warn!("OIDC signing keys: {e}");
                    }
                }
                _ = stop.changed() => return,
            }
        }
    }
}

fn now_ms() -> i64 {
    crate::store::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rotation: u64, lead: u64, token: u64) -> IdentityConfig {
        IdentityConfig {
            issuer: "https://berth.example.com".into(),
            algorithm: SigningAlgorithm::ES256,
            rotation_seconds: rotation,
            publish_lead_seconds: lead,
            token_seconds: token,
            templates_url: None,
            console_region: "us-east-1".into(),
        }
    }

    /// Applies the schedule every `step` ms over `span` ms and checks, at every instant, the
    /// promises a relying party depends on.
    fn simulate(c: &IdentityConfig, step: i64, span: i64) -> Vec<KeyTimes> {
        let mut keys: Vec<KeyTimes> = Vec::new();
        // When each generation was first signed with, and last.
        let mut signed: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
        let mut t = 1_000_000;
        while t < 1_000_000 + span {
            let p = plan(&keys, t, c);
            if let Some(k) = p.create {
                keys.push(k);
            }
            if let Some(r) = p.retire_below {
                keys.retain(|k| k.generation >= r);
            }
            let p = plan(&keys, t, c);
            let signer = p.signer.expect("a key signs");
            let s = keys.iter().find(|k| k.generation == signer).unwrap();
            // Published for at least the lead before signing (except the very first key).
            if s.generation > 1 {
                assert!(
                    t - s.published_at >= c.lead_ms(),
                    "key {} signs at {t}, published at {}",
                    s.generation,
                    s.published_at
                );
            }
            assert!(p.published.contains(&signer));
            signed
                .entry(signer)
                .and_modify(|e| e.1 = t)
                .or_insert((t, t));
            // Every key that signed a token still valid is published.
            for (g, (_, last)) in &signed {
                if t < last + c.token_ms() {
                    assert!(p.published.contains(g), "key {g} dropped at {t}");
                }
            }
            t += step;
        }
        keys
    }

    #[test]
    fn rotation_publishes_ahead_and_retires_after_tokens_expire() {
        let c = config(100, 20, 60);
        simulate(&c, 1_000, 1_000_000);
        // Keys replaced faster than tokens expire stay published side by side.
        simulate(&config(20, 6, 60), 500, 300_000);
        // Coarse ticks (later than the rotation point) keep the promises too.
        simulate(&c, 7_000, 1_000_000);
        let c = config(7 * 24 * 3600, 3600, 900);
        let left = simulate(&c, 30_000, 40 * 24 * 3600 * 1000);
        // Old keys go: at most the signer, its predecessor and the published next key remain.
        assert!(left.len() <= 3, "{left:?}");
        assert!(left.last().unwrap().generation >= 5);
    }

    #[test]
    fn config_checks_name_the_key() {
        let mut c = config(100, 20, 60);
        c.issuer = "http://berth.example.com".into();
        assert!(c.check().unwrap_err().contains("identity.issuer"));
        c.issuer = "http://127.0.0.1:8080/".into();
        c.check().unwrap();
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.host_path(), "127.0.0.1:8080");
        let mut c = config(30, 20, 60);
        assert!(c.check().unwrap_err().contains("identity.rotationSeconds"));
        let mut c = config(100, 20, 30);
        assert!(c.check().unwrap_err().contains("identity.tokenSeconds"));
        let mut c = config(1000, 20, 60);
        c.templates_url = Some("https://b.s3.amazonaws.com/berth".into());
        c.check().unwrap();
        assert_eq!(
            c.templates_url.as_deref(),
            Some("https://b.s3.amazonaws.com/berth/")
        );
        assert_eq!(subject("acme", "ab12"), "tenant:acme:ab12");
    }

    async fn issuer(dir: &std::path::Path, seal: u8) -> Arc<Issuer> {
        let url = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        let key = Arc::new(SecretKey::from_bytes(&[seal; 32]).unwrap());
        Issuer::open(config(100, 20, 60), store, key).await.unwrap()
    }

    #[tokio::test]
    async fn tokens_verify_against_the_published_jwks_and_workers_agree() {
        use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
        let dir = tempfile::tempdir().unwrap();
        let a = issuer(dir.path(), 7).await;
        // A second worker on the same database publishes the same keys and signs with them.
        let b = issuer(dir.path(), 7).await;
        let set = a.jwks().await.unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            serde_json::to_string(&b.jwks().await.unwrap()).unwrap()
        );
        let text = serde_json::to_string(&set).unwrap();
        assert!(!text.contains("\"d\""), "no private part: {text}");
        let token = b.mint("tenant:acme:1").await.unwrap();
        let header = decode_header(&token).unwrap();
        let jwk = set.find(header.kid.as_deref().unwrap()).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[AUDIENCE]);
        v.set_issuer(&["https://berth.example.com"]);
        let claims = decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "tenant:acme:1");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            60
        );
        assert_ne!(b.mint("x").await.unwrap(), b.mint("x").await.unwrap());
        // The private key is sealed at rest, and another secret key cannot open it.
        let rows = a.store.signing_keys().await.unwrap();
        assert!(rows[0].sealed.starts_with("berth-aes256gcm-v1:"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        let wrong = Arc::new(SecretKey::from_bytes(&[8; 32]).unwrap());
        let e = Issuer::open(config(100, 20, 60), store, wrong)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("secretKeyEnv"), "{e}");
    }
}
