//! Message sizes and recipient counts: plain numbers, or distributions of them.
//!
//! ```toml
//! delivery_size       = { dist = "lognormal", mean = 20000, std_dev = 30000 }  # bytes
//! write_size          = 4000                                                # constant
//! delivery_recipients = { 1 = 80, 2 = 15, 5 = 5 }      # weights by recipient count
//! ```
//!
//! A size table takes the keys of an interval table (`dist`, `mean`, `std_dev`, `min`,
//! `max`, `shape`, `scale`, `value`, `csv`, `column`) with numbers of bytes instead of
//! durations; it is sampled by the same code as intervals.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rand::RngExt as _;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use super::distribution::{DistTable, Distribution, Kind, fmt_f64, toml_string};
use crate::duration::Dur;

/// A size in bytes (or any count): a number or a distribution of numbers. The inner
/// [`Distribution`] holds bytes where intervals hold seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeDistribution(pub Distribution);

/// The table form with numbers.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SizeTable")]
struct SizeTable {
    /// Distribution kind (constant, exponential, uniform, normal, lognormal, weibull,
    /// pareto, gamma, empirical).
    dist: Option<Kind>,
    /// constant: the value.
    value: Option<f64>,
    /// exponential, normal, lognormal: the mean.
    mean: Option<f64>,
    /// normal, lognormal: the standard deviation.
    std_dev: Option<f64>,
    /// uniform: lower bound.
    min: Option<f64>,
    /// uniform: upper bound.
    max: Option<f64>,
    /// weibull, pareto, gamma: the shape parameter (pareto: > 1).
    shape: Option<f64>,
    /// weibull, gamma: the scale; pareto: the minimum value.
    scale: Option<f64>,
    /// empirical: CSV file of observed values, relative to the profile's directory.
    csv: Option<PathBuf>,
    /// empirical: the column (header name); default the first column.
    column: Option<String>,
}

fn amount(v: Option<f64>, key: &str) -> Result<Option<Dur>, String> {
    match v {
        None => Ok(None),
        Some(v) if v.is_finite() && (0.0..1e15).contains(&v) => {
            Ok(Some(Dur(Duration::from_secs_f64(v))))
        }
        Some(v) => Err(format!("`{key}` must be a number from 0 up, not {v}")),
    }
}

impl SizeTable {
    fn into_size(self) -> Result<SizeDistribution, String> {
        if self.dist.is_none() {
            return Err("a size table needs `dist = \"...\"` (e.g. { dist = \"lognormal\", mean = 20000, std_dev = 30000 })".into());
        }
        if self.dist == Some(Kind::ImapTest) {
            return Err("dist = \"imaptest\" is for intervals, not sizes".into());
        }
        let table = DistTable {
            dist: self.dist,
            value: amount(self.value, "value")?,
            mean: amount(self.mean, "mean")?,
            std_dev: amount(self.std_dev, "std_dev")?,
            min: amount(self.min, "min")?,
            max: amount(self.max, "max")?,
            shape: self.shape,
            scale: amount(self.scale, "scale")?,
            csv: self.csv,
            column: self.column,
            per_day: None,
            per_hour: None,
        };
        table.into_distribution().map(SizeDistribution)
    }
}

