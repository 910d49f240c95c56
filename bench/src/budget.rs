//! The core budget both variants get, and how each variant's tokio
//! runtimes are sized to it: a policy of the harness, recorded in
//! `env.json` with every process's worker count.
//!
//! Both variants run on the same cores (every core of the machine, shared
//! with the load generator). The monolith and the microlith are one process each: one worker per
//! core. The microservices are five service processes (and a launcher
//! that only supervises them): left at tokio's default, each starts one
//! worker per core, so on two cores ten workers wake and steal from each
//! other on every hop. Sized, the cores are split evenly among the five,
//! and each gets one worker when they outnumber the cores. `--runtimes
//! tokio-default` runs the microservices as they ship without the harness,
//! and the cost part measures that configuration beside the sized one in
//! every run.

use crate::record::{ProcessRuntime, Sizing};

/// The service processes of the microservices (gateway, transfers,
/// accounts, ledger, chat); the launcher runs one worker of its own.
pub const SERVICE_PROCESSES: usize = 5;

/// A placement of the microservices the harness measures besides the
/// split one: a preset of `microservices up --layout`, the name the run
/// gives it, how many processes it starts and which process holds the
/// accounts (a test checks them against the launcher's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The preset's name.
    pub name: &'static str,
    /// The variant's name in a run: `microservices@<name>`.
    pub variant: &'static str,
    /// Its service processes.
    pub processes: usize,
    /// The process that holds the accounts (what its crash kills).
    pub accounts_process: &'static str,
}

/// The placements between one process and split, fewest processes first.
pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "one",
        variant: "microservices@one",
        processes: 1,
        accounts_process: "the one process, every service and the gateway too",
    },
    Preset {
        name: "bank",
        variant: "microservices@bank",
        processes: 3,
        accounts_process: "the accounts+transfers+ledger process",
    },
    Preset {
        name: "edge+saga",
        variant: "microservices@edge+saga",
        processes: 4,
        accounts_process: "the accounts process",
    },
];

/// The preset a run's variant is, if it is one.
pub fn preset_of(variant: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.variant == variant)
}

/// The cores both variants get, and the sizing of the microservices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Cores of the machine, all of them shared by both variants and the
    /// load generator.
    pub cores: usize,
    /// How the microservices' runtimes are sized to them.
    pub sizing: Sizing,
}

