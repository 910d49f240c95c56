//! Images and deployment files (under `--deploy compose`).

use serde::{Deserialize, Serialize};

/// Under compose, the name of a run's CPU group (`cpu_us_by_process`)
/// that is the published port's userland proxy, Docker's `docker-proxy`:
/// a host process outside the containers that carries every connection
/// from loopback into the one the port is published from.
pub const PUBLISHED_PORT_PROXY: &str = "docker-proxy";

/// What one image cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// Its name.
    pub name: String,
    /// `mvm/<name>:local`.
    pub reference: String,
    /// Its size as the engine reports it, bytes.
    pub bytes: u64,
    /// The static binary inside, bytes.
    pub binary_bytes: u64,
    /// `docker build` of it, seconds (the binaries already built).
    pub build_s: f64,
}

/// What `bench images` built.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImagesRecord {
    /// The static release build of both binaries, seconds (incremental:
    /// as long as the build took this time, not from scratch).
    pub cargo_build_s: f64,
    /// Every image.
    pub images: Vec<ImageRecord>,
}

/// What running in containers takes: the images, and the deployment
/// files of each variant with their lines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Containers {
    /// The images as built for this run.
    pub images: ImagesRecord,
    /// (variant, file relative to the workspace, non-blank non-comment lines).
    pub files: Vec<(String, String, u64)>,
}
