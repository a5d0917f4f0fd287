//! `imaptest profile fit` parse speed: a generated Dovecot log of about a GB (set
//! `FIT_BENCH_MB`), plain and gzip, read and fitted end to end. Prints MB/s of wall
//! time and the CPU seconds of this process (robust to a shared machine; wall-clock
//! figures are not).
//!
//! `cargo bench --bench fit` (FIT_BENCH_MB=100 for a quick look).

use std::io::{BufWriter, Write};
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use imaptest::fit::{FitOptions, fit_logs};
use rand::{RngExt as _, SeedableRng as _};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Writes about `bytes` of log: IMAP logins and logouts (about 5 000 sessions open at
/// a time), LMTP deliveries with `mail_log` sizes, expunges and connection noise, for
/// 20 000 users, with microsecond stamps.
fn write_log(out: &mut dyn Write, bytes: u64) -> u64 {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut written = 0u64;
    let mut t = 1_700_000_000.0f64;
    let mut next_session = 0u64;
    // Sessions logged in now: (user, session number).
    let mut open: Vec<(u32, u64)> = Vec::new();
    let mut line = String::with_capacity(512);
    while written < bytes {
        t += rng.random::<f64>() * 0.004;
        let secs = t as u64;
        let (d, h, m, s) = (
            1 + secs / 86400 % 28,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
        );
        let stamp = format!(
            "2025-11-{d:02} {h:02}:{m:02}:{s:02}.{:06} ",
            (t.fract() * 1e6) as u32
        );
        let user = rng.random_range(0..20_000u32);
        line.clear();
        match rng.random_range(0..10u32) {
            // About 5 000 sessions open at a time: a login, or a logout of one of them.
            0..=4 if open.len() < 5_000 || rng.random_bool(0.5) => {
                next_session += 1;
                open.push((user, next_session));
                line.push_str(&format!(
                    "{stamp}imap-login: Info: Login: user=<user{user}@example.com>, method=PLAIN, rip=192.0.2.{}, lip=192.0.2.1, mpid={next_session}, TLS, session=<S{next_session:016x}>\n",
                    user % 250
                ));
            }
            0..=4 => {
                let (user, session) = open.swap_remove(rng.random_range(0..open.len()));
                line.push_str(&format!(
                    "{stamp}imap(user{user}@example.com)<{session}><S{session:016x}>: Info: Disconnected: Logged out in={} out={} deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=1 body_bytes=2000\n",
                    rng.random_range(50..5000),
                    rng.random_range(500..500_000)
                ));
            }
            5..=6 => {
                let size = rng.random_range(1000..200_000);
                line.push_str(&format!(
                    "{stamp}lmtp(user{user}@example.com)<77><L{secs:x}{user:x}>: Info: save: box=INBOX, uid=1, msgid=<{secs}.{user}@example.net>, size={size}, vsize={}\n{stamp}lmtp(user{user}@example.com)<77><L{secs:x}{user:x}>: Info: msgid=<{secs}.{user}@example.net>: saved mail to INBOX\n",
                    size + size / 40
                ));
            }
            7 => line.push_str(&format!(
                "{stamp}imap(user{user}@example.com)<1><S{:016x}>: Info: expunge: box=INBOX, uid=3, msgid=<a@b>, size=4000\n",
                next_session
            )),
            _ => line.push_str(&format!(
                "{stamp}imap-login: Info: Disconnected: Connection closed (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=192.0.2.1, TLS, session=<N{secs:016x}>\n"
            )),
        }
        out.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
    }
    written
}

fn cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn measure(name: &str, path: std::path::PathBuf, bytes: u64) {
    let options = FitOptions {
        logs: vec![path],
        base: None,
        time_compression: 1.0,
        start: None,
        year: 2025,
    };
    let (cpu0, wall0) = (cpu_secs(), Instant::now());
    let fitted = fit_logs(&options, None).expect("fit");
    let (cpu, wall) = (cpu_secs() - cpu0, wall0.elapsed().as_secs_f64());
    let mb = bytes as f64 / 1e6;
    println!(
        "fit/{name}: {mb:.0} MB of log in {wall:.1} s wall ({:.0} MB/s), {cpu:.1} s CPU ({:.0} MB per CPU second)",
        mb / wall,
        mb / cpu
    );
    eprint!("{}", fitted.summary);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mb: u64 = std::env::var("FIT_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 5 } else { 1024 });
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("dovecot.log");
    let bytes = {
        let mut f = BufWriter::with_capacity(1 << 20, std::fs::File::create(&plain).unwrap());
        let n = write_log(&mut f, mb * 1_000_000);
        f.flush().unwrap();
        n
    };
    measure("plain", plain, bytes);
    let gz = dir.path().join("dovecot.log.gz");
    {
        let f = BufWriter::with_capacity(1 << 20, std::fs::File::create(&gz).unwrap());
        let mut enc = GzEncoder::new(f, Compression::fast());
        write_log(&mut enc, (mb * 1_000_000) / 4);
        enc.finish().unwrap().flush().unwrap();
    }
    measure("gzip", gz, bytes / 4);
}
