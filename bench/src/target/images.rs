//! Container images: static musl binaries in `FROM scratch` images, one
//! per microservice and one for the microlith, built by `bench images`.
//!
//! The image list lives here once: the Dockerfiles are generated from it,
//! the compose files and the k8s manifests are checked against it (tests),
//! and the harness records each image's size and build time for the
//! report's deploy cost. No registry is needed: images are built into the
//! local Docker Engine (and `kind load`ed by the k8s deploy script).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::record::{ImageRecord, ImagesRecord};
use crate::target::build::ok;
use anyhow::{Context, bail};

/// The target of the static binaries.
pub const TARGET: &str = "x86_64-unknown-linux-musl";
/// Every image is `mvm/<name>:local`.
pub const PREFIX: &str = "mvm";
/// The tag the build gives and the manifests use.
pub const TAG: &str = "local";
/// The unprivileged user the images run as (no /etc/passwd in scratch).
pub const USER: u32 = 10001;

/// One image: which binary, how it starts, where it listens, its probe.
#[derive(Debug, Clone, Copy)]
pub struct Image {
    /// Image (and compose service, k8s Deployment) name.
    pub name: &'static str,
    /// The binary it carries.
    pub binary: &'static str,
    /// Arguments after the binary.
    pub args: &'static [&'static str],
    /// The port it listens on inside the container.
    pub port: u16,
    /// Its health path (`/readyz` at an edge, `/healthz` otherwise).
    pub health: &'static str,
}

/// Every image the build produces.
pub const IMAGES: [Image; 7] = [
    Image {
        name: "monolith",
        binary: "monolith",
        args: &[],
        port: 8080,
        health: "/readyz",
    },
    // Process 1 is the microlith's own init (`--init`): it runs the
    // microlith as its child and upgrades it in place on SIGHUP.
    Image {
        name: "microlith",
        binary: "microlith",
        args: &["--init"],
        port: 8080,
        health: "/readyz",
    },
    Image {
        name: "accounts",
        binary: "microservices",
        args: &["serve", "accounts"],
        port: 7001,
        health: "/healthz",
    },
    Image {
        name: "transfers",
        binary: "microservices",
        args: &["serve", "transfers"],
        port: 7002,
        health: "/healthz",
    },
    Image {
        name: "ledger",
        binary: "microservices",
        args: &["serve", "ledger"],
        port: 7003,
        health: "/healthz",
    },
    Image {
        name: "chat",
        binary: "microservices",
        args: &["serve", "chat"],
        port: 7004,
        health: "/healthz",
    },
    Image {
        name: "gateway",
        binary: "microservices",
        args: &["serve", "gateway"],
        port: 8080,
        health: "/readyz",
    },
];

impl Image {
    /// The environment baked in: where it listens, durable storage under
    /// /data (a volume), as both binaries name them.
    pub fn env(&self) -> Vec<(String, String)> {
        let (listen, prefix) = match self.binary {
            "monolith" => ("MONOLITH_LISTEN", "MONOLITH"),
            "microlith" => ("MICROLITH_LISTEN", "MICROLITH"),
            _ => ("MICROSERVICES_SERVICE_LISTEN", "MICROSERVICES"),
        };
        vec![
            (listen.to_owned(), format!("0.0.0.0:{}", self.port)),
            (format!("{prefix}_STORAGE"), "durable".to_owned()),
            (format!("{prefix}_DATA_DIR"), "/data".to_owned()),
        ]
    }

    /// `mvm/<name>:local`.
    pub fn reference(&self) -> String {
        format!("{PREFIX}/{}:{TAG}", self.name)
    }

    /// The image's health check command (exec form: no shell in scratch).
    pub fn probe(&self) -> Vec<String> {
        let url = format!("http://127.0.0.1:{}{}", self.port, self.health);
        let mut cmd = vec![format!("/{}", self.binary)];
        if self.binary == "microlith" || self.binary == "monolith" {
            cmd.extend(["--probe".to_owned(), url]);
        } else {
            cmd.extend(["probe".to_owned(), url]);
        }
        cmd
    }

