//! The HTML report in a real browser: two profile runs against the lab (with LMTP
//! deliveries and the lab Dovecot's CPU and memory sampled), each with `report=`, then
//! `imaptest report` overlaying both. Headless Chromium loads each file with the
//! network blocked (every request goes to a proxy that counts connection attempts) and
//! the DevTools protocol watching: no console error, no exception, no request other
//! than the file itself; each time chart has one point per second of the summary (per
//! second with data, for latencies), its axes cover the data, every point lies inside
//! the plot; it prints to PNG and PDF. The PNGs are left in the target directory to look
//! at.
//!
//! Needs `chromium` (Debian package); without it the test is skipped, except under CI.

#[path = "support/chromium.rs"]
mod chromium;
mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use imaptest::summary::RunSummary;
use imaptest::summary::timeline::Second;
use serde_json::Value;

const PROFILE: &str = r#"
[run]
rampup = "2s"
total_users = 12

[servers.imap]
port = @IMAP@

[servers.lmtp]
port = @LMTP@
max_parallel = 4

[[population]]
name = "office"
share = 100
username = "testuser%{username_idx}"
start_index = 170
clients = [{ client = "desktop", share = 100 }]
inbox_delivery = { dist = "exponential", mean = "3s" }
action_delay = "1s"
action_repeat_delay = "1s"
delete = 100

[[client]]
name = "desktop"
fetch_on_arrival = "UID FLAGS RFC822.SIZE"
fetch_on_open = "BODY.PEEK[]"
"#;

/// A listener standing in for the network: records the first line of every
/// connection attempt (`CONNECT host:443 HTTP/1.1`, `GET http://…`).
fn counting_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut line = String::new();
            let _ = std::io::BufReader::new(stream).read_line(&mut line);
            log.lock().unwrap().push(line.trim().to_owned());
        }
    });
    (port, seen)
}

fn run_profile(dir: &Path, name: &str, profile: &Path, mbox: &Path) -> (RunSummary, PathBuf) {
    let lab = common::lab();
    let summary = dir.join(format!("{name}.json"));
    let report = dir.join(format!("{name}.html"));
    let pid = std::fs::read_to_string(lab.dir.join("run/master.pid"))
        .expect("the lab's master.pid")
        .trim()
        .to_owned();
    let out = Command::new(common::imaptest_bin())
        .args([
            format!("profile={}", profile.display()),
            format!("host={}", lab.host),
            format!("pass={}", lab.user_password),
            format!("mbox={}", mbox.display()),
            "secs=7".to_owned(),
            "seed=3".to_owned(),
            format!("server_pid={pid}"),
            "slo=imap.LOGIN.p99 < 5s".to_owned(),
            "slo=lmtp.delivered_ratio >= 0.5".to_owned(),
            format!("summary={}", summary.display()),
            format!("report={}", report.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: exit {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (RunSummary::read(&summary).unwrap(), report)
}

/// A request line to one of Chromium's own service hosts (not fonts or other page
/// resources those domains also serve).
fn is_browser_service(line: &str) -> bool {
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let host = target
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    let service = [
        "update.googleapis.com",
        "accounts.google.com",
        "clients2.google.com",
    ];
    service.contains(&host)
}

/// What a series must hold: the seconds it has a value for.
fn expected_points(chart: &str, what: &str, seconds: &[Second]) -> usize {
    let key = what.replacen(' ', ".", 1);
    let with = |f: &dyn Fn(&Second) -> bool| seconds.iter().filter(|s| f(s)).count();
    match chart {
        "latency-p50" | "latency-p99" => with(&|s| {
            s.ops
                .get(&key)
                .and_then(|o| o.latency.as_ref())
                .is_some_and(|l| l.count > 0)
        }),
        "delivery-latency" => with(&|s| {
            s.deliveries
                .as_ref()
                .and_then(|d| d.end_to_end.as_ref())
                .is_some_and(|l| l.count > 0)
        }),
        "lateness" => with(&|s| s.lateness.as_ref().is_some_and(|l| l.count > 0)),
        "server-cpu" | "server-rss" => with(&|s| s.server.is_some()),
        // Counts and gauges: every second.
        _ => seconds.len(),
    }
}

/// The largest value a chart plots, computed from the summary.
fn data_max(chart: &str, what: &str, seconds: &[Second]) -> Option<f64> {
    let key = what.replacen(' ', ".", 1);
    let values: Vec<f64> = match chart {
        "commands" => seconds
            .iter()
            .map(|s| s.ops.get(&key).map_or(0.0, |o| o.count as f64))
            .collect(),
        "connections" if what == "connections open" => {
            seconds.iter().map(|s| s.open as f64).collect()
        }
        "connections" => seconds.iter().map(|s| s.users as f64).collect(),
        "latency-p99" => seconds
            .iter()
            .filter_map(|s| s.ops.get(&key).and_then(|o| o.latency.as_ref()))
            .map(|l| {
                imaptest::summary::histogram::decode(&l.histogram)
                    .unwrap()
                    .value_at_quantile(0.99) as f64
            })
            .collect(),
        "server-cpu" => seconds
            .iter()
            .filter_map(|s| s.server.as_ref())
            .map(|u| u.cpu_us as f64 * 100.0 / u.wall_us as f64)
            .collect(),
        _ => return None,
    };
    values.into_iter().reduce(f64::max)
}

const CHARTS_JS: &str = r#"JSON.stringify([...document.querySelectorAll('svg[data-chart]')].map(svg => ({
  id: svg.dataset.chart,
  kind: svg.dataset.kind,
  x: [+svg.dataset.xMin, +svg.dataset.xMax],
  y: [+svg.dataset.yMin, +svg.dataset.yMax],
  plot: svg.dataset.plot.split(' ').map(Number),
  width: svg.getBoundingClientRect().width,
  ticks: svg.querySelectorAll('text.tick').length,
  titles: [...svg.querySelectorAll('text.axis-title')].map(t => t.textContent),
  series: [...svg.querySelectorAll('path.series')].map(p => ({
    label: p.dataset.label,
    points: +p.dataset.points,
    coords: (p.getAttribute('d').match(/[ML][^ML]*/g) || [])
      .map(seg => seg.slice(1).trim().split(/\s+/).map(Number)),
  })),
})))"#;

