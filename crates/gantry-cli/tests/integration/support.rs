//! Starting the real binary on port 0 and reading where it listens.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const ADMIN: &str = "test-admin-token-0123456789abcdef";

pub fn gantry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
    c.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("GANTRY_LOG", "warn");
    c
}

/// A running server process.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Lines printed to stdout before the listening line.
    pub banner: Vec<String>,
}

impl Server {
    /// Starts `gantry serve` on port 0 in `dir` and waits for its listening line.
    pub fn start(dir: &Path) -> Server {
        Self::start_with_env(dir, &[])
    }

    /// Same, with extra environment variables.
    pub fn start_with_env(dir: &Path, vars: &[(&str, &str)]) -> Server {
        let mut child = gantry()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("GANTRY_ADMIN_TOKEN", ADMIN)
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gantry");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let base = loop {
            let line = lines.next().expect("gantry exited before listening").expect("read stdout");
            if let Some(rest) = line.strip_prefix("gantry listening on ") {
                break rest.split_whitespace().next().expect("address").to_owned();
            }
            banner.push(line);
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base, banner }
    }

    /// SIGKILL.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
