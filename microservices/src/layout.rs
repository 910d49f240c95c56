//! Placement by configuration: which components share a process.
//!
//! A layout groups the five components into processes, e.g.
//! `gateway+transfers | accounts | ledger | chat`. Inside a group the
//! components call each other in-process through the shared traits;
//! across groups they call each other as the split system does (gRPC, and
//! HTTP/JSON for the ledger), with the same resilience layers. Every
//! component still listens on its own port, so a group's neighbours reach
//! it at the same address whatever the layout. Same binary, same business
//! code: a layout only changes the wiring.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;

/// The services of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum ServiceKind {
    /// Balances and transfer steps (gRPC).
    Accounts,
    /// The transfer saga and its journal (gRPC).
    Transfers,
    /// The read model and the audit (HTTP/JSON).
    Ledger,
    /// Rooms, posts, history, subscriptions (gRPC).
    Chat,
    /// API.md over HTTP and WebSocket (the shared edge).
    Gateway,
}

impl ServiceKind {
    /// Every service, in start order (dependencies first).
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::Accounts,
        ServiceKind::Chat,
        ServiceKind::Ledger,
        ServiceKind::Transfers,
        ServiceKind::Gateway,
    ];

    /// Its place in [`ServiceKind::ALL`]: dependencies first.
    pub fn start_rank(self) -> usize {
        ServiceKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(usize::MAX)
    }

    /// The name used on the command line and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Accounts => "accounts",
            ServiceKind::Transfers => "transfers",
            ServiceKind::Ledger => "ledger",
            ServiceKind::Chat => "chat",
            ServiceKind::Gateway => "gateway",
        }
    }
}

/// Components that share one process, in start order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group(Vec<ServiceKind>);

/// A layout: every component in exactly one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout(Vec<Group>);

/// The named layouts, from fully split to one process: (name, groups,
/// what it is).
pub const PRESETS: [(&str, &str, &str); 4] = [
    (
        "split",
        "accounts | chat | ledger | transfers | gateway",
        "every component its own process (the default)",
    ),
    (
        "edge+saga",
        "gateway+transfers | accounts | ledger | chat",
        "the saga beside the edge; the accounts one gRPC hop away",
    ),
    (
        "bank",
        "gateway | accounts+transfers+ledger | chat",
        "the bank in one process behind a separate gateway",
    ),
    (
        "one",
        "gateway+accounts+transfers+ledger+chat",
        "every component in one process, each still serving its port",
    ),
];

/// Why a layout or group could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A name that is no component.
    #[error("no component `{0}` (accounts, transfers, ledger, chat, gateway)")]
    Unknown(String),
    /// A component placed twice.
    #[error("`{0}` is placed twice")]
    Twice(&'static str),
    /// A component placed nowhere.
    #[error("`{0}` is placed nowhere")]
    Missing(&'static str),
    /// An empty group.
    #[error("an empty group")]
    Empty,
}

impl Group {
    /// One component alone.
    pub fn one(kind: ServiceKind) -> Self {
        Self(vec![kind])
    }

    /// Its components, in start order.
    pub fn kinds(&self) -> &[ServiceKind] {
        &self.0
    }

    /// Whether `kind` runs in this process.
    pub fn has(&self, kind: ServiceKind) -> bool {
        self.0.contains(&kind)
    }

    /// The process's name: its components joined by `+`.
    pub fn name(&self) -> String {
        self.0
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join("+")
    }
}

impl FromStr for Group {
    type Err = LayoutError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut kinds = Vec::new();
        for name in text.split('+').map(str::trim).filter(|n| !n.is_empty()) {
            let kind = ServiceKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| LayoutError::Unknown(name.to_owned()))?;
            if kinds.contains(&kind) {
                return Err(LayoutError::Twice(kind.name()));
            }
            kinds.push(kind);
        }
        if kinds.is_empty() {
            return Err(LayoutError::Empty);
        }
        kinds.sort_by_key(|k| k.start_rank());
        Ok(Self(kinds))
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Layout {
    /// Every component its own process.
    pub fn split() -> Self {
        Self(ServiceKind::ALL.into_iter().map(Group::one).collect())
    }

    /// The processes, in start order (a group starts once every group
    /// holding an earlier component has: the gateway's last).
    pub fn groups(&self) -> &[Group] {
        &self.0
    }

    /// The group that runs `kind`.
    pub fn group_of(&self, kind: ServiceKind) -> Option<&Group> {
        self.0.iter().find(|g| g.has(kind))
    }

    /// Process boundaries a transfer crosses on its critical path:
    /// gateway → transfers → accounts.
    pub fn transfer_boundaries(&self) -> usize {
        [
            (ServiceKind::Gateway, ServiceKind::Transfers),
            (ServiceKind::Transfers, ServiceKind::Accounts),
        ]
        .into_iter()
        .filter(|(a, b)| self.group_of(*a) != self.group_of(*b))
        .count()
    }

    /// The preset this layout is, if it is one.
    pub fn preset(&self) -> Option<&'static str> {
        PRESETS
            .iter()
            .find(|(_, groups, _)| groups.parse::<Layout>().ok().as_ref() == Some(self))
            .map(|(name, _, _)| *name)
    }
}

