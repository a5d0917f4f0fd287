//! Service-level objectives: `slo=` expressions and `[[slo]]` profile entries such as
//! `imap.LOGIN.p99 < 500ms`, `lmtp.delivered_ratio >= 0.999`, `errors == 0`, checked
//! against a run's totals (after the warm-up) to give a verdict per objective.
//!
//! Metrics:
//! * `PROTO.NAME.STAT` for any op ([`crate::ops`]: `imap.LOGIN`, `pop3.RETR`,
//!   `lmtp.DATA`, `imap.CONNECT`, `action.read`, …); STAT is a latency (`p50`, `p90`,
//!   `p95`, `p99`, `p99.9`, `max`, `mean`: a duration), a count (`count`, `ok`, `no`,
//!   `bad`, `failed`), `failed_ratio` (not OK / all) or `rate` (OK per second).
//! * `lmtp.delivered_ratio` (delivered / offered recipients), `lmtp.offered`,
//!   `lmtp.delivered`, `lmtp.refused`, `lmtp.failed` (recipients).
//! * `delivery.latency.STAT`: end-to-end delivery latency (LMTP → seen by a client).
//! * `schedule.lateness.STAT`: how late the scheduler handed actions over.
//! * `errors`, `errors.KIND` (`errors.uid-changed`), `warnings`.
//! * `connections.failed`, `connections.peak`.
//!
//! Values: durations with a unit for latencies (`500ms`, `2s`, `250us`), plain numbers
//! or percentages (`99.9%`) for ratios, whole numbers for counts.

use std::fmt;

use crate::metrics::{ErrorKind, Interval, Latency};
use crate::ops::{Op, Protocol};
use crate::summary::SloVerdict;
use crate::summary::timeline::{Second, TimelineError};

/// A comparison of an SLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

impl Comparison {
    /// Longest tokens first, so `<=` is not read as `<`.
    const TOKENS: [(&'static str, Comparison); 6] = [
        ("<=", Comparison::LessOrEqual),
        (">=", Comparison::GreaterOrEqual),
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
        ("<", Comparison::Less),
        (">", Comparison::Greater),
    ];

    pub fn symbol(self) -> &'static str {
        Self::TOKENS
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(t, _)| t)
    }

    fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Comparison::Less => observed < threshold,
            Comparison::LessOrEqual => observed <= threshold,
            Comparison::Greater => observed > threshold,
            Comparison::GreaterOrEqual => observed >= threshold,
            Comparison::Equal => observed == threshold,
            Comparison::NotEqual => observed != threshold,
        }
    }
}

/// A statistic of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyStat {
    Quantile(f64),
    Max,
    Mean,
}

/// A statistic of an op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OpStat {
    Latency(LatencyStat),
    Count,
    Ok,
    No,
    Bad,
    Failed,
    FailedRatio,
    Rate,
}

/// What an SLO measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Op(Op, OpStat),
    DeliveredRatio,
    Deliveries(DeliveryCount),
    DeliveryLatency(LatencyStat),
    ScheduleLateness(LatencyStat),
    Errors(Option<ErrorKind>),
    Warnings,
    ConnectionsFailed,
    ConnectionsPeak,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryCount {
    Offered,
    Delivered,
    Refused,
    Failed,
}

/// The unit of a metric's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds.
    Micros,
    Ratio,
    Count,
    PerSecond,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Micros => "us",
            Unit::Ratio => "ratio",
            Unit::Count => "count",
            Unit::PerSecond => "per_second",
        }
    }

    /// The unit [`Unit::name`] names (as summaries record it).
    pub fn from_name(name: &str) -> Option<Unit> {
        [Unit::Micros, Unit::Ratio, Unit::Count, Unit::PerSecond]
            .into_iter()
            .find(|u| u.name() == name)
    }

    /// A value in this unit for people (`812ms`, `99.93%`, `12`).
    pub fn show(self, value: f64) -> String {
        match self {
            Unit::Micros => show_micros(value),
            Unit::Ratio => format!("{}%", trim(value * 100.0, 3)),
            Unit::Count => format!("{value:.0}"),
            Unit::PerSecond => format!("{}/s", trim(value, 1)),
        }
    }
}

