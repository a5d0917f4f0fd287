//! Sharded runs: one run split over N independent processes (the pods of a Kubernetes
//! Indexed Job), with no coordinator. Each process knows its part from its index
//! (`shard=I/N`, or `$JOB_COMPLETION_INDEX` and `$IMAPTEST_SHARDS`), plans only that
//! part, starts at an agreed instant (`start_at=`) and writes its own summary;
//! `imaptest merge` adds the summaries up ([`crate::summary::merge`]).
//!
//! # The partition: a stride
//!
//! User `u` (0-based: a profile's global user index, populations in order; in stress
//! mode the index of the user in `users=`×`domains=` or the line of `userfile=`) belongs
//! to shard `u % N`. A stride rather than a hash because every shard then gets the same
//! mix (each population and each ramp-up position spread evenly, sizes within one of
//! each other), and anyone can tell by hand which pod had a user. A profile's random
//! streams are per user (seeded from the seed and the user index), so the shards'
//! plans together are exactly the unsharded plan. LMTP deliveries are planned for
//! their (first) recipient, so they run in that recipient's shard; the further
//! recipients of a delivery (`delivery_recipients`) are drawn from the seed, the
//! delivery and the whole population, the same users as in an unsharded run, and the
//! delivery is made once, so every recipient is counted once.
//!
//! Stress mode picks a random user of its shard for each session; its random streams
//! are per connection slot, seeded from (seed, shard), so a stress shard is
//! reproducible on its own but the shards together are not the unsharded run (which
//! is timing-driven anyway).
//!
//! Limits of the whole run are split too: stress mode's `clients=` and a profile's
//! `clients=` cap and `[servers.lmtp] max_parallel`, `total / N` each and one more for
//! the first `total % N` shards, so N shards load the server as one process would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::summary::ShardInfo;

/// The environment variable with the number of shards; with it, the shard index comes
/// from [`INDEX_ENV`].
pub const SHARDS_ENV: &str = "IMAPTEST_SHARDS";
/// The shard index a Kubernetes Indexed Job gives each pod (0-based).
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// How far ahead `start_at=` may be: further is almost always a unit mistake
/// (milliseconds for seconds) or a typo'd date.
pub const MAX_START_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Why a shard could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("`{text}` is not a shard: expected I/N with 0 <= I < N, such as 0/4")]
    Format { text: String },
    #[error("${SHARDS_ENV}={count} is set but ${INDEX_ENV} is not: give shard=I/N")]
    MissingIndex { count: String },
    #[error("${var}={value} is not a whole number")]
    NotANumber { var: &'static str, value: String },
    #[error("{what} cannot be split over {shards} shards: every shard needs at least one")]
    TooFew {
        /// `clients=3`, `2 users`, …
        what: String,
        shards: u32,
    },
}

