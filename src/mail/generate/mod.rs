//! A deterministic, realistic test mbox.
//!
//! [`generate_mbox`] writes `count` messages built with `mail-builder`: plain text in
//! several languages and charsets (7bit, quoted-printable, base64), multipart/alternative,
//! multipart/related with inline images, attachments with pseudo-random binary content,
//! forwarded messages as nested message/rfc822 parts, RFC 2047 encoded subjects and
//! display names in several scripts, RFC 2231 encoded file names, threads (about a third
//! of the messages reply to an earlier one, with `In-Reply-To`, `References` and
//! `Re: ` subjects), To/Cc lists, mailing-list headers and `Received` chains.
//!
//! Sizes follow a long-tailed mixture: most messages are 1–10 KB, a few percent
//! 50–500 KB and about one in 170 around 2 MB. Dates run from January 1st of
//! [`GenerateOptions::start_year`] to [`dates_end`] (a fixed date, not the clock, so output
//! never depends on when it is generated), in increasing order.
//!
//! Everything (Message-IDs, MIME boundaries, dates) is derived from
//! [`GenerateOptions::seed`] with a `Xoshiro256PlusPlus` generator, and all floating point
//! is plain IEEE arithmetic (no libm), so the same options give byte-identical output.
//!
//! The mbox uses CRLF line endings, From_ lines of the form
//! `From sender@domain Www Mmm dd hh:mm:ss yyyy` (UTC) and a blank line after every
//! message; body lines starting with `From ` are written as `>From `, so
//! [`crate::mail::Mbox`] reads back exactly `count` messages.

mod corpus;

use std::collections::HashSet;
use std::io::{self, Write};

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::url::URL;
use mail_builder::mime::MimePart;
use rand::{Rng, RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::date::{MailDate, unix_from_civil};
use corpus::{ATTACHMENT_TYPES, Lang, MAILERS, MIXED_SUBJECTS, OTHER_DOMAINS, PEOPLE, ZONES};

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of messages.
    pub count: usize,
    /// Seed of everything random; the same options give byte-identical output.
    pub seed: u64,
    /// Main mail domain (addresses, Message-IDs, hosts). Default `example.org`.
    pub domain: String,
    /// Dates run from January 1st of this year to [`dates_end`]. Default 2019.
    pub start_year: i32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            count: 1000,
            seed: 1,
            domain: "example.org".to_string(),
            start_year: 2019,
        }
    }
}

/// What [`generate_mbox`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerateStats {
    /// Messages written (= `count`).
    pub messages: usize,
    /// Bytes written, From_ lines and separators included.
    pub bytes: u64,
    /// The largest message as [`crate::mail::Mbox`] hands it out: without its From_ line,
    /// with the blank line that follows it.
    pub max_size: usize,
}

/// The end of the generated date range: 2026-11-01T00:00:00Z. Fixed so that output
/// does not depend on the clock.
pub fn dates_end() -> i64 {
    unix_from_civil(2026, 11, 1, 0, 0, 0)
}

