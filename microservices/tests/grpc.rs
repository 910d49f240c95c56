//! Contract tests of each internal service, over the wire, against the
//! real processes of `microservices up`: the gRPC services with their own
//! generated clients (domain errors come back as the same domain errors),
//! standard tooling (health, reflection), and bad input at every service —
//! malformed protobuf, messages of the wrong type, oversized messages,
//! malformed JSON at the ledger — answered with a clean status that
//! changes nothing.

mod common;

use std::sync::OnceLock;

use anyhow::{Context, ensure};
use futures::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

use microservices::wire::pb::bank::accounts_client::AccountsClient;
use microservices::wire::pb::bank::transfers_client::TransfersClient;
use microservices::wire::pb::chat::chat_client::ChatClient;
use microservices::wire::pb::{bank as b, chat as c};
use microservices::wire::{bank_error, chat_error};
use shared_domain::error::{BankError, CallError, ChatError};
use shared_domain::id::{AccountId, ClientMsgId, RoomName, TransferId};

fn cluster() -> &'static common::Cluster {
    static CLUSTER: OnceLock<common::Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| common::Cluster::start(false, &[]))
}

fn addr(name: &str) -> String {
    format!("http://{}", cluster().service(name).addr)
}

async fn channel(name: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(addr(name))?.connect().await?)
}

fn account(id: &str) -> AccountId {
    AccountId::new(id).expect("valid id")
}

/// A request carrying its absolute deadline a second ahead, as every
/// client of the accounts service sends it.
fn timed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    microservices::settlement::set_deadline(&mut request, std::time::Duration::from_secs(1));
    request
}

