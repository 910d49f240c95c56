//! The black-box contract suite of API.md, unchanged, against the
//! microservices gateway started by `microservices up`.

mod common;

use std::sync::OnceLock;

fn base() -> String {
    static CLUSTER: OnceLock<common::Cluster> = OnceLock::new();
    // Timing on: only requests that ask for it (sampled) are timed.
    CLUSTER
        .get_or_init(|| common::Cluster::start(false, &["--server-timing"]))
        .base
        .clone()
}

contract::contract_tests!(base());

/// A sampled request is answered with every hop's timing, each service's
/// own nested under its caller's call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_requests_answer_their_timing() -> anyhow::Result<()> {
    contract::timing::sampled_requests_answer_their_timing(
        &contract::Api::new(&base())?.resending_overload(contract::OVERLOAD_RESENDS),
        "call.",
        "serve.",
    )
    .await
}

/// The bank's cases again with `--transfer-path fine`: one call per saga
/// step instead of one per transfer. Both paths must serve API.md alike.
mod fine_transfer_path {
    use super::common;
    use std::sync::OnceLock;

    fn base() -> String {
        static CLUSTER: OnceLock<common::Cluster> = OnceLock::new();
        CLUSTER
            .get_or_init(|| common::Cluster::start(false, &["--transfer-path", "fine"]))
            .base
            .clone()
    }

    contract::contract_tests!(@cases base();
        transfer_happy_path_and_idempotency,
        transfer_errors_and_precedence,
        concurrent_transfers_conserve_money,
    );
}