/// Writes a CRLF mbox of `opts.count` realistic messages to `out`. Same options give
/// byte-identical output. Only I/O errors of `out` are returned.
pub fn generate_mbox(opts: &GenerateOptions, out: &mut dyn Write) -> io::Result<GenerateStats> {
    let mut g = Generator::new(opts);
    let mut stats = GenerateStats::default();
    let mut chunk: Vec<u8> = Vec::new();
    for index in 0..opts.count {
        let (from_line, message) = g.message(index);
        chunk.clear();
        chunk.extend_from_slice(from_line.as_bytes());
        chunk.extend_from_slice(b"\r\n");
        let body_start = chunk.len();
        append_escaped(&message, &mut chunk);
        chunk.extend_from_slice(b"\r\n");
        stats.max_size = stats.max_size.max(chunk.len() - body_start);
        stats.bytes += chunk.len() as u64;
        stats.messages += 1;
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(stats)
}

/// Appends `msg` with CRLF line endings, a CRLF after its last line, and `>` before
/// every line that starts with `From `.
fn append_escaped(msg: &[u8], out: &mut Vec<u8>) {
    out.reserve(msg.len() + msg.len() / 64 + 4);
    let mut pos = 0;
    while pos < msg.len() {
        let (line, next) = match memchr::memchr(b'\n', &msg[pos..]) {
            Some(i) => (&msg[pos..pos + i], pos + i + 1),
            None => (&msg[pos..], msg.len()),
        };
        pos = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

// ---------------------------------------------------------------------------------------
// Deterministic floating point helpers (IEEE arithmetic only, no libm).

/// e^x by range reduction to |r| <= ln2/2 and a Taylor series; exact enough for sizes
/// and identical on every platform.
fn det_exp(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    let x = x.clamp(-700.0, 700.0);
    let n = (x / LN2).round();
    let r = x - n * LN2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..=16 {
        term *= r / f64::from(k);
        sum += term;
    }
    let mut scale = 1.0;
    let (factor, steps) = if n >= 0.0 { (2.0, n) } else { (0.5, -n) };
    let mut i = 0.0;
    while i < steps {
        scale *= factor;
        i += 1.0;
    }
    sum * scale
}

/// ln(x) for x > 0 via e^y = x, Newton's method on det_exp.
fn det_ln(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    // Start from the binary exponent.
    let mut y = 0.0;
    let mut v = x;
    while v > 2.0 {
        v /= 2.0;
        y += std::f64::consts::LN_2;
    }
    while v < 0.5 {
        v *= 2.0;
        y -= std::f64::consts::LN_2;
    }
    for _ in 0..8 {
        y += 2.0 * (x - det_exp(y)) / (x + det_exp(y));
    }
    y
}

// ---------------------------------------------------------------------------------------
// The generator

struct Person {
    name: Option<String>,
    email: String,
    lang: Lang,
    zone: i16,
    mailer: (&'static str, &'static str),
    /// Writes ISO-8859-1 instead of UTF-8 when the text allows it.
    latin1: bool,
}

/// What later messages need to know about an earlier one.
struct Meta {
    message_id: String,
    subject: String,
    from: usize,
    to: Vec<usize>,
    references: Vec<String>,
    date: MailDate,
    lang: Lang,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    Alternative,
    Related,
    Attachments,
    Forward,
}

struct Generator<'a> {
    opts: &'a GenerateOptions,
    rng: Xoshiro256PlusPlus,
    people: Vec<Person>,
    history: Vec<Meta>,
    start: i64,
    span: i64,
    index: usize,
    boundaries: u32,
}

impl<'a> Generator<'a> {
    fn new(opts: &'a GenerateOptions) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(opts.seed);
        let start = unix_from_civil(i64::from(opts.start_year), 1, 1, 0, 0, 0);
        let end = dates_end();
        let span = if end - start >= 30 * 86_400 {
            end - start
        } else {
            365 * 86_400
        };

        let n_people = (opts.count / 4).clamp(PEOPLE.len(), 300);
        let mut people = Vec::with_capacity(n_people);
        let mut used = HashSet::new();
        for i in 0..n_people {
            let (name, handle, lang) = match PEOPLE.get(i) {
                Some(&p) => p,
                None => PEOPLE[rng.random_range(0..PEOPLE.len())],
            };
            let domain = if rng.random_bool(0.7) {
                opts.domain.as_str()
            } else {
                OTHER_DOMAINS[rng.random_range(0..OTHER_DOMAINS.len())]
            };
            let mut email = format!("{handle}@{domain}");
            let mut n = 2;
            while !used.insert(email.clone()) {
                email = format!("{handle}{n}@{domain}");
                n += 1;
            }
            people.push(Person {
                name: (!rng.random_bool(0.1)).then(|| name.to_string()),
                email,
                lang,
                zone: ZONES[rng.random_range(0..ZONES.len())],
                mailer: MAILERS[rng.random_range(0..MAILERS.len())],
                latin1: lang.latin1() && lang != Lang::English && rng.random_bool(0.4),
            });
        }

        Generator {
            opts,
            rng,
            people,
            history: Vec::new(),
            start,
            span,
            index: 0,
            boundaries: 0,
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// A standard normal deviate (Irwin–Hall: sum of 12 uniforms minus 6).
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }

    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        det_exp(det_ln(median) + sigma * self.normal())
    }

    /// Target size of a whole message in bytes.
    fn target_size(&mut self) -> usize {
        let r = self.uniform();
        let size = if r < 0.006 {
            1_600_000.0 + self.uniform() * 1_000_000.0
        } else if r < 0.07 {
            self.lognormal(130_000.0, 0.7).clamp(50_000.0, 500_000.0)
        } else {
            self.lognormal(3_800.0, 0.7).clamp(900.0, 48_000.0)
        };
        size as usize
    }

    fn boundary(&mut self) -> String {
        self.boundaries += 1;
        format!(
            "----=_Part_{:x}_{}.{}",
            self.opts.seed, self.index, self.boundaries
        )
    }

    fn address(&self, who: usize) -> Address<'static> {
        let p = &self.people[who];
        Address::new_address(p.name.clone(), p.email.clone())
    }

    fn address_list(&self, who: &[usize]) -> Address<'static> {
        Address::new_list(who.iter().map(|&w| self.address(w)).collect())
    }

    fn display_name(&self, who: usize) -> String {
        let p = &self.people[who];
        p.name.clone().unwrap_or_else(|| p.email.clone())
    }

    fn other_people(&mut self, n: usize, exclude: &[usize]) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        let mut tries = 0;
        while out.len() < n && tries < n * 10 + 10 {
            tries += 1;
            let p = self.rng.random_range(0..self.people.len());
            if !exclude.contains(&p) && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// Builds message `index`; returns its From_ line and the message.
    fn message(&mut self, index: usize) -> (String, Vec<u8>) {
        self.index = index;
        self.boundaries = 0;
        let count = self.opts.count.max(1) as f64;

        // Delivery time: increasing through the file.
        let slot = (index as f64 + self.uniform()) / count;
        let delivered = self.start + (slot * self.span as f64) as i64;

        // Thread structure.
        let parent = if !self.history.is_empty() && self.chance(0.34) {
            let recent = self.history.len().min(60);
            let u = self.uniform();
            let back = ((u * u) * recent as f64) as usize;
            Some(self.history.len() - 1 - back.min(recent - 1))
        } else {
            None
        };

        let (from, to, mut cc) = match parent {
            Some(pi) => {
                let (p_from, p_to) = {
                    let p = &self.history[pi];
                    (p.from, p.to.clone())
                };
                let from = if !p_to.is_empty() && self.chance(0.85) {
                    p_to[self.rng.random_range(0..p_to.len())]
                } else {
                    self.rng.random_range(0..self.people.len())
                };
                let mut to = vec![p_from];
                if self.chance(0.3) {
                    to.extend(p_to.iter().copied().filter(|&t| t != from).take(3));
                }
                (from, to, Vec::new())
            }
            None => {
                let from = self.rng.random_range(0..self.people.len());
                let n_to = if self.chance(0.05) {
                    self.rng.random_range(8..30)
                } else {
                    self.rng.random_range(1..4)
                };
                let to = self.other_people(n_to, &[from]);
                (from, to, Vec::new())
            }
        };
        if self.chance(0.3) {
            let n = self.rng.random_range(1..6);
            let mut exclude = to.clone();
            exclude.push(from);
            cc = self.other_people(n, &exclude);
        }

        let sender_lang = self.people[from].lang;
        let zone = self.people[from].zone;
        let sent = MailDate {
            unix: delivered - self.rng.random_range(2..1800),
            offset_minutes: zone,
        };

        let message_id = format!(
            "{}-{}.{:016x}@{}",
            self.opts.seed,
            index,
            self.rng.next_u64(),
            self.opts.domain
        );

        let (subject, references, in_reply_to, quote) = match parent {
            Some(pi) => {
                let p = &self.history[pi];
                let mut refs: Vec<String> = p.references.iter().rev().take(9).cloned().collect();
                refs.reverse();
                refs.push(p.message_id.clone());
                let quote = (p.date, p.from, p.lang);
                (
                    p.subject.clone(),
                    refs,
                    Some(p.message_id.clone()),
                    Some(quote),
                )
            }
            None => {
                let subject = if self.chance(0.03) {
                    self.pick(MIXED_SUBJECTS).to_string()
                } else {
                    let s = self.pick(sender_lang.subjects());
                    if self.chance(0.3) {
                        format!("{s} #{}", self.rng.random_range(2..500))
                    } else {
                        s.to_string()
                    }
                };
                (subject, Vec::new(), None, None)
            }
        };

        let size = self.target_size();
        let kind = if size > 40_000 {
            match self.uniform() {
                r if r < 0.8 => Kind::Attachments,
                r if r < 0.88 => Kind::Forward,
                _ => Kind::Plain,
            }
        } else if parent.is_some() {
            match self.uniform() {
                r if r < 0.6 => Kind::Plain,
                r if r < 0.9 => Kind::Alternative,
                _ => Kind::Attachments,
            }
        } else {
            match self.uniform() {
                r if r < 0.45 => Kind::Plain,
                r if r < 0.68 => Kind::Alternative,
                r if r < 0.73 => Kind::Related,
                r if r < 0.9 => Kind::Attachments,
                _ => Kind::Forward,
            }
        };

        // Headers first: about 1 KB of them, with Received lines.
        let mut builder = MessageBuilder::new();
        let rcpt = to.first().map_or_else(
            || self.people[from].email.clone(),
            |&t| self.people[t].email.clone(),
        );
        builder = builder.header(
            "Return-Path",
            Raw::new(format!("<{}>", self.people[from].email)),
        );
        let hops = self.rng.random_range(1..4);
        for hop in 0..hops {
            let at = MailDate {
                unix: delivered - (hop as i64) * self.rng.random_range(1..30),
                offset_minutes: 0,
            };
            let id: u64 = self.rng.next_u64();
            let (ip_a, ip_b) = (self.rng.random_range(1..255), self.rng.random_range(1..255));
            let line = if hop == 0 {
                format!(
                    "from mx{}.{d} (mx{}.{d} [198.51.100.{ip_a}]) by imap.{d} (Dovecot) with LMTP id {id:016X} for <{rcpt}>; {}",
                    ip_a % 3 + 1,
                    ip_a % 3 + 1,
                    at.rfc5322_format(),
                    d = self.opts.domain
                )
            } else {
                format!(
                    "from smtp{ip_b}.example.net (smtp{ip_b}.example.net [203.0.113.{ip_b}]) by mx{}.{} (Postfix) with ESMTPS id {:X}; {}",
                    ip_a % 3 + 1,
                    self.opts.domain,
                    id >> 24,
                    at.rfc5322_format()
                )
            };
            builder = builder.header("Received", Raw::new(line));
        }
        builder = builder
            .header("Date", Raw::new(sent.rfc5322_format()))
            .from(self.address(from));
        if to.len() > 6 && self.chance(0.5) {
            // Mailing list post.
            let list = format!("dev@lists.{}", self.opts.domain);
            builder = builder
                .to(Address::new_address(Some("Developers"), list.clone()))
                .header(
                    "List-Id",
                    Raw::new(format!("Developers <dev.lists.{}>", self.opts.domain)),
                )
                .header(
                    "List-Unsubscribe",
                    URL::new(format!("mailto:dev-unsubscribe@lists.{}", self.opts.domain)),
                );
        } else {
            builder = builder.to(self.address_list(&to));
        }
        if !cc.is_empty() {
            builder = builder.cc(self.address_list(&cc));
        }
        let subject_line = match (parent, kind) {
            (Some(_), _) => format!("Re: {subject}"),
            (None, Kind::Forward) => String::new(), // set below
            (None, _) => subject.clone(),
        };
        builder = builder.message_id(message_id.clone());
        if let Some(irt) = &in_reply_to {
            builder = builder
                .in_reply_to(irt.clone())
                .references(references.clone());
        }
        let (mailer_header, mailer) = self.people[from].mailer;
        builder = builder.header(mailer_header, Raw::new(mailer));
        if self.chance(0.03) {
            builder = builder.header("Importance", Raw::new("high"));
        }

        let header_overhead = 900 + 60 * (to.len() + cc.len());
        let body_budget = size.saturating_sub(header_overhead).max(200);

        let mut subject_line = subject_line;
        let body = match kind {
            Kind::Plain => {
                let text = self.body_text(from, body_budget, quote);
                self.text_part(from, text)
            }
            Kind::Alternative => {
                let text_budget = body_budget * 2 / 5;
                let text = self.body_text(from, text_budget.max(100), quote);
                let html = to_html(&text, sender_lang);
                let b = self.boundary();
                MimePart::new(
                    ContentType::new("multipart/alternative").attribute("boundary", b),
                    vec![
                        self.text_leaf("text/plain", text),
                        self.text_leaf("text/html", html),
                    ],
                )
            }
            Kind::Related => {
                let img = body_budget / 2;
                let text = self.body_text(from, (body_budget / 5).max(100), quote);
                let cid = format!("img{index}.{}@{}", self.boundaries, self.opts.domain);
                let html = to_html(&text, sender_lang).replace(
                    "</body>",
                    &format!("<p><img src=\"cid:{cid}\" alt=\"logo\"></p>\n</body>"),
                );
                let png = self.binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", img * 3 / 4);
                let (b_alt, b_rel) = (self.boundary(), self.boundary());
                MimePart::new(
                    ContentType::new("multipart/alternative").attribute("boundary", b_alt),
                    vec![
                        self.text_leaf("text/plain", text),
                        MimePart::new(
                            ContentType::new("multipart/related")
                                .attribute("type", "text/html")
                                .attribute("boundary", b_rel),
                            vec![
                                self.text_leaf("text/html", html),
                                MimePart::new("image/png", png).inline().cid(cid),
                            ],
                        ),
                    ],
                )
            }
            Kind::Attachments => {
                let text_budget = self.rng.random_range(200..2500).min(body_budget);
                let text = self.body_text(from, text_budget, quote);
                let mut parts = vec![if self.chance(0.3) {
                    let html = to_html(&text, sender_lang);
                    let b = self.boundary();
                    MimePart::new(
                        ContentType::new("multipart/alternative").attribute("boundary", b),
                        vec![
                            self.text_leaf("text/plain", text),
                            self.text_leaf("text/html", html),
                        ],
                    )
                } else {
                    self.text_part(from, text)
                }];
                let raw_budget = body_budget.saturating_sub(text_budget) * 100 / 137;
                let n = if self.chance(0.7) {
                    1
                } else {
                    self.rng.random_range(2..5)
                };
                let mut left = raw_budget;
                for k in 0..n {
                    let share = if k + 1 == n {
                        left
                    } else {
                        (left as f64 * (0.3 + 0.5 * self.uniform())) as usize
                    };
                    left -= share;
                    parts.push(self.attachment(share.max(64)));
                }
                let b = self.boundary();
                MimePart::new(
                    ContentType::new("multipart/mixed").attribute("boundary", b),
                    parts,
                )
            }
            Kind::Forward => {
                let (inner, inner_subject) = self.forwarded(body_budget.saturating_sub(600));
                subject_line = format!("Fwd: {inner_subject}");
                let note_len = self.rng.random_range(80..600);
                let note = self.body_text(from, note_len, None);
                let text = format!("{note}\n---------- Forwarded message ----------\n");
                let mut rfc822 = MimePart::new("message/rfc822", inner);
                rfc822 = if self.chance(0.5) {
                    rfc822.inline()
                } else {
                    rfc822.attachment("forwarded message.eml")
                };
                let b = self.boundary();
                MimePart::new(
                    ContentType::new("multipart/mixed").attribute("boundary", b),
                    vec![self.text_part(from, text), rfc822.transfer_encoding("7bit")],
                )
            }
        };
        builder = builder
            .header("Subject", subject_header(&subject_line))
            .body(body);

        let base_subject = if kind == Kind::Forward && parent.is_none() {
            subject_line
        } else {
            subject
        };
        self.history.push(Meta {
            message_id: message_id.clone(),
            subject: base_subject,
            from,
            to,
            references,
            date: sent,
            lang: sender_lang,
        });

        let from_line = format!(
            "From {} {}",
            self.people[from].email,
            MailDate {
                unix: delivered,
                offset_minutes: 0
            }
            .asctime_format()
        );
        let mut data = Vec::with_capacity(size + 1024);
        builder.serialize(&mut data);
        (from_line, data)
    }

    /// A text/plain part for `from`: UTF-8, or ISO-8859-1 for some western senders.
    fn text_part(&mut self, from: usize, text: String) -> MimePart<'static> {
        let (latin1, lang) = (self.people[from].latin1, self.people[from].lang);
        if latin1 && let Some(bytes) = to_latin1(&text) {
            let part = MimePart::new(
                ContentType::new("text/plain").attribute("charset", "iso-8859-1"),
                bytes,
            );
            // Mostly quoted-printable (chosen by mail-builder), sometimes raw 8bit.
            return if self.chance(0.2) {
                part.transfer_encoding("8bit")
            } else {
                part
            };
        }
        let part = self.text_leaf("text/plain", text);
        if lang != Lang::English && self.chance(0.3) {
            part.language(lang.code())
        } else {
            part
        }
    }

    /// A UTF-8 text part. ASCII text is sent as 7bit (as mail clients do, even with a
    /// `-- ` signature line); other text as quoted-printable or base64 (whichever
    /// mail-builder finds shorter), or now and then as raw 8bit.
    fn text_leaf(&mut self, ctype: &'static str, text: String) -> MimePart<'static> {
        let short_lines = text.lines().all(|l| l.len() <= 998);
        let ascii = text.is_ascii();
        let raw8 = !ascii && self.chance(0.2);
        let part = MimePart::new(ctype, text);
        if short_lines && ascii {
            part.transfer_encoding("7bit")
        } else if short_lines && raw8 {
            part.transfer_encoding("8bit")
        } else {
            part
        }
    }

    /// Body text of about `budget` bytes: optional quote of a parent, paragraphs,
    /// signature.
    fn body_text(
        &mut self,
        from: usize,
        budget: usize,
        quote: Option<(MailDate, usize, Lang)>,
    ) -> String {
        let lang = self.people[from].lang;
        let mut out = String::with_capacity(budget + 256);
        let greeting = match lang {
            Lang::English => "Hi,",
            Lang::French => "Bonjour,",
            Lang::German => "Hallo zusammen,",
            Lang::Spanish => "Hola,",
            Lang::Russian => "Здравствуйте,",
            Lang::Greek => "Γεια σας,",
            Lang::Japanese => "お世話になっております。",
            Lang::Chinese => "大家好，",
            Lang::Korean => "안녕하세요,",
            Lang::Arabic => "مرحبا،",
            Lang::Hebrew => "שלום,",
        };
        out.push_str(greeting);
        out.push_str("\n\n");

        let sig_budget = 120;
        let mut quote_budget = 0;
        if let Some((date, who, qlang)) = quote {
            quote_budget = (budget / 3).min(3000);
            let mut q = String::new();
            self.paragraphs(qlang, quote_budget, &mut q);
            let mut quoted = String::new();
            for line in q.lines() {
                quoted.push('>');
                if !line.is_empty() {
                    quoted.push(' ');
                    quoted.push_str(line);
                }
                quoted.push('\n');
            }
            // The reply goes on top now and then, below the quote otherwise.
            let intro = format!(
                "On {}, {} wrote:\n",
                date.rfc5322_format(),
                self.display_name(who)
            );
            if self.chance(0.5) {
                out.push_str(&intro);
                out.push_str(&quoted);
                out.push('\n');
            } else {
                let mut tail = String::new();
                tail.push_str(&intro);
                tail.push_str(&quoted);
                let own = budget.saturating_sub(quote_budget + sig_budget + out.len());
                self.paragraphs(lang, own.max(40), &mut out);
                end_paragraph(&mut out);
                out.push_str(&tail);
                self.signature(from, &mut out);
                end_text(&mut out);
                return out;
            }
        }
        let own = budget.saturating_sub(quote_budget + sig_budget + out.len());
        self.paragraphs(lang, own.max(40), &mut out);
        // Now and then a line that is a valid mbox From_ line, to exercise escaping.
        if lang == Lang::English && self.chance(0.03) {
            end_paragraph(&mut out);
            out.push_str("From the old archive, the separator looked like this:\n\nFrom MAILER-DAEMON Thu Jan  1 00:00:00 2009\n");
        }
        self.signature(from, &mut out);
        end_text(&mut out);
        out
    }

    fn signature(&mut self, from: usize, out: &mut String) {
        if self.chance(0.7) {
            end_paragraph(out);
            out.push_str("-- \n");
            out.push_str(&self.display_name(from));
            out.push('\n');
            if self.people[from].name.is_some() && self.chance(0.5) {
                out.push_str(&self.people[from].email);
                out.push('\n');
            }
        }
    }

    /// Appends wrapped paragraphs in `lang` until about `budget` bytes were added.
    fn paragraphs(&mut self, lang: Lang, budget: usize, out: &mut String) {
        let end = out.len() + budget;
        let words = lang.words();
        let sep = if lang.no_spaces() { "" } else { " " };
        let width = if lang.no_spaces() { 60 } else { 72 };
        while out.len() < end {
            let mut line_len = 0;
            let sentences = self.rng.random_range(2..7);
            // Some English paragraphs start with "From ", which mbox must escape.
            if lang == Lang::English && self.chance(0.015) {
                out.push_str("From what I can tell,");
                line_len = 21;
            }
            for _ in 0..sentences {
                let n = self.rng.random_range(4..16);
                for w in 0..n {
                    let mut word = words[self.rng.random_range(0..words.len())].to_string();
                    if w == 0 && !lang.no_spaces() {
                        capitalize(&mut word);
                    }
                    if w + 1 == n {
                        word.push_str(lang.full_stop());
                    }
                    let add = if line_len == 0 { 0 } else { sep.len() } + word.len();
                    if line_len > 0 && line_len + add > width {
                        out.push('\n');
                        line_len = 0;
                    } else if line_len > 0 {
                        out.push_str(sep);
                    }
                    out.push_str(&word);
                    line_len += word.len() + if line_len == 0 { 0 } else { sep.len() };
                }
            }
            out.push_str("\n\n");
        }
    }

    /// `len` bytes of pseudo-random binary content starting with `magic`.
    fn binary(&mut self, magic: &[u8], len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len.max(magic.len())];
        data[..magic.len()].copy_from_slice(magic);
        self.rng.fill_bytes(&mut data[magic.len()..]);
        data
    }

    /// An attachment of about `len` raw bytes.
    fn attachment(&mut self, len: usize) -> MimePart<'static> {
        if self.chance(0.12) {
            // A text attachment: CSV.
            let mut csv = String::from("id,date,host,bytes,status\n");
            let mut n = 0u32;
            while csv.len() < len {
                n += 1;
                let line = format!(
                    "{n},2024-{:02}-{:02},host{}.{},{},{}\n",
                    self.rng.random_range(1..13),
                    self.rng.random_range(1..29),
                    self.rng.random_range(1..50),
                    self.opts.domain,
                    self.rng.random_range(0..10_000_000),
                    self.pick(&["ok", "ok", "ok", "failed", "retry"])
                );
                csv.push_str(&line);
            }
            let name = format!("export-{}.csv", self.rng.random_range(1..1000));
            return MimePart::new("text/csv", csv).attachment(name);
        }
        let (ctype, stem, ext, magic) = self.pick(ATTACHMENT_TYPES);
        let data = self.binary(magic, len);
        let name = if stem.ends_with('_') {
            format!("{stem}{:04}.{ext}", self.rng.random_range(0..10_000))
        } else {
            format!("{stem}.{ext}")
        };
        MimePart::new(ctype, data).attachment(name)
    }

    /// A forwarded message (serialized) of about `budget` bytes and its subject.
    fn forwarded(&mut self, budget: usize) -> (Vec<u8>, String) {
        let (id, subject, from, to, date) = if self.history.is_empty() {
            let from = self.rng.random_range(0..self.people.len());
            let to = self.other_people(1, &[from]);
            let id = format!("{}-{}.fwd@{}", self.opts.seed, self.index, self.opts.domain);
            let date = MailDate {
                unix: self.start,
                offset_minutes: self.people[from].zone,
            };
            (id, "Original message".to_string(), from, to, date)
        } else {
            let i = self.rng.random_range(0..self.history.len());
            let m = &self.history[i];
            (
                m.message_id.clone(),
                m.subject.clone(),
                m.from,
                m.to.clone(),
                m.date,
            )
        };
        let mut inner = MessageBuilder::new()
            .header("Date", Raw::new(date.rfc5322_format()))
            .from(self.address(from))
            .to(self.address_list(&to))
            .header("Subject", subject_header(&subject))
            .message_id(id);
        let text = self.body_text(from, budget.min(4000), None);
        let body = if budget > 8000 {
            let b = self.boundary();
            let att = self.attachment((budget - 4000) * 100 / 137);
            MimePart::new(
                ContentType::new("multipart/mixed").attribute("boundary", b),
                vec![self.text_part(from, text), att],
            )
        } else if self.chance(0.5) {
            let html = to_html(&text, self.people[from].lang);
            let b = self.boundary();
            MimePart::new(
                ContentType::new("multipart/alternative").attribute("boundary", b),
                vec![
                    self.text_leaf("text/plain", text),
                    self.text_leaf("text/html", html),
                ],
            )
        } else {
            self.text_part(from, text)
        };
        inner = inner.body(body);
        let mut data = Vec::new();
        inner.serialize(&mut data);
        (data, subject)
    }
}

