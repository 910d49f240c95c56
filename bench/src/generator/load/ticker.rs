//! The scheduler's timer: a `timerfd` on the client runtime's reactor.

use std::time::Instant;

/// The scheduler's sleeps, on the client runtime itself.
///
/// tokio's own timer rounds to the millisecond, too coarse for a schedule
/// of tens of microseconds. On Linux the scheduler arms a `timerfd` (its
/// expiry is a high-resolution timer with no timer slack) and waits for
/// it on the runtime's reactor like any socket: the thread that sends the
/// requests wakes once for its timer and its sockets together, and nothing
/// crosses threads per request. Elsewhere tokio's timer serves.
pub(super) struct Ticker {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl Ticker {
    /// A ticker for the current runtime (call it on the runtime).
    pub(super) fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
            // tokio 1.54 deprecates the safe constructor for its unsafe
            // `register_with_interest`, whose promise is that the fd stays
            // open while registered: an `OwnedFd` moved into the AsyncFd
            // keeps it (and this crate forbids unsafe code).
            #[allow(deprecated)]
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .ok()
            .and_then(|fd| {
                tokio::io::unix::AsyncFd::with_interest(fd, tokio::io::Interest::READABLE).ok()
            });
            Self { fd }
        }
        #[cfg(not(target_os = "linux"))]
        Self {}
    }

    /// Returns at `deadline` or soon after.
    pub(super) async fn sleep_until(&mut self, deadline: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return;
            }
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: wait.as_secs() as _,
                    tv_nsec: wait.subsec_nanos() as _,
                },
            };
            // Arming resets the expiry count, so a readiness left from the
            // last expiry reads as "would block" below and is cleared.
            if timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec).is_ok() {
                loop {
                    let Ok(mut ready) = fd.readable().await else {
                        break;
                    };
                    match rustix::io::read(fd.get_ref(), &mut [0u8; 8]) {
                        Ok(_) => return,
                        Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                        Err(_) => break,
                    }
                }
            }
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}
