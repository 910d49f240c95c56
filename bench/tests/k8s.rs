//! The Kubernetes manifests, checked offline: kind cannot run here, so the
//! kustomize base and the kind overlay are rendered (`kubectl kustomize`)
//! and every object is validated against the Kubernetes JSON schema in
//! strict mode (unknown fields fail) by kubernetes-validate, which this test
//! installs into a virtualenv under target/ (pinned; its schemas ship in the
//! package, so validating needs no network). The images the manifests run
//! must be exactly the ones `bench images` builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use bench::images::{IMAGES, image_refs};

/// The schema version validated against: what current kind node images run.
const KUBERNETES: &str = "1.33.0";
const VALIDATOR: &str = "kubernetes-validate==1.37.0";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// The validator's virtualenv under target/tools, made once.
fn validator() -> PathBuf {
    let venv = workspace().join("target").join("tools").join("k8s-venv");
    let bin = venv.join("bin").join("kubernetes-validate");
    if !bin.exists() {
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 (for the schema validator)");
        assert!(made.success(), "python3 -m venv {} failed", venv.display());
        let pip = Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", VALIDATOR]).status().expect("pip");
        assert!(pip.success(), "pip install {VALIDATOR} failed");
    }
    bin
}

fn render(dir: &str) -> String {
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(workspace().join(dir))
        .output()
        .expect("kubectl is needed to render the manifests (`kubectl kustomize`); install kubectl");
    assert!(out.status.success(), "kubectl kustomize {dir}:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn validate(name: &str, rendered: &str) {
    let dir = workspace().join("target").join("k8s-rendered");
    std::fs::create_dir_all(&dir).expect("target dir");
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, rendered).expect("write");
    let out = Command::new(validator()).args(["--strict", "--quiet", "-k", KUBERNETES]).arg(&file).output().expect("kubernetes-validate");
    assert!(
        out.status.success(),
        "{name} does not validate against Kubernetes {KUBERNETES}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.trim_start().starts_with(needle)).count()
}

#[test]
fn the_base_and_the_kind_overlay_render_and_validate_offline() {
    for (name, dir) in [("base", "k8s/base"), ("kind", "k8s/overlays/kind")] {
        let rendered = render(dir);
        validate(name, &rendered);
        // Every image the build makes, and nothing else, runs.
        let mut used = image_refs(&rendered);
        used.sort();
        let mut built: Vec<String> = IMAGES.iter().map(|i| i.reference()).collect();
        built.sort();
        assert_eq!(used, built, "{dir}: images");
        // Every Deployment: probes, limits, non-root, read-only root,
        // and a disruption budget and a Service of its own.
        let deployments = count(&rendered, "kind: Deployment");
        assert_eq!(deployments, IMAGES.len(), "{dir}");
        for needle in ["readinessProbe:", "livenessProbe:", "limits:", "runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false"] {
            assert_eq!(count(&rendered, needle), deployments, "{dir}: {needle}");
        }
        assert_eq!(count(&rendered, "kind: PodDisruptionBudget"), deployments, "{dir}");
        assert_eq!(count(&rendered, "kind: Service"), deployments, "{dir}");
        // Ingress is denied by default and opened per caller.
        assert!(rendered.contains("name: default-deny-ingress"), "{dir}");
        assert_eq!(count(&rendered, "kind: NetworkPolicy"), 6, "{dir}");
    }
    let kind = render("k8s/overlays/kind");
    assert!(kind.contains("pod-security.kubernetes.io/enforce: restricted"));
    for port in ["nodePort: 30080", "nodePort: 30081"] {
        assert!(kind.contains(port), "{port}");
    }
    let config = std::fs::read_to_string(workspace().join("k8s/kind-config.yaml")).expect("kind config");
    for port in ["containerPort: 30080", "containerPort: 30081"] {
        assert!(config.contains(port), "kind-config.yaml maps {port}");
    }
}

#[test]
fn the_deploy_script_parses_and_loads_every_image() {
    let script = workspace().join("k8s/deploy-kind.sh");
    let ok = Command::new("bash").arg("-n").arg(&script).status().expect("bash");
    assert!(ok.success(), "bash -n {}", script.display());
    let text = std::fs::read_to_string(&script).expect("script");
    for step in ["bench -- images", "kind create cluster", "kind load docker-image", "kubectl", "apply -k k8s/overlays/kind", "rollout status"] {
        assert!(text.contains(step), "the script must {step}");
    }
}
