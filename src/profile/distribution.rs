//! Intervals: a constant or a statistical distribution, sampled in seconds.
//!
//! In a profile an interval is either a duration string (`"10s"`, a constant) or a table:
//!
//! ```toml
//! inbox_delivery = { per_day = 55 }                         # Poisson arrivals
//! action_delay   = { dist = "exponential", mean = "2min" }
//! session_length = { dist = "lognormal", mean = "20min", std_dev = "15min" }
//! poll_interval  = { dist = "uniform", min = "4min", max = "6min" }
//! think_time     = { dist = "empirical", csv = "observed.csv", column = "secs" }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngExt as _;
use rand_distr::Distribution as _;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use crate::duration::{DURATION_PATTERN, Dur, format_duration, parse_duration};

/// The kinds of distribution a table can name with `dist = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Constant,
    Exponential,
    Uniform,
    Normal,
    #[serde(alias = "log-normal", alias = "log_normal")]
    LogNormal,
    Weibull,
    Pareto,
    Gamma,
    Empirical,
    /// ImapTest's `weighted_rand`: `mean ± (mean/2)·sqrt(−ln(0.99999·U))`.
    ImapTest,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Constant => "constant",
            Kind::Exponential => "exponential",
            Kind::Uniform => "uniform",
            Kind::Normal => "normal",
            Kind::LogNormal => "lognormal",
            Kind::Weibull => "weibull",
            Kind::Pareto => "pareto",
            Kind::Gamma => "gamma",
            Kind::Empirical => "empirical",
            Kind::ImapTest => "imaptest",
        }
    }
}

/// Observed values of an empirical distribution, in seconds, sorted ascending.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed(pub Arc<Vec<f64>>);

/// An interval: a constant or a distribution. All values are in (simulated) seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    Constant(Dur),
    Exponential {
        mean: Dur,
    },
    /// `per_day = n` (or `per_hour`): Poisson arrivals, exponential gaps of 86400/n s.
    PerDay(f64),
    Uniform {
        min: Dur,
        max: Dur,
    },
    /// Negative draws become 0.
    Normal {
        mean: Dur,
        std_dev: Dur,
    },
    LogNormal {
        mean: Dur,
        std_dev: Dur,
    },
    Weibull {
        shape: f64,
        scale: Dur,
    },
    Pareto {
        shape: f64,
        scale: Dur,
    },
    Gamma {
        shape: f64,
        scale: Dur,
    },
    /// Observed values from a CSV file; sampled by linear interpolation of the
    /// empirical quantile function. `values` is filled when the profile is resolved.
    Empirical {
        csv: PathBuf,
        column: Option<String>,
        values: Observed,
    },
    /// ImapTest's Rayleigh-shaped spread around the mean (never exactly the mean).
    ImapTest {
        mean: Dur,
    },
}

/// The table form, as written in a profile.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DistributionTable")]
pub(crate) struct DistTable {
    /// Distribution kind; defaults to `exponential` with `per_day`/`per_hour`.
    pub(crate) dist: Option<Kind>,
    /// constant: the value.
    pub(crate) value: Option<Dur>,
    /// exponential, normal, lognormal, imaptest: the mean.
    pub(crate) mean: Option<Dur>,
    /// normal, lognormal: the standard deviation.
    pub(crate) std_dev: Option<Dur>,
    /// uniform: lower bound.
    pub(crate) min: Option<Dur>,
    /// uniform: upper bound.
    pub(crate) max: Option<Dur>,
    /// weibull, pareto, gamma: the shape parameter (pareto: > 1).
    pub(crate) shape: Option<f64>,
    /// weibull, gamma: the scale; pareto: the minimum value.
    pub(crate) scale: Option<Dur>,
    /// empirical: CSV file of observed values (seconds, or duration strings), relative
    /// to the profile's directory.
    pub(crate) csv: Option<PathBuf>,
    /// empirical: the column (header name); default the first column.
    pub(crate) column: Option<String>,
    /// Poisson arrivals with this many events per user per (simulated) day.
    pub(crate) per_day: Option<f64>,
    /// Poisson arrivals with this many events per user per (simulated) hour.
    pub(crate) per_hour: Option<f64>,
}

