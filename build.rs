//! Records the git commit the library was built from, for cloud_sync_debug(), and limits the
//! shared library's exported symbols to its entry points.

use std::path::PathBuf;

/// The only symbols the shared library exports: SQLite's two ways to load it. Everything else,
/// Rust's and every dependency's, stays local, so nothing in a host can bind to it or collide
/// with it (tests/packaging/check_so.sh checks the built library).
const ENTRY_POINTS: &[&str] = &["sqlite3_cloudsync_init", "sqlite3_cloudsync_auto_init"];

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CLOUD_SYNC_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");

    let script =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("exports.map");
    let globals: String = ENTRY_POINTS
        .iter()
        .map(|name| format!("{name}; "))
        .collect();
    std::fs::write(&script, format!("{{ global: {globals}local: *; }};\n"))
        .expect("OUT_DIR is writable");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        script.display()
    );
}
