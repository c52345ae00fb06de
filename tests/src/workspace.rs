//! Where things are: the workspace root, the shared reference folder, and our binaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run cargo ({cargo})")]
    Spawn {
        cargo: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`cargo build --workspace --bins` failed:\n{stderr}")]
    Failed { stderr: String },
    #[error("cargo built no executable named {0}")]
    NoExecutable(String),
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits inside the workspace")
        .to_path_buf()
}

/// `deploy/` in the workspace.
pub fn deploy_dir() -> PathBuf {
    root().join("deploy")
}

/// A path in the shared reference folder, if it is there: `$SHARED_DIR`, by default `shared/`
/// beside the repository (a git worktree elsewhere sets `SHARED_DIR`).
pub fn shared(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared"));
    let dir = base.join(sub);
    if dir.exists() {
        return Some(dir);
    }
    eprintln!("skipping: no shared reference data at {}", dir.display());
    None
}

/// Builds the workspace's binaries and returns the path of `bin` from `package`.
///
/// Integration tests only get `CARGO_BIN_EXE_*` for their own package's binaries, and cargo has
/// no stable way to depend on another package's binary, so this runs `cargo build --workspace
/// --bins` and takes the path cargo reports, which follows `CARGO_TARGET_DIR` and the profile.
/// Every caller (and `make demo`) asks for that same selection: cargo then resolves the same
/// features each time and builds once, where `-p <package>` selections would each resolve
/// features differently and relink. Builds are serialised; cargo would only wait on its lock.
pub fn binary(package: &str, bin: &str) -> Result<PathBuf, BuildError> {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(&cargo)
        .current_dir(root())
        .args([
            "build",
            "--message-format=json-render-diagnostics",
            "--workspace",
            "--bins",
        ])
        .output()
        .map_err(|source| BuildError::Spawn {
            cargo: cargo.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == bin)
        .filter(|msg| {
            msg["package_id"]
                .as_str()
                .is_some_and(|id| id.contains(package))
        })
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| BuildError::NoExecutable(format!("{package}/{bin}")))
}