impl DistTable {
    pub(crate) fn into_distribution(self) -> Result<Distribution, String> {
        let DistTable {
            dist,
            value,
            mean,
            std_dev,
            min,
            max,
            shape,
            scale,
            csv,
            column,
            per_day,
            per_hour,
        } = self;
        let rate = match (per_day, per_hour) {
            (Some(_), Some(_)) => {
                return Err("give either `per_day` or `per_hour`, not both".into());
            }
            (Some(d), None) => Some(d),
            (None, Some(h)) => Some(h * 24.0),
            (None, None) => None,
        };
        let kind = match (dist, rate) {
            (Some(k), _) => k,
            (None, Some(_)) => Kind::Exponential,
            (None, None) => {
                return Err("an interval table needs `dist = \"...\"` (exponential, uniform, normal, lognormal, weibull, pareto, gamma, empirical, imaptest, constant) or `per_day`/`per_hour`".into());
            }
        };
        // Which keys each kind accepts.
        let given: [(&str, bool); 10] = [
            ("value", value.is_some()),
            ("mean", mean.is_some()),
            ("std_dev", std_dev.is_some()),
            ("min", min.is_some()),
            ("max", max.is_some()),
            ("shape", shape.is_some()),
            ("scale", scale.is_some()),
            ("csv", csv.is_some()),
            ("column", column.is_some()),
            ("per_day/per_hour", rate.is_some()),
        ];
        let allowed: &[&str] = match kind {
            Kind::Constant => &["value"],
            Kind::Exponential => &["mean", "per_day/per_hour"],
            Kind::Uniform => &["min", "max"],
            Kind::Normal | Kind::LogNormal => &["mean", "std_dev"],
            Kind::Weibull | Kind::Pareto | Kind::Gamma => &["shape", "scale"],
            Kind::Empirical => &["csv", "column"],
            Kind::ImapTest => &["mean"],
        };
        for (key, present) in given {
            if present && !allowed.contains(&key) {
                return Err(format!(
                    "`{key}` does not apply to dist = \"{}\" (it takes: {})",
                    kind.name(),
                    allowed.join(", ")
                ));
            }
        }
        let need = |v: Option<Dur>, key: &str| {
            v.ok_or_else(|| format!("dist = \"{}\" needs `{key}`", kind.name()))
        };
        let need_f = |v: Option<f64>, key: &str| {
            v.ok_or_else(|| format!("dist = \"{}\" needs `{key}`", kind.name()))
        };
        let positive = |d: Dur, key: &str| {
            if d.0.is_zero() {
                Err(format!("`{key}` must be greater than 0"))
            } else {
                Ok(d)
            }
        };
        let shape_ok = |s: f64| {
            if s.is_finite() && s > 0.0 {
                Ok(s)
            } else {
                Err(format!("`shape` must be a positive number, not {s}"))
            }
        };
        Ok(match kind {
            Kind::Constant => Distribution::Constant(need(value, "value")?),
            Kind::Exponential => match (mean, rate) {
                (Some(_), Some(_)) => {
                    return Err("give either `mean` or `per_day`/`per_hour`, not both".into());
                }
                (Some(m), None) => Distribution::Exponential {
                    mean: positive(m, "mean")?,
                },
                (None, Some(r)) => {
                    if !(r.is_finite() && r > 0.0) {
                        return Err(format!("events per day must be a positive number, not {r}"));
                    }
                    Distribution::PerDay(r)
                }
                (None, None) => {
                    return Err("dist = \"exponential\" needs `mean` or `per_day`".into());
                }
            },
            Kind::Uniform => {
                let (min, max) = (need(min, "min")?, need(max, "max")?);
                if min > max {
                    return Err(format!("`min` ({min}) is greater than `max` ({max})"));
                }
                Distribution::Uniform { min, max }
            }
            Kind::Normal => Distribution::Normal {
                mean: need(mean, "mean")?,
                std_dev: need(std_dev, "std_dev")?,
            },
            Kind::LogNormal => Distribution::LogNormal {
                mean: positive(need(mean, "mean")?, "mean")?,
                std_dev: need(std_dev, "std_dev")?,
            },
            Kind::Weibull => Distribution::Weibull {
                shape: shape_ok(need_f(shape, "shape")?)?,
                scale: positive(need(scale, "scale")?, "scale")?,
            },
            Kind::Pareto => {
                let shape = shape_ok(need_f(shape, "shape")?)?;
                if shape <= 1.0 {
                    return Err(format!(
                        "pareto `shape` must be above 1 (the mean interval is infinite otherwise), not {shape}"
                    ));
                }
                Distribution::Pareto {
                    shape,
                    scale: positive(need(scale, "scale")?, "scale")?,
                }
            }
            Kind::Gamma => Distribution::Gamma {
                shape: shape_ok(need_f(shape, "shape")?)?,
                scale: positive(need(scale, "scale")?, "scale")?,
            },
            Kind::Empirical => Distribution::Empirical {
                csv: csv.ok_or("dist = \"empirical\" needs `csv`")?,
                column,
                values: Observed::default(),
            },
            Kind::ImapTest => Distribution::ImapTest {
                mean: need(mean, "mean")?,
            },
        })
    }
}

