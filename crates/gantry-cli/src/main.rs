//! The `gantry` binary: loads the layered configuration, sets up logging and
//! runs one subcommand (`serve` by default).
#![forbid(unsafe_code)]

mod config;
mod remote;
mod rollout;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use gantry_api_types::{CreateTokenRequest, TokenKind};
use gantry_core::{AuditDraft, Expect, Mutation, Store, SystemClock};
use gantry_server::state::Change;
use gantry_server::AppState;
use gantry_store_postgres::PgStore;
use gantry_store_sqlite::SqliteStore;

/// Gantry: feature flags, experiments and release automation in one binary.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, about)]
struct Cli {
    /// Config file (TOML). Default: ./gantry.toml when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory holding the SQLite database.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL database shared by several replicas (postgres://user@host/db)
    /// instead of SQLite in the data directory.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default command).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:4242.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Import configuration.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Maintenance mode of an environment, over HTTP (admin token).
    Maintenance {
        #[command(subcommand)]
        command: remote::MaintenanceCommand,
    },
    /// The release registry, over HTTP (admin token or a server token of the environment).
    Release {
        #[command(subcommand)]
        command: remote::ReleaseCommand,
    },
    /// Staged rollouts with guardrails, through a running server's API.
    Rollout {
        #[command(flatten)]
        remote: rollout::Remote,
        #[command(subcommand)]
        command: rollout::RolloutCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret (shown once).
    Create {
        /// Token kind.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Environment (server and client tokens).
        #[arg(long)]
        environment: Option<String>,
        /// A label.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Admin,
    Server,
    Client,
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import an Unleash client-features document into one environment.
    Unleash {
        /// The JSON file (`/api/client/features` shape, or delta events).
        file: PathBuf,
        /// Target environment.
        #[arg(long)]
        environment: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit hash chain; exit 1 if it is broken.
    Verify,
}

fn process_env() -> BTreeMap<String, String> {
    std::env::vars().filter(|(k, _)| k.starts_with("GANTRY_")).collect()
}

fn init_logging(cfg: &config::Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cfg.log_format {
        config::LogFormat::Json => builder.json().init(),
        config::LogFormat::Text => builder.init(),
    }
}

/// jemalloc instead of the system allocator: with its background purge thread
/// (options in `.cargo/config.toml`) memory freed after a burst goes back to the
/// OS, where glibc kept an import's transient heap resident indefinitely.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Some(Command::Serve { listen }) => listen.clone(),
        _ => None,
    };
    let overrides = config::Overrides {
        config: cli.config.clone(),
        listen,
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        log_format: cli.log_format.clone(),
    };
    let cfg = match config::load(&process_env(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gantry: invalid configuration: {e}");
            return ExitCode::from(64);
        }
    };
    init_logging(&cfg);
    for v in &cfg.unknown_env {
        tracing::warn!(variable = %v, "unknown GANTRY_ variable ignored");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gantry: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command.unwrap_or(Command::Serve { listen: None }), cfg)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gantry: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the commands need of a store beyond [`Store`].
trait CliStore: Store {
    /// Closes the connections (SQLite: checkpoints the WAL).
    async fn close(&self);
}

impl CliStore for SqliteStore {
    async fn close(&self) {
        SqliteStore::close(self).await;
    }
}

impl CliStore for PgStore {
    async fn close(&self) {
        PgStore::close(self).await;
    }
}

async fn open_state<S: CliStore>(cfg: &config::Config, store: S) -> anyhow::Result<AppState<S>> {
    AppState::load(store, Arc::new(SystemClock), cfg.server.clone()).await.context("loading the configuration from the database")
}

async fn run(cmd: Command, cfg: config::Config) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Maintenance { command } => remote::maintenance(command, &process_env()).await,
        Command::Release { command } => remote::release(command, &process_env()).await,
        Command::Rollout { remote, command } => rollout::run(&remote, command, &process_env()).await,
        // Every other command opens the store (and migrates it): PostgreSQL
        // when a database URL is configured, else SQLite in the data directory.
        cmd => {
            let started = std::time::Instant::now();
            match cfg.database_url.clone() {
                Some(url) => {
                    let store = PgStore::connect(&url)
                        .await
                        .with_context(|| format!("connecting to the PostgreSQL database {}", config::describe_store(&cfg)))?;
                    run_with(cmd, cfg, store, started).await
                }
                None => {
                    let store = SqliteStore::open_dir(&cfg.data_dir)
                        .await
                        .with_context(|| format!("opening the database in {}", cfg.data_dir.display()))?;
                    run_with(cmd, cfg, store, started).await
                }
            }
        }
    }
}

