//! What the harness's integration tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the variants' `packages` (debug, as the tests run) and returns
/// the directory their binaries are in, beside the harness's own.
pub(crate) fn built(packages: &[&str]) -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.current_dir(&workspace).arg("build");
    for package in packages {
        build.args(["-p", package]);
    }
    anyhow::ensure!(
        build.status()?.success(),
        "building {} failed",
        packages.join(", ")
    );
    Ok(Path::new(env!("CARGO_BIN_EXE_bench"))
        .parent()
        .expect("target dir")
        .to_path_buf())
}
