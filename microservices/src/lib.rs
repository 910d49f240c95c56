//! The microservices: the bank and the chat as separate OS processes that
//! talk tonic gRPC (and one HTTP/JSON hop), behind a gateway that serves
//! API.md with the same edge as the microlith.
//!
//! # Layout
//! - [`resilience`]: circuit breaker (tower layer), retries with jitter and a budget.
//! - [`wire`]: generated protobuf types and their conversions to the domain.
pub mod wire;
pub mod resilience;
