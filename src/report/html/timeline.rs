//! Charts over time and latency distributions, from the summaries' timelines and
//! totals. Several runs overlay: the colour is the thing measured, the dash the run.

use std::collections::BTreeMap;

use super::Run;
use super::chart::{Axis, Chart, Scale, Series, Unit};
use crate::summary::histogram;
use crate::summary::timeline::{Second, SecondLatency, op_by_key};

/// The busiest commands charted per chart (the tables list them all).
pub const MAX_OPS: usize = 8;

/// `protocol.NAME` keys of the busiest commands (not profile actions) across the runs,
/// busiest first, and how many commands ran in all.
pub fn busiest_ops(runs: &[Run<'_>]) -> (Vec<String>, usize) {
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for run in runs {
        for c in &run.summary.totals.commands {
            if c.protocol == "action" {
                continue;
            }
            *totals
                .entry(format!("{}.{}", c.protocol, c.name))
                .or_default() += c.count + c.no + c.bad + c.failed;
        }
    }
    let all = totals.len();
    let mut ops: Vec<(String, u64)> = totals.into_iter().collect();
    ops.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (ops.into_iter().take(MAX_OPS).map(|(k, _)| k).collect(), all)
}

/// `imap.LOGIN` → `imap LOGIN`.
fn op_label(key: &str) -> String {
    match op_by_key(key) {
        Some(op) => format!("{} {}", op.protocol().name(), op.name()),
        None => key.replace('.', " "),
    }
}

fn label(runs: &[Run<'_>], run: usize, what: &str) -> String {
    if runs.len() == 1 {
        what.to_owned()
    } else {
        format!("{} · {what}", runs[run].label)
    }
}

fn time_chart(id: &str, title: &str, y: Axis) -> Chart {
    Chart::new(
        id,
        "time",
        title,
        Axis::new("elapsed time since the start", Unit::Elapsed, Scale::Linear),
        y,
    )
}

/// One series per run of `value` at every second (`None`: no data that second).
fn per_second(
    chart: &mut Chart,
    runs: &[Run<'_>],
    what: &str,
    color: usize,
    value: impl Fn(&Second) -> Option<f64>,
) {
    for (i, run) in runs.iter().enumerate() {
        let mut series = Series::line(label(runs, i, what), color, i);
        series.points = run
            .summary
            .timeline
            .seconds
            .iter()
            .map(|s| (s.elapsed as f64, value(s)))
            .collect();
        chart.series.push(series);
    }
}

/// A quantile of one second's histogram, µs.
fn quantile(latency: Option<&SecondLatency>, q: f64) -> Option<f64> {
    let latency = latency?;
    if latency.count == 0 {
        return None;
    }
    let h = histogram::decode(&latency.histogram).ok()?;
    Some(h.value_at_quantile(q) as f64)
}

/// Every time chart that has data, in reading order.
pub fn time_charts(runs: &[Run<'_>]) -> Vec<Chart> {
    let (ops, all) = busiest_ops(runs);
    let left_out = (all > ops.len()).then(|| {
        format!(
            "The {} busiest of {all} commands; the table above lists them all.",
            ops.len()
        )
    });
    let mut charts = Vec::new();

    let mut commands = time_chart(
        "commands",
        "Commands per second",
        Axis::new("commands/s (OK)", Unit::Count, Scale::Linear),
    );
    for (color, key) in ops.iter().enumerate() {
        per_second(&mut commands, runs, &op_label(key), color, |s| {
            Some(s.ops.get(key).map_or(0.0, |o| o.count as f64))
        });
    }
    commands.note = left_out.clone();
    charts.push(commands);

    for (id, title, q) in [
        (
            "latency-p50",
            "Latency per command, median (p50) of each second",
            0.5,
        ),
        (
            "latency-p99",
            "Latency per command, p99 of each second",
            0.99,
        ),
    ] {
        let mut chart = time_chart(
            id,
            title,
            Axis::new("latency (log scale)", Unit::Micros, Scale::Log),
        );
        for (color, key) in ops.iter().enumerate() {
            per_second(&mut chart, runs, &op_label(key), color, |s| {
                quantile(s.ops.get(key).and_then(|o| o.latency.as_ref()), q)
            });
        }
        chart.note = Some(
            "A gap is a second in which the command did not complete. Commands are timed \
             from sending to the reply."
                .to_owned(),
        );
        charts.push(chart);
    }

    let mut errors = time_chart(
        "errors",
        "Errors per second, by kind",
        Axis::new("errors/s", Unit::Count, Scale::Linear),
    );
    per_second(&mut errors, runs, "all kinds", 0, |s| Some(s.errors as f64));
    let mut kinds: Vec<&String> = runs
        .iter()
        .flat_map(|r| r.summary.totals.errors.by_kind.keys())
        .collect();
    kinds.sort();
    kinds.dedup();
    for (i, kind) in kinds.into_iter().enumerate() {
        per_second(&mut errors, runs, kind, i + 1, |s| {
            Some(s.error_kinds.get(kind).copied().unwrap_or(0) as f64)
        });
    }
    charts.push(errors);

    let profile = runs
        .iter()
        .any(|r| r.summary.mode == crate::summary::RunMode::Profile);
    let mut connections = time_chart(
        "connections",
        if profile {
            "Connections open and users online"
        } else {
            "Connections open"
        },
        Axis::new("connections, users", Unit::Count, Scale::Linear),
    );
    per_second(&mut connections, runs, "connections open", 0, |s| {
        Some(s.open as f64)
    });
    if profile {
        per_second(&mut connections, runs, "users online", 1, |s| {
            Some(s.users as f64)
        });
    }
    charts.push(connections);

    let delivers = runs.iter().any(|r| r.summary.totals.deliveries.is_some());
    if delivers {
        let mut deliveries = time_chart(
            "deliveries",
            "LMTP deliveries per second (recipients)",
            Axis::new("recipients/s", Unit::Count, Scale::Linear),
        );
        let field = |f: fn(&crate::summary::timeline::SecondDeliveries) -> u64| {
            move |s: &Second| Some(s.deliveries.as_ref().map_or(0, f) as f64)
        };
        per_second(
            &mut deliveries,
            runs,
            "delivered",
            0,
            field(|d| d.delivered),
        );
        per_second(&mut deliveries, runs, "refused", 1, field(|d| d.refused));
        per_second(&mut deliveries, runs, "failed", 2, field(|d| d.failed));
        charts.push(deliveries);

        let mut e2e = time_chart(
            "delivery-latency",
            "End-to-end delivery latency (LMTP → seen by the user's client)",
            Axis::new("latency (log scale)", Unit::Micros, Scale::Log),
        );
        for (color, (what, q)) in [("p50", 0.5), ("p99", 0.99)].into_iter().enumerate() {
            per_second(&mut e2e, runs, what, color, |s| {
                quantile(s.deliveries.as_ref().and_then(|d| d.end_to_end.as_ref()), q)
            });
        }
        charts.push(e2e);
    }

    if profile {
        let mut lateness = time_chart(
            "lateness",
            "Schedule lateness: how late imaptest handed actions over",
            Axis::new("lateness (log scale)", Unit::Micros, Scale::Log),
        );
        for (color, (what, q)) in [("p99", 0.99), ("max", 1.0)].into_iter().enumerate() {
            per_second(&mut lateness, runs, what, color, |s| {
                quantile(s.lateness.as_ref(), q)
            });
        }
        lateness.note = Some(
            "Growing lateness means imaptest itself fell behind its schedule, not the server."
                .to_owned(),
        );
        charts.push(lateness);
    }

    if runs.iter().any(|r| r.summary.server_sampling.is_some()) {
        let mut cpu = time_chart(
            "server-cpu",
            "Server CPU (all its processes)",
            Axis::new("CPU, % of one core", Unit::Percent, Scale::Linear),
        );
        per_second(&mut cpu, runs, "server CPU", 0, |s| {
            s.server.as_ref().map(|u| u.cpu_percent())
        });
        charts.push(cpu);
        let mut rss = time_chart(
            "server-rss",
            "Server resident memory (summed over its processes)",
            Axis::new("RSS", Unit::Kib, Scale::Linear),
        );
        per_second(&mut rss, runs, "server RSS", 1, |s| {
            s.server.as_ref().map(|u| u.rss_kib as f64)
        });
        charts.push(rss);
    }
    charts.retain(|c| !c.is_empty());
    charts
}

/// The percentile curve of each busy command over the whole run (after nothing is
/// left out: the totals).
pub fn distribution_chart(runs: &[Run<'_>]) -> Option<Chart> {
    let (ops, all) = busiest_ops(runs);
    let mut chart = Chart::new(
        "distribution",
        "distribution",
        "Latency distribution per command (whole run)",
        Axis::new("percentile", Unit::Nines, Scale::Linear),
        Axis::new("latency (log scale)", Unit::Micros, Scale::Log),
    );
    for (color, key) in ops.iter().enumerate() {
        for (i, run) in runs.iter().enumerate() {
            let Some(totals) = run
                .summary
                .totals
                .commands
                .iter()
                .find(|c| format!("{}.{}", c.protocol, c.name) == *key)
            else {
                continue;
            };
            let Some(h) = totals
                .latency
                .histogram
                .as_deref()
                .and_then(|h| histogram::decode(h).ok())
            else {
                continue;
            };
            // Beyond 1/count the curve says nothing: stop there (at most 99.999 %).
            let max_nines = (totals.latency.count.max(1) as f64).log10().min(5.0);
            let mut series = Series::line(label(runs, i, &op_label(key)), color, i);
            let steps = (max_nines * 10.0).floor() as u32;
            series.points = (0..=steps)
                .map(|k| {
                    let x = f64::from(k) / 10.0;
                    let q = 1.0 - 10f64.powf(-x);
                    (x, Some(h.value_at_quantile(q) as f64))
                })
                .collect();
            chart.series.push(series);
        }
    }
    chart.note = Some(format!(
        "Read a point as: this share of the commands took at most this long. {}",
        if all > ops.len() {
            format!("The {} busiest of {all} commands.", ops.len())
        } else {
            String::new()
        }
    ));
    (!chart.is_empty()).then_some(chart)
}
