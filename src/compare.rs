//! `imaptest compare BASE.json NEW.json [tolerance=P%] [min_change=DURATION]`: two run
//! summaries side by side, per command (p50, p99, share of failures; throughput shown,
//! not judged) and per SLO metric, each change judged better or worse beyond the
//! tolerance. Any worse row, or an SLO that passed and now fails, is a regression
//! ([`crate::exit::REGRESSED`]), so CI can gate a server upgrade on it.
//!
//! Both runs are compared over their windows after the warm-up (as their SLOs were).
//! A latency change counts only past the relative tolerance, past an absolute floor
//! (`min_change`: two runs of one configuration on a shared host differ by a few
//! milliseconds), and past sampling noise: the percentile's 99 % confidence intervals
//! (from the order statistics of each run's histogram) must not overlap. A p50 is judged
//! from 30 samples a side, a p99 from 1,000: the tail of a few hundred commands on a
//! shared host is made of scheduling stalls that hit several commands at once (measured:
//! p99 of two simultaneous identical runs 25 ms and 37 ms from 120 samples each), so it
//! is shown, not judged.

use std::fmt::Write as _;

use crate::metrics::Interval;
use crate::ops::Op;
use crate::slo::{Unit, show_micros};
use crate::summary::timeline::{self, TimelineError};
use crate::summary::{RunSummary, SloVerdict};

/// Default relative tolerance.
pub const DEFAULT_TOLERANCE: f64 = 0.25;
/// Default floor under which a latency change is noise.
pub const DEFAULT_MIN_CHANGE_US: f64 = 10_000.0;
/// Samples each side needs before its p50 is judged.
pub const MIN_SAMPLES_P50: u64 = 30;
/// Samples each side needs before its p99 is judged.
pub const MIN_SAMPLES_P99: u64 = 1000;
/// z of the two-sided 99 % confidence interval of a percentile.
const Z_99: f64 = 2.576;
/// A change in the share of failed commands below this (one percentage point) is noise.
const FAILED_RATIO_FLOOR: f64 = 0.01;

/// How big a change must be to count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// A fraction of the base value (0.25: 25 %).
    pub relative: f64,
    /// Latency changes smaller than this (µs) never count.
    pub min_change_us: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            relative: DEFAULT_TOLERANCE,
            min_change_us: DEFAULT_MIN_CHANGE_US,
        }
    }
}

/// What a row's change means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Within the tolerance.
    Same,
    Better,
    Worse,
    /// The SLO passed in the base run and fails in the new one.
    NewlyBreached,
    /// The SLO failed in the base run and passes in the new one.
    NowMet,
    /// Too few samples on one side to judge.
    TooFewSamples,
    /// Present in only one run.
    OnlyInBase,
    OnlyInNew,
    /// Shown, not judged.
    Shown,
}

impl Judgement {
    pub fn name(self) -> &'static str {
        match self {
            Judgement::Same => "same",
            Judgement::Better => "better",
            Judgement::Worse => "WORSE",
            Judgement::NewlyBreached => "NEWLY BREACHED",
            Judgement::NowMet => "now met",
            Judgement::TooFewSamples => "too few samples",
            Judgement::OnlyInBase => "only in base",
            Judgement::OnlyInNew => "only in new",
            Judgement::Shown => "",
        }
    }

    pub fn is_regression(self) -> bool {
        matches!(self, Judgement::Worse | Judgement::NewlyBreached)
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `imap LOGIN`, `slo`, `run`.
    pub subject: String,
    /// `p99`, `failed share`, the SLO expression, `errors`.
    pub metric: String,
    pub unit: Unit,
    pub base: Option<f64>,
    pub new: Option<f64>,
    pub judgement: Judgement,
}

impl Row {
    /// The change in % of the base (None when either side is missing or the base is 0).
    pub fn change_percent(&self) -> Option<f64> {
        let (base, new) = (self.base?, self.new?);
        (base != 0.0).then(|| (new - base) / base.abs() * 100.0)
    }
}

