//! Chat fan-out runs.

use serde::{Deserialize, Serialize};

/// One fan-out run, as stored in `raw.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutRecord {
    /// Variant.
    pub variant: String,
    /// Repeat number, from 0.
    pub repeat: u32,
    /// Connected subscribers.
    pub subscribers: u32,
    /// Posts per second.
    pub rate: f64,
    /// Posts answered 200/201.
    pub posts_ok: u64,
    /// Posts answered otherwise (or not at all).
    pub posts_failed: u64,
    /// Messages in the room's history after the run.
    pub messages: u64,
    /// Frames delivered to subscribers, over all of them.
    pub deliveries: u64,
    /// Messages some subscriber never received.
    pub lost: u64,
    /// Messages a subscriber received twice.
    pub duplicates: u64,
    /// Messages received before one with a lower seq.
    pub out_of_order: u64,
    /// Disconnects by the server that the subscribers resumed from.
    pub reconnects: u64,
    /// Subscriptions refused as overloaded (429 or 503) and sent again.
    #[serde(default)]
    pub refused_upgrades: u64,
    /// How long the room's history answered 503 after the run before it
    /// could be read (None: at once).
    #[serde(default)]
    pub history_wait_s: Option<f64>,
    /// Delivery latency (scheduled post → frame read), recorded part only,
    /// microseconds.
    pub p50_us: f64,
    /// 90th.
    pub p90_us: f64,
    /// 99th.
    pub p99_us: f64,
    /// 99.9th.
    pub p999_us: f64,
    /// Max.
    pub max_us: f64,
    /// The delivery-latency histogram (HdrHistogram V2, base64).
    pub histogram: String,
}

impl FanoutRecord {
    /// Whether every subscriber got every message once, in order.
    pub fn complete(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.out_of_order == 0
    }
}
