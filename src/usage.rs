//! What processes cost, read from Linux's `/proc` and cgroup v2 files: the server under
//! test (`server_pid=` with its descendants, or `server_cgroup=`), sampled once a second
//! into the run's metrics, and the scheduling of imaptest's own threads
//! (`/proc/self/task/*/schedstat`), which tells a starved tool from a slow server.
//!
//! Everything here is best effort: a process that exits between listing and reading is
//! skipped, and on systems without `/proc` the samplers report nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the server's usage is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSource {
    /// A process and all its descendants (Dovecot's master and its imap, pop3, lmtp,
    /// auth processes), summed.
    ProcessTree(u32),
    /// A cgroup v2 directory (`/sys/fs/cgroup/system.slice/dovecot.service`).
    Cgroup(PathBuf),
}

impl ServerSource {
    /// How the source is named in outputs: `pid 1234 and descendants`, `cgroup /sys/…`.
    pub fn describe(&self) -> String {
        match self {
            ServerSource::ProcessTree(pid) => format!("pid {pid} and descendants"),
            ServerSource::Cgroup(path) => format!("cgroup {}", path.display()),
        }
    }
}

/// Why the server cannot be sampled.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("server_pid={0}: no such process (is the server running on this machine?)")]
    NoProcess(u32),
    #[error("server_cgroup={path}: {problem}")]
    Cgroup { path: String, problem: String },
}

/// What the server used during one interval (or, added up, during a run).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerUsage {
    /// CPU time used by all the server's processes, on all cores, in µs.
    pub cpu_us: u64,
    /// The wall-clock time sampled, in µs (CPU % = cpu_us / wall_us).
    pub wall_us: u64,
    /// The busiest interval's CPU, in % of one core.
    pub cpu_peak_percent: f64,
    /// Resident memory at the end of the interval (summed over processes), in KiB.
    pub rss_kib: u64,
    /// The most resident memory seen, in KiB.
    pub rss_peak_kib: u64,
    /// Bytes read from and written to storage.
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Processes at the end of the interval.
    pub processes: u64,
}

impl ServerUsage {
    /// CPU in % of one core over the sampled time.
    pub fn cpu_percent(&self) -> f64 {
        if self.wall_us == 0 {
            0.0
        } else {
            self.cpu_us as f64 * 100.0 / self.wall_us as f64
        }
    }

    /// Adds a later interval: sums, peaks, and its gauges as the latest.
    pub fn add(&mut self, later: &ServerUsage) {
        self.cpu_us += later.cpu_us;
        self.wall_us += later.wall_us;
        self.cpu_peak_percent = self.cpu_peak_percent.max(later.cpu_peak_percent);
        self.rss_kib = later.rss_kib;
        self.rss_peak_kib = self.rss_peak_kib.max(later.rss_peak_kib);
        self.read_bytes += later.read_bytes;
        self.write_bytes += later.write_bytes;
        self.processes = later.processes;
    }
}

/// Cumulative counters of the server at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    cpu_us: u64,
    rss_kib: u64,
    read_bytes: u64,
    write_bytes: u64,
    processes: u64,
}

/// Samples a [`ServerSource`]; each [`ServerSampler::sample`] gives the usage since the
/// previous one.
#[derive(Debug)]
pub struct ServerSampler {
    source: ServerSource,
    last: Option<(Instant, Counters)>,
}

impl ServerSampler {
    /// Checks that the source can be read now and takes the first reading.
    pub fn new(source: ServerSource) -> Result<ServerSampler, UsageError> {
        match &source {
            ServerSource::ProcessTree(pid) => {
                if read_stat(*pid).is_none() {
                    return Err(UsageError::NoProcess(*pid));
                }
            }
            ServerSource::Cgroup(path) => {
                let problem = |problem: String| UsageError::Cgroup {
                    path: path.display().to_string(),
                    problem,
                };
                let stat = path.join("cpu.stat");
                std::fs::read_to_string(&stat).map_err(|e| {
                    problem(format!(
                        "cannot read {} ({e}); give a cgroup v2 directory",
                        stat.display()
                    ))
                })?;
            }
        }
        let mut sampler = ServerSampler { source, last: None };
        sampler.sample();
        Ok(sampler)
    }