fn trim(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// `812ms`, `1.25s`, `340us`.
pub fn show_micros(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{}s", trim(us / 1e6, 3))
    } else if us >= 1000.0 {
        format!("{}ms", trim(us / 1e3, 3))
    } else {
        format!("{}us", trim(us, 1))
    }
}

impl Metric {
    pub fn unit(self) -> Unit {
        match self {
            Metric::Op(_, OpStat::Latency(_))
            | Metric::DeliveryLatency(_)
            | Metric::ScheduleLateness(_) => Unit::Micros,
            Metric::Op(_, OpStat::FailedRatio) | Metric::DeliveredRatio => Unit::Ratio,
            Metric::Op(_, OpStat::Rate) => Unit::PerSecond,
            _ => Unit::Count,
        }
    }
}

/// One objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The expression as given.
    pub text: String,
    /// The metric as written (`imap.LOGIN.p99`).
    pub metric_name: String,
    pub metric: Metric,
    pub comparison: Comparison,
    /// In the metric's unit.
    pub threshold: f64,
}

/// Why an SLO expression is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SloError {
    #[error(
        "SLO {text:?}: expected METRIC OP VALUE with OP one of < <= > >= == != (e.g. \"imap.LOGIN.p99 < 500ms\")"
    )]
    Shape { text: String },
    #[error("SLO {text:?}: unknown metric {metric:?}; valid metrics: {valid}")]
    UnknownMetric {
        text: String,
        metric: String,
        valid: String,
    },
    #[error("SLO {text:?}: {problem}")]
    Value { text: String, problem: String },
}

/// The metric forms, for error messages.
pub const METRIC_FORMS: &str = "PROTO.NAME.{p50,p90,p95,p99,p99.9,max,mean,count,ok,no,bad,failed,failed_ratio,rate} \
     (PROTO imap, pop3, lmtp or action; NAME an op such as LOGIN, RETR, DATA, CONNECT, TLS, GREETING, read), \
     lmtp.{delivered_ratio,offered,delivered,refused,failed}, delivery.latency.STAT, schedule.lateness.STAT, \
     errors, errors.KIND, warnings, connections.{failed,peak}";

impl Slo {
    /// Parses one expression.
    pub fn parse(text: &str) -> Result<Slo, SloError> {
        let text = text.trim();
        let shape = || SloError::Shape {
            text: text.to_owned(),
        };
        let (at, token, comparison) = Comparison::TOKENS
            .iter()
            .filter_map(|(t, c)| text.find(t).map(|i| (i, *t, *c)))
            .min_by_key(|(i, t, _)| (*i, std::cmp::Reverse(t.len())))
            .ok_or_else(shape)?;
        let metric_name = text[..at].trim();
        let value = text[at + token.len()..].trim();
        if metric_name.is_empty() || value.is_empty() {
            return Err(shape());
        }
        let metric = parse_metric(metric_name).ok_or_else(|| SloError::UnknownMetric {
            text: text.to_owned(),
            metric: metric_name.to_owned(),
            valid: METRIC_FORMS.to_owned(),
        })?;
        let threshold = parse_value(metric.unit(), value).map_err(|problem| SloError::Value {
            text: text.to_owned(),
            problem,
        })?;
        Ok(Slo {
            text: text.to_owned(),
            metric_name: metric_name.to_owned(),
            metric,
            comparison,
            threshold,
        })
    }

    /// Parses `;`-separated expressions (empty parts are ignored).
    pub fn parse_list(text: &str) -> Result<Vec<Slo>, SloError> {
        text.split(';')
            .filter(|part| !part.trim().is_empty())
            .map(Slo::parse)
            .collect()
    }

    /// The metric's value over `window` (the run after its warm-up), which lasted
    /// `secs` seconds; `None` when there is nothing to measure (a latency of an op that
    /// never ran, a ratio of nothing).
    pub fn observe(&self, window: &Interval, secs: f64) -> Option<f64> {
        observe(self.metric, window, secs)
    }

