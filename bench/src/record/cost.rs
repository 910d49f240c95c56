//! Deploy and complexity cost: code, builds, and the fabric's features under load.

use serde::{Deserialize, Serialize};

/// Everything this module measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Lines of code by area.
    pub code: Vec<CodeArea>,
    /// Versioned proto packages (`package` lines of the .proto files).
    pub proto_packages: Vec<String>,
    /// Release builds and binaries.
    pub builds: Vec<BuildCost>,
    /// The transfer load with each fabric feature on.
    pub features: Vec<FeatureCost>,
    /// Files of the private CA the microservices' `--mtls` generated
    /// (certificates and keys).
    pub pki_files: Option<u64>,
    /// Listening ports per variant (when started here).
    pub ports: Vec<(String, u64)>,
    /// What counted the lines (none: tokei, which runs before session 12
    /// used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_counter: Option<String>,
}

/// Lines of one area of the code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeArea {
    /// `both`, `microlith` or `microservices`.
    pub variant: String,
    /// What the code is for.
    pub area: String,
    /// Files counted.
    pub files: u64,
    /// Lines of code (no comments, no blanks).
    pub code: u64,
    /// Lines of comments.
    pub comments: u64,
}

/// A release build from scratch, and its binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildCost {
    /// Variant (its cargo package).
    pub variant: String,
    /// Seconds of `cargo build --release -p <variant>` in an empty target
    /// directory (none: not measured in this profile).
    pub seconds: Option<f64>,
    /// Crates compiled by that build.
    pub crates: Option<u64>,
    /// Size of the release binary, bytes.
    pub binary_bytes: u64,
}

/// One configuration under the same transfer load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureCost {
    /// Variant.
    pub variant: String,
    /// `baseline`, `tokens`, `mtls`, `mtls+tokens`, `spans logged`.
    pub config: String,
    /// Transfers per second.
    pub rate: f64,
    /// Latency from the schedule, microseconds.
    pub p50_us: f64,
    /// 99th.
    pub p99_us: f64,
    /// CPU of every process of the variant per answered request, µs.
    pub cpu_us_per_request: Option<f64>,
    /// The same by process, for a variant of several; not recorded before
    /// 2026-11-28's session 11.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_us_by_process: Vec<(String, f64)>,
    /// Answers other than 200/409.
    pub errors: u64,
    /// Span records logged per request (`spans logged` only).
    pub spans_per_request: Option<f64>,
}
/// The name of the microservices' configuration with one call per saga
/// step (`--transfer-path fine`).
pub const FINE_PATH: &str = "fine transfer path";
/// The name of the microservices' configuration with tokio's default
/// runtimes (one worker per core in every process).
pub const TOKIO_DEFAULT: &str = "tokio-default runtimes";
