//! The key-value layer: tables of byte keys and values, atomic commits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

pub use crate::base::{StoreError, Write};
use crate::group::GroupCommit;
pub use crate::group::{CommitStats, Done};
use shared_domain::FastMap;

/// A namespace of tables with atomic multi-table commits, applied in the
/// order they are handed over.
pub trait KvStore: Send + Sync {
    /// Hands `writes` over, to be applied all or none after every commit
    /// handed over before; `done` runs once they are durable (for durable
    /// engines), or with why not. See [`Done`] for where it runs.
    fn commit_then(&self, writes: Vec<Write>, done: Done);
    /// `done` runs once every commit handed over before is durable (at
    /// once when none is waiting).
    fn barrier_then(&self, done: Done) {
        self.commit_then(Vec::new(), done);
    }
    /// Applies every write or none; durable when this returns.
    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        let (done, wait) = crate::group::blocking();
        self.commit_then(writes.to_vec(), done);
        wait()
    }
    /// Returns once every commit handed over before is durable.
    fn barrier(&self) -> Result<(), StoreError> {
        let (done, wait) = crate::group::blocking();
        self.barrier_then(done);
        wait()
    }
    /// Every entry of a table in key order (empty if it never existed), as
    /// of the commits applied so far (after a [`KvStore::barrier`], every
    /// commit handed over before it).
    fn scan(&self, table: &'static str) -> Result<Entries, StoreError>;
    /// Calls `each` on every entry of a table in key order, without
    /// holding them all (for a load that keeps only some).
    fn for_each(&self, table: &'static str, each: Visit<'_>) -> Result<(), StoreError> {
        for (k, v) in self.scan(table)? {
            each(&k, &v)?;
        }
        Ok(())
    }
    /// The value at `key`, as of the commits applied so far.
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// At most `limit` entries from `start` on, in key order.
    fn range(
        &self,
        table: &'static str,
        start: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let mut entries = self.scan(table)?;
        entries.retain(|(k, _)| k.as_slice() >= start);
        entries.truncate(limit);
        Ok(entries)
    }
}

/// What [`KvStore::for_each`] calls on each entry (key, value).
pub type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError>;

/// Key-value pairs of a table, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

type Tables = HashMap<&'static str, FastMap<Vec<u8>, Vec<u8>>>;

/// Which engine a process keeps its state in, as a command line names it
/// (`--storage memory|durable`); with a directory it is a [`StorageMode`].
/// The one such choice of the workspace: both variants and the harness
/// take it (feature `clap` for their command lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum StorageKind {
    /// In memory: state survives actor restarts, not the process.
    Memory,
    /// redb files under the data directory: state survives `kill -9`.
    Durable,
}

impl StorageKind {
    /// Its name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            StorageKind::Memory => "memory",
            StorageKind::Durable => "durable",
        }
    }

    /// The engine, with `dir` for a durable store.
    pub fn mode(self, dir: &std::path::Path) -> StorageMode {
        match self {
            StorageKind::Memory => StorageMode::Memory,
            StorageKind::Durable => StorageMode::Durable(dir.to_path_buf()),
        }
    }
}

/// The most memory one database's page cache holds. redb's default (1 GiB)
/// lets a process grow with the data it wrote; the working set here (the
/// balances, the journal's recent records, the rooms' last messages) is a
/// small fraction of this, and what falls out of it is still in the
/// operating system's page cache.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Opens (or creates) a database file with a bounded page cache.
fn create(path: &Path) -> Result<redb::Database, StoreError> {
    Ok(redb::Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)?)
}

/// Which engine to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageMode {
    /// In memory: state survives actor restarts, not process restarts.
    Memory,
    /// redb files in this directory: state survives `kill -9`.
    Durable(PathBuf),
}

/// Opens namespaces (one per component instance) on one engine.
#[derive(Clone)]
pub struct Storage {
    inner: StorageInner,
}

#[derive(Clone)]
enum StorageInner {
    Memory(Arc<Mutex<HashMap<String, Arc<MemoryStore>>>>),
    Durable(Arc<redb::Database>, Arc<GroupCommit>),
}

impl Storage {
    /// Opens the engine. A durable store keeps one redb file,
    /// `<dir>/<file_name>.redb`, so each process owns its own file.
    pub fn open(mode: &StorageMode, file_name: &str) -> Result<Self, StoreError> {
        let inner = match mode {
            StorageMode::Memory => StorageInner::Memory(Arc::default()),
            StorageMode::Durable(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Engine(e.to_string()))?;
                let db = Arc::new(create(&dir.join(format!("{file_name}.redb")))?);
                StorageInner::Durable(db.clone(), Arc::new(GroupCommit::start(db)?))
            }
        };
        Ok(Self { inner })
    }

    /// Whether commits are durable.
    pub fn is_durable(&self) -> bool {
        matches!(self.inner, StorageInner::Durable(..))
    }

    /// How many commits shared how many syncs so far (`None` in memory).
    pub fn commit_stats(&self) -> Option<CommitStats> {
        match &self.inner {
            StorageInner::Memory(_) => None,
            StorageInner::Durable(_, group) => Some(group.stats()),
        }
    }

    /// The store of one namespace; the same namespace gives the same data.
    pub fn namespace(&self, name: &str) -> Arc<dyn KvStore> {
        match &self.inner {
            StorageInner::Memory(map) => map
                .lock()
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(MemoryStore::default()))
                .clone(),
            StorageInner::Durable(db, group) => Arc::new(RedbStore {
                db: db.clone(),
                group: group.clone(),
                namespace: name.into(),
            }),
        }
    }
}

