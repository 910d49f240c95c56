//! Every refusal as API.md's error body: `{"error":{"code","message"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use shared_domain::error::{BankError, CallError, ChatError};
use shared_domain::id::IdError;
use shared_domain::money::MoneyError;

/// An API error: a status, an API.md code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// API.md code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 429 `overloaded`.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<IdError> for ApiError {
    fn from(e: IdError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
    }
}

impl From<MoneyError> for ApiError {
    fn from(e: MoneyError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
    }
}

impl From<BankError> for ApiError {
    fn from(e: BankError) -> Self {
        let status = match &e {
            BankError::UnknownAccount(_) | BankError::UnknownTransfer(_) => StatusCode::NOT_FOUND,
            BankError::AccountExists(_)
            | BankError::InsufficientFunds { .. }
            | BankError::IdempotencyConflict(_) => StatusCode::CONFLICT,
            BankError::InvalidTransfer | BankError::BalanceOverflow(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        let status = match &e {
            ChatError::UnknownRoom(_) => StatusCode::NOT_FOUND,
            ChatError::RoomExists(_) | ChatError::IdempotencyConflict(_) => StatusCode::CONFLICT,
            ChatError::InvalidText => StatusCode::UNPROCESSABLE_ENTITY,
            ChatError::MessageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl<E: Into<ApiError>> From<CallError<E>> for ApiError {
    fn from(e: CallError<E>) -> Self {
        match e {
            CallError::Domain(e) => e.into(),
            CallError::Unavailable(why) => {
                tracing::debug!(reason = %why, "component unavailable");
                Self::unavailable("a component is unavailable, retry later")
            }
            CallError::Overloaded => Self::overloaded("too many requests in flight, retry later"),
            CallError::DeadlineExceeded => {
                Self::unavailable("no answer before the request deadline, retry later")
            }
        }
    }
}