impl<'de> Deserialize<'de> for SizeDistribution {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SizeDistribution;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of bytes or a size table ({ dist = \"lognormal\", mean = 20000, std_dev = 30000 })")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SizeDistribution, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SizeDistribution, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SizeDistribution, E> {
                let d = amount(Some(v), "size").map_err(E::custom)?;
                Ok(SizeDistribution(Distribution::Constant(
                    d.unwrap_or_default(),
                )))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SizeDistribution, A::Error> {
                let table =
                    SizeTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                table.into_size().map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for SizeDistribution {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = generator.subschema_for::<SizeTable>();
        json_schema!({
            "description": "A number of bytes, or a size table, e.g. { dist = \"lognormal\", mean = 20000, std_dev = 30000 }.",
            "anyOf": [
                { "type": "number", "minimum": 0 },
                table
            ]
        })
    }
}

impl SizeDistribution {
    /// One size, rounded to a whole number, at least `min` and at most
    /// [`crate::limits::MAX_MESSAGE_SIZE`] (a long tail must not draw a terabyte).
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R, min: u64) -> u64 {
        let v = self.0.sample(rng).round();
        (v.min(crate::limits::MAX_MESSAGE_SIZE as f64) as u64).max(min)
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        self.0.mean_secs()
    }

    /// The TOML text: a number or an inline table of numbers.
    pub fn to_toml(&self) -> String {
        let n = |d: &Dur| fmt_f64(d.secs_f64());
        match &self.0 {
            Distribution::Constant(c) => n(c),
            Distribution::Exponential { mean } | Distribution::ImapTest { mean } => {
                format!("{{ dist = \"exponential\", mean = {} }}", n(mean))
            }
            Distribution::PerDay(r) => {
                format!(
                    "{{ dist = \"exponential\", mean = {} }}",
                    fmt_f64(86400.0 / r)
                )
            }
            Distribution::Uniform { min, max } => {
                format!(
                    "{{ dist = \"uniform\", min = {}, max = {} }}",
                    n(min),
                    n(max)
                )
            }
            Distribution::Normal { mean, std_dev } => format!(
                "{{ dist = \"normal\", mean = {}, std_dev = {} }}",
                n(mean),
                n(std_dev)
            ),
            Distribution::LogNormal { mean, std_dev } => format!(
                "{{ dist = \"lognormal\", mean = {}, std_dev = {} }}",
                n(mean),
                n(std_dev)
            ),
            Distribution::Weibull { shape, scale }
            | Distribution::Pareto { shape, scale }
            | Distribution::Gamma { shape, scale } => {
                let kind = match &self.0 {
                    Distribution::Weibull { .. } => "weibull",
                    Distribution::Pareto { .. } => "pareto",
                    _ => "gamma",
                };
                format!(
                    "{{ dist = \"{kind}\", shape = {}, scale = {} }}",
                    fmt_f64(*shape),
                    n(scale)
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
        }
    }
}

/// Recipients per delivery: a number, or weights by number (`{ 1 = 80, 2 = 20 }`).
#[derive(Debug, Clone, PartialEq)]
pub struct Recipients(pub Vec<(u32, f64)>);

impl<'de> Deserialize<'de> for Recipients {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(u32),
            Weights(BTreeMap<String, f64>),
        }
        let weights = match Form::deserialize(deserializer)
            .map_err(|_| D::Error::custom("recipients: a number (≥ 1) or a table of weights by number, e.g. { 1 = 80, 2 = 20 }"))?
        {
            Form::One(0) => return Err(D::Error::custom("recipients must be at least 1")),
            Form::One(n) => vec![(n, 1.0)],
            Form::Weights(map) => {
                let mut out = Vec::new();
                for (k, w) in map {
                    let n: u32 = k
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| D::Error::custom(format!("recipients: {k:?} is not a number of recipients (1, 2, …)")))?;
                    if !(w.is_finite() && w >= 0.0) {
                        return Err(D::Error::custom(format!("recipients: weight {w} of {n} is not a number ≥ 0")));
                    }
                    out.push((n, w));
                }
                out.sort_by_key(|&(n, _)| n);
                if out.iter().map(|&(_, w)| w).sum::<f64>() <= 0.0 {
                    return Err(D::Error::custom("recipients: the weights are all 0"));
                }
                out
            }
        };
        Ok(Recipients(weights))
    }
}

impl JsonSchema for Recipients {
    fn schema_name() -> Cow<'static, str> {
        "Recipients".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Recipients per delivery: a number, or weights by number of recipients, e.g. { 1 = 80, 2 = 15, 5 = 5 }.",
            "anyOf": [
                { "type": "integer", "minimum": 1 },
                {
                    "type": "object",
                    "patternProperties": { "^[1-9][0-9]*$": { "type": "number", "minimum": 0 } },
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl Recipients {
    /// One draw.
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let total: f64 = self.0.iter().map(|&(_, w)| w).sum();
        let mut u = rng.random::<f64>() * total;
        for &(n, w) in &self.0 {
            if u < w {
                return n;
            }
            u -= w;
        }
        self.0.last().map_or(1, |&(n, _)| n)
    }

    /// The largest number drawn.
    pub fn max(&self) -> u32 {
        self.0
            .iter()
            .filter(|&&(_, w)| w > 0.0)
            .map(|&(n, _)| n)
            .max()
            .unwrap_or(1)
    }

    pub fn to_toml(&self) -> String {
        if let [(n, _)] = self.0[..] {
            return n.to_string();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|&(n, w)| format!("{n} = {}", fmt_f64(w)))
            .collect();
        format!("{{ {} }}", parts.join(", "))
    }
}

/// How a message of a drawn size is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SizeSource {
    /// Built (mail-builder): a text body padded to the size, with an attachment for
    /// the `…_attachments` share.
    #[default]
    Build,
    /// The mbox message nearest in size.
    Mbox,
}
