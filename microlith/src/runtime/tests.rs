//! Supervision semantics: strategies, intensity and escalation, recovery of
//! state, and callers that get errors instead of hanging.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shared_domain::CallError;

use super::{Actor, ActorRef, Intensity, Reply, StartError, Strategy, Supervisor, SupervisorEvent};

/// A counter whose value lives in a "store" (an atomic outside the actor),
/// so a restart recovers it, and that counts its own starts.
struct Counter {
    value: u64,
    store: Arc<CounterStore>,
}

#[derive(Default)]
struct CounterStore {
    value: AtomicU64,
    starts: AtomicU64,
}

enum CounterMsg {
    Add(u64, Reply<Result<u64, CallError<()>>>),
    Crash,
    /// Panics while its caller waits (on the direct hand-off, in the
    /// caller's own task).
    CrashCall(Reply<Result<u64, CallError<()>>>),
    /// Takes this long in the handler, then answers the value.
    Slow(Duration, Reply<Result<u64, CallError<()>>>),
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type Args = Arc<CounterStore>;

    fn start(store: &Self::Args) -> Result<Self, StartError> {
        store.starts.fetch_add(1, Ordering::SeqCst);
        Ok(Counter {
            value: store.value.load(Ordering::SeqCst),
            store: store.clone(),
        })
    }

    fn handle(&mut self, msg: CounterMsg) {
        match msg {
            CounterMsg::Add(n, reply) => {
                self.value += n;
                self.store.value.store(self.value, Ordering::SeqCst);
                let _ = reply.send(Ok(self.value));
            }
            CounterMsg::Slow(took, reply) => {
                std::thread::sleep(took);
                let _ = reply.send(Ok(self.value));
            }
            CounterMsg::Crash => panic!("injected crash"),
            CounterMsg::CrashCall(reply) => {
                // The port drops with the panic; the caller learns it at once.
                let _keep_until_panic = reply;
                panic!("injected crash")
            }
        }
    }
}

const T: Duration = Duration::from_secs(2);

async fn add(actor: &ActorRef<CounterMsg>, n: u64) -> Result<u64, CallError<()>> {
    actor.call(|r| CounterMsg::Add(n, r), T).await
}

/// Calls until the actor answers again (it restarts asynchronously).
async fn until_up(actor: &ActorRef<CounterMsg>) -> u64 {
    for _ in 0..2000 {
        if let Ok(v) = add(actor, 0).await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{} did not come back", actor.name());
}

fn lenient() -> Intensity {
    Intensity {
        max_restarts: 100,
        within: Duration::from_secs(10),
    }
}

fn three(strategy: Strategy) -> (Vec<Arc<CounterStore>>, Vec<ActorRef<CounterMsg>>) {
    let (root, _events) = Supervisor::root("test", strategy, lenient());
    let stores: Vec<Arc<CounterStore>> = (0..3).map(|_| Arc::default()).collect();
    let actors = stores
        .iter()
        .enumerate()
        .map(|(i, s)| root.spawn::<Counter>(&format!("c{i}"), s.clone(), 16))
        .collect();
    (stores, actors)
}

async fn crash_middle_and_count_starts(strategy: Strategy) -> Vec<u64> {
    let (stores, actors) = three(strategy);
    for a in &actors {
        assert_eq!(add(a, 5).await, Ok(5));
    }
    actors[1]
        .cast::<()>(CounterMsg::Crash)
        .expect("mailbox open");
    for a in &actors {
        // State is recovered from the store after any restart.
        assert_eq!(until_up(a).await, 5);
    }
    // Let restarts ordered by the strategy settle.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stores
        .iter()
        .map(|s| s.starts.load(Ordering::SeqCst))
        .collect()
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    assert_eq!(
        crash_middle_and_count_starts(Strategy::OneForOne).await,
        vec![1, 2, 1]
    );
}

#[tokio::test]
async fn one_for_all_restarts_every_child() {
    assert_eq!(
        crash_middle_and_count_starts(Strategy::OneForAll).await,
        vec![2, 2, 2]
    );
}

#[tokio::test]
async fn rest_for_one_restarts_the_failed_and_later_children() {
    assert_eq!(
        crash_middle_and_count_starts(Strategy::RestForOne).await,
        vec![1, 2, 2]
    );
}

#[tokio::test]
async fn queued_callers_get_an_error_at_once_not_a_hang() {
    let (_stores, actors) = three(Strategy::OneForOne);
    let actor = &actors[0];
    actor.cast::<()>(CounterMsg::Crash).expect("mailbox open");
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..10).map(|_| add(actor, 1)).collect();
    let results = futures::future::join_all(calls).await;
    for r in &results {
        // Either refused during the restart, or served after it; never
        // a deadline.
        assert_ne!(r, &Err(CallError::DeadlineExceeded));
    }
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(CallError::Unavailable(_)))),
        "calls queued behind a crash must fail: {results:?}"
    );
    assert!(started.elapsed() < T, "callers waited for the deadline");
}

