//! A deterministic, seeded workload: accounts to open, a transfer mix with
//! a configurable hot-account skew, balance reads, and chat posts.
//!
//! The same seed gives the same operations on every machine (ChaCha8), so
//! both variants receive exactly the same requests in a comparison run.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bank::TransferRequest;
use crate::chat::{MessageText, PostRequest};
use crate::id::{AccountId, ClientMsgId, RoomName, UserId};
use crate::money::{Amount, OpeningBalance, Total};

/// Knobs of a workload. Built explicitly by the caller (no `Default`).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// A prefix for every generated id, so runs do not collide.
    pub prefix: String,
    /// How many accounts.
    pub accounts: u32,
    /// Opening balance of each account, minor units.
    pub opening_balance: i64,
    /// How many of the accounts are "hot".
    pub hot_accounts: u32,
    /// Probability that a transfer's payer and payee are drawn from the hot set.
    pub hot_fraction: f64,
    /// Largest transfer amount (amounts are uniform in `1..=max_amount`).
    pub max_amount: i64,
    /// How many rooms.
    pub rooms: u32,
    /// How many chat users.
    pub users: u32,
    /// Text length of generated posts, bytes.
    pub text_len: usize,
    /// Relative weights of balance reads, transfers and posts in [`Workload::next_op`].
    pub mix: [u32; 3],
}

impl WorkloadConfig {
    /// A small, uniform bank-and-chat workload for tests.
    pub fn small(seed: u64, prefix: &str) -> Self {
        Self {
            seed,
            prefix: prefix.to_owned(),
            accounts: 50,
            opening_balance: 1_000,
            hot_accounts: 5,
            hot_fraction: 0.5,
            max_amount: 200,
            rooms: 3,
            users: 10,
            text_len: 16,
            mix: [1, 2, 1],
        }
    }
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Read a balance.
    Balance(AccountId),
    /// Make a transfer.
    Transfer(TransferRequest),
    /// Post a chat message.
    Post(PostRequest),
}

/// The generator.
#[derive(Debug, Clone)]
pub struct Workload {
    config: WorkloadConfig,
    rng: ChaCha8Rng,
    transfers: u64,
    posts: u64,
}

/// Why a workload configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// Fewer than two accounts, or a hot set that is too small or too big.
    #[error("need at least 2 accounts and 2 <= hot_accounts <= accounts")]
    Accounts,
    /// An amount or opening balance outside API.md's ranges.
    #[error("opening_balance and max_amount must be within API.md's ranges")]
    Money,
    /// A prefix that would make invalid ids.
    #[error("prefix must be a valid id of at most 32 characters")]
    Prefix,
    /// No rooms or users while posts are in the mix.
    #[error("posts need at least one room and one user")]
    Chat,
}

impl Workload {
    /// Validates the config and seeds the generator.
    pub fn new(config: WorkloadConfig) -> Result<Self, WorkloadError> {
        if config.accounts < 2 || config.hot_accounts < 2 || config.hot_accounts > config.accounts {
            return Err(WorkloadError::Accounts);
        }
        if OpeningBalance::new(config.opening_balance.into()).is_err()
            || Amount::new(config.max_amount.into()).is_err()
        {
            return Err(WorkloadError::Money);
        }
        if config.prefix.len() > 32 || AccountId::new(&format!("{}x", config.prefix)).is_err() {
            return Err(WorkloadError::Prefix);
        }
        if config.mix[2] > 0 && (config.rooms == 0 || config.users == 0) {
            return Err(WorkloadError::Chat);
        }
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Ok(Self {
            config,
            rng,
            transfers: 0,
            posts: 0,
        })
    }

    /// The config.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    fn id<T: std::str::FromStr>(&self, kind: &str, n: u64) -> T
    where
        T::Err: std::fmt::Debug,
    {
        // The prefix was validated and the rest is alphanumeric: this
        // cannot fail, and a test covers it.
        format!("{}{kind}{n}", self.config.prefix)
            .parse()
            .unwrap_or_else(|e| panic!("generated id is invalid: {e:?}"))
    }

    /// The i-th account id.
    pub fn account(&self, i: u32) -> AccountId {
        self.id("a", u64::from(i))
    }

    /// The i-th room.
    pub fn room(&self, i: u32) -> RoomName {
        self.id("r", u64::from(i))
    }

