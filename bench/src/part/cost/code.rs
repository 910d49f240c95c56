//! What the code and its build cost: lines by what they exist for
//! ([`super::lines`]), proto packages, and a release build timed from
//! scratch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::lines::{self, Syntax};
use crate::record::CodeArea;

/// The areas counted: (variant, area, paths relative to the workspace).
/// Every file of the variants' `src` folders must be in one
/// (a test checks), so a new file cannot slip out of the count.
const AREAS: &[(&str, &str, &[&str])] = &[
    (
        "both",
        "business rules, invariants, workload (shared-domain)",
        &["shared-domain/rules/src"],
    ),
    (
        "both",
        "storage on redb (store)",
        &["shared-domain/store/src"],
    ),
    (
        "both",
        "HTTP and WebSocket edge (edge)",
        &["shared-domain/edge/src"],
    ),
    (
        "both",
        "black-box contract suite (contract)",
        &["shared-domain/contract/src"],
    ),
    (
        "monolith",
        "wiring, fault injection, configuration, main",
        &["monolith/src"],
    ),
    (
        "monolith",
        "deployment: compose file",
        &["monolith/compose.yml"],
    ),
    ("monolith", "tests of this variant", &["monolith/tests"]),
    (
        "microlith",
        "actor runtime and supervision",
        &["microlith/src/runtime", "microlith/src/runtime.rs"],
    ),
    (
        "microlith",
        "components as actors",
        &["microlith/src/component", "microlith/src/component.rs"],
    ),
    (
        "microlith",
        "wiring, configuration, main",
        &[
            "microlith/src/system.rs",
            "microlith/src/system",
            "microlith/src/config.rs",
            "microlith/src/lib.rs",
            "microlith/src/main.rs",
        ],
    ),
    (
        "microlith",
        "zero-downtime upgrade (socket and state hand-over, the container's init)",
        &["microlith/src/upgrade.rs", "microlith/src/init.rs"],
    ),
    (
        "microlith",
        "deployment: compose file and Kubernetes manifests",
        &["microlith/compose.yml", "k8s/base/microlith.yaml"],
    ),
    ("microlith", "tests of this variant", &["microlith/tests"]),
    (
        "microservices",
        "proto definitions",
        &["microservices/proto"],
    ),
    (
        "microservices",
        "codecs and error mapping",
        &[
            "microservices/src/wire.rs",
            "microservices/src/wire",
            "microservices/build.rs",
        ],
    ),
    (
        "microservices",
        "gRPC servers",
        &["microservices/src/servers.rs"],
    ),
    (
        "microservices",
        "gRPC clients",
        // With the batching both background feeds share.
        &[
            "microservices/src/clients.rs",
            "microservices/src/clients",
            "microservices/src/batch.rs",
        ],
    ),
    (
        "microservices",
        "resilience: breakers, retries, deadlines, settlement fence",
        &[
            "microservices/src/resilience.rs",
            "microservices/src/resilience",
            "microservices/src/deadline.rs",
            "microservices/src/settlement.rs",
        ],
    ),
    (
        "microservices",
        "tracing and metrics",
        &["microservices/src/trace.rs", "microservices/src/observe.rs"],
    ),
    (
        "microservices",
        "service tokens and the private CA",
        &["microservices/src/auth.rs", "microservices/src/pki.rs"],
    ),
    (
        "microservices",
        "HTTP/JSON read model (ledger)",
        &["microservices/src/ledger.rs", "microservices/src/ledger"],
    ),
    (
        "microservices",
        "processes, layouts, launcher, main",
        &[
            "microservices/src/process.rs",
            "microservices/src/process",
            "microservices/src/launcher.rs",
            "microservices/src/launcher",
            "microservices/src/layout.rs",
            "microservices/src/main.rs",
            "microservices/src/lib.rs",
        ],
    ),
    (
        "microservices",
        "deployment: compose file and Kubernetes manifests",
        &[
            "microservices/compose.yml",
            "k8s/base/microservices.yaml",
            "k8s/base/policies.yaml",
            "k8s/components/mtls/kustomization.yaml",
        ],
    ),
    (
        "microservices",
        "tests of this variant",
        &["microservices/tests"],
    ),
];

