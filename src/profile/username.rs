//! Username templates of profiles: Dovecot's `%{username_idx}` (with the `lfill`
//! filter, e.g. `%{username_idx | lfill(3, '0')}` → `001`) and ImapTest's older
//! `%n` / `%03n` forms. `%%` is a literal `%`.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Index { width: usize, fill: char },
}

/// A parsed username template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameTemplate {
    parts: Vec<Part>,
}

impl UsernameTemplate {
    /// Parses a template; errors say what is wrong (the caller adds the location).
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(pos) = rest.find('%') {
            text.push_str(&rest[..pos]);
            rest = &rest[pos + 1..];
            if let Some(r) = rest.strip_prefix('%') {
                text.push('%');
                rest = r;
                continue;
            }
            let index = if let Some(r) = rest.strip_prefix('{') {
                let end = r
                    .find('}')
                    .ok_or_else(|| format!("unclosed `%{{` in username template {template:?}"))?;
                let expr = &r[..end];
                rest = &r[end + 1..];
                parse_braced(expr).map_err(|e| format!("{e} in username template {template:?}"))?
            } else {
                // %n, %3n, %03n
                let digits = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let spec = &rest[..digits];
                let after = &rest[digits..];
                match after.chars().next() {
                    Some('n') => {
                        rest = &after[1..];
                        let fill = if spec.starts_with('0') { '0' } else { ' ' };
                        let width = if spec.is_empty() {
                            0
                        } else {
                            spec.parse()
                                .map_err(|_| format!("bad width in {template:?}"))?
                        };
                        Part::Index { width, fill }
                    }
                    _ => {
                        return Err(format!(
                            "unknown `%` variable in username template {template:?}: use %{{username_idx}} (or %n), %% for a literal %"
                        ));
                    }
                }
            };
            if let Part::Index { width, .. } = index
                && width > 64
            {
                return Err(format!(
                    "field width above 64 in username template {template:?}"
                ));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(index);
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(UsernameTemplate { parts })
    }

    /// Whether the template contains the user index (otherwise all users share a name).
    pub fn has_index(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Index { .. }))
    }

    pub fn expand(&self, idx: u64) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match *part {
                Part::Text(ref t) => out.push_str(t),
                Part::Index { width, fill } => {
                    let digits = idx.to_string();
                    for _ in digits.len()..width {
                        out.push(fill);
                    }
                    let _ = write!(out, "{digits}");
                }
            }
        }
        out
    }
}

/// `username_idx`, `username_idx | lfill(3, '0')`, `username_idx|lfill(3)`.
fn parse_braced(expr: &str) -> Result<Part, String> {
    let mut pieces = expr.split('|').map(str::trim);
    let var = pieces.next().unwrap_or("");
    if var != "username_idx" {
        return Err(format!(
            "unknown variable %{{{var}}} (only %{{username_idx}} exists)"
        ));
    }
    let mut part = Part::Index {
        width: 0,
        fill: ' ',
    };
    for filter in pieces {
        let args = filter
            .strip_prefix("lfill")
            .map(str::trim)
            .and_then(|a| a.strip_prefix('('))
            .and_then(|a| a.strip_suffix(')'))
            .ok_or_else(|| format!("unsupported filter `{filter}` (only lfill(width, 'c'))"))?;
        let mut args = args.splitn(2, ',').map(str::trim);
        let width: usize = args
            .next()
            .unwrap_or("")
            .parse()
            .map_err(|_| format!("lfill needs a number as width in `{filter}`"))?;
        let fill = match args.next() {
            None => ' ',
            Some(q) => {
                let inner = q
                    .strip_prefix('\'')
                    .and_then(|q| q.strip_suffix('\''))
                    .or_else(|| q.strip_prefix('"').and_then(|q| q.strip_suffix('"')))
                    .ok_or_else(|| {
                        format!("lfill's fill character must be quoted in `{filter}`")
                    })?;
                let mut chars = inner.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => c,
                    _ => {
                        return Err(format!(
                            "lfill needs exactly one fill character in `{filter}`"
                        ));
                    }
                }
            }
        };
        part = Part::Index { width, fill };
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = |s: &str, i| UsernameTemplate::parse(s).unwrap().expand(i);
        assert_eq!(t("test%{username_idx}", 7), "test7");
        assert_eq!(t("u%{username_idx | lfill(3, '0')}@x", 7), "u007@x");
        assert_eq!(t("u%{username_idx|lfill(4)}", 12), "u  12");
        assert_eq!(t("test%n", 5), "test5");
        assert_eq!(t("test%03n@d", 5), "test005@d");
        assert_eq!(t("100%%", 5), "100%");
        assert!(UsernameTemplate::parse("a%{user}").is_err());
        assert!(UsernameTemplate::parse("a%d").is_err());
        assert!(UsernameTemplate::parse("a%{username_idx").is_err());
    }
}
