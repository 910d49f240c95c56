//! The microservices: the bank and the chat as separate OS processes that
//! talk tonic gRPC (and one HTTP/JSON hop), behind a gateway that serves
//! API.md with the same edge as the microlith.
//!
//! # Layout
//! - [`batch`]: the background feeds' batches (a short linger for more).
//! - [`clients`]: gRPC clients implementing the shared traits, with resilience layers.
//! - [`servers`]: gRPC servers, converting and calling the shared traits.
//! - [`deadline`]: `grpc-timeout` read by servers and honoured by clients.
//! - [`ledger`]: the HTTP/JSON ledger (read model fed by the transfers service, audit).
//! - [`launcher`]: `up`, every process of a layout as a supervised child.
//! - [`layout`]: placement by configuration (which components share a process).
//! - [`process`]: one service process: state, server, ops routes, shutdown.
//! - [`observe`]: per-method gRPC server metrics.
//! - [`trace`]: W3C `traceparent` read by every server, sent by every client.
//! - [`auth`]: signed service tokens (HS256 JWT, audience per service).
//! - [`pki`]: the private CA generated at run time, rustls configs for `--mtls`.
//! - [`resilience`]: circuit breaker (tower layer), retries with jitter and a budget.
//! - [`settlement`]: settled transfers forgotten by the accounts service
//!   behind a fence of tombstones and deadlines (bounded books, no stale step applied).
//! - [`wire`]: generated protobuf types and their conversions to the domain.
pub mod auth;
pub mod batch;
pub mod clients;
pub mod deadline;
pub mod launcher;
pub mod layout;
pub mod ledger;
pub mod observe;
pub mod pki;
pub mod process;
pub mod resilience;
pub mod servers;
pub mod settlement;
pub mod trace;
pub mod wire;
