//! The `aws:` section of Berth's configuration, and what the mapping file
//! contributes to discovery (kinds, `useGetResourceAPI`, `regionPolicy`).
//!
//! Owns: the serde types (camelCase YAML keys as Ocean names them, unknown
//! keys refused), checks with errors that name the key, region names checked
//! against their partition's pattern (a region ends up in hostnames and
//! URLs), reading the static keys' references ([`AwsConfig::resolve_keys`]),
//! the [`RegionPolicy`] with Ocean's exact precedence, and [`KindPlan`]s read
//! from a [`MappingFile`]. Must not call AWS or turn keys into credentials
//! (that is `credentials`), so the lead can embed [`AwsConfig`] in the sync
//! config.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::arn::{Arn, Partition, parse_role_arn};
use crate::config::{SecretValues, ValueRef};
use crate::mapping::MappingFile;

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AwsConfigError(pub String);

/// An AWS key: where it comes from and, once read, its value. Never printed,
/// not even by `{:?}` (which shows the reference, or `***`).
///
/// A config file names keys as `{env: VAR}` or `{file: PATH}`, a `berth
/// serve` tenant as `{secret: NAME}`: an inline key would sit in backups,
/// logs, version control and API responses. Inline values exist only for
/// configs built in code ([`Secret::new`]: tests, the emulator bench); the
/// loaders refuse them in YAML and JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    source: ValueRef,
    value: Option<String>,
}

impl Secret {
    /// An inline value (configs built in code).
    pub fn new(s: impl Into<String>) -> Self {
        let s = s.into();
        Self {
            source: ValueRef::Inline(s.clone()),
            value: Some(s),
        }
    }

    /// The value; empty until read ([`AwsConfig::resolve_keys`]), which
    /// [`AwsConfig::check`] refuses.
    pub fn expose(&self) -> &str {
        self.value.as_deref().unwrap_or_default()
    }

    /// Where the value comes from.
    pub fn source(&self) -> &ValueRef {
        &self.source
    }

    fn is_resolved(&self) -> bool {
        self.value.is_some()
    }

    fn resolve(&mut self, key: &str, base: &Path, secrets: &SecretValues) -> Result<(), String> {
        if self.value.is_none() {
            self.value = Some(self.source.resolve(key, base, secrets)?);
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = ValueRef::deserialize(d)?;
        // Kept so that the loaders can name the key when they refuse it.
        let value = match &source {
            ValueRef::Inline(v) => Some(v.clone()),
            _ => None,
        };
        Ok(Self { source, value })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            ValueRef::Inline(_) => f.write_str("Secret(***)"),
            r => write!(f, "Secret({r:?})"),
        }
    }
}

/// An access key id: a [`Secret`] whose value may be shown by its first four
/// characters ([`redact_key`]).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct AccessKeyId(Secret);

impl AccessKeyId {
    pub fn source(&self) -> &ValueRef {
        self.0.source()
    }
}

impl std::ops::Deref for AccessKeyId {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.expose()
    }
}

impl From<&str> for AccessKeyId {
    fn from(s: &str) -> Self {
        Self(Secret::new(s))
    }
}

impl fmt::Debug for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.source, &self.0.value) {
            (ValueRef::Inline(_), _) | (_, Some(_)) => {
                write!(f, "AccessKeyId({})", redact_key(self.0.expose()))
            }
            (r, None) => write!(f, "AccessKeyId({r:?})"),
        }
    }
}