    pub fn source(&self) -> &ServerSource {
        &self.source
    }

    /// The usage since the last call (None on the first call, or if nothing could be
    /// read).
    pub fn sample(&mut self) -> Option<ServerUsage> {
        let now = Instant::now();
        let counters = match &self.source {
            ServerSource::ProcessTree(pid) => tree_counters(*pid)?,
            ServerSource::Cgroup(path) => cgroup_counters(path)?,
        };
        let last = self.last.replace((now, counters));
        let (then, before) = last?;
        let wall_us = now.duration_since(then).as_micros() as u64;
        // Counters of processes that exited unreaped are lost: never go below zero.
        let cpu_us = counters.cpu_us.saturating_sub(before.cpu_us);
        let usage = ServerUsage {
            cpu_us,
            wall_us,
            cpu_peak_percent: 0.0,
            rss_kib: counters.rss_kib,
            rss_peak_kib: counters.rss_kib,
            read_bytes: counters.read_bytes.saturating_sub(before.read_bytes),
            write_bytes: counters.write_bytes.saturating_sub(before.write_bytes),
            processes: counters.processes,
        };
        Some(ServerUsage {
            cpu_peak_percent: usage.cpu_percent(),
            ..usage
        })
    }
}

/// The fields of `/proc/PID/stat` imaptest reads.
#[derive(Debug, Clone, Copy)]
struct ProcStat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks: the process and the children
    /// it reaped, so a child's time moves to its parent when it exits.
    ticks: u64,
    rss_pages: u64,
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses `/proc/PID/stat`; the command name (field 2) may hold spaces and parentheses,
/// so fields are counted from its closing parenthesis.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        ppid: u32::try_from(field(4)?).ok()?,
        ticks: field(14)? + field(15)? + field(16)? + field(17)?,
        rss_pages: field(24)?,
    })
}

/// `read_bytes` and `write_bytes` of `/proc/PID/io` (storage I/O).
fn read_io(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((value("read_bytes:")?, value("write_bytes:")?))
}

fn clock_ticks_per_sec() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 {
            return ticks as u64;
        }
    }
    100
}

fn page_kib() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads a configuration value.
        let bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if bytes > 0 {
            return bytes as u64 / 1024;
        }
    }
    4
}

