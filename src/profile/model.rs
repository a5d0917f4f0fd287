//! The profile model: what a TOML profile (or a legacy `profile.conf`) describes.
//!
//! ```toml
//! #:schema ../schemas/profile.schema.json
//! [run]
//! duration = "1h"
//! rampup = "30s"
//! seed = 42
//! total_users = 1000
//!
//! [servers.lmtp]
//! port = 24
//! max_parallel = 10
//!
//! [[population]]
//! name = "office"
//! share = 100
//! username = "user%{username_idx | lfill(4, '0')}@example.com"
//! clients = [{ client = "thunderbird", share = 80 }, { client = "mobile", share = 20 }]
//! inbox_delivery = { per_day = 55 }
//!
//! [[client]]
//! name = "thunderbird"
//! connections = 2
//! ```

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

use super::distribution::Distribution;
use super::size::{Recipients, SizeDistribution, SizeSource};
use super::username::UsernameTemplate;
use crate::duration::Dur;
use crate::limits::{MAX_CONNECTIONS_PER_CLIENT, MAX_PROFILE_USERS};

/// A whole profile.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "imaptest profile")]
pub struct Profile {
    /// Run settings: duration, ramp-up, seed, population size, time compression.
    #[serde(default)]
    pub run: Run,
    /// Server endpoints (host and port default to the command line's).
    #[serde(default)]
    pub servers: Servers,
    /// Optional time-of-day activity curve scaling arrival rates.
    #[serde(default)]
    pub activity: Option<Activity>,
    /// User populations (`[[population]]`), in order.
    #[serde(rename = "population")]
    pub populations: Vec<Population>,
    /// Client types (`[[client]]`), referenced by name from populations.
    #[serde(rename = "client")]
    pub clients: Vec<ClientType>,
    /// Objectives checked after the run (`[[slo]]`), besides the command line's `slo=`.
    #[serde(default, rename = "slo")]
    pub slos: Vec<SloEntry>,
}

/// `[[slo]]`: one objective, e.g. `objective = "imap.LOGIN.p99 < 500ms"`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloEntry {
    /// `METRIC OP VALUE`, as `slo=` takes it.
    #[schemars(with = "String")]
    pub objective: Spanned<String>,
}

/// `[run]`
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// How long the run lasts (wall clock); a dry-run plan covers this period.
    #[serde(default)]
    pub duration: Option<Dur>,
    /// First logins of each population are spread linearly over this period.
    #[serde(default)]
    pub rampup: Dur,
    /// Seed of all random choices; the same seed gives the same schedule.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Number of users split between populations with a `share`.
    #[serde(default)]
    pub total_users: Option<u32>,
    /// Simulated seconds per real second: 24 runs a simulated day in one hour. Every
    /// interval of the profile is simulated time.
    #[serde(default = "one")]
    pub time_compression: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Run {
    fn default() -> Self {
        Run {
            duration: None,
            rampup: Dur::default(),
            seed: None,
            total_users: None,
            time_compression: 1.0,
        }
    }
}

/// `[servers]`
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Servers {
    /// Host for every endpoint without its own (default: the command line's `host=`).
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub imap: Option<Endpoint>,
    #[serde(default)]
    pub pop3: Option<Endpoint>,
    #[serde(default)]
    pub lmtp: Option<LmtpEndpoint>,
}

/// How an endpoint's connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain TCP.
    #[default]
    None,
    /// TLS from the first byte (IMAPS 993, POP3S 995).
    Implicit,
    /// STARTTLS / STLS after the greeting.
    StartTls,
}

/// `[servers.imap]`, `[servers.pop3]`
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Tls,
}

/// `[servers.lmtp]`
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LmtpEndpoint {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Tls,
    /// At most this many deliveries at once; further ones wait in a queue (their
    /// lateness is reported). Absent: unlimited.
    #[serde(default)]
    pub max_parallel: Option<u32>,
}