/// Loads `html` and checks it against `runs` (label → summary).
fn check_in_browser(
    browser: &mut chromium::Browser,
    html: &Path,
    runs: &[(&str, &RunSummary)],
    png: &Path,
) {
    browser.events.clear();
    browser.open(&format!("file://{}", html.display()));
    browser.drain(Duration::from_millis(500));
    let charts: Vec<Value> =
        serde_json::from_str(browser.eval(CHARTS_JS).as_str().unwrap()).unwrap();
    let ids: Vec<&str> = charts.iter().map(|c| c["id"].as_str().unwrap()).collect();
    for wanted in [
        "commands",
        "latency-p50",
        "latency-p99",
        "errors",
        "connections",
        "deliveries",
        "delivery-latency",
        "lateness",
        "server-cpu",
        "server-rss",
        "distribution",
    ] {
        assert!(
            ids.contains(&wanted),
            "{}: no {wanted} chart in {ids:?}",
            html.display()
        );
    }
    let by_label: HashMap<&str, &RunSummary> = runs.iter().copied().collect();
    for chart in &charts {
        let id = chart["id"].as_str().unwrap();
        let [left, top, width, height] =
            serde_json::from_value::<[f64; 4]>(chart["plot"].clone()).unwrap();
        assert!(
            chart["width"].as_f64().unwrap() > 200.0,
            "{id} not laid out"
        );
        assert!(
            chart["ticks"].as_u64().unwrap() >= 4,
            "{id}: too few tick labels"
        );
        assert_eq!(
            chart["titles"].as_array().unwrap().len(),
            2,
            "{id}: axis titles"
        );
        let (x, y) = (&chart["x"], &chart["y"]);
        let series = chart["series"].as_array().unwrap();
        assert!(!series.is_empty(), "{id}: no series");
        for s in series {
            let label = s["label"].as_str().unwrap();
            let coords = s["coords"].as_array().unwrap();
            assert_eq!(
                coords.len() as u64,
                s["points"].as_u64().unwrap(),
                "{id} {label}"
            );
            for c in coords {
                let (px, py) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
                assert!(
                    px >= left - 0.5
                        && px <= left + width + 0.5
                        && py >= top - 0.5
                        && py <= top + height + 0.5,
                    "{id} {label}: point ({px}, {py}) outside the plot {left} {top} {width} {height}"
                );
            }
            if chart["kind"] != "time" {
                continue;
            }
            // `A · imap LOGIN` when runs are overlaid, `imap LOGIN` alone.
            let (run, what) = match label.split_once(" · ") {
                Some((run, what)) => (by_label[run], what),
                None => (runs[0].1, label),
            };
            let seconds = &run.timeline.seconds;
            assert_eq!(
                coords.len(),
                expected_points(id, what, seconds),
                "{id} {label}: one point per second of the summary"
            );
            let first = seconds.first().unwrap().elapsed as f64;
            let last = seconds.last().unwrap().elapsed as f64;
            assert!(
                x[0].as_f64().unwrap() <= first && x[1].as_f64().unwrap() >= last,
                "{id}: x axis {x} misses seconds {first}..{last}"
            );
            if let Some(max) = data_max(id, what, seconds) {
                assert!(
                    y[1].as_f64().unwrap() >= max && y[0].as_f64().unwrap() <= max,
                    "{id} {label}: y axis {y} misses {max}"
                );
            }
        }
    }
    let problems = browser.problems();
    assert!(problems.is_empty(), "{}: {problems:#?}", html.display());
    let requests = browser.requests();
    assert!(
        requests.iter().all(|u| u.starts_with("file://")),
        "{}: requests beyond the file: {requests:?}",
        html.display()
    );
    let shot = browser.screenshot();
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(png, &shot).unwrap();
    let pdf = browser.pdf();
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    std::fs::write(png.with_extension("pdf"), &pdf).unwrap();
    eprintln!("look at {}", png.display());
}

