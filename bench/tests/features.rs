//! `cargo run --release --bin bench` and the harness's build of the
//! variants (`bench::target::build::BUILD_ARGS`) must resolve every shared
//! dependency with the same features: otherwise each build recompiles what
//! the other compiled (ring, rustls, tonic, reqwest and the microservices,
//! about two minutes per compare on 2 cores) and a first run on a clean
//! clone compiles them twice.

use std::collections::BTreeSet;

/// Every package of the normal and build graph with its features, as
/// `cargo tree` resolves them for `packages` built together.
fn tree(packages: &[&str]) -> BTreeSet<String> {
    let mut command = bench::target::build::cargo();
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "tree",
            "--locked",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "-f",
            "{p} [{f}]",
        ]);
    for p in packages {
        command.args(["-p", p]);
    }
    let output = command.output().expect("running cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim_end_matches(" (*)").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bench_alone_resolves_the_same_features_as_the_harness_build() {
    let harness: Vec<&str> = bench::target::build::BUILD_ARGS
        .chunks(2)
        .filter(|pair| pair[0] == "--bin")
        .map(|pair| pair[1])
        .collect();
    assert_eq!(
        harness,
        ["bench", "monolith", "microlith", "microservices"],
        "each binary is its package's"
    );
    let alone = tree(&["bench"]);
    let together = tree(&harness);
    let only_alone: Vec<_> = alone.difference(&together).collect();
    let only_together: Vec<_> = together.difference(&alone).collect();
    assert!(
        only_alone.is_empty() && only_together.is_empty(),
        "features differ between `--bin bench` and the harness's build:\n  bench alone: {only_alone:#?}\n  together: {only_together:#?}"
    );
    // The test can fail: bench's own tree lacks what only the variants use.
    assert!(
        together.iter().any(|l| l.starts_with("tonic ")),
        "{together:#?}"
    );
}

/// Under `cargo test`, as under `cargo run`, this process has cargo's
/// package variables; the harness's cargo must not pass them on (ring's
/// build script reruns when they change).
#[test]
fn the_harness_cargo_drops_the_variables_cargo_set_for_it() {
    assert!(
        std::env::var_os("CARGO_PKG_NAME").is_some()
            && std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "run under cargo"
    );
    let command = bench::target::build::cargo();
    let removed: Vec<_> = command
        .get_envs()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    for name in [
        "CARGO_PKG_NAME",
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_VERSION_MAJOR",
    ] {
        assert!(
            removed.iter().any(|r| r == name),
            "{name} is passed on: {removed:?}"
        );
    }
    assert!(
        !removed
            .iter()
            .any(|r| r == "CARGO_HOME" || r == "CARGO_TARGET_DIR"),
        "the user's own settings stay: {removed:?}"
    );
}
