//! The black-box contract suite of API.md.
//!
//! Every case drives a running edge by base URL only, so the same cases run
//! against the microlith and the microservices gateway. Each case uses ids
//! with a fresh prefix, so cases can share one server and run in parallel.
//! Cases that stress the system end with the invariant checks of
//! `shared_domain::invariant`.
//!
//! Use [`contract_tests!`] to generate one `#[tokio::test]` per case.

pub mod binary;
pub mod cases;
pub mod client;
pub mod faults;
pub mod timing;
pub mod ws;

pub use client::Api;

/// How often a case sends a request refused with 429 `overloaded` again
/// before the refusal is its answer (about 10 s of pauses): the cases
/// share one edge, and a refusal under their load is no failure of the
/// contract (see [`Api::resending_overload`]).
pub const OVERLOAD_RESENDS: u32 = 45;

/// Generates one test per contract case. `$base` is an expression giving
/// the base URL (`String`) of a running edge.
#[macro_export]
macro_rules! contract_tests {
    ($base:expr) => {
        $crate::contract_tests!(@cases $base;
            accounts_happy_path,
            account_bad_inputs,
            transfer_happy_path_and_idempotency,
            transfer_errors_and_precedence,
            concurrent_transfers_conserve_money,
            rooms_and_posts,
            history_queries,
            concurrent_posts_are_gap_free,
            websocket_replay_live_and_post,
            websocket_handshake_errors,
            websocket_slow_reader_is_disconnected_and_resumes,
            operations_routes,
            unknown_routes_and_methods,
            slow_and_abandoned_clients_do_not_hold_up_others,
        );
    };
    (@cases $base:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() -> anyhow::Result<()> {
                let base: String = $base;
                $crate::cases::$case(
                    &$crate::Api::new(&base)?.resending_overload($crate::OVERLOAD_RESENDS),
                )
                .await
            }
        )*
    };
}
