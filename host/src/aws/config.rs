//! The `aws:` section of Berth's configuration, and what the mapping file
//! contributes to discovery (kinds, `useGetResourceAPI`, `regionPolicy`).
//!
//! Owns: the serde types (camelCase YAML keys as Ocean names them, unknown
//! keys refused), checks with errors that name the key, the [`RegionPolicy`]
//! with Ocean's exact precedence, and [`KindPlan`]s read from a
//! [`MappingFile`]. Must not call AWS or resolve credentials (that is
//! `credentials`), so the lead can embed [`AwsConfig`] in the sync config.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::arn::{Arn, Partition, parse_role_arn};
use crate::mapping::MappingFile;

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AwsConfigError(pub String);

/// A secret string: never printed, not even by `{:?}`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
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
    /// again at every refresh (the hosted setup).
    WebIdentity,
}

/// `aws.auth`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    #[serde(default)]
    pub method: AuthMethod,
    /// `static`: the access key id.
    pub access_key_id: Option<String>,
    /// `static`: the secret access key.
    pub secret_access_key: Option<Secret>,
    /// `static`: an optional session token.
    pub session_token: Option<Secret>,
    /// `webIdentity`: the role to assume (default: `$AWS_ROLE_ARN`).
    pub role_arn: Option<String>,
    /// `webIdentity`: the OIDC token file (default: `$AWS_WEB_IDENTITY_TOKEN_FILE`).
    pub token_file: Option<PathBuf>,
    /// `webIdentity`: session name (default: the top-level `sessionName`).
    pub session_name: Option<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("method", &self.method)
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|k| redact_key(k)),
            )
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("role_arn", &self.role_arn)
            .field("token_file", &self.token_file)
            .field("session_name", &self.session_name)
            .finish()
    }
}

/// Access key ids are not secret on their own, but only the prefix is
/// needed to tell keys apart in logs.
pub fn redact_key(k: &str) -> String {
    let head: String = k.chars().take(4).collect();
    format!("{head}***")
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
    },
    /// These roles, each assumed from the base credentials.
    Roles(Vec<Arn>),
}

impl AwsConfig {
    /// Parse a YAML document with an `aws:` key (other top-level keys belong
    /// to other parts of Berth and are left alone).
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Self, AwsConfigError> {
        #[derive(Deserialize)]
        struct Doc {
            aws: Option<AwsConfig>,
        }
        let doc: Doc = serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            AwsConfigError(format!("{source_name}: {at}{e}"))
        })?;
        let cfg = doc
            .aws
            .ok_or_else(|| AwsConfigError(format!("{source_name}: no `aws:` section")))?;
        cfg.check()
            .map_err(|e| AwsConfigError(format!("{source_name}: {e}")))?;
        Ok(cfg)
    }

    pub fn from_path(path: &Path) -> Result<Self, AwsConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AwsConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Everything that can be checked without calling AWS.
    pub fn check(&self) -> Result<(), AwsConfigError> {
        let e = |m: String| Err(AwsConfigError(m));
        let a = &self.auth;
        match a.method {
            AuthMethod::Default => {
                if a.access_key_id.is_some() || a.secret_access_key.is_some() {
                    return e(
                        "aws.auth: accessKeyId/secretAccessKey are only used with `method: static`"
                            .into(),
                    );
                }
            }
            AuthMethod::Static => {
                if a.access_key_id.as_deref().is_none_or(str::is_empty)
                    || a.secret_access_key.as_ref().is_none_or(|s| s.0.is_empty())
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
                if a.access_key_id.is_some() || a.secret_access_key.is_some() {
                    return e(
                        "aws.auth: accessKeyId/secretAccessKey are only used with `method: static`"
                            .into(),
                    );
                }
            }
        }
        if !matches!(a.method, AuthMethod::WebIdentity)
            && (a.role_arn.is_some() || a.token_file.is_some())
        {
            return e("aws.auth: roleArn/tokenFile are only used with `method: webIdentity` (use orgRoleArn or accountRoleArns to assume roles)".into());
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
        if self.org_role_arn.is_none() {
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
            Some(v) => Some(RegionPolicy::deserialize(v).map_err(|e| {
                AwsConfigError(format!("resources[{}].selector.regionPolicy: {e}", r.index))
            })?),
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
        let c = AwsConfig::from_yaml(
            "aws: {auth: {method: static, accessKeyId: AKIAEXAMPLEKEY, secretAccessKey: s3cr3t-value, sessionToken: tok-value}}",
            "c.yaml",
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cr3t-value") && !dbg.contains("tok-value"),
            "{dbg}"
        );
        assert!(!dbg.contains("AKIAEXAMPLEKEY"), "{dbg}");
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