    /// Its Dockerfile: the static binary, an empty /data owned by the
    /// unprivileged user, nothing else. The health check runs every
    /// second while the container starts and every 10 s after: each check
    /// is an exec through the engine, and with a check every 2 s the idle
    /// deployments beside a measured one (seven containers) tripled its
    /// p99 at 2 000 transfers/s on a 2-core VM (session 22's note).
    pub fn dockerfile(&self) -> String {
        let quote = |parts: &[String]| {
            parts
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut entry = vec![format!("/{}", self.binary)];
        entry.extend(self.args.iter().map(|a| (*a).to_owned()));
        let env = self
            .env()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" \\\n    ");
        format!(
            "# Generated by `bench images` from bench/src/images.rs; edit that, not this.\n\
             FROM scratch\n\
             COPY --chown={USER}:{USER} data /data\n\
             COPY {bin} /{bin}\n\
             USER {USER}:{USER}\n\
             ENV {env}\n\
             EXPOSE {port}\n\
             VOLUME /data\n\
             HEALTHCHECK --interval=10s --timeout=2s --start-period=20s --start-interval=1s --retries=3 CMD [{probe}]\n\
             ENTRYPOINT [{entry}]\n",
            bin = self.binary,
            port = self.port,
            probe = quote(&self.probe()),
            entry = quote(&entry),
        )
    }
}

/// The variant an image belongs to: the one-process variants have an
/// image of their own name, every other image is a microservice.
pub fn variant_of(image: &str) -> &'static str {
    match image {
        "monolith" => "monolith",
        "microlith" => "microlith",
        _ => "microservices",
    }
}

/// The deployment files of each variant (compose file, Kubernetes
/// manifests), with their lines that are neither blank nor comments. The
/// NetworkPolicies count for the microservices: all but one of them
/// (the edges' ingress, shared with the microlith) are its calls.
pub fn deployment_files(workspace: &Path) -> Vec<(String, String, u64)> {
    const FILES: [(&str, &str); 7] = [
        ("monolith", "monolith/compose.yml"),
        ("microlith", "microlith/compose.yml"),
        ("microlith", "k8s/base/microlith.yaml"),
        ("microservices", "microservices/compose.yml"),
        ("microservices", "k8s/base/microservices.yaml"),
        ("microservices", "k8s/base/policies.yaml"),
        ("microservices", "k8s/components/mtls/kustomization.yaml"),
    ];
    FILES
        .iter()
        .filter_map(|(variant, rel)| {
            let text = std::fs::read_to_string(workspace.join(rel)).ok()?;
            let lines = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .count() as u64;
            Some(((*variant).to_owned(), (*rel).to_owned(), lines))
        })
        .collect()
}