#[allow(clippy::print_stdout)]
async fn run_with<S: CliStore>(cmd: Command, cfg: config::Config, store: S, started: std::time::Instant) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Serve { .. } => serve(cfg, store, started).await,
        Command::Maintenance { .. } | Command::Release { .. } | Command::Rollout { .. } => {
            store.close().await;
            anyhow::bail!("this command talks to a running server, not to the database")
        }
        Command::Migrate => {
            store.close().await;
            println!("database in {} is up to date", config::describe_store(&cfg));
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command: TokenCommand::Create { kind, environment, name } } => {
            let state = open_state(&cfg, store).await?;
            let kind = match kind {
                KindArg::Admin => TokenKind::Admin,
                KindArg::Server => TokenKind::Server,
                KindArg::Client => TokenKind::Client,
            };
            let secret = create_token(&state, CreateTokenRequest { kind, environment, name, expires_at: None }, "cli").await?;
            state.store.close().await;
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { command: ImportCommand::Unleash { file, environment } } => {
            let state = open_state(&cfg, store).await?;
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let doc: gantry_engine::unleash::UnleashState =
                serde_json::from_str(&text).with_context(|| format!("{} is not an Unleash client-features document", file.display()))?;
            let doc = doc.into_full();
            let n = doc.features.len();
            let r = state
                .write(|v| {
                    if v.env(&environment).is_none() {
                        anyhow::bail!("environment `{environment}` not found");
                    }
                    let (flags, segments) = gantry_server::admin::merge_unleash(v, &doc, &environment);
                    let mut m = Vec::new();
                    let mut a = Vec::new();
                    for s in segments {
                        a.push(draft("segment.import", "segment", &s.id.to_string(), serde_json::to_value(&s).ok()));
                        m.push(Mutation::PutSegment { segment: s, expect: Expect::Any });
                    }
                    for f in flags {
                        gantry_core::validate::flag_key(&f.key).map_err(|e| anyhow::anyhow!("{}: {e}", f.key))?;
                        a.push(draft("flag.import_unleash", "flag", &f.key, serde_json::to_value(&f).ok()));
                        m.push(Mutation::PutFlag { flag: f, expect: Expect::Any });
                    }
                    Ok((m, a, vec![Change::Reset]))
                })
                .await?;
            r.context("writing the import")?;
            state.store.close().await;
            println!("imported {n} toggles into `{environment}`");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let all = store.audit_all().await?;
            store.close().await;
            match gantry_core::audit::verify(&all) {
                Ok(n) => {
                    println!("audit chain intact: {n} entries");
                    Ok(ExitCode::SUCCESS)
                }
                Err(seq) => {
                    println!("audit chain BROKEN at entry {seq}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

fn draft(action: &str, kind: &str, target: &str, after: Option<serde_json::Value>) -> AuditDraft {
    AuditDraft { actor: "cli".into(), action: action.into(), target_kind: kind.into(), target: target.into(), before: None, after }
}

async fn create_token<S: Store>(state: &AppState<S>, req: CreateTokenRequest, actor: &str) -> anyhow::Result<String> {
    let now = state.clock.now();
    let mut secret = None;
    let r = state
        .write(|v| {
            let envs: Vec<String> = v.environments.iter().map(|e| e.environment.name.clone()).collect();
            let (t, s) = gantry_server::admin::new_token(&req, &envs, now).map_err(|e| anyhow::anyhow!(e.message))?;
            secret = Some(s);
            let info = serde_json::json!({"id": t.id, "kind": t.kind.as_str(), "environment": t.environment});
            let a = AuditDraft {
                actor: actor.into(),
                action: "token.create".into(),
                target_kind: "token".into(),
                target: t.id.clone(),
                before: None,
                after: Some(info),
            };
            Ok::<_, anyhow::Error>((vec![Mutation::InsertToken(t)], vec![a], vec![]))
        })
        .await?;
    r.context("storing the token")?;
    secret.context("token not created")
}

#[allow(clippy::print_stdout)]
async fn serve<S: CliStore>(cfg: config::Config, store: S, started: std::time::Instant) -> anyhow::Result<ExitCode> {
    let state = open_state(&cfg, store).await?;
    let first_start = state.views().tokens.is_empty();
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    if first_start {
        let secret = create_token(
            &state,
            CreateTokenRequest { kind: TokenKind::Admin, environment: None, name: Some("first admin".into()), expires_at: None },
            "system",
        )
        .await?;
        println!("first start: admin token (shown once, store it now): {secret}");
    }
    println!("gantry listening on http://{addr} (data in {})", config::describe_store(&cfg));
    tracing::info!(listen = %addr, startup_ms = started.elapsed().as_millis() as u64, "gantry started");
    gantry_server::serve(state.clone(), listener, shutdown_signal()).await?;
    state.store.close().await;
    tracing::info!("gantry stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