/// A settled transfer's step records are dropped, and a delayed copy of
/// one of its steps (sent before the settlement, delivered after it) is
/// refused and moves no money: the tombstone while its deadline lies
/// ahead, the deadline after that. Without the fence, the copy would find
/// no record and debit the payer again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_duplicate_after_settlement_moves_no_money() -> anyhow::Result<()> {
    let mut accounts = AccountsClient::new(channel("accounts").await?);
    accounts
        .open(b::OpenRequest {
            account_id: "s-a1".into(),
            opening_balance: 100,
        })
        .await?;
    accounts
        .open(b::OpenRequest {
            account_id: "s-a2".into(),
            opening_balance: 0,
        })
        .await?;
    let debit = b::ApplyStepRequest {
        transfer_id: "s-t1".into(),
        kind: b::StepKind::Debit as i32,
        account_id: "s-a1".into(),
        amount: 30,
    };
    // Sent now, delivered later: its deadline is fixed now.
    let delayed = timed(debit.clone());
    let transfer = b::TransferRequest {
        transfer_id: "s-t1".into(),
        from: "s-a1".into(),
        to: "s-a2".into(),
        amount: 30,
    };
    let outcome = accounts.apply_transfer(timed(transfer)).await?.into_inner();
    ensure!(
        outcome.status == b::TransferStatus::Committed as i32,
        "{outcome:?}"
    );
    accounts
        .settle(b::SettleRequest {
            transfer_ids: vec!["s-t1".into()],
        })
        .await?;

    let refused = accounts
        .apply_step(delayed)
        .await
        .expect_err("a stale copy");
    ensure!(refused.code() == Code::FailedPrecondition, "{refused:?}");
    let mut past = tonic::Request::new(debit.clone());
    past.metadata_mut()
        .insert(microservices::settlement::DEADLINE_HEADER, "1".parse()?);
    ensure!(
        accounts
            .apply_step(past)
            .await
            .expect_err("past its deadline")
            .code()
            == Code::DeadlineExceeded
    );
    let bare = accounts.apply_step(debit).await.expect_err("no deadline");
    ensure!(bare.code() == Code::InvalidArgument, "{bare:?}");
    let balance = |id: &'static str| {
        let mut accounts = accounts.clone();
        async move {
            anyhow::Ok(
                accounts
                    .balance(b::BalanceRequest {
                        account_id: id.into(),
                    })
                    .await?
                    .into_inner()
                    .balance,
            )
        }
    };
    ensure!(
        balance("s-a1").await? == 70 && balance("s-a2").await? == 30,
        "the stale copy moved money"
    );

    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_service_contract() -> anyhow::Result<()> {
    let mut accounts = AccountsClient::new(channel("accounts").await?);
    let opened = accounts
        .open(b::OpenRequest {
            account_id: "g-a1".into(),
            opening_balance: 100,
        })
        .await?
        .into_inner();
    ensure!(opened.balance == 100);
    accounts
        .open(b::OpenRequest {
            account_id: "g-a2".into(),
            opening_balance: 0,
        })
        .await?;

    // A domain refusal arrives as the same domain error.
    let again = accounts
        .open(b::OpenRequest {
            account_id: "g-a1".into(),
            opening_balance: 1,
        })
        .await
        .expect_err("exists");
    ensure!(again.code() == Code::AlreadyExists);
    ensure!(bank_error(&again) == CallError::Domain(BankError::AccountExists(account("g-a1"))));
    let unknown = accounts
        .balance(b::BalanceRequest {
            account_id: "g-nobody".into(),
        })
        .await
        .expect_err("unknown");
    ensure!(
        bank_error(&unknown) == CallError::Domain(BankError::UnknownAccount(account("g-nobody")))
    );

    // A step applied twice moves money once and answers the same.
    let step = b::ApplyStepRequest {
        transfer_id: "g-t1".into(),
        kind: b::StepKind::Debit as i32,
        account_id: "g-a1".into(),
        amount: 30,
    };
    let first = accounts.apply_step(timed(step.clone())).await?.into_inner();
    let second = accounts.apply_step(timed(step)).await?.into_inner();
    ensure!(first == second, "{first:?} vs {second:?}");
    ensure!(
        accounts
            .balance(b::BalanceRequest {
                account_id: "g-a1".into()
            })
            .await?
            .into_inner()
            .balance
            == 70
    );
    let broke = accounts
        .apply_step(timed(b::ApplyStepRequest {
            transfer_id: "g-t2".into(),
            kind: b::StepKind::Debit as i32,
            account_id: "g-a2".into(),
            amount: 5,
        }))
        .await?
        .into_inner();
    ensure!(
        broke.result == Some(b::step_result::Result::InsufficientFundsBalance(0)),
        "{broke:?}"
    );

    // Bad fields: INVALID_ARGUMENT, and nothing changes. (Other tests share
    // this cluster, so "nothing" is checked on the accounts involved.)
    let reader = accounts.clone();
    let balance_of = move |id: &'static str| {
        let mut accounts = reader.clone();
        async move {
            anyhow::Ok(
                accounts
                    .balance(b::BalanceRequest {
                        account_id: id.into(),
                    })
                    .await?
                    .into_inner()
                    .balance,
            )
        }
    };
    let before = balance_of("g-a1").await?;
    let bad_requests = [
        b::ApplyStepRequest {
            transfer_id: "bad id".into(),
            kind: 1,
            account_id: "g-a1".into(),
            amount: 1,
        },
        b::ApplyStepRequest {
            transfer_id: "g-t3".into(),
            kind: 0,
            account_id: "g-a1".into(),
            amount: 1,
        },
        b::ApplyStepRequest {
            transfer_id: "g-t3".into(),
            kind: 42,
            account_id: "g-a1".into(),
            amount: 1,
        },
        b::ApplyStepRequest {
            transfer_id: "g-t3".into(),
            kind: 1,
            account_id: "g-a1".into(),
            amount: 0,
        },
        b::ApplyStepRequest {
            transfer_id: "g-t3".into(),
            kind: 1,
            account_id: "g-a1".into(),
            amount: -5,
        },
        b::ApplyStepRequest {
            transfer_id: "g-t3".into(),
            kind: 1,
            account_id: String::new(),
            amount: 1,
        },
    ];
    for bad in bad_requests {
        let refused = accounts
            .apply_step(timed(bad.clone()))
            .await
            .expect_err("refused");
        ensure!(
            refused.code() == Code::InvalidArgument,
            "{bad:?}: {refused:?}"
        );
    }
    for opening in [-1, 1_000_000_000_000_001] {
        let refused = accounts
            .open(b::OpenRequest {
                account_id: "g-a9".into(),
                opening_balance: opening,
            })
            .await
            .expect_err("refused");
        ensure!(refused.code() == Code::InvalidArgument);
    }
    ensure!(
        balance_of("g-a1").await? == before,
        "a refused request moved money"
    );
    let missing = accounts
        .balance(b::BalanceRequest {
            account_id: "g-a9".into(),
        })
        .await
        .expect_err("not opened");
    ensure!(missing.code() == Code::NotFound);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_service_contract() -> anyhow::Result<()> {
    let mut accounts = AccountsClient::new(channel("accounts").await?);
    accounts
        .open(b::OpenRequest {
            account_id: "x-a1".into(),
            opening_balance: 100,
        })
        .await?;
    accounts
        .open(b::OpenRequest {
            account_id: "x-a2".into(),
            opening_balance: 0,
        })
        .await?;
    let mut transfers = TransfersClient::new(channel("transfers").await?);
    let request = b::TransferRequest {
        transfer_id: "x-t1".into(),
        from: "x-a1".into(),
        to: "x-a2".into(),
        amount: 40,
    };
    let done = transfers.transfer(request.clone()).await?.into_inner();
    ensure!(done.status == b::TransferStatus::Committed as i32);
    // Idempotent: a repeat answers the record and moves nothing.
    let repeat = transfers.transfer(request).await?.into_inner();
    ensure!(repeat == done);
    ensure!(
        accounts
            .balance(b::BalanceRequest {
                account_id: "x-a2".into()
            })
            .await?
            .into_inner()
            .balance
            == 40
    );
    let conflict = transfers
        .transfer(b::TransferRequest {
            transfer_id: "x-t1".into(),
            from: "x-a1".into(),
            to: "x-a2".into(),
            amount: 41,
        })
        .await
        .expect_err("conflict");
    ensure!(
        bank_error(&conflict)
            == CallError::Domain(BankError::IdempotencyConflict(TransferId::new("x-t1")?))
    );
    let same = transfers
        .transfer(b::TransferRequest {
            transfer_id: "x-t2".into(),
            from: "x-a1".into(),
            to: "x-a1".into(),
            amount: 1,
        })
        .await
        .expect_err("same account");
    ensure!(bank_error(&same) == CallError::Domain(BankError::InvalidTransfer));
    let rejected = transfers
        .transfer(b::TransferRequest {
            transfer_id: "x-t3".into(),
            from: "x-a2".into(),
            to: "x-a1".into(),
            amount: 1000,
        })
        .await?
        .into_inner();
    ensure!(rejected.status == b::TransferStatus::RejectedInsufficientFunds as i32);
    let unknown = transfers
        .get(b::GetTransferRequest {
            transfer_id: "x-none".into(),
        })
        .await
        .expect_err("unknown");
    ensure!(
        bank_error(&unknown)
            == CallError::Domain(BankError::UnknownTransfer(TransferId::new("x-none")?))
    );
    ensure!(
        transfers
            .pending_count(b::PendingCountRequest {})
            .await?
            .into_inner()
            .pending
            == 0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_service_contract_and_streaming() -> anyhow::Result<()> {
    let mut chat = ChatClient::new(channel("chat").await?);
    chat.create_room(c::CreateRoomRequest {
        room: "g-lobby".into(),
    })
    .await?;
    let exists = chat
        .create_room(c::CreateRoomRequest {
            room: "g-lobby".into(),
        })
        .await
        .expect_err("exists");
    ensure!(
        chat_error(&exists) == CallError::Domain(ChatError::RoomExists(RoomName::new("g-lobby")?))
    );
    let post = |text: &str, key: &str| c::PostRequest {
        room: "g-lobby".into(),
        author: "u".into(),
        text: text.into(),
        client_msg_id: key.into(),
    };
    for (i, key) in ["m1", "m2", "m3"].iter().enumerate() {
        ensure!(chat.post(post("hi", key)).await?.into_inner().seq == i as u64 + 1);
    }
    let repeat = chat.post(post("hi", "m1")).await?.into_inner();
    ensure!(repeat.seq == 1 && repeat.duplicate);
    let conflict = chat.post(post("other", "m1")).await.expect_err("conflict");
    ensure!(
        chat_error(&conflict)
            == CallError::Domain(ChatError::IdempotencyConflict(ClientMsgId::new("m1")?))
    );
    for (text, expected) in [
        ("", ChatError::InvalidText),
        (&*"x".repeat(4097), ChatError::MessageTooLarge),
    ] {
        let refused = chat.post(post(text, "m9")).await.expect_err("refused");
        ensure!(chat_error(&refused) == CallError::Domain(expected));
    }
    let refused = chat
        .history(c::HistoryRequest {
            room: "g-lobby".into(),
            after: 0,
            limit: 0,
        })
        .await
        .expect_err("limit 0");
    ensure!(refused.code() == Code::InvalidArgument);

    // Server streaming: the backlog after `after`, then live messages.
    let mut stream = chat
        .subscribe(c::SubscribeRequest {
            room: "g-lobby".into(),
            after: 1,
        })
        .await?
        .into_inner();
    let mut seqs = Vec::new();
    for _ in 0..2 {
        seqs.push(stream.next().await.context("backlog")??.seq);
    }
    chat.post(post("live", "m4")).await?;
    seqs.push(stream.next().await.context("live")??.seq);
    ensure!(seqs == [2, 3, 4], "{seqs:?}");
    let history = chat
        .history(c::HistoryRequest {
            room: "g-lobby".into(),
            after: 0,
            limit: 100,
        })
        .await?
        .into_inner();
    ensure!(history.messages.iter().map(|m| m.seq).collect::<Vec<_>>() == [1, 2, 3, 4]);
    Ok(())
}

/// grpc.health.v1 and reflection answer on every gRPC service, so standard
/// tools (grpcurl, grpc_health_probe, Kubernetes probes) work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_on_every_grpc_service() -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    for (name, service) in [
        ("accounts", "bank.v1.Accounts"),
        ("transfers", "bank.v1.Transfers"),
        ("chat", "chat.v1.Chat"),
    ] {
        let channel = channel(name).await?;
        let health = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner();
        ensure!(
            health.status == ServingStatus::Serving as i32,
            "{name}: {health:?}"
        );
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = ServerReflectionClient::new(channel)
            .server_reflection_info(futures::stream::iter([request]))
            .await?
            .into_inner();
        let answer = answers.next().await.context("reflection answer")??;
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            anyhow::bail!("{name}: unexpected reflection answer");
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        ensure!(
            names.contains(&service) && names.contains(&"grpc.health.v1.Health"),
            "{name}: {names:?}"
        );
    }
    Ok(())
}

