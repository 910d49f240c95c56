//! A small supervised-actor runtime on tokio.
//!
//! Shared-nothing actors own their state and handle one message at a time
//! from a bounded mailbox; callers `call` (with a deadline) or `cast`.
//! Supervisors restart failed children by strategy and intensity, as in
//! Erlang/OTP. Why a runtime of our own rather than ractor or kameo is
//! measured in microlith/README.md.
//!
//! # Layout
//! - [`actor`]: the [`Actor`] trait, [`ActorRef`], call and cast.
//! - `cell`: one actor's state shared by its task and its refs (the direct hand-off).
//! - [`supervisor`]: [`Supervisor`], [`Strategy`], [`Intensity`], child lifecycles.

pub mod actor;
mod cell;
pub mod supervisor;

pub use actor::{Actor, ActorRef, Monitor, Reply, StartError};
pub use supervisor::{
    ChildSpec, Intensity, Strategy, Supervisor, SupervisorEvent, SupervisorHandle,
};

#[cfg(test)]
mod tests;
