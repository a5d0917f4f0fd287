//! `imaptest profile fit` on generated Dovecot logs: whole-second stamps fitted as
//! interval-censored, a rotated set with a gzip file cut short and damaged lines, the
//! output checked against the JSON Schema, and the command line's `out=` rules.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use imaptest::fit::{FitOptions, fit_logs};
use imaptest::profile::Distribution;
use rand::SeedableRng as _;
use rand_distr::Distribution as _;
use rand_xoshiro::Xoshiro256PlusPlus;

/// Session lengths: Weibull(shape 1.5, scale 600 s); gaps: log-normal (mean 1800 s,
/// sd 1200 s); deliveries: Poisson, 48 per user per day. Lines as Dovecot 2.3 writes
/// them, with the default `%b %d %H:%M:%S` stamps (whole seconds).
fn generated_log(users: usize, days: f64, seed: u64) -> Vec<(f64, String)> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let weibull = rand_distr::Weibull::new(600.0, 1.5).unwrap();
    let sigma2 = (1.0f64 + (1200.0f64 / 1800.0).powi(2)).ln();
    let gap = rand_distr::LogNormal::new(1800f64.ln() - sigma2 / 2.0, sigma2.sqrt()).unwrap();
    let arrivals = rand_distr::Exp::new(48.0 / 86400.0).unwrap();
    let sizes = rand_distr::LogNormal::new(9.5, 0.7).unwrap();
    let end = days * 86400.0;
    let mut lines = Vec::new();
    let mut session_no = 0u64;
    for u in 0..users {
        let user = format!("person{u}@example.com");
        let mut t: f64 = rand_distr::Uniform::new(0.0, 1800.0)
            .unwrap()
            .sample(&mut rng);
        while t < end {
            session_no += 1;
            let session = format!("S{session_no:012}");
            let length: f64 = weibull.sample(&mut rng);
            lines.push((
                t,
                format!("imap-login: Info: Login: user=<{user}>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, mpid={session_no}, TLS, session=<{session}>"),
            ));
            if t + length < end {
                lines.push((
                    t + length,
                    format!("imap({user})<{session_no}><{session}>: Info: Disconnected: Logged out in=120 out=4400 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0"),
                ));
            }
            t += length + gap.sample(&mut rng);
        }
        let mut d: f64 = arrivals.sample(&mut rng);
        let mut n = 0;
        while d < end {
            n += 1;
            let size: f64 = sizes.sample(&mut rng);
            let sess = format!("L{u:04}{n:06}");
            lines.push((
                d,
                format!("lmtp({user})<77><{sess}>: Info: save: box=INBOX, uid={n}, msgid=<{n}@x>, size={}", size.round()),
            ));
            lines.push((
                d,
                format!("lmtp({user})<77><{sess}>: Info: msgid=<{n}@x>: saved mail to INBOX"),
            ));
            d += arrivals.sample(&mut rng);
        }
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    lines
}

/// `Dec 01 00:00:00 ` + seconds into the log.
fn stamp(t: f64) -> String {
    let secs = t.floor() as u64;
    let day = 1 + secs / 86400;
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("Dec {day:02} {h:02}:{m:02}:{s:02} ")
}

fn write_plain(path: &Path, lines: &[(f64, String)]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for (t, line) in lines {
        writeln!(f, "{}{line}", stamp(*t)).unwrap();
    }
}

fn gzip(lines: &[(f64, String)]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    for (t, line) in lines {
        writeln!(enc, "{}{line}", stamp(*t)).unwrap();
    }
    enc.finish().unwrap()
}

fn options(logs: Vec<PathBuf>) -> FitOptions {
    FitOptions {
        logs,
        base: None,
        time_compression: 1.0,
        start: None,
        year: 2025,
    }
}

#[test]
fn whole_second_stamps_are_fitted_as_interval_censored() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dovecot.log");
    write_plain(&log, &generated_log(40, 3.0, 1));
    let fitted = fit_logs(&options(vec![log]), None).unwrap();
    let text = &fitted.toml;
    assert!(text.contains("interval-censored"), "{text}");
    assert!(!text.contains("person"), "a user name leaked:\n{text}");
    let profile = imaptest::profile::from_toml_str(text, Path::new("fitted.toml")).unwrap();
    let pop = &profile.populations[0];
    match pop.session_length.as_ref().unwrap() {
        Distribution::Weibull { shape, scale } => {
            assert!((shape - 1.5).abs() < 0.1, "{text}");
            assert!((scale.secs_f64() - 600.0).abs() < 30.0, "{text}");
        }
        other => panic!("session_length {other:?}\n{text}"),
    }
    match profile.clients[0].login_interval.as_ref().unwrap() {
        d @ Distribution::LogNormal { .. } => {
            assert!((d.mean_secs() - 1800.0).abs() < 90.0, "{text}")
        }
        other => panic!("login_interval {other:?}\n{text}"),
    }
    match pop.inbox_delivery.as_ref().unwrap() {
        Distribution::PerDay(rate) => assert!((rate - 48.0).abs() < 3.0, "{text}"),
        other => panic!("inbox_delivery {other:?}\n{text}"),
    }
    match &pop.delivery_size.as_ref().unwrap().0 {
        d @ Distribution::LogNormal { .. } => {
            let truth = (9.5f64 + 0.49 / 2.0).exp();
            assert!((d.mean_secs() / truth - 1.0).abs() < 0.05, "{text}");
        }
        other => panic!("delivery_size {other:?}\n{text}"),
    }
    assert!(
        profile.activity.is_some(),
        "3 days give an hourly curve:\n{text}"
    );
}

