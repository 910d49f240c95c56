//! Validated identifiers.
//!
//! Every id of API.md (`account_id`, `room`, `transfer_id`, `client_msg_id`,
//! `author` and the WebSocket `user`) matches `[A-Za-z0-9_-]{1,64}`.
//! The newtypes below can only be built through [`validate`], so an id
//! outside that alphabet cannot exist anywhere past the edge.

use std::fmt;
use std::sync::Arc;

/// The longest id API.md allows, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which id (for the message).
        kind: &'static str,
    },
    /// The id is longer than [`MAX_ID_LEN`].
    #[error("{kind} must be at most {MAX_ID_LEN} characters")]
    TooLong {
        /// Which id (for the message).
        kind: &'static str,
    },
    /// The id has a character outside `[A-Za-z0-9_-]`.
    #[error("{kind} may only contain A-Z, a-z, 0-9, '_' and '-'")]
    BadChar {
        /// Which id (for the message).
        kind: &'static str,
    },
}

impl IdError {
    /// The API.md error code.
    pub fn code(&self) -> &'static str {
        "invalid_id"
    }
}

/// Checks `raw` against `[A-Za-z0-9_-]{1,64}`.
pub fn validate(kind: &'static str, raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if raw.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { kind });
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(IdError::BadChar { kind });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps `raw`.
            pub fn new(raw: &str) -> Result<Self, IdError> {
                validate($kind, raw)?;
                Ok(Self(Arc::from(raw)))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(raw: &str) -> Result<Self, IdError> {
                Self::new(raw)
            }
        }
    };
}

id_type!(
    /// An account, `account_id` in API.md.
    AccountId, "account_id"
);
id_type!(
    /// A transfer's idempotency key, `transfer_id` in API.md.
    TransferId, "transfer_id"
);
id_type!(
    /// A chat room, `room` in API.md.
    RoomName, "room"
);
id_type!(
    /// A chat user: a message's `author` or the WebSocket `user`.
    UserId, "user"
);
id_type!(
    /// A post's idempotency key per (room, author), `client_msg_id` in API.md.
    ClientMsgId, "client_msg_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, ok: bool) {
        assert_eq!(AccountId::new(raw).is_ok(), ok, "{raw:?}");
    }

    #[test]
    fn alphabet_and_length() {
        check("a1", true);
        check("A-Z_0-9", true);
        check(&"x".repeat(64), true);
        check(&"x".repeat(65), false);
        check("", false);
        check("a b", false);
        check("a/b", false);
        check("é", false);
        check("a.b", false);
    }

    proptest::proptest! {
        #[test]
        fn valid_iff_alphabet(raw in "\\PC{0,70}") {
            let expected = !raw.is_empty() && raw.len() <= 64
                && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            proptest::prop_assert_eq!(RoomName::new(&raw).is_ok(), expected);
        }
    }
}