impl Shard {
    /// Reads `I/N`.
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let format = || ShardError::Format {
            text: crate::text::inert(text, 60),
        };
        let (index, count) = text.split_once('/').ok_or_else(format)?;
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
                .ok_or_else(format)
        };
        Self::new(number(index)?, number(count)?).ok_or_else(format)
    }

    /// Shard `index` of `count`, if `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// The shard of a Kubernetes Indexed Job's pod: `count` from [`SHARDS_ENV`],
    /// `index` from [`INDEX_ENV`]. `None` without [`SHARDS_ENV`] (an index alone does
    /// not shard: a Job may run imaptest for other reasons).
    pub fn from_env(index: Option<&str>, count: Option<&str>) -> Result<Option<Shard>, ShardError> {
        let Some(count) = count.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let Some(index) = index.map(str::trim).filter(|i| !i.is_empty()) else {
            return Err(ShardError::MissingIndex {
                count: crate::text::inert(count, 20),
            });
        };
        let number = |var, value: &str| {
            value.parse::<u32>().map_err(|_| ShardError::NotANumber {
                var,
                value: crate::text::inert(value, 20),
            })
        };
        let (i, n) = (number(INDEX_ENV, index)?, number(SHARDS_ENV, count)?);
        Shard::new(i, n).map(Some).ok_or(ShardError::Format {
            text: format!("{i}/{n} (from ${INDEX_ENV} and ${SHARDS_ENV})"),
        })
    }

    /// True if user `user` (0-based) belongs to this shard.
    pub fn owns(self, user: u64) -> bool {
        user % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of the users `0..total` belong to this shard.
    pub fn users_of(self, total: u64) -> u64 {
        total
            .saturating_sub(u64::from(self.index))
            .div_ceil(u64::from(self.count))
    }

    /// This shard's part of a limit of the whole run: `total / N`, one more for the
    /// first `total % N` shards. The parts add up to `total`.
    pub fn share(self, total: u64) -> u64 {
        let n = u64::from(self.count);
        total / n + u64::from(u64::from(self.index) < total % n)
    }

    /// [`share`](Self::share), refusing a split that leaves a shard with nothing;
    /// `what` names the limit in the error (`clients=3`).
    pub fn split(self, what: &str, total: u64) -> Result<u64, ShardError> {
        if total < u64::from(self.count) {
            return Err(ShardError::TooFew {
                what: what.to_owned(),
                shards: self.count,
            });
        }
        Ok(self.share(total))
    }

    /// A seed for this shard's own random streams where streams are not per user
    /// (stress mode's connection slots): the seed itself for a single shard, else
    /// one derived from (seed, index), so shards don't repeat each other.
    pub fn stream_seed(self, seed: u64) -> u64 {
        use crate::profile::schedule::splitmix64;
        if self.count == 1 {
            return seed;
        }
        splitmix64(seed ^ splitmix64(0x5AA2_D000_0000_0000 ^ u64::from(self.index)))
    }

    /// As the summary records it.
    pub fn info(self) -> ShardInfo {
        ShardInfo {
            index: self.index,
            count: self.count,
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why a `start_at=` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartAtError {
    #[error(
        "`{text}` is not an instant: expected RFC 3339 (2026-05-01T12:00:00Z, \
         2026-05-01T14:00:00+02:00) or unix seconds (1777636800)"
    )]
    Format { text: String },
    #[error(
        "`{text}` is {ahead} ahead, more than the 24 h allowed (unix time in milliseconds \
         instead of seconds?)"
    )]
    TooFarAhead { text: String, ahead: String },
}

/// Reads `start_at=`: RFC 3339 (UTC `Z` or an offset such as `+02:00`, fractions of a
/// second allowed) or unix seconds (`1777636800`, `1777636800.25`). `now` bounds how
/// far ahead it may be ([`MAX_START_AHEAD`]); any past instant is accepted (a pod
/// started late runs at once and says how late it is).
pub fn parse_start_at(text: &str, now: SystemTime) -> Result<SystemTime, StartAtError> {
    let format = || StartAtError::Format {
        text: crate::text::inert(text, 60),
    };
    let at = parse_unix(text)
        .or_else(|| parse_rfc3339(text))
        .ok_or_else(format)?;
    if let Ok(ahead) = at.duration_since(now)
        && ahead > MAX_START_AHEAD
    {
        return Err(StartAtError::TooFarAhead {
            text: crate::text::inert(text, 60),
            ahead: crate::duration::format_duration(Duration::from_secs(ahead.as_secs())),
        });
    }
    Ok(at)
}