/// The comparison of two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub tolerance: Tolerance,
    pub rows: Vec<Row>,
}

impl Comparison {
    /// True if any row regressed.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.judgement.is_regression())
    }

    /// The rows as a text table, then the result line.
    pub fn to_text(&self, base_name: &str, new_name: &str) -> String {
        let show = |unit: Unit, v: Option<f64>| match (unit, v) {
            (_, None) => "-".to_owned(),
            (Unit::Micros, Some(v)) => crate::report::html::chart::format_latency(v),
            (unit, Some(v)) => unit.show(v),
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Comparing {base_name} (base) with {new_name} (new): tolerance {}%, latency changes under {} ignored\n",
            trim(self.tolerance.relative * 100.0),
            show_micros(self.tolerance.min_change_us)
        );
        let _ = writeln!(
            out,
            "{:<22} {:<28} {:>10} {:>10} {:>9}  verdict",
            "subject", "metric", "base", "new", "change"
        );
        for row in &self.rows {
            let change = row
                .change_percent()
                .map_or("-".to_owned(), |c| format!("{c:+.0}%"));
            let _ = writeln!(
                out,
                "{:<22} {:<28} {:>10} {:>10} {:>9}  {}",
                row.subject,
                row.metric,
                show(row.unit, row.base),
                show(row.unit, row.new),
                change,
                row.judgement.name()
            );
        }
        let regressions: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.judgement.is_regression())
            .map(|r| format!("{} {}", r.subject, r.metric))
            .collect();
        if regressions.is_empty() {
            out.push_str("\nNo regression beyond the tolerance.\n");
        } else {
            let _ = writeln!(
                out,
                "\nRegressed: {} (exit status {})",
                regressions.join(", "),
                crate::exit::REGRESSED
            );
        }
        out
    }
}

fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A run's window after its warm-up, and how many seconds it covers.
fn window(summary: &RunSummary) -> Result<(Interval, f64), TimelineError> {
    let interval = timeline::aggregate(&summary.timeline.seconds, summary.warmup_secs)?;
    let secs = summary
        .timeline
        .seconds
        .iter()
        .filter(|s| s.elapsed > summary.warmup_secs)
        .count()
        .max(1) as f64;
    Ok((interval, secs))
}

/// The 99 % confidence interval of the `q` quantile of `latency` (µs): the values at
/// the ranks q·n ± z·√(n·q·(1−q)) of its samples.
fn interval(latency: &crate::metrics::Latency, q: f64) -> (f64, f64) {
    let n = latency.count.max(1) as f64;
    let half = Z_99 * (q * (1.0 - q) / n).sqrt();
    (
        latency.at((q - half).max(0.0)) as f64,
        latency.at((q + half).min(1.0)) as f64,
    )
}

/// Judges a change where higher is worse, past both the tolerance and `floor`.
fn judge_higher_worse(base: f64, new: f64, tolerance: &Tolerance, floor: f64) -> Judgement {
    let allowed = (tolerance.relative * base.abs()).max(floor);
    let delta = new - base;
    if delta > allowed {
        Judgement::Worse
    } else if -delta > allowed {
        Judgement::Better
    } else {
        Judgement::Same
    }
}

