//! The containers section (under `--deploy compose`).

use std::fmt::Write as _;

use crate::output::mib;
use crate::record::{Raw, ReplicaRecord};

/// Images, their bytes and build times, the deployment files and the
/// cold start of each variant in containers.
pub(super) fn render(raw: &Raw, md: &mut String) {
    let Some(c) = &raw.containers else { return };
    let _ = writeln!(md, "\n## Containers\n");
    let _ = writeln!(
        md,
        "Static musl release binaries in `FROM scratch` images, built by `bench images` (the static build took {:.0} s this run, incremental). \
         Start to ready in the table above is the cold start of the whole variant: from `compose up` to the first ready answer at its edge.\n",
        c.images.cargo_build_s
    );
    let _ = writeln!(md, "| image | variant | bytes | binary | docker build |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let mut totals: Vec<(&str, u64, u64)> = Vec::new();
    for i in &c.images.images {
        let variant = crate::target::images::variant_of(&i.name);
        let _ = writeln!(
            md,
            "| `{}` | {variant} | {} | {} | {:.1} s |",
            i.reference,
            mb(i.bytes),
            mb(i.binary_bytes),
            i.build_s
        );
        match totals.iter_mut().find(|t| t.0 == variant) {
            Some(t) => {
                t.1 += 1;
                t.2 += i.bytes;
            }
            None => totals.push((variant, 1, i.bytes)),
        }
    }
    let _ = writeln!(md);
    for (variant, images, bytes) in totals {
        let files: Vec<String> = c
            .files
            .iter()
            .filter(|f| f.0 == variant)
            .map(|f| format!("`{}` ({} lines)", f.1, f.2))
            .collect();
        let _ = writeln!(
            md,
            "- {variant}: {images} image(s), {} in all; deployed by {}.",
            mb(bytes),
            if files.is_empty() {
                "–".to_owned()
            } else {
                files.join(", ")
            }
        );
    }
    // Each container: its own start (the engine's clock, from its
    // process starting to its announcing that it serves) and its memory.
    let replicas: Vec<(&str, &ReplicaRecord)> = raw
        .variants
        .iter()
        .flat_map(|v| v.replicas.iter().map(move |r| (v.name.as_str(), r)))
        .collect();
    if !replicas.is_empty() {
        let _ = writeln!(
            md,
            "\nPer container: start to listening is the Docker engine's time from starting the container's process to the process announcing \
             that it serves (state loaded, socket bound; its first `listening` line on stdout), RSS that of its process once ready and after the load.\n"
        );
        let _ = writeln!(
            md,
            "| variant | container | start to listening | RSS ready | RSS after load |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|");
        for (variant, r) in &replicas {
            let ms = r
                .start_to_listening_ms
                .map_or("–".to_owned(), |ms| format!("{ms:.0} ms"));
            let _ = writeln!(
                md,
                "| {variant} | {} | {ms} | {} | {} |",
                r.service,
                mib(r.rss_idle_bytes),
                mib(r.rss_loaded_bytes)
            );
        }
        let _ = writeln!(md);
        for v in raw.variants.iter().filter(|v| !v.replicas.is_empty()) {
            let n = v.replicas.len();
            let idle: u64 = v.replicas.iter().filter_map(|r| r.rss_idle_bytes).sum();
            let slowest = v
                .replicas
                .iter()
                .filter_map(|r| r.start_to_listening_ms)
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
            let _ = writeln!(
                md,
                "- {}: {n} container(s), {} resident once ready ({} per container on average); slowest start to listening {}.",
                v.name,
                mib(Some(idle)),
                mib(Some(idle / n as u64)),
                slowest.map_or("–".to_owned(), |ms| format!("{ms:.0} ms"))
            );
        }
    }
}
