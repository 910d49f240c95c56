//! Bank routes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use shared_domain::bank::{AuditView, TransferRecord, TransferRequest, TransferStatus};
use shared_domain::error::{BankError, CallError};
use shared_domain::id::{AccountId, TransferId};
use shared_domain::money::{Amount, OpeningBalance};

use crate::AppState;
use crate::body::{ExactInt, read_json};
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenAccountBody {
    account_id: String,
    opening_balance: ExactInt,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferBody {
    transfer_id: String,
    from: String,
    to: String,
    amount: ExactInt,
}

/// Runs a call under the request deadline.
pub(crate) async fn within<T, E>(
    state: &AppState,
    call: impl Future<Output = Result<T, CallError<E>>>,
) -> Result<T, CallError<E>> {
    tokio::time::timeout(state.config.request_timeout, call)
        .await
        .unwrap_or(Err(CallError::DeadlineExceeded))
}

/// `POST /v1/accounts`.
pub(crate) async fn open_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body: OpenAccountBody = read_json(&headers, body, state.config.request_timeout).await?;
    let opening = body.opening_balance.value("opening_balance")?;
    let id = AccountId::new(&body.account_id)?;
    let opening = OpeningBalance::new(opening)?;
    let view = within(&state, state.services.accounts.open(id, opening)).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"account_id": view.account_id.as_str(), "balance": view.balance.minor_units()}),
        ),
    )
        .into_response())
}

/// `GET /v1/accounts/{id}`.
pub(crate) async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = AccountId::new(&id)?;
    let view = within(&state, state.services.accounts.balance(&id)).await?;
    Ok(
        Json(
            json!({"account_id": view.account_id.as_str(), "balance": view.balance.minor_units()}),
        )
        .into_response(),
    )
}

/// A transfer's record as `GET /v1/transfers/{id}` answers it.
pub fn record_json(record: &TransferRecord) -> serde_json::Value {
    let mut body = json!({
        "transfer_id": record.request.transfer_id.as_str(),
        "status": record.status.as_str(),
        "from": record.request.from.as_str(),
        "to": record.request.to.as_str(),
        "amount": record.request.amount.minor_units(),
    });
    if let TransferStatus::Rejected(reason) = record.status {
        body["reason"] = json!(reason.code());
    }
    body
}

fn pending(id: &TransferId) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"transfer_id": id.as_str(), "status": "pending"})),
    )
        .into_response()
}

/// A transfer body's values, checked in API.md's order (422 each).
fn transfer_request(body: TransferBody) -> Result<TransferRequest, ApiError> {
    let amount = body.amount.value("amount")?;
    let transfer_id = TransferId::new(&body.transfer_id)?;
    let from = AccountId::new(&body.from)?;
    let to = AccountId::new(&body.to)?;
    let amount = Amount::new(amount)?;
    TransferRequest::new(transfer_id, from, to, amount).map_err(ApiError::from)
}

/// Reads a `POST /v1/transfers` body as the edge does: JSON shape (400),
/// then values (422). For the serialization benches.
pub fn parse_transfer(bytes: &[u8]) -> Result<TransferRequest, ApiError> {
    transfer_request(crate::body::parse_json(bytes)?)
}

/// `POST /v1/transfers`.
pub(crate) async fn transfer(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request = transfer_request(read_json(&headers, body, state.config.request_timeout).await?)?;
    let transfer_id = request.transfer_id.clone();
    match within(&state, state.services.transfers.transfer(request)).await {
        Ok(record) => Ok(transfer_answer(&record)),
        // In flight at the deadline: it completes or is compensated on its
        // own; a repeat or GET tells the outcome.
        Err(CallError::DeadlineExceeded) => Ok(pending(&transfer_id)),
        Err(e) => Err(e.into()),
    }
}

fn transfer_answer(record: &TransferRecord) -> Response {
    let id = &record.request.transfer_id;
    match record.status {
        TransferStatus::Committed => {
            Json(json!({"transfer_id": id.as_str(), "status": "committed"})).into_response()
        }
        TransferStatus::Pending => pending(id),
        TransferStatus::Rejected(reason) => {
            let error = match reason {
                shared_domain::bank::RejectReason::InsufficientFunds => ApiError::new(
                    StatusCode::CONFLICT,
                    reason.code(),
                    format!(
                        "transfer {id} was rejected: insufficient funds in {}",
                        record.request.from
                    ),
                ),
                shared_domain::bank::RejectReason::BalanceOverflow => {
                    ApiError::from(BankError::BalanceOverflow(record.request.to.clone()))
                }
            };
            error.into_response()
        }
    }
}

/// `GET /v1/transfers/{id}`.
pub(crate) async fn get_transfer(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = TransferId::new(&id)?;
    let record = within(&state, state.services.transfers.get(&id)).await?;
    Ok(Json(record_json(&record)).into_response())
}

/// `GET /v1/audit`.
pub(crate) async fn audit(State(state): State<AppState>) -> Result<Response, ApiError> {
    let AuditView {
        accounts,
        total_balance,
        pending_transfers,
    } = within(&state, state.services.ledger.audit()).await?;
    // An exact integer: the sum can exceed i64, so it is written from i128.
    let body = format!(
        "{{\"accounts\":{accounts},\"total_balance\":{},\"pending_transfers\":{pending_transfers}}}",
        total_balance.0
    );
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
