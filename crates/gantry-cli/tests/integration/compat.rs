//! Compatibility with the real third-party SDKs, pinned in `compat/`
//! (`package.json` + `package-lock.json`, `requirements.txt`): each test
//! starts `gantry serve`, loads `compat/flags.json` (an Unleash document:
//! rollouts, constraints, segments, variants, dependencies) plus the typed
//! native flags of `compat/native-flags.json`, creates a server and a client
//! token, and runs one script against it. The scripts print a JSON summary
//! and exit non-zero on any mismatch; it is shown when a test fails.
//!
//! The packages are installed once per checkout state (guarded by a file
//! lock, since nextest runs tests as parallel processes) into
//! `target/test-deps/compat` (npm) and `target/test-deps/compat-venv` (pip).
//! Missing `node`, `npm` or `python3` fails the tests: they are not optional.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{Server, ADMIN};

/// How long one script may run (10,000 contexts against a debug build on a busy 2-core machine).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(420);
/// How long the one-time package installation may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn compat_src() -> PathBuf {
    repo().join("compat")
}

pub(crate) fn deps() -> PathBuf {
    repo().join("target/test-deps")
}

/// Where `npm ci` installs (`node_modules`) and where the Node scripts run from.
fn node_dir() -> PathBuf {
    deps().join("compat")
}

fn venv() -> PathBuf {
    deps().join("compat-venv")
}

pub(crate) struct Finished {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Finished {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub(crate) fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => format!("{s}"),
            None => "killed after the time limit".to_owned(),
        };
        format!(
            "status: {status} after {:.1}s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs a command to completion (or kills it after `limit`), capturing both streams.
pub(crate) fn run(mut cmd: Command, limit: Duration) -> Finished {
    let what = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Finished { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default(), elapsed: start.elapsed() }
}

/// Fails (not skips) when a required tool is missing.
pub(crate) fn require_tool(tool: &str) {
    let ok = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(ok, "`{tool}` is required by the SDK compatibility tests (compat/) but was not found on PATH; install Node 20+ with npm and Python 3.9+ with venv");
}

/// Writes `to` only when its content differs (other test processes may be reading it).
pub(crate) fn sync_file(from: &Path, to: &Path) {
    let data = fs::read(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    if fs::read(to).ok().as_deref() != Some(&data[..]) {
        fs::create_dir_all(to.parent().expect("parent")).expect("create dir");
        fs::write(to, &data).unwrap_or_else(|e| panic!("write {}: {e}", to.display()));
    }
}

/// Installs the pinned packages if the lockfiles changed since the last
/// install, and refreshes the Node scripts' copies next to `node_modules`.
fn install() {
    for tool in ["node", "npm", "python3"] {
        require_tool(tool);
    }
    let src = compat_src();
    fs::create_dir_all(deps()).expect("create target/test-deps");
    let lock = File::create(deps().join("compat.lock")).expect("create lock file");
    lock.lock().expect("lock target/test-deps/compat.lock");

    // npm: `npm ci` from the committed lockfile, into target/test-deps/compat.
    let dir = node_dir();
    let lockfile = fs::read(src.join("package-lock.json")).expect("compat/package-lock.json");
    let stamp = dir.join(".installed-lockfile");
    if fs::read(&stamp).ok().as_deref() != Some(&lockfile[..]) || !dir.join("node_modules").is_dir() {
        fs::create_dir_all(&dir).expect("create compat dir");
        sync_file(&src.join("package.json"), &dir.join("package.json"));
        sync_file(&src.join("package-lock.json"), &dir.join("package-lock.json"));
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir);
        let out = run(cmd, INSTALL_TIMEOUT);
        assert!(out.ok(), "npm ci of compat/package-lock.json failed\n{}", out.describe());
        fs::write(&stamp, &lockfile).expect("write stamp");
    }
    for entry in fs::read_dir(src.join("node")).expect("compat/node") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "mjs") {
            sync_file(&path, &dir.join("node").join(path.file_name().expect("name")));
        }
    }
    sync_file(&src.join("flags.json"), &dir.join("flags.json"));

    // pip: a venv with compat/requirements.txt.
    let venv = venv();
    let requirements = fs::read(src.join("requirements.txt")).expect("compat/requirements.txt");
    let stamp = venv.join(".installed-requirements");
    if fs::read(&stamp).ok().as_deref() != Some(&requirements[..]) || !venv.join("bin/python").exists() {
        if !venv.join("bin/python").exists() {
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "venv"]).arg(&venv);
            let out = run(cmd, INSTALL_TIMEOUT);
            assert!(out.ok(), "python3 -m venv failed (on Debian: apt-get install python3-venv)\n{}", out.describe());
        }
        let mut cmd = Command::new(venv.join("bin/python"));
        cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", "-r"]).arg(src.join("requirements.txt"));
        let out = run(cmd, INSTALL_TIMEOUT);
        assert!(out.ok(), "pip install -r compat/requirements.txt failed\n{}", out.describe());
        fs::write(&stamp, &requirements).expect("write stamp");
    }
    lock.unlock().expect("unlock");
}

/// A running server loaded with the compat flag set, and its tokens.
struct Setup {
    server: Server,
    _dir: tempfile::TempDir,
    server_token: String,
    client_token: String,
}

