//! The parts of a comparison. Each measures against running systems and
//! returns records; none writes files or renders.

pub mod breakdown;
pub mod cost;
pub mod cross_check;
pub mod fanout;
pub mod faults;
pub mod hop;
pub mod lag;
pub mod latency;
pub mod overload;
pub mod rss;
pub mod slow;