    /// The verdict over `window`. No data fails: an objective about something that
    /// never happened is not met.
    pub fn verdict(&self, window: &Interval, secs: f64) -> SloVerdict {
        let observed = self.observe(window, secs);
        SloVerdict {
            expression: self.text.clone(),
            metric: self.metric_name.clone(),
            comparison: self.comparison.symbol().to_owned(),
            threshold: self.threshold,
            observed,
            unit: self.metric.unit().name().to_owned(),
            pass: observed.is_some_and(|v| self.comparison.holds(v, self.threshold)),
        }
    }
}

/// The verdict of each objective over the `seconds` of a timeline after the first
/// `warmup_secs`: the window a run's own verdicts and a merge of shards use alike.
pub fn verdicts(
    slos: &[Slo],
    seconds: &[Second],
    warmup_secs: u64,
) -> Result<Vec<SloVerdict>, TimelineError> {
    if slos.is_empty() {
        return Ok(Vec::new());
    }
    let window = crate::summary::timeline::aggregate(seconds, warmup_secs)?;
    let last = seconds.last().map_or(0, |s| s.elapsed);
    let secs = last.saturating_sub(warmup_secs) as f64;
    Ok(slos.iter().map(|slo| slo.verdict(&window, secs)).collect())
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn latency_stat(name: &str) -> Option<LatencyStat> {
    let name = name.to_ascii_lowercase();
    Some(match name.as_str() {
        "max" => LatencyStat::Max,
        "mean" | "avg" => LatencyStat::Mean,
        "p999" => LatencyStat::Quantile(0.999),
        _ => {
            let digits = name.strip_prefix('p')?;
            let q: f64 = digits.parse().ok()?;
            if !(0.0..=100.0).contains(&q) || digits.starts_with('.') {
                return None;
            }
            // Rounded so `p99.9` is exactly 0.999, not 0.9990000000000001.
            LatencyStat::Quantile((q * 1e6).round() / 1e8)
        }
    })
}

fn parse_metric(name: &str) -> Option<Metric> {
    let parts: Vec<&str> = name.split('.').collect();
    // `p99.9` spans two parts.
    let tail = |from: usize| parts.get(from..).map(|rest| rest.join("."));
    match parts.as_slice() {
        ["errors"] => return Some(Metric::Errors(None)),
        ["errors", kind] => return ErrorKind::from_name(kind).map(|k| Metric::Errors(Some(k))),
        ["warnings"] => return Some(Metric::Warnings),
        ["connections", "failed"] => return Some(Metric::ConnectionsFailed),
        ["connections", "peak"] => return Some(Metric::ConnectionsPeak),
        ["lmtp", "delivered_ratio"] => return Some(Metric::DeliveredRatio),
        ["lmtp", "offered"] => return Some(Metric::Deliveries(DeliveryCount::Offered)),
        ["lmtp", "delivered"] => return Some(Metric::Deliveries(DeliveryCount::Delivered)),
        ["lmtp", "refused"] => return Some(Metric::Deliveries(DeliveryCount::Refused)),
        ["lmtp", "failed"] => return Some(Metric::Deliveries(DeliveryCount::Failed)),
        ["delivery", "latency", ..] => {
            return latency_stat(&tail(2)?).map(Metric::DeliveryLatency);
        }
        ["schedule", "lateness", ..] => {
            return latency_stat(&tail(2)?).map(Metric::ScheduleLateness);
        }
        _ => {}
    }
    let [protocol, op, ..] = parts.as_slice() else {
        return None;
    };
    let op = Op::find(Protocol::from_name(protocol)?, op)?;
    let stat = tail(2)?;
    let stat = match stat.to_ascii_lowercase().as_str() {
        "count" => OpStat::Count,
        "ok" => OpStat::Ok,
        "no" => OpStat::No,
        "bad" => OpStat::Bad,
        "failed" => OpStat::Failed,
        "failed_ratio" => OpStat::FailedRatio,
        "rate" => OpStat::Rate,
        other => OpStat::Latency(latency_stat(other)?),
    };
    Some(Metric::Op(op, stat))
}

fn parse_value(unit: Unit, value: &str) -> Result<f64, String> {
    let number = |text: &str| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{value:?} is not a number"))
    };
    match unit {
        Unit::Micros => {
            if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(format!(
                    "a latency threshold needs a unit, e.g. \"{value}ms\" or \"{value}us\""
                ));
            }
            crate::duration::parse_duration(value).map(|d| d.as_secs_f64() * 1e6)
        }
        Unit::Ratio => match value.strip_suffix('%') {
            Some(percent) => number(percent).map(|p| (p * 1e6).round() / 1e8),
            None => number(value),
        },
        Unit::Count | Unit::PerSecond => number(value),
    }
}

