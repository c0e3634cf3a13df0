//! The host side of the plugins' `cloud` import: read-only Cloud Control
//! get/list, answered in the account and region of the batch being mapped.
//!
//! Owns the [`CloudLookup`] trait that discovery backends implement (the AWS
//! one performs real, rate-limited, cached Cloud Control reads) and two
//! offline implementations: [`Offline`]
//! (refuses every read, with a message saying how to provide data) and
//! [`Fixture`] (answers from a JSON-lines file, for `berth map --lookups`,
//! `berth plugin test` and tests). Must not know about plugins' grants: the
//! plugin host checks those before calling in.

pub mod aws;

use std::collections::HashMap;
use std::path::Path;

use futures::future::BoxFuture;
use serde::Deserialize;

pub use aws::AwsLookup;

use crate::discovery::CloudResource;
use crate::scope::Place;

/// Why a lookup failed; mirrors the WIT `lookup-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("not permitted: {0}")]
    NotPermitted(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("failed: {0}")]
    Failed(String),
}

/// Read-only Cloud Control access for plugins, each call in its own [`Place`].
pub trait CloudLookup: Send + Sync {
    fn get<'a>(
        &'a self,
        place: &'a Place,
        type_name: &'a str,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<CloudResource>, LookupError>>;

    fn list<'a>(
        &'a self,
        place: &'a Place,
        type_name: &'a str,
        resource_model: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<CloudResource>, LookupError>>;
}

/// No cloud access: every read fails and says how to give the plugin data.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offline;

const OFFLINE: &str =
    "no cloud access here (offline); pass --lookups FILE with the resources to serve";

impl CloudLookup for Offline {
    fn get<'a>(
        &'a self,
        _: &'a Place,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<CloudResource>, LookupError>> {
        Box::pin(async { Err(LookupError::Failed(OFFLINE.into())) })
    }

    fn list<'a>(
        &'a self,
        _: &'a Place,
        _: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<CloudResource>, LookupError>> {
        Box::pin(async { Err(LookupError::Failed(OFFLINE.into())) })
    }
}

/// One line of a lookups fixture file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureLine {
    #[serde(rename = "TypeName")]
    type_name: String,
    #[serde(rename = "Identifier")]
    identifier: String,
    #[serde(rename = "AccountId")]
    account_id: String,
    #[serde(rename = "Region")]
    region: String,
    #[serde(rename = "Properties")]
    properties: serde_json::Value,
}

type FixtureKey = (String, String, String);

/// Lookups answered from a file of JSON lines
/// `{"TypeName","Identifier","AccountId","Region","Properties"}`.
#[derive(Debug, Default)]
pub struct Fixture {
    by_type: HashMap<FixtureKey, Vec<CloudResource>>,
}

impl Fixture {
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read lookups file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut f = Self::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let l: FixtureLine =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            f.by_type
                .entry((l.account_id, l.region, l.type_name))
                .or_default()
                .push(CloudResource {
                    identifier: l.identifier,
                    properties: l.properties.to_string(),
                });
        }
        Ok(f)
    }

    fn of(&self, place: &Place, type_name: &str) -> &[CloudResource] {
        self.by_type
            .get(&(
                place.account_id.clone(),
                place.region.clone(),
                type_name.to_string(),
            ))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

impl CloudLookup for Fixture {
    fn get<'a>(
        &'a self,
        place: &'a Place,
        type_name: &'a str,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<CloudResource>, LookupError>> {
        let found = self
            .of(place, type_name)
            .iter()
            .find(|r| r.identifier == identifier)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn list<'a>(
        &'a self,
        place: &'a Place,
        type_name: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<CloudResource>, LookupError>> {
        let all = self.of(place, type_name).to_vec();
        Box::pin(async move { Ok(all) })
    }
}