    /// Accounts to open, with their opening balances.
    pub fn accounts(&self) -> Vec<(AccountId, OpeningBalance)> {
        let opening = OpeningBalance::new(self.config.opening_balance.into())
            .unwrap_or_else(|e| panic!("validated in new: {e}"));
        (0..self.config.accounts)
            .map(|i| (self.account(i), opening))
            .collect()
    }

    /// The sum of all opening balances.
    pub fn opening_total(&self) -> Total {
        Total(i128::from(self.config.opening_balance) * i128::from(self.config.accounts))
    }

    /// Rooms to create.
    pub fn rooms(&self) -> Vec<RoomName> {
        (0..self.config.rooms).map(|i| self.room(i)).collect()
    }

    fn pick_pair(&mut self) -> (u32, u32) {
        let range = if self
            .rng
            .random_bool(self.config.hot_fraction.clamp(0.0, 1.0))
        {
            self.config.hot_accounts
        } else {
            self.config.accounts
        };
        let from = self.rng.random_range(0..range);
        let mut to = self.rng.random_range(0..range - 1);
        if to >= from {
            to += 1;
        }
        (from, to)
    }

    /// A random account to read.
    pub fn next_balance(&mut self) -> AccountId {
        let i = self.rng.random_range(0..self.config.accounts);
        self.account(i)
    }

    /// The next transfer (fresh `transfer_id`).
    pub fn next_transfer(&mut self) -> TransferRequest {
        let (from, to) = self.pick_pair();
        let amount = self.rng.random_range(1..=self.config.max_amount);
        self.transfers += 1;
        TransferRequest::new(
            self.id("t", self.transfers),
            self.account(from),
            self.account(to),
            Amount::new(amount.into()).unwrap_or_else(|e| panic!("validated in new: {e}")),
        )
        .unwrap_or_else(|e| panic!("pick_pair returns two accounts: {e}"))
    }

    /// The next post (fresh `client_msg_id`).
    pub fn next_post(&mut self) -> PostRequest {
        let room = self.rng.random_range(0..self.config.rooms.max(1));
        let user = self.rng.random_range(0..self.config.users.max(1));
        self.posts += 1;
        let len = self.config.text_len.clamp(1, crate::chat::MAX_TEXT_BYTES);
        let text: String = (0..len)
            .map(|_| char::from(self.rng.random_range(b'a'..=b'z')))
            .collect();
        PostRequest {
            room: self.room(room),
            author: self.id::<UserId>("u", u64::from(user)),
            text: MessageText::new(&text).unwrap_or_else(|e| panic!("len is clamped: {e}")),
            client_msg_id: self.id::<ClientMsgId>("m", self.posts),
        }
    }

    /// The next operation, drawn by the mix weights.
    pub fn next_op(&mut self) -> Op {
        let [b, t, p] = self.config.mix;
        let total = (b + t + p).max(1);
        let x = self.rng.random_range(0..total);
        if x < b {
            Op::Balance(self.next_balance())
        } else if x < b + t {
            Op::Transfer(self.next_transfer())
        } else {
            Op::Post(self.next_post())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ops() {
        let config = WorkloadConfig::small(7, "w");
        let mut a = Workload::new(config.clone()).expect("valid");
        let mut b = Workload::new(config).expect("valid");
        for _ in 0..1000 {
            assert_eq!(a.next_op(), b.next_op());
        }
    }

    #[test]
    fn transfers_are_valid_and_skewed() {
        let mut config = WorkloadConfig::small(1, "w");
        config.hot_fraction = 0.9;
        let mut w = Workload::new(config).expect("valid");
        let hot: Vec<_> = (0..5).map(|i| w.account(i)).collect();
        let mut hot_count = 0;
        for _ in 0..2000 {
            let t = w.next_transfer();
            assert_ne!(t.from, t.to);
            if hot.contains(&t.from) {
                hot_count += 1;
            }
        }
        // 90% hot + 10% * 5/50 uniform = 91% expected.
        assert!(hot_count > 1700, "hot share {hot_count}/2000");
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut c = WorkloadConfig::small(1, "w");
        c.accounts = 1;
        assert!(Workload::new(c).is_err());
        let mut c = WorkloadConfig::small(1, "bad prefix");
        c.prefix = "bad prefix".into();
        assert!(Workload::new(c).is_err());
        let mut c = WorkloadConfig::small(1, "w");
        c.max_amount = 0;
        assert!(Workload::new(c).is_err());
    }
}