#[test]
fn reports_render_offline_in_chromium_with_every_second_charted() {
    let Some(binary) = chromium::find() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium not found (CI installs it: apt-get install chromium)"
        );
        eprintln!("skipped: chromium not found");
        return;
    };
    let lab = common::lab();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("office.toml");
    std::fs::write(
        &profile,
        PROFILE
            .replace("@IMAP@", &lab.imap_port.to_string())
            .replace("@LMTP@", &lab.lmtp_port.to_string()),
    )
    .unwrap();
    let mbox = dir.path().join("m.mbox");
    assert!(
        Command::new(common::imaptest_bin())
            .args(["mbox-gen", &format!("out={}", mbox.display()), "count=30"])
            .status()
            .unwrap()
            .success()
    );
    let (a, a_html) = run_profile(dir.path(), "a", &profile, &mbox);
    let (b, _) = run_profile(dir.path(), "b", &profile, &mbox);
    let both = dir.path().join("both.html");
    let out = Command::new(common::imaptest_bin())
        .args([
            "report".to_owned(),
            dir.path().join("a.json").display().to_string(),
            dir.path().join("b.json").display().to_string(),
            format!("out={}", both.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An existing file is kept without `overwrite`.
    let again = Command::new(common::imaptest_bin())
        .args([
            "report".to_owned(),
            dir.path().join("a.json").display().to_string(),
            format!("out={}", both.display()),
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("overwrite"));

    let (proxy_port, attempts) = counting_proxy();
    let mut browser = chromium::Browser::launch(
        &binary,
        &dir.path().join("chromium-profile"),
        &[
            format!("--proxy-server=http://127.0.0.1:{proxy_port}"),
            "--proxy-bypass-list=<-loopback>".to_owned(),
        ],
    );
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    check_in_browser(
        &mut browser,
        &a_html,
        &[("A", &a)],
        &out_dir.join("report-run.png"),
    );
    check_in_browser(
        &mut browser,
        &both,
        &[("A", &a), ("B", &b)],
        &out_dir.join("report-overlay.png"),
    );
    drop(browser);
    // Chromium itself still calls home (component updates, sign-in) whatever the flags;
    // those attempts name its own service hosts. Anything else came from a page.
    let attempts = attempts.lock().unwrap().clone();
    let from_pages: Vec<&String> = attempts
        .iter()
        .filter(|line| !is_browser_service(line))
        .collect();
    assert!(
        from_pages.is_empty(),
        "the report tried to reach the network: {from_pages:?}"
    );
    // The reports are one file each: nothing linked, nothing loaded.
    for html in [&a_html, &both] {
        let text = std::fs::read_to_string(html).unwrap();
        for needle in ["http://", "https://", "<script", "<link", "@import", "url("] {
            let allowed = needle == "http://"
                && text.matches(needle).count()
                    == text.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
            assert!(
                !text.contains(needle) || allowed,
                "{} contains {needle}",
                html.display()
            );
        }
    }
}
