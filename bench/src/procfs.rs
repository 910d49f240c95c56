//! Every read of Linux's `/proc` the harness makes, in one place: the
//! threads of a process with the CPU each has used, a process's tick
//! counters, its resident memory, its children, and the machine's facts
//! for `env.json`. Off Linux each answers `None` (or nothing).

/// Which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// The harness itself (`/proc/self`).
    This,
    /// Another process.
    Pid(u32),
}

impl Proc {
    fn dir(self) -> String {
        match self {
            Proc::This => "/proc/self".to_owned(),
            Proc::Pid(pid) => format!("/proc/{pid}"),
        }
    }
}

/// One thread of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// Its name (`comm`), trimmed.
    pub name: String,
    /// Nanoseconds it has run on a CPU (`schedstat`'s first field).
    pub run_ns: u64,
}

/// The live threads of `proc`, each with the CPU it has used; `None` when
/// the process cannot be read (gone, or not Linux). A thread that ends
/// while it is read, or whose kernel keeps no `schedstat`, is left out.
pub fn threads(proc: Proc) -> Option<Vec<Thread>> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("{}/task", proc.dir()))
        .ok()?
        .flatten()
    {
        let path = task.path();
        let (Ok(name), Ok(sched)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        if let Some(run_ns) = schedstat_run_ns(&sched) {
            threads.push(Thread {
                name: name.trim().to_owned(),
                run_ns,
            });
        }
    }
    Some(threads)
}

/// The first field of a `schedstat` line: nanoseconds on a CPU.
fn schedstat_run_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` of `/proc/<pid>/stat`, in clock ticks (100 per second):
/// the coarse fallback where `schedstat` is missing.
pub fn stat_ticks(pid: u32) -> Option<u64> {
    stat_fields_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn stat_fields_ticks(stat: &str) -> Option<u64> {
    // Fields after the ")" of the command name (which may hold spaces);
    // utime and stime are the 12th and 13th of them.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Whether `pid` has exited: gone, or a zombie its parent has not reaped.
pub fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            Some(state == "Z" || state == "X")
        })
        .unwrap_or(true)
}

/// Resident memory of `pid`, bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    vm_rss_bytes(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn vm_rss_bytes(status: &str) -> Option<u64> {
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The direct children of `pid` (of any of its threads).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .flat_map(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The processes running `program` (the file name of their `argv[0]`)
/// with `args` among their arguments, one after another: Docker's
/// userland proxy for a published port, say (`docker-proxy … -host-port
/// 8080 …`), which carries every request from the host's loopback into a
/// container and runs outside it.
pub fn with_args(program: &str, args: &[&str]) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let name = argv.first().and_then(|a0| a0.rsplit(|b| *b == b'/').next());
            name == Some(program.as_bytes())
                && argv
                    .windows(args.len().max(1))
                    .any(|w| w.iter().zip(args).all(|(a, b)| *a == b.as_bytes()))
        })
        .collect()
}

/// What `env.json` says of the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// `model name` of the first CPU, or `unknown`.
    pub cpu_model: String,
    /// Total memory, KiB (0 if unknown).
    pub memory_kib: f64,
    /// The kernel's release.
    pub kernel: String,
}

/// The machine's CPU model, memory and kernel.
pub fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    Machine {
        cpu_model: read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".to_owned(), |(_, m)| m.trim().to_owned()),
        memory_kib: read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_found_by_its_program_and_arguments() {
        let mut child = std::process::Command::new("sleep")
            .arg("7.125")
            .spawn()
            .expect("sleep");
        // The pipe that tells `spawn` the exec happened closes before the
        // new program's arguments are in place: wait for them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found = with_args("sleep", &["7.125"]);
        while !found.contains(&child.id()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = with_args("sleep", &["7.125"]);
        }
        let other_args = with_args("sleep", &["7.126"]);
        let other_program = with_args("sleeper", &["7.125"]);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(!other_args.contains(&child.id()));
        assert!(!other_program.contains(&child.id()));
    }

    #[test]
    fn the_files_fields_are_read() {
        assert_eq!(schedstat_run_ns("100 5 3\n"), Some(100));
        assert_eq!(schedstat_run_ns("garbage"), None);
        // A command name with a space and a parenthesis in it.
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0";
        assert_eq!(stat_fields_ticks(stat), Some(10));
        assert_eq!(
            vm_rss_bytes("Name:\tx\nVmRSS:\t   2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_threads_memory_and_a_machine() {
        let mine = threads(Proc::This).expect("Linux");
        assert!(!mine.is_empty() && mine.iter().all(|t| !t.name.is_empty()));
        assert!(threads(Proc::Pid(u32::MAX)).is_none(), "no such process");
        assert!(rss_bytes(std::process::id()).is_some_and(|b| b > 0));
        let machine = machine();
        assert!(!machine.kernel.is_empty() && machine.memory_kib > 0.0);
    }
}
