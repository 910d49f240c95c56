//! The comparison harness (issue 4, being built) and what the criterion
//! benches of both variants share.
//!
//! # Layout
//! - [`load`]: the open-loop load generator (latency from the schedule,
//!   so coordinated omission cannot hide a stall).
//! - [`percall`]: criterion benches timed call by call into an
//!   HdrHistogram, so each bench reports percentiles beside criterion's
//!   mean estimate.

pub mod load;
pub mod percall;