fn count(paths: &[PathBuf]) -> (u64, u64, u64) {
    let (mut files, mut code, mut comments) = (0, 0, 0);
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
            continue;
        }
        let (Some(syntax), Ok(text)) = (Syntax::of(&path), std::fs::read_to_string(&path)) else {
            continue;
        };
        let (c, k) = lines::count(&text, syntax);
        files += 1;
        code += c;
        comments += k;
    }
    (files, code, comments)
}

/// Counts every area of `AREAS` in the workspace at `root` (the
/// deployment files are areas of their own).
pub fn count_code(root: &Path) -> Vec<CodeArea> {
    let mut out = Vec::new();
    for (variant, area, paths) in AREAS {
        let paths: Vec<PathBuf> = paths.iter().map(|p| root.join(p)).collect();
        let (files, code, comments) = count(&paths);
        if files > 0 {
            out.push(CodeArea {
                variant: (*variant).to_owned(),
                area: (*area).to_owned(),
                files,
                code,
                comments,
            });
        }
    }
    out
}

/// The `package` lines of every .proto file under `root/microservices/proto`.
pub fn proto_packages(root: &Path) -> Vec<String> {
    let mut packages = Vec::new();
    let mut stack = vec![root.join("microservices/proto")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "proto") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                packages.extend(
                    text.lines()
                        .filter_map(|l| l.trim().strip_prefix("package "))
                        .map(|p| p.trim_end_matches(';').trim().to_owned()),
                );
            }
        }
    }
    packages.sort();
    packages
}

/// Times `cargo build --release -p <variant>` in an empty target directory
/// under `root/target/build-cost`, reporting each compiled crate to
/// `progress`; the directory is removed afterwards.
pub fn timed_build(
    root: &Path,
    variant: &str,
    progress: impl FnMut(u64),
) -> anyhow::Result<(f64, u64)> {
    let dir = root.join("target").join("build-cost").join(variant);
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let mut command = crate::target::build::cargo();
    command
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            variant,
            "--target-dir",
        ])
        .arg(&dir);
    let built = crate::target::build::cargo_counting(command, progress)?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(
        built.status.success(),
        "the timed build of {variant} failed: {}\n{}",
        built.status,
        built.tail
    );
    Ok((seconds, built.crates))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_areas_of_this_workspace() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let areas = count_code(&root);
        let find = |area: &str| {
            areas
                .iter()
                .find(|a| a.area.starts_with(area))
                .unwrap_or_else(|| panic!("{area} missing: {areas:?}"))
        };
        assert!(find("business rules").code > 500);
        assert!(find("proto definitions").code > 20);
        assert!(find("actor runtime").code > 100);
        assert_eq!(find("gRPC servers").files, 1);
        assert_eq!(
            proto_packages(&root),
            vec!["bank.v1".to_owned(), "chat.v1".to_owned()]
        );
        // Every path an area names exists: a renamed file would silently
        // count as nothing.
        let missing: Vec<&str> = AREAS
            .iter()
            .flat_map(|(_, _, paths)| paths.iter().copied())
            .filter(|p| !root.join(p).exists())
            .collect();
        assert!(
            missing.is_empty(),
            "areas name paths that do not exist: {missing:?}"
        );
    }

    #[test]
    fn every_source_file_of_the_variants_is_in_an_area() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let covered: Vec<PathBuf> = AREAS
            .iter()
            .flat_map(|(_, _, paths)| paths.iter().map(|p| root.join(p)))
            .collect();
        let mut stack = vec![
            root.join("monolith/src"),
            root.join("microlith/src"),
            root.join("microservices/src"),
        ];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("source dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    assert!(
                        covered.iter().any(|c| path.starts_with(c)),
                        "{} is in no area of cost::AREAS",
                        path.display()
                    );
                }
            }
        }
    }
}
