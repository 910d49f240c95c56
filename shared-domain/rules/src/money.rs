//! Money: integer minor units with checked arithmetic.
//!
//! API.md ranges: a transfer `amount` is `1 ..= 10^15`, an
//! `opening_balance` is `0 ..= 10^15`, and a balance stays within
//! `0 ..= i64::MAX`. Nothing here can overflow silently.

use std::fmt;

/// The largest amount or opening balance API.md accepts.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// Why a number is not acceptable money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// A transfer amount outside `1 ..= 10^15`.
    #[error("amount must be an integer from 1 to {MAX_AMOUNT}")]
    Amount,
    /// An opening balance outside `0 ..= 10^15`.
    #[error("opening_balance must be an integer from 0 to {MAX_AMOUNT}")]
    OpeningBalance,
}

impl MoneyError {
    /// The API.md error code.
    pub fn code(&self) -> &'static str {
        "invalid_amount"
    }
}

/// A transfer amount in minor units, `1 ..= 10^15`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount(i64);

impl Amount {
    /// Validates a transfer amount. `i128` so any JSON integer literal the
    /// edge parsed can be checked without a lossy cast first.
    pub fn new(raw: i128) -> Result<Self, MoneyError> {
        if (1..=i128::from(MAX_AMOUNT)).contains(&raw) {
            Ok(Self(raw as i64))
        } else {
            Err(MoneyError::Amount)
        }
    }

    /// The amount in minor units.
    pub fn minor_units(self) -> i64 {
        self.0
    }
}

/// An opening balance in minor units, `0 ..= 10^15`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpeningBalance(i64);

impl OpeningBalance {
    /// Validates an opening balance.
    pub fn new(raw: i128) -> Result<Self, MoneyError> {
        if (0..=i128::from(MAX_AMOUNT)).contains(&raw) {
            Ok(Self(raw as i64))
        } else {
            Err(MoneyError::OpeningBalance)
        }
    }

    /// The opening balance as a balance.
    pub fn balance(self) -> Balance {
        Balance(self.0)
    }
}

/// An account balance in minor units, `0 ..= i64::MAX`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Balance(i64);

impl Balance {
    /// Zero.
    pub const ZERO: Balance = Balance(0);

    /// Rebuilds a stored balance; `None` if negative.
    pub fn from_stored(raw: i64) -> Option<Self> {
        (raw >= 0).then_some(Self(raw))
    }

    /// The balance in minor units.
    pub fn minor_units(self) -> i64 {
        self.0
    }

    /// `self - amount`, or `None` if that would go below zero.
    pub fn checked_debit(self, amount: Amount) -> Option<Balance> {
        self.0
            .checked_sub(amount.0)
            .filter(|b| *b >= 0)
            .map(Balance)
    }

    /// `self + amount`, or `None` if that would pass `i64::MAX`.
    pub fn checked_credit(self, amount: Amount) -> Option<Balance> {
        self.0.checked_add(amount.0).map(Balance)
    }
}

macro_rules! debug_display {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}
debug_display!(Amount, OpeningBalance, Balance);

/// An exact sum of balances: `i128`, so even `u32::MAX` accounts at
/// `i64::MAX` cannot overflow it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, PartialOrd, Ord)]
pub struct Total(pub i128);

impl Total {
    /// Adds one balance.
    pub fn plus(self, balance: Balance) -> Total {
        Total(self.0 + i128::from(balance.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(Amount::new(0).is_err());
        assert!(Amount::new(1).is_ok());
        assert!(Amount::new(MAX_AMOUNT as i128).is_ok());
        assert!(Amount::new(MAX_AMOUNT as i128 + 1).is_err());
        assert!(Amount::new(-5).is_err());
        assert!(Amount::new(i128::MAX).is_err());
        assert!(OpeningBalance::new(0).is_ok());
        assert!(OpeningBalance::new(-1).is_err());
        assert!(OpeningBalance::new(MAX_AMOUNT as i128 + 1).is_err());
    }

    #[test]
    fn checked_arithmetic() {
        let one = Amount::new(1).unwrap_or_else(|_| unreachable!());
        assert_eq!(Balance::ZERO.checked_debit(one), None);
        assert_eq!(Balance(i64::MAX).checked_credit(one), None);
        assert_eq!(Balance(5).checked_debit(one), Some(Balance(4)));
        assert_eq!(Balance::from_stored(-1), None);
    }
}
