//! The load: what sends requests and times them, and the runtimes it
//! runs on.

pub mod client;
pub mod closed;
pub mod echo;
pub mod load;
pub mod requests;
pub mod wrk;

/// The harness's two runtimes: one worker for the generator's clients
/// (so its cost is one core's share, measured at the floor), one for
/// control (starting, auditing, injecting faults).
pub struct Runtimes {
    /// Runs the load generator's requests.
    pub client: tokio::runtime::Runtime,
    /// Runs everything else.
    pub control: tokio::runtime::Runtime,
}

impl Runtimes {
    /// Both, one worker each.
    pub fn new() -> anyhow::Result<Self> {
        let one = || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
        };
        Ok(Self {
            client: one()?,
            control: one()?,
        })
    }
}