/// `[activity]`: a time-of-day curve. Arrival processes (deliveries, sent mail, login
/// gaps, polls) run faster or slower with the curve; its mean over a day is normalised
/// to 1, so `per_day` rates stay per day.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    /// Simulated time of day when the run starts, `"HH:MM"`.
    #[serde(default)]
    pub start: TimeOfDay,
    /// 24 relative activity levels, one per hour from 00:00.
    #[schemars(with = "Vec<f64>", length(min = 24, max = 24))]
    pub hourly: Spanned<Vec<f64>>,
}

/// `"HH:MM"` or `"HH:MM:SS"`, seconds since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeOfDay(pub u32);

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if s == 0 {
            write!(f, "{h:02}:{m:02}")
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}")
        }
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        let bad =
            || serde::de::Error::custom(format!("invalid time of day {s:?}, expected \"HH:MM\""));
        let mut parts = s.split(':');
        let mut field = |max: u32| -> Result<Option<u32>, D::Error> {
            match parts.next() {
                None => Ok(None),
                Some(p) => match p.parse::<u32>() {
                    Ok(v) if v < max && !p.is_empty() && p.len() <= 2 => Ok(Some(v)),
                    _ => Err(bad()),
                },
            }
        };
        let h = field(24)?.ok_or_else(bad)?;
        let m = field(60)?.ok_or_else(bad)?;
        let sec = field(60)?.unwrap_or(0);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 3600 + m * 60 + sec))
    }
}

impl JsonSchema for TimeOfDay {
    fn schema_name() -> Cow<'static, str> {
        "TimeOfDay".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
            "description": "Time of day, \"HH:MM\"."
        })
    }
}

/// How a population's users get their clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientSelection {
    /// Each user gets one client, picked with the shares as weights.
    #[default]
    One,
    /// Each client is included with probability share %, repeated until a user has at
    /// least one (ImapTest's rule; 80 %/20 % gives both clients to ≈19 % of users).
    Independent,
}

/// One entry of a population's client mix.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientShare {
    /// Name of a `[[client]]`.
    #[schemars(with = "String")]
    pub client: Spanned<String>,
    /// Percentage (weight with `client_selection = "one"`).
    #[serde(default = "hundred")]
    pub share: f64,
}

fn hundred() -> f64 {
    100.0
}

