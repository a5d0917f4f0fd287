//! The converter of legacy `profile.conf` files: the lexed entries, key by key, into the
//! [`Profile`] model, with ImapTest's rules and defaults.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde_spanned::Spanned;

use super::super::ProfileError;
use super::super::distribution::Distribution;
use super::super::model::{
    ClientSelection, ClientShare, ClientType, LmtpEndpoint, Population, Profile, Protocol, Run,
    Servers, Tls,
};
use super::lexer::{Entry, Lexed, Section, SectionKind};
use super::{LEGACY_POLL_INTERVAL, Legacy};
use crate::duration::{Dur, MAX_SECS};

/// The error for an entry's value: `Invalid value for setting 'key': value (what)`.
fn bad_value(
    err: &dyn Fn(usize, String) -> ProfileError,
    e: &Entry<'_>,
    what: &str,
) -> ProfileError {
    err(
        e.value_at,
        format!(
            "Invalid value for setting '{}': {} ({what})",
            e.key, e.value
        ),
    )
}

/// The global settings of a file.
struct Globals {
    lmtp_port: u16,
    lmtp_max_parallel: u32,
    total_users: u32,
    rampup: Dur,
}

/// The client sections: the types, their (name, share) for every user block, and the
/// sum of their shares.
struct Clients {
    types: Vec<ClientType>,
    shares: Vec<(String, f64)>,
    total: u32,
}

/// Reads entries into the model, collecting notes on how it read them.
struct Converter<'a> {
    text: &'a str,
    err: &'a dyn Fn(usize, String) -> ProfileError,
    warnings: Vec<String>,
}

