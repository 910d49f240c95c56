//! Business rules of the bank and the chat, written once.
//!
//! Pure types and state transitions: no tokio, no network, no storage
//! engine, no clock (callers pass `now`). Both variants bind the service
//! traits of [`service`] to their fabric and call these transitions; neither
//! re-implements a rule.
//!
//! # Layout
//! - [`id`], [`money`]: validated newtypes of API.md's values.
//! - [`error`]: `BankError`, `ChatError`, the fabric's `CallError`, and the
//!   invariants' `Violation`.
//! - [`limits`]: the sizes API.md bounds (message text, history pages).
//! - [`bank`]: accounts, the transfer journal, the step fence and the audit.
//! - [`chat`]: rooms, posts and history.
//! - [`service`]: one trait per component (**API Boundary**).
//! - [`saga`]: the steps of one transfer across the accounts service, run
//!   over any fabric.
//! - [`session`]: a chat session's cursor (dedup and gap detection) and the
//!   loop both variants run for each subscriber.
//! - [`local`]: the components as state under one lock, with an optional
//!   persister: the reference implementations, and each microservice's core.
//! - [`known`]: the positive payee cache every fabric puts in front of its accounts.
//! - [`invariant`]: money conserved, chat gap-free, nothing acknowledged lost.
//! - [`workload`]: the deterministic, seeded workload generator.

pub mod bank;
pub mod chat;
pub mod error;
pub mod id;
pub mod invariant;
pub mod known;
pub mod limits;
pub mod local;
pub mod money;
pub mod saga;
pub mod service;
pub mod session;
pub mod workload;

pub use error::{BankError, BankResult, CallError, ChatError, ChatResult};

/// The maps of the domain state: foldhash, a fast hasher seeded per
/// process (SipHash showed up at 5% of a transfer's profile). Keys are
/// validated ids of at most 64 bytes.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The sets of the domain state (see [`FastMap`]).
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