/// `[[population]]`: a group of users behaving alike.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Population {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Percentage of `run.total_users` (give `share` or `count`).
    #[serde(default)]
    pub share: Option<f64>,
    /// Absolute number of users (give `share` or `count`).
    #[serde(default)]
    pub count: Option<u32>,
    /// Username template: `%{username_idx}`, `%{username_idx | lfill(3, '0')}`, `%n`, `%03n`.
    #[serde(default)]
    pub username: Option<String>,
    /// First user index of this population (default 1).
    #[serde(default = "one_u32")]
    pub start_index: u32,
    /// File of `user` or `user:password` lines, used instead of `username`.
    #[serde(default)]
    pub userfile: Option<PathBuf>,
    /// Password (default: the command line's `pass=`).
    #[serde(default)]
    pub password: Option<String>,
    /// The client mix.
    pub clients: Vec<ClientShare>,
    #[serde(default)]
    pub client_selection: ClientSelection,
    /// How long an IMAP session lasts before LOGOUT (absent: until the end).
    #[serde(default)]
    pub session_length: Option<Distribution>,
    /// Gap between LMTP deliveries to the user's INBOX.
    #[serde(default)]
    pub inbox_delivery: Option<Distribution>,
    /// Gap between LMTP deliveries to the user's Spam (`user+Spam`).
    #[serde(default)]
    pub spam_delivery: Option<Distribution>,
    /// Gap between mails the user writes (Drafts, then Sent after `write_duration`).
    #[serde(default)]
    pub send: Option<Distribution>,
    /// How long a draft stays in Drafts before it is sent.
    #[serde(default)]
    pub write_duration: Option<Distribution>,
    /// Size of written mails in bytes: a number or a size distribution (absent:
    /// messages from the source as they are).
    #[serde(default)]
    pub write_size: Option<SizeDistribution>,
    /// % of written mails (with a `write_size`) that carry an attachment.
    #[serde(default)]
    pub write_attachments: f64,
    /// Size of delivered mails in bytes: a number or a size distribution (absent:
    /// the messages of the mbox as they are).
    #[serde(default)]
    pub delivery_size: Option<SizeDistribution>,
    /// How messages of a drawn size are made: `"build"` (default) or `"mbox"` (the
    /// mbox message nearest in size).
    #[serde(default)]
    pub size_source: SizeSource,
    /// % of delivered mails (with a `delivery_size`) that carry an attachment.
    #[serde(default)]
    pub delivery_attachments: f64,
    /// Recipients per delivery: one LMTP transaction with this many RCPTs (the user and
    /// others of the population), each counted as a delivery. Default 1.
    #[serde(default)]
    pub delivery_recipients: Option<Recipients>,
    /// Delay from noticing a new mail to opening (reading) it (absent: log-normal,
    /// mean 2 min, std dev 4 min).
    #[serde(default)]
    pub action_delay: Option<Distribution>,
    /// Delay from reading a mail to acting on it (reply, delete, move).
    #[serde(default)]
    pub action_repeat_delay: Option<Distribution>,
    /// % of read mails deleted (\Deleted + UID EXPUNGE). Rolled first.
    #[serde(default)]
    pub delete: f64,
    /// % of (not deleted) read mails moved to Spam. Rolled second.
    #[serde(default)]
    pub move_to_spam: f64,
    /// % of (not deleted or moved) read mails replied to (Drafts → Sent, \Answered).
    #[serde(default)]
    pub reply: f64,
    /// % of new mails a filter moves to Spam as soon as they are seen.
    #[serde(default)]
    pub filter_to_spam: f64,
}

fn one_u32() -> u32 {
    1
}

impl Population {
    /// A population with only a name: every other key at its default (no users, no
    /// clients, no activity).
    pub fn named(name: Spanned<String>) -> Self {
        Population {
            name,
            share: None,
            count: None,
            username: None,
            start_index: 1,
            userfile: None,
            password: None,
            clients: Vec::new(),
            client_selection: ClientSelection::default(),
            session_length: None,
            inbox_delivery: None,
            spam_delivery: None,
            send: None,
            write_duration: None,
            write_size: None,
            write_attachments: 0.0,
            delivery_size: None,
            size_source: SizeSource::default(),
            delivery_attachments: 0.0,
            delivery_recipients: None,
            action_delay: None,
            action_repeat_delay: None,
            delete: 0.0,
            move_to_spam: 0.0,
            reply: 0.0,
            filter_to_spam: 0.0,
        }
    }
}

/// Protocol of a client type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Imap,
    Pop3,
}

/// `[[client]]`: how a kind of mail client behaves.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientType {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub protocol: Protocol,
    /// Connections per user while logged in (0: the client never connects).
    #[serde(default = "one_u32")]
    pub connections: u32,
    /// Time between a logout and the next login (absent: immediately).
    #[serde(default)]
    pub login_interval: Option<Distribution>,
    /// IMAP: wait for new mail with IDLE (default), or poll with `poll_interval`.
    #[serde(default = "yes")]
    pub idle: bool,
    /// IMAP: check for new mail at this interval instead of IDLE (set `idle = false`).
    #[serde(default)]
    pub poll_interval: Option<Distribution>,
    /// IMAP: FETCH items for new mail, e.g. `UID RFC822.SIZE FLAGS BODY.PEEK[HEADER]`.
    #[serde(default)]
    pub fetch_on_arrival: Option<String>,
    /// IMAP: FETCH items when a mail is opened, e.g. `BODY[]`.
    #[serde(default)]
    pub fetch_on_open: Option<String>,
    /// POP3: keep mails on the server (no DELE).
    #[serde(default)]
    pub pop3_keep: bool,
    /// IMAP: a caching client (default) fetches `fetch_on_arrival` once per message and
    /// remembers UIDNEXT across sessions; `false` (webmail) re-fetches the newest 50
    /// messages at every login and check.
    #[serde(default = "yes")]
    pub cache: bool,
}

