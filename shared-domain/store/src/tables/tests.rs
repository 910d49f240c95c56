use super::*;
use crate::kv::{Storage, StorageMode};
use shared_domain::bank::{AccountStep, Begin, TransferRequest, TransferStatus};
use shared_domain::chat::MessageText;
use shared_domain::id::{ClientMsgId, TransferId, UserId};
use shared_domain::money::{Amount, OpeningBalance};

fn durable() -> (tempfile::TempDir, Storage) {
    let dir = crate::kv::test_dir();
    let storage =
        Storage::open(&StorageMode::Durable(dir.path().to_path_buf()), "t").expect("open");
    (dir, storage)
}

#[test]
fn account_book_roundtrip() {
    let (_dir, storage) = durable();
    let store = AccountStore::new(storage.namespace("acc"));
    let mut book = AccountBook::new();
    let a = AccountId::new("a").expect("id");
    let c1 = book
        .open(a.clone(), OpeningBalance::new(10).expect("ok"))
        .expect("open");
    let (_, c2) = book
        .apply(&AccountStep {
            transfer_id: TransferId::new("t").expect("id"),
            kind: StepKind::Debit,
            account: a.clone(),
            amount: Amount::new(4).expect("ok"),
        })
        .expect("apply");
    store.persist(&[c1]).expect("persist");
    store.persist(&[c2.expect("changed")]).expect("persist");
    let loaded = store.load().expect("load");
    assert_eq!(loaded.balance(&a).expect("a").balance.minor_units(), 6);
    assert_eq!(loaded.remembered_steps(), 1);
    assert_eq!(loaded.totals(), book.totals());
    // A settled transfer's steps are deleted from the store too.
    let forgotten = book
        .forget(&TransferId::new("t").expect("id"))
        .expect("recorded");
    store.persist(&[forgotten]).expect("persist");
    let loaded = store.load().expect("load");
    assert_eq!(loaded.remembered_steps(), 0);
    assert_eq!(loaded.balance(&a).expect("a").balance.minor_units(), 6);
}

#[test]
fn tombstones_survive_a_reload_until_they_expire() {
    let (_dir, storage) = durable();
    let store = AccountStore::new(storage.namespace("acc"));
    let tomb = |id: &str, until_us| AccountChange::Tombstone {
        transfer_id: TransferId::new(id).expect("id"),
        until_us,
    };
    store
        .persist(&[tomb("t1", 100), tomb("t2", 300)])
        .expect("persist");
    assert_eq!(
        store.tombstones(200).expect("read"),
        vec![(TransferId::new("t2").expect("id"), 300)]
    );
    // The expired one was deleted, not just skipped.
    assert_eq!(store.tombstones(0).expect("read").len(), 1);
}

#[test]
fn journal_and_room_roundtrip() {
    let (_dir, storage) = durable();
    let journal = JournalStore::new(storage.namespace("j"));
    let mut book = TransferBook::new();
    let req = TransferRequest::new(
        TransferId::new("t1").expect("id"),
        AccountId::new("a").expect("id"),
        AccountId::new("b").expect("id"),
        Amount::new(5).expect("ok"),
    )
    .expect("valid");
    let Ok(Begin::Started(rec)) = book.begin(req) else {
        panic!("new transfer")
    };
    journal
        .persist(&[JournalChange::Put(rec.clone())])
        .expect("persist");
    assert_eq!(journal.load().expect("load").pending_count(), 1);
    let (done, _) = book
        .resolve(&rec.request.transfer_id, TransferStatus::Committed)
        .expect("known");
    journal
        .persist(&[JournalChange::Put(done.clone())])
        .expect("persist");
    assert_eq!(
        journal.load().expect("load").get(&rec.request.transfer_id),
        Ok(done)
    );

    let rooms = RoomStore::new(storage.namespace("room-r"));
    let name = RoomName::new("r").expect("id");
    let mut room = Room::new(name.clone());
    let (_, m) = room
        .post(
            UserId::new("u").expect("id"),
            MessageText::new("hi").expect("ok"),
            ClientMsgId::new("m").expect("id"),
            7,
        )
        .expect("post");
    rooms.persist(&[m.expect("new")]).expect("persist");
    let loaded = rooms.load(name).expect("load");
    assert_eq!(loaded.last_seq(), 1);
}

/// A clock for messages.
type Clock = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;
/// A post (text, client id) to the test's room.
type Post = fn(&str, &str) -> shared_domain::chat::PostRequest;

/// A room "lobby", a clock for its messages, and posts to it by "u".
fn lobby() -> (RoomName, Clock, Post) {
    fn post(text: &str, id: &str) -> shared_domain::chat::PostRequest {
        shared_domain::chat::PostRequest {
            room: RoomName::new("lobby").expect("id"),
            author: UserId::new("u").expect("id"),
            text: MessageText::new(text).expect("text"),
            client_msg_id: ClientMsgId::new(id).expect("id"),
        }
    }
    (
        RoomName::new("lobby").expect("id"),
        std::sync::Arc::new(|| 7),
        post,
    )
}

