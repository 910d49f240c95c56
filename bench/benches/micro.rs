//! Micro-benchmarks of what a request costs besides the fabric: the
//! serialization each variant does at its edge and on its hops, and the
//! storage both variants share.
//!
//! - `serialization`: a transfer as the HTTP edge reads it (JSON → checked
//!   domain request) and answers it (record → JSON), against the same
//!   transfer as a gRPC hop encodes and decodes it (domain → protobuf bytes
//!   → checked domain request), and an account step, the hop the
//!   microservices' saga makes twice per transfer.
//! - `storage`: the commits of one transfer's changes (journal begin, two
//!   account steps, journal resolve) in the durable store (redb, one fsync
//!   per commit) and in memory, then the group commit the actors do: 64
//!   steps in one commit. The files live under target/ (`CARGO_TARGET_TMPDIR`).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;

use microservices::wire::{self, pb};
use shared_domain::bank::{
    AccountBook, AccountStep, Begin, JournalChange, StepKind, TransferBook, TransferRequest,
    TransferStatus,
};
use shared_domain::id::{AccountId, TransferId};
use shared_domain::money::{Amount, OpeningBalance};
use store::{AccountStore, JournalStore, Storage, StorageMode, Typed};

fn request(n: u64) -> TransferRequest {
    TransferRequest::new(
        TransferId::new(&format!("t-{n:012}")).expect("id"),
        AccountId::new("alice-0001").expect("id"),
        AccountId::new("bob-0002").expect("id"),
        Amount::new(12_345).expect("amount"),
    )
    .expect("request")
}

fn serialization(c: &mut Criterion) {
    bench::output::charts::register_font();
    let mut group = c.benchmark_group("serialization");
    let json =
        br#"{"transfer_id":"t-000000000042","from":"alice-0001","to":"bob-0002","amount":12345}"#;
    let req = request(42);
    let record = shared_domain::bank::TransferRecord {
        request: req.clone(),
        status: TransferStatus::Committed,
    };
    let proto = wire::transfer_to_wire(&req).encode_to_vec();
    let step = AccountStep {
        transfer_id: req.transfer_id.clone(),
        kind: StepKind::Debit,
        account: req.from.clone(),
        amount: req.amount,
    };
    let step_proto = wire::step_to_wire(&step).encode_to_vec();
    println!(
        "sizes: transfer as JSON {} B, as protobuf {} B; account step as protobuf {} B",
        json.len(),
        proto.len(),
        step_proto.len()
    );

    group.throughput(Throughput::Elements(1));
    group.bench_function("http_json_parse_transfer", |b| {
        b.iter(|| edge::bank::parse_transfer(std::hint::black_box(json)).expect("valid"))
    });
    group.bench_function("http_json_render_record", |b| {
        b.iter(|| {
            serde_json::to_vec(&edge::bank::record_json(std::hint::black_box(&record)))
                .expect("json")
        })
    });
    group.bench_function("grpc_proto_encode_transfer", |b| {
        b.iter(|| wire::transfer_to_wire(std::hint::black_box(&req)).encode_to_vec())
    });
    group.bench_function("grpc_proto_decode_transfer", |b| {
        b.iter(|| {
            let wire_req =
                pb::bank::TransferRequest::decode(std::hint::black_box(proto.as_slice()))
                    .expect("decode");
            wire::transfer_from_wire(&wire_req).expect("valid")
        })
    });
    group.bench_function("grpc_proto_step_roundtrip", |b| {
        b.iter(|| {
            let bytes = wire::step_to_wire(std::hint::black_box(&step)).encode_to_vec();
            let decoded = pb::bank::ApplyStepRequest::decode(bytes.as_slice()).expect("decode");
            wire::step_from_wire(&decoded).expect("valid")
        })
    });
    group.finish();
}

/// A store with two accounts and a journal, and the changes of one
/// transfer, made by the domain as the components make them.
struct Shard {
    accounts: AccountStore,
    journal: JournalStore,
    book: AccountBook,
    transfers: TransferBook,
}

impl Shard {
    fn open(storage: &Storage) -> Shard {
        let accounts = AccountStore::new(storage.namespace("accounts"));
        let journal = JournalStore::new(storage.namespace("journal"));
        let mut book = AccountBook::new();
        for name in ["alice-0001", "bob-0002"] {
            let change = book
                .open(
                    AccountId::new(name).expect("id"),
                    OpeningBalance::new(i128::from(shared_domain::money::MAX_AMOUNT)).expect("ok"),
                )
                .expect("open");
            accounts.persist(&[change]).expect("persist");
        }
        Shard {
            accounts,
            journal,
            book,
            transfers: TransferBook::new(),
        }
    }

    /// One transfer, each component committing its own change as it would
    /// with nothing else in its batch: four commits.
    fn transfer(&mut self, n: u64) {
        let req = request(n);
        let Ok(Begin::Started(record)) = self.transfers.begin(req.clone()) else {
            panic!("a fresh id")
        };
        self.journal
            .persist(&[JournalChange::Put(record)])
            .expect("commit");
        for (kind, account) in [(StepKind::Debit, &req.from), (StepKind::Credit, &req.to)] {
            let step = AccountStep {
                transfer_id: req.transfer_id.clone(),
                kind,
                account: account.clone(),
                amount: req.amount,
            };
            let (_, change) = self.book.apply(&step).expect("known account");
            self.accounts
                .persist(&change.into_iter().collect::<Vec<_>>())
                .expect("commit");
        }
        let (record, _) = self
            .transfers
            .resolve(&req.transfer_id, TransferStatus::Committed)
            .expect("begun");
        self.journal
            .persist(&[JournalChange::Put(record)])
            .expect("commit");
    }

    /// 64 debits in one commit (an account shard's batch under load).
    fn group_commit(&mut self, first: u64) {
        let changes: Vec<_> = (first..first + 64)
            .filter_map(|n| {
                let step = AccountStep {
                    transfer_id: request(n).transfer_id,
                    kind: StepKind::Debit,
                    account: AccountId::new("alice-0001").expect("id"),
                    amount: Amount::new(1).expect("amount"),
                };
                self.book.apply(&step).expect("known account").1
            })
            .collect();
        self.accounts.persist(&changes).expect("commit");
    }
}

fn storage(c: &mut Criterion) {
    bench::output::charts::register_font();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir under target/");
    let mut group = c.benchmark_group("storage");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for (name, mode) in [
        ("memory", StorageMode::Memory),
        ("durable", StorageMode::Durable(dir.path().to_path_buf())),
    ] {
        let storage = Storage::open(&mode, &format!("micro-{name}")).expect("storage");
        let mut shard = Shard::open(&storage);
        let mut next = 0u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}/transfer_4_commits"), |b| {
            b.iter(|| {
                next += 1;
                shard.transfer(next);
            })
        });
        group.throughput(Throughput::Elements(64));
        group.bench_function(format!("{name}/group_commit_64_steps"), |b| {
            b.iter(|| {
                next += 64;
                shard.group_commit(next);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = serialization, storage
}
criterion_main!(benches);