impl FromStr for Layout {
    type Err = LayoutError;

    /// A preset's name, or groups separated by `|`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = PRESETS
            .iter()
            .find(|(name, _, _)| *name == text.trim())
            .map_or(text, |(_, groups, _)| groups);
        let mut groups = text
            .split('|')
            .map(str::parse::<Group>)
            .collect::<Result<Vec<_>, _>>()?;
        for kind in ServiceKind::ALL {
            match groups.iter().filter(|g| g.has(kind)).count() {
                0 => return Err(LayoutError::Missing(kind.name())),
                1 => {}
                _ => return Err(LayoutError::Twice(kind.name())),
            }
        }
        groups.sort_by_key(|g| g.kinds().iter().map(|k| k.start_rank()).max());
        Ok(Self(groups))
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self.0.iter().map(Group::name).collect();
        f.write_str(&groups.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_read_presets_and_groups_and_refuse_what_places_a_component_wrongly() {
        let split: Layout = "split".parse().expect("preset");
        assert_eq!(split, Layout::split());
        assert_eq!(split.transfer_boundaries(), 2);
        let middle: Layout = " transfers + gateway | accounts|ledger | chat"
            .parse()
            .expect("groups");
        assert_eq!(middle.preset(), Some("edge+saga"));
        assert_eq!(
            middle.to_string(),
            "accounts | chat | ledger | transfers+gateway",
            "start order: each group once its earlier components' groups are up"
        );
        assert_eq!(middle.transfer_boundaries(), 1);
        let one: Layout = "one".parse().expect("preset");
        assert_eq!((one.groups().len(), one.transfer_boundaries()), (1, 0));
        assert_eq!(
            "gateway | accounts+transfers+ledger | chat"
                .parse::<Layout>()
                .map(|l| l.transfer_boundaries()),
            Ok(1)
        );
        assert_eq!(
            "gateway | accounts | chat".parse::<Layout>(),
            Err(LayoutError::Missing("ledger"))
        );
        assert_eq!(
            "split | gateway".parse::<Layout>(),
            Err(LayoutError::Unknown("split".into()))
        );
        assert_eq!(
            "gateway+gateway | accounts".parse::<Layout>(),
            Err(LayoutError::Twice("gateway"))
        );
        assert_eq!(
            "gateway+accounts+transfers+ledger+chat | chat".parse::<Layout>(),
            Err(LayoutError::Twice("chat"))
        );
        assert_eq!(
            "a+ | b".parse::<Group>(),
            Err(LayoutError::Unknown("a".into()))
        );
        assert_eq!("".parse::<Group>(), Err(LayoutError::Empty));
        for (name, groups, _) in PRESETS {
            let layout: Layout = groups.parse().expect("every preset is a layout");
            assert_eq!(layout.preset(), Some(name));
        }
    }
}