/// The chat served by `LocalRooms` over a durable `ChatStore` comes
/// back whole after the process "restarts" (a fresh load).
#[tokio::test]
async fn local_rooms_survive_a_reload() {
    use shared_domain::chat::HistoryQuery;
    use shared_domain::local::LocalRooms;
    use shared_domain::service::RoomsService;

    let (_dir, storage) = durable();
    let (name, clock, post) = lobby();
    {
        let store = ChatStore::new(storage.clone());
        let rooms = LocalRooms::restored(store.load().expect("load"), store, 4, clock.clone());
        rooms.create(name.clone()).await.expect("create");
        rooms.post(post("one", "m1")).await.expect("post");
        rooms.post(post("two", "m2")).await.expect("post");
    }
    let store = ChatStore::new(storage);
    let rooms = LocalRooms::restored(store.load().expect("load"), store, 4, clock);
    let history = rooms
        .history(
            &name,
            HistoryQuery {
                after: 0,
                limit: 10,
            },
        )
        .await
        .expect("room");
    assert_eq!(
        history.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Idempotency survives too: a repeat answers the original seq.
    let again = rooms.post(post("one", "m1")).await.expect("repeat");
    assert!(again.duplicate && again.seq == 1);
    assert!(
        rooms.create(name).await.is_err(),
        "the directory was reloaded"
    );
}

/// A durable journal keeps every pending record and a bounded number of
/// settled ones in memory; a repeat and a lookup of one that left still
/// answer its recorded outcome, read back from disk; a reload is bounded
/// too.
#[tokio::test]
async fn a_bounded_journal_answers_settled_transfers_from_disk() {
    use shared_domain::local::LocalJournal;
    use shared_domain::service::TransferJournal;
    let (_dir, storage) = durable();
    let keep = 8;
    let request = |i: u32, amount: i128| {
        TransferRequest::new(
            TransferId::new(&format!("t{i}")).expect("id"),
            AccountId::new("a").expect("id"),
            AccountId::new("b").expect("id"),
            Amount::new(amount).expect("amount"),
        )
        .expect("request")
    };
    let store = JournalStore::new(storage.namespace("journal"));
    let journal = LocalJournal::restored(store.load_bounded(keep).expect("load"), store.clone());
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    journal.observe_commits({
        let told = told.clone();
        Arc::new(move |number, record| {
            told.lock()
                .expect("lock")
                .push((number, record.request.transfer_id.to_string()))
        })
    });
    for i in 0..100 {
        journal.begin(request(i, 5)).await.expect("begin");
        if i % 10 != 0 {
            journal
                .resolve(
                    &TransferId::new(&format!("t{i}")).expect("id"),
                    TransferStatus::Committed,
                )
                .await
                .expect("resolve");
        }
    }
    // Settled records leave memory as their batches become durable (each
    // call notes the ones that did): every pending one stays.
    journal.pending_count().await.expect("count");
    assert!(
        journal.in_memory() <= keep + 10 + 1,
        "{} records in memory",
        journal.in_memory()
    );
    assert_eq!(journal.pending_count().await.expect("count"), 10);
    // The oldest settled ones are answered from disk, as recorded.
    let t1 = TransferId::new("t1").expect("id");
    assert_eq!(
        journal.get(&t1).await.expect("read back").status,
        TransferStatus::Committed
    );
    assert!(matches!(
        journal.begin(request(2, 5)).await,
        Ok(Begin::Recorded(r)) if r.status == TransferStatus::Committed
    ));
    assert!(
        journal.begin(request(3, 6)).await.is_err(),
        "another body under a settled id is a conflict"
    );
    // A reload keeps the same bound and still has every record on disk.
    let reloaded = store.load_bounded(keep).expect("reload");
    assert_eq!(reloaded.pending_count(), 10);
    assert_eq!(reloaded.len(), keep + 10);
    // Every commit was told once durable, numbered in commit order; the
    // store's one pass and a reload count the same commits.
    let expected: Vec<(u64, String)> = (0..100u32)
        .filter(|i| i % 10 != 0)
        .zip(1u64..)
        .map(|(i, n)| (n, format!("t{i}")))
        .collect();
    assert_eq!(*told.lock().expect("lock"), expected);
    assert_eq!(
        store.committed().expect("one pass"),
        Committed {
            count: 90,
            volume: 450
        }
    );
    assert_eq!(reloaded.commits(), 90);
}

/// Durable rooms keep their newest messages in memory: a history page,
/// a subscription's backlog and a repeated post from before that window
/// are answered from disk, gap-free and as recorded, also after a reload.
#[tokio::test]
async fn bounded_rooms_answer_old_pages_and_repeats_from_disk() {
    use futures::StreamExt;
    use shared_domain::chat::HistoryQuery;
    use shared_domain::local::LocalRooms;
    use shared_domain::service::RoomsService;

    let (_dir, storage) = durable();
    let (name, clock, post) = lobby();
    let keep = 4;
    let check = |rooms: LocalRooms<ChatStore>| {
        let (name, post) = (name.clone(), post);
        async move {
            let page = rooms
                .history(
                    &name,
                    HistoryQuery {
                        after: 3,
                        limit: 50,
                    },
                )
                .await
                .expect("page");
            assert_eq!(
                page.iter().map(|m| m.seq).collect::<Vec<_>>(),
                (4..=53).collect::<Vec<_>>()
            );
            let again = rooms.post(post("m1", "c1")).await.expect("repeat");
            assert!(again.duplicate && again.seq == 1, "{again:?}");
            assert!(rooms.post(post("other", "c2")).await.is_err(), "a conflict");
            let backlog: Vec<_> = rooms
                .subscribe(&name, 0)
                .await
                .expect("subscribe")
                .take(60)
                .map(|m| m.expect("message").seq)
                .collect()
                .await;
            assert_eq!(backlog, (1..=60).collect::<Vec<_>>());
        }
    };
    let store = ChatStore::new(storage.clone());
    let rooms = LocalRooms::restored(
        store.load_bounded(keep).expect("load"),
        store,
        4,
        clock.clone(),
    );
    rooms.create(name.clone()).await.expect("create");
    for i in 1..=60 {
        rooms
            .post(post(&format!("m{i}"), &format!("c{i}")))
            .await
            .expect("post");
    }
    check(rooms).await;
    let store = ChatStore::new(storage);
    let rooms = LocalRooms::restored(store.load_bounded(keep).expect("load"), store, 4, clock);
    check(rooms).await;
}