async fn admin_post(http: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let r = http.post(&url).bearer_auth(ADMIN).json(body).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn create_token(http: &reqwest::Client, base: &str, kind: &str) -> String {
    let (status, body) = admin_post(http, format!("{base}/api/v1/tokens"), &json!({"kind": kind, "environment": "production"})).await;
    assert_eq!(status, 201, "create {kind} token: {body}");
    body["secret"].as_str().expect("secret").to_owned()
}

async fn setup() -> Setup {
    setup_with(false).await
}

/// The message the maintenance compat tests switch on.
const MAINTENANCE_MESSAGE: &str = "compat maintenance";

/// Like [`setup`]; with `maintenance`, production is put into maintenance
/// mode (no allowlist) so the SDKs meet the extra `maintenance` field of
/// `/api/client/features` and the synthetic `gantry.maintenance` toggle.
async fn setup_with(maintenance: bool) -> Setup {
    install();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let http = reqwest::Client::new();
    let src = compat_src();
    let read =
        |name: &str| -> Value { serde_json::from_slice(&fs::read(src.join(name)).expect(name)).unwrap_or_else(|e| panic!("{name}: {e}")) };

    let (status, summary) =
        admin_post(&http, format!("{}/api/v1/import/unleash?environment=production", server.base), &read("flags.json")).await;
    assert_eq!(status, 200, "import compat/flags.json: {summary}");
    assert_eq!(summary["diagnostics"], json!([]), "compat/flags.json must compile cleanly: {summary}");
    let (status, summary) =
        admin_post(&http, format!("{}/api/v1/import/unleash?environment=production", server.base), &read("broken-flags.json")).await;
    assert_eq!(status, 200, "import compat/broken-flags.json: {summary}");
    for flag in read("native-flags.json").as_array().expect("native-flags.json is an array") {
        let (status, body) = admin_post(&http, format!("{}/api/v1/flags", server.base), flag).await;
        assert_eq!(status, 201, "create {}: {body}", flag["key"]);
    }
    if maintenance {
        let url = format!("{}/api/v1/environments/production/maintenance", server.base);
        let r =
            http.put(&url).bearer_auth(ADMIN).json(&json!({"enabled": true, "message": MAINTENANCE_MESSAGE})).send().await.expect("PUT");
        assert_eq!(r.status(), 200, "switch maintenance on");
    }
    let server_token = create_token(&http, &server.base, "server").await;
    let client_token = create_token(&http, &server.base, "client").await;
    Setup { server, _dir: dir, server_token, client_token }
}

impl Setup {
    fn envs(&self, cmd: &mut Command) {
        cmd.env("GANTRY_URL", &self.server.base)
            .env("GANTRY_SERVER_TOKEN", &self.server_token)
            .env("GANTRY_CLIENT_TOKEN", &self.client_token)
            // Never send loopback traffic through a proxy configured for the installs.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1");
    }

    fn node(&self, script: &str) {
        self.node_with(script, &[]);
    }

    fn node_with(&self, script: &str, extra: &[(&str, &str)]) {
        let mut cmd = Command::new("node");
        cmd.arg(node_dir().join("node").join(script)).current_dir(node_dir());
        self.envs(&mut cmd);
        cmd.envs(extra.iter().copied());
        let out = run(cmd, SCRIPT_TIMEOUT);
        assert!(out.ok(), "compat/node/{script} failed\n{}", out.describe());
    }

    fn python(&self, script: &str) {
        self.python_with(script, &[]);
    }

    fn python_with(&self, script: &str, extra: &[(&str, &str)]) {
        let mut cmd = Command::new(venv().join("bin/python"));
        let dir = compat_src().join("python");
        cmd.arg(dir.join(script)).current_dir(&dir);
        self.envs(&mut cmd);
        cmd.envs(extra.iter().copied());
        let out = run(cmd, SCRIPT_TIMEOUT);
        assert!(out.ok(), "compat/python/{script} failed\n{}", out.describe());
    }
}

/// Node `unleash-client`: 10,000 random contexts × every flag, isEnabled and getVariant equal OFREP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_unleash_client_matches_ofrep_on_10000_contexts() {
    setup().await.node("unleash-client.mjs");
}

/// Python `UnleashClient`: 10,000 random contexts × every flag, is_enabled and get_variant equal OFREP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_unleash_client_matches_ofrep_on_10000_contexts() {
    setup().await.python("unleash_client.py");
}

/// The browser SDK `unleash-proxy-client` under Node against `/api/frontend` (GET and POST), with updateContext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_unleash_proxy_client_against_frontend_api() {
    setup().await.node("proxy-client.mjs");
}

/// `@openfeature/server-sdk` + `@openfeature/ofrep-provider`: values, variants, reasons, error codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_openfeature_ofrep_provider() {
    setup().await.node("openfeature.mjs");
}

/// Python `openfeature-sdk` + `openfeature-provider-ofrep`: values, variants, reasons, error codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openfeature_ofrep_provider() {
    setup().await.python("openfeature_ofrep.py");
}

/// Maintenance mode on: the Node `unleash-client` accepts the extra top-level
/// `maintenance` field of `/api/client/features` and still matches OFREP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_unleash_client_tolerates_the_maintenance_field() {
    setup_with(true).await.node_with("unleash-client.mjs", &[("COMPAT_CONTEXTS", "300")]);
}

/// Maintenance mode on: the Python `UnleashClient` (Yggdrasil engine) accepts the extra field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_unleash_client_tolerates_the_maintenance_field() {
    setup_with(true).await.python_with("unleash_client.py", &[("COMPAT_CONTEXTS", "300")]);
}

/// Maintenance mode on: the unmodified browser SDK sees `gantry.maintenance`
/// enabled with the message as its variant payload (GET and POST modes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_unleash_proxy_client_sees_the_maintenance_flag() {
    setup_with(true)
        .await
        .node_with("proxy-client.mjs", &[("COMPAT_FRONTEND_CONTEXTS", "20"), ("GANTRY_EXPECT_MAINTENANCE", MAINTENANCE_MESSAGE)]);
}