/// Ends `text` with exactly one blank line.
fn end_paragraph(text: &mut String) {
    let trimmed = text.trim_end_matches('\n').len();
    text.truncate(trimmed);
    text.push_str("\n\n");
}

/// Ends `text` with exactly one newline.
fn end_text(text: &mut String) {
    let trimmed = text.trim_end_matches('\n').len();
    text.truncate(trimmed);
    text.push('\n');
}

/// ASCII subjects are only folded (mail-builder would turn a long one into
/// `us-ascii` encoded-words, which mail clients do not); others become RFC 2047
/// encoded-words.
fn subject_header(subject: &str) -> mail_builder::headers::HeaderType<'static> {
    if subject.is_ascii() {
        Raw::new(subject.to_string()).into()
    } else {
        Text::new(subject.to_string()).into()
    }
}

fn capitalize(word: &mut String) {
    if let Some(first) = word.chars().next()
        && first.is_lowercase()
    {
        let upper: String = first.to_uppercase().collect();
        word.replace_range(..first.len_utf8(), &upper);
    }
}

/// ISO-8859-1 bytes of `text`, if every character fits.
fn to_latin1(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

/// A simple HTML rendering of a plain text body.
fn to_html(text: &str, lang: Lang) -> String {
    let dir = if matches!(lang, Lang::Arabic | Lang::Hebrew) {
        " dir=\"rtl\""
    } else {
        ""
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"{dir}>\n<head>\n<meta charset=\"utf-8\">\n<style>body {{ font-family: sans-serif; font-size: 14px; }} blockquote {{ border-left: 2px solid #ccc; padding-left: 8px; }}</style>\n</head>\n<body>\n",
        lang.code()
    );
    for para in text.split("\n\n") {
        if para.trim().is_empty() {
            continue;
        }
        let quoted = para.starts_with('>');
        html.push_str(if quoted { "<blockquote><p>" } else { "<p>" });
        for (i, line) in para.lines().enumerate() {
            if i > 0 {
                html.push_str("<br>\n");
            }
            let line = if quoted {
                line.trim_start_matches('>').trim_start()
            } else {
                line
            };
            for c in line.chars() {
                match c {
                    '<' => html.push_str("&lt;"),
                    '>' => html.push_str("&gt;"),
                    '&' => html.push_str("&amp;"),
                    _ => html.push(c),
                }
            }
        }
        html.push_str(if quoted {
            "</p></blockquote>\n"
        } else {
            "</p>\n"
        });
    }
    html.push_str("</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_ln() {
        for x in [-3.0, -0.5, 0.0, 0.1, 1.0, 2.5, 10.0, 14.0] {
            let e = det_exp(x);
            assert!((e - f64::exp(x)).abs() <= e * 1e-12, "{x}");
            assert!((det_ln(e) - x).abs() < 1e-9, "{x}");
        }
    }

    #[test]
    fn escaping() {
        let mut out = Vec::new();
        append_escaped(b"a\nFrom x\r\n>From y\nlast", &mut out);
        assert_eq!(out, b"a\r\n>From x\r\n>From y\r\nlast\r\n");
    }
}