fn latency_value(latency: &Latency, stat: LatencyStat) -> Option<f64> {
    if latency.count == 0 {
        return None;
    }
    Some(match stat {
        LatencyStat::Quantile(q) => latency.at(q) as f64,
        LatencyStat::Max => latency.max() as f64,
        LatencyStat::Mean => latency.sum_us as f64 / latency.count as f64,
    })
}

fn observe(metric: Metric, w: &Interval, secs: f64) -> Option<f64> {
    let d = &w.deliveries;
    Some(match metric {
        Metric::Op(op, stat) => {
            let f = w.op(op);
            match stat {
                OpStat::Latency(stat) => return latency_value(&f.latency, stat),
                OpStat::Count => f.count as f64,
                OpStat::Ok => f.ok as f64,
                OpStat::No => f.no as f64,
                OpStat::Bad => f.bad as f64,
                OpStat::Failed => f.failed as f64,
                OpStat::FailedRatio => {
                    let all = f.ok + f.no + f.bad + f.failed;
                    if all == 0 {
                        return None;
                    }
                    (all - f.ok) as f64 / all as f64
                }
                OpStat::Rate => {
                    if secs <= 0.0 {
                        return None;
                    }
                    f.ok as f64 / secs
                }
            }
        }
        Metric::DeliveredRatio => {
            if d.offered_recipients == 0 {
                return None;
            }
            d.delivered as f64 / d.offered_recipients as f64
        }
        Metric::Deliveries(which) => match which {
            DeliveryCount::Offered => d.offered_recipients as f64,
            DeliveryCount::Delivered => d.delivered as f64,
            DeliveryCount::Refused => d.refused as f64,
            DeliveryCount::Failed => d.failed as f64,
        },
        Metric::DeliveryLatency(stat) => return latency_value(&d.seen, stat),
        Metric::ScheduleLateness(stat) => return latency_value(&d.lateness, stat),
        Metric::Errors(None) => w.errors as f64,
        Metric::Errors(Some(kind)) => w.errors_of(kind) as f64,
        Metric::Warnings => w.warnings as f64,
        Metric::ConnectionsFailed => w.connect_failures as f64,
        Metric::ConnectionsPeak => w.open_peak as f64,
    })
}

