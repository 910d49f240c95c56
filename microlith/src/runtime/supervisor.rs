//! Supervisors: restart strategies and intensity, as in Erlang/OTP.
//!
//! A child (an actor, or another supervisor) runs in its own task and obeys
//! `Control` messages from its supervisor. When an actor's handler panics,
//! the actor instance is dropped, every message waiting in its mailbox is
//! failed at once (callers get `Unavailable`), and the child reports
//! `Failed`. The supervisor then applies its [`Strategy`]:
//! - `OneForOne`: restart only the failed child;
//! - `OneForAll`: restart every child;
//! - `RestForOne`: restart the failed child and every child started after it.
//!
//! More than `max_restarts` within `within` escalates: the supervisor
//! suspends all its children and reports itself failed to its parent, whose
//! strategy then decides. A root supervisor that escalates stays suspended
//! (every call answers `Unavailable`) and tells the system through
//! [`SupervisorEvent::Escalated`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::actor::{Actor, ActorRef};
use super::cell::{Cell, Failed, ParentLink};

/// Which children restart when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Only the failed child.
    OneForOne,
    /// Every child.
    OneForAll,
    /// The failed child and the ones started after it.
    RestForOne,
}

/// Restart intensity: more than `max_restarts` within `within` escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts tolerated within the window.
    pub max_restarts: u32,
    /// The window.
    pub within: Duration,
}

/// What a supervisor tells a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Drop the current instance (failing pending calls) and start afresh.
    Restart,
    /// Drop the current instance and refuse messages until resumed.
    Suspend,
    /// Start again after a failure or a suspension.
    Resume,
    /// Finish the current batch and exit for good.
    Stop,
}

/// Something the root supervisor reports to the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorEvent {
    /// The named supervisor exceeded its intensity and had no parent to
    /// escalate to: its subtree is suspended.
    Escalated(String),
}

