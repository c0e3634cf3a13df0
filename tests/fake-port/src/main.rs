//! `fake-port`: runs a fake Port on 127.0.0.1 until Ctrl-C (or SIGTERM), then saves the state
//! file if one was given.
//!
//! Owns: command-line flags and the process lifecycle. Must not touch: server behaviour; it
//! only builds a `Config` for `berth_fake_port::spawn`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth_fake_port::{Config, Credential, ExpiresInOnReuse, Faults, RateLimit, ResetStyle, spawn};
use clap::Parser;

/// A local fake of Port's REST API (getport.io) for Berth's tests, demo and users.
#[derive(Parser, Debug)]
#[command(name = "fake-port", version)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 5555)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Load state from this JSON file at start (if it exists) and save it there on shutdown.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Also save the state file every N seconds while it changes.
    #[arg(long, default_value_t = 5)]
    save_every_secs: u64,
    /// Accepted clientId (with --client-secret).
    #[arg(long, env = "FAKE_PORT_CLIENT_ID", default_value = "fake-client-id")]
    client_id: String,
    /// Accepted clientSecret.
    #[arg(
        long,
        env = "FAKE_PORT_CLIENT_SECRET",
        default_value = "fake-client-secret"
    )]
    client_secret: String,
    /// Token lifetime in seconds (Port: 10800).
    #[arg(long, default_value_t = 10800)]
    token_ttl_secs: u64,
    /// When a token is handed out again, report the full lifetime instead of what is left.
    #[arg(long)]
    expires_in_full: bool,
    /// Request body cap in bytes (Port: 1 MiB).
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// Let GET routes answer without a token (for a browser).
    #[arg(long)]
    public_reads: bool,
    /// Do not check requests against the OpenAPI spec.
    #[arg(long)]
    no_validation: bool,
    /// Faults from a JSON file (same shape as PUT /_fake/faults); the flags below override it.
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Random seed of the fault fractions.
    #[arg(long)]
    seed: Option<u64>,
    /// Added latency per request, in milliseconds.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Real rate limit: requests per second (token bucket).
    #[arg(long)]
    rate_limit: Option<f64>,
    /// Bucket size of the rate limit (default: one second's worth).
    #[arg(long, requires = "rate_limit")]
    rate_limit_burst: Option<u32>,
    /// Fraction of requests answered 429.
    #[arg(long)]
    rate_429: Option<f64>,
    /// Fraction of requests answered 5xx.
    #[arg(long)]
    rate_5xx: Option<f64>,
    /// Answer 413 to bodies larger than this many bytes.
    #[arg(long)]
    force_413_over: Option<usize>,
    /// Answer 401 to the next N authenticated requests.
    #[arg(long)]
    early_401: Option<u32>,
    /// Write x-ratelimit-reset as an epoch second instead of seconds-until-reset.
    #[arg(long)]
    reset_epoch: bool,
}

fn faults(args: &Args) -> Result<Faults, String> {
    let mut f = match &args.faults {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Faults::default(),
    };
    if let Some(v) = args.seed {
        f.seed = v;
    }
    if let Some(v) = args.latency_ms {
        f.latency_ms = v;
    }
    if let Some(v) = args.rate_limit {
        f.rate_limit = Some(RateLimit {
            per_second: v,
            burst: args.rate_limit_burst,
        });
    }
    if let Some(v) = args.rate_429 {
        f.rate_429 = v;
    }
    if let Some(v) = args.rate_5xx {
        f.rate_5xx = v;
    }
    if let Some(v) = args.force_413_over {
        f.force_413_over_bytes = Some(v);
    }
    if let Some(v) = args.early_401 {
        f.early_401 = v;
    }
    if args.reset_epoch {
        f.reset_style = ResetStyle::Epoch;
    }
    f.check()?;
    Ok(f)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let faults = match faults(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-port: {e}");
            return ExitCode::from(2);
        }
    };
    let config = Config {
        host: args.host,
        port: args.port,
        credentials: vec![Credential::new(&args.client_id, &args.client_secret)],
        token_ttl: Duration::from_secs(args.token_ttl_secs),
        expires_in_on_reuse: if args.expires_in_full {
            ExpiresInOnReuse::Full
        } else {
            ExpiresInOnReuse::Remaining
        },
        max_body_bytes: args.max_body_bytes,
        validate_requests: !args.no_validation,
        public_reads: args.public_reads,
        faults,
        save_interval: args
            .state
            .as_ref()
            .filter(|_| args.save_every_secs > 0)
            .map(|_| Duration::from_secs(args.save_every_secs)),
        state_file: args.state.clone(),
        ..Config::default()
    };
    let (_, handle) = match spawn(config).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("fake-port: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", handle.base_url());
    eprintln!(
        "fake-port: Port API at {0}/v1 (credentials {1} / {2}); state {3}; admin at {0}/_fake/{{faults,requests,state,reset}}",
        handle.base_url(),
        args.client_id,
        args.client_secret,
        args.state
            .as_ref()
            .map_or("in memory".to_string(), |p| format!("in {}", p.display())),
    );
    wait_for_signal().await;
    eprintln!("fake-port: shutting down");
    match handle.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-port: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
