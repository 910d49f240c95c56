//! Security switched on. Service tokens: the whole system still serves
//! API.md (every internal hop, gRPC and HTTP/JSON, carries a token for its
//! callee), and a call without a valid token for the service is refused.
//! mTLS: with a private CA generated at run time, every hop is TLS with
//! client certificates; plaintext and certificate-less calls are refused.

mod common;

use anyhow::ensure;
use tonic::Code;

use microservices::auth::{Minter, TokenKey};
use microservices::wire::pb::bank as b;
use microservices::wire::pb::bank::accounts_client::AccountsClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_internal_call_needs_a_token_for_its_audience() -> anyhow::Result<()> {
    let cluster = common::Cluster::start(false, &["--service-tokens"]);
    let api = contract::Api::new(&cluster.base)?;
    api.open("a1", 100).await?;
    api.open("a2", 0).await?;
    api.transfer("t1", "a1", "a2", 40)
        .await?
        .expect_status(200)?;
    ensure!(api.balance("a2").await? == 40);
    let audit = api.get("/v1/audit").await?;
    ensure!(
        audit.expect_status(200)?["total_balance"] == 100,
        "the ledger hop failed: {}",
        audit.body
    );
    api.get("/readyz").await?.expect_status(200)?;

    let accounts = format!("http://{}", cluster.service("accounts").addr);
    let mut client = AccountsClient::connect(accounts.clone()).await?;
    let refused = client
        .balance(b::BalanceRequest {
            account_id: "a1".into(),
        })
        .await
        .expect_err("no token");
    ensure!(refused.code() == Code::Unauthenticated, "{refused:?}");
    // A token signed with another key, and one for another audience.
    for (key, audience) in [
        (TokenKey::generate(), "accounts"),
        (read_key(&cluster)?, "chat"),
    ] {
        let token = Minter::new(key, "intruder").token_for(audience);
        let mut request = tonic::Request::new(b::BalanceRequest {
            account_id: "a1".into(),
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let refused = client.balance(request).await.expect_err("bad token");
        ensure!(
            refused.code() == Code::Unauthenticated,
            "{audience}: {refused:?}"
        );
    }
    // The right key and audience: accepted.
    let token = Minter::new(read_key(&cluster)?, "test").token_for("accounts");
    let mut request = tonic::Request::new(b::BalanceRequest {
        account_id: "a1".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    ensure!(client.balance(request).await?.into_inner().balance == 60);
    // Probes stay open.
    let channel = tonic::transport::Channel::from_shared(accounts)?
        .connect()
        .await?;
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    ensure!(
        health.into_inner().status
            == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let ledger = format!("http://{}", cluster.service("ledger").addr);
    ensure!(reqwest::get(format!("{ledger}/v1/summary")).await?.status() == 401);
    ensure!(reqwest::get(format!("{ledger}/healthz")).await?.status() == 200);
    Ok(())
}

fn read_key(cluster: &common::Cluster) -> anyhow::Result<TokenKey> {
    TokenKey::from_hex(&std::fs::read_to_string(
        cluster.data_dir().join("secrets").join("token.key"),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_and_tokens_serve_the_whole_api_and_refuse_strangers() -> anyhow::Result<()> {
    use microservices::pki::Pki;
    let cluster = common::Cluster::start(false, &["--mtls", "--service-tokens"]);
    let api = contract::Api::new(&cluster.base)?;
    // Every kind of hop through the gateway: gRPC unary and streaming, the
    // HTTP/JSON ledger, the feed into it.
    contract::cases::transfer_happy_path_and_idempotency(&api).await?;
    contract::cases::websocket_replay_live_and_post(&api).await?;
    contract::cases::operations_routes(&api).await?;

    let addr = cluster.service("accounts").addr;
    // Plaintext is refused.
    let plain = AccountsClient::connect(format!("http://{addr}")).await;
    if let Ok(mut client) = plain {
        ensure!(
            client.totals(b::TotalsRequest {}).await.is_err(),
            "a plaintext call was served"
        );
    }
    let pki = Pki::at(&cluster.data_dir().join("pki"));
    // TLS that trusts the CA but shows no client certificate is refused.
    let anonymous = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pki.ca_pem()?))
        .domain_name("accounts");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(anonymous)?
        .connect()
        .await;
    if let Ok(channel) = channel {
        ensure!(
            AccountsClient::new(channel)
                .totals(b::TotalsRequest {})
                .await
                .is_err(),
            "a call without a client certificate was served"
        );
    }
    // A client certificate from the CA and a token: served.
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(pki.grpc_client("gateway", "accounts")?)?
        .connect()
        .await?;
    let token = Minter::new(read_key(&cluster)?, "test").token_for("accounts");
    let mut request = tonic::Request::new(b::TotalsRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let totals = AccountsClient::new(channel)
        .totals(request)
        .await?
        .into_inner();
    ensure!(totals.accounts >= 2);

    // The health probe Kubernetes runs in each container under mTLS
    // (`microservices probe --pki-dir --as`): a gRPC service and the
    // HTTP/JSON ledger answer it with the service's own certificate, and
    // not a certificate from another CA, nor a plain http:// probe.
    let probe = |url: String, dir: std::path::PathBuf, name: &'static str| {
        tokio::task::spawn_blocking(move || {
            microservices::pki::probe_tls(&url, &dir, name, std::time::Duration::from_secs(2))
        })
    };
    let dir = cluster.data_dir().join("pki");
    for service in ["accounts", "ledger"] {
        let url = format!("https://{}/healthz", cluster.service(service).addr);
        probe(url.clone(), dir.clone(), service).await??;
        let stranger = cluster.data_dir().join("stranger-pki");
        Pki::generate(&stranger, &[service])?;
        ensure!(
            probe(url.clone(), stranger, service).await?.is_err(),
            "{service} answered a certificate from another CA"
        );
        ensure!(
            probe(url.replace("https://", "http://"), dir.clone(), service)
                .await?
                .is_err(),
            "a probe with a certificate needs https"
        );
        ensure!(
            edge::probe::probe(
                &url.replace("https://", "http://"),
                std::time::Duration::from_secs(2)
            )
            .is_err(),
            "{service} answered plain HTTP"
        );
    }
    Ok(())
}
