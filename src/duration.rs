//! Durations, the one parser every mode uses: `"10s"`, `"3 min"`, `"1h30m"`, `"1.5s"`, `"250ms"`

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

/// The longest duration a profile may give, in seconds (about 31 700 years).
pub const MAX_SECS: u64 = 1_000_000_000_000;

/// The pattern the schema gives editors for a duration string.
pub const DURATION_PATTERN: &str = r"^\s*(0|([0-9]+(\.[0-9]+)?\s*[a-zA-Z]+\s*)+)$";

/// Parses a duration: one or more `<number><unit>` parts (spaces allowed, fractions
/// allowed), units `ns`, `us`/`µs`, `ms`, `s`/`sec`/`secs`/`second(s)`, `m`/`min`/`mins`/
/// `minute(s)`, `h`/`hr`/`hour(s)`, `d`/`day(s)`, `w`/`week(s)`. A bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number at {rest:?} (e.g. \"10s\", \"3min\", \"1h30m\")"
            ));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid number {:?} in duration {text:?}", &rest[..num_len]))?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let factor = unit_seconds(unit).ok_or_else(|| {
            if unit.is_empty() {
                format!("duration {text:?} needs a unit (ms, s, min, h, d), e.g. \"{number}s\"")
            } else {
                format!(
                    "unknown unit {unit:?} in duration {text:?} (use ns, us, ms, s, min, h, d, w)"
                )
            }
        })?;
        total += number * factor;
        rest = rest[unit_len..].trim_start();
    }
    if !total.is_finite() || total > MAX_SECS as f64 {
        return Err(format!("duration {text:?} is too large"));
    }
    Ok(Duration::from_secs_f64(total))
}

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" | "nsec" | "nsecs" => 1e-9,
        "us" | "µs" | "usec" | "usecs" => 1e-6,
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1e-3,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "week" | "weeks" => 604800.0,
        _ => return None,
    })
}

/// Formats a duration in one unit, the largest that represents it exactly
/// (`"3min"`, `"10s"`, `"250ms"`), which [`parse_duration`] reads back unchanged.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    const UNITS: [(u128, &str); 7] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "min"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    for (size, name) in UNITS {
        if ns.is_multiple_of(size) {
            return format!("{}{name}", ns / size);
        }
    }
    unreachable!("1 ns divides everything")
}

/// A duration read from a string such as `"10s"` or `"3 min"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"10s\", \"3min\" or \"250ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                if v == 0 {
                    Ok(Dur(Duration::ZERO))
                } else {
                    Err(E::custom(format!(
                        "a duration needs a unit: write \"{v}s\" (or \"{v}ms\", \"{v}min\")"
                    )))
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" (or \"{v}ms\", \"{v}min\")"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: number and unit, e.g. \"10s\", \"3min\", \"1h30m\", \"250ms\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        for (text, secs) in [
            ("10s", 10.0),
            ("3 min", 180.0),
            ("1h30m", 5400.0),
            ("1.5s", 1.5),
            ("250ms", 0.25),
            ("0", 0.0),
            ("2 h", 7200.0),
        ] {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        for bad in ["", "10", "10 parsecs", "s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for d in [
            Duration::from_secs(180),
            Duration::from_millis(1500),
            Duration::from_nanos(1_234_567),
            Duration::from_secs(7200),
        ] {
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::from_secs(180)), "3min");
    }
}
