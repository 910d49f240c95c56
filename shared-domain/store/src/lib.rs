//! Embedded storage owned by the components, shared by both variants.
//!
//! A component persists the changes its domain transition returned, in one
//! atomic commit, before it answers; after a crash it rebuilds its domain
//! state from the store. Two engines sit behind [`KvStore`]:
//! - [`RedbStore`]: a real embedded database (redb), every commit durable.
//! - [`MemoryStore`]: the same tables in memory, surviving an actor restart
//!   but not the process, to measure the fabric alone.
//!
//! # Layout
//! - [`kv`]: the [`KvStore`] trait, [`Storage`] (opens namespaces) and both engines.
//! - [`group`]: group commit: concurrent durable commits share one sync.
//! - `base`: what both share: a [`Write`] and a [`StoreError`].
//! - [`tables`]: typed stores per component (accounts, journal, rooms).
//! - [`codec`]: the on-disk records, converted by hand from domain types.

mod base;
pub mod codec;
pub mod group;
pub mod kv;
pub mod tables;

pub use kv::{
    CommitStats, Done, KvStore, MemoryStore, RedbStore, Storage, StorageKind, StorageMode,
    StoreError, Write,
};
pub use shared_domain::bank::JournalChange;
pub use tables::{AccountStore, ChatStore, DirectoryStore, JournalStore, RoomStore, Typed};
