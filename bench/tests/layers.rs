//! The architecture's layering, checked (ARCHITECTURE.md, "Architecture
//! Invariants"): the crates import one way, shared-domain ← variants ←
//! harness, and no crate has a circle among its modules. A module imports
//! another when its code (comments and tests aside) names it by
//! `crate::…` or `super::…`; a circle is what makes a crate impossible to
//! read bottom-up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every crate's source folder.
const CRATES: [&str; 9] = [
    "shared-domain/rules/src",
    "shared-domain/store/src",
    "shared-domain/edge/src",
    "shared-domain/contract/src",
    "monolith/src",
    "microlith/src",
    "microservices/src",
    "bench/src",
    "bench/support/src",
];

/// `src/a/b.rs` → `["a", "b"]`; `lib.rs` and `main.rs` are the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("a file of the crate");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.as_slice(), [only] if only == "lib" || only == "main") {
        parts.clear();
    }
    parts
}

/// The code of a file without its comments and its test module.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers following `prefix` in `code` (`crate::` → `a` of
/// `crate::a::b`).
fn names_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .filter(|(i, _)| {
            // Not the tail of a longer identifier (`my_crate::`).
            !code[..*i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .filter_map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}

/// The import graph among a crate's top-level modules.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("source folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(src, &file);
        let Some(top) = module.first().cloned() else {
            continue;
        };
        let code = code_of(&std::fs::read_to_string(&file).expect("source file"));
        let mut targets: Vec<String> = names_after(&code, "crate::")
            .into_iter()
            .map(str::to_owned)
            .collect();
        // `super::x` from `a/b.rs` is `a::x`: the same top-level module
        // unless `b.rs` is itself top-level.
        if module.len() == 1 {
            targets.extend(names_after(&code, "super::").into_iter().map(str::to_owned));
        }
        for target in targets {
            if target != top && target.chars().next().is_some_and(char::is_lowercase) {
                edges.entry(top.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// Crates whose modules import nothing from each other (so the scan
/// finds no edge there, and that is no sign of it being broken).
const FLAT: [&str; 2] = ["bench/support/src", "monolith/src"];

/// A circle through `start`, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("a path");
        for next in edges.get(last).into_iter().flatten() {
            if next == start {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_crate_has_a_circle_among_its_modules() {
    let mut circles = Vec::new();
    for krate in CRATES {
        let edges = graph(&workspace().join(krate));
        assert!(
            FLAT.contains(&krate) || !edges.is_empty(),
            "{krate}: no imports found; the scan is broken"
        );
        for module in edges.keys() {
            if let Some(found) = circle(&edges, module) {
                circles.push(format!("{krate}: {}", found.join(" → ")));
                break;
            }
        }
    }
    assert!(
        circles.is_empty(),
        "module circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_scan_finds_a_circle_when_there_is_one() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(circle(&edges, "a"), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        circle(&edges, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        names_after(
            "use crate::record::{Raw}; my_crate::x; crate::part",
            "crate::"
        ),
        vec!["record", "part"]
    );
}

/// The workspace's crates by layer, lowest first: a crate may depend only
/// on crates of lower layers (dev-dependencies too).
const LAYERS: [&[&str]; 5] = [
    &["shared-domain", "bench-support"],
    &["store", "edge"],
    &["contract"],
    &["monolith", "microlith", "microservices"],
    &["bench"],
];

#[test]
fn crates_depend_only_downwards() {
    let layer_of = |name: &str| LAYERS.iter().position(|l| l.contains(&name));
    let mut upward = Vec::new();
    let manifests = [
        ("shared-domain", "shared-domain/rules/Cargo.toml"),
        ("store", "shared-domain/store/Cargo.toml"),
        ("edge", "shared-domain/edge/Cargo.toml"),
        ("contract", "shared-domain/contract/Cargo.toml"),
        ("monolith", "monolith/Cargo.toml"),
        ("microlith", "microlith/Cargo.toml"),
        ("microservices", "microservices/Cargo.toml"),
        ("bench", "bench/Cargo.toml"),
        ("bench-support", "bench/support/Cargo.toml"),
    ];
    for (name, manifest) in manifests {
        let text = std::fs::read_to_string(workspace().join(manifest)).expect("manifest");
        let own = layer_of(name).expect("every crate has a layer");
        for line in text.lines() {
            let dependency = line.split(['.', ' ', '=']).next().unwrap_or("");
            if let Some(theirs) = layer_of(dependency)
                && dependency != name
                && theirs >= own
            {
                upward.push(format!("{name} depends on {dependency}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "dependencies that do not point down: {upward:?}"
    );
}