#[test]
fn a_damaged_rotated_set_fits_what_it_can_and_says_what_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_log(20, 3.0, 2);
    let third = lines.len() / 3;
    // dovecot.log.2.gz: the oldest day, whole.
    let oldest = dir.path().join("dovecot.log.2.gz");
    std::fs::write(&oldest, gzip(&lines[..third])).unwrap();
    // dovecot.log.1.gz: cut short in the middle of its compressed stream.
    let middle = dir.path().join("dovecot.log.1.gz");
    let compressed = gzip(&lines[third..2 * third]);
    std::fs::write(&middle, &compressed[..compressed.len() * 2 / 3]).unwrap();
    // dovecot.log: garbage, a non-UTF-8 line, an unknown service, a malformed login,
    // and a last line cut in the middle.
    let newest = dir.path().join("dovecot.log");
    write_plain(&newest, &lines[2 * third..]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    f.write_all(b"complete garbage\n").unwrap();
    f.write_all(b"Dec 04 00:00:01 imap-login: Info: Login: \xff\xfe user=<bad\n")
        .unwrap();
    f.write_all(b"Dec 04 00:00:01 frobnicator: Info: hello\n")
        .unwrap();
    f.write_all(b"Dec 04 00:00:02 imap-login: Info: Login: method=PLAIN\n")
        .unwrap();
    f.write_all(b"Dec 04 00:00:03 imap(person1)<1><S9>: Info: Disconn")
        .unwrap();
    drop(f);
    // A missing file among them.
    let missing = dir.path().join("dovecot.log.3.gz");

    // Given newest first: the files are ordered by their first stamps.
    let fitted = fit_logs(
        &options(vec![
            newest.clone(),
            missing,
            middle.clone(),
            oldest.clone(),
        ]),
        None,
    )
    .unwrap();
    let summary = &fitted.summary;
    assert!(
        summary.contains("skipped 1 lines without a timestamp"),
        "{summary}"
    );
    assert!(
        summary.contains("skipped 1 lines of an unknown service"),
        "{summary}"
    );
    assert!(
        summary.contains("with a missing or malformed field"),
        "{summary}"
    );
    assert!(summary.contains("not UTF-8"), "{summary}");
    assert!(
        summary.contains("cut short at the end of a file"),
        "{summary}"
    );
    assert!(
        summary.contains("dovecot.log.1.gz: read up to the damage"),
        "{summary}"
    );
    assert!(
        summary.contains("dovecot.log.3.gz: read up to the damage"),
        "{summary}"
    );
    let profile = imaptest::profile::from_toml_str(&fitted.toml, Path::new("fitted.toml")).unwrap();
    match profile.populations[0].session_length.as_ref().unwrap() {
        Distribution::Weibull { shape, .. } => assert!((shape - 1.5).abs() < 0.2),
        other => panic!("session_length {other:?}\n{}", fitted.toml),
    }

    // The command line: stderr carries the summary, exit 0.
    let out = Command::new(common::imaptest_bin())
        .args(["profile", "fit"])
        .args([&newest, &middle, &oldest])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("profile fit: 3 file(s)"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("[[population]]"));
}

#[test]
fn fitted_profiles_pass_the_json_schema() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dovecot.log");
    write_plain(&log, &generated_log(10, 1.5, 3));
    let fitted = fit_logs(&options(vec![log]), None).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("schemas/profile.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let instance: toml::Value = toml::from_str(&fitted.toml).unwrap();
    let instance = serde_json::to_value(instance).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{}", fitted.toml);
    // And the schema is not vacuous: a misspelt key fails it.
    let mut wrong = instance.clone();
    wrong["population"][0]["delivery_sise"] = serde_json::json!(5);
    assert!(!validator.is_valid(&wrong));
}

#[test]
fn out_refuses_to_overwrite_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dovecot.log");
    write_plain(&log, &generated_log(5, 1.0, 4));
    let out_file = dir.path().join("fitted.toml");
    std::fs::write(&out_file, "keep me").unwrap();
    let run = |extra: &[&str]| {
        Command::new(common::imaptest_bin())
            .args(["profile", "fit"])
            .arg(&log)
            .arg(format!("out={}", out_file.display()))
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = run(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("overwrite"));
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "keep me");
    let done = run(&["overwrite"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(text.contains("[[population]]"));
    assert!(
        done.stdout.is_empty(),
        "the profile went to the file, not stdout"
    );
}
