//! Commands that talk to a running server over HTTP: `gantry maintenance`
//! and `gantry release`. The server is `--server` (or `GANTRY_SERVER_URL`,
//! default `http://127.0.0.1:4242`); the token is `--token` (or
//! `GANTRY_TOKEN`, then `GANTRY_ADMIN_TOKEN`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use gantry_api_types::{ApiErrorBody, Maintenance, MaintenanceResponse, RecordRelease};

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Server base URL (default: GANTRY_SERVER_URL, else http://127.0.0.1:4242).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// API token (default: GANTRY_TOKEN, else GANTRY_ADMIN_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// `gantry maintenance ...` (admin token).
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Switch maintenance mode on (the allowlist is replaced when given).
    On {
        /// Environment.
        #[arg(long)]
        environment: String,
        /// Message shown to users.
        #[arg(long)]
        message: Option<String>,
        /// A user id that keeps full service (repeatable).
        #[arg(long = "allow-user", value_name = "USER_ID")]
        allow_users: Vec<String>,
        /// A segment id whose members keep full service (repeatable).
        #[arg(long = "allow-segment", value_name = "SEGMENT_ID")]
        allow_segments: Vec<u32>,
        /// When maintenance ends by itself (RFC 3339).
        #[arg(long, value_name = "TIME")]
        ends_at: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Switch maintenance mode off (settings are kept for next time).
    Off {
        /// Environment.
        #[arg(long)]
        environment: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the maintenance settings of an environment as JSON.
    Status {
        /// Environment.
        #[arg(long)]
        environment: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `gantry release ...`.
#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Record a deployed version (admin token, or a server token of the environment).
    Record {
        /// Application name.
        #[arg(long)]
        app: String,
        /// Version (semantic versions are ordered as such).
        #[arg(long)]
        version: String,
        /// Environment it was deployed to.
        #[arg(long = "env", alias = "environment")]
        env: String,
        /// Commit SHA.
        #[arg(long)]
        commit: Option<String>,
        /// Release notes.
        #[arg(long)]
        notes: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(remote: &Remote, env: &BTreeMap<String, String>) -> anyhow::Result<Client> {
        let base = remote
            .server
            .clone()
            .or_else(|| env.get("GANTRY_SERVER_URL").cloned())
            .unwrap_or_else(|| "http://127.0.0.1:4242".into())
            .trim_end_matches('/')
            .to_owned();
        let token = remote
            .token
            .clone()
            .or_else(|| env.get("GANTRY_TOKEN").cloned())
            .or_else(|| env.get("GANTRY_ADMIN_TOKEN").cloned())
            .context("no API token: pass --token or set GANTRY_TOKEN")?;
        Ok(Client { http: reqwest::Client::new(), base, token })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(reqwest::StatusCode, Option<String>, String)> {
        let res = req.bearer_auth(&self.token).send().await.with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = res.status();
        let etag = res.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = res.text().await.context("reading the response")?;
        if !status.is_success() {
            let why = serde_json::from_str::<ApiErrorBody>(&text).map(|e| format!("{} ({})", e.message, e.code)).unwrap_or(text);
            anyhow::bail!("server answered {status}: {why}");
        }
        Ok((status, etag, text))
    }

    async fn get_maintenance(&self, env: &str) -> anyhow::Result<(MaintenanceResponse, String)> {
        let (_, etag, text) = self.send(self.http.get(format!("{}/api/v1/environments/{env}/maintenance", self.base))).await?;
        let m: MaintenanceResponse = serde_json::from_str(&text).context("unexpected maintenance document")?;
        Ok((m, etag.unwrap_or_else(|| "\"0\"".into())))
    }

    async fn put_maintenance(&self, env: &str, etag: &str, m: &Maintenance) -> anyhow::Result<String> {
        let req = self.http.put(format!("{}/api/v1/environments/{env}/maintenance", self.base)).header("if-match", etag).json(m);
        Ok(self.send(req).await?.2)
    }
}

/// Runs a maintenance command: read, change, write with `If-Match`.
#[allow(clippy::print_stdout)]
pub async fn maintenance(cmd: MaintenanceCommand, env: &BTreeMap<String, String>) -> anyhow::Result<ExitCode> {
    match cmd {
        MaintenanceCommand::On { environment, message, allow_users, allow_segments, ends_at, remote } => {
            let c = Client::new(&remote, env)?;
            let (current, etag) = c.get_maintenance(&environment).await?;
            let mut m = current.maintenance;
            m.enabled = true;
            if message.is_some() {
                m.message = message;
            }
            if !allow_users.is_empty() {
                m.allow_users = allow_users;
            }
            if !allow_segments.is_empty() {
                m.allow_segments = allow_segments;
            }
            m.ends_at = ends_at;
            println!("{}", c.put_maintenance(&environment, &etag, &m).await?);
        }
        MaintenanceCommand::Off { environment, remote } => {
            let c = Client::new(&remote, env)?;
            let (current, etag) = c.get_maintenance(&environment).await?;
            let mut m = current.maintenance;
            m.enabled = false;
            println!("{}", c.put_maintenance(&environment, &etag, &m).await?);
        }
        MaintenanceCommand::Status { environment, remote } => {
            let c = Client::new(&remote, env)?;
            let (current, _) = c.get_maintenance(&environment).await?;
            println!("{}", serde_json::to_string_pretty(&current)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a release command.
#[allow(clippy::print_stdout)]
pub async fn release(cmd: ReleaseCommand, env: &BTreeMap<String, String>) -> anyhow::Result<ExitCode> {
    match cmd {
        ReleaseCommand::Record { app, version, env: environment, commit, notes, remote } => {
            let c = Client::new(&remote, env)?;
            let body = RecordRelease { version, environment: Some(environment), commit, notes };
            let (_, _, text) = c.send(c.http.post(format!("{}/api/v1/apps/{app}/releases", c.base)).json(&body)).await?;
            println!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
