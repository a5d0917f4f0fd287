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

/// Writes about `bytes` of log: IMAP and POP3 sessions with logins, ID lines and
/// logouts, LMTP deliveries with `mail_log` sizes, expunges, and connection noise, for
/// 20 000 users over a few days, with microsecond stamps.
fn write_log(out: &mut dyn Write, bytes: u64) -> u64 {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut written = 0u64;
    let mut t = 1_700_000_000.0f64;
    let mut session = 0u64;
    let mut line = String::with_capacity(512);
    while written < bytes {
        t += rng.random::<f64>() * 0.02;
        let secs = t as u64;
        let (d, h, m, s) = (
            1 + secs / 86400 % 28,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
        );
        let stamp = format!(
            "2025-11-{d:02} {h:02}:{m:02}:{s:02}.{:06} ",
            ((t.fract()) * 1e6) as u32
        );
        let user = rng.random_range(0..20_000u32);
        session += 1;
        line.clear();
        match rng.random_range(0..10u32) {
            0..=2 => line.push_str(&format!(
                "{stamp}imap-login: Info: Login: user=<user{user}@example.com>, method=PLAIN, rip=192.0.2.{}, lip=192.0.2.1, mpid={session}, TLS, session=<S{session:016x}>\n",
                user % 250
            )),
            3..=5 => line.push_str(&format!(
                "{stamp}imap(user{user}@example.com)<{session}><S{:016x}>: Info: Disconnected: Logged out in={} out={} deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=1 body_bytes=2000\n",
                session.saturating_sub(rng.random_range(1..2000)),
                rng.random_range(50..5000),
                rng.random_range(500..500_000)
            )),
            6 => line.push_str(&format!(
                "{stamp}lmtp(user{user}@example.com)<77><L{session:016x}>: Info: save: box=INBOX, uid={session}, msgid=<{session}@example.net>, size={}, vsize={}\n",
                rng.random_range(1000..200_000),
                rng.random_range(1000..200_000)
            )),
            7 => line.push_str(&format!(
                "{stamp}lmtp(user{user}@example.com)<77><L{session:016x}>: Info: msgid=<{session}@example.net>: saved mail to INBOX\n"
            )),
            8 => line.push_str(&format!(
                "{stamp}imap(user{user}@example.com)<{session}><S{session:016x}>: Info: expunge: box=INBOX, uid=3, msgid=<a@b>, size=4000\n"
            )),
            _ => line.push_str(&format!(
                "{stamp}imap-login: Info: Disconnected: Connection closed (no auth attempts in 0 secs): user=<>, rip=192.0.2.7, lip=192.0.2.1, TLS, session=<N{session:016x}>\n"
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
