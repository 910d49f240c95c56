//! What the criterion benches of every crate share (the microlith's actor
//! calls, the microservices' hops, the harness's micro-benchmarks), in a
//! crate of its own below all of them: the variants' benches depend on it,
//! not on the harness, so the layers run one way (shared-domain ← variants
//! ← harness).
//!
//! - `percall`: benches timed call by call into an HdrHistogram, so each
//!   reports percentiles beside criterion's mean estimate (feature
//!   `percall`).
//! - [`register_font`]: the bundled font for criterion's plots (and the
//!   harness's charts).

#[cfg(feature = "percall")]
pub mod percall;

/// Registers the bundled font as "sans-serif", the family plotters (and
/// criterion's plots, which share the workspace's plotters build) ask
/// for: with the `ab_glyph` backend nothing else is found, since system
/// fonts are not read.
pub fn register_font() {
    let _ = plotters::style::register_font(
        "sans-serif",
        plotters::style::FontStyle::Normal,
        dejavu::sans::regular(),
    );
}
