//! Shared helpers: locating (and fetching) the pinned client specification.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned `@unleash/client-specification` version.
pub const SPEC_VERSION: &str = "6.1.0";

/// Directory holding `index.json` and the spec files. Uses
/// `GANTRY_CLIENT_SPEC_DIR` if set, else fetches the pinned npm package into
/// the workspace's `target/test-deps` once.
pub fn spec_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GANTRY_CLIENT_SPEC_DIR") {
        return PathBuf::from(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-deps");
    let dir = root.join(format!("client-specification-{SPEC_VERSION}"));
    let specs = dir.join("package/specifications");
    if specs.join("index.json").exists() {
        return specs;
    }
    std::fs::create_dir_all(&dir).expect("create test-deps dir");
    let out = Command::new("npm")
        .args(["pack", &format!("@unleash/client-specification@{SPEC_VERSION}"), "--silent", "--pack-destination"])
        .arg(&dir)
        .output()
        .expect("npm is needed to fetch the client specification");
    assert!(out.status.success(), "npm pack failed: {}", String::from_utf8_lossy(&out.stderr));
    let tgz = dir.join(format!("unleash-client-specification-{SPEC_VERSION}.tgz"));
    let st = Command::new("tar").arg("xzf").arg(&tgz).arg("-C").arg(&dir).status().expect("tar");
    assert!(st.success(), "tar failed");
    specs
}
