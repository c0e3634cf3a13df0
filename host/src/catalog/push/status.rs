//! What Port hears about the sync, and the sync's record in the state store: the
//! integration's resync state at the start and the end, the per-kind and sync metrics, the
//! failed or aborted ending, and status reports Port refuses (noted, never stopping the sync).
//!
//! Owns [`Status`] (the metrics ingest address, whether a stop was requested). Reads the
//! tally's counters for the metrics and adds refused status reports to its errors; on a
//! failed ending it drops the upserts in flight and saves the states already written
//! (through `upserts.rs`). Must not touch buffers, owned lists or the reconciliation
//! decision, and decides nothing about what is written or deleted.

use serde_json::{Value, json};

use crate::catalog::port::PortError;
use crate::catalog::port::integration::{ResyncStatus, metrics_ingest_url};
use crate::store::now_ms;

use super::{Outcome, PushError, PushReport, Pusher};
use crate::catalog::metrics::{Reporter, kind_metrics_body};

/// The sync's status towards Port.
#[derive(Default)]
pub(super) struct Status {
    /// Where sync metrics go, from the integration Port returned at the start.
    ingest_url: Option<String>,
    /// Ended by a requested stop (Port hears `aborted`).
    aborted: bool,
    /// Why the sync was abandoned, kept in its own history record: one record that says
    /// why, where a reader could otherwise see it failed without a reason.
    reason: Option<String>,
}

impl Status {
    pub(super) fn set_aborted(&mut self, stopped: bool, why: Option<&str>) {
        self.aborted = stopped;
        self.reason = why.map(str::to_string);
    }
}

impl Pusher {
    /// Tells Port the resync is `running` (when reporting status) and records the sync in
    /// the store. Not called on a dry run.
    pub(super) async fn report_start(&mut self) -> Result<(), PushError> {
        if self.opts.report_status {
            match self.client.ensure_integration().await {
                Ok(i) => self.status.ingest_url = metrics_ingest_url(&i).map(str::to_string),
                Err(e @ PortError::Rejected { .. }) => self.note_status_error(&e),
                Err(e) => return Err(e.into()),
            }
            let start = self.started.to_string();
            let r = self
                .client
                .patch_resync_state(
                    ResyncStatus::Running,
                    Some(&start),
                    None,
                    None,
                    self.opts.interval_minutes,
                )
                .await;
            self.status_result(r)?;
        }
        if let Some(s) = &self.store {
            s.begin_sync(
                &self.opts.integration_key,
                &self.sync_id,
                self.started.as_millisecond(),
            )
            .await?;
        }
        Ok(())
    }

    /// A status report Port refused (e.g. no permission on the integration) does not stop the
    /// sync; being unable to reach Port does.
    fn status_result(&mut self, r: Result<(), PortError>) -> Result<(), PushError> {
        match r {
            Ok(()) => Ok(()),
            Err(e @ PortError::Rejected { .. }) => {
                self.note_status_error(&e);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn note_status_error(&mut self, e: &PortError) {
        tracing::warn!(error = %e, "sync status not reported to Port");
        self.tally.error(format!("sync status not reported: {e}"));
    }

    pub(super) async fn report_end(
        &mut self,
        state: ResyncStatus,
        report: &PushReport,
    ) -> Result<(), PushError> {
        let summary = json!({
            "outcome": format!("{:?}", report.outcome).to_lowercase(),
            "loaded": report.loaded, "loadFailed": report.load_failed,
            "deleted": report.deleted, "deleteFailed": report.delete_failed,
            "unchanged": report.plan.total().unchanged,
            "refused": report.refused,
        });
        if let Some(store) = &self.store {
            store
                .finish_sync(
                    &self.opts.integration_key,
                    &self.sync_id,
                    now_ms(),
                    match report.outcome {
                        Outcome::Completed => "completed",
                        Outcome::Partial => "partial",
                    },
                    &summary.to_string(),
                )
                .await?;
        }
        if !self.opts.report_status {
            return Ok(());
        }
        self.send_metrics(state.as_str()).await?;
        let end = jiff::Timestamp::now().to_string();
        let r = self
            .client
            .patch_resync_state(state, None, Some(&end), None, self.opts.interval_minutes)
            .await;
        self.status_result(r)
    }

    async fn send_metrics(&mut self, sync_state: &str) -> Result<(), PushError> {
        let Some(url) = self.status.ingest_url.clone() else {
            return Ok(());
        };
        let ua = self.client.user_agent();
        let who = Reporter {
            integration_type: ua.integration_type.clone(),
            integration_identifier: ua.integration_identifier.clone(),
            integration_version: ua.version.clone(),
        };
        let secs = self.clock.elapsed().as_secs_f64();
        let bodies: Vec<Value> = self
            .tally
            .counters
            .iter()
            .map(|k| kind_metrics_body(&who, &self.sync_id, sync_state, secs, k))
            .collect();
        for (k, body) in self.tally.counters.clone().iter().zip(&bodies) {
            let r = self
                .client
                .put_kind_metrics(&url, &self.sync_id, &k.identifier(), body)
                .await;
            self.status_result(r)?;
        }
        let r = self.client.post_sync_metrics(&url, &bodies).await;
        self.status_result(r)
    }

    /// [`Self::fail`] for `e`, which becomes the history record's reason unless an abort
    /// already gave one.
    pub(super) async fn fail_with(&mut self, e: &PushError) {
        if self.status.reason.is_none() {
            self.status.reason = Some(e.to_string());
        }
        self.fail().await;
    }

    /// Best effort after a stopping error: keep what landed, tell Port the resync failed.
    pub(super) async fn fail(&mut self) {
        self.upserts.abort_inflight();
        if let Err(e) = self.save_states().await {
            tracing::warn!(error = %e, "could not save entity states after a failed push");
        }
        if let Some(store) = &self.store {
            let _ = store
                .finish_sync(
                    &self.opts.integration_key,
                    &self.sync_id,
                    now_ms(),
                    if self.status.aborted {
                        "aborted"
                    } else {
                        "failed"
                    },
                    &match &self.status.reason {
                        Some(why) => json!({ "error": why }).to_string(),
                        None => "{}".to_string(),
                    },
                )
                .await;
        }
        if self.opts.report_status && !self.opts.dry_run {
            let end = jiff::Timestamp::now().to_string();
            let _ = self
                .client
                .patch_resync_state(
                    if self.status.aborted {
                        ResyncStatus::Aborted
                    } else {
                        ResyncStatus::Failed
                    },
                    None,
                    Some(&end),
                    None,
                    self.opts.interval_minutes,
                )
                .await;
        }
    }
}
