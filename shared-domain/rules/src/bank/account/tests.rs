use super::*;

fn id(s: &str) -> AccountId {
    AccountId::new(s).expect("valid id")
}
fn tid(s: &str) -> TransferId {
    TransferId::new(s).expect("valid id")
}
fn amount(n: i128) -> Amount {
    Amount::new(n).expect("valid amount")
}
fn book() -> AccountBook {
    let mut book = AccountBook::new();
    book.open(id("a"), OpeningBalance::new(100).expect("ok"))
        .expect("open a");
    book.open(id("b"), OpeningBalance::new(0).expect("ok"))
        .expect("open b");
    book
}

#[test]
fn open_twice_is_refused() {
    let mut book = book();
    assert_eq!(
        book.open(id("a"), OpeningBalance::new(5).expect("ok")),
        Err(BankError::AccountExists(id("a")))
    );
    assert_eq!(book.totals().total_balance, Total(100));
}

#[test]
fn debit_is_applied_once() {
    let mut book = book();
    let step = AccountStep {
        transfer_id: tid("t1"),
        kind: StepKind::Debit,
        account: id("a"),
        amount: amount(30),
    };
    let (first, change) = book.apply(&step).expect("known account");
    assert!(change.is_some());
    let (again, change) = book.apply(&step).expect("known account");
    assert_eq!(first, again);
    assert!(change.is_none());
    assert_eq!(book.balance(&id("a")).expect("a").balance.minor_units(), 70);
}

#[test]
fn insufficient_funds_is_recorded_and_moves_nothing() {
    let mut book = book();
    let step = AccountStep {
        transfer_id: tid("t1"),
        kind: StepKind::Debit,
        account: id("b"),
        amount: amount(1),
    };
    let (res, _) = book.apply(&step).expect("known account");
    assert_eq!(
        res,
        StepResult::InsufficientFunds {
            balance: Balance::ZERO
        }
    );
    assert_eq!(book.totals().total_balance, Total(100));
}

#[test]
fn unknown_account_is_not_recorded() {
    let mut book = book();
    let step = AccountStep {
        transfer_id: tid("t1"),
        kind: StepKind::Credit,
        account: id("zz"),
        amount: amount(1),
    };
    assert!(book.apply(&step).is_err());
    assert_eq!(book.remembered_steps(), 0);
}

fn request(transfer: &str, from: &str, to: &str, n: i128) -> TransferRequest {
    TransferRequest::new(tid(transfer), id(from), id(to), amount(n)).expect("valid")
}

#[test]
fn a_whole_transfer_applies_the_same_steps_as_the_saga() {
    let mut book = book();
    let (resolution, changes) = book.apply_transfer(&request("t1", "a", "b", 30));
    assert_eq!(resolution, Resolution::Resolved(TransferStatus::Committed));
    assert_eq!(
        changes.len(),
        2,
        "the debit and the credit, to commit together"
    );
    assert_eq!(book.remembered_steps(), 2);
    // A repeat, whole or step by step, replays and moves nothing.
    let (again, changes) = book.apply_transfer(&request("t1", "a", "b", 30));
    assert_eq!(
        (again, changes.len()),
        (Resolution::Resolved(TransferStatus::Committed), 0)
    );
    let credit = AccountStep {
        transfer_id: tid("t1"),
        kind: StepKind::Credit,
        account: id("b"),
        amount: amount(30),
    };
    assert_eq!(book.apply(&credit).expect("known").1, None);
    assert_eq!(book.balance(&id("b")).expect("b").balance.minor_units(), 30);
    // Refusals: an unknown payee before anything moves (and nothing is
    // recorded), then insufficient funds (recorded, as a step is).
    assert_eq!(
        book.apply_transfer(&request("t2", "a", "zz", 1)),
        (
            Resolution::Abandon(BankError::UnknownAccount(id("zz"))),
            Vec::new()
        )
    );
    assert_eq!(
        book.apply_transfer(&request("t3", "zz", "a", 1)).0,
        Resolution::Abandon(BankError::UnknownAccount(id("zz")))
    );
    let (short, changes) = book.apply_transfer(&request("t4", "b", "a", 31));
    assert_eq!(
        short,
        Resolution::Resolved(TransferStatus::Rejected(RejectReason::InsufficientFunds))
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(book.totals().total_balance, Total(100));
}

#[test]
fn a_whole_transfer_whose_credit_would_overflow_is_refunded() {
    let near_max = Balance::from_stored(i64::MAX - 5).expect("a stored balance");
    let ten = Balance::from_stored(10).expect("a stored balance");
    let mut book = AccountBook::restore([(id("a"), ten), (id("rich"), near_max)], []);
    let (resolution, changes) = book.apply_transfer(&request("t1", "a", "rich", 10));
    assert_eq!(
        resolution,
        Resolution::Resolved(TransferStatus::Rejected(RejectReason::BalanceOverflow))
    );
    assert_eq!(changes.len(), 3, "debit, the refused credit, refund");
    assert_eq!(book.balance(&id("a")).expect("a").balance.minor_units(), 10);
}

#[test]
fn each_kind_is_recorded_apart_and_forget_drops_them_all() {
    let mut book = book();
    let step = |transfer: &str, kind, account: &str| AccountStep {
        transfer_id: tid(transfer),
        kind,
        account: id(account),
        amount: amount(10),
    };
    // t1 moves 10 from a to b; t2's credit failed, so it is refunded.
    book.apply(&step("t1", StepKind::Debit, "a"))
        .expect("debit");
    book.apply(&step("t1", StepKind::Credit, "b"))
        .expect("credit");
    book.apply(&step("t2", StepKind::Debit, "a"))
        .expect("debit");
    assert!(
        book.apply(&step("t2", StepKind::Refund, "a"))
            .expect("refund")
            .1
            .is_some()
    );
    assert_eq!(book.remembered_steps(), 4);
    assert_eq!(book.step_records(), 2);
    // A repeat of any kind replays.
    assert_eq!(
        book.apply(&step("t1", StepKind::Credit, "b"))
            .expect("repeat")
            .1,
        None
    );
    assert_eq!(
        book.apply(&step("t2", StepKind::Refund, "a"))
            .expect("repeat")
            .1,
        None
    );
    assert_eq!(book.balance(&id("a")).expect("a").balance.minor_units(), 90);
    assert_eq!(
        book.forget(&tid("t1")),
        Some(AccountChange::Forget(tid("t1")))
    );
    assert_eq!(book.remembered_steps(), 2);
    assert_eq!(book.forget(&tid("t1")), None, "nothing left to forget");
    assert!(book.forget(&tid("t2")).is_some());
    assert_eq!(book.step_records(), 0);
    assert_eq!(book.totals().total_balance, Total(100));
}
