//! The black-box contract suite of API.md, unchanged, against the
//! microservices gateway started by `microservices up`.

mod common;

use std::sync::OnceLock;

fn base() -> String {
    static CLUSTER: OnceLock<common::Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| common::Cluster::start(false, &[])).base.clone()
}

contract::contract_tests!(base());
