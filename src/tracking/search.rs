//! SEARCH queries as trees, rendered for the wire and evaluated against what tracking
//! knows. Evaluation is three-valued: `Some(true)` the message must match,
//! `Some(false)` it must not, `None` unknown. Only exact knowledge gives an answer:
//! sequence sets, sizes from RFC822.SIZE, and dates with a margin wide enough for any
//! time zone the server may judge the day in.

use std::fmt::Write as _;

use crate::mail::date::{MONTHS, civil_from_days};

/// Which date a date key looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateField {
    /// INTERNALDATE: BEFORE, ON, SINCE.
    Internal,
    /// The `Date:` header: SENTBEFORE, SENTON, SENTSINCE.
    Sent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOp {
    Before,
    On,
    Since,
}

/// One search key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    /// Sorted, merged ranges of sequence numbers.
    SeqSet(Vec<(u32, u32)>),
    Smaller(u64),
    Larger(u64),
    Date {
        field: DateField,
        op: DateOp,
        /// Unix time of the day's UTC midnight.
        day: i64,
    },
    /// `NOT DELETED`: flags may change under us, so always unknown.
    NotDeleted,
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    /// A parenthesised AND group (the query root is an AND without parentheses).
    And(Vec<SearchKey>),
}

/// What is known about one message when a SEARCH result arrives.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    pub seq: u32,
    pub size: Option<u64>,
    pub internal: Option<i64>,
    pub sent: Option<i64>,
}

/// Margin around a UTC day: the server may judge dates in any zone (±14 h).
const ZONE_MARGIN: i64 = 14 * 3600;
const DAY: i64 = 86_400;

impl SearchKey {
    /// The key as sent; a root AND is rendered without parentheses (`render_list`).
    pub fn render(&self, out: &mut String) {
        match self {
            SearchKey::All => out.push_str("ALL"),
            SearchKey::SeqSet(ranges) => {
                for (i, (a, b)) in ranges.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if a == b {
                        let _ = write!(out, "{a}");
                    } else {
                        let _ = write!(out, "{a}:{b}");
                    }
                }
            }
            SearchKey::Smaller(n) => {
                let _ = write!(out, "SMALLER {n}");
            }
            SearchKey::Larger(n) => {
                let _ = write!(out, "LARGER {n}");
            }
            SearchKey::Date { field, op, day } => {
                let sent = if *field == DateField::Sent {
                    "SENT"
                } else {
                    ""
                };
                let op = match op {
                    DateOp::Before => "BEFORE",
                    DateOp::On => "ON",
                    DateOp::Since => "SINCE",
                };
                let _ = write!(out, "{sent}{op} {}", search_date(*day));
            }
            SearchKey::NotDeleted => out.push_str("NOT DELETED"),
            SearchKey::Or(a, b) => {
                out.push_str("OR ");
                a.render(out);
                out.push(' ');
                b.render(out);
            }
            SearchKey::Not(a) => {
                out.push_str("NOT ");
                a.render(out);
            }
            SearchKey::And(items) => {
                out.push('(');
                render_list(items, out);
                out.push(')');
            }
        }
    }

    /// Three-valued match.
    pub fn eval(&self, f: &Facts) -> Option<bool> {
        match self {
            SearchKey::All => Some(true),
            SearchKey::SeqSet(ranges) => {
                Some(ranges.iter().any(|&(a, b)| (a..=b).contains(&f.seq)))
            }
            SearchKey::Smaller(n) => f.size.map(|s| s < *n),
            SearchKey::Larger(n) => f.size.map(|s| s > *n),
            SearchKey::Date { field, op, day } => {
                let t = match field {
                    DateField::Internal => f.internal,
                    DateField::Sent => f.sent,
                }?;
                date_match(*op, *day, t)
            }
            SearchKey::NotDeleted => None,
            SearchKey::Or(a, b) => match (a.eval(f), b.eval(f)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            SearchKey::Not(a) => a.eval(f).map(|b| !b),
            SearchKey::And(items) => and(items, f),
        }
    }
}

/// AND of a list, three-valued.
pub fn and(items: &[SearchKey], f: &Facts) -> Option<bool> {
    let mut result = Some(true);
    for item in items {
        match item.eval(f) {
            Some(false) => return Some(false),
            None => result = None,
            Some(true) => {}
        }
    }
    result
}

/// `a b c` for the query root.
pub fn render_list(items: &[SearchKey], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        item.render(out);
    }
}

/// Whether a message dated `t` (unix seconds) matches `op day`, with a ±14 h margin
/// around the UTC day boundaries; `None` inside the margin.
fn date_match(op: DateOp, day: i64, t: i64) -> Option<bool> {
    let start = day;
    let end = day + DAY;
    let before = |edge: i64| {
        if t < edge - ZONE_MARGIN {
            Some(true)
        } else if t >= edge + ZONE_MARGIN {
            Some(false)
        } else {
            None
        }
    };
    match op {
        DateOp::Before => before(start),
        DateOp::Since => before(start).map(|b| !b),
        DateOp::On => match (before(start), before(end)) {
            (Some(true), _) => Some(false),
            (_, Some(false)) => Some(false),
            (Some(false), Some(true)) => Some(true),
            _ => None,
        },
    }
}

