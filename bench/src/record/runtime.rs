//! How the variants' tokio runtimes were sized to the core budget.

use serde::{Deserialize, Serialize};

/// How the microservices' runtimes are sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Sizing {
    /// The cores split evenly among the service processes, at least one
    /// worker each.
    Sized,
    /// Tokio's default: one worker per core in every process.
    TokioDefault,
}

impl Sizing {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Sizing::Sized => "sized",
            Sizing::TokioDefault => "tokio-default",
        }
    }
}

/// One process's runtime, as `env.json` records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRuntime {
    /// `microlith` or `microservices`.
    pub variant: String,
    /// The process (`microlith`, `gateway`, …, `launcher`).
    pub process: String,
    /// Its tokio worker threads.
    pub workers: usize,
}