/// `SECS` or `SECS.FRACTION` since the epoch.
fn parse_unix(text: &str) -> Option<SystemTime> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !digits(secs) || !digits(fraction) || fraction.len() > 9 {
        return None;
    }
    if text.ends_with('.') {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// RFC 3339 with `Z` or a numeric offset.
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let upper = text.trim().to_ascii_uppercase();
    if let Some(utc) = upper.strip_suffix('Z') {
        return humantime::parse_rfc3339(&format!("{utc}Z")).ok();
    }
    // `…±HH:MM`: parse the local time as UTC, then undo the offset.
    let split = upper.len().checked_sub(6)?;
    let (local, offset) = upper.split_at(split);
    let sign = match offset.as_bytes()[0] {
        b'+' => 1i64,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    let as_utc = humantime::parse_rfc3339(&format!("{local}Z")).ok()?;
    let offset = Duration::from_secs(hours * 3600 + minutes * 60);
    if sign > 0 {
        as_utc.checked_sub(offset)
    } else {
        as_utc.checked_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!(Shard::parse("0/1"), Ok(Shard { index: 0, count: 1 }));
        assert_eq!(Shard::parse("6/7"), Ok(Shard { index: 6, count: 7 }));
        for bad in [
            "", "1", "1/1", "7/7", "0/0", "-1/2", "a/2", "1/2/3", " 1/2", "1/",
        ] {
            assert!(Shard::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn environment_gives_the_shard_only_with_a_count() {
        assert_eq!(Shard::from_env(Some("3"), None), Ok(None));
        assert_eq!(
            Shard::from_env(Some("3"), Some("25")),
            Ok(Some(Shard {
                index: 3,
                count: 25
            }))
        );
        assert!(matches!(
            Shard::from_env(None, Some("25")),
            Err(ShardError::MissingIndex { .. })
        ));
        assert!(matches!(
            Shard::from_env(Some("x"), Some("25")),
            Err(ShardError::NotANumber { var: INDEX_ENV, .. })
        ));
        assert!(matches!(
            Shard::from_env(Some("25"), Some("25")),
            Err(ShardError::Format { .. })
        ));
    }

    #[test]
    fn shares_add_up_and_strides_cover_every_user_once() {
        for count in 1..=9u32 {
            for total in [0u64, 1, 8, 9, 10, 101, 500_000] {
                let shards: Vec<Shard> =
                    (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
                assert_eq!(shards.iter().map(|s| s.share(total)).sum::<u64>(), total);
                assert_eq!(shards.iter().map(|s| s.users_of(total)).sum::<u64>(), total);
                for user in 0..total.min(200) {
                    assert_eq!(shards.iter().filter(|s| s.owns(user)).count(), 1);
                }
                let owned = (0..total).filter(|&u| shards[0].owns(u)).count() as u64;
                assert_eq!(owned, shards[0].users_of(total));
            }
        }
        let shard = Shard::new(3, 4).unwrap();
        assert_eq!(shard.split("clients=10", 10), Ok(2));
        assert_eq!(
            shard.split("clients=3", 3).unwrap_err().to_string(),
            "clients=3 cannot be split over 4 shards: every shard needs at least one"
        );
    }

    #[test]
    fn stream_seeds_differ_between_shards_but_not_for_one() {
        assert_eq!(Shard::new(0, 1).unwrap().stream_seed(42), 42);
        let seeds: std::collections::HashSet<u64> = (0..5)
            .map(|i| Shard::new(i, 5).unwrap().stream_seed(42))
            .collect();
        assert_eq!(seeds.len(), 5);
    }

    #[test]
    fn start_at_reads_rfc3339_and_unix_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_777_636_000);
        let at = UNIX_EPOCH + Duration::from_secs(1_777_636_800);
        assert_eq!(parse_start_at("1777636800", now), Ok(at));
        assert_eq!(
            parse_start_at("1777636800.25", now),
            Ok(at + Duration::from_millis(250))
        );
        assert_eq!(parse_start_at("2026-05-01T12:00:00Z", now), Ok(at));
        assert_eq!(parse_start_at("2026-05-01t12:00:00z", now), Ok(at));
        assert_eq!(parse_start_at("2026-05-01T14:00:00+02:00", now), Ok(at));
        assert_eq!(parse_start_at("2026-05-01T09:30:00-02:30", now), Ok(at));
        assert_eq!(
            parse_start_at("2026-05-01T12:00:00.5Z", now),
            Ok(at + Duration::from_millis(500))
        );
        // The past is fine: a late shard starts at once.
        assert_eq!(
            parse_start_at("1000", now),
            Ok(UNIX_EPOCH + Duration::from_secs(1000))
        );
        for bad in [
            "",
            "soon",
            "12:00",
            "2026-05-01",
            "2026-05-01T12:00:00",
            "1.",
            ".5",
            "1e9",
            "2026-05-01T12:00:00+2:00",
        ] {
            assert!(
                matches!(parse_start_at(bad, now), Err(StartAtError::Format { .. })),
                "{bad:?}"
            );
        }
        let millis = parse_start_at("1777636800000", now).unwrap_err();
        assert!(millis.to_string().contains("milliseconds"), "{millis}");
    }
}