/// `D-Mon-YYYY` of a unix time's UTC day.
pub fn search_date(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(DAY));
    let month = MONTHS
        .get((month as usize).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!("{day}-{month}-{year}")
}

/// Dovecot 2.3's reading of a query with two negated size keys of one kind in one AND
/// (`NOT SMALLER 2000 NOT SMALLER 4000`, or `NOT (OR SMALLER 2000 SMALLER 4000)`): it
/// keeps only the looser key. `None` if the query has no such pair. A known quirk
/// (docs/servers.md); the stress generator never builds such queries.
pub fn dovecot_size_merge(keys: &[SearchKey]) -> Option<Vec<SearchKey>> {
    let mut merged = false;
    let out = merge_and(keys, &mut merged);
    merged.then_some(out)
}

fn merge_and(keys: &[SearchKey], merged: &mut bool) -> Vec<SearchKey> {
    // NOT (OR a b) is NOT a AND NOT b: flatten it into this AND first.
    let mut flat = Vec::with_capacity(keys.len());
    for key in keys {
        match key {
            SearchKey::Not(inner) => match inner.as_ref() {
                SearchKey::Or(a, b) => {
                    flat.push(SearchKey::Not(a.clone()));
                    flat.push(SearchKey::Not(b.clone()));
                }
                _ => flat.push(key.clone()),
            },
            _ => flat.push(key.clone()),
        }
    }
    let mut out: Vec<SearchKey> = Vec::with_capacity(flat.len());
    for key in flat {
        let key = merge_key(key, merged);
        let looser = |kept: &SearchKey, new: &SearchKey| match (kept, new) {
            (SearchKey::Not(a), SearchKey::Not(b)) => match (a.as_ref(), b.as_ref()) {
                (SearchKey::Smaller(x), SearchKey::Smaller(y)) => {
                    Some(SearchKey::Smaller(*x.min(y)))
                }
                (SearchKey::Larger(x), SearchKey::Larger(y)) => Some(SearchKey::Larger(*x.max(y))),
                _ => None,
            },
            _ => None,
        };
        match out.iter().position(|kept| looser(kept, &key).is_some()) {
            Some(i) => {
                let inner = looser(&out[i], &key).expect("checked");
                out[i] = SearchKey::Not(Box::new(inner));
                *merged = true;
            }
            None => out.push(key),
        }
    }
    out
}

fn merge_key(key: SearchKey, merged: &mut bool) -> SearchKey {
    match key {
        SearchKey::And(items) => SearchKey::And(merge_and(&items, merged)),
        SearchKey::Or(a, b) => SearchKey::Or(
            Box::new(merge_key(*a, merged)),
            Box::new(merge_key(*b, merged)),
        ),
        SearchKey::Not(inner) => SearchKey::Not(Box::new(merge_key(*inner, merged))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(seq: u32, size: u64, internal: i64) -> Facts {
        Facts {
            seq,
            size: Some(size),
            internal: Some(internal),
            sent: None,
        }
    }

    #[test]
    fn dates_have_a_zone_margin() {
        let day = 1_699_920_000; // 14-Nov-2023 00:00 UTC
        assert_eq!(date_match(DateOp::Before, day, day - 15 * 3600), Some(true));
        assert_eq!(date_match(DateOp::Before, day, day - 3600), None);
        assert_eq!(
            date_match(DateOp::Before, day, day + 15 * 3600),
            Some(false)
        );
        assert_eq!(date_match(DateOp::Since, day, day + 15 * 3600), Some(true));
        assert_eq!(date_match(DateOp::On, day, day + 12 * 3600), None);
        assert_eq!(date_match(DateOp::On, day, day + 3 * DAY), Some(false));
        assert_eq!(date_match(DateOp::On, day, day - 3 * DAY), Some(false));
    }

    #[test]
    fn three_valued_logic() {
        let f = facts(3, 1000, 0);
        let seq = SearchKey::SeqSet(vec![(1, 2), (3, 3)]);
        assert_eq!(seq.eval(&f), Some(true));
        assert_eq!(SearchKey::Smaller(500).eval(&f), Some(false));
        let or = SearchKey::Or(Box::new(SearchKey::NotDeleted), Box::new(seq.clone()));
        assert_eq!(or.eval(&f), Some(true));
        let and = SearchKey::And(vec![SearchKey::NotDeleted, SearchKey::Larger(2000)]);
        assert_eq!(and.eval(&f), Some(false));
        let unknown = SearchKey::And(vec![SearchKey::NotDeleted, seq]);
        assert_eq!(unknown.eval(&f), None);
        let not = SearchKey::Not(Box::new(SearchKey::Smaller(500)));
        assert_eq!(not.eval(&f), Some(true));
        assert_eq!(SearchKey::Not(Box::new(unknown)).eval(&f), None);
        let mut s = String::new();
        SearchKey::Or(
            Box::new(SearchKey::SeqSet(vec![(1, 2), (5, 5)])),
            Box::new(SearchKey::And(vec![
                SearchKey::Smaller(10),
                SearchKey::Date {
                    field: DateField::Sent,
                    op: DateOp::On,
                    day: 1_699_920_000,
                },
            ])),
        )
        .render(&mut s);
        assert_eq!(s, "OR 1:2,5 (SMALLER 10 SENTON 14-Nov-2023)");
    }
}
