//! Building what the harness runs: the variants' release binaries (with
//! the same features as the harness's own build, so neither build undoes
//! the other), and cargo and other commands run with their output kept or
//! counted.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};

/// Where `cargo build --release` puts the binaries.
pub fn release_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .context("binary without a directory")?
        .to_path_buf())
}

/// The harness's build of the variants (and of itself, already current).
pub const BUILD_ARGS: [&str; 10] = [
    "build",
    "--release",
    "--bin",
    "bench",
    "--bin",
    "monolith",
    "--bin",
    "microlith",
    "--bin",
    "microservices",
];

/// A `cargo` command (the one that ran the harness, when it did) with the
/// environment cargo set for the harness taken out.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME` and the like for
/// the program it runs, and ring's build script asks to be rerun when any
/// of them changes (`rerun-if-env-changed`). Passed on, they made every
/// build the harness started recompile ring and all that depends on it
/// (rustls, tonic, reqwest, the microservices: 64 s), and the next `cargo
/// run`, without them, compile it all back.
pub fn cargo() -> std::process::Command {
    let mut command =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(name);
        }
    }
    command
}

/// What a cargo command that compiles did.
pub struct CargoRun {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Crates it compiled.
    pub crates: u64,
    /// The last lines of its stderr (for an error message).
    pub tail: String,
}

/// Runs a cargo `command` that compiles, telling `progress` the count of
/// crates compiled so far.
pub fn cargo_counting(
    mut command: std::process::Command,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<CargoRun> {
    use std::io::BufRead;
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo")?;
    let mut crates = 0;
    let mut tail = std::collections::VecDeque::new();
    if let Some(stderr) = child.stderr.take() {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.trim_start().starts_with("Compiling ") {
                crates += 1;
                progress(crates);
            }
            tail.push_back(line);
            if tail.len() > 20 {
                tail.pop_front();
            }
        }
    }
    let status = child.wait()?;
    Ok(CargoRun {
        status,
        crates,
        tail: Vec::from(tail).join("\n"),
    })
}

/// Builds the variants' release binaries (a no-op when they are current).
pub fn build_binaries(workspace: &Path) -> anyhow::Result<()> {
    eprintln!("building the release binaries of the variants (once; later runs reuse them)...");
    let status = cargo()
        .current_dir(workspace)
        // The same features as `cargo run --release --bin bench`: bench
        // depends on both variants' libraries, so this selection and
        // bench's alone resolve every shared dependency alike, and
        // neither build undoes the other (`tests/features.rs`).
        .args(BUILD_ARGS)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo {} failed: {status}", BUILD_ARGS.join(" "));
    }
    Ok(())
}

/// Whether `cmd` runs and succeeds, its output discarded.
pub(crate) fn ok(cmd: &mut std::process::Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
