//! Drives the local AWS emulator (`tests/aws-emulator`: moto + the Cloud
//! Control shim) for the integration tests and `bench-discover`:
//! start it on a free loopback port and read its ready line, call its admin
//! API (faults, config, regions, stats, reset), run its seed command, and
//! stop it when dropped.
//!
//! Owns nothing of the emulator itself (that is Python, in the test tree).
//! Must not be used against anything but the emulator.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The emulator could not be started or did not answer as expected.
#[derive(Debug, thiserror::Error)]
#[error("aws emulator: {0}")]
pub struct EmulatorError(pub String);

/// A running emulator (stopped on drop when this process started it).
#[derive(Debug)]
pub struct Emulator {
    pub endpoint: String,
    /// The server's process id, from its ready line (for benchmarks that sample its CPU).
    pub pid: Option<u32>,
    dir: PathBuf,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Emulator {
    /// `tests/aws-emulator`, found from the current directory upwards, else
    /// in this repository.
    pub fn default_dir() -> PathBuf {
        if let Ok(mut d) = std::env::current_dir() {
            loop {
                let c = d.join("tests/aws-emulator");
                if c.join("run").is_file() {
                    return c;
                }
                if !d.pop() {
                    break;
                }
            }
        }
        crate::repo_root().join("tests/aws-emulator")
    }

    /// Start `DIR/run --port 0` (which sets its venv up first) and wait for
    /// its `{"event": "ready", "endpoint": ...}` line.
    pub async fn start(dir: &Path) -> Result<Self, EmulatorError> {
        let run = dir.join("run");
        let mut child = Command::new(&run)
            .args(["--port", "0", "--host", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| EmulatorError(format!("cannot start {}: {e}", run.display())))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = tokio::sync::oneshot::channel::<Value>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = tx.take() {
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v) if v["event"] == "ready" => {
                            let _ = t.send(v);
                        }
                        _ => tx = Some(t),
                    }
                }
            }
        });
        // The first run creates the venv (pip install), hence the long wait.
        let ready = match tokio::time::timeout(Duration::from_secs(300), rx).await {
            Ok(Ok(v)) if v["endpoint"].as_str().is_some_and(|e| !e.is_empty()) => v,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(EmulatorError(format!(
                    "{} did not print its ready line",
                    run.display()
                )));
            }
        };
        Ok(Self {
            endpoint: ready["endpoint"].as_str().unwrap_or_default().to_string(),
            pid: ready["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
            dir: dir.to_path_buf(),
            child: Some(child),
            http: reqwest::Client::new(),
        })
    }

    /// An emulator someone else runs.
    pub async fn connect(endpoint: &str, dir: &Path) -> Result<Self, EmulatorError> {
        let e = Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            pid: None,
            dir: dir.to_path_buf(),
            child: None,
            http: reqwest::Client::new(),
        };
        e.get("/_berth/health").await?;
        Ok(e)
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, EmulatorError> {
        let resp = req
            .send()
            .await
            .map_err(|e| EmulatorError(format!("{what}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| EmulatorError(format!("{what}: {e}")))?;
        if !status.is_success() {
            return Err(EmulatorError(format!("{what}: HTTP {status}: {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> Result<Value, EmulatorError> {
        self.send(self.http.get(format!("{}{path}", self.endpoint)), path)
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, EmulatorError> {
        self.send(
            self.http
                .post(format!("{}{path}", self.endpoint))
                .json(body),
            path,
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, EmulatorError> {
        self.send(self.http.delete(format!("{}{path}", self.endpoint)), path)
            .await
    }

    /// Replace the fault rules (resets counters and buckets).
    pub async fn faults(&self, rules: &Value) -> Result<Value, EmulatorError> {
        self.post("/_berth/faults", rules).await
    }

    pub async fn config(&self, cfg: &Value) -> Result<Value, EmulatorError> {
        self.post("/_berth/config", cfg).await
    }

    pub async fn regions(&self, regions: &Value) -> Result<Value, EmulatorError> {
        self.post("/_berth/regions", regions).await
    }

    pub async fn stats(&self) -> Result<Value, EmulatorError> {
        self.get("/_berth/stats").await
    }

    pub async fn reset_stats(&self) -> Result<Value, EmulatorError> {
        self.delete("/_berth/stats").await
    }

    /// Run the seed command (`berth_aws_emulator.seed --endpoint E ARGS`)
    /// and return its JSON summary.
    pub async fn seed(&self, args: &[&str]) -> Result<Value, EmulatorError> {
        self.module("seed", args).await
    }

    /// Deploy a CloudFormation template in an account through the emulator's CloudFormation
    /// API (`berth_aws_emulator.deploy`: `--account`, `--template`, `--member-template`,
    /// `--stack-name`, `--param K=V`); returns its summary (`outputs`, `stack_sets`, ...).
    pub async fn deploy(&self, args: &[&str]) -> Result<Value, EmulatorError> {
        self.module("deploy", args).await
    }

    /// Delete resources as their owner would (`berth_aws_emulator.remove`).
    pub async fn remove(
        &self,
        account: &str,
        region: &str,
        kind: &str,
        ids: &[&str],
    ) -> Result<Value, EmulatorError> {
        let mut args = vec!["--account", account, "--region", region, "--kind", kind];
        for id in ids {
            args.extend(["--id", id]);
        }
        self.module("remove", &args).await
    }

    /// Runs `berth_aws_emulator.MODULE --endpoint E ARGS` in the emulator's venv and reads the
    /// JSON it prints.
    async fn module(&self, module: &str, args: &[&str]) -> Result<Value, EmulatorError> {
        let python = self.dir.join(".venv/bin/python");
        let mut cmd = Command::new(&python);
        cmd.args([
            "-m",
            &format!("berth_aws_emulator.{module}"),
            "--endpoint",
            &self.endpoint,
        ])
        .args(args)
        .env("PYTHONPATH", &self.dir)
        .stdin(Stdio::null());
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .map_err(|e| EmulatorError(format!("{module}: {e}")))?
            .map_err(|e| EmulatorError(format!("cannot run {}: {e}", python.display())))?;
        if !out.status.success() {
            return Err(EmulatorError(format!(
                "{module} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| EmulatorError(format!("{module} printed no JSON: {e}")))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
