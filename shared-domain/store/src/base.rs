//! What every layer of the store shares: a write and a storage failure.

/// A storage failure. Components treat it as fatal for the current call
/// (the caller gets an error, nothing is acknowledged).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database engine failed.
    #[error("database: {0}")]
    Engine(String),
    /// A stored record could not be decoded.
    #[error("corrupt record in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: String,
        /// What was wrong.
        reason: String,
    },
}

macro_rules! engine_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Engine(e.to_string())
            }
        }
    )*};
}
engine_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<shared_domain::error::Violation> for StoreError {
    fn from(v: shared_domain::error::Violation) -> Self {
        StoreError::Corrupt {
            table: "messages".into(),
            reason: v.to_string(),
        }
    }
}

/// One write of a commit: put `value` at `key`, or delete `key` (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The table, within the store's namespace.
    pub table: &'static str,
    /// The key.
    pub key: Vec<u8>,
    /// The value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

/// A fresh directory for a test, inside the workspace's `target/` (tests
/// write nothing outside the project tree); removed when dropped.
#[cfg(test)]
pub(crate) fn test_dir() -> tempfile::TempDir {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tmp");
    std::fs::create_dir_all(&root).expect("create target/test-tmp");
    tempfile::tempdir_in(root).expect("tempdir")
}
