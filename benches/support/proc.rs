//! Process figures from `/proc` shared by the benchmarks.
#![allow(dead_code)]

/// VmRSS of a process in KiB (`None` where /proc is missing or the process is gone).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of this process in KiB (0 where /proc is missing).
pub fn own_rss_kib() -> u64 {
    rss_kib(std::process::id()).unwrap_or(0)
}