impl Converter<'_> {
    fn globals(&mut self, globals: &[Entry<'_>]) -> Result<Globals, ProfileError> {
        let mut lmtp_port = None;
        let mut lmtp_max_parallel = 0u32;
        let mut total_users = None;
        let mut rampup = Dur::default();
        for e in globals {
            let bad = |what: &str| bad_value(self.err, e, what);
            match e.key {
                "lmtp_port" => {
                    let port = parse_uint(e.value).ok_or_else(|| bad("a port number"))?;
                    if !(1..=65535).contains(&port) {
                        return Err(bad("a port number 1-65535"));
                    }
                    lmtp_port = Some(port as u16);
                }
                "lmtp_max_parallel_count" => {
                    lmtp_max_parallel = parse_uint(e.value).ok_or_else(|| bad("a number"))?;
                }
                "total_user_count" => {
                    let n = parse_uint(e.value).ok_or_else(|| bad("a number"))?;
                    if n == 0 {
                        return Err(bad("must be above 0"));
                    }
                    total_users = Some(n);
                }
                "rampup_time" => rampup = Dur(parse_time(e.value).map_err(|m| bad(&m))?),
                _ => return Err((self.err)(e.key_at, format!("Unknown setting: {}", e.key))),
            }
        }
        let lmtp_port =
            lmtp_port.ok_or_else(|| (self.err)(0, "lmtp_port setting missing".into()))?;
        let total_users =
            total_users.ok_or_else(|| (self.err)(0, "total_user_count setting missing".into()))?;
        Ok(Globals {
            lmtp_port,
            lmtp_max_parallel,
            total_users,
            rampup,
        })
    }

    fn clients(&mut self, sections: &[Section<'_>]) -> Result<Clients, ProfileError> {
        let mut clients: Vec<ClientType> = Vec::new();
        let mut client_shares: Vec<(String, f64)> = Vec::new();
        let mut client_total = 0u32;
        for section in sections.iter().filter(|s| s.kind == SectionKind::Client) {
            let mut count = 0u32;
            let mut name = section.label.to_owned();
            let mut client = ClientType {
                name: Spanned::new(span(section.at), String::new()),
                protocol: Protocol::Imap,
                connections: 0,
                login_interval: None,
                idle: true,
                poll_interval: None,
                fetch_on_arrival: None,
                fetch_on_open: None,
                pop3_keep: false,
                cache: true,
            };
            let mut idle_no = false;
            for e in &section.entries {
                let bad = |what: &str| bad_value(self.err, e, what);
                match e.key {
                    "count" => count = parse_percentage(e.value).map_err(|m| bad(&m))?,
                    "name" => name = e.value.to_owned(),
                    "protocol" => {
                        client.protocol = match e.value {
                            "imap" => Protocol::Imap,
                            "pop3" => Protocol::Pop3,
                            _ => return Err(bad("imap or pop3")),
                        }
                    }
                    "connection_max_count" => {
                        client.connections = parse_uint(e.value).ok_or_else(|| bad("a number"))?
                    }
                    "login_interval" => {
                        let d = parse_time(e.value).map_err(|m| bad(&m))?;
                        client.login_interval =
                            (!d.is_zero()).then_some(Distribution::Constant(Dur(d)));
                    }
                    "imap_idle" => {
                        idle_no = !parse_bool(e.value).ok_or_else(|| bad("yes or no"))?
                    }
                    "imap_fetch_immediate" => client.fetch_on_arrival = Some(e.value.to_owned()),
                    "imap_fetch_manual" => client.fetch_on_open = Some(e.value.to_owned()),
                    "pop3_keep_mails" => {
                        client.pop3_keep = parse_bool(e.value).ok_or_else(|| bad("yes or no"))?
                    }
                    _ => return Err((self.err)(e.key_at, format!("Unknown setting: {}", e.key))),
                }
            }
            if name.is_empty() {
                name = format!("client{}", clients.len() + 1);
            }
            let base = name.clone();
            let mut n = 2;
            while clients.iter().any(|c| *c.name.get_ref() == name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            if name != base {
                self.warnings.push(format!(
                    "client {base:?} at line {} is defined twice; renamed {name:?}",
                    super::super::line_col(self.text, section.at).0
                ));
            }
            match client.protocol {
                Protocol::Imap if idle_no => {
                    client.idle = false;
                    client.poll_interval = Some(Distribution::Constant(Dur(LEGACY_POLL_INTERVAL)));
                    self.warnings.push(format!(
                        "client {name:?}: imap_idle = no polls every 10 minutes (ImapTest always IDLEs)"
                    ));
                }
                Protocol::Pop3 => {
                    if client.login_interval.is_none() {
                        // ImapTest logs in again on its next scheduler pass (about a second).
                        client.login_interval =
                            Some(Distribution::Constant(Dur(Duration::from_secs(1))));
                        self.warnings.push(format!(
                            "client {name:?}: POP3 without login_interval downloads every second"
                        ));
                    }
                    if client.fetch_on_arrival.take().is_some()
                        || client.fetch_on_open.take().is_some()
                    {
                        self.warnings
                            .push(format!("client {name:?}: imap_fetch_* ignored for POP3"));
                    }
                }
                Protocol::Imap => {}
            }
            if client.connections == 0 {
                self.warnings.push(format!("client {name:?}: connection_max_count is 0, so this client never connects (as in ImapTest)"));
            }
            client.name = Spanned::new(span(section.at), name.clone());
            client_total += count;
            client_shares.push((name, f64::from(count)));
            clients.push(client);
        }
        Ok(Clients {
            types: clients,
            shares: client_shares,
            total: client_total,
        })
    }

    /// The user sections, each with every client at its share, and the sum of their
    /// shares.
    fn populations(
        &mut self,
        sections: &[Section<'_>],
        client_shares: &[(String, f64)],
    ) -> Result<(Vec<Population>, u32), ProfileError> {
        let mut populations = Vec::new();
        let mut user_total = 0u32;
        for section in sections.iter().filter(|s| s.kind == SectionKind::User) {
            let mut name = section.label.to_owned();
            let mut share: Option<u32> = None;
            let mut user_count: Option<u32> = None;
            let mut pop = Population {
                client_selection: ClientSelection::Independent,
                ..Population::named(Spanned::new(span(section.at), String::new()))
            };
            for e in &section.entries {
                let bad = |what: &str| bad_value(self.err, e, what);
                let interval = || -> Result<Option<Distribution>, ProfileError> {
                    let d = parse_time(e.value).map_err(|m| bad(&m))?;
                    Ok((!d.is_zero()).then_some(Distribution::ImapTest { mean: Dur(d) }))
                };
                let pct = || -> Result<f64, ProfileError> {
                    let v = parse_uint(e.value).ok_or_else(|| bad("a number 0-100"))?;
                    if v > 100 {
                        return Err(bad("a number 0-100"));
                    }
                    Ok(f64::from(v))
                };
                match e.key {
                    "count" => share = Some(parse_percentage(e.value).map_err(|m| bad(&m))?),
                    "name" => name = e.value.to_owned(),
                    "username_format" => pop.username = Some(e.value.to_owned()),
                    "username_start_index" => {
                        pop.start_index = parse_uint(e.value).ok_or_else(|| bad("a number"))?
                    }
                    "userfile" => pop.userfile = Some(e.value.into()),
                    "user_count" => {
                        user_count = Some(parse_uint(e.value).ok_or_else(|| bad("a number"))?)
                    }
                    "mail_session_length" => pop.session_length = interval()?,
                    "mail_inbox_delivery_interval" => pop.inbox_delivery = interval()?,
                    "mail_spam_delivery_interval" => pop.spam_delivery = interval()?,
                    "mail_send_interval" => pop.send = interval()?,
                    "mail_write_duration" => pop.write_duration = interval()?,
                    "mail_action_delay" => pop.action_delay = interval()?,
                    "mail_action_repeat_delay" => pop.action_repeat_delay = interval()?,
                    "mail_inbox_reply_percentage" => pop.reply = pct()?,
                    "mail_inbox_delete_percentage" => pop.delete = pct()?,
                    "mail_inbox_move_percentage" => pop.move_to_spam = pct()?,
                    "mail_inbox_move_filter_percentage" => pop.filter_to_spam = pct()?,
                    "mail_write_size" => {
                        let size =
                            parse_size(e.value).ok_or_else(|| bad("a size such as 10k or 1M"))?;
                        pop.write_size = (size > 0).then(|| {
                            super::super::size::SizeDistribution(Distribution::Constant(
                                crate::duration::Dur(std::time::Duration::from_secs(size)),
                            ))
                        });
                    }
                    _ => return Err((self.err)(e.key_at, format!("Unknown setting: {}", e.key))),
                }
            }
            if pop.username.is_none() && pop.userfile.is_none() {
                return Err((self.err)(
                    section.at,
                    "Either username_format or userfile must be set".into(),
                ));
            }
            if pop.userfile.is_some() && pop.username.is_some() {
                self.warnings.push(format!(
                    "user block {name:?}: userfile overrides username_format"
                ));
                pop.username = None;
            }
            match (share, user_count) {
                (Some(s), Some(_)) => {
                    self.warnings.push(format!(
                        "user block {name:?}: user_count is replaced by count = {s}%"
                    ));
                    pop.share = Some(f64::from(s));
                }
                (Some(s), None) => pop.share = Some(f64::from(s)),
                (None, Some(c)) => pop.count = Some(c),
                (None, None) => pop.share = Some(0.0),
            }
            user_total += share.unwrap_or(0);
            if name.is_empty() {
                name = format!("users{}", populations.len() + 1);
            }
            let base = name.clone();
            let mut n = 2;
            while populations
                .iter()
                .any(|p: &Population| *p.name.get_ref() == name)
            {
                name = format!("{base}-{n}");
                n += 1;
            }
            pop.name = Spanned::new(span(section.at), name);
            pop.clients = client_shares
                .iter()
                .map(|(c, s)| ClientShare {
                    client: Spanned::new(span(section.at), c.clone()),
                    share: *s,
                })
                .collect();
            populations.push(pop);
        }
        Ok((populations, user_total))
    }
}

/// Converts a lexed file into a profile.
pub(super) fn convert(
    lexed: Lexed<'_>,
    text: &str,
    path: &Path,
    err: &dyn Fn(usize, String) -> ProfileError,
) -> Result<Legacy, ProfileError> {
    let Lexed { globals, sections } = lexed;
    let mut converter = Converter {
        text,
        err,
        warnings: Vec::new(),
    };
    let Globals {
        lmtp_port,
        lmtp_max_parallel,
        total_users,
        rampup,
    } = converter.globals(&globals)?;
    // Clients first: user blocks refer to all of them.
    let Clients {
        types: clients,
        shares,
        total: client_total,
    } = converter.clients(&sections)?;
    let (populations, user_total) = converter.populations(&sections, &shares)?;
    let warnings = converter.warnings;
    let end = text.len().saturating_sub(1);
    if clients.is_empty() {
        return Err(err(end, "No client {} sections defined".into()));
    }
    if populations.is_empty() {
        return Err(err(end, "No user {} sections defined".into()));
    }
    if client_total < 100 {
        return Err(err(
            end,
            format!("client {{ count }} total must be at least 100% (now is {client_total}%)"),
        ));
    }
    if populations.iter().any(|p| p.share.is_some()) && user_total != 100 {
        return Err(err(
            end,
            format!("user {{ count }} total doesn't equal 100% (but {user_total}%)"),
        ));
    }
    let mut profile = Profile {
        run: Run {
            duration: None,
            rampup,
            seed: None,
            total_users: Some(total_users),
            time_compression: 1.0,
        },
        servers: Servers {
            host: None,
            imap: None,
            pop3: None,
            lmtp: Some(LmtpEndpoint {
                host: None,
                port: Some(lmtp_port),
                tls: Tls::None,
                max_parallel: (lmtp_max_parallel > 0).then_some(lmtp_max_parallel),
            }),
        },
        activity: None,
        populations,
        clients,
        slos: Vec::new(),
    };
    super::super::finish(&mut profile, text, path)?;
    Ok(Legacy { profile, warnings })
}

fn span(at: usize) -> Range<usize> {
    at..at + 1
}

fn parse_uint(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Dovecot time: `<number>[spaces]<unit>`, unit a case-insensitive prefix of
/// seconds/secs, minutes/mins, hours, days, weeks, or ms/msecs/milliseconds; `0` alone.
pub fn parse_time(s: &str) -> Result<Duration, String> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return Err("a time such as 10s, 3 min or 2h".into());
    }
    let n: u64 = s[..digits]
        .parse()
        .map_err(|_| "number too large".to_owned())?;
    let unit = s[digits..]
        .trim_start_matches([' ', '\t'])
        .to_ascii_lowercase();
    if unit.is_empty() {
        return if n == 0 {
            Ok(Duration::ZERO)
        } else {
            Err("a time needs a unit (s, min, h, d, w, ms)".into())
        };
    }
    // As long as a TOML duration may be, so the conversion reads back.
    let too_large = || format!("time too large (at most {MAX_SECS} s)");
    if ["ms", "msec", "msecs", "millisecond", "milliseconds"].contains(&unit.as_str()) {
        return (n / 1000 <= MAX_SECS)
            .then(|| Duration::from_millis(n))
            .ok_or_else(too_large);
    }
    let prefix_of = |words: &[&str]| words.iter().any(|w| w.starts_with(unit.as_str()));
    let secs = if prefix_of(&["seconds", "secs"]) {
        1
    } else if prefix_of(&["minutes", "mins"]) {
        60
    } else if prefix_of(&["hours"]) {
        3600
    } else if prefix_of(&["days"]) {
        86400
    } else if prefix_of(&["weeks"]) {
        604800
    } else {
        return Err(format!("unknown time unit {unit:?}"));
    };
    n.checked_mul(secs)
        .filter(|&s| s <= MAX_SECS)
        .map(Duration::from_secs)
        .ok_or_else(too_large)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "y" | "1" => Some(true),
        "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Dovecot size: number with optional `B`, `k`, `M`, `G`, `T` (1024-based, `i`/`B` optional).
fn parse_size(s: &str) -> Option<u64> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit = s[digits..].trim_start();
    let mut chars = unit.chars();
    let shift = match chars.next().map(|c| c.to_ascii_uppercase()) {
        None => return Some(n),
        Some('B') => return chars.next().is_none().then_some(n),
        Some('K') => 10,
        Some('M') => 20,
        Some('G') => 30,
        Some('T') => 40,
        Some(_) => return None,
    };
    let rest: String = chars.collect();
    if !["", "i", "b", "ib"].contains(&rest.to_ascii_lowercase().as_str()) {
        return None;
    }
    n.checked_mul(1u64 << shift)
}

fn parse_percentage(s: &str) -> Result<u32, String> {
    let digits = s
        .strip_suffix('%')
        .ok_or("Only nn% values are supported currently")?;
    let v = parse_uint(digits).ok_or("Only nn% values are supported currently")?;
    if v > 100 {
        return Err("Value can't be more than 100%".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_values() {
        assert_eq!(parse_time("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_time("3 min").unwrap(), Duration::from_secs(180));
        assert_eq!(parse_time("2 h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_time("1Min").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_time("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_time("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_time("10").is_err());
        assert!(parse_time("10 parsecs").is_err());
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("7"), Some(7));
        assert_eq!(parse_percentage("80%"), Ok(80));
        assert!(parse_percentage("101%").is_err());
        assert!(parse_percentage("80").is_err());
        assert_eq!(parse_bool("Yes"), Some(true));
    }
}
