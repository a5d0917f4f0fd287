//! Scheduler benchmarks: CPU per generated event, and how many mostly idle simulated
//! users one machine carries with a timing error p99 ≤ 1 ms.
//!
//! ```text
//! cargo bench --bench scheduler                       # all scenarios
//! IMAPTEST_BENCH_SECS=20 IMAPTEST_BENCH_USERS=100000 cargo bench --bench scheduler
//! ```
//!
//! * **generate**: builds the schedule of N users (`profiles/mobile.toml` and
//!   `profiles/office.toml` behaviour) and iterates an hour (office: 10 minutes, a
//!   simulated 4 h) without timers: build time, CPU per event, RSS growth per user.
//! * **dispatch**: runs the schedule in real time with a 2-worker tokio runtime:
//!   `thread0`/`thread100` = `timeline::run_blocking` on its own thread (no spin / 100 µs
//!   spin), `fine` = async `Precision::Fine`, `timer` = plain tokio timers; every action
//!   is handed to a spawned task (as the runtime will). Reports the lateness (handover − intended)
//!   percentiles and the process CPU per wall second. "Mostly idle": users hold sessions
//!   and receive ~40-55 mails a day; the event rate is raised with `time_compression`.
//!   The first hour of schedule time (everyone logging in at once) is generated but not
//!   dispatched, so the figures are the steady state.

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use imaptest::profile::schedule::{Schedule, ScheduleOptions};
use imaptest::profile::timeline::{self, Precision};
use imaptest::profile::{self, Profile};

#[path = "support/child.rs"]
mod child;

fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load(name: &str, users: u64, compression: Option<f64>) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(name);
    let mut p = profile::load(&path).unwrap().0;
    p.run.total_users = Some(users as u32);
    p.run.rampup = Default::default();
    if let Some(c) = compression {
        p.run.time_compression = c;
    }
    p
}

fn generate(name: &str, users: u64, secs: u64) {
    let p = load(name, users, None);
    let rss0 = child::own_rss_kib();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut schedule = Schedule::new(
        &p,
        ScheduleOptions {
            until: Some(Duration::from_secs(secs)),
            ..ScheduleOptions::default()
        },
    );
    let build = t0.elapsed();
    let rss1 = child::own_rss_kib();
    let mut events = 0u64;
    let t1 = Instant::now();
    let cpu1 = cpu_time();
    for _ in schedule.by_ref() {
        events += 1;
    }
    let run = t1.elapsed();
    let cpu = cpu_time() - cpu1;
    println!(
        "generate {name:<16} users={users:<7} build={:>7.1} ms ({:.0} B RSS/user)  {secs} s: events={events:<9} {:>6.0} ns/event CPU  ({:.0} ns wall)  total CPU {:.2} s",
        build.as_secs_f64() * 1e3,
        (rss1.saturating_sub(rss0) * 1024) as f64 / users as f64,
        cpu.as_secs_f64() * 1e9 / events.max(1) as f64,
        run.as_secs_f64() * 1e9 / events.max(1) as f64,
        (cpu_time() - cpu0).as_secs_f64(),
    );
}

/// Schedule time generated before dispatching starts.
const WARMUP_SECS: u64 = 3600;

/// How the bench dispatches.
#[derive(Clone, Copy)]
enum Mode {
    Async(Precision),
    /// `timeline::run_blocking` on its own thread, spinning this long.
    Thread(Duration),
}

fn dispatch(name: &str, users: u64, compression: f64, secs: u64, mode: Mode) {
    let p = load(name, users, Some(compression));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Fast-forward through the first logins (all users start at once) so the run
    // measures the steady state: WARMUP of schedule time is generated, not dispatched.
    let warmup = Duration::from_secs(WARMUP_SECS);
    let mut schedule = Schedule::new(
        &p,
        ScheduleOptions {
            until: Some(warmup + Duration::from_secs(secs)),
            ..ScheduleOptions::default()
        },
    );
    let first = schedule.by_ref().find(|a| a.at >= warmup);
    let schedule = first.into_iter().chain(schedule).map(|mut a| {
        a.at -= warmup;
        a
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    let count = match mode {
        Mode::Async(precision) => runtime.block_on(async {
            let start = tokio::time::Instant::now() + Duration::from_millis(50);
            timeline::run(schedule, start, precision, |action, lateness| {
                hist.saturating_record(lateness.as_micros() as u64 + 1);
                tokio::spawn(async move {
                    std::hint::black_box(action);
                });
            })
            .await
        }),
        Mode::Thread(spin) => {
            let handle = runtime.handle().clone();
            let stop = std::sync::atomic::AtomicBool::new(false);
            let start = Instant::now() + Duration::from_millis(50);
            timeline::run_blocking(schedule, start, spin, &stop, |action, lateness| {
                hist.saturating_record(lateness.as_micros() as u64 + 1);
                handle.spawn(async move {
                    std::hint::black_box(action);
                });
            })
        }
    };
    let wall = wall0.elapsed();
    let cpu = cpu_time() - cpu0;
    let p = |q: f64| hist.value_at_quantile(q).saturating_sub(1);
    println!(
        "dispatch {name:<16} users={users:<7} x{compression:<3} {:<6} {secs} s: {count} actions ({:.0}/s)  lateness µs p50={} p99={} p99.9={} max={}  CPU {:.1} % of one core ({:.1} µs/action)",
        match mode {
            Mode::Async(Precision::Timer) => "timer".to_owned(),
            Mode::Async(Precision::Fine { .. }) => "fine".to_owned(),
            Mode::Thread(spin) => format!("thread{}", spin.as_micros()),
        },
        count as f64 / wall.as_secs_f64(),
        p(0.5),
        p(0.99),
        p(0.999),
        hist.max().saturating_sub(1),
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
        cpu.as_secs_f64() * 1e6 / count.max(1) as f64,
    );
}

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: skip the minutes
    // of measuring there; `cargo bench --bench scheduler` passes it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("scheduler benchmark: skipped (run it with `cargo bench --bench scheduler`)");
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let users = env_u64("IMAPTEST_BENCH_USERS", 100_000);
    let secs = env_u64("IMAPTEST_BENCH_SECS", 10);
    if wanted("generate") {
        generate("mobile.toml", users, 3600);
        // A simulated day per hour: 10 minutes are plenty of events.
        generate("office.toml", users, 600);
    }
    if wanted("dispatch") {
        let fine = Mode::Async(Precision::default());
        let timer = Mode::Async(Precision::Timer);
        let thread = Mode::Thread(Duration::ZERO);
        let thread_spin = Mode::Thread(Duration::from_micros(100));
        for compression in [1.0, 10.0] {
            for mode in [thread, thread_spin, fine, timer] {
                dispatch("mobile.toml", users, compression, secs, mode);
            }
        }
    }
}