enum Command {
    Add(ChildSpec),
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// A child ready to be supervised: its id, control port and task.
pub struct ChildSpec {
    id: u64,
    name: String,
    ctl: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
}

/// A handle to a running supervisor: start children under it, stop it.
#[derive(Clone)]
pub struct SupervisorHandle {
    name: Arc<str>,
    commands: mpsc::UnboundedSender<Command>,
    failed: mpsc::UnboundedSender<Failed>,
    next_id: Arc<AtomicU64>,
    restarts: Arc<AtomicU64>,
}

impl SupervisorHandle {
    fn link(&self) -> ParentLink {
        ParentLink::new(
            self.failed.clone(),
            self.next_id.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// The supervisor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Restarts this supervisor has ordered so far (all strategies).
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Starts an actor under this supervisor with a mailbox of `mailbox`
    /// messages. `A::start` runs in the actor's task; if it fails the child
    /// counts as failed.
    pub fn spawn<A: Actor>(&self, name: &str, args: A::Args, mailbox: usize) -> ActorRef<A::Msg> {
        let (tx, rx) = mpsc::channel(mailbox.max(1));
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (gen_tx, gen_rx) = watch::channel(0u64);
        let link = self.link();
        let id = link.child();
        let full_name: Arc<str> = Arc::from(name);
        let core = Arc::new(Cell::<A>::new(args, link, gen_tx, full_name.clone()));
        let task = tokio::spawn(run_actor::<A>(core.clone(), rx, ctl_rx));
        let _ = self.commands.send(Command::Add(ChildSpec {
            id,
            name: name.to_owned(),
            ctl: ctl_tx,
            task,
        }));
        ActorRef {
            tx,
            generation: gen_rx,
            name: full_name,
            direct: core,
        }
    }

    /// Starts a child supervisor.
    pub fn spawn_supervisor(
        &self,
        name: &str,
        strategy: Strategy,
        intensity: Intensity,
    ) -> SupervisorHandle {
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let link = self.link();
        let id = link.child();
        let (handle, task) =
            Supervisor::start(name, strategy, intensity, Some((link, ctl_rx)), None);
        let _ = self.commands.send(Command::Add(ChildSpec {
            id,
            name: name.to_owned(),
            ctl: ctl_tx,
            task,
        }));
        handle
    }

    /// Stops every child (the last started first), letting each finish its
    /// current batch, and waits for them.
    pub async fn stop(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.commands.send(Command::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The supervisor task's state.
pub struct Supervisor {
    name: String,
    strategy: Strategy,
    intensity: Intensity,
    children: Vec<ChildSpec>,
    history: VecDeque<Instant>,
    restarts: Arc<AtomicU64>,
    parent: Option<(ParentLink, mpsc::UnboundedReceiver<Control>)>,
    events: Option<mpsc::UnboundedSender<SupervisorEvent>>,
}

impl Supervisor {
    /// Starts a root supervisor. Escalations arrive on the returned receiver.
    pub fn root(
        name: &str,
        strategy: Strategy,
        intensity: Intensity,
    ) -> (SupervisorHandle, mpsc::UnboundedReceiver<SupervisorEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (handle, _task) = Self::start(name, strategy, intensity, None, Some(tx));
        (handle, rx)
    }

    fn start(
        name: &str,
        strategy: Strategy,
        intensity: Intensity,
        parent: Option<(ParentLink, mpsc::UnboundedReceiver<Control>)>,
        events: Option<mpsc::UnboundedSender<SupervisorEvent>>,
    ) -> (SupervisorHandle, JoinHandle<()>) {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (failed_tx, failed_rx) = mpsc::unbounded_channel();
        let restarts = Arc::new(AtomicU64::new(0));
        let handle = SupervisorHandle {
            name: Arc::from(name),
            commands: cmd_tx,
            failed: failed_tx,
            next_id: Arc::new(AtomicU64::new(0)),
            restarts: restarts.clone(),
        };
        let sup = Supervisor {
            name: name.to_owned(),
            strategy,
            intensity,
            children: Vec::new(),
            history: VecDeque::new(),
            restarts,
            parent,
            events,
        };
        let task = tokio::spawn(sup.run(cmd_rx, failed_rx));
        (handle, task)
    }

    fn send_all(&self, control: Control) {
        for child in &self.children {
            let _ = child.ctl.send(control);
        }
    }

    /// Records a restart; `true` if the intensity is exceeded.
    fn exceeded(&mut self) -> bool {
        let now = Instant::now();
        self.history.push_back(now);
        while let Some(first) = self.history.front() {
            if now.duration_since(*first) > self.intensity.within {
                self.history.pop_front();
            } else {
                break;
            }
        }
        self.history.len() > self.intensity.max_restarts as usize
    }

    fn on_failed(&mut self, child: u64) -> bool {
        let Some(pos) = self.children.iter().position(|c| c.id == child) else {
            return false;
        };
        if self.exceeded() {
            tracing::error!(supervisor = %self.name, child = %self.children[pos].name,
                "restart intensity exceeded, escalating");
            metrics::counter!("microlith_supervisor_escalations_total", "supervisor" => self.name.clone())
                .increment(1);
            self.send_all(Control::Suspend);
            return true;
        }
        tracing::warn!(supervisor = %self.name, child = %self.children[pos].name, strategy = ?self.strategy,
            "child failed, restarting");
        self.restarts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("microlith_actor_restarts_total", "actor" => self.children[pos].name.clone())
            .increment(1);
        for (i, c) in self.children.iter().enumerate() {
            let control = match self.strategy {
                _ if i == pos => Control::Resume,
                Strategy::OneForOne => continue,
                Strategy::OneForAll => Control::Restart,
                Strategy::RestForOne if i > pos => Control::Restart,
                Strategy::RestForOne => continue,
            };
            let _ = c.ctl.send(control);
        }
        false
    }

    async fn parent_control(&mut self) -> Option<Control> {
        match &mut self.parent {
            Some((_, ctl)) => ctl.recv().await,
            None => std::future::pending().await,
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut failed: mpsc::UnboundedReceiver<Failed>,
    ) {
        let mut escalated = false;
        // Dropping every handle does not stop a supervisor: it runs until
        // stopped by its parent or by `stop`.
        let mut commands_open = true;
        loop {
            tokio::select! {
                biased;
                control = self.parent_control() => match control {
                    Some(Control::Restart) | Some(Control::Resume) => {
                        // The parent restarts this subtree: a fresh start,
                        // with a fresh restart history.
                        self.history.clear();
                        escalated = false;
                        self.send_all(if control == Some(Control::Resume) { Control::Resume } else { Control::Restart });
                    }
                    Some(Control::Suspend) => self.send_all(Control::Suspend),
                    Some(Control::Stop) | None => {
                        self.stop_children().await;
                        return;
                    }
                },
                command = commands.recv(), if commands_open => match command {
                    Some(Command::Add(spec)) => self.children.push(spec),
                    Some(Command::Stop(done)) => {
                        self.stop_children().await;
                        let _ = done.send(());
                        return;
                    }
                    None => commands_open = false,
                },
                Some(Failed { child }) = failed.recv() => {
                    if escalated {
                        // Already suspended: the failure is part of the same incident.
                        continue;
                    }
                    if self.on_failed(child) {
                        escalated = true;
                        match (&self.parent, &self.events) {
                            (Some((link, _)), _) => link.report_failed(),
                            (None, Some(events)) => {
                                let _ = events.send(SupervisorEvent::Escalated(self.name.clone()));
                            }
                            (None, None) => {}
                        }
                    }
                }
            }
        }
    }

    async fn stop_children(&mut self) {
        for child in self.children.iter().rev() {
            let _ = child.ctl.send(Control::Stop);
        }
        for child in self.children.drain(..).rev() {
            let _ = child.task.await;
        }
    }
}

/// Runs one actor child: starts it, serves queued messages, and obeys its
/// supervisor, until stopped. The state sits in a [`Cell`] shared with the
/// actor's refs (see `ActorRef::call` for the direct hand-off).
async fn run_actor<A: Actor>(
    core: Arc<Cell<A>>,
    mut rx: mpsc::Receiver<A::Msg>,
    mut ctl: mpsc::UnboundedReceiver<Control>,
) {
    core.start_instance();
    loop {
        tokio::select! {
            biased;
            control = ctl.recv() => match control {
                Some(Control::Resume) | Some(Control::Restart) => {
                    core.stop_instance();
                    core.start_instance();
                }
                Some(Control::Suspend) => core.stop_instance(),
                Some(Control::Stop) | None => {
                    core.flush_and_stop();
                    return;
                }
            },
            msg = rx.recv() => {
                let Some(msg) = msg else {
                    core.flush_and_stop();
                    return;
                };
                core.handle_queued(msg, rx.is_empty());
            }
        }
    }
}