fn yes() -> bool {
    true
}

/// A validation problem, located by a byte range of the source when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub span: Option<Range<usize>>,
    pub message: String,
}

fn invalid(span: Option<Range<usize>>, message: impl Into<String>) -> Invalid {
    Invalid {
        span,
        message: message.into(),
    }
}

impl Profile {
    /// The objectives of `[[slo]]`, parsed (validation checked them).
    pub fn objectives(&self) -> Vec<crate::slo::Slo> {
        self.slos
            .iter()
            .filter_map(|s| crate::slo::Slo::parse(s.objective.get_ref()).ok())
            .collect()
    }

    /// Every user count.
    pub fn total_users(&self) -> u64 {
        self.population_sizes().iter().map(|&n| u64::from(n)).sum()
    }

    /// Scales the populations to `total` users in all, keeping each population's share
    /// (largest remainders get the rounding) and every per-user behaviour: `users=`
    /// and the capacity search use it. Populations become fixed `count`s.
    pub fn scale_users(&mut self, total: u64) {
        let sizes = self.population_sizes();
        let current: u64 = sizes.iter().map(|&n| u64::from(n)).sum();
        if current == 0 {
            return;
        }
        let exact: Vec<f64> = sizes
            .iter()
            .map(|&n| f64::from(n) * total as f64 / current as f64)
            .collect();
        let mut counts: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
        let mut left = total.saturating_sub(counts.iter().sum());
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by(|&a, &b| {
            let ra = exact[a] - exact[a].floor();
            let rb = exact[b] - exact[b].floor();
            rb.total_cmp(&ra).then(a.cmp(&b))
        });
        for i in order {
            if left == 0 {
                break;
            }
            counts[i] += 1;
            left -= 1;
        }
        for (pop, count) in self.populations.iter_mut().zip(counts) {
            pop.count = Some(u32::try_from(count).unwrap_or(u32::MAX));
            pop.share = None;
        }
        self.run.total_users = None;
    }

    /// The population sizes, in order.
    pub fn population_sizes(&self) -> Vec<u32> {
        let total = u64::from(self.run.total_users.unwrap_or(0));
        self.populations
            .iter()
            .map(|p| match (p.count, p.share) {
                (Some(c), _) => c,
                (None, Some(s)) => ((total as f64 * s / 100.0) + 1e-9).floor() as u32,
                (None, None) => 0,
            })
            .collect()
    }

    /// Index of the client type named `name`.
    pub fn client_index(&self, name: &str) -> Option<usize> {
        self.clients.iter().position(|c| c.name.get_ref() == name)
    }

    /// Loads empirical CSVs and resolves relative paths against `base`.
    pub fn resolve(&mut self, base: &Path) -> Result<(), Invalid> {
        for pop in &mut self.populations {
            let span = Some(pop.name.span());
            for d in [
                &mut pop.session_length,
                &mut pop.inbox_delivery,
                &mut pop.spam_delivery,
                &mut pop.send,
                &mut pop.write_duration,
                &mut pop.action_delay,
                &mut pop.action_repeat_delay,
            ]
            .into_iter()
            .flatten()
            {
                d.resolve(base).map_err(|e| invalid(span.clone(), e))?;
            }
            for size in [&mut pop.write_size, &mut pop.delivery_size]
                .into_iter()
                .flatten()
            {
                size.0.resolve(base).map_err(|e| invalid(span.clone(), e))?;
            }
            if let Some(f) = &mut pop.userfile
                && f.is_relative()
            {
                *f = base.join(&*f);
            }
        }
        for client in &mut self.clients {
            let span = Some(client.name.span());
            for d in [&mut client.login_interval, &mut client.poll_interval]
                .into_iter()
                .flatten()
            {
                d.resolve(base).map_err(|e| invalid(span.clone(), e))?;
            }
        }
        Ok(())
    }