#[tokio::test]
async fn intensity_exceeded_escalates_to_the_root_and_suspends() {
    let (root, mut events) = Supervisor::root(
        "root",
        Strategy::OneForOne,
        Intensity {
            max_restarts: 2,
            within: Duration::from_secs(10),
        },
    );
    let actor = root.spawn::<Counter>("c", Arc::default(), 16);
    for _ in 0..3 {
        until_up(&actor).await;
        actor.cast::<()>(CounterMsg::Crash).expect("mailbox open");
    }
    let event = tokio::time::timeout(T, events.recv())
        .await
        .expect("escalated in time");
    assert_eq!(event, Some(SupervisorEvent::Escalated("root".into())));
    // Suspended: calls fail fast with Unavailable.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(matches!(
        add(&actor, 1).await,
        Err(CallError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_child_supervisor_escalates_to_its_parent_which_restarts_it() {
    let (root, mut events) = Supervisor::root("root", Strategy::OneForOne, lenient());
    let child_sup = root.spawn_supervisor(
        "inner",
        Strategy::OneForOne,
        Intensity {
            max_restarts: 1,
            within: Duration::from_secs(10),
        },
    );
    let store: Arc<CounterStore> = Arc::default();
    let actor = child_sup.spawn::<Counter>("c", store.clone(), 16);
    assert_eq!(add(&actor, 7).await, Ok(7));
    for _ in 0..2 {
        until_up(&actor).await;
        actor.cast::<()>(CounterMsg::Crash).expect("mailbox open");
    }
    // The inner supervisor gave up; the root restarted it, and with it the actor.
    assert_eq!(until_up(&actor).await, 7);
    assert!(
        events.try_recv().is_err(),
        "the root must absorb the escalation"
    );
    assert!(root.restarts() >= 1);
    assert!(store.starts.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn a_monitor_fires_when_the_actor_goes_down() {
    let (_stores, actors) = three(Strategy::OneForOne);
    let monitor = actors[2].monitor();
    let generation = actors[2].generation();
    actors[2]
        .cast::<()>(CounterMsg::Crash)
        .expect("mailbox open");
    tokio::time::timeout(T, monitor.down())
        .await
        .expect("monitor fired");
    assert!(actors[2].generation() > generation);
}

#[tokio::test]
async fn a_full_mailbox_sheds_load() {
    let (root, _events) = Supervisor::root("root", Strategy::OneForOne, lenient());
    let actor = root.spawn::<Counter>("c", Arc::default(), 2);
    // Fill the mailbox from a task that holds the runtime's only chance to
    // run the actor: on a current-thread runtime, nothing drains in between.
    let mut overloaded = 0;
    for _ in 0..10 {
        let (reply, _rx) = Reply::channel();
        if actor.cast::<()>(CounterMsg::Add(1, reply)) == Err(CallError::Overloaded) {
            overloaded += 1;
        }
    }
    assert!(
        overloaded >= 7,
        "a 2-slot mailbox accepted {} of 10",
        10 - overloaded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_casts_see_them_in_order() {
    let (root, _events) = Supervisor::root("root", Strategy::OneForOne, lenient());
    let actor = root.spawn::<Counter>("c", Arc::default(), 4096);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let actor = actor.clone();
            tokio::spawn(async move {
                for round in 0..200u64 {
                    for _ in 0..5 {
                        let (reply, _rx) = Reply::channel();
                        actor
                            .cast::<()>(CounterMsg::Add(1, reply))
                            .expect("room in the mailbox");
                    }
                    // A call after this task's casts may take the direct
                    // hand-off only once they are handled: it sees them.
                    let seen = add(&actor, 0).await.expect("answered");
                    assert!(seen >= (round + 1) * 5, "round {round}: saw {seen}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(until_up(&actor).await, 4 * 200 * 5);
}

#[tokio::test]
async fn a_panic_on_the_direct_hand_off_is_contained() {
    let (_stores, actors) = three(Strategy::OneForOne);
    let actor = &actors[0];
    assert_eq!(add(actor, 3).await, Ok(3));
    let res = actor.call(CounterMsg::CrashCall, T).await;
    assert!(matches!(res, Err(CallError::Unavailable(_))), "{res:?}");
    assert_eq!(until_up(actor).await, 3, "restarted with its state");
}

/// In a timed request, an actor call is an `ask` span with its handler's
/// own time nested under it: the time a message waited behind another in
/// the mailbox is the hop's, not the handler's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_call_splits_the_wait_from_the_handler() {
    super::actor::timing::set_enabled(true);
    let (root, _events) = Supervisor::root("root", Strategy::OneForOne, lenient());
    let actor = root.spawn::<Counter>("c", Arc::default(), 16);
    let slow = |ms| {
        let actor = actor.clone();
        async move {
            actor
                .call(|r| CounterMsg::Slow(Duration::from_millis(ms), r), T)
                .await
        }
    };
    // Idle: handled in the caller's task.
    let (answer, inline) = edge::timing::collect("edge", slow(2)).await;
    assert_eq!(answer, Ok(0));
    let names: Vec<&str> = inline.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["edge", "ask.c", "handle.c"]);
    assert!(
        inline[2].duration >= Duration::from_millis(2) && inline[2].duration <= inline[1].duration,
        "{inline:?}"
    );
    // Busy: queued behind a 30 ms message sent just before.
    let (reply, _rx) = Reply::channel();
    actor
        .cast::<()>(CounterMsg::Slow(Duration::from_millis(30), reply))
        .expect("room in the mailbox");
    let (answer, queued) = edge::timing::collect("edge", slow(2)).await;
    assert_eq!(answer, Ok(0));
    let (ask, handle) = (queued[1].duration, queued[2].duration);
    assert!(
        handle >= Duration::from_millis(2) && handle < Duration::from_millis(30),
        "the handler's own time only: {queued:?}"
    );
    assert!(
        ask >= handle + Duration::from_millis(20),
        "the wait is the hop's: {queued:?}"
    );
    // Outside a timed request nothing is collected, and the call works.
    assert_eq!(slow(0).await, Ok(0));
}
