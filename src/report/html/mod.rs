//! The HTML report (`report=FILE` on any run, `imaptest report SUMMARY.json…`): one
//! self-contained file that works offline and prints — inline CSS and SVG, no script,
//! no fetch. It shows the run header (command, profile, server, seed, duration,
//! verdict), the SLO table, a table per command with percentiles, charts over time,
//! the latency distribution per command and, for `imaptest capacity`, the capacity
//! curve. Several summaries overlay in one report (before/after).
//!
//! It reads only [`RunSummary`] documents (and [`CapacityReport`]s), so merged shard
//! summaries render like any other.

pub mod capacity;
pub mod chart;
pub mod timeline;

use std::fmt::Write as _;

use crate::capacity::CapacityReport;
use crate::summary::{RunSummary, SloVerdict};

/// One summary in a report, with the label that tells it apart (`A`, `B`, …).
#[derive(Debug, Clone)]
pub struct Run<'a> {
    pub label: String,
    /// Where it came from (a file name), shown in its header.
    pub source: String,
    pub summary: &'a RunSummary,
}

/// What a report shows.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub runs: Vec<Run<'a>>,
    pub capacity: Option<&'a CapacityReport>,
}

impl<'a> Input<'a> {
    /// Summaries labelled A, B, … (a lone summary needs no label).
    pub fn runs(summaries: &[&'a RunSummary]) -> Input<'a> {
        Input::named(summaries.iter().map(|s| (String::new(), *s)).collect())
    }

    /// Summaries with where each came from.
    pub fn named(summaries: Vec<(String, &'a RunSummary)>) -> Input<'a> {
        let runs = summaries
            .into_iter()
            .enumerate()
            .map(|(i, (source, summary))| Run {
                label: run_letter(i),
                source,
                summary,
            })
            .collect();
        Input {
            runs,
            capacity: None,
        }
    }

    /// A capacity search: its curve and steps, then the step that held and the step
    /// that failed, overlaid.
    pub fn capacity(report: &'a CapacityReport) -> Input<'a> {
        let mut runs = Vec::new();
        if let Some(step) = report.held_step() {
            runs.push(Run {
                label: format!("held {} users", crate::capacity::thousands(step.users)),
                source: format!("step {}", step.number),
                summary: &step.summary,
            });
        }
        if let Some(step) = report.failed_step() {
            runs.push(Run {
                label: format!("failed {} users", crate::capacity::thousands(step.users)),
                source: format!("step {}", step.number),
                summary: &step.summary,
            });
        }
        Input {
            runs,
            capacity: Some(report),
        }
    }
}

/// A, B, …, Z, AA, AB, …
fn run_letter(i: usize) -> String {
    let mut n = i;
    let mut s = String::new();
    loop {
        s.insert(0, (b'A' + (n % 26) as u8) as char);
        if n < 26 {
            return s;
        }
        n = n / 26 - 1;
    }
}

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A verdict's observed value with its unit (`812ms`, `99.9%`, `no data`).
pub fn observed_value(v: &SloVerdict) -> String {
    match (v.observed, crate::slo::Unit::from_name(&v.unit)) {
        (Some(o), Some(crate::slo::Unit::Micros)) => chart::format_latency(o),
        (Some(o), Some(unit)) => unit.show(o),
        (Some(o), None) => o.to_string(),
        (None, _) => "no data".to_owned(),
    }
}

fn threshold_value(v: &SloVerdict) -> String {
    match crate::slo::Unit::from_name(&v.unit) {
        Some(unit) => unit.show(v.threshold),
        None => v.threshold.to_string(),
    }
}

/// The whole document.
pub fn render(input: &Input<'_>) -> String {
    let title = match (input.capacity, input.runs.as_slice()) {
        (Some(c), _) => format!(
            "imaptest capacity: {}",
            c.profile.as_ref().map_or("profile", |p| {
                p.path.rsplit('/').next().unwrap_or(&p.path)
            })
        ),
        (None, [run]) => format!(
            "imaptest {} run, {}",
            mode_name(run.summary),
            run.summary.start.rfc3339
        ),
        (None, runs) => format!("imaptest: {} runs compared", runs.len()),
    };
    let mut body = String::new();
    let _ = write!(body, "<h1>{}</h1>", escape(&title));
    if let Some(report) = input.capacity {
        body.push_str(&capacity_section(report));
    }
    if !input.runs.is_empty() {
        if input.capacity.is_some() {
            body.push_str(
                "<h2>The knee up close</h2><p>The step that held and the step that failed, overlaid \
                 (solid: held, dashed: failed).</p>",
            );
        }
        body.push_str(&runs_section(&input.runs));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"imaptest {}\">\
         <title>{}</title><style>{CSS}</style></head>\n<body>{body}\
         <footer>Written by imaptest {} — a self-contained file: no script, nothing fetched.</footer>\
         </body></html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&title),
        env!("CARGO_PKG_VERSION"),
    )
}

fn mode_name(summary: &RunSummary) -> &'static str {
    match summary.mode {
        crate::summary::RunMode::Stress => "stress",
        crate::summary::RunMode::Profile => "profile",
        crate::summary::RunMode::Scripted => "scripted",
    }
}

fn capacity_section(report: &CapacityReport) -> String {
    let mut out = String::new();
    let class = match report.answer.outcome {
        crate::capacity::Outcome::Found | crate::capacity::Outcome::AllPassed => "pass",
        _ => "fail",
    };
    let _ = write!(
        out,
        "<p class=\"answer {class}\">{}</p>",
        escape(&report.answer.sentence)
    );
    let _ = write!(
        out,
        "<p class=\"meta\">Objectives: {}. Each step: {} s warm-up (not measured), then {} s \
         measured; ramp from {} ×{} up to {}, then bisection to {}%.</p>",
        escape(&report.slos.join("; ")),
        report.search.warmup_secs,
        report.search.window_secs,
        crate::capacity::thousands(report.search.from),
        report.search.growth,
        crate::capacity::thousands(report.search.to),
        report.search.resolution * 100.0,
    );
    out.push_str("<h2>Capacity curve</h2><div class=\"charts\">");
    for chart in capacity::charts(report) {
        out.push_str(&chart.to_html());
    }
    out.push_str("</div><h2>Steps</h2>");
    out.push_str(&capacity::steps_table(report));
    out
}

fn runs_section(runs: &[Run<'_>]) -> String {
    let mut out = String::new();
    out.push_str("<h2>Runs</h2><div class=\"runs\">");
    for run in runs {
        out.push_str(&run_header(run, runs.len() > 1));
    }
    out.push_str("</div>");
    out.push_str(&slo_table(runs));
    out.push_str("<h2>Commands</h2>");
    out.push_str(&command_table(runs));
    out.push_str("<h2>Over time</h2><div class=\"charts\">");
    for chart in timeline::time_charts(runs) {
        out.push_str(&chart.to_html());
    }
    out.push_str("</div>");
    if let Some(chart) = timeline::distribution_chart(runs) {
        out.push_str("<h2>Latency distribution</h2><div class=\"charts\">");
        out.push_str(&chart.to_html());
        out.push_str("</div>");
    }
    out.push_str(&error_examples(runs));
    out
}

fn run_header(run: &Run<'_>, labelled: bool) -> String {
    let s = run.summary;
    let mut rows: Vec<(&str, String)> = Vec::new();
    rows.push(("command", s.command_line.join(" ")));
    if !run.source.is_empty() {
        rows.push(("from", run.source.clone()));
    }
    rows.push(("mode", mode_name(s).to_owned()));
    if let Some(p) = &s.profile {
        rows.push((
            "profile",
            format!(
                "{} (sha256 {}…)",
                p.path,
                &p.sha256[..p.sha256.len().min(12)]
            ),
        ));
    }
    for (name, info) in [
        ("IMAP server", &s.server.imap),
        ("POP3 server", &s.server.pop3),
        ("LMTP server", &s.server.lmtp),
    ] {
        if let Some(info) = info {
            let id = match (info.id.get("name"), info.id.get("version")) {
                (Some(n), Some(v)) => format!(" — {n} {v}"),
                (Some(n), None) => format!(" — {n}"),
                _ => String::new(),
            };
            rows.push((name, format!("{}{id}: {}", info.address, info.greeting)));
        }
    }
    rows.push((
        "seed",
        s.seed.map_or("random".to_owned(), |seed| seed.to_string()),
    ));
    rows.push(("start", s.start.rfc3339.clone()));
    rows.push((
        "duration",
        format!(
            "{:.1} s ({} s warm-up left out of SLOs)",
            s.duration_secs, s.warmup_secs
        ),
    ));
    if let Some(shard) = s.shard {
        rows.push(("shard", format!("{} of {}", shard.index + 1, shard.count)));
    }
    rows.push((
        "imaptest cost",
        format!(
            "{:.1} s CPU, {} peak RSS",
            s.tool_usage.cpu_user_secs + s.tool_usage.cpu_system_secs,
            chart::format_kib(s.tool_usage.peak_rss_kib as f64)
        ),
    ));
    if let (Some(sampling), Some(server)) = (&s.server_sampling, &s.totals.server) {
        rows.push((
            "server cost",
            format!(
                "{}: CPU {:.0}% of one core on average ({:.0}% of {} cores), peak {:.0}%; RSS peak {}; \
                 {} read, {} written",
                sampling.source,
                server.cpu_mean_percent,
                server.cpu_mean_percent / f64::from(sampling.cores.max(1)),
                sampling.cores,
                server.cpu_peak_percent,
                chart::format_kib(server.rss_peak_kib as f64),
                chart::format_kib(server.read_bytes as f64 / 1024.0),
                chart::format_kib(server.write_bytes as f64 / 1024.0),
            ),
        ));
    }
    let verdict_class = if s.exit_status == crate::exit::OK {
        "pass"
    } else {
        "fail"
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<section class=\"run\"><h3>{}<span class=\"verdict {verdict_class}\">exit {} — {}{}</span></h3><table class=\"meta\">",
        if labelled {
            format!("Run {} ", escape(&run.label))
        } else {
            String::new()
        },
        s.exit_status,
        escape(crate::exit::meaning(s.exit_status)),
        if s.complete { "" } else { " (incomplete)" },
    );
    for (name, value) in rows {
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    out.push_str("</table></section>");
    out
}

fn slo_table(runs: &[Run<'_>]) -> String {
    let mut expressions: Vec<&str> = Vec::new();
    for run in runs {
        for v in &run.summary.slo {
            if !expressions.contains(&v.expression.as_str()) {
                expressions.push(&v.expression);
            }
        }
    }
    if expressions.is_empty() {
        return "<h2>SLOs</h2><p class=\"meta\">No objectives were set (slo=, [[slo]]).</p>"
            .to_owned();
    }
    let mut out = String::from(
        "<h2>SLOs</h2><table class=\"data\"><thead><tr><th>metric</th><th>threshold</th>",
    );
    for run in runs {
        let _ = write!(
            out,
            "<th>observed{}</th>",
            if runs.len() > 1 {
                format!(" ({})", escape(&run.label))
            } else {
                String::new()
            }
        );
    }
    out.push_str("</tr></thead><tbody>");
    for expression in expressions {
        let first = runs
            .iter()
            .flat_map(|r| &r.summary.slo)
            .find(|v| v.expression == expression)
            .expect("listed from the runs");
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} {}</td>",
            escape(&first.metric),
            escape(&first.comparison),
            escape(&threshold_value(first))
        );
        for run in runs {
            match run.summary.slo.iter().find(|v| v.expression == expression) {
                Some(v) => {
                    let _ = write!(
                        out,
                        "<td class=\"{}\">{} {}</td>",
                        if v.pass { "pass" } else { "fail" },
                        escape(&observed_value(v)),
                        if v.pass { "✓" } else { "✗" }
                    );
                }
                None => out.push_str("<td>-</td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

fn command_table(runs: &[Run<'_>]) -> String {
    let mut keys: Vec<(String, String)> = Vec::new();
    for run in runs {
        for c in &run.summary.totals.commands {
            let key = (c.protocol.clone(), c.name.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let mut out =
        String::from("<table class=\"data\"><thead><tr><th>protocol</th><th>command</th>");
    if runs.len() > 1 {
        out.push_str("<th>run</th>");
    }
    for h in [
        "count", "OK/s", "NO", "BAD", "failed", "p50", "p90", "p95", "p99", "p99.9", "max",
    ] {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    let ms = |us: u64| escape(&chart::format_latency(us as f64));
    for (protocol, name) in &keys {
        for run in runs {
            let Some(c) = run
                .summary
                .totals
                .commands
                .iter()
                .find(|c| &c.protocol == protocol && &c.name == name)
            else {
                continue;
            };
            let rate = c.ok as f64 / run.summary.duration_secs.max(1.0);
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td>",
                escape(protocol),
                escape(name)
            );
            if runs.len() > 1 {
                let _ = write!(out, "<td>{}</td>", escape(&run.label));
            }
            let l = &c.latency;
            let timed = l.count > 0;
            let cell = |us: u64| if timed { ms(us) } else { "-".to_owned() };
            let _ = write!(
                out,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.count,
                chart::format_number(rate),
                c.no,
                c.bad,
                if c.failed > 0 { " class=\"fail\"" } else { "" },
                c.failed,
                cell(l.p50_us),
                cell(l.p90_us),
                cell(l.p95_us),
                cell(l.p99_us),
                cell(l.p999_us),
                cell(l.max_us),
            );
        }
    }
    out.push_str("</tbody></table><p class=\"note\">OK/s over the whole run; latencies from sending a command to its reply (profile actions: from the planned instant).</p>");
    out
}

fn error_examples(runs: &[Run<'_>]) -> String {
    if runs.iter().all(|r| r.summary.error_examples.is_empty()) {
        return String::new();
    }
    let mut out = String::from(
        "<h2>Error examples</h2><table class=\"data\"><thead><tr><th>run</th><th>kind</th>\
         <th>at</th><th>message</th><th>server line</th></tr></thead><tbody>",
    );
    for run in runs {
        for e in &run.summary.error_examples {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{} s</td><td>{}</td><td><code>{}</code></td></tr>",
                escape(&run.label),
                escape(&e.kind),
                e.elapsed_secs,
                escape(&e.message),
                escape(e.line.as_deref().unwrap_or(""))
            );
        }
    }
    out.push_str("</tbody></table>");
    out
}

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#d8dce3;--bg:#fff;--pass:#1a7f37;--fail:#c0392b}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg);max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 12px}
h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:0 0 6px}
.runs{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px}
.run{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.verdict{font-weight:normal;font-size:13px;margin-left:8px;padding:1px 8px;border-radius:10px;color:#fff}
.verdict.pass{background:var(--pass)}.verdict.fail{background:var(--fail)}
table{border-collapse:collapse}
table.meta th{text-align:left;font-weight:600;color:var(--muted);padding:2px 12px 2px 0;vertical-align:top;white-space:nowrap}
table.meta td{padding:2px 0;word-break:break-word;font-size:13px}
table.data{width:100%;font-size:13px;font-variant-numeric:tabular-nums}
table.data th{text-align:right;background:#f3f5f8;padding:5px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
table.data td{text-align:right;padding:4px 8px;border-bottom:1px solid #eef0f3}
table.data th:first-child,table.data td:first-child,table.data th:nth-child(2),table.data td:nth-child(2){text-align:left}
table.data tbody tr:nth-child(even){background:#fafbfc}
td.pass{color:var(--pass)}td.fail{color:var(--fail);font-weight:600}
.answer{font-size:17px;font-weight:600;padding:12px 14px;border-radius:6px;border-left:6px solid}
.answer.pass{background:#eef8f1;border-color:var(--pass)}.answer.fail{background:#fdf0ee;border-color:var(--fail)}
.meta,.note{color:var(--muted)}.note{font-size:12px;margin:4px 0 0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:18px}
figure.chart{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px 10px;break-inside:avoid}
figcaption{font-weight:600;margin-bottom:4px}
svg.plot{width:100%;height:auto;display:block}
.frame{fill:none;stroke:#9aa3b2;stroke-width:1}
.grid{stroke:#e6e9ee;stroke-width:1}
.tick{font-size:11px;fill:var(--muted)}
.axis-title{font-size:11.5px;fill:var(--fg)}
.series{fill:none;stroke-width:1.8;stroke-linejoin:round;stroke-linecap:round}
.threshold{stroke:var(--fail);stroke-width:1.2;stroke-dasharray:6 4}
.marker{stroke:var(--pass);stroke-width:1.5;stroke-dasharray:3 3}
.rule-label{font-size:11px;fill:var(--muted);paint-order:stroke;stroke:#fff;stroke-width:3px}
.dot{stroke:#fff;stroke-width:1}.dot.pass{fill:var(--pass)}.dot.fail{fill:var(--fail)}
.c0{stroke:#1f77b4}.c1{stroke:#ff7f0e}.c2{stroke:#2ca02c}.c3{stroke:#d62728}.c4{stroke:#9467bd}
.c5{stroke:#8c564b}.c6{stroke:#e377c2}.c7{stroke:#7f7f7f}.c8{stroke:#bcbd22}.c9{stroke:#17becf}
.series.run{stroke:var(--fg)}
.d1{stroke-dasharray:7 4}.d2{stroke-dasharray:2 3}.d3{stroke-dasharray:10 3 2 3}
ul.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px}
ul.legend li{display:flex;align-items:center;gap:5px}
ul.legend svg line{stroke-width:2.5}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
footer{margin-top:32px;color:var(--muted);font-size:12px}
@media print{body{padding:0;max-width:none;font-size:11px}.charts{grid-template-columns:1fr 1fr}h2{break-after:avoid}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_label_runs() {
        assert_eq!(run_letter(0), "A");
        assert_eq!(run_letter(25), "Z");
        assert_eq!(run_letter(26), "AA");
        assert_eq!(run_letter(27), "AB");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
