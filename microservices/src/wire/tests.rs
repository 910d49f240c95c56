use super::*;
use shared_domain::bank::AccountTotals;
use shared_domain::money::Total;

fn acc(s: &str) -> AccountId {
    AccountId::new(s).expect("id")
}

#[test]
fn every_bank_error_comes_back_as_itself() {
    let errors = [
        BankError::UnknownAccount(acc("a")),
        BankError::AccountExists(acc("a")),
        BankError::InsufficientFunds {
            account: acc("a"),
            balance: Balance::from_stored(3).expect("b"),
            amount: Amount::new(5).expect("a"),
        },
        BankError::BalanceOverflow(acc("a")),
        BankError::IdempotencyConflict(TransferId::new("t").expect("id")),
        BankError::InvalidTransfer,
        BankError::UnknownTransfer(TransferId::new("t").expect("id")),
    ];
    for e in errors {
        assert_eq!(bank_error(&bank_status(e.clone())), CallError::Domain(e));
    }
}

#[test]
fn every_chat_error_comes_back_as_itself() {
    let errors = [
        ChatError::UnknownRoom(RoomName::new("r").expect("id")),
        ChatError::RoomExists(RoomName::new("r").expect("id")),
        ChatError::IdempotencyConflict(ClientMsgId::new("m").expect("id")),
        ChatError::InvalidText,
        ChatError::MessageTooLarge,
    ];
    for e in errors {
        assert_eq!(chat_error(&chat_status(e.clone())), CallError::Domain(e));
    }
}

#[test]
fn fabric_statuses_are_not_domain_errors() {
    assert_eq!(
        bank_error(&Status::resource_exhausted("x")),
        CallError::Overloaded
    );
    assert_eq!(
        bank_error(&Status::deadline_exceeded("x")),
        CallError::DeadlineExceeded
    );
    assert!(matches!(
        bank_error(&Status::unavailable("x")),
        CallError::Unavailable(_)
    ));
    // A NOT_FOUND without details (say, an unknown method) is not an
    // unknown account.
    assert!(matches!(
        bank_error(&Status::not_found("x")),
        CallError::Unavailable(_)
    ));
}

#[test]
fn a_failure_of_a_call_made_downstream_is_marked_so_and_a_domain_error_is_not() {
    let marked = |s: &Status| {
        s.metadata()
            .contains_key(crate::resilience::DOWNSTREAM_FAILED)
    };
    for e in [
        CallError::Unavailable("accounts: circuit open".into()),
        CallError::Overloaded,
        CallError::DeadlineExceeded,
    ] {
        let status = bank_call_status(e);
        assert!(marked(&status), "{status:?}");
        // Read back on the other side as the same fabric failure.
        assert!(!matches!(bank_error(&status), CallError::Domain(_)));
    }
    let unknown = AccountId::new("a1").expect("an id");
    let domain = bank_call_status(CallError::Domain(BankError::UnknownAccount(unknown)));
    assert!(!marked(&domain));
}

#[test]
fn totals_keep_all_128_bits() {
    for total in [
        0i128,
        1,
        -1,
        i128::from(i64::MAX) * 1000,
        i128::MIN,
        i128::MAX,
    ] {
        let t = AccountTotals {
            accounts: 7,
            total_balance: Total(total),
        };
        assert_eq!(totals_from_wire(&totals_to_wire(t)), t);
    }
}

#[test]
fn bad_fields_are_invalid_argument() {
    let bad = b::ApplyStepRequest {
        transfer_id: "t 1".into(),
        kind: 1,
        account_id: "a".into(),
        amount: 5,
    };
    assert_eq!(
        step_from_wire(&bad).map_err(|s| s.code()),
        Err(Code::InvalidArgument)
    );
    let bad = b::ApplyStepRequest {
        transfer_id: "t".into(),
        kind: 9,
        account_id: "a".into(),
        amount: 5,
    };
    assert_eq!(
        step_from_wire(&bad).map_err(|s| s.code()),
        Err(Code::InvalidArgument)
    );
    let bad = b::ApplyStepRequest {
        transfer_id: "t".into(),
        kind: 1,
        account_id: "a".into(),
        amount: 0,
    };
    assert_eq!(
        step_from_wire(&bad).map_err(|s| s.code()),
        Err(Code::InvalidArgument)
    );
}