    /// Checks everything serde cannot: references, sums, ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        for slo in &self.slos {
            crate::slo::Slo::parse(slo.objective.get_ref())
                .map_err(|e| invalid(Some(slo.objective.span()), e.to_string()))?;
        }
        if self.populations.is_empty() {
            return Err(invalid(None, "no [[population]] defined"));
        }
        if self.clients.is_empty() {
            return Err(invalid(None, "no [[client]] defined"));
        }
        let c = self.run.time_compression;
        if !(c.is_finite() && c > 0.0) {
            return Err(invalid(
                None,
                format!("run.time_compression must be a positive number, not {c}"),
            ));
        }
        for (i, client) in self.clients.iter().enumerate() {
            let span = || Some(client.name.span());
            let name = client.name.get_ref();
            if self.clients[..i].iter().any(|o| o.name.get_ref() == name) {
                return Err(invalid(span(), format!("client {name:?} is defined twice")));
            }
            if client.connections > MAX_CONNECTIONS_PER_CLIENT {
                return Err(invalid(
                    span(),
                    format!(
                        "client {name:?}: connections = {} is more than the {MAX_CONNECTIONS_PER_CLIENT} per session imaptest opens (docs/limits.md)",
                        client.connections
                    ),
                ));
            }
            match client.protocol {
                Protocol::Imap => match (client.idle, &client.poll_interval) {
                    (true, Some(_)) => {
                        return Err(invalid(
                            span(),
                            format!("client {name:?}: `poll_interval` needs `idle = false`"),
                        ));
                    }
                    (false, None) => {
                        return Err(invalid(
                            span(),
                            format!("client {name:?}: `idle = false` needs a `poll_interval`"),
                        ));
                    }
                    _ => {}
                },
                Protocol::Pop3 => {
                    if client
                        .login_interval
                        .as_ref()
                        .is_none_or(|d| !d.has_positive_mean())
                    {
                        return Err(invalid(
                            span(),
                            format!(
                                "client {name:?}: POP3 clients need a `login_interval` (time between downloads) above 0"
                            ),
                        ));
                    }
                    if client.poll_interval.is_some()
                        || client.fetch_on_arrival.is_some()
                        || client.fetch_on_open.is_some()
                    {
                        return Err(invalid(
                            span(),
                            format!(
                                "client {name:?}: POP3 clients use `login_interval` (no poll_interval or fetch items)"
                            ),
                        ));
                    }
                }
            }
        }
        let mut share_sum = 0.0;
        let mut any_share = None;
        for (i, pop) in self.populations.iter().enumerate() {
            let span = || Some(pop.name.span());
            let name = pop.name.get_ref();
            for (key, size) in [
                ("write_size", &pop.write_size),
                ("delivery_size", &pop.delivery_size),
            ] {
                let mean = size.as_ref().map_or(0.0, |s| s.mean());
                // NaN is refused too.
                if mean.is_nan() || mean > crate::limits::MAX_MESSAGE_SIZE as f64 {
                    return Err(invalid(
                        span(),
                        format!(
                            "population {name:?}: {key} has a mean of {mean} bytes, more than the {} imaptest allows (docs/limits.md)",
                            crate::limits::MAX_MESSAGE_SIZE
                        ),
                    ));
                }
            }
            if self.populations[..i]
                .iter()
                .any(|o| o.name.get_ref() == name)
            {
                return Err(invalid(
                    span(),
                    format!("population {name:?} is defined twice"),
                ));
            }
            match (pop.share, pop.count) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        span(),
                        format!("population {name:?}: give `share` or `count`, not both"),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        span(),
                        format!(
                            "population {name:?}: give `share` (percent of run.total_users) or `count`"
                        ),
                    ));
                }
                (Some(s), None) => {
                    if !(0.0..=100.0).contains(&s) {
                        return Err(invalid(
                            span(),
                            format!("population {name:?}: share {s} is not a percentage"),
                        ));
                    }
                    share_sum += s;
                    any_share = Some(pop);
                }
                (None, Some(_)) => {}
            }
            match (&pop.username, &pop.userfile) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        span(),
                        format!("population {name:?}: give `username` or `userfile`, not both"),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        span(),
                        format!("population {name:?}: either `username` or `userfile` must be set"),
                    ));
                }
                (Some(t), None) => {
                    UsernameTemplate::parse(t)
                        .map_err(|e| invalid(span(), format!("population {name:?}: {e}")))?;
                }
                (None, Some(_)) => {}
            }
            for (key, pct) in [
                ("delete", pop.delete),
                ("move_to_spam", pop.move_to_spam),
                ("reply", pop.reply),
                ("filter_to_spam", pop.filter_to_spam),
            ] {
                if !(0.0..=100.0).contains(&pct) {
                    return Err(invalid(
                        span(),
                        format!("population {name:?}: {key} = {pct} is not a percentage (0-100)"),
                    ));
                }
            }
            for (key, d) in [
                ("session_length", &pop.session_length),
                ("inbox_delivery", &pop.inbox_delivery),
                ("spam_delivery", &pop.spam_delivery),
                ("send", &pop.send),
            ] {
                if let Some(d) = d
                    && !d.has_positive_mean()
                {
                    return Err(invalid(
                        span(),
                        format!(
                            "population {name:?}: {key} must have a mean above 0 (leave it out to disable)"
                        ),
                    ));
                }
            }
            if pop.clients.is_empty() {
                return Err(invalid(
                    span(),
                    format!("population {name:?}: `clients` is empty"),
                ));
            }
            let mut weight = 0.0;
            for share in &pop.clients {
                let cname = share.client.get_ref();
                if self.client_index(cname).is_none() {
                    let known: Vec<&str> = self
                        .clients
                        .iter()
                        .map(|c| c.name.get_ref().as_str())
                        .collect();
                    return Err(invalid(
                        Some(share.client.span()),
                        format!("unknown client {cname:?} (defined: {})", known.join(", ")),
                    ));
                }
                if !(0.0..=100.0).contains(&share.share) {
                    return Err(invalid(
                        Some(share.client.span()),
                        format!("client share {} is not a percentage", share.share),
                    ));
                }
                weight += share.share;
            }
            if weight <= 0.0 {
                return Err(invalid(
                    span(),
                    format!("population {name:?}: all client shares are 0"),
                ));
            }
        }
        if let Some(pop) = any_share {
            if self.run.total_users.unwrap_or(0) == 0 {
                return Err(invalid(
                    Some(pop.name.span()),
                    "populations with `share` need run.total_users > 0",
                ));
            }
            if (share_sum - 100.0).abs() > 1e-6 {
                return Err(invalid(
                    Some(pop.name.span()),
                    format!("population shares must add up to 100 %, not {share_sum} %"),
                ));
            }
        }
        let users: u64 = self.population_sizes().iter().map(|&n| u64::from(n)).sum();
        if users > MAX_PROFILE_USERS {
            return Err(invalid(
                None,
                format!(
                    "the populations hold {users} users, more than the {MAX_PROFILE_USERS} a run can simulate (docs/limits.md)"
                ),
            ));
        }
        if let Some(activity) = &self.activity {
            let h = activity.hourly.get_ref();
            let span = Some(activity.hourly.span());
            if h.len() != 24 {
                return Err(invalid(
                    span,
                    format!(
                        "activity.hourly needs 24 values (one per hour), not {}",
                        h.len()
                    ),
                ));
            }
            if h.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || h.iter().sum::<f64>() <= 0.0 {
                return Err(invalid(
                    span,
                    "activity.hourly values must be >= 0 and not all 0",
                ));
            }
        }
        Ok(())
    }
}