/// The `image:` values of a YAML file (compose file or k8s manifests).
pub fn image_refs(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("image:")
                .map(|v| v.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// Where the build contexts and `images.json` go.
pub fn images_dir(workspace: &Path) -> PathBuf {
    workspace.join("target").join("images")
}

/// Makes sure the musl target, a musl C compiler (for ring) and Docker
/// are there, installing the first two if it can; fails loudly if not.
pub fn ensure_toolchain() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (the Rust toolchain installer) to add the musl target")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == TARGET)
    {
        eprintln!("adding the Rust target {TARGET} (rustup target add)...");
        if !Command::new("rustup")
            .args(["target", "add", TARGET])
            .status()
            .is_ok_and(|s| s.success())
        {
            bail!("`rustup target add {TARGET}` failed; the images need static musl binaries");
        }
    }
    if !ok(Command::new("musl-gcc").arg("--version")) {
        let root = rustix::process::geteuid().is_root();
        if root && ok(Command::new("apt-get").arg("--version")) {
            eprintln!("installing Debian's musl-tools (musl-gcc, for ring's C code)...");
            if !Command::new("apt-get")
                .args(["install", "-y", "musl-tools"])
                .status()
                .is_ok_and(|s| s.success())
            {
                bail!(
                    "`apt-get install -y musl-tools` failed; ring needs musl-gcc to build for {TARGET}"
                );
            }
        } else {
            bail!(
                "musl-gcc is missing: install Debian's musl-tools (`sudo apt-get install musl-tools`), which ring needs to build for {TARGET}"
            );
        }
    }
    if !ok(Command::new("docker").arg("version")) {
        bail!("`docker version` failed: the images need a running Docker Engine");
    }
    Ok(())
}

/// Builds the static binaries and every image; writes and returns the
/// record (`target/images/images.json`).
pub fn build_all(workspace: &Path, mut progress: impl FnMut(&str)) -> anyhow::Result<ImagesRecord> {
    ensure_toolchain()?;
    progress("static release binaries (cargo, musl)");
    let started = Instant::now();
    let status = crate::target::build::cargo()
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--bin",
            "monolith",
            "--bin",
            "microlith",
            "--bin",
            "microservices",
        ])
        .env(format!("CC_{}", TARGET.replace('-', "_")), "musl-gcc")
        // Images carry no debug info and no symbols.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .status()
        .context("running cargo build for the images")?;
    if !status.success() {
        bail!("cargo build --release --target {TARGET} failed: {status}");
    }
    let cargo_build_s = started.elapsed().as_secs_f64();
    let bins = workspace.join("target").join(TARGET).join("release");
    let root = images_dir(workspace);
    let mut images = Vec::new();
    for image in IMAGES {
        progress(&format!("image {}", image.reference()));
        let context = root.join(image.name);
        if context.exists() {
            std::fs::remove_dir_all(&context)?;
        }
        std::fs::create_dir_all(context.join("data"))?;
        let binary = bins.join(image.binary);
        std::fs::hard_link(&binary, context.join(image.binary))
            .or_else(|_| std::fs::copy(&binary, context.join(image.binary)).map(|_| ()))
            .with_context(|| format!("copying {}", binary.display()))?;
        std::fs::write(context.join("Dockerfile"), image.dockerfile())?;
        let started = Instant::now();
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &image.reference()])
            .arg(&context)
            .output()
            .context("running docker build")?;
        if !out.status.success() {
            bail!(
                "docker build of {} failed:\n{}",
                image.reference(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let build_s = started.elapsed().as_secs_f64();
        let size = Command::new("docker")
            .args(["image", "inspect", "-f", "{{.Size}}", &image.reference()])
            .output()?;
        images.push(ImageRecord {
            name: image.name.to_owned(),
            reference: image.reference(),
            bytes: String::from_utf8_lossy(&size.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            binary_bytes: std::fs::metadata(&binary)?.len(),
            build_s,
        });
    }
    let record = ImagesRecord {
        cargo_build_s,
        images,
    };
    std::fs::write(
        root.join("images.json"),
        serde_json::to_vec_pretty(&record)?,
    )?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_image_runs_unprivileged_from_scratch_and_probes_itself() {
        for image in IMAGES {
            let file = image.dockerfile();
            assert!(file.contains("\nFROM scratch\n"), "{file}");
            assert!(file.contains(&format!("\nUSER {USER}:{USER}\n")), "{file}");
            assert!(file.contains(&format!("EXPOSE {}", image.port)), "{file}");
            // Exec form only: there is no shell to run a string.
            let health = file
                .lines()
                .find(|l| l.starts_with("HEALTHCHECK"))
                .expect("a health check");
            assert!(
                health.contains(&format!("CMD [\"/{}\", ", image.binary)),
                "{health}"
            );
            assert!(
                health.contains(&format!("http://127.0.0.1:{}{}", image.port, image.health)),
                "{health}"
            );
            let env = image.env();
            let listen = env
                .iter()
                .find(|(k, _)| k.ends_with("LISTEN"))
                .expect("a listen address");
            assert_eq!(listen.1, format!("0.0.0.0:{}", image.port));
        }
        let names: Vec<&str> = IMAGES.iter().map(|i| i.name).collect();
        assert_eq!(
            names,
            [
                "monolith",
                "microlith",
                "accounts",
                "transfers",
                "ledger",
                "chat",
                "gateway"
            ]
        );
        assert_eq!(IMAGES[2].args, ["serve", "accounts"]);
        assert_eq!(IMAGES[6].args, ["serve", "gateway"]);
        assert_eq!(IMAGES[6].reference(), "mvm/gateway:local");
    }

    #[test]
    fn the_compose_files_run_exactly_the_images_the_build_produces() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace");
        let mut used = Vec::new();
        for variant in ["monolith", "microlith", "microservices"] {
            let text = std::fs::read_to_string(workspace.join(variant).join("compose.yml"))
                .expect("compose file");
            for r in image_refs(&text) {
                let image = IMAGES
                    .iter()
                    .find(|i| i.reference() == r)
                    .unwrap_or_else(|| {
                        panic!(
                            "{variant}/compose.yml runs {r}, which `bench images` does not build"
                        )
                    });
                assert_eq!(
                    variant_of(image.name),
                    variant,
                    "{r} in {variant}/compose.yml"
                );
                used.push(r);
            }
        }
        used.sort();
        let mut built: Vec<String> = IMAGES.iter().map(Image::reference).collect();
        built.sort();
        assert_eq!(used, built, "every image is deployed once");
        let files = deployment_files(workspace);
        assert_eq!(files.len(), 7, "every deployment file is there: {files:?}");
        assert!(files.iter().all(|f| f.2 > 5), "{files:?}");
        for variant in ["microlith", "microservices"] {
            assert!(
                files
                    .iter()
                    .any(|f| f.0 == variant && f.1.starts_with("k8s/")),
                "{variant}'s Kubernetes manifests are counted"
            );
        }
    }
}
