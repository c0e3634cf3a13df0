//! `berth serve`: the hosted, multi-tenant runtime. One process serves many tenants safely
//! (each in its own sandbox limits, rate budgets, caches and state), and several processes
//! share the work through one Postgres database.
//!
//! - [`config`]: the serve config file and every worker limit.
//! - [`secrets`]: sealing tenant documents at rest.
//! - [`tenants`]: a tenant's document, the checks that make it safe to run, redaction.
//! - [`worker`]: due tenants → leases → syncs, heartbeats, fair share of work slots.
//! - [`api`]: the authenticated, rate-limited admin API, its listener and its OpenAPI document.
//! - [`identity`]: Berth as its tenants' OIDC provider (signing keys, JWKS, tokens).
//! - [`aws_setup`]: the CloudFormation templates and a tenant's parameters for them.
//!
//! Owns: wiring those together with the shared plugin registry (hot-reloaded for all
//! tenants) and the graceful stop. Must not touch: what a sync does (`crate::pipeline::resync`).

pub mod api;
pub mod aws_setup;
pub mod config;
pub mod identity;
pub mod secrets;
pub mod tenants;
pub mod worker;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::store::Store;

/// Runs `berth serve` until SIGTERM/SIGINT.
pub async fn serve(config_path: &Path, default_plugins: &Path) -> anyhow::Result<()> {
    let config = config::ServeConfig::from_path(config_path)?;
    let key = Arc::new(secrets::SecretKey::from_env(&config.secret_key_env)?);
    let tokens = config.admin_tokens()?;
    if tokens.is_empty() {
        tracing::warn!("no admin tokens configured: the admin API refuses every call");
    }
    let store = Store::open(&config.state_url())
        .await
        .context("opening the state store")?;
    let registry = open_plugins(&config, default_plugins).await?;
    // New or changed `.wasm` files are picked up for every tenant without a restart.
    let _watch = registry
        .watch()
        .with_context(|| format!("watching {}", registry.dir().display()))?;
    let issuer = match config.identity.clone() {
        Some(c) => Some(
            identity::Issuer::open(c, store.clone(), key.clone())
                .await
                .context("starting the OIDC issuer")?,
        ),
        None => None,
    };
    let worker = worker::Worker::new(
        &config,
        store.clone(),
        key.clone(),
        registry,
        issuer.clone(),
    );
    let state = Arc::new(api::ApiState {
        store,
        key,
        policy: config.tenant_policy.clone(),
        limits: api::RateLimits::new(&config.listener, tokens.len()),
        body_timeout: config.listener.body_timeout(),
        max_body_bytes: config.listener.max_body_bytes,
        tokens,
        worker: worker.clone(),
        issuer: issuer.clone(),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        worker = %worker.id,
        "admin API on http://{}/ (OpenAPI at /openapi.json)",
        listener.local_addr()?
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let forget = {
        let (state, sweep) = (state.clone(), config.listener.address_sweep());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(sweep);
            loop {
                every.tick().await;
                state.limits.forget_idle();
            }
        })
    };
    let server = {
        let (app, limits, stop) = (api::router(state), config.listener.clone(), stop_rx.clone());
        tokio::spawn(async move { api::serve_http(listener, app, &limits, stop).await })
    };
    let rotation = issuer.map(|i| tokio::spawn(i.run(stop_rx.clone())));
    let work = tokio::spawn(worker.clone().run(stop_rx));
    crate::pipeline::runner::wait_for_signal().await;
    tracing::warn!("stop requested: abandoning running syncs before reconciliation");
    let _ = stop_tx.send(true);
    let _ = work.await;
    let _ = server.await;
    if let Some(r) = rotation {
        let _ = r.await;
    }
    forget.abort();
    Ok(())
}

/// The plugin registry every tenant shares: the config's `plugins:` directory (else
/// `default_plugins`), its engine built with the config's `engine:`.
async fn open_plugins(
    config: &config::ServeConfig,
    default_plugins: &Path,
) -> anyhow::Result<Arc<crate::plugin::Registry>> {
    let dir = config
        .plugins
        .as_ref()
        .map(|p| config.base_dir.join(p))
        .unwrap_or_else(|| default_plugins.to_path_buf());
    crate::pipeline::runner::open_registry(&dir, config.engine.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serve config's `engine:` is the engine the shared registry is built with.
    #[tokio::test]
    async fn the_registry_runs_on_the_configured_engine() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        let path = dir.path().join("serve.yaml");
        std::fs::write(
            &path,
            "plugins: plugins\nengine: {pooledInstances: 3, maxMemoryMb: 512, epochTickMs: 5}\n\
             tenantPolicy: {limits: {plugin: {memoryMb: 512}}}\n",
        )
        .unwrap();
        let config = config::ServeConfig::from_path(&path).unwrap();
        let nowhere = dir.path().join("not-there");
        let registry = open_plugins(&config, &nowhere).await.unwrap();
        assert_eq!(registry.dir(), dir.path().join("plugins"));
        let engine = &registry.engine().limits;
        assert_eq!(engine.pooled_instances, 3);
        assert_eq!(engine.max_memory_bytes, 512 << 20);
        assert_eq!(engine.epoch_tick, std::time::Duration::from_millis(5));
        assert_eq!(**engine, config.engine);
    }
}