/// The verdict table printed after Totals.
pub fn verdict_table(verdicts: &[SloVerdict]) -> String {
    use std::fmt::Write as _;
    let unit = |v: &SloVerdict| match v.unit.as_str() {
        "us" => Unit::Micros,
        "ratio" => Unit::Ratio,
        "per_second" => Unit::PerSecond,
        _ => Unit::Count,
    };
    let rows: Vec<[String; 4]> = verdicts
        .iter()
        .map(|v| {
            let u = unit(v);
            [
                v.metric.clone(),
                format!("{} {}", v.comparison, u.show(v.threshold)),
                v.observed
                    .map_or_else(|| "no data".to_owned(), |o| u.show(o)),
                if v.pass { "pass" } else { "FAIL" }.to_owned(),
            ]
        })
        .collect();
    let header = ["metric", "threshold", "observed", "verdict"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::from("\nSLO verdicts:\n");
    let mut line = |cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:>w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    let failed = verdicts.iter().filter(|v| !v.pass).count();
    let _ = writeln!(
        out,
        "{} of {} objectives met{}",
        verdicts.len() - failed,
        verdicts.len(),
        if failed > 0 { " - SLO BREACHED" } else { "" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{DeliveryEvent, Event, Outcome};
    use crate::ops::Pop3Command;
    use crate::states::State;
    use std::time::{Duration, Instant};

    #[test]
    fn expressions_parse_with_units() {
        let slo = Slo::parse("imap.LOGIN.p99 < 500ms").unwrap();
        assert_eq!(
            slo.metric,
            Metric::Op(
                Op::Imap(State::Login),
                OpStat::Latency(LatencyStat::Quantile(0.99))
            )
        );
        assert_eq!(slo.comparison, Comparison::Less);
        assert_eq!(slo.threshold, 500_000.0);
        let slo = Slo::parse("pop3.RETR.p99.9<=2s").unwrap();
        assert_eq!(
            slo.metric,
            Metric::Op(
                Op::Pop3(Pop3Command::Retr),
                OpStat::Latency(LatencyStat::Quantile(0.999))
            )
        );
        assert_eq!(slo.comparison, Comparison::LessOrEqual);
        assert_eq!(
            Slo::parse("lmtp.delivered_ratio >= 99.9%")
                .unwrap()
                .threshold,
            0.999
        );
        assert_eq!(
            Slo::parse("errors == 0").unwrap().metric,
            Metric::Errors(None)
        );
        assert_eq!(
            Slo::parse("errors.uid-changed == 0").unwrap().metric,
            Metric::Errors(Some(ErrorKind::UidChanged))
        );
        assert_eq!(
            Slo::parse_list("errors == 0; ;warnings < 5").unwrap().len(),
            2
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let e = Slo::parse("imap.LOGIM.p99 < 5ms").unwrap_err().to_string();
        assert!(e.contains("unknown metric \"imap.LOGIM.p99\""), "{e}");
        assert!(e.contains("lmtp.{delivered_ratio"), "{e}");
        let e = Slo::parse("imap.LOGIN.p99 < 500").unwrap_err().to_string();
        assert!(e.contains("needs a unit"), "{e}");
        let e = Slo::parse("imap.LOGIN.p99 500ms").unwrap_err().to_string();
        assert!(e.contains("expected METRIC OP VALUE"), "{e}");
        assert!(Slo::parse("errors == lots").is_err());
    }

    #[test]
    fn verdicts_over_a_window() {
        let mut w = Interval::new();
        let now = Instant::now();
        for ms in 1..=100u64 {
            w.record(&Event::Command {
                op: Op::Imap(State::Login),
                outcome: Outcome::Ok,
                intended: now,
                started: now,
                finished: now + Duration::from_millis(ms),
            });
        }
        w.record(&Event::Delivery(DeliveryEvent::Offered { recipients: 4 }));
        w.record(&Event::Delivery(DeliveryEvent::Finished {
            delivered: 3,
            refused: 1,
            failed: 0,
            waited: Duration::ZERO,
        }));
        let v = Slo::parse("imap.LOGIN.p99 < 50ms")
            .unwrap()
            .verdict(&w, 10.0);
        assert!(!v.pass);
        assert_eq!(v.observed, Some(99_007.0)); // 3 significant digits
        assert!(
            Slo::parse("imap.LOGIN.p50 < 51ms")
                .unwrap()
                .verdict(&w, 10.0)
                .pass
        );
        assert!(
            Slo::parse("imap.LOGIN.rate == 10")
                .unwrap()
                .verdict(&w, 10.0)
                .pass
        );
        let ratio = Slo::parse("lmtp.delivered_ratio >= 0.75")
            .unwrap()
            .verdict(&w, 10.0);
        assert!(ratio.pass, "{ratio:?}");
        let none = Slo::parse("pop3.RETR.p95 < 2s").unwrap().verdict(&w, 10.0);
        assert_eq!(none.observed, None);
        assert!(!none.pass);
        let table = verdict_table(&[v, ratio, none]);
        assert!(table.contains("< 50ms     99.007ms  FAIL"), "{table}");
        assert!(table.contains("no data"), "{table}");
        assert!(
            table.contains("1 of 3 objectives met - SLO BREACHED"),
            "{table}"
        );
    }
}
