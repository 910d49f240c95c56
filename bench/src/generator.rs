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
    /// The profile's workload, its accounts and rooms opened on the
    /// variant at `base`, and the API client that opened them (a fault
    /// run, a chaos round and a cost run each start this way).
    pub fn prepared(
        &self,
        profile: &crate::record::Profile,
        base: &str,
    ) -> anyhow::Result<(shared_domain::workload::Workload, contract::Api)> {
        let workload = profile.workload()?;
        let api = contract::Api::new(base)?;
        self.control.block_on(requests::prepare(&api, &workload))?;
        Ok((workload, api))
    }

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