/// Tables in memory behind one lock per namespace. Hash maps, not ordered
/// ones: writes are the hot path, and `scan` (on restart) sorts.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl KvStore for MemoryStore {
    /// Applied at once: `done` runs before this returns.
    fn commit_then(&self, writes: Vec<Write>, done: Done) {
        done(self.commit(&writes));
    }

    fn barrier_then(&self, done: Done) {
        done(Ok(()));
    }

    fn barrier(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut tables = self.tables.lock();
        for write in writes {
            let table = tables.entry(write.table).or_default();
            match &write.value {
                Some(value) => {
                    table.insert(write.key.clone(), value.clone());
                }
                None => {
                    table.remove(&write.key);
                }
            }
        }
        Ok(())
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tables
            .lock()
            .get(table)
            .and_then(|t| t.get(key).cloned()))
    }

    fn scan(&self, table: &'static str) -> Result<Entries, StoreError> {
        let mut entries: Entries = self
            .tables
            .lock()
            .get(table)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }
}

/// A namespace in a redb database: table `t` is `<namespace>/<t>`.
/// Commits go through the database's [`GroupCommit`]: concurrent ones
/// share a sync.
pub struct RedbStore {
    db: Arc<redb::Database>,
    group: Arc<GroupCommit>,
    namespace: Arc<str>,
}

impl RedbStore {
    fn table_name(&self, table: &str) -> String {
        format!("{}/{}", self.namespace, table)
    }

    /// Opens a standalone database file with one namespace (for tests).
    pub fn open_file(path: &Path, namespace: &str) -> Result<Self, StoreError> {
        let db = Arc::new(create(path)?);
        Ok(Self {
            group: Arc::new(GroupCommit::start(db.clone())?),
            db,
            namespace: namespace.into(),
        })
    }
}

impl KvStore for RedbStore {
    fn commit_then(&self, writes: Vec<Write>, done: Done) {
        self.group.submit(&self.namespace, writes, done);
    }

    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(table) = self.read_table(table)? else {
            return Ok(None);
        };
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    fn range(
        &self,
        table: &'static str,
        start: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let Some(table) = self.read_table(table)? else {
            return Ok(Vec::new());
        };
        table
            .range(start..)?
            .take(limit)
            .map(|entry| {
                let (k, v) = entry?;
                Ok((k.value().to_vec(), v.value().to_vec()))
            })
            .collect()
    }

    fn for_each(&self, table: &'static str, each: Visit<'_>) -> Result<(), StoreError> {
        let Some(table) = self.read_table(table)? else {
            return Ok(());
        };
        for entry in table.iter()? {
            let (k, v) = entry?;
            each(k.value(), v.value())?;
        }
        Ok(())
    }

    fn scan(&self, table: &'static str) -> Result<Entries, StoreError> {
        let mut out = Vec::new();
        self.for_each(table, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }
}

/// A table of byte keys and values, read.
type Bytes = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

impl RedbStore {
    /// A table of this namespace as of the commits applied so far, or
    /// `None` if it never existed.
    fn read_table(&self, table: &str) -> Result<Option<Bytes>, StoreError> {
        let name = self.table_name(table);
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
        let txn = self.db.begin_read()?;
        match txn.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
pub(crate) use crate::base::test_dir;

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(store: &dyn KvStore) {
        let w = |k: &[u8], v: Option<&[u8]>| Write {
            table: "t",
            key: k.to_vec(),
            value: v.map(<[u8]>::to_vec),
        };
        store
            .commit(&[w(b"b", Some(b"2")), w(b"a", Some(b"1"))])
            .expect("commit");
        store.commit(&[w(b"b", None)]).expect("commit");
        assert_eq!(
            store.scan("t").expect("scan"),
            vec![(b"a".to_vec(), b"1".to_vec())]
        );
        assert!(store.scan("never").expect("scan").is_empty());
    }

    #[test]
    fn memory_roundtrip_and_namespaces_persist() {
        let storage = Storage::open(&StorageMode::Memory, "x").expect("open");
        roundtrip(&*storage.namespace("n"));
        assert_eq!(storage.namespace("n").scan("t").expect("scan").len(), 1);
        assert!(
            storage
                .namespace("other")
                .scan("t")
                .expect("scan")
                .is_empty()
        );
    }

    #[test]
    fn redb_roundtrip_survives_reopen() {
        let dir = test_dir();
        let mode = StorageMode::Durable(dir.path().to_path_buf());
        {
            let storage = Storage::open(&mode, "db").expect("open");
            roundtrip(&*storage.namespace("n"));
        }
        let storage = Storage::open(&mode, "db").expect("reopen");
        assert_eq!(storage.namespace("n").scan("t").expect("scan").len(), 1);
    }

    #[test]
    fn concurrent_commits_share_syncs_and_every_one_survives_a_reopen() {
        let dir = test_dir();
        let mode = StorageMode::Durable(dir.path().to_path_buf());
        let (threads, each) = (8, 40);
        {
            let storage = Storage::open(&mode, "db").expect("open");
            std::thread::scope(|s| {
                for t in 0..threads {
                    let kv = storage.namespace("n");
                    s.spawn(move || {
                        for i in 0..each {
                            kv.commit(&[Write {
                                table: "t",
                                key: format!("{t}-{i}").into_bytes(),
                                value: Some(b"v".to_vec()),
                            }])
                            .expect("commit");
                        }
                    });
                }
            });
            let stats = storage.commit_stats().expect("durable");
            assert_eq!(stats.commits, threads * each);
            // Eight threads each waiting on a sync: the next one takes
            // what the others queued meanwhile.
            assert!(
                stats.syncs < stats.commits,
                "no commit shared a sync: {stats:?}"
            );
        }
        let storage = Storage::open(&mode, "db").expect("reopen");
        assert_eq!(
            storage.namespace("n").scan("t").expect("scan").len() as u64,
            threads * each
        );
    }
}
