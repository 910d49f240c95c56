//! The black-box contract suite of API.md against the microlith, over a
//! real socket on 127.0.0.1:0.

mod common;

use std::sync::OnceLock;

fn base() -> String {
    static SERVER: OnceLock<common::Server> = OnceLock::new();
    SERVER
        .get_or_init(|| common::Server::start(common::config(store::StorageMode::Memory, false)))
        .base
        .clone()
}

contract::contract_tests!(base());

/// Fault injection is off unless asked for.
#[tokio::test]
async fn admin_routes_are_off_by_default() -> anyhow::Result<()> {
    let api = contract::Api::new(&base())?.resending_overload(contract::OVERLOAD_RESENDS);
    api.post_text("/admin/crash/account-0", "{}")
        .await?
        .expect_error(404, "not_found")?;
    api.get("/admin/targets")
        .await?
        .expect_error(404, "not_found")?;
    Ok(())
}

/// A sampled request is answered with its actor calls' timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_requests_answer_their_timing() -> anyhow::Result<()> {
    contract::timing::sampled_requests_answer_their_timing(
        &contract::Api::new(&base())?.resending_overload(contract::OVERLOAD_RESENDS),
        "ask.",
        "handle.",
    )
    .await
}