/// How Berth gets its first credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthMethod {
    /// The SDK's default chain (environment, profile, web identity from
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`, container, instance metadata).
    #[default]
    Default,
    /// Access keys given here.
    Static,
    /// OIDC: a token file exchanged with `AssumeRoleWithWebIdentity`, read
    /// again at every refresh.
    WebIdentity,
    /// OIDC with `berth serve` as the identity provider: the worker mints the
    /// tenant's token and exchanges it for `roleArn` (the customer's
    /// integration role, created by `deploy/aws/`). Only under `berth serve`.
    BerthIdentity,
}

/// The member role name the `deploy/aws/` templates create by default.
pub const DEFAULT_MEMBER_ROLE: &str = "BerthRead";

/// `aws.auth`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    #[serde(default)]
    pub method: AuthMethod,
    /// `static`: the access key id (`{env}`/`{file}`, or `{secret}` in a tenant).
    pub access_key_id: Option<AccessKeyId>,
    /// `static`: the secret access key (`{env}`/`{file}`, or `{secret}` in a tenant).
    pub secret_access_key: Option<Secret>,
    /// `static`: an optional session token (`{env}`/`{file}`, or `{secret}` in a tenant).
    pub session_token: Option<Secret>,
    /// `webIdentity`: the role to assume (default: `$AWS_ROLE_ARN`);
    /// `berthIdentity`: the customer's integration role (required).
    pub role_arn: Option<String>,
    /// `webIdentity`: the OIDC token file (default: `$AWS_WEB_IDENTITY_TOKEN_FILE`).
    pub token_file: Option<PathBuf>,
    /// `webIdentity`: session name (default: the top-level `sessionName`).
    pub session_name: Option<String>,
    /// `berthIdentity`: the tenant's token minter, set by the `berth serve`
    /// worker (never read from a document).
    #[serde(skip)]
    pub tokens: Option<super::credentials::TokenMint>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("method", &self.method)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("role_arn", &self.role_arn)
            .field("token_file", &self.token_file)
            .field("session_name", &self.session_name)
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// Access key ids are not secret on their own, but only the prefix is
/// needed to tell keys apart in logs.
pub fn redact_key(k: &str) -> String {
    let head: String = k.chars().take(4).collect();
    format!("{head}***")
}

impl AuthConfig {
    /// The static keys that are set, by their YAML key.
    pub fn key_sources(&self) -> Vec<(&'static str, &ValueRef)> {
        let mut keys = Vec::new();
        if let Some(k) = &self.access_key_id {
            keys.push(("accessKeyId", k.source()));
        }
        if let Some(k) = &self.secret_access_key {
            keys.push(("secretAccessKey", k.source()));
        }
        if let Some(k) = &self.session_token {
            keys.push(("sessionToken", k.source()));
        }
        keys
    }

    fn keys_mut(&mut self) -> Vec<(&'static str, &mut Secret)> {
        let mut keys = Vec::new();
        if let Some(k) = &mut self.access_key_id {
            keys.push(("accessKeyId", &mut k.0));
        }
        if let Some(k) = &mut self.secret_access_key {
            keys.push(("secretAccessKey", k));
        }
        if let Some(k) = &mut self.session_token {
            keys.push(("sessionToken", k));
        }
        keys
    }
}

/// `regionPolicy`: which regions are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionPolicy {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

impl RegionPolicy {
    /// Every region named, with its key under `at`.
    fn named<'a>(&'a self, at: &'a str) -> impl Iterator<Item = (String, &'a String)> + 'a {
        let list = |name: &'a str, l: &'a [String]| {
            l.iter()
                .enumerate()
                .map(move |(i, r)| (format!("{at}.{name}[{i}]"), r))
        };
        list("allow", &self.allow).chain(list("deny", &self.deny))
    }

    /// Ocean's `is_region_allowed`, in its exact order: both lists empty →
    /// allowed; in `deny` → denied; in `allow` → allowed; only `deny` set →
    /// the rest allowed; only `allow` set → the rest denied; otherwise denied.
    pub fn allows(&self, region: &str) -> bool {
        if self.allow.is_empty() && self.deny.is_empty() {
            return true;
        }
        if self.deny.iter().any(|r| r == region) {
            return false;
        }
        if self.allow.iter().any(|r| r == region) {
            return true;
        }
        !self.deny.is_empty() && self.allow.is_empty()
    }
}

/// The region names of `partition`: the SDK's partition data
/// (`regionRegex` in its `partitions.json`, which the SDK keeps private),
/// with `\w+` narrowed to lowercase letters and digits. A region becomes
/// part of hostnames, URLs and signatures, so anything else is refused.
fn region_prefixes(partition: Partition) -> &'static [&'static str] {
    match partition {
        // ^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$
        Partition::Aws => &["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"],
        // ^us\-gov\-\w+\-\d+$
        Partition::AwsUsGov => &["us-gov"],
        // ^cn\-\w+\-\d+$
        Partition::AwsCn => &["cn"],
        // ^eusc\-(de)\-\w+\-\d+$
        Partition::AwsEusc => &["eusc-de"],
    }
}

/// Whether `region` is a region name of `partition` (e.g. `eu-central-2`
/// in `aws`, `us-gov-west-1` in `aws-us-gov`).
pub fn is_region_of(partition: Partition, region: &str) -> bool {
    region_prefixes(partition).iter().any(|p| {
        let Some(rest) = region.strip_prefix(p).and_then(|r| r.strip_prefix('-')) else {
            return false;
        };
        let Some((word, number)) = rest.split_once('-') else {
            return false;
        };
        !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
    })
}

/// One error naming `key` when `region` is no region of `partitions`.
fn check_region(key: &str, region: &str, partitions: &[Partition]) -> Result<(), AwsConfigError> {
    if partitions.iter().any(|p| is_region_of(*p, region)) {
        return Ok(());
    }
    let of = match partitions {
        [p] => format!(
            "a region of the {p} partition (like {})",
            p.default_region()
        ),
        _ => "an AWS region name (like us-east-1)".into(),
    };
    Err(AwsConfigError(format!("{key}: {region:?} is not {of}")))
}

/// The `aws:` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsConfig {
    #[serde(default)]
    pub auth: AuthConfig,
    /// Role in the management account used to list the organization's
    /// accounts; member roles are derived from its partition, path and name.
    pub org_role_arn: Option<String>,
    /// Name of the role assumed in each member (default: the org role's name).
    pub account_role_name: Option<String>,
    /// Path of the member role (default: the org role's path).
    pub member_role_path: Option<String>,
    /// Only accounts under these OUs (recursively).
    #[serde(default)]
    pub organizational_unit_ids: Vec<String>,
    /// An explicit list of roles to read through, one per account.
    #[serde(default)]
    pub account_role_arns: Vec<String>,
    /// Sent with every `AssumeRole` (the org role and the member roles).
    pub external_id: Option<String>,
    /// `RoleSessionName` of every assumed role.
    #[serde(default = "default_session_name")]
    pub session_name: String,
    /// Default: the org role's partition, else `aws`.
    pub partition: Option<Partition>,
    /// Read only these regions instead of each account's enabled ones.
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub region_policy: RegionPolicy,
    /// Send every AWS call here (the local emulator).
    pub endpoint_url: Option<String>,
}

fn default_session_name() -> String {
    "berth".into()
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            auth: AuthConfig::default(),
            org_role_arn: None,
            account_role_name: None,
            member_role_path: None,
            organizational_unit_ids: Vec::new(),
            account_role_arns: Vec::new(),
            external_id: None,
            session_name: default_session_name(),
            partition: None,
            regions: Vec::new(),
            region_policy: RegionPolicy::default(),
            endpoint_url: None,
        }
    }
}

/// What the checked configuration means for account discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSource {
    /// The account of the base credentials.
    Single,
    /// Organizations `ListAccounts` (or OU recursion) through the org role.
    Organization {
        org_role: Arn,
        member_path: String,
        member_name: String,
        ou_ids: Vec<String>,
        /// The org role is the base identity's own role (`berthIdentity`):
        /// listed with the base credentials, not assumed again.
        through_base: bool,
    },
    /// These roles, each assumed from the base credentials.
    Roles(Vec<Arn>),
}

impl AwsConfig {
    /// Parse a YAML document with an `aws:` key (other top-level keys belong
    /// to other parts of Berth and are left alone); key files are read
    /// relative to the working directory.
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Self, AwsConfigError> {
        Self::from_yaml_in(text, source_name, Path::new(""))
    }

    fn from_yaml_in(text: &str, source_name: &str, base: &Path) -> Result<Self, AwsConfigError> {
        #[derive(Deserialize)]
        struct Doc {
            aws: Option<AwsConfig>,
        }
        let in_source = |e: AwsConfigError| AwsConfigError(format!("{source_name}: {e}"));
        let doc: Doc = serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            AwsConfigError(format!("{source_name}: {at}{e}"))
        })?;
        let mut cfg = doc
            .aws
            .ok_or_else(|| AwsConfigError(format!("{source_name}: no `aws:` section")))?;
        cfg.check_settings().map_err(in_source)?;
        cfg.resolve_file_keys(base).map_err(in_source)?;
        Ok(cfg)
    }

    pub fn from_path(path: &Path) -> Result<Self, AwsConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AwsConfigError(format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new(""));
        Self::from_yaml_in(&text, &path.display().to_string(), base)
    }

    /// Reads the static keys of a config file: `{env: VAR}` or `{file: PATH}`
    /// (relative to `base`, the file's directory); an inline key or a
    /// `{secret}` (a `berth serve` tenant's) is refused with its key named.
    pub fn resolve_file_keys(&mut self, base: &Path) -> Result<(), AwsConfigError> {
        for (key, source) in self.auth.key_sources() {
            if matches!(source, ValueRef::Inline(_) | ValueRef::Secret { .. }) {
                return Err(AwsConfigError(format!(
                    "aws.auth.{key}: write it as {{env: VARIABLE}} or {{file: PATH}}; an inline \
                     key ends up in backups, logs and version control"
                )));
            }
        }
        self.resolve_keys(base, &SecretValues::default())
    }

    /// Reads the static keys' references (`{file}` relative to `base`,
    /// `{secret}` from `secrets`); which kinds of reference are acceptable is
    /// the loader's decision. Errors name the key, never a value.
    pub fn resolve_keys(
        &mut self,
        base: &Path,
        secrets: &SecretValues,
    ) -> Result<(), AwsConfigError> {
        for (key, k) in self.auth.keys_mut() {
            k.resolve(&format!("aws.auth.{key}"), base, secrets)
                .map_err(AwsConfigError)?;
        }
        Ok(())
    }

    /// Everything that can be checked without calling AWS, including that
    /// the static keys have been read.
    pub fn check(&self) -> Result<(), AwsConfigError> {
        self.check_settings()?;
        let a = &self.auth;
        let keys = [
            ("accessKeyId", a.access_key_id.as_ref().map(|k| &k.0)),
            ("secretAccessKey", a.secret_access_key.as_ref()),
            ("sessionToken", a.session_token.as_ref()),
        ];
        for (key, k) in keys {
            if let Some(k) = k
                && !k.is_resolved()
            {
                return Err(AwsConfigError(format!(
                    "aws.auth.{key}: {:?} was not read (load the config through Config or \
                     AwsConfig::from_path)",
                    k.source
                )));
            }
        }
        if a.method == AuthMethod::Static
            && (a.access_key_id.as_deref().is_none_or(str::is_empty)
                || a.secret_access_key
                    .as_ref()
                    .is_none_or(|s| s.expose().is_empty()))
        {
            return Err(AwsConfigError(
                "aws.auth: `method: static` needs accessKeyId and secretAccessKey".into(),
            ));
        }
        Ok(())
    }

    /// [`AwsConfig::check`] before the static keys are read (a config just
    /// parsed): their references count as present.
    pub fn check_settings(&self) -> Result<(), AwsConfigError> {
        let e = |m: String| Err(AwsConfigError(m));
        let a = &self.auth;
        let keys_set =
            a.access_key_id.is_some() || a.secret_access_key.is_some() || a.session_token.is_some();
        match a.method {
            AuthMethod::Default | AuthMethod::WebIdentity | AuthMethod::BerthIdentity
                if keys_set =>
            {
                return e(
                    "aws.auth: accessKeyId/secretAccessKey/sessionToken are only used with \
                     `method: static`"
                        .into(),
                );
            }
            AuthMethod::Default => {}
            AuthMethod::Static => {
                let inline_empty = |s: &ValueRef| matches!(s, ValueRef::Inline(v) if v.is_empty());
                if a.access_key_id
                    .as_ref()
                    .is_none_or(|k| inline_empty(k.source()))
                    || a.secret_access_key
                        .as_ref()
                        .is_none_or(|k| inline_empty(k.source()))
                {
                    return e(
                        "aws.auth: `method: static` needs accessKeyId and secretAccessKey".into(),
                    );
                }
            }
            AuthMethod::WebIdentity => {
                if let Some(r) = &a.role_arn {
                    parse_role_arn(r)
                        .map_err(|x| AwsConfigError(format!("aws.auth.roleArn: {x}")))?;
                }
            }
            AuthMethod::BerthIdentity => {
                let Some(r) = &a.role_arn else {
                    return e("aws.auth: `method: berthIdentity` needs roleArn (the IntegrationRoleArn output of the setup stack)".into());
                };
                parse_role_arn(r).map_err(|x| AwsConfigError(format!("aws.auth.roleArn: {x}")))?;
                if a.token_file.is_some() {
                    return e("aws.auth.tokenFile: not used with `method: berthIdentity` (Berth mints the token)".into());
                }
            }
        }
        if !matches!(
            a.method,
            AuthMethod::WebIdentity | AuthMethod::BerthIdentity
        ) && (a.role_arn.is_some() || a.token_file.is_some())
        {
            return e("aws.auth: roleArn/tokenFile are only used with `method: webIdentity` or `berthIdentity` (use orgRoleArn or accountRoleArns to assume roles)".into());
        }
        if let Some(r) = &self.org_role_arn {
            parse_role_arn(r).map_err(|x| AwsConfigError(format!("aws.orgRoleArn: {x}")))?;
        }
        for (i, r) in self.account_role_arns.iter().enumerate() {
            parse_role_arn(r)
                .map_err(|x| AwsConfigError(format!("aws.accountRoleArns[{i}]: {x}")))?;
        }
        if !self.account_role_arns.is_empty() && self.org_role_arn.is_some() {
            return e("aws: give either orgRoleArn (accounts listed from the organization) or accountRoleArns (an explicit list), not both".into());
        }
        // Under `berthIdentity` the integration role lists the Organization itself.
        if self.org_role_arn.is_none() && !self.lists_org_through_base() {
            for (key, set) in [
                ("accountRoleName", self.account_role_name.is_some()),
                ("memberRolePath", self.member_role_path.is_some()),
                (
                    "organizationalUnitIds",
                    !self.organizational_unit_ids.is_empty(),
                ),
            ] {
                if set {
                    return e(format!(
                        "aws.{key} needs orgRoleArn (the organization role the member roles are derived from)"
                    ));
                }
            }
        }
        if let Some(n) = &self.account_role_name
            && (n.is_empty() || n.contains('/'))
        {
            return e(format!(
                "aws.accountRoleName: {n:?} is not a role name (no slashes; put the path in memberRolePath)"
            ));
        }
        for ou in &self.organizational_unit_ids {
            if !(ou.starts_with("ou-") || ou.starts_with("r-")) {
                return e(format!(
                    "aws.organizationalUnitIds: {ou:?} is not an OU id (ou-…) or root id (r-…)"
                ));
            }
        }
        if self.session_name.len() < 2 || self.session_name.len() > 64 {
            return e("aws.sessionName must be 2 to 64 characters".into());
        }
        if let Some(x) = &self.external_id
            && (x.len() < 2 || x.len() > 1224)
        {
            return e("aws.externalId must be 2 to 1224 characters".into());
        }
        if let Some(p) = self.partition {
            for arn in self.role_arns() {
                if arn.partition != p {
                    return e(format!(
                        "aws.partition is {p} but {arn} is in {}",
                        arn.partition
                    ));
                }
            }
        }
        if let Some(u) = &self.endpoint_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return e(format!(
                "aws.endpointUrl: {u:?} must start with http:// or https://"
            ));
        }
        let partition = self.partition();
        let named = self
            .regions
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("aws.regions[{i}]"), r));
        let policy = self.region_policy.named("aws.regionPolicy");
        for (key, region) in named.chain(policy) {
            check_region(&key, region, &[partition])?;
        }
        Ok(())
    }

    fn role_arns(&self) -> Vec<Arn> {
        self.org_role_arn
            .iter()
            .chain(&self.account_role_arns)
            .filter_map(|r| parse_role_arn(r).ok())
            .collect()
    }

    /// The partition: explicit, else the roles', else `aws`.
    pub fn partition(&self) -> Partition {
        self.partition
            .or_else(|| self.role_arns().first().map(|a| a.partition))
            .unwrap_or(Partition::Aws)
    }

    /// How accounts are found (call after [`AwsConfig::check`]).
    /// `berthIdentity` with neither `orgRoleArn` nor `accountRoleArns`: the
    /// integration role (in the management account) lists the Organization.
    fn lists_org_through_base(&self) -> bool {
        self.auth.method == AuthMethod::BerthIdentity
            && self.org_role_arn.is_none()
            && self.account_role_arns.is_empty()
    }

    pub fn account_source(&self) -> AccountSource {
        if let Some(org) = self
            .org_role_arn
            .as_deref()
            .and_then(|r| parse_role_arn(r).ok())
        {
            let (path, name) = org.role_path_and_name().unwrap_or_default();
            return AccountSource::Organization {
                member_path: self
                    .member_role_path
                    .as_deref()
                    .map(super::arn::normalise_path)
                    .unwrap_or(path),
                member_name: self.account_role_name.clone().unwrap_or(name),
                ou_ids: self.organizational_unit_ids.clone(),
                org_role: org,
                through_base: false,
            };
        }
        if self.lists_org_through_base()
            && let Some(base) = self
                .auth
                .role_arn
                .as_deref()
                .and_then(|r| parse_role_arn(r).ok())
        {
            return AccountSource::Organization {
                member_path: self
                    .member_role_path
                    .as_deref()
                    .map(super::arn::normalise_path)
                    .unwrap_or_else(|| "/".into()),
                member_name: self
                    .account_role_name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_MEMBER_ROLE.into()),
                ou_ids: self.organizational_unit_ids.clone(),
                org_role: base,
                through_base: true,
            };
        }
        if !self.account_role_arns.is_empty() {
            return AccountSource::Roles(self.role_arns());
        }
        AccountSource::Single
    }
}

/// What discovery reads for one kind, merged over the mapping's entries of
/// that kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPlan {
    pub kind: String,
    /// Some entry has `selector.useGetResourceAPI`.
    pub use_get_resource_api: bool,
    /// The entries' `selector.regionPolicy`s; a region is read when any of
    /// them allows it (an entry without one allows every region).
    pub region_policies: Vec<RegionPolicy>,
}

impl KindPlan {
    pub fn allows(&self, region: &str) -> bool {
        self.region_policies.is_empty() || self.region_policies.iter().any(|p| p.allows(region))
    }
}

/// The kinds a mapping asks for, in first-appearance order.
pub fn kinds_from_mapping(mapping: &MappingFile) -> Result<Vec<KindPlan>, AwsConfigError> {
    let mut order: Vec<String> = Vec::new();
    let mut plans: BTreeMap<String, KindPlan> = BTreeMap::new();
    let mut unrestricted: BTreeMap<String, bool> = BTreeMap::new();
    for r in &mapping.resources {
        if r.kind.is_empty() {
            continue;
        }
        let entry: serde_json::Value = serde_json::from_str(&r.json)
            .map_err(|e| AwsConfigError(format!("resources[{}]: {e}", r.index)))?;
        let policy = match entry.pointer("/selector/regionPolicy") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => {
                let at = format!("resources[{}].selector.regionPolicy", r.index);
                let pol = RegionPolicy::deserialize(v)
                    .map_err(|e| AwsConfigError(format!("{at}: {e}")))?;
                // A mapping may serve tenants of any partition.
                for (key, region) in pol.named(&at) {
                    check_region(&key, region, &Partition::ALL)?;
                }
                Some(pol)
            }
        };
        let p = plans.entry(r.kind.clone()).or_insert_with(|| {
            order.push(r.kind.clone());
            KindPlan {
                kind: r.kind.clone(),
                use_get_resource_api: false,
                region_policies: Vec::new(),
            }
        });
        p.use_get_resource_api |= r.use_get_resource_api;
        match policy {
            Some(pol) => p.region_policies.push(pol),
            None => {
                unrestricted.insert(r.kind.clone(), true);
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|k| {
            let mut p = plans.remove(&k)?;
            if unrestricted.contains_key(&k) {
                p.region_policies.clear();
            }
            Some(p)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(allow: &[&str], deny: &[&str]) -> RegionPolicy {
        RegionPolicy {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn region_policy_has_oceans_precedence() {
        assert!(pol(&[], &[]).allows("eu-west-1"));
        assert!(
            !pol(&["eu-west-1"], &["eu-west-1"]).allows("eu-west-1"),
            "deny wins"
        );
        assert!(pol(&["eu-west-1"], &["us-east-1"]).allows("eu-west-1"));
        assert!(
            !pol(&["eu-west-1"], &["us-east-1"]).allows("ap-south-1"),
            "both set: the rest denied"
        );
        assert!(
            pol(&[], &["us-east-1"]).allows("ap-south-1"),
            "only deny: the rest allowed"
        );
        assert!(
            !pol(&["us-east-1"], &[]).allows("ap-south-1"),
            "only allow: the rest denied"
        );
    }

    #[test]
    fn full_config_parses() {
        let c = AwsConfig::from_yaml(
            r#"
port: {clientId: x}
aws:
  auth: {method: webIdentity, roleArn: "arn:aws:iam::123456789012:role/Hosted", tokenFile: /var/run/token}
  orgRoleArn: arn:aws:iam::123456789012:role/ops/BerthOrgReader
  accountRoleName: BerthReadOnly
  organizationalUnitIds: [ou-ab12-34cd5678]
  externalId: berth-test-external-id
  regions: [us-east-1, eu-west-1]
  regionPolicy: {deny: [eu-west-1]}
  endpointUrl: http://127.0.0.1:5000
"#,
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.auth.method, AuthMethod::WebIdentity);
        assert_eq!(c.partition(), Partition::Aws);
        match c.account_source() {
            AccountSource::Organization {
                member_path,
                member_name,
                ou_ids,
                ..
            } => {
                assert_eq!(member_path, "/ops/");
                assert_eq!(member_name, "BerthReadOnly");
                assert_eq!(ou_ids, vec!["ou-ab12-34cd5678".to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        for (yaml, want) in [
            ("aws: {orgRoleArn: nope}", "aws.orgRoleArn"),
            ("aws: {regionPolicy: {alow: [x]}}", "unknown field `alow`"),
            (
                "aws: {auth: {method: static, accessKeyId: A}}",
                "needs accessKeyId and secretAccessKey",
            ),
            (
                "aws: {auth: {method: password}}",
                "unknown variant `password`",
            ),
            ("aws: {accountRoleName: R}", "needs orgRoleArn"),
            (
                "aws: {partition: aws-cn, accountRoleArns: ['arn:aws:iam::123456789012:role/R']}",
                "aws.partition is aws-cn",
            ),
            ("aws: {regoins: [x]}", "unknown field `regoins`"),
            ("other: 1", "no `aws:` section"),
        ] {
            let e = AwsConfig::from_yaml(yaml, "c.yaml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{yaml}: {e}");
            assert!(e.starts_with("c.yaml: "), "{e}");
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let dir = tempfile::tempdir().unwrap();
        for (f, v) in [
            ("id", "AKIAEXAMPLEKEY"),
            ("secret", "s3cr3t-value"),
            ("token", "tok-value"),
        ] {
            std::fs::write(dir.path().join(f), format!("{v}\n")).unwrap();
        }
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "aws: {auth: {method: static, accessKeyId: {file: id}, secretAccessKey: {file: secret}, \
             sessionToken: {file: token}}}",
        )
        .unwrap();
        let c = AwsConfig::from_path(&path).unwrap();
        c.check().unwrap();
        assert_eq!(
            c.auth.secret_access_key.as_ref().unwrap().expose(),
            "s3cr3t-value"
        );
        assert_eq!(c.auth.access_key_id.as_deref(), Some("AKIAEXAMPLEKEY"));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cr3t-value") && !dbg.contains("tok-value"),
            "{dbg}"
        );
        assert!(
            !dbg.contains("AKIAEXAMPLEKEY") && dbg.contains("AKIA***"),
            "{dbg}"
        );
        let inline = AuthConfig {
            method: AuthMethod::Static,
            access_key_id: Some("AKIAEXAMPLEKEY".into()),
            secret_access_key: Some(Secret::new("s3cr3t-value")),
            session_token: Some(Secret::new("tok-value")),
            ..AuthConfig::default()
        };
        let dbg = format!("{inline:?}");
        assert!(
            !dbg.contains("s3cr3t-value") && !dbg.contains("tok-value") && !dbg.contains("EXAMPLE"),
            "{dbg}"
        );
    }

    #[test]
    fn static_keys_come_only_by_reference() {
        for (auth, key) in [
            (
                "{method: static, accessKeyId: AKIAX, secretAccessKey: {env: S}}",
                "aws.auth.accessKeyId",
            ),
            (
                "{method: static, accessKeyId: {env: A}, secretAccessKey: hunter2}",
                "aws.auth.secretAccessKey",
            ),
            (
                "{method: static, accessKeyId: {env: A}, secretAccessKey: {env: S}, sessionToken: t0k}",
                "aws.auth.sessionToken",
            ),
            (
                "{method: static, accessKeyId: {env: A}, secretAccessKey: {secret: aws}}",
                "aws.auth.secretAccessKey",
            ),
        ] {
            let e = AwsConfig::from_yaml(&format!("aws:\n  auth: {auth}\n"), "c.yaml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("{env: VARIABLE}"), "{e}");
            assert!(
                !e.contains("hunter2") && !e.contains("t0k") && !e.contains('\n'),
                "{e}"
            );
        }
        let e = AwsConfig::from_yaml(
            "aws: {auth: {method: static, accessKeyId: {env: BERTH_TEST_UNSET_A}, \
             secretAccessKey: {env: BERTH_TEST_UNSET_S}}}",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("aws.auth.accessKeyId") && e.contains("BERTH_TEST_UNSET_A"),
            "{e}"
        );
        // A reference nobody read is not silently an empty key.
        let parsed: AwsConfig = serde_norway::from_str(
            "auth: {method: static, accessKeyId: {env: A}, secretAccessKey: {env: S}}",
        )
        .unwrap();
        parsed.check_settings().unwrap();
        let e = parsed.check().unwrap_err().to_string();
        assert!(e.contains("aws.auth.accessKeyId"), "{e}");
    }

    #[test]
    fn regions_must_be_region_names_of_the_partition() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-7",
            "il-central-1",
            "mx-central-1",
        ] {
            assert!(is_region_of(Partition::Aws, ok), "{ok}");
        }
        assert!(is_region_of(Partition::AwsUsGov, "us-gov-west-1"));
        assert!(is_region_of(Partition::AwsCn, "cn-north-1"));
        assert!(is_region_of(Partition::AwsEusc, "eusc-de-east-1"));
        for bad in [
            "x@127.0.0.1:9/",
            "us-east-1.evil.com",
            "us-east-1/",
            "us-east-1@h",
            "us-gov-west-1",
            "cn-north-1",
            "US-EAST-1",
            "us-east-",
            "us--1",
            "us-east-1a",
            "",
        ] {
            assert!(!is_region_of(Partition::Aws, bad), "{bad}");
        }
        assert!(!is_region_of(Partition::AwsUsGov, "us-east-1"));
        for (yaml, key) in [
            (
                "aws: {regions: [us-east-1, 'x@127.0.0.1:9/']}",
                "aws.regions[1]",
            ),
            (
                "aws: {regionPolicy: {allow: [eu-west-1], deny: ['h:1/']}}",
                "aws.regionPolicy.deny[0]",
            ),
            (
                "aws: {regionPolicy: {allow: ['eu-west-1.x.io']}}",
                "aws.regionPolicy.allow[0]",
            ),
            (
                "aws: {partition: aws-cn, regions: [us-east-1]}",
                "aws.regions[0]: \"us-east-1\" is not a region of the aws-cn partition",
            ),
        ] {
            let e = AwsConfig::from_yaml(yaml, "c.yaml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{yaml}: {e}");
        }
        let m = MappingFile::parse(
            r#"
resources:
- kind: AWS::S3::Bucket
  selector: {query: 'true', regionPolicy: {allow: [cn-north-1, 'x@127.0.0.1:9/']}}
  port: {entity: {mappings: {identifier: .Identifier, blueprint: '"b"'}}}
"#,
            "m.yaml",
        )
        .unwrap();
        let e = kinds_from_mapping(&m).unwrap_err().to_string();
        assert!(
            e.contains("resources[0].selector.regionPolicy.allow[1]"),
            "{e}"
        );
    }

    #[test]
    fn kinds_come_from_the_mapping() {
        let m = MappingFile::parse(
            r#"
resources:
- kind: AWS::S3::Bucket
  selector: {query: 'true', regionPolicy: {allow: [eu-west-1]}}
  port: {entity: {mappings: {identifier: .Identifier, blueprint: '"b"'}}}
- kind: AWS::S3::Bucket
  selector: {query: 'true', useGetResourceAPI: 'true', regionPolicy: {allow: [us-east-1]}}
  port: {entity: {mappings: {identifier: .Identifier, blueprint: '"b"'}}}
- kind: AWS::Lambda::Function
  selector: {query: 'true'}
  port: {entity: {mappings: {identifier: .Identifier, blueprint: '"b"'}}}
"#,
            "m.yaml",
        )
        .unwrap();
        let k = kinds_from_mapping(&m).unwrap();
        assert_eq!(k.len(), 2);
        assert!(k[0].use_get_resource_api);
        assert!(k[0].allows("us-east-1") && k[0].allows("eu-west-1") && !k[0].allows("ap-south-1"));
        assert!(!k[1].use_get_resource_api && k[1].allows("ap-south-1"));
    }
}