/// Sums `root` and every process descended from it.
fn tree_counters(root: u32) -> Option<Counters> {
    let mut stats: Vec<(u32, ProcStat)> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            Some((pid, read_stat(pid)?))
        })
        .collect();
    stats.sort_unstable_by_key(|(pid, _)| *pid);
    let mut tree = std::collections::HashSet::from([root]);
    // Parents usually have lower pids than children, but pids wrap: repeat until no
    // process joins.
    loop {
        let before = tree.len();
        for (pid, stat) in &stats {
            if tree.contains(&stat.ppid) {
                tree.insert(*pid);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    let mut counters = Counters::default();
    let mut found = false;
    for (pid, stat) in stats.iter().filter(|(pid, _)| tree.contains(pid)) {
        found = true;
        counters.cpu_us += stat.ticks * 1_000_000 / clock_ticks_per_sec();
        counters.rss_kib += stat.rss_pages * page_kib();
        counters.processes += 1;
        if let Some((read, write)) = read_io(*pid) {
            counters.read_bytes += read;
            counters.write_bytes += write;
        }
    }
    found.then_some(counters)
}

fn cgroup_counters(path: &Path) -> Option<Counters> {
    let read = |name: &str| std::fs::read_to_string(path.join(name)).ok();
    let cpu_us = read("cpu.stat")?
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())?;
    let rss_kib = read("memory.current")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |b| b / 1024);
    let (mut read_bytes, mut write_bytes) = (0, 0);
    for line in read("io.stat").unwrap_or_default().lines() {
        for field in line.split_whitespace() {
            if let Some(v) = field.strip_prefix("rbytes=") {
                read_bytes += v.parse::<u64>().unwrap_or(0);
            } else if let Some(v) = field.strip_prefix("wbytes=") {
                write_bytes += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    let processes = read("cgroup.procs").map_or(0, |p| p.lines().count() as u64);
    Some(Counters {
        cpu_us,
        rss_kib,
        read_bytes,
        write_bytes,
        processes,
    })
}

/// The scheduling of this process's threads, summed (`/proc/self/task/*/schedstat`):
/// CPU time, time spent runnable but waiting for a CPU, and time slices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedTotals {
    pub cpu_ns: u64,
    pub run_queue_ns: u64,
    pub slices: u64,
}

impl SchedTotals {
    /// This process's threads now (threads that already exited are not counted).
    pub fn now() -> Option<SchedTotals> {
        let mut totals = SchedTotals::default();
        for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
                continue;
            };
            let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
            if let (Some(Some(cpu)), Some(Some(wait)), Some(Some(slices))) =
                (fields.next(), fields.next(), fields.next())
            {
                totals.cpu_ns += cpu;
                totals.run_queue_ns += wait;
                totals.slices += slices;
            }
        }
        Some(totals)
    }

    /// The difference from an earlier reading.
    pub fn since(&self, earlier: &SchedTotals) -> SchedTotals {
        SchedTotals {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            run_queue_ns: self.run_queue_ns.saturating_sub(earlier.run_queue_ns),
            slices: self.slices.saturating_sub(earlier.slices),
        }
    }
}

/// CPU cores this machine has online.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "1234 (imap (x) y) S 77 1234 1234 0 -1 4194560 600 0 0 0 \
                    11 22 33 44 20 0 1 0 100 10000000 250 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.ppid, 77);
        assert_eq!(stat.ticks, 11 + 22 + 33 + 44);
        assert_eq!(stat.rss_pages, 250);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn this_process_tree_is_sampled() {
        let mut sampler = ServerSampler::new(ServerSource::ProcessTree(std::process::id()))
            .expect("this process exists");
        // Burn a little CPU so the delta is visible.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let usage = sampler.sample().expect("a second reading");
        assert!(usage.wall_us >= 60_000, "{usage:?}");
        assert!(usage.processes >= 1);
        assert!(usage.rss_kib > 0);
        assert!(usage.cpu_us > 0, "{usage:?}");
    }

    #[test]
    fn a_missing_process_is_a_clear_error() {
        // Pids are below 2^22 on Linux.
        let e = ServerSampler::new(ServerSource::ProcessTree(u32::MAX - 1)).unwrap_err();
        assert!(e.to_string().contains("no such process"), "{e}");
    }

    #[test]
    fn own_threads_have_sched_stats() {
        let totals = SchedTotals::now().expect("/proc/self/task");
        assert!(totals.cpu_ns > 0);
    }

    #[test]
    fn usage_adds_up() {
        let mut total = ServerUsage::default();
        for (cpu, rss) in [(500_000, 10), (1_500_000, 30), (100_000, 20)] {
            total.add(&ServerUsage {
                cpu_us: cpu,
                wall_us: 1_000_000,
                cpu_peak_percent: cpu as f64 / 10_000.0,
                rss_kib: rss,
                rss_peak_kib: rss,
                read_bytes: 1,
                write_bytes: 2,
                processes: 3,
            });
        }
        assert_eq!(total.cpu_us, 2_100_000);
        assert!((total.cpu_percent() - 70.0).abs() < 1e-9);
        assert_eq!(total.cpu_peak_percent, 150.0);
        assert_eq!((total.rss_kib, total.rss_peak_kib), (20, 30));
        assert_eq!((total.read_bytes, total.write_bytes), (3, 6));
    }
}
