//! Writes a [`Profile`] as TOML text (`imaptest profile convert profile.conf`).
//!
//! The output parses back into an equal profile, so a legacy `profile.conf` and its
//! conversion produce the same schedule for the same seed.

use std::fmt::Write as _;

use super::distribution::{fmt_f64, toml_string};
use super::model::{ClientSelection, Endpoint, Profile, Protocol, Tls};
use super::size::SizeSource;

/// The `#:schema` directive profiles start with (relative to `profiles/`).
pub const SCHEMA_DIRECTIVE: &str = "#:schema ../schemas/profile.schema.json";

/// The TOML text of `profile`, starting with a `#:schema` line. `source` names the file
/// it was converted from, for the header comment.
pub fn to_toml(profile: &Profile, source: Option<&str>) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "{SCHEMA_DIRECTIVE}");
    if let Some(source) = source {
        let _ = writeln!(
            w,
            "# Converted from {source} by `imaptest profile convert`."
        );
        let uses_imaptest = profile.populations.iter().any(|p| {
            [
                &p.session_length,
                &p.inbox_delivery,
                &p.spam_delivery,
                &p.send,
                &p.write_duration,
                &p.action_delay,
                &p.action_repeat_delay,
            ]
            .into_iter()
            .flatten()
            .any(|d| matches!(d, super::Distribution::ImapTest { .. }))
        });
        if uses_imaptest {
            let _ = writeln!(
                w,
                "# dist = \"imaptest\" is ImapTest's spread around the mean; for Poisson arrivals use\n\
                 # {{ dist = \"exponential\", mean = \"10s\" }} or {{ per_day = 55 }}."
            );
        }
        if profile
            .populations
            .iter()
            .any(|p| p.client_selection == ClientSelection::Independent)
        {
            let _ = writeln!(
                w,
                "# client_selection = \"independent\": each client is included with its share as the\n\
                 # probability, until a user has at least one (ImapTest's rule)."
            );
        }
    }
    let _ = writeln!(w);
    let run = &profile.run;
    let _ = writeln!(w, "[run]");
    if let Some(d) = run.duration {
        let _ = writeln!(w, "duration = \"{d}\"");
    }
    let _ = writeln!(w, "rampup = \"{}\"", run.rampup);
    if let Some(seed) = run.seed {
        let _ = writeln!(w, "seed = {seed}");
    }
    if let Some(n) = run.total_users {
        let _ = writeln!(w, "total_users = {n}");
    }
    if run.time_compression != 1.0 {
        let _ = writeln!(w, "time_compression = {}", fmt_f64(run.time_compression));
    }
    let s = &profile.servers;
    if s.host.is_some() || s.imap.is_some() || s.pop3.is_some() || s.lmtp.is_some() {
        if let Some(host) = &s.host {
            let _ = writeln!(w, "\n[servers]\nhost = {}", toml_string(host));
        }
        for (name, ep) in [("imap", &s.imap), ("pop3", &s.pop3)] {
            if let Some(ep) = ep {
                endpoint(w, name, ep);
            }
        }
        if let Some(l) = &s.lmtp {
            endpoint(
                w,
                "lmtp",
                &Endpoint {
                    host: l.host.clone(),
                    port: l.port,
                    tls: l.tls,
                },
            );
            if let Some(n) = l.max_parallel {
                let _ = writeln!(w, "max_parallel = {n}");
            }
        }
    }
    if let Some(a) = &profile.activity {
        let _ = writeln!(w, "\n[activity]\nstart = \"{}\"", a.start);
        let hourly: Vec<String> = a.hourly.get_ref().iter().map(|v| fmt_f64(*v)).collect();
        let _ = writeln!(w, "hourly = [{}]", hourly.join(", "));
    }
    for p in &profile.populations {
        let _ = writeln!(w, "\n[[population]]");
        let _ = writeln!(w, "name = {}", toml_string(p.name.get_ref()));
        if let Some(share) = p.share {
            let _ = writeln!(w, "share = {}", fmt_f64(share));
        }
        if let Some(count) = p.count {
            let _ = writeln!(w, "count = {count}");
        }
        if let Some(u) = &p.username {
            let _ = writeln!(w, "username = {}", toml_string(u));
        }
        if p.start_index != 1 {
            let _ = writeln!(w, "start_index = {}", p.start_index);
        }
        if let Some(f) = &p.userfile {
            let _ = writeln!(w, "userfile = {}", toml_string(&f.to_string_lossy()));
        }
        if let Some(pw) = &p.password {
            let _ = writeln!(w, "password = {}", toml_string(pw));
        }
        let mix: Vec<String> = p
            .clients
            .iter()
            .map(|c| {
                format!(
                    "{{ client = {}, share = {} }}",
                    toml_string(c.client.get_ref()),
                    fmt_f64(c.share)
                )
            })
            .collect();
        let _ = writeln!(w, "clients = [{}]", mix.join(", "));
        if p.client_selection == ClientSelection::Independent {
            let _ = writeln!(w, "client_selection = \"independent\"");
        }
        for (key, d) in [
            ("session_length", &p.session_length),
            ("inbox_delivery", &p.inbox_delivery),
            ("spam_delivery", &p.spam_delivery),
            ("send", &p.send),
            ("write_duration", &p.write_duration),
            ("action_delay", &p.action_delay),
            ("action_repeat_delay", &p.action_repeat_delay),
        ] {
            if let Some(d) = d {
                let _ = writeln!(w, "{key} = {}", d.to_toml());
            }
        }
        for (key, size) in [
            ("write_size", &p.write_size),
            ("delivery_size", &p.delivery_size),
        ] {
            if let Some(size) = size {
                let _ = writeln!(w, "{key} = {}", size.to_toml());
            }
        }
        if p.size_source == SizeSource::Mbox {
            let _ = writeln!(w, "size_source = \"mbox\"");
        }
        if let Some(r) = &p.delivery_recipients {
            let _ = writeln!(w, "delivery_recipients = {}", r.to_toml());
        }
        for (key, v) in [
            ("write_attachments", p.write_attachments),
            ("delivery_attachments", p.delivery_attachments),
            ("delete", p.delete),
            ("move_to_spam", p.move_to_spam),
            ("reply", p.reply),
            ("filter_to_spam", p.filter_to_spam),
        ] {
            if v != 0.0 {
                let _ = writeln!(w, "{key} = {}", fmt_f64(v));
            }
        }
    }
    for c in &profile.clients {
        let _ = writeln!(w, "\n[[client]]");
        let _ = writeln!(w, "name = {}", toml_string(c.name.get_ref()));
        if c.protocol == Protocol::Pop3 {
            let _ = writeln!(w, "protocol = \"pop3\"");
        }
        let _ = writeln!(w, "connections = {}", c.connections);
        if let Some(d) = &c.login_interval {
            let _ = writeln!(w, "login_interval = {}", d.to_toml());
        }
        if !c.idle {
            let _ = writeln!(w, "idle = false");
        }
        if let Some(d) = &c.poll_interval {
            let _ = writeln!(w, "poll_interval = {}", d.to_toml());
        }
        if let Some(f) = &c.fetch_on_arrival {
            let _ = writeln!(w, "fetch_on_arrival = {}", toml_string(f));
        }
        if let Some(f) = &c.fetch_on_open {
            let _ = writeln!(w, "fetch_on_open = {}", toml_string(f));
        }
        if !c.cache {
            let _ = writeln!(w, "cache = false");
        }
        if c.pop3_keep {
            let _ = writeln!(w, "pop3_keep = true");
        }
    }
    for slo in &profile.slos {
        let _ = writeln!(w, "\n[[slo]]");
        let _ = writeln!(w, "objective = {}", toml_string(slo.objective.get_ref()));
    }
    out
}

fn endpoint(w: &mut String, name: &str, ep: &Endpoint) {
    let _ = writeln!(w, "\n[servers.{name}]");
    if let Some(h) = &ep.host {
        let _ = writeln!(w, "host = {}", toml_string(h));
    }
    if let Some(p) = ep.port {
        let _ = writeln!(w, "port = {p}");
    }
    let tls = match ep.tls {
        Tls::None => None,
        Tls::Implicit => Some("implicit"),
        Tls::StartTls => Some("starttls"),
    };
    if let Some(t) = tls {
        let _ = writeln!(w, "tls = \"{t}\"");
    }
}
