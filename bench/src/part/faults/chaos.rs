//! Seeded chaos: a fresh durable instance of a variant under transfers
//! and chat posts at once, while a seeded sequence of its faults (the
//! fault table's menu for it: kill -9, pause, panics, graceful restarts,
//! upgrades; under compose the containers' crash, pause, partition and
//! restart) hits it at seeded moments, one after another. Afterwards the
//! invariants: money conserved and nothing pending, every acknowledged
//! transfer with its outcome, every acknowledged post in its room at its
//! sequence number, every history gap-free. A round that breaks one fails
//! the run with the command that runs that round again.

use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng, SeedableRng};

use super::run::{self, Back, FaultLoad, Injection};
use super::{FaultPlan, Instances, container_plans, injection, plans, start};
use crate::generator::Runtimes;
use crate::record::{ChaosFault, ChaosRecord, Profile, Scenario};

/// The faults a round may draw for `variant`: the fault table's, for the
/// way it is deployed.
pub fn menu(profile: &Profile, variant: &str, instances: Instances<'_>) -> Vec<FaultPlan> {
    let all = match instances {
        Instances::Local { .. } => plans(profile),
        Instances::Compose { .. } => container_plans(profile),
    };
    all.into_iter().filter(|p| p.variant == variant).collect()
}

/// What a seed draws: `count` faults from a menu of `menu` kinds, each at
/// a moment within the first 70 % of a `seconds`-long round (from 10 %
/// on: a norm before the first), in order of time. The same seed draws
/// the same round (ChaCha8, fixed by `rand_chacha`'s version in the lock).
pub fn draw(seed: u64, menu: usize, count: usize, seconds: f64) -> Vec<(Duration, usize)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut drawn: Vec<(Duration, usize)> = (0..count)
        .map(|_| {
            let at = rng.random_range(0.1..0.7) * seconds;
            (
                Duration::from_secs_f64(at),
                rng.random_range(0..menu.max(1)),
            )
        })
        .collect();
    drawn.sort_by_key(|d| d.0);
    drawn
}

/// The command that runs one round again: with the round's profile,
/// whose length and number of faults the seed's draw depends on.
pub fn reproduce(profile: &Profile, variant: &str, seed: u64, compose: bool) -> String {
    format!(
        "cargo run --release --bin bench -- run chaos --{}{} --chaos-variant {variant} --chaos-seed {seed} --chaos-rounds 1",
        profile.name,
        if compose { " --deploy compose" } else { "" }
    )
}

/// One round of `variant` with `seed`, against a fresh instance.
pub fn round(
    profile: &Profile,
    variant: &'static str,
    seed: u64,
    instances: Instances<'_>,
    runtimes: &Runtimes,
) -> anyhow::Result<ChaosRecord> {
    let compose = matches!(instances, Instances::Compose { .. });
    let menu = menu(profile, variant, instances);
    anyhow::ensure!(!menu.is_empty(), "no faults for {variant}");
    let seconds = profile.chaos_seconds;
    let drawn = draw(seed, menu.len(), profile.chaos_faults, seconds);
    let instance = start(variant, &format!("chaos-{seed}"), instances, runtimes)?;
    let outcome = (|| {
        let (mut workload, api) = runtimes.prepared(profile, &instance.base)?;
        let http = crate::generator::client::Client::new(Duration::from_secs(10));
        let pause = Duration::from_secs_f64(profile.fault_pause_s);
        let load = |scenario, rate| FaultLoad {
            variant,
            base: &instance.base,
            fault: "seeded chaos",
            scenario,
            rate,
            seconds,
            at: Duration::ZERO,
        };
        let nothing = || Injection {
            inject: Box::new(|| {}),
            back: Back::Unknown,
        };
        // Each load keeps its own workload's calls; the posts' rooms and
        // the transfers' accounts are the same prepared ones.
        let mut posts_workload = workload.clone();
        let control = runtimes.control.handle();
        let started = Instant::now();
        let (transfers, posts, faults) = std::thread::scope(|scope| {
            let injector = scope.spawn(|| {
                let mut made = Vec::new();
                for (at, pick) in &drawn {
                    std::thread::sleep(at.saturating_sub(started.elapsed()));
                    let plan = &menu[*pick];
                    let made_at = started.elapsed();
                    // Built at its moment: a restarted process has a new pid.
                    let back = match injection(plan, &instance, control, pause) {
                        Ok(Injection { inject, back }) => {
                            let injected = Instant::now();
                            inject();
                            back.wait(injected)
                        }
                        Err(e) => {
                            eprintln!("chaos {variant} seed {seed}: {} not made: {e:#}", plan.kind);
                            None
                        }
                    };
                    made.push(ChaosFault {
                        kind: plan.kind.to_owned(),
                        at_s: made_at.as_secs_f64(),
                        back_s: back.map(|d| d.as_secs_f64()),
                    });
                }
                made
            });
            let posts = scope.spawn(|| {
                run::run_fault(
                    runtimes.client.handle(),
                    &http,
                    load(Scenario::Post, profile.fault_rate / 4.0),
                    &mut posts_workload,
                    nothing(),
                )
            });
            let transfers = run::run_fault(
                runtimes.client.handle(),
                &http,
                load(Scenario::Transfer, profile.fault_rate / 2.0),
                &mut workload,
                nothing(),
            );
            let posts = posts.join();
            let faults = injector.join();
            (transfers, posts, faults)
        });
        let posts = posts.map_err(|_| anyhow::format_err!("the posts' load panicked"))?;
        let faults = faults.map_err(|_| anyhow::format_err!("the injector panicked"))?;
        let transfers = runtimes
            .control
            .block_on(transfers.check(&api, &workload))?;
        let posts = runtimes
            .control
            .block_on(posts.check(&api, &posts_workload))?;
        anyhow::Ok(ChaosRecord {
            variant: variant.to_owned(),
            seed,
            faults,
            transfers,
            posts,
            follows_restarts: true,
        })
    })();
    runtimes.control.block_on(instance.stop());
    outcome.with_context(|| {
        format!(
            "chaos round of {variant}, seed {seed}; run it again: {}",
            reproduce(profile, variant, seed, compose)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_round_and_another_seed_another() {
        let a = draw(7, 5, 4, 10.0);
        assert_eq!(a, draw(7, 5, 4, 10.0));
        assert_ne!(a, draw(8, 5, 4, 10.0));
        assert_eq!(a.len(), 4);
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0), "in order of time");
        assert!(
            a.iter()
                .all(|(at, pick)| *pick < 5 && (1.0..7.0).contains(&at.as_secs_f64())),
            "{a:?}"
        );
    }

    #[test]
    fn every_variant_has_a_menu_and_the_command_names_the_round() {
        let profile = Profile::quick();
        let instances = Instances::Local {
            bin: std::path::Path::new("."),
            scratch: std::path::Path::new("."),
            budget: crate::budget::Budget::of_machine(crate::record::Sizing::Sized),
        };
        for variant in ["monolith", "microlith", "microservices"] {
            let menu = menu(&profile, variant, instances);
            assert!(menu.len() >= 3, "{variant}: {}", menu.len());
        }
        assert!(reproduce(&profile, "microlith", 42, false).ends_with(
            "run chaos --quick --chaos-variant microlith --chaos-seed 42 --chaos-rounds 1"
        ));
        // A round of `--full` draws from its own length and count.
        assert!(
            reproduce(&Profile::full(), "monolith", 7, true)
                .ends_with("run chaos --full --deploy compose --chaos-variant monolith --chaos-seed 7 --chaos-rounds 1")
        );
    }
}