/// A raw gRPC call over HTTP/2: (status code, message).
async fn raw_grpc(name: &str, method: &str, payload: Vec<u8>) -> anyhow::Result<(i32, String)> {
    let http = reqwest::Client::builder().http2_prior_knowledge().build()?;
    let mut body = vec![0u8];
    body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    body.extend(payload);
    let response = http
        .post(format!("{}/{method}", addr(name)))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .send()
        .await?;
    // Errors come back trailers-only: the status is in the headers.
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let message = response
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((code, message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_wrong_and_oversized_messages_get_a_clean_status_and_change_nothing()
-> anyhow::Result<()> {
    use prost::Message;
    let mut accounts = AccountsClient::new(channel("accounts").await?);
    accounts
        .open(b::OpenRequest {
            account_id: "m-a1".into(),
            opening_balance: 5,
        })
        .await?;
    let mut chat = ChatClient::new(channel("chat").await?);
    chat.create_room(c::CreateRoomRequest {
        room: "m-room".into(),
    })
    .await?;

    // Not protobuf at all: a truncated varint and an invalid wire type.
    for garbage in [vec![0x08, 0xff], vec![0x0f, 0x01, 0x02], vec![0xff; 16]] {
        for (service, method) in [
            ("accounts", "bank.v1.Accounts/Open"),
            ("accounts", "bank.v1.Accounts/ApplyStep"),
            ("transfers", "bank.v1.Transfers/Transfer"),
            ("chat", "chat.v1.Chat/Post"),
        ] {
            let (code, message) = raw_grpc(service, method, garbage.clone()).await?;
            ensure!(
                code == Code::Internal as i32 || code == Code::InvalidArgument as i32,
                "{method} {garbage:?}: {code} {message}"
            );
        }
    }
    // Well-formed protobuf of the wrong message. With clashing wire types
    // it does not decode; with compatible ones it decodes to a request
    // whose missing fields fail validation.
    let clashing = c::ChatMessage {
        seq: 7,
        author: "u".into(),
        text: "t".into(),
        ts_us: 1,
        client_msg_id: "k".into(),
    }
    .encode_to_vec();
    let (code, _) = raw_grpc("accounts", "bank.v1.Accounts/ApplyStep", clashing).await?;
    ensure!(code == Code::Internal as i32, "clashing message: {code}");
    let compatible = c::CreateRoomRequest {
        room: "m-a1".into(),
    }
    .encode_to_vec();
    let (code, _) = raw_grpc("accounts", "bank.v1.Accounts/ApplyStep", compatible.clone()).await?;
    ensure!(
        code == Code::InvalidArgument as i32,
        "compatible message: {code}"
    );
    let (code, _) = raw_grpc("transfers", "bank.v1.Transfers/Transfer", compatible).await?;
    ensure!(
        code == Code::InvalidArgument as i32,
        "compatible message: {code}"
    );
    // Oversized: refused before decoding.
    let huge = c::PostRequest {
        room: "m-room".into(),
        author: "u".into(),
        text: "x".repeat(200_000),
        client_msg_id: "k".into(),
    };
    let (code, message) = raw_grpc("chat", "chat.v1.Chat/Post", huge.encode_to_vec()).await?;
    ensure!(
        code == Code::OutOfRange as i32 || code == Code::ResourceExhausted as i32,
        "oversized: {code} {message}"
    );
    // An unknown method.
    let (code, _) = raw_grpc("accounts", "bank.v1.Accounts/Drain", Vec::new()).await?;
    ensure!(code == Code::Unimplemented as i32);

    // Other tests share this cluster: check what the bad input named.
    ensure!(
        accounts
            .balance(b::BalanceRequest {
                account_id: "m-a1".into()
            })
            .await?
            .into_inner()
            .balance
            == 5,
        "bad input moved money"
    );
    let step = b::ApplyStepRequest {
        transfer_id: "m-a1".into(),
        kind: b::StepKind::Credit as i32,
        account_id: "m-a1".into(),
        amount: 1,
    };
    let applied = accounts.apply_step(timed(step)).await?.into_inner();
    ensure!(
        applied.result == Some(b::step_result::Result::AppliedBalanceAfter(6)),
        "a refused step was recorded: {applied:?}"
    );
    let history = chat
        .history(c::HistoryRequest {
            room: "m-room".into(),
            after: 0,
            limit: 10,
        })
        .await?
        .into_inner();
    ensure!(history.messages.is_empty(), "bad input posted a message");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_refuses_bad_json_and_changes_nothing() -> anyhow::Result<()> {
    let ledger = addr("ledger");
    let http = reqwest::Client::new();
    let summary = || async {
        anyhow::Ok(
            http.get(format!("{ledger}/v1/summary"))
                .send()
                .await?
                .json::<serde_json::Value>()
                .await?,
        )
    };
    let before = summary().await?;
    let post = |body: String| {
        http.post(format!("{ledger}/v1/entries"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Each body is wrong in one way only.
    let entry = |seq: &str, id: &str, amount: &str, extra: &str| {
        format!(
            r#"{{"seq":{seq},"transfer_id":"{id}","from":"a","to":"b","amount":{amount},"committed_at_us":1{extra}}}"#
        )
    };
    let batch = |entries: &[String]| format!(r#"{{"entries":[{}]}}"#, entries.join(","));
    for bad in [
        "{".to_owned(),
        batch(&[entry("1", "t", r#""5""#, "")]),
        batch(&[entry("1", "t", "5", r#","extra":1"#)]),
        batch(&[entry("1", "t", "0", "")]),
        batch(&[entry("1", "bad id", "5", "")]),
        batch(&[entry("0", "t", "5", "")]),
        batch(&[entry("2", "t", "5", ""), entry("2", "u", "5", "")]),
        r#"{"base":{"through":1,"volume":-5}}"#.to_owned(),
        r#"{"base":{"through":1,"volume":5,"extra":1}}"#.to_owned(),
        batch(&[entry(
            "1",
            "t",
            "1",
            &format!(r#","pad":"{}""#, "x".repeat(5 << 20)),
        )]),
    ] {
        let status = post(bad.clone()).await?.status().as_u16();
        ensure!(
            (400..500).contains(&status),
            "{}: {status}",
            &bad[..bad.len().min(80)]
        );
    }
    let after = summary().await?;
    ensure!(
        before["entries"] == after["entries"] && before["volume"] == after["volume"],
        "{before} → {after}"
    );
    Ok(())
}
