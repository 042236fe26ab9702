//! The dashboard in a real browser: `tests/e2e-dashboard/dashboard.mjs`
//! (`playwright-core`, pinned in its `package.json` + `package-lock.json`)
//! drives Debian's `/usr/bin/chromium` against a real `gantry serve` on
//! port 0 with a fresh data directory and `GANTRY_ADMIN_TOKEN`: sign in,
//! create a flag, a 25 % rollout in staging with the slider, production on
//! after the confirmation step, the audit entry, a toggle made through the
//! admin API appearing without a reload, the evaluation debugger,
//! maintenance on and off in staging (and live from the API), a release
//! recorded through the API appearing live, a rollout created through the
//! API paused and resumed on its page, the alerts page, sign-out.
//! Screenshots of every main page (desktop and phone width) are written to
//! `target/dashboard-screenshots/` as test artifacts.
//!
//! `npm ci` runs once per lockfile into `target/test-deps/e2e-dashboard`
//! (the same stamp `scripts/test.sh` uses); chromium comes from Debian
//! (`scripts/test.sh` installs it when missing). Missing tools fail the test.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::compat::{deps, repo, require_tool, run, sync_file};
use crate::support::{Server, ADMIN};

const CHROMIUM: &str = "/usr/bin/chromium";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

fn src() -> PathBuf {
    repo().join("tests/e2e-dashboard")
}

fn node_dir() -> PathBuf {
    deps().join("e2e-dashboard")
}

fn install() {
    require_tool("node");
    require_tool("npm");
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is required by the dashboard browser test; `apt-get install -y chromium` (scripts/test.sh does it when missing)"
    );
    fs::create_dir_all(deps()).expect("create target/test-deps");
    let lock = File::create(deps().join("e2e-dashboard.lock")).expect("create lock file");
    lock.lock().expect("lock");
    let dir = node_dir();
    let lockfile = fs::read(src().join("package-lock.json")).expect("tests/e2e-dashboard/package-lock.json");
    let stamp = dir.join(".installed-lockfile");
    if fs::read(&stamp).ok().as_deref() != Some(&lockfile[..]) || !dir.join("node_modules/playwright-core").is_dir() {
        fs::create_dir_all(&dir).expect("create dir");
        sync_file(&src().join("package.json"), &dir.join("package.json"));
        sync_file(&src().join("package-lock.json"), &dir.join("package-lock.json"));
        let mut cmd = Command::new("npm");
        cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&dir);
        let out = run(cmd, INSTALL_TIMEOUT);
        assert!(out.ok(), "npm ci of tests/e2e-dashboard/package-lock.json failed\n{}", out.describe());
        fs::write(&stamp, &lockfile).expect("write stamp");
    }
    sync_file(&src().join("dashboard.mjs"), &dir.join("dashboard.mjs"));
    lock.unlock().expect("unlock");
}

/// Sign in, create a flag, 25 % in staging, production after confirming, audit, live toggle, debugger, maintenance, releases,
/// rollouts (pause and resume), alerts, screenshots.
#[test]
fn dashboard_end_to_end_in_chromium() {
    install();
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let shots = repo().join("target/dashboard-screenshots");
    let _ = fs::remove_dir_all(&shots);
    let mut cmd = Command::new("node");
    cmd.arg(node_dir().join("dashboard.mjs"))
        .current_dir(node_dir())
        .env("GANTRY_URL", &server.base)
        .env("GANTRY_ADMIN_TOKEN", ADMIN)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", CHROMIUM)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    let out = run(cmd, SCRIPT_TIMEOUT);
    assert!(out.ok(), "tests/e2e-dashboard/dashboard.mjs failed\n{}", out.describe());
    for page in [
        "sign-in",
        "flags",
        "flag",
        "segments",
        "environments",
        "experiments",
        "experiment",
        "maintenance",
        "maintenance-on",
        "releases",
        "rollouts",
        "rollout",
        "rollout-paused",
        "alerts",
        "tokens",
        "audit",
    ] {
        let desktop = shots.join(format!("{page}-desktop.png"));
        assert!(fs::metadata(&desktop).is_ok_and(|m| m.len() > 1000), "screenshot {} missing", desktop.display());
    }
    for page in [
        "flags",
        "flag",
        "segments",
        "environments",
        "experiments",
        "experiment",
        "maintenance",
        "releases",
        "rollouts",
        "rollout",
        "alerts",
        "tokens",
        "audit",
    ] {
        assert!(shots.join(format!("{page}-phone.png")).exists(), "phone screenshot of {page} missing");
    }
    drop(server);
}
