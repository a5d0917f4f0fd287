//! `server_pid=`: the lab Dovecot's CPU, memory and I/O (its master process and every
//! process under it) sampled each second into the CSV, the summary and the report; a
//! pid that does not exist is refused before the run.

mod common;

use std::process::Command;

#[test]
fn the_lab_servers_usage_lands_in_csv_summary_and_report() {
    let lab = common::lab();
    let pid = std::fs::read_to_string(lab.dir.join("run/master.pid"))
        .expect("the lab's master.pid")
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (csv, summary, report) = (
        dir.path().join("t.csv"),
        dir.path().join("s.json"),
        dir.path().join("r.html"),
    );
    let user = common::fresh_user();
    let out = Command::new(common::imaptest_bin())
        .args([
            format!("host={}", lab.host),
            format!("port={}", lab.imap_port),
            format!("user={user}"),
            "users=1".to_owned(),
            format!("pass={}", lab.user_password),
            "random_msg_size=5000".to_owned(),
            "clients=3".to_owned(),
            "secs=4".to_owned(),
            format!("server_pid={pid}"),
            format!("csv={}", csv.display()),
            format!("summary={}", summary.display()),
            format!("report={}", report.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let (cpu, rss, processes) = (
        column("server_cpu_percent"),
        column("server_rss_kib"),
        column("server_processes"),
    );
    column("server_read_bytes_per_s");
    column("server_write_bytes_per_s");
    let seconds: Vec<csv::StringRecord> = rows
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[2] == "connections")
        .collect();
    assert!(seconds.len() >= 4, "{text}");
    for second in &seconds {
        // Dovecot runs a master, config, log, anvil, auth and an imap per client.
        assert!(second[processes].parse::<u64>().unwrap() >= 3, "{second:?}");
        assert!(second[rss].parse::<u64>().unwrap() > 1000, "{second:?}");
        second[cpu].parse::<f64>().unwrap();
    }
    let busy: f64 = seconds.iter().map(|s| s[cpu].parse::<f64>().unwrap()).sum();
    assert!(busy > 0.0, "logins and appends cost the server CPU: {text}");

    let s = imaptest::summary::RunSummary::read(&summary).unwrap();
    let sampling = s.server_sampling.expect("sampling recorded");
    assert_eq!(sampling.source, format!("pid {pid} and descendants"));
    let totals = s.totals.server.expect("server totals");
    assert!(
        totals.cpu_secs > 0.0 && totals.rss_peak_kib > 1000,
        "{totals:?}"
    );
    assert!(
        s.timeline
            .seconds
            .iter()
            .filter(|x| x.server.is_some())
            .count()
            >= 4,
        "every second sampled"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("data-chart=\"server-cpu\""));
    assert!(html.contains(&format!("pid {pid} and descendants")));
}

#[test]
fn a_missing_server_process_is_refused_before_the_run() {
    let lab = common::lab();
    let out = Command::new(common::imaptest_bin())
        .args([
            format!("host={}", lab.host),
            format!("port={}", lab.imap_port),
            "user=testuser1".to_owned(),
            format!("pass={}", lab.user_password),
            "random_msg_size=100".to_owned(),
            "secs=1".to_owned(),
            "server_pid=4194303".to_owned(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(imaptest::exit::FATAL as i32));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server_pid=4194303: no such process"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Totals"));
}
