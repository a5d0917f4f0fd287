//! The capacity section: the answer, the capacity curve (each SLO metric against the
//! user count, its threshold, the knee marked) and the table of steps.

use std::fmt::Write as _;

use super::chart::{Axis, Chart, Rule, Scale, Series, Unit};
use super::escape;
use crate::capacity::{CapacityReport, Step, thousands};

fn users_axis() -> Axis {
    Axis::new("users", Unit::Count, Scale::Linear)
}

fn unit_of(name: &str) -> (Unit, Scale) {
    match name {
        "us" => (Unit::Micros, Scale::Linear),
        "per_second" => (Unit::PerSecond, Scale::Linear),
        _ => (Unit::Count, Scale::Linear),
    }
}

/// Steps by user count (attempts in the order run).
fn by_users(report: &CapacityReport) -> Vec<&Step> {
    let mut steps: Vec<&Step> = report.steps.iter().collect();
    steps.sort_by_key(|s| (s.users, s.number));
    steps
}

fn knee(report: &CapacityReport) -> Vec<Rule> {
    let mut rules = Vec::new();
    if let Some(users) = report.answer.holds_users {
        rules.push(Rule {
            at: users as f64,
            label: format!("holds {}", thousands(users)),
        });
    }
    rules
}

/// The attempt that counted at each user count (the last one run).
fn deciding<'a>(steps: &[&'a Step]) -> Vec<&'a Step> {
    let mut last: Vec<&'a Step> = Vec::new();
    for step in steps {
        match last.last_mut() {
            Some(prev) if prev.users == step.users => *prev = step,
            _ => last.push(step),
        }
    }
    last
}

/// One chart per objective (every attempt a dot), then throughput and server CPU
/// against users (the attempts that counted).
pub fn charts(report: &CapacityReport) -> Vec<Chart> {
    let steps = by_users(report);
    let counted = deciding(&steps);
    let mut charts = Vec::new();
    let objectives = steps.first().map_or(0, |s| s.verdicts.len());
    for i in 0..objectives {
        let first = &steps[0].verdicts[i];
        let (unit, scale) = unit_of(&first.unit);
        let (unit, threshold) = if first.unit == "ratio" {
            (Unit::Percent, first.threshold * 100.0)
        } else {
            (unit, first.threshold)
        };
        let mut chart = Chart::new(
            &format!("capacity-{i}"),
            "capacity",
            &format!("{} against users", first.expression),
            users_axis(),
            Axis::new(first.metric.clone(), unit, scale),
        );
        let mut series = Series::line(first.metric.clone(), i, 0);
        for step in &steps {
            let verdict = &step.verdicts[i];
            let value = verdict
                .observed
                .map(|v| if first.unit == "ratio" { v * 100.0 } else { v });
            series.points.push((step.users as f64, value));
            series
                .dots
                .push(Some(if step.pass { "pass" } else { "fail" }));
        }
        chart.series.push(series);
        chart.thresholds.push(Rule {
            at: threshold,
            label: format!(
                "SLO {} {}",
                first.comparison,
                crate::slo::Unit::from_name(&first.unit)
                    .map_or_else(|| first.threshold.to_string(), |u| u.show(first.threshold))
            ),
        });
        chart.markers = knee(report);
        chart.note = Some(
            "Green dots passed every objective, red ones failed (a failed step was run twice)."
                .to_owned(),
        );
        charts.push(chart);
    }
    let mut throughput = Chart::new(
        "capacity-throughput",
        "capacity",
        "Throughput against users (measured windows)",
        users_axis(),
        Axis::new("per second", Unit::PerSecond, Scale::Linear),
    );
    for (color, (what, value)) in [
        (
            "commands/s",
            (|s: &Step| s.commands_per_sec) as fn(&Step) -> f64,
        ),
        ("sessions/s", |s: &Step| s.sessions_per_sec),
        ("deliveries/s", |s: &Step| s.deliveries_per_sec),
    ]
    .into_iter()
    .enumerate()
    {
        let mut series = Series::line(what, color, 0);
        series.points = counted
            .iter()
            .map(|s| (s.users as f64, Some(value(s))))
            .collect();
        if series.points.iter().any(|(_, y)| y.unwrap_or(0.0) > 0.0) {
            throughput.series.push(series);
        }
    }
    throughput.markers = knee(report);
    charts.push(throughput);
    if steps.iter().any(|s| s.server.is_some()) {
        let mut cpu = Chart::new(
            "capacity-server-cpu",
            "capacity",
            "Server CPU against users (measured windows)",
            users_axis(),
            Axis::new("CPU, % of one core", Unit::Percent, Scale::Linear),
        );
        let mut series = Series::line("server CPU", 0, 0);
        series.points = counted
            .iter()
            .map(|s| {
                (
                    s.users as f64,
                    s.server.as_ref().map(|u| u.cpu_mean_percent),
                )
            })
            .collect();
        cpu.series.push(series);
        let mut tool = Series::line("imaptest CPU", 1, 0);
        tool.points = counted
            .iter()
            .map(|s| (s.users as f64, Some(s.tool.cpu_percent)))
            .collect();
        cpu.series.push(tool);
        cpu.markers = knee(report);
        charts.push(cpu);
    }
    charts.retain(|c| !c.is_empty());
    charts
}

/// The steps as a table.
pub fn steps_table(report: &CapacityReport) -> String {
    let mut out = String::from(
        "<table class=\"data\"><thead><tr><th>step</th><th>users</th><th>phase</th>\
         <th>sessions/s</th><th>deliveries/s</th><th>commands/s</th>",
    );
    for slo in &report.slos {
        let _ = write!(out, "<th>{}</th>", escape(slo));
    }
    out.push_str(
        "<th>lateness p99</th><th>tool run-queue</th><th>server CPU</th><th>result</th></tr></thead><tbody>",
    );
    for step in &report.steps {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td>",
            step.number,
            thousands(step.users),
            step.phase.name(),
            step.sessions_per_sec,
            step.deliveries_per_sec,
            step.commands_per_sec
        );
        for v in &step.verdicts {
            let _ = write!(
                out,
                "<td class=\"{}\">{}</td>",
                if v.pass { "pass" } else { "fail" },
                escape(&super::observed_value(v))
            );
        }
        let result = if step.tool.limited {
            "tool-limited"
        } else if step.pass {
            "pass"
        } else if step.attempt == 1 {
            "fail (re-run)"
        } else {
            "fail"
        };
        let _ = write!(
            out,
            "<td>{}</td><td>{:.0} ms/s</td><td>{}</td><td class=\"{}\">{result}</td></tr>",
            step.tool
                .lateness_p99_us
                .map_or("-".to_owned(), |l| super::chart::format_latency(l as f64)),
            step.tool.run_queue_ms_per_sec,
            step.server
                .as_ref()
                .map_or("-".to_owned(), |s| format!("{:.0}%", s.cpu_mean_percent)),
            if step.pass { "pass" } else { "fail" },
        );
    }
    out.push_str("</tbody></table>");
    out
}