impl Budget {
    /// Every core of this machine.
    pub fn of_machine(sizing: Sizing) -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            sizing,
        }
    }

    /// The workers of a one-process variant (the monolith, the
    /// microlith): one per core.
    pub fn microlith_workers(&self) -> usize {
        self.cores.max(1)
    }

    /// Each service process's workers.
    pub fn service_workers(&self) -> usize {
        self.workers_among(SERVICE_PROCESSES)
    }

    /// Each process's workers when the microservices run in `processes`
    /// service processes: the cores split among them when sized.
    fn workers_among(&self, processes: usize) -> usize {
        match self.sizing {
            Sizing::Sized => (self.cores / processes.max(1)).max(1),
            Sizing::TokioDefault => self.cores.max(1),
        }
    }

    /// The microservices' environment for `processes` service processes:
    /// sized workers, or none (tokio's default).
    fn env_among(&self, processes: usize) -> Vec<(&'static str, String)> {
        match self.sizing {
            Sizing::Sized => vec![(
                "MICROSERVICES_WORKERS",
                self.workers_among(processes).to_string(),
            )],
            Sizing::TokioDefault => Vec::new(),
        }
    }

    /// The microlith's environment (knobs by environment, so that older
    /// binaries, which ignore them, can be measured by the same harness).
    pub fn microlith_env(&self) -> Vec<(&'static str, String)> {
        vec![("MICROLITH_WORKERS", self.microlith_workers().to_string())]
    }

    /// The monolith's environment: as many workers as the microlith.
    pub fn monolith_env(&self) -> Vec<(&'static str, String)> {
        vec![("MONOLITH_WORKERS", self.microlith_workers().to_string())]
    }

    /// The microservices' environment: sized workers, or none (tokio's
    /// default).
    pub fn microservices_env(&self) -> Vec<(&'static str, String)> {
        self.env_among(SERVICE_PROCESSES)
    }

    /// The environment of a placed microservices: with the sized policy,
    /// the cores split among its processes (at least one worker each).
    pub fn placed_env(&self, preset: &Preset) -> Vec<(&'static str, String)> {
        self.env_among(preset.processes)
    }

    /// Each process's workers in a placed microservices.
    pub fn placed_workers(&self, preset: &Preset) -> usize {
        self.workers_among(preset.processes)
    }

    /// Every process's workers, for `env.json`.
    pub fn processes(&self) -> Vec<ProcessRuntime> {
        let row = |variant: &str, process: &str, workers| ProcessRuntime {
            variant: variant.to_owned(),
            process: process.to_owned(),
            workers,
        };
        let mut rows = vec![
            row("monolith", "monolith", self.microlith_workers()),
            row("microlith", "microlith", self.microlith_workers()),
        ];
        for process in ["gateway", "transfers", "accounts", "ledger", "chat"] {
            rows.push(row("microservices", process, self.service_workers()));
        }
        rows.push(row("microservices", "launcher", 1));
        for preset in PRESETS {
            rows.push(row(
                preset.variant,
                "each service process",
                self.placed_workers(&preset),
            ));
        }
        rows
    }

    /// The policy in one sentence, for the report.
    pub fn describe(&self) -> String {
        let per_service = self.service_workers();
        format!(
            "{} core(s) shared by every variant and the load generator; the monolith and the microlith: 1 process each with {} worker(s); \
             the microservices ({}): {} service processes with {} worker(s) each ({} in all) and a launcher with 1",
            self.cores,
            self.microlith_workers(),
            self.sizing.name(),
            SERVICE_PROCESSES,
            per_service,
            per_service * SERVICE_PROCESSES,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_runtimes_split_the_cores_and_never_go_below_one_worker() {
        let two = Budget {
            cores: 2,
            sizing: Sizing::Sized,
        };
        assert_eq!((two.microlith_workers(), two.service_workers()), (2, 1));
        assert_eq!(
            two.microservices_env(),
            vec![("MICROSERVICES_WORKERS", "1".to_owned())]
        );
        let sixteen = Budget {
            cores: 16,
            sizing: Sizing::Sized,
        };
        assert_eq!(sixteen.service_workers(), 3);
        let default = Budget {
            cores: 2,
            sizing: Sizing::TokioDefault,
        };
        assert_eq!(default.service_workers(), 2);
        assert!(
            default.microservices_env().is_empty(),
            "tokio's default is no setting at all"
        );
        let rows = two.processes();
        assert_eq!(
            rows.iter()
                .filter(|r| r.variant == "microservices")
                .map(|r| r.workers)
                .sum::<usize>(),
            6
        );
        assert_eq!(rows.len(), 8 + PRESETS.len());
    }

    #[test]
    fn the_presets_measured_are_the_launchers_with_as_many_processes() {
        for preset in PRESETS {
            let (_, groups, _) = microservices::layout::PRESETS
                .iter()
                .find(|(name, _, _)| *name == preset.name)
                .unwrap_or_else(|| panic!("{} is no preset of the launcher", preset.name));
            let layout: microservices::layout::Layout = groups.parse().expect("a layout");
            assert_eq!(layout.groups().len(), preset.processes, "{}", preset.name);
            assert_eq!(preset.variant, format!("microservices@{}", preset.name));
            let accounts = layout
                .group_of(microservices::process::ServiceKind::Accounts)
                .expect("a group");
            assert_eq!(
                accounts.kinds().len() == 1,
                preset.accounts_process == "the accounts process",
                "{}",
                preset.name
            );
        }
    }
}
