//! "Did you mean" suggestions for unknown arguments.

/// Levenshtein distance between two strings, by characters.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Shortest input for which a prefix match counts.
const MIN_PREFIX: usize = 3;

/// The candidate closest to `input` (case-insensitively): one within edit distance 1,
/// else one that `input` is a prefix of, else one that is a prefix or suffix of
/// `input` (`hostname` → `host`, `mailbox` → `box`), else one within edit distance 2. Ties go to the candidate closest in length, then to the earliest. Distances must also be
/// smaller than the input's length, so `x` suggests nothing.
pub(crate) fn suggest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input = input.to_lowercase();
    let len = input.chars().count();
    if len == 0 || len > 64 {
        return None;
    }
    // (rank, tie-breaker) — lower is better.
    let mut best: Option<((usize, usize), &'a str)> = None;
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let d = distance(&input, &lower);
        let long_enough = len >= MIN_PREFIX && lower.len() >= MIN_PREFIX;
        let gap = lower.len().abs_diff(input.len());
        let rank = if d <= 1 && d < len {
            (d, gap)
        } else if long_enough && lower.starts_with(&input) {
            (2, gap)
        } else if long_enough && (input.starts_with(&lower) || input.ends_with(&lower)) {
            (3, gap)
        } else if d == 2 && d < len {
            (4, gap)
        } else {
            continue;
        };
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("", "abc", 3),
            ("abc", "", 3),
            ("clints", "clients", 1),
            ("kitten", "sitting", 3),
            ("fecth", "fetch", 2),
            ("flaw", "lawn", 2),
            ("ssl", "ssl", 0),
            ("äb", "ab", 1),
        ] {
            assert_eq!(distance(a, b), d, "{a} vs {b}");
            assert_eq!(distance(b, a), d, "{b} vs {a}");
        }
    }

    #[test]
    fn suggestions() {
        let names = [
            "clients",
            "host",
            "hostip",
            "stalled_disconnect_timeout",
            "csv",
            "box",
        ];
        for (input, want) in [
            ("clints", Some("clients")),
            ("CLIENTS", Some("clients")),
            ("hots", Some("host")),
            ("hostname", Some("host")),
            ("stalled", Some("stalled_disconnect_timeout")),
            ("x", None),
            ("", None),
            ("zzzzzz", None),
            ("bo", Some("box")),
            ("cs", Some("csv")),
        ] {
            assert_eq!(suggest(input, names), want, "{input}");
        }
    }
}