/// Compares `new` against `base`.
pub fn compare(
    base: &RunSummary,
    new: &RunSummary,
    tolerance: Tolerance,
) -> Result<Comparison, TimelineError> {
    let (b, b_secs) = window(base)?;
    let (n, n_secs) = window(new)?;
    let mut rows = Vec::new();
    let mut ops: Vec<Op> = b.active_ops().map(|(op, _)| op).collect();
    for (op, _) in n.active_ops() {
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    ops.sort();
    for op in ops {
        let subject = format!("{} {}", op.protocol().name(), op.name());
        let (bf, nf) = (b.op(op), n.op(op));
        let present = |f: &crate::metrics::OpFigures| f.is_active();
        match (present(bf), present(nf)) {
            (true, false) | (false, true) => {
                rows.push(Row {
                    subject,
                    metric: "count".into(),
                    unit: Unit::Count,
                    base: Some(bf.count as f64),
                    new: Some(nf.count as f64),
                    judgement: if present(bf) {
                        Judgement::OnlyInBase
                    } else {
                        Judgement::OnlyInNew
                    },
                });
                continue;
            }
            _ => {}
        }
        rows.push(Row {
            subject: subject.clone(),
            metric: "OK/s".into(),
            unit: Unit::PerSecond,
            base: Some(bf.ok as f64 / b_secs),
            new: Some(nf.ok as f64 / n_secs),
            judgement: Judgement::Shown,
        });
        for (name, q, needed) in [
            ("p50", 0.5, MIN_SAMPLES_P50),
            ("p99", 0.99, MIN_SAMPLES_P99),
        ] {
            let (bl, nl) = (&bf.latency, &nf.latency);
            if bl.count == 0 && nl.count == 0 {
                continue;
            }
            let (bv, nv) = (bl.at(q) as f64, nl.at(q) as f64);
            let judgement = if bl.count < needed || nl.count < needed {
                Judgement::TooFewSamples
            } else {
                match judge_higher_worse(bv, nv, &tolerance, tolerance.min_change_us) {
                    // Overlapping confidence intervals: the change may be sampling noise.
                    Judgement::Worse if interval(nl, q).0 <= interval(bl, q).1 => Judgement::Same,
                    Judgement::Better if interval(bl, q).0 <= interval(nl, q).1 => Judgement::Same,
                    judgement => judgement,
                }
            };
            rows.push(Row {
                subject: subject.clone(),
                metric: name.into(),
                unit: Unit::Micros,
                base: (bl.count > 0).then_some(bv),
                new: (nl.count > 0).then_some(nv),
                judgement,
            });
        }
        let failed_share = |f: &crate::metrics::OpFigures| {
            let all = f.ok + f.no + f.bad + f.failed;
            (all > 0).then(|| (all - f.ok) as f64 / all as f64)
        };
        if let (Some(bv), Some(nv)) = (failed_share(bf), failed_share(nf))
            && (bv > 0.0 || nv > 0.0)
        {
            rows.push(Row {
                subject,
                metric: "not OK share".into(),
                unit: Unit::Ratio,
                base: Some(bv),
                new: Some(nv),
                judgement: judge_higher_worse(bv, nv, &tolerance, FAILED_RATIO_FLOOR),
            });
        }
    }
    rows.push(Row {
        subject: "run".into(),
        metric: "errors".into(),
        unit: Unit::Count,
        base: Some(b.errors as f64),
        new: Some(n.errors as f64),
        judgement: judge_higher_worse(b.errors as f64, n.errors as f64, &tolerance, 0.0),
    });
    for bv in &base.slo {
        let nv = new.slo.iter().find(|v| v.expression == bv.expression);
        rows.push(slo_row(bv, nv, &tolerance));
    }
    for nv in &new.slo {
        if !base.slo.iter().any(|v| v.expression == nv.expression) {
            rows.push(Row {
                subject: "slo".into(),
                metric: nv.expression.clone(),
                unit: Unit::from_name(&nv.unit).unwrap_or(Unit::Count),
                base: None,
                new: nv.observed,
                judgement: Judgement::OnlyInNew,
            });
        }
    }
    Ok(Comparison { tolerance, rows })
}

fn slo_row(base: &SloVerdict, new: Option<&SloVerdict>, tolerance: &Tolerance) -> Row {
    let unit = Unit::from_name(&base.unit).unwrap_or(Unit::Count);
    let Some(new) = new else {
        return Row {
            subject: "slo".into(),
            metric: base.expression.clone(),
            unit,
            base: base.observed,
            new: None,
            judgement: Judgement::OnlyInBase,
        };
    };
    let judgement = match (base.pass, new.pass) {
        (true, false) => Judgement::NewlyBreached,
        (false, true) => Judgement::NowMet,
        _ => match (base.observed, new.observed) {
            (Some(b), Some(n)) => {
                let floor = if unit == Unit::Micros {
                    tolerance.min_change_us
                } else {
                    0.0
                };
                match base.comparison.as_str() {
                    "<" | "<=" => judge_higher_worse(b, n, tolerance, floor),
                    ">" | ">=" => judge_higher_worse(-b, -n, tolerance, floor),
                    _ => Judgement::Same,
                }
            }
            _ => Judgement::Same,
        },
    };
    Row {
        subject: "slo".into(),
        metric: base.expression.clone(),
        unit,
        base: base.observed,
        new: new.observed,
        judgement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(values: impl IntoIterator<Item = u64>) -> crate::metrics::Latency {
        let mut l = crate::metrics::Latency::default();
        for v in values {
            l.record(std::time::Duration::from_micros(v));
        }
        l
    }

    #[test]
    fn percentile_intervals_widen_with_fewer_samples() {
        // 1000 samples 1..=1000 ms: p99's interval spans a few ranks around 990.
        let many = latency((1..=1000).map(|i| i * 1000));
        let (lo, hi) = interval(&many, 0.99);
        assert!((970_000.0..990_000.0).contains(&lo), "{lo}");
        assert!(hi > 990_000.0 && hi <= 1_000_500.0, "{hi}");
        // 100 samples: the interval reaches the maximum.
        let few = latency((1..=100).map(|i| i * 10_000));
        assert_eq!(interval(&few, 0.99).1, few.max() as f64);
        let (lo, hi) = interval(&many, 0.5);
        assert!(lo > 450_000.0 && hi < 550_000.0, "{lo} {hi}");
    }

    #[test]
    fn changes_count_past_both_the_tolerance_and_the_floor() {
        let t = Tolerance::default();
        // +60 % but only 3 ms: noise.
        assert_eq!(
            judge_higher_worse(5_000.0, 8_000.0, &t, t.min_change_us),
            Judgement::Same
        );
        // 50 ms more: worse.
        assert_eq!(
            judge_higher_worse(2_000.0, 52_000.0, &t, t.min_change_us),
            Judgement::Worse
        );
        // +20 % of a large value: within the tolerance.
        assert_eq!(
            judge_higher_worse(100_000.0, 120_000.0, &t, t.min_change_us),
            Judgement::Same
        );
        assert_eq!(
            judge_higher_worse(100_000.0, 50_000.0, &t, t.min_change_us),
            Judgement::Better
        );
        // Errors from none to some: worse.
        assert_eq!(judge_higher_worse(0.0, 1.0, &t, 0.0), Judgement::Worse);
        assert_eq!(judge_higher_worse(0.0, 0.0, &t, 0.0), Judgement::Same);
    }

    fn verdict(expression: &str, comparison: &str, observed: f64, pass: bool) -> SloVerdict {
        SloVerdict {
            expression: expression.into(),
            metric: "m".into(),
            comparison: comparison.into(),
            threshold: 0.0,
            observed: Some(observed),
            unit: "ratio".into(),
            pass,
        }
    }

    #[test]
    fn slo_rows_follow_the_objective_direction() {
        let t = Tolerance::default();
        let breach = slo_row(
            &verdict("x", ">=", 1.0, true),
            Some(&verdict("x", ">=", 0.5, false)),
            &t,
        );
        assert_eq!(breach.judgement, Judgement::NewlyBreached);
        // A ratio that must stay high and fell by half (still passing): worse.
        let fell = slo_row(
            &verdict("x", ">=", 0.8, true),
            Some(&verdict("x", ">=", 0.4, true)),
            &t,
        );
        assert_eq!(fell.judgement, Judgement::Worse);
        let rose = slo_row(
            &verdict("x", ">=", 0.4, true),
            Some(&verdict("x", ">=", 0.8, true)),
            &t,
        );
        assert_eq!(rose.judgement, Judgement::Better);
        assert_eq!(
            slo_row(&verdict("x", "<", 1.0, true), None, &t).judgement,
            Judgement::OnlyInBase
        );
    }
}
