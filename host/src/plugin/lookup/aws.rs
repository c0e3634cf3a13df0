//! [`AwsLookup`]: the plugins' Cloud Control lookups answered from AWS, in
//! the item's own account and region, through the tenant's rate limiter and
//! retries, and cached for the sync (a value read once is not read again by
//! another item, kind or plugin).
//!
//! Owns the mapping of AWS failures to [`LookupError`]. Must not check
//! plugins' grants (the plugin host does, before calling in).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::discovery::CloudResource;
use crate::discovery::call::{CallCounts, CallError, CallStats, ErrorClass};
use crate::discovery::session::AwsSync;
use crate::plugin::lookup::{CloudLookup, LookupError};
use crate::scope::Place;

/// Lookups for one sync.
#[derive(Debug, Clone)]
pub struct AwsLookup {
    sync: Arc<AwsSync>,
    /// Calls per API and type (`GetResource AWS::EC2::Subnet`), for the sync's figures: under
    /// a rate limit every lookup is wall time, so an operator must see what they cost.
    stats: Arc<Mutex<BTreeMap<String, Arc<CallStats>>>>,
}

impl AwsLookup {
    pub fn new(sync: Arc<AwsSync>) -> Self {
        Self {
            sync,
            stats: Arc::default(),
        }
    }

    fn stats(&self, api: &str, type_name: &str) -> Arc<CallStats> {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(format!("{api} {type_name}"))
            .or_insert_with(|| Arc::new(CallStats::for_lookups()))
            .clone()
    }

    /// AWS calls the plugins' lookups made, per API and type (cache hits cost none).
    pub fn calls(&self) -> BTreeMap<String, CallCounts> {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.counts()))
            .filter(|(_, c)| c.calls > 0)
            .collect()
    }
}

fn to_lookup_error(e: CallError) -> LookupError {
    let m = e.to_string();
    match e.class {
        ErrorClass::Throttled => LookupError::Throttled(m),
        ErrorClass::Denied => LookupError::AccessDenied(m),
        ErrorClass::Fatal
            if matches!(
                e.code.as_str(),
                "InvalidRequestException"
                    | "ValidationException"
                    | "TypeNotFoundException"
                    | "UnsupportedActionException"
            ) =>
        {
            LookupError::InvalidRequest(m)
        }
        _ => LookupError::Failed(m),
    }
}

impl AwsLookup {
    async fn account(
        &self,
        place: &Place,
    ) -> Result<Arc<crate::discovery::session::AccountCtx>, LookupError> {
        let acct = self.sync.account(&place.account_id).await.ok_or_else(|| {
            LookupError::NotPermitted(format!(
                "account {} is not part of this sync",
                place.account_id
            ))
        })?;
        if let Some(e) = &acct.error {
            return Err(LookupError::AccessDenied(format!(
                "account {}: {e}",
                place.account_id
            )));
        }
        Ok(acct)
    }
}

impl CloudLookup for AwsLookup {
    fn get<'a>(
        &'a self,
        place: &'a Place,
        type_name: &'a str,
        identifier: &'a str,
    ) -> BoxFuture<'a, Result<Option<CloudResource>, LookupError>> {
        Box::pin(async move {
            let acct = self.account(place).await?;
            let stats = self.stats("GetResource", type_name);
            self.sync
                .get_cached(&acct, &place.region, type_name, identifier, &stats)
                .await
                .map_err(to_lookup_error)
        })
    }

    fn list<'a>(
        &'a self,
        place: &'a Place,
        type_name: &'a str,
        resource_model: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<CloudResource>, LookupError>> {
        Box::pin(async move {
            let acct = self.account(place).await?;
            let stats = self.stats("ListResources", type_name);
            let all = self
                .sync
                .list_all_cached(&acct, &place.region, type_name, resource_model, &stats)
                .await
                .map_err(to_lookup_error)?;
            Ok(all.as_ref().clone())
        })
    }
}