impl<'de> Deserialize<'de> for Distribution {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Distribution;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string (\"10s\") or a distribution table ({ dist = \"exponential\", mean = \"10s\" })")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Distribution, E> {
                parse_duration(v)
                    .map(|d| Distribution::Constant(Dur(d)))
                    .map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Distribution, E> {
                Err(E::custom(format!(
                    "an interval needs a unit: write \"{v}s\" (or a table such as {{ per_day = {v} }})"
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Distribution, E> {
                Err(E::custom(format!(
                    "an interval needs a unit: write \"{v}s\""
                )))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Distribution, A::Error> {
                let table =
                    DistTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                table.into_distribution().map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Distribution {
    fn schema_name() -> Cow<'static, str> {
        "Interval".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = generator.subschema_for::<DistTable>();
        json_schema!({
            "description": "An interval: a constant duration (\"10s\") or a distribution table, e.g. { dist = \"exponential\", mean = \"10s\" } or { per_day = 55 }.",
            "anyOf": [
                { "type": "string", "pattern": DURATION_PATTERN },
                table
            ]
        })
    }
}

/// ImapTest clamps U away from 0 so `−ln` stays finite.
const IMAPTEST_U: f64 = 0.99999;

impl Distribution {
    /// The mean interval in seconds (for `normal`, ignoring the clamp at 0).
    pub fn mean_secs(&self) -> f64 {
        match self {
            Distribution::Constant(c) => c.secs_f64(),
            Distribution::Exponential { mean }
            | Distribution::Normal { mean, .. }
            | Distribution::LogNormal { mean, .. }
            | Distribution::ImapTest { mean } => mean.secs_f64(),
            Distribution::PerDay(n) => 86400.0 / n,
            Distribution::Uniform { min, max } => (min.secs_f64() + max.secs_f64()) / 2.0,
            Distribution::Weibull { shape, scale } => {
                scale.secs_f64() * gamma_fn(1.0 + 1.0 / shape)
            }
            Distribution::Pareto { shape, scale } => shape * scale.secs_f64() / (shape - 1.0),
            Distribution::Gamma { shape, scale } => shape * scale.secs_f64(),
            Distribution::Empirical { values, .. } => {
                let v = &values.0;
                if v.is_empty() {
                    0.0
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            }
        }
    }

    /// Whether the mean interval is above 0 (a recurring timer with mean 0 never ends).
    pub fn has_positive_mean(&self) -> bool {
        self.mean_secs() > 0.0
    }

    /// `(mu, sigma)` of the underlying normal of a log-normal with this mean and std dev.
    pub fn lognormal_params(mean: f64, std_dev: f64) -> (f64, f64) {
        let sigma2 = (1.0 + (std_dev * std_dev) / (mean * mean)).ln();
        (mean.ln() - sigma2 / 2.0, sigma2.sqrt())
    }

    /// One interval in seconds, never negative.
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let value = match self {
            Distribution::Constant(c) => c.secs_f64(),
            Distribution::Exponential { mean } => exp_sample(rng, mean.secs_f64()),
            Distribution::PerDay(n) => exp_sample(rng, 86400.0 / n),
            Distribution::Uniform { min, max } => {
                let (a, b) = (min.secs_f64(), max.secs_f64());
                a + (b - a) * rng.random::<f64>()
            }
            Distribution::Normal { mean, std_dev } => {
                rand_distr::Normal::new(mean.secs_f64(), std_dev.secs_f64())
                    .map(|d| d.sample(rng))
                    .unwrap_or(mean.secs_f64())
            }
            Distribution::LogNormal { mean, std_dev } => {
                let (mu, sigma) = Self::lognormal_params(mean.secs_f64(), std_dev.secs_f64());
                rand_distr::LogNormal::new(mu, sigma)
                    .map(|d| d.sample(rng))
                    .unwrap_or(mean.secs_f64())
            }
            Distribution::Weibull { shape, scale } => {
                rand_distr::Weibull::new(scale.secs_f64(), *shape)
                    .map(|d| d.sample(rng))
                    .unwrap_or(0.0)
            }
            Distribution::Pareto { shape, scale } => {
                rand_distr::Pareto::new(scale.secs_f64(), *shape)
                    .map(|d| d.sample(rng))
                    .unwrap_or(0.0)
            }
            Distribution::Gamma { shape, scale } => {
                rand_distr::Gamma::new(*shape, scale.secs_f64())
                    .map(|d| d.sample(rng))
                    .unwrap_or(0.0)
            }
            Distribution::Empirical { values, .. } => {
                empirical_quantile(&values.0, rng.random::<f64>())
            }
            Distribution::ImapTest { mean } => imaptest_sample(rng, mean.secs_f64()),
        };
        if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        }
    }

    /// The delay to the first event of a recurring timer started at time 0, so that the
    /// process is (close to) stationary from the start: exponential gaps draw a full
    /// exponential (memoryless), constant and `imaptest` gaps a uniform phase in
    /// `[0, mean)` (as ImapTest does), others run the renewal process from −10 means.
    pub fn first_sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Distribution::Exponential { .. } | Distribution::PerDay(_) => self.sample(rng),
            Distribution::Constant(_) | Distribution::ImapTest { .. } => {
                self.mean_secs() * rng.random::<f64>()
            }
            _ => {
                let mean = self.mean_secs();
                let mut t = -10.0 * mean;
                for _ in 0..10_000 {
                    t += self.sample(rng);
                    if t >= 0.0 {
                        return t;
                    }
                }
                mean * rng.random::<f64>()
            }
        }
    }

    /// Loads the observed values of an empirical distribution (path relative to `base`).
    pub fn resolve(&mut self, base: &Path) -> Result<(), String> {
        if let Distribution::Empirical {
            csv,
            column,
            values,
        } = self
        {
            let path = if csv.is_absolute() {
                csv.clone()
            } else {
                base.join(&*csv)
            };
            let mut v = read_observed(&path, column.as_deref())?;
            v.sort_by(f64::total_cmp);
            values.0 = Arc::new(v);
        }
        Ok(())
    }

    /// The TOML text of this interval (a string or an inline table).
    pub fn to_toml(&self) -> String {
        let d = |d: &Dur| format!("\"{}\"", format_duration(d.0));
        match self {
            Distribution::Constant(c) => d(c),
            Distribution::Exponential { mean } => {
                format!("{{ dist = \"exponential\", mean = {} }}", d(mean))
            }
            Distribution::PerDay(n) => format!("{{ per_day = {} }}", fmt_f64(*n)),
            Distribution::Uniform { min, max } => {
                format!(
                    "{{ dist = \"uniform\", min = {}, max = {} }}",
                    d(min),
                    d(max)
                )
            }
            Distribution::Normal { mean, std_dev } => {
                format!(
                    "{{ dist = \"normal\", mean = {}, std_dev = {} }}",
                    d(mean),
                    d(std_dev)
                )
            }
            Distribution::LogNormal { mean, std_dev } => {
                format!(
                    "{{ dist = \"lognormal\", mean = {}, std_dev = {} }}",
                    d(mean),
                    d(std_dev)
                )
            }
            Distribution::Weibull { shape, scale } => {
                format!(
                    "{{ dist = \"weibull\", shape = {}, scale = {} }}",
                    fmt_f64(*shape),
                    d(scale)
                )
            }
            Distribution::Pareto { shape, scale } => {
                format!(
                    "{{ dist = \"pareto\", shape = {}, scale = {} }}",
                    fmt_f64(*shape),
                    d(scale)
                )
            }
            Distribution::Gamma { shape, scale } => {
                format!(
                    "{{ dist = \"gamma\", shape = {}, scale = {} }}",
                    fmt_f64(*shape),
                    d(scale)
                )
            }
            Distribution::Empirical { csv, column, .. } => {
                let mut s = format!(
                    "{{ dist = \"empirical\", csv = {}",
                    toml_string(&csv.to_string_lossy())
                );
                if let Some(c) = column {
                    s.push_str(&format!(", column = {}", toml_string(c)));
                }
                s.push_str(" }");
                s
            }
            Distribution::ImapTest { mean } => {
                format!("{{ dist = \"imaptest\", mean = {} }}", d(mean))
            }
        }
    }
}

/// A number as TOML: integral values without a fraction (`55`, read back as 55.0).
pub(crate) fn fmt_f64(v: f64) -> String {
    format!("{v}")
}

/// A TOML basic string.
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn exp_sample<R: rand::Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    let e: f64 = rand_distr::Exp1.sample(rng);
    e * mean
}

/// ImapTest's `weighted_rand(n) = n ± (n/2)·sqrt(−ln(0.99999·U))` without the integer
/// truncation; below 2 s it is the mean itself, as in ImapTest.
fn imaptest_sample<R: rand::Rng + ?Sized>(rng: &mut R, n: f64) -> f64 {
    if n < 2.0 {
        return n;
    }
    let u: f64 = rng.random();
    let dev = (n / 2.0) * (-(IMAPTEST_U * u).ln()).sqrt();
    if rng.random_bool(0.5) {
        n + dev
    } else {
        n - dev
    }
}

/// CDF of the `imaptest` distribution (before the clamp at 0), for tests.
pub fn imaptest_cdf(n: f64, x: f64) -> f64 {
    if n < 2.0 {
        return if x >= n { 1.0 } else { 0.0 };
    }
    // R = sqrt(−ln(0.99999·U)): P(R ≤ r) = 1 − e^(−r²)/0.99999 for r ≥ r0.
    let r_cdf = |r: f64| (1.0 - (-r * r).exp() / IMAPTEST_U).max(0.0);
    let r = (x - n).abs() / (n / 2.0);
    if x >= n {
        0.5 + 0.5 * r_cdf(r)
    } else {
        0.5 - 0.5 * r_cdf(r)
    }
}

/// Linear interpolation of the quantile function of sorted observations.
pub fn empirical_quantile(sorted: &[f64], u: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let pos = u * (n - 1) as f64;
            let i = (pos.floor() as usize).min(n - 2);
            let frac = pos - i as f64;
            sorted[i] + (sorted[i + 1] - sorted[i]) * frac
        }
    }
}

/// CDF matching [`empirical_quantile`] (piecewise linear), for tests.
pub fn empirical_cdf(sorted: &[f64], x: f64) -> f64 {
    let n = sorted.len();
    if n < 2 {
        return if n == 1 && x >= sorted[0] { 1.0 } else { 0.0 };
    }
    if x <= sorted[0] {
        return 0.0;
    }
    if x >= sorted[n - 1] {
        return 1.0;
    }
    let i = sorted.partition_point(|&v| v <= x) - 1;
    let width = sorted[i + 1] - sorted[i];
    let frac = if width > 0.0 {
        (x - sorted[i]) / width
    } else {
        0.0
    };
    (i as f64 + frac) / (n - 1) as f64
}

/// Reads one column of a CSV: numbers are seconds, other cells duration strings. A first
/// row that is not a value is a header (needed to pick a column by name).
fn read_observed(path: &Path, column: Option<&str>) -> Result<Vec<f64>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let cell_value = |cell: &str| -> Option<f64> {
        cell.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .or_else(|| parse_duration(cell).ok().map(|d| d.as_secs_f64()))
    };
    let mut index = 0usize;
    let mut values = Vec::new();
    for (row_no, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if row_no == 0 {
            if let Some(name) = column {
                index = record.iter().position(|h| h == name).ok_or_else(|| {
                    format!("{}: no column {name:?} in the header row", path.display())
                })?;
                continue;
            }
            if record.get(0).and_then(cell_value).is_none() {
                continue; // header
            }
        }
        let cell = record.get(index).unwrap_or("");
        let v = cell_value(cell).ok_or_else(|| {
            format!(
                "{}:{}: {cell:?} is not a number of seconds or a duration",
                path.display(),
                row_no + 1
            )
        })?;
        if v < 0.0 {
            return Err(format!(
                "{}:{}: negative interval {v}",
                path.display(),
                row_no + 1
            ));
        }
        values.push(v);
    }
    if values.is_empty() {
        return Err(format!("{}: no observed values", path.display()));
    }
    Ok(values)
}

/// Γ(x) for x > 0 (Lanczos approximation, g = 7).
fn gamma_fn(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma_fn(1.0 - x))
    } else {
        let x = x - 1.0;
        let mut a = G[0];
        let t = x + 7.5;
        for (i, g) in G.iter().enumerate().skip(1) {
            a += g / (x + i as f64);
        }
        (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_function() {
        assert!((gamma_fn(5.0) - 24.0).abs() < 1e-9);
        assert!((gamma_fn(1.5) - 0.886_226_925_452_758).abs() < 1e-12);
    }

    #[test]
    fn empirical_cdf_inverts_quantile() {
        let v = [1.0, 2.0, 4.0, 8.0];
        for u in [0.0, 0.1, 0.5, 0.77, 0.999] {
            let x = empirical_quantile(&v, u);
            assert!((empirical_cdf(&v, x) - u).abs() < 1e-12, "{u}");
        }
    }

    #[test]
    fn imaptest_cdf_is_symmetric() {
        assert!((imaptest_cdf(10.0, 10.0) - 0.5).abs() < 1e-4);
        assert!(imaptest_cdf(10.0, 0.0) < 0.01);
        assert!(imaptest_cdf(10.0, 30.0) > 0.999);
    }
}
