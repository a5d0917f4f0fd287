//! Calendar arithmetic and the date formats message sources need.
//!
//! Everything is done by hand on the proleptic Gregorian calendar (no `chrono`):
//! [`days_from_civil`] and [`civil_from_days`] convert between day numbers relative to
//! 1970-01-01 and `(year, month, day)`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Three-letter English month names, as used by IMAP, RFC 5322 and mbox From_ lines.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Three-letter English weekday names, starting with Sunday.
pub const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

const SECONDS_PER_DAY: i64 = 86_400;

/// An IMAP date-time and zone, e.g. for APPEND: formatted as `17-Jul-1996 02:44:25 -0700`.
///
/// `unix` is the instant (seconds since the epoch, UTC); `offset_minutes` is the zone the
/// instant is to be displayed in (east of UTC is positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MailDate {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    /// Zone offset east of UTC in minutes, e.g. `-420` for `-0700`.
    pub offset_minutes: i16,
}

/// A broken-down local time: what a clock in some zone shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    /// Full year, e.g. 1996.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
    /// 0 = Sunday .. 6 = Saturday.
    pub weekday: u32,
}

impl MailDate {
    /// The current time in UTC (`+0000`). A clock before 1970 gives the epoch.
    pub fn now_utc() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        MailDate {
            unix,
            offset_minutes: 0,
        }
    }

    /// The wall-clock time in this date's zone.
    pub fn local(&self) -> CivilTime {
        let local = self
            .unix
            .saturating_add(i64::from(self.offset_minutes) * 60);
        civil_time(local)
    }

    /// The IMAP `date-time` form without the surrounding quotes:
    /// `17-Jul-1996 02:44:25 -0700`. The day is zero-padded (`05-Jul-1996`), which is the
    /// `2DIGIT` alternative of RFC 3501's `date-day-fixed`.
    pub fn imap_format(&self) -> String {
        let t = self.local();
        format!(
            "{:02}-{}-{:04} {:02}:{:02}:{:02} {}",
            t.day,
            month_name(t.month),
            t.year,
            t.hour,
            t.minute,
            t.second,
            zone_string(self.offset_minutes)
        )
    }

    /// The RFC 5322 form: `Wed, 17 Jul 1996 02:44:25 -0700`.
    pub fn rfc5322_format(&self) -> String {
        let t = self.local();
        format!(
            "{}, {} {} {:04} {:02}:{:02}:{:02} {}",
            weekday_name(t.weekday),
            t.day,
            month_name(t.month),
            t.year,
            t.hour,
            t.minute,
            t.second,
            zone_string(self.offset_minutes)
        )
    }

    /// The asctime form used on mbox From_ lines, in this date's zone and without it:
    /// `Wed Jul 17 02:44:25 1996` (the day is space-padded: `Thu Jan  1 00:00:00 2009`).
    pub fn asctime_format(&self) -> String {
        let t = self.local();
        format!(
            "{} {} {:>2} {:02}:{:02}:{:02} {:04}",
            weekday_name(t.weekday),
            month_name(t.month),
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.year
        )
    }
}

/// `+hhmm` / `-hhmm` for an offset in minutes.
pub fn zone_string(offset_minutes: i16) -> String {
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.unsigned_abs();
    format!("{sign}{:02}{:02}", abs / 60, abs % 60)
}

fn month_name(month: u32) -> &'static str {
    MONTHS
        .get((month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("???")
}

fn weekday_name(weekday: u32) -> &'static str {
    WEEKDAYS.get(weekday as usize).copied().unwrap_or("???")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
/// `month` is 1..=12; `day` is not range-checked.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `(year, month, day)` of a day number relative to 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Breaks a count of seconds since the epoch (already shifted into some zone) down.
pub fn civil_time(seconds: i64) -> CivilTime {
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let secs = seconds.rem_euclid(SECONDS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    CivilTime {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        weekday: (days + 4).rem_euclid(7) as u32,
    }
}

/// Seconds since the epoch of a wall-clock time taken as UTC.
pub fn unix_from_civil(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> i64 {
    days_from_civil(year, month, day) * SECONDS_PER_DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn formats() {
        // 1996-07-17T09:44:25Z shown at -0700.
        let d = MailDate {
            unix: 837_596_665,
            offset_minutes: -420,
        };
        assert_eq!(d.imap_format(), "17-Jul-1996 02:44:25 -0700");
        assert_eq!(d.rfc5322_format(), "Wed, 17 Jul 1996 02:44:25 -0700");
        assert_eq!(d.asctime_format(), "Wed Jul 17 02:44:25 1996");
        let e = MailDate {
            unix: unix_from_civil(2009, 1, 1, 0, 0, 0),
            offset_minutes: 0,
        };
        assert_eq!(e.asctime_format(), "Thu Jan  1 00:00:00 2009");
        assert_eq!(e.imap_format(), "01-Jan-2009 00:00:00 +0000");
        assert_eq!(zone_string(330), "+0530");
    }
}
