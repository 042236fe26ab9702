//! Layered configuration: defaults < `gantry.toml` < `GANTRY_*` environment
//! < command-line flags. The environment is passed in as a map, so tests
//! never touch the process environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory (SQLite database).
    pub data_dir: PathBuf,
    /// PostgreSQL URL; when set, the store is PostgreSQL instead of SQLite
    /// in `data_dir`.
    pub database_url: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`info`, `gantry=debug`, ...).
    pub log_level: String,
    /// Server settings.
    pub server: gantry_server::ServerConfig,
    /// Unknown `GANTRY_*` variables (warned about).
    pub unknown_env: Vec<String>,
}

/// What a config file may contain.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    admin_token: Option<String>,
    heartbeat_secs: Option<u64>,
    usage_flush_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    hostname: Option<String>,
    rollout_tick_ms: Option<u64>,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--log-format`.
    pub log_format: Option<String>,
}

/// An invalid configuration: one actionable line.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

const KNOWN_ENV: &[&str] = &[
    "GANTRY_CONFIG",
    "GANTRY_LISTEN",
    "GANTRY_DATA_DIR",
    "GANTRY_DATABASE_URL",
    "GANTRY_LOG_FORMAT",
    "GANTRY_LOG",
    "GANTRY_ADMIN_TOKEN",
    "GANTRY_HEARTBEAT_SECS",
    "GANTRY_USAGE_FLUSH_SECS",
    "GANTRY_ROLLOUT_TICK_MS",
    "GANTRY_URL",
    "GANTRY_TOKEN",
    "GANTRY_REQUEST_TIMEOUT_SECS",
    "GANTRY_MAX_BODY_BYTES",
    "GANTRY_HOSTNAME",
    "GANTRY_SERVER_URL",
    "GANTRY_TOKEN",
];

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

fn parse_secs(name: &str, v: &str) -> Result<u64, ConfigError> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| err(format!("{name} must be a whole number of seconds above 0, got `{v}`")))
}

fn parse_format(source: &str, v: &str) -> Result<LogFormat, ConfigError> {
    match v.trim() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(err(format!("{source}: log format must be `text` or `json`, got `{other}`"))),
    }
}

/// Only PostgreSQL URLs select another store; the message never repeats the
/// URL (it may hold a password).
fn check_database_url(source: &str, url: &str) -> Result<String, ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(url.to_owned())
    } else {
        Err(err(format!("{source}: the database URL must start with postgres:// (without it, SQLite in the data directory is used)")))
    }
}

/// Where the data lives, for messages: the data directory, or the PostgreSQL
/// URL without its user and password.
pub fn describe_store(cfg: &Config) -> String {
    match &cfg.database_url {
        Some(url) => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => cfg.data_dir.display().to_string(),
    }
}

/// Resolves the configuration from its layers.
pub fn load(env: &BTreeMap<String, String>, cli: &Overrides) -> Result<Config, ConfigError> {
    // Layer 2: the file (explicit path must exist; ./gantry.toml is optional).
    let (file, file_name) = match cli.config.clone().or_else(|| env.get("GANTRY_CONFIG").map(PathBuf::from)) {
        Some(p) => (Some(read_file(&p)?), p.display().to_string()),
        None if Path::new("gantry.toml").exists() => (Some(read_file(Path::new("gantry.toml"))?), "gantry.toml".into()),
        None => (None, String::new()),
    };
    let file = file.unwrap_or_default();
    let mut server = gantry_server::ServerConfig::default();

    let mut listen = file.listen.clone().unwrap_or_else(|| "127.0.0.1:4242".into());
    let mut listen_src = if file.listen.is_some() { file_name.clone() } else { "default".into() };
    let mut data_dir = file.data_dir.clone().unwrap_or_else(|| PathBuf::from("gantry-data"));
    let mut database_url = file.database_url.clone().map(|u| (u, file_name.clone()));
    let mut log_format = match &file.log_format {
        Some(f) => parse_format(&file_name, f)?,
        None => LogFormat::Text,
    };
    let mut log_level = file.log_level.clone().unwrap_or_else(|| "info".into());
    server.admin_token = file.admin_token.clone();
    if let Some(s) = file.heartbeat_secs {
        server.heartbeat = Duration::from_secs(s.max(1));
    }
    if let Some(s) = file.usage_flush_secs {
        server.usage_flush = Duration::from_secs(s.max(1));
    }
    if let Some(s) = file.request_timeout_secs {
        server.request_timeout = Duration::from_secs(s.max(1));
    }
    if let Some(b) = file.max_body_bytes {
        server.max_body_bytes = b;
    }
    server.hostname = file.hostname;
    if let Some(ms) = file.rollout_tick_ms {
        server.rollout_tick = Duration::from_millis(ms.max(10));
    }

    // Layer 3: environment.
    if let Some(v) = env.get("GANTRY_LISTEN") {
        listen = v.clone();
        listen_src = "GANTRY_LISTEN".into();
    }
    if let Some(v) = env.get("GANTRY_DATA_DIR") {
        data_dir = PathBuf::from(v);
    }
    if let Some(v) = env.get("GANTRY_DATABASE_URL") {
        database_url = Some((v.clone(), "GANTRY_DATABASE_URL".into()));
    }
    if let Some(v) = env.get("GANTRY_LOG_FORMAT") {
        log_format = parse_format("GANTRY_LOG_FORMAT", v)?;
    }
    if let Some(v) = env.get("GANTRY_LOG") {
        log_level = v.clone();
    }
    if let Some(v) = env.get("GANTRY_ADMIN_TOKEN") {
        if v.trim().len() < 16 {
            return Err(err("GANTRY_ADMIN_TOKEN must be at least 16 characters"));
        }
        server.admin_token = Some(v.trim().to_owned());
    }
    if let Some(v) = env.get("GANTRY_HEARTBEAT_SECS") {
        server.heartbeat = Duration::from_secs(parse_secs("GANTRY_HEARTBEAT_SECS", v)?);
    }
    if let Some(v) = env.get("GANTRY_USAGE_FLUSH_SECS") {
        server.usage_flush = Duration::from_secs(parse_secs("GANTRY_USAGE_FLUSH_SECS", v)?);
    }
    if let Some(v) = env.get("GANTRY_REQUEST_TIMEOUT_SECS") {
        server.request_timeout = Duration::from_secs(parse_secs("GANTRY_REQUEST_TIMEOUT_SECS", v)?);
    }
    if let Some(v) = env.get("GANTRY_MAX_BODY_BYTES") {
        server.max_body_bytes = v.trim().parse().map_err(|_| err(format!("GANTRY_MAX_BODY_BYTES must be a number of bytes, got `{v}`")))?;
    }
    if let Some(v) = env.get("GANTRY_ROLLOUT_TICK_MS") {
        let ms = v.trim().parse::<u64>().ok().filter(|n| *n >= 10);
        server.rollout_tick = Duration::from_millis(
            ms.ok_or_else(|| err(format!("GANTRY_ROLLOUT_TICK_MS must be a number of milliseconds >= 10, got `{v}`")))?,
        );
    }
    if let Some(v) = env.get("GANTRY_HOSTNAME") {
        server.hostname = Some(v.clone());
    }

    // Layer 4: flags.
    if let Some(v) = &cli.listen {
        listen = v.clone();
        listen_src = "--listen".into();
    }
    if let Some(v) = &cli.data_dir {
        data_dir = v.clone();
    }
    if let Some(v) = &cli.database_url {
        database_url = Some((v.clone(), "--database-url".into()));
    }
    if let Some(v) = &cli.log_format {
        log_format = parse_format("--log-format", v)?;
    }

    let listen: SocketAddr = listen.parse().map_err(|_| err(format!("{listen_src}: `{listen}` is not an address like 127.0.0.1:4242")))?;
    if server.max_body_bytes < 1024 {
        return Err(err("max_body_bytes must be at least 1024"));
    }
    let database_url = database_url.map(|(u, src)| check_database_url(&src, u.trim())).transpose()?;
    let unknown_env = env.keys().filter(|k| k.starts_with("GANTRY_") && !KNOWN_ENV.contains(&k.as_str())).cloned().collect();
    Ok(Config { listen, data_dir, database_url, log_format, log_level, server, unknown_env })
}

fn read_file(p: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|e| err(format!("cannot read config file {}: {e}", p.display())))?;
    toml::from_str(&text).map_err(|e| err(format!("{}: {}", p.display(), e.message())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults() {
        let c = load(&env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:4242".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("gantry-data"));
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn layers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1000\"\ndata_dir = \"/from-file\"\nlog_format = \"json\"\n").unwrap();
        let cli = Overrides { config: Some(f), ..Default::default() };
        let c = load(&env(&[]), &cli).unwrap();
        assert_eq!((c.listen.port(), c.data_dir.to_str().unwrap(), c.log_format), (1000, "/from-file", LogFormat::Json));
        let c = load(&env(&[("GANTRY_LISTEN", "127.0.0.1:2000"), ("GANTRY_DATA_DIR", "/from-env")]), &cli).unwrap();
        assert_eq!((c.listen.port(), c.data_dir.to_str().unwrap()), (2000, "/from-env"));
        let cli = Overrides { listen: Some("127.0.0.1:3000".into()), data_dir: Some("/from-flag".into()), ..cli };
        let c = load(&env(&[("GANTRY_LISTEN", "127.0.0.1:2000")]), &cli).unwrap();
        assert_eq!((c.listen.port(), c.data_dir.to_str().unwrap()), (3000, "/from-flag"));
    }

    #[test]
    fn database_url_layers_and_is_checked() {
        let c = load(&env(&[]), &Overrides::default()).unwrap();
        assert_eq!((c.database_url.as_deref(), describe_store(&c).as_str()), (None, "gantry-data"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "database_url = \"postgres://file@db1/gantry\"\n").unwrap();
        let cli = Overrides { config: Some(f), ..Default::default() };
        assert_eq!(load(&env(&[]), &cli).unwrap().database_url.as_deref(), Some("postgres://file@db1/gantry"));
        let c = load(&env(&[("GANTRY_DATABASE_URL", "postgresql://u:secret@db2:5433/g")]), &cli).unwrap();
        assert_eq!(c.database_url.as_deref(), Some("postgresql://u:secret@db2:5433/g"));
        assert_eq!(describe_store(&c), "postgresql://db2:5433/g", "no credentials in messages");
        let cli = Overrides { database_url: Some("postgres://flag@db3/g".into()), ..cli };
        assert_eq!(
            load(&env(&[("GANTRY_DATABASE_URL", "postgres://env@db2/g")]), &cli).unwrap().database_url.as_deref(),
            Some("postgres://flag@db3/g")
        );
        let e = load(&env(&[("GANTRY_DATABASE_URL", "mysql://u:secret@db/g")]), &Overrides::default()).unwrap_err();
        assert!(e.0.starts_with("GANTRY_DATABASE_URL: the database URL must start with postgres://"), "{}", e.0);
        assert!(!e.0.contains("secret"), "{}", e.0);
    }

    #[test]
    fn invalid_values_are_one_clear_line() {
        let e = load(&env(&[("GANTRY_LISTEN", "nope")]), &Overrides::default()).unwrap_err();
        assert_eq!(e.0, "GANTRY_LISTEN: `nope` is not an address like 127.0.0.1:4242");
        let e = load(&env(&[("GANTRY_LOG_FORMAT", "xml")]), &Overrides::default()).unwrap_err();
        assert!(e.0.contains("`text` or `json`"), "{}", e.0);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "lisen = 1\n").unwrap();
        let e = load(&env(&[]), &Overrides { config: Some(f), ..Default::default() }).unwrap_err();
        assert!(e.0.contains("unknown field"), "{}", e.0);
        assert!(!e.0.contains('\n'));
    }

    #[test]
    fn rollout_tick_layers_and_validates() {
        assert_eq!(load(&env(&[]), &Overrides::default()).unwrap().server.rollout_tick, Duration::from_secs(10));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "rollout_tick_ms = 2500\n").unwrap();
        let cli = Overrides { config: Some(f), ..Default::default() };
        assert_eq!(load(&env(&[]), &cli).unwrap().server.rollout_tick, Duration::from_millis(2500));
        let c = load(&env(&[("GANTRY_ROLLOUT_TICK_MS", "100"), ("GANTRY_URL", "http://x"), ("GANTRY_TOKEN", "t")]), &cli).unwrap();
        assert_eq!(c.server.rollout_tick, Duration::from_millis(100));
        assert!(c.unknown_env.is_empty(), "{:?}", c.unknown_env);
        let e = load(&env(&[("GANTRY_ROLLOUT_TICK_MS", "5")]), &Overrides::default()).unwrap_err();
        assert!(e.0.contains("GANTRY_ROLLOUT_TICK_MS"), "{}", e.0);
    }

    #[test]
    fn unknown_variables_are_reported() {
        let c = load(&env(&[("GANTRY_LSTEN", "x"), ("PATH", "/bin")]), &Overrides::default()).unwrap();
        assert_eq!(c.unknown_env, vec!["GANTRY_LSTEN".to_owned()]);
    }
}
