//! Business rules of the bank and the chat, written once.
//!
//! Pure types and state transitions: no tokio, no network, no storage
//! engine, no clock (callers pass `now`). Both variants bind the service
//! traits of [`service`] to their fabric and call these transitions; neither
//! re-implements a rule.
//!
//! # Layout
//! - [`id`], [`money`]: validated newtypes of API.md's values.
//! - [`error`]: `BankError`, `ChatError` and the fabric's `CallError`.
//! - [`bank`]: accounts, the transfer journal and the transfer saga.
//! - [`chat`]: rooms, posts, history and the session loop.
//! - [`service`]: one trait per component (**API Boundary**).
//! - [`memory`]: reference in-memory implementations of the traits.
//! - [`invariant`]: money conserved, chat gap-free, nothing acknowledged lost.
//! - [`workload`]: the deterministic, seeded workload generator.

pub mod bank;
pub mod chat;
pub mod error;
pub mod id;
pub mod invariant;
pub mod memory;
pub mod money;
pub mod service;
pub mod workload;

pub use error::{BankError, BankResult, CallError, ChatError, ChatResult};
