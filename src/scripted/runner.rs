//! Running one parsed test against the server: connections, setup for the requested
//! state, command groups, and the checks of the C tool.

use std::time::{Duration, Instant};

use super::args::{self, Arg, Display};
use super::matcher::{FULL, Vars};
use super::mbox::MboxSource;
use super::parser::{Existence, Group, MessageCount, StartState, Test, USER2};
use super::report::{Outcome, TestResult};
use crate::config::{Common, ScriptedSettings, TlsMode};
use crate::imap::framer::FramerLimits;
use crate::imap::stream::{ImapStream, StreamError};
use crate::limits::MAX_TRACKED_MESSAGES;
use crate::metrics::{Event, Metrics};
use crate::net::{Deadline, Endpoint, Rawlog};
use crate::ops::Op;
use crate::ops::Outcome as Reply;
use crate::users::User;

/// Everything shared by the tests of one run.
pub struct RunContext<'a> {
    pub common: &'a Common,
    pub scripted: &'a ScriptedSettings,
    /// Gets every command's reply time, when the run records metrics.
    pub metrics: Option<&'a Metrics>,
    pub endpoint: &'a Endpoint,
    /// Next connection id (the first part of tags: `<id>.<n>`).
    pub next_conn_id: u64,
}

/// A server response, split into what the checks need.
#[derive(Debug)]
enum Resp {
    Untagged(Vec<Arg>),
    Tagged {
        tag: String,
        args: Vec<Arg>,
        /// The reply line after the tag, for messages.
        text: String,
    },
    Continuation,
}

fn classify(raw: &[u8]) -> Resp {
    let end = memchr::memchr(b' ', raw).unwrap_or(raw.len());
    let word = raw.get(..end).unwrap_or_default();
    let rest = raw.get(end + 1..).unwrap_or_default();
    match word {
        b"*" => Resp::Untagged(args::parse_lenient(rest)),
        b"+" => Resp::Continuation,
        _ if word.starts_with(b"+") => Resp::Continuation,
        _ => Resp::Tagged {
            tag: String::from_utf8_lossy(word).trim_end().to_owned(),
            args: args::parse_lenient(rest),
            text: String::from_utf8_lossy(super::args::first_line(rest)).into_owned(),
        },
    }
}

fn is_atom(arg: Option<&Arg>, word: &str) -> bool {
    arg.and_then(Arg::as_atom)
        .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
}

/// Capabilities in `CAPABILITY a b c` or `OK [CAPABILITY a b c] text`.
fn capabilities_in(args: &[Arg]) -> Option<Vec<String>> {
    let name = |a: &Arg| a.as_atom().map(|s| String::from_utf8_lossy(s).into_owned());
    if is_atom(args.first(), "CAPABILITY") {
        return Some(args.iter().skip(1).filter_map(name).collect());
    }
    let first = args.get(1).and_then(Arg::as_atom)?;
    if !first.eq_ignore_ascii_case(b"[CAPABILITY") {
        return None;
    }
    let mut caps = Vec::new();
    for a in args.iter().skip(2) {
        let s = name(a)?;
        if let Some(last) = s.strip_suffix(']') {
            if !last.is_empty() {
                caps.push(last.to_owned());
            }
            break;
        }
        caps.push(s);
    }
    Some(caps)
}

/// IMAP quoted string (`"` and `\` escaped).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Modified UTF-7 (RFC 3501 §5.1.3) to UTF-8; invalid input is returned unchanged.
pub fn mutf7_to_utf8(s: &str) -> String {
    fn decode(s: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            rest = &rest[amp + 1..];
            let end = rest.find('-')?;
            let b64 = &rest[..end];
            rest = &rest[end + 1..];
            if b64.is_empty() {
                out.push('&');
                continue;
            }
            let mut bits = 0u32;
            let mut nbits = 0;
            let mut units = Vec::new();
            for c in b64.bytes() {
                let v = match c {
                    b'A'..=b'Z' => c - b'A',
                    b'a'..=b'z' => c - b'a' + 26,
                    b'0'..=b'9' => c - b'0' + 52,
                    b'+' => 62,
                    b',' => 63,
                    _ => return None,
                };
                bits = (bits << 6) | u32::from(v);
                nbits += 6;
                if nbits >= 16 {
                    nbits -= 16;
                    units.push(((bits >> nbits) & 0xffff) as u16);
                }
            }
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        out.push_str(rest);
        Some(out)
    }
    decode(s).unwrap_or_else(|| s.to_owned())
}

/// Percent-encodes a mailbox name for an IMAP URL path (`;` encoded too).
pub fn url_path_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Conn {
    stream: Option<ImapStream>,
    id: u64,
    next_tag: u32,
    caps: Vec<String>,
    postlogin_caps: bool,
    /// UID of each message of the selected mailbox by sequence (0: not known yet).
    uids: Vec<u32>,
    seen_bye: bool,
    logout_sent: bool,
    /// Mailbox that `append` (alone) appends to: the test mailbox, then the last SELECTed.
    cur_box: String,
    user: String,
    password: String,
}

impl Conn {
    fn next_tag(&mut self) -> (String, u32) {
        let n = self.next_tag;
        self.next_tag += 1;
        (format!("{}.{n}", self.id), n)
    }

    fn has_cap(&self, name: &str) -> bool {
        self.caps.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    async fn send(&mut self, bytes: &[u8], secret_from: Option<usize>) -> Result<(), StreamError> {
        match &mut self.stream {
            Some(s) => s.send(bytes, secret_from).await,
            None => Err(StreamError::Closed),
        }
    }

    /// The next response; each read waits at most `timeout=`, and none past `deadline`.
    async fn read(&mut self, deadline: Deadline) -> Result<Vec<u8>, StreamError> {
        match &mut self.stream {
            Some(s) => s
                .read_response_by(Some(deadline))
                .await
                .map(|r| r.bytes().to_vec()),
            None => Err(StreamError::Closed),
        }
    }

    /// The whole of a command (or a group's commands) must complete within this.
    fn deadline(&self) -> Deadline {
        Deadline::after(self.stream.as_ref().map_or(Duration::ZERO, |s| s.timeout()))
    }

    /// Messages in the selected mailbox.
    fn exists(&self) -> u32 {
        u32::try_from(self.uids.len()).unwrap_or(u32::MAX)
    }

    /// State tracking for one untagged reply: capabilities, BYE, and the mailbox view
    /// (message count and UIDs). Returns the protocol violations the C tool treats as
    /// input errors (it then drops the connection).
    fn track(&mut self, args: &[Arg], vars: Option<&mut Vars>) -> Result<(), String> {
        if let Some(caps) = capabilities_in(args) {
            self.caps = caps;
        }
        if is_atom(args.first(), "BYE") {
            self.seen_bye = true;
        }
        if is_atom(args.first(), "VANISHED") && !matches!(args.get(1), Some(Arg::List(_))) {
            // QRESYNC's EXPUNGE.
            let set = args.get(1).and_then(Arg::as_atom).unwrap_or_default();
            let Some(set) = crate::imap::response::SeqSet::parse(set) else {
                return Err("Invalid VANISHED sequence-set".into());
            };
            let before = self.uids.len();
            self.uids.retain(|u| *u == 0 || !set.contains(*u));
            let mut unknown = usize::try_from(set.count())
                .unwrap_or(usize::MAX)
                .saturating_sub(before - self.uids.len());
            // UIDs never fetched: only the count can be kept (the last unknown ones
            // go, in one pass however large the set).
            let mut keep = vec![true; self.uids.len()];
            for (i, uid) in self.uids.iter().enumerate().rev() {
                if unknown == 0 {
                    break;
                }
                if *uid == 0 {
                    keep[i] = false;
                    unknown -= 1;
                }
            }
            let mut kept = keep.into_iter();
            self.uids.retain(|_| kept.next().unwrap_or(true));
        }
        let num = args
            .first()
            .and_then(Arg::as_atom)
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|a| a.parse::<u32>().ok());
        let Some(n) = num else { return Ok(()) };
        let count = self.uids.len();
        let seq = n as usize;
        if is_atom(args.get(1), "EXISTS") {
            if seq < count {
                self.uids.truncate(seq);
                return Err(format!("Message count dropped {count} -> {n}"));
            }
            if n > MAX_TRACKED_MESSAGES {
                return Err(format!(
                    "EXISTS {n} is more than the {MAX_TRACKED_MESSAGES} messages imaptest tracks per mailbox (docs/limits.md)"
                ));
            }
            self.uids.resize(seq, 0);
        } else if is_atom(args.get(1), "EXPUNGE") {
            if n == 0 {
                return Err("Tried to expunge sequence 0".into());
            }
            if seq > count {
                return Err(format!(
                    "Tried to expunge sequence {n} with only {count} msgs"
                ));
            }
            self.uids.remove(seq - 1);
            if let Some(v) = vars {
                v.expunge(n);
            }
        } else if is_atom(args.get(1), "FETCH") && n > 0 && seq <= count {
            let Some(items) = args.get(2).and_then(Arg::as_list) else {
                return Err("FETCH didn't return a list".into());
            };
            let uid = items
                .chunks(2)
                .find(|kv| is_atom(kv.first(), "UID"))
                .and_then(|kv| kv.get(1));
            if let Some(uid) = uid {
                let value = uid.as_atom().unwrap_or_default();
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|&u| u > 0);
                let Some(uid) = parsed else {
                    return Err(format!("Invalid UID number {}", lossy(value)));
                };
                let slot = &mut self.uids[seq - 1];
                if *slot != 0 && *slot != uid {
                    let old = *slot;
                    *slot = uid;
                    return Err(format!("UID changed for sequence {n}: {old} -> {uid}"));
                }
                *slot = uid;
            }
        }
        Ok(())
    }
}

/// Why a command during setup did not complete.
enum SetupError {
    Failed(String),
    Io(String),
}

/// Per-group matching state.
#[derive(Default)]
struct GroupState {
    found: Vec<bool>,
    /// Best partial match per expectation: (matched elements, reply).
    maybes: Vec<(usize, Option<Vec<Arg>>)>,
    mismatches: usize,
    first_extra: Option<String>,
    tag: Option<String>,
}

/// How a group ended.
enum GroupEnd {
    Done,
    /// The test cannot continue (disconnection, timeout).
    Abort,
}

/// One test being executed.
pub struct TestRun<'a, 'c> {
    ctx: &'c mut RunContext<'a>,
    test: &'c Test,
    conns: Vec<Conn>,
    vars: Vars,
    source: Option<MboxSource>,
    result: TestResult,
    init_finished: bool,
    cur_group: usize,
    state: GroupState,
    /// Matching the greeting (before setup).
    in_banner: bool,
    /// The user of connections without a `user N:` header.
    user: User,
}

impl<'a, 'c> TestRun<'a, 'c> {
    pub fn new(ctx: &'c mut RunContext<'a>, test: &'c Test, user: User) -> Self {
        let result = TestResult::new(test);
        TestRun {
            ctx,
            test,
            conns: Vec::new(),
            vars: Vars::new(test.modseq_rule),
            source: None,
            result,
            init_finished: false,
            cur_group: 0,
            state: GroupState::default(),
            in_banner: false,
            user,
        }
    }

    fn fail(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        let text = if !self.init_finished && !self.in_banner {
            format!(
                "*** Test {} initialization failed: {reason}",
                self.test.name
            )
        } else {
            let total = self.test.groups.len();
            let group = self.test.groups.get(self.cur_group);
            let line = group.map_or(0, Group::line);
            let mut s = format!(
                "*** Test {} command {}/{total} (line {line})\n - failed: {reason}\n",
                self.test.name,
                self.cur_group + 1
            );
            match group.and_then(|g| g.commands.first()) {
                Some(cmd) => {
                    let tag = self
                        .state
                        .tag
                        .as_deref()
                        .map(|t| format!(" (tag {t})"))
                        .unwrap_or_default();
                    s.push_str(&format!(" - Command{tag}: {}", lossy(&cmd.text)));
                }
                None => s.push_str(" - Greeting check"),
            }
            s
        };
        self.result.add_failure(text);
    }

    fn count_group(&mut self) {
        self.result.commands_run += 1;
    }

    /// Runs the test and returns its result.
    pub async fn run(mut self) -> TestResult {
        let started = Instant::now();
        if let Some(missing) = self.user2_missing() {
            self.result.outcome = Outcome::Skipped(missing);
        } else if self.setup().await {
            self.init_finished = true;
            while self.cur_group < self.test.groups.len() {
                match self.run_group().await {
                    GroupEnd::Done => self.cur_group += 1,
                    GroupEnd::Abort => break,
                }
            }
        }
        for c in &mut self.conns {
            if let Some(s) = &mut c.stream {
                s.shutdown().await;
            }
            c.stream = None;
        }
        self.result.elapsed = started.elapsed();
        if !self.result.failures.is_empty() {
            self.result.outcome = Outcome::Failed;
        }
        self.result
    }

    fn user2_missing(&self) -> Option<String> {
        (self.test.require_user2 && self.ctx.common.user.user2.is_none())
            .then(|| "needs user2=".to_owned())
    }

    /// (name, password) of connection `i`.
    fn user_for(&self, i: usize) -> (String, String) {
        let password = self.ctx.common.user.password.clone();
        match self.test.users.get(i).and_then(Option::as_deref) {
            Some(USER2) => (
                self.ctx.common.user.user2.clone().unwrap_or_default(),
                password,
            ),
            Some(u) => (u.to_owned(), password),
            None => (self.user.name.clone(), self.user.password.clone()),
        }
    }

    async fn connect(&mut self, i: usize) -> Result<Conn, String> {
        let (common, scripted) = (self.ctx.common, self.ctx.scripted);
        let id = self.ctx.next_conn_id;
        self.ctx.next_conn_id += 1;
        let (transport, peer) = self
            .ctx
            .endpoint
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let rawlog = match &common.rawlog {
            Some(dir) => Some(
                Rawlog::create(dir, id)
                    .map_err(|e| format!("cannot create rawlog in {}: {e}", dir.display()))?,
            ),
            None => None,
        };
        let limits = FramerLimits {
            max_line: 16 * 1024 * 1024,
            max_literal: 64 * 1024 * 1024,
        };
        let stream = ImapStream::new(transport, peer, limits, rawlog, common.timeout);
        let (user, password) = self.user_for(i);
        Ok(Conn {
            stream: Some(stream),
            id,
            next_tag: 1,
            caps: Vec::new(),
            postlogin_caps: false,
            uids: Vec::new(),
            seen_bye: false,
            logout_sent: false,
            cur_box: scripted.mailbox.clone(),
            user,
            password,
        })
    }

    fn set_variables(&mut self) {
        for (i, c) in self.conns.iter().enumerate() {
            let suffix = if i == 0 {
                String::new()
            } else {
                (i + 1).to_string()
            };
            let (username, domain) = match c.user.split_once('@') {
                Some((u, d)) => (u.to_owned(), d.to_owned()),
                None => (c.user.clone(), self.ctx.common.host.clone()),
            };
            self.vars.set(&format!("user{suffix}"), c.user.clone());
            self.vars.set(&format!("username{suffix}"), username);
            self.vars.set(&format!("domain{suffix}"), domain);
            self.vars
                .set(&format!("password{suffix}"), c.password.clone());
        }
        let mailbox = self.ctx.scripted.mailbox.clone();
        self.vars
            .set("mailbox_url", url_path_encode(&mutf7_to_utf8(&mailbox)));
        self.vars.set("mailbox", mailbox);
    }

    /// Connects and brings every connection to the test's start state. False if the
    /// test cannot run (failed or skipped; the result says which).
    async fn setup(&mut self) -> bool {
        for i in 0..self.test.connections {
            match self.connect(i).await {
                Ok(c) => self.conns.push(c),
                Err(e) => {
                    self.fail(format!("connect failed: {e}"));
                    return false;
                }
            }
        }
        self.set_variables();
        for i in 0..self.conns.len() {
            let deadline = self.conns[i].deadline();
            let greeting = match self.conns[i].read(deadline).await {
                Ok(g) => g,
                Err(e) => {
                    self.fail(format!("no greeting: {e}"));
                    return false;
                }
            };
            let args = match classify(&greeting) {
                Resp::Untagged(a) => a,
                _ => {
                    self.fail(format!(
                        "malformed greeting: {}",
                        lossy(&greeting).trim_end()
                    ));
                    return false;
                }
            };
            let _ = self.conns[i].track(&args, None);
            if i == 0 && self.test.have_banner_check {
                self.state = GroupState::default();
                self.in_banner = true;
                self.handle_untagged(&args);
                self.finish_group().await;
                self.in_banner = false;
                self.cur_group = 1;
            }
            if is_atom(args.first(), "BYE") {
                self.fail(format!("server said BYE: {}", Display(&args)));
                return false;
            }
            if self.ctx.common.tls.mode == TlsMode::StartTls
                && let Err(e) = self.start_tls(i).await
            {
                self.fail(e);
                return false;
            }
        }
        match self.setup_state().await {
            Ok(true) => true,
            Ok(false) => false,
            Err(SetupError::Failed(e)) => {
                self.fail(e);
                false
            }
            Err(SetupError::Io(e)) => {
                self.fail(e);
                false
            }
        }
    }

    async fn start_tls(&mut self, i: usize) -> Result<(), String> {
        self.command(i, "STARTTLS", None)
            .await
            .map_err(|e| match e {
                SetupError::Failed(s) | SetupError::Io(s) => s,
            })?;
        let conn = &mut self.conns[i];
        let stream = conn.stream.take().ok_or("connection closed")?;
        conn.stream = Some(
            stream
                .start_tls(self.ctx.endpoint)
                .await
                .map_err(|e| format!("STARTTLS failed: {e}"))?,
        );
        conn.caps.clear();
        Ok(())
    }

    /// Sends one setup command and waits for its tagged reply. Untagged replies go to
    /// the state tracking and, for LIST/LSUB, to `listed`.
    async fn command_full(
        &mut self,
        i: usize,
        line: &str,
        literal: Option<&[u8]>,
        mut listed: Option<&mut Vec<String>>,
        ignore_no: bool,
    ) -> Result<Vec<Arg>, SetupError> {
        let conn = &mut self.conns[i];
        let (tag, _) = conn.next_tag();
        let mut bytes = format!("{tag} {line}\r\n").into_bytes();
        let secret = line
            .starts_with("LOGIN ")
            .then(|| tag.len() + 1 + "LOGIN ".len());
        let mut wait_continuation = false;
        if let Some(lit) = literal {
            if conn.has_cap("LITERAL+") {
                bytes.extend_from_slice(lit);
                bytes.extend_from_slice(b"\r\n");
            } else {
                wait_continuation = true;
            }
        }
        // Never show the password.
        let shown = if line.starts_with("LOGIN ") {
            "LOGIN".to_owned()
        } else {
            line.to_owned()
        };
        let io = |e: StreamError| SetupError::Io(format!("{shown}: {e}"));
        let deadline = conn.deadline();
        conn.send(&bytes, secret).await.map_err(io)?;
        loop {
            let raw = conn.read(deadline).await.map_err(io)?;
            match classify(&raw) {
                Resp::Continuation => {
                    if wait_continuation && let Some(lit) = literal {
                        wait_continuation = false;
                        let mut rest = lit.to_vec();
                        rest.extend_from_slice(b"\r\n");
                        conn.send(&rest, None).await.map_err(io)?;
                    }
                }
                Resp::Untagged(args) => {
                    if let Err(e) = conn.track(&args, None) {
                        if let Some(s) = &mut conn.stream {
                            s.shutdown().await;
                        }
                        conn.stream = None;
                        return Err(SetupError::Io(format!(
                            "{shown}: Unexpected disconnection (server input error: {e})"
                        )));
                    }
                    if let Some(list) = listed.as_deref_mut()
                        && (is_atom(args.first(), "LIST") || is_atom(args.first(), "LSUB"))
                        && let Some(name) = args.get(3).and_then(Arg::as_astring)
                    {
                        list.push(lossy(name));
                    }
                }
                Resp::Tagged { tag: got, args, .. } if got == tag => {
                    if let Some(caps) = capabilities_in(&args) {
                        conn.caps = caps;
                        if line.starts_with("LOGIN ") || line == "CAPABILITY" {
                            conn.postlogin_caps = true;
                        }
                    }
                    let ok = is_atom(args.first(), "OK");
                    let no = is_atom(args.first(), "NO");
                    if ok || (no && ignore_no) {
                        return Ok(args);
                    }
                    return Err(SetupError::Failed(format!(
                        "{shown} (tag {tag}) failed: {}",
                        Display(&args)
                    )));
                }
                Resp::Tagged { .. } => {}
            }
        }
    }

    async fn command(
        &mut self,
        i: usize,
        line: &str,
        literal: Option<&[u8]>,
    ) -> Result<Vec<Arg>, SetupError> {
        self.command_full(i, line, literal, None, false).await
    }

    fn missing_capabilities(&self, caps: &[String]) -> Vec<String> {
        self.test
            .required_capabilities
            .iter()
            .flatten()
            .filter(|want| !caps.iter().any(|c| c.eq_ignore_ascii_case(want)))
            .cloned()
            .collect()
    }

    /// Skips the test: LOGOUT everywhere, waiting for the server to close.
    async fn skip(&mut self, missing: Vec<String>) {
        for i in 0..self.conns.len() {
            let _ = self.command_full(i, "LOGOUT", None, None, true).await;
        }
        self.result.outcome =
            Outcome::Skipped(format!("missing capabilities: {}", missing.join(" ")));
    }

    async fn setup_state(&mut self) -> Result<bool, SetupError> {
        let scripted = self.ctx.scripted;
        let state = self.test.state;
        if state == StartState::NonAuth {
            for i in 0..self.conns.len() {
                if self.conns[i].caps.is_empty() {
                    self.command(i, "CAPABILITY", None).await?;
                }
                let missing = self.missing_capabilities(&self.conns[i].caps);
                if !missing.is_empty() {
                    self.skip(missing).await;
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        for i in 0..self.conns.len() {
            let login = format!(
                "LOGIN {} {}",
                quote(&self.conns[i].user),
                quote(&self.conns[i].password)
            );
            self.conns[i].postlogin_caps = false;
            self.command(i, &login, None).await?;
            if scripted.qresync {
                self.command(i, "ENABLE QRESYNC", None).await?;
            }
            if scripted.imap4rev2 {
                self.command(i, "ENABLE IMAP4REV2", None).await?;
            }
        }
        if !self.conns[0].postlogin_caps {
            self.command(0, "CAPABILITY", None).await?;
        }
        let missing = self.missing_capabilities(&self.conns[0].caps);
        if !missing.is_empty() {
            self.skip(missing).await;
            return Ok(false);
        }
        // Delete what earlier runs left behind: the test mailbox and everything below
        // or beside it with the same prefix, children first.
        let mask = quote(&format!("{}*", scripted.mailbox));
        let mut boxes = Vec::new();
        let mut subscribed = Vec::new();
        self.command_full(
            0,
            &format!("LIST \"\" {mask}"),
            None,
            Some(&mut boxes),
            false,
        )
        .await?;
        self.command_full(
            0,
            &format!("LSUB \"\" {mask}"),
            None,
            Some(&mut subscribed),
            false,
        )
        .await?;
        let rev_icase = |a: &String, b: &String| b.to_lowercase().cmp(&a.to_lowercase());
        boxes.sort_by(rev_icase);
        subscribed.sort_by(rev_icase);
        for b in &boxes {
            self.command_full(0, &format!("DELETE {}", quote(b)), None, None, true)
                .await?;
        }
        for b in &subscribed {
            self.command_full(0, &format!("UNSUBSCRIBE {}", quote(b)), None, None, true)
                .await?;
        }
        if state >= StartState::Created && !scripted.mailbox.eq_ignore_ascii_case("INBOX") {
            self.command(0, &format!("CREATE {}", quote(&scripted.mailbox)), None)
                .await?;
        }
        if state >= StartState::Appended {
            let (count, all) = match self.test.messages {
                MessageCount::Count(n) => (n, false),
                MessageCount::All => (u32::MAX, true),
            };
            let mut appended = 0;
            while appended < count {
                if count > 0 && self.source.is_none() {
                    self.source =
                        Some(MboxSource::open(&self.test.mbox).map_err(SetupError::Failed)?);
                }
                let Some(src) = self.source.as_mut() else {
                    break;
                };
                if all && src.at_end() {
                    break;
                }
                let msg = src.next_message().map_err(SetupError::Failed)?;
                let plus = if self.conns[0].has_cap("LITERAL+") {
                    "+"
                } else {
                    ""
                };
                let line = format!(
                    "APPEND \"{}\" \"{}\" {{{}{plus}}}",
                    scripted.mailbox,
                    msg.date,
                    msg.data.len()
                );
                self.command(0, &line, Some(&msg.data)).await?;
                appended += 1;
            }
        }
        if state == StartState::Selected {
            for i in 0..self.conns.len() {
                self.command(i, &format!("SELECT {}", quote(&scripted.mailbox)), None)
                    .await?;
            }
        }
        Ok(true)
    }

    fn next_message(&mut self) -> Result<super::mbox::MboxMessage, String> {
        if self.source.is_none() {
            self.source = Some(MboxSource::open(&self.test.mbox)?);
        }
        match self.source.as_mut() {
            Some(source) => source.next_message(),
            None => Err(format!("{}: no messages", self.test.mbox.display())),
        }
    }

    /// Builds the bytes of one test command: the text, or an APPEND/REPLACE with the
    /// next mbox message. Returns (first part, literal to send after `+`).
    fn build_command(
        &mut self,
        conn: usize,
        tag: &str,
        text: &[u8],
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
        let lower = text.to_ascii_lowercase();
        let with_message = |prefix: &str, args: &[u8], date: Option<&str>| -> (String, Vec<u8>) {
            let mut line = format!("{tag} {prefix}{}", lossy(args));
            if let Some(d) = date {
                line.push_str(&format!(" \"{d}\""));
            }
            (line, args.to_vec())
        };
        let special = if lower == b"append" {
            Some(("APPEND ", None, true))
        } else if let Some(rest) = lower.strip_prefix(b"append ") {
            (!append_has_body(rest, false)).then_some(("APPEND ", Some(7), false))
        } else if let Some(rest) = lower.strip_prefix(b"replace ") {
            (!append_has_body(rest, true)).then_some(("REPLACE ", Some(8), false))
        } else if let Some(rest) = lower.strip_prefix(b"uid replace ") {
            (!append_has_body(rest, true)).then_some(("UID REPLACE ", Some(12), false))
        } else {
            None
        };
        let Some((prefix, skip, alone)) = special else {
            let mut bytes = format!("{tag} ").into_bytes();
            bytes.extend_from_slice(text);
            bytes.extend_from_slice(b"\r\n");
            return Ok((bytes, None));
        };
        let msg = self.next_message()?;
        let (mut line, _) = if alone {
            let b = format!("\"{}\"", self.conns[conn].cur_box);
            with_message(prefix, b.as_bytes(), Some(&msg.date))
        } else {
            with_message(
                prefix,
                text.get(skip.unwrap_or(0)..).unwrap_or_default(),
                None,
            )
        };
        let plus = self.conns[conn].has_cap("LITERAL+");
        line.push_str(&format!(
            " {{{}{}}}\r\n",
            msg.data.len(),
            if plus { "+" } else { "" }
        ));
        let mut bytes = line.into_bytes();
        let mut body = msg.data;
        body.extend_from_slice(b"\r\n");
        if plus {
            bytes.extend_from_slice(&body);
            Ok((bytes, None))
        } else {
            Ok((bytes, Some(body)))
        }
    }

    fn handle_untagged(&mut self, args: &[Arg]) {
        let test = self.test;
        let group = &test.groups[self.cur_group];
        let conn = &self.conns[group.connection.min(self.conns.len().saturating_sub(1))];
        if group.untagged.is_empty() && (test.ignore_extra_untagged || conn.logout_sent) {
            return;
        }
        let prefix = ["OK", "NO", "BAD", "BYE"]
            .iter()
            .any(|w| is_atom(args.first(), w));
        let n = group.untagged.len();
        if self.state.found.len() < n {
            self.state.found.resize(n, false);
            self.state.maybes.resize(n, (0, None));
        }
        self.vars.commit();
        let mut found_some = false;
        for (i, u) in group.untagged.iter().enumerate() {
            if self.state.found[i] {
                continue;
            }
            if let Some(tag) = &self.state.tag {
                self.vars.set("tag", tag.clone());
            }
            let count = self.vars.match_args(&u.args, args, FULL, prefix);
            if self.state.tag.is_some() {
                self.vars.remove("tag");
            }
            if count == FULL {
                if u.existence == Existence::MustNotExist {
                    self.vars.commit();
                    self.fail(format!(
                        "Unexpected untagged match (line {}):\nMatch: {}\nReply: {}",
                        u.line,
                        Display(&u.args),
                        Display(args)
                    ));
                    return;
                }
                self.state.found[i] = true;
                found_some = true;
                self.vars.commit();
                continue;
            }
            if self.state.maybes[i].0 < count {
                self.state.maybes[i] = (count, Some(args.to_vec()));
            }
            self.vars.rollback();
        }
        if !found_some {
            self.state.mismatches += 1;
            if !test.ignore_extra_untagged && self.state.first_extra.is_none() {
                self.state.first_extra = Some(Display(args).to_string());
            }
        }
    }

    async fn finish_group(&mut self) {
        let test = self.test;
        let group = &test.groups[self.cur_group];
        let missing: Vec<usize> = group
            .untagged
            .iter()
            .enumerate()
            .filter(|(i, u)| {
                u.existence == Existence::MustExist
                    && !self.state.found.get(*i).copied().unwrap_or(false)
            })
            .map(|(i, _)| i)
            .collect();
        if let Some(&first) = missing.first() {
            let u = &group.untagged[first];
            let unexpanded = Display(&u.args).to_string();
            let (expanded, _) = self.vars.expand_all(unexpanded.as_bytes(), true);
            let best = self.state.maybes.get(first).and_then(|m| m.1.clone());
            let mut msg = format!(
                "Missing {} untagged replies ({} mismatches)\n - first unexpanded (line {}): {unexpanded}\n - first expanded: {}\n - best match: {}",
                missing.len(),
                self.state.mismatches,
                u.line,
                lossy(&expanded),
                best.as_deref()
                    .map(|b| Display(b).to_string())
                    .unwrap_or_default()
            );
            if let Some(best) = &best {
                let prefix = ["OK", "NO", "BAD", "BYE"]
                    .iter()
                    .any(|w| is_atom(best.first(), w));
                let mut vars = self.vars.clone();
                if let Some(tag) = &self.state.tag {
                    vars.set("tag", tag.clone());
                }
                if let Some(m) = vars.diagnose(&u.args, best, prefix) {
                    msg.push_str(&format!("\n - mismatch at {m}"));
                }
            }
            self.fail(msg);
        }
        if let Some(first) = self.state.first_extra.take() {
            self.fail(format!(
                "{} unexpected untagged replies received, first: {first}",
                self.state.mismatches
            ));
        }
        for text in &group.output {
            let (out, err) = self.vars.expand_all(text, false);
            match err {
                Some(e) => self.fail(e),
                None => println!("{}", lossy(&out)),
            }
        }
        for w in std::mem::take(&mut self.vars.warnings) {
            eprintln!("Error: {}: {w}", self.test.name);
        }
        if let Some(d) = group.sleep {
            tokio::time::sleep(d).await;
        }
        self.count_group();
    }

    async fn run_group(&mut self) -> GroupEnd {
        let test = self.test;
        let group = &test.groups[self.cur_group];
        let ci = group.connection;
        self.state = GroupState {
            found: vec![false; group.untagged.len()],
            maybes: vec![(0, None); group.untagged.len()],
            ..GroupState::default()
        };
        if ci >= self.conns.len() || self.conns[ci].stream.is_none() {
            self.fail("Unexpected disconnection");
            self.count_group();
            return GroupEnd::Abort;
        }
        let exists = self.conns[ci].exists();
        self.vars.reset_seqmap(exists);

        // The group's commands must all complete within timeout=.
        let deadline = self.conns[ci].deadline();
        // (tag, command index, sent); literal parts waiting for a continuation.
        let mut pending: Vec<(String, usize, Instant)> = Vec::new();
        let mut waiting_literals: std::collections::VecDeque<Vec<u8>> = Default::default();
        for (k, cmd) in group.commands.iter().enumerate() {
            let (text, err) = self.vars.expand_all(&cmd.text, false);
            let (tag, _) = self.conns[ci].next_tag();
            if k == 0 {
                self.state.tag = Some(tag.clone());
            }
            if let Some(e) = err {
                self.fail(e);
            }
            if cmd.line == 0 || text.eq_ignore_ascii_case(b"logout") || group.have_untagged_bye {
                self.conns[ci].logout_sent = true;
            }
            note_selected_box(&mut self.conns[ci], &text);
            let (bytes, literal) = match self.build_command(ci, &tag, &text) {
                Ok(b) => b,
                Err(e) => {
                    self.fail(e);
                    continue;
                }
            };
            if let Err(e) = self.conns[ci].send(&bytes, None).await {
                return self.disconnected(e).await;
            }
            if let Some(l) = literal {
                waiting_literals.push_back(l);
            }
            pending.push((tag, k, Instant::now()));
        }

        while !pending.is_empty() {
            let raw = match self.conns[ci].read(deadline).await {
                Ok(raw) => raw,
                Err(StreamError::Frame(e)) => {
                    self.fail(format!("Invalid server input: {e}"));
                    continue;
                }
                Err(e) => return self.disconnected(e).await,
            };
            match classify(&raw) {
                Resp::Continuation => {
                    if let Some(l) = waiting_literals.pop_front()
                        && let Err(e) = self.conns[ci].send(&l, None).await
                    {
                        return self.disconnected(e).await;
                    }
                }
                Resp::Untagged(args) => {
                    self.handle_untagged(&args);
                    let conn = &mut self.conns[ci];
                    if let Err(e) = conn.track(&args, Some(&mut self.vars)) {
                        // The C tool drops the connection on such input.
                        self.fail(format!(
                            "Unexpected disconnection (server input error: {e})"
                        ));
                        if let Some(s) = &mut self.conns[ci].stream {
                            s.shutdown().await;
                        }
                        self.conns[ci].stream = None;
                        self.count_group();
                        return GroupEnd::Abort;
                    }
                }
                Resp::Tagged { tag, args, text } => {
                    let Some(pos) = pending.iter().position(|(t, _, _)| *t == tag) else {
                        continue;
                    };
                    let (_, k, sent) = pending.remove(pos);
                    let cmd = &group.commands[k];
                    self.record(&cmd.text, args.first(), sent);
                    self.vars.set("tag", tag.clone());
                    let r = self.vars.match_args(&cmd.reply, &args, FULL, true);
                    let diag = (r != FULL)
                        .then(|| self.vars.diagnose(&cmd.reply, &args, true))
                        .flatten();
                    self.vars.remove("tag");
                    self.vars.commit();
                    if let Some(caps) = capabilities_in(&args) {
                        self.conns[ci].caps = caps;
                    }
                    if r != FULL {
                        let mut msg = format!(
                            "Expected tagged reply '{}', got '{text}'",
                            Display(&cmd.reply),
                        );
                        let status = args.first().and_then(Arg::as_astring).unwrap_or_default();
                        let reply_text = text.split_once(' ').map_or("", |(_, t)| t);
                        if let Some(kind) =
                            crate::quirks::failed_command(&cmd.text, status, reply_text.as_bytes())
                        {
                            msg.push_str(&format!(
                                "\n - known server quirk: {} (docs/servers.md)",
                                kind.name()
                            ));
                            if !self.result.quirks.contains(&kind) {
                                self.result.quirks.push(kind);
                            }
                        }
                        if k > 0 {
                            msg.push_str(&format!(
                                "\n - for command (line {}): {}",
                                cmd.line,
                                lossy(&cmd.text)
                            ));
                        }
                        if let Some(m) = diag {
                            msg.push_str(&format!("\n - mismatch at {m}"));
                        }
                        self.fail(msg);
                    }
                    // A BAD the script did not expect is a protocol error: it fails
                    // the test even where the pattern accepts anything (`""`). Unlike
                    // the C tool, the connection stays and the test goes on, so one
                    // deviation does not hide the next; only with literals still
                    // waiting for a continuation (whose owner is unknown) is the
                    // connection dropped.
                    if is_atom(args.first(), "BAD") && !is_atom(cmd.reply.first(), "bad") {
                        if waiting_literals.is_empty() {
                            if r == FULL {
                                self.fail(format!(
                                    "Unexpected BAD reply for command: {}",
                                    lossy(&cmd.text)
                                ));
                            }
                            continue;
                        }
                        self.fail(format!(
                            "Unexpected disconnection (BAD reply for command: {})",
                            lossy(&cmd.text)
                        ));
                        if let Some(s) = &mut self.conns[ci].stream {
                            s.shutdown().await;
                        }
                        self.conns[ci].stream = None;
                        self.count_group();
                        return GroupEnd::Abort;
                    }
                }
            }
        }
        self.finish_group().await;
        GroupEnd::Done
    }

    /// Times a test command for the run's metrics (commands outside the state table
    /// are not counted).
    fn record(&self, command: &[u8], status: Option<&Arg>, sent: Instant) {
        let (Some(metrics), Some(op)) = (self.ctx.metrics, Op::for_imap_command(command)) else {
            return;
        };
        let outcome = if is_atom(status, "OK") {
            Reply::Ok
        } else if is_atom(status, "NO") {
            Reply::No
        } else {
            Reply::Bad
        };
        metrics.send(Event::Command {
            op,
            outcome,
            intended: sent,
            started: sent,
            finished: Instant::now(),
        });
    }

    /// The group's connection closed (or timed out) while replies were pending.
    async fn disconnected(&mut self, e: StreamError) -> GroupEnd {
        let test = self.test;
        let group = &test.groups[self.cur_group];
        let ci = group.connection;
        let seen_bye = self.conns.get(ci).is_some_and(|c| c.seen_bye);
        if let Some(c) = self.conns.get_mut(ci) {
            c.stream = None;
        }
        let waited = match &e {
            StreamError::Timeout(d) | StreamError::Deadline(d) => Some((*d, String::new())),
            StreamError::Incomplete { progress, waited } => {
                Some((*waited, format!(": {progress}")))
            }
            _ => None,
        };
        if let Some((d, detail)) = waited {
            self.fail(format!(
                "Timeout while waiting for server response ({} s){detail}",
                d.as_secs_f64()
            ));
            self.count_group();
            return GroupEnd::Abort;
        }
        if group.have_untagged_bye && seen_bye {
            for cmd in &group.commands {
                let any = cmd.reply.len() == 1 && cmd.reply[0] == Arg::Atom(Vec::new());
                if !any {
                    self.fail(format!(
                        "Command expected '{}' as tagged reply - only \"\" allowed when BYE happens",
                        Display(&cmd.reply)
                    ));
                }
            }
            self.finish_group().await;
            return GroupEnd::Done;
        }
        let detail = match e {
            StreamError::Closed => String::new(),
            other => format!(" ({other})"),
        };
        self.fail(format!("Unexpected disconnection{detail}"));
        self.count_group();
        GroupEnd::Abort
    }
}

/// `SELECT`/`EXAMINE <box>` switches the mailbox a bare `append` goes to; they and
/// CLOSE/UNSELECT start a new mailbox view.
fn note_selected_box(conn: &mut Conn, text: &[u8]) {
    let args = args::parse_lenient(text);
    if ["SELECT", "EXAMINE", "CLOSE", "UNSELECT"]
        .iter()
        .any(|c| is_atom(args.first(), c))
    {
        conn.uids.clear();
    }
    if (is_atom(args.first(), "SELECT") || is_atom(args.first(), "EXAMINE"))
        && let Some(name) = args.get(1).and_then(Arg::as_astring)
    {
        conn.cur_box = lossy(name);
    }
}

/// True if APPEND/REPLACE arguments already carry the message (a literal or CATENATE).
fn append_has_body(args_text: &[u8], replace: bool) -> bool {
    let args = args::parse_lenient(args_text);
    let mut i = usize::from(replace);
    if args.get(i).is_none() {
        return false;
    }
    if matches!(args.get(i + 1), Some(Arg::List(_))) {
        i += 1;
    }
    if matches!(args.get(i + 1), Some(Arg::Str(_))) {
        i += 1;
    }
    matches!(args.get(i + 1), Some(Arg::Literal(_))) || is_atom(args.get(i + 1), "catenate")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn {
            stream: None,
            id: 1,
            next_tag: 1,
            caps: Vec::new(),
            postlogin_caps: false,
            uids: Vec::new(),
            seen_bye: false,
            logout_sent: false,
            cur_box: "imaptest".into(),
            user: "u".into(),
            password: "p".into(),
        }
    }

    fn track(c: &mut Conn, line: &str) -> Result<(), String> {
        c.track(&args::parse_lenient(line.as_bytes()), None)
    }

    #[test]
    fn state_tracking_catches_protocol_violations() {
        let mut c = conn();
        track(&mut c, "3 EXISTS").unwrap();
        track(&mut c, "1 FETCH (UID 10 FLAGS ())").unwrap();
        track(&mut c, "2 FETCH (FLAGS () UID 11)").unwrap();
        track(&mut c, "3 FETCH (UID 12)").unwrap();
        track(&mut c, "1 EXPUNGE").unwrap();
        assert_eq!(c.uids, [11, 12]);
        assert_eq!(
            track(&mut c, "1 FETCH (UID 12)").unwrap_err(),
            "UID changed for sequence 1: 11 -> 12"
        );
        assert_eq!(
            track(&mut c, "3 EXPUNGE").unwrap_err(),
            "Tried to expunge sequence 3 with only 2 msgs"
        );
        assert!(track(&mut c, "0 EXPUNGE").is_err());
        assert!(track(&mut c, "1 FETCH (UID x)").is_err());
        assert!(track(&mut c, "1 FETCH UID").is_err());
        assert_eq!(
            track(&mut c, "1 EXISTS").unwrap_err(),
            "Message count dropped 2 -> 1"
        );
        track(&mut c, "4 EXISTS").unwrap();
        track(&mut c, "VANISHED 12,99").unwrap();
        assert_eq!(c.exists(), 2);
        track(&mut c, "VANISHED (EARLIER) 1:5").unwrap();
        assert_eq!(c.exists(), 2);
        track(&mut c, "BYE bye").unwrap();
        assert!(c.seen_bye);
        // A FETCH beyond the known count is only a warning in the C tool.
        track(&mut c, "9 FETCH (UID 1)").unwrap();
    }

    #[test]
    fn helpers() {
        assert_eq!(mutf7_to_utf8("p&AOQA5A-"), "pää");
        assert_eq!(mutf7_to_utf8("a&-b"), "a&b");
        assert_eq!(mutf7_to_utf8("bad&"), "bad&");
        assert_eq!(url_path_encode("pää;x y"), "p%C3%A4%C3%A4%3Bx%20y");
        assert!(append_has_body(b"box (\\seen) \"date\" {1}\r\nx", false));
        assert!(append_has_body(b"box catenate (text {1}\r\nx)", false));
        assert!(!append_has_body(b"box (\\seen)", false));
        assert!(!append_has_body(b"1 box", true));
        let caps = capabilities_in(&args::parse_lenient(
            b"OK [CAPABILITY IMAP4rev1 LITERAL+] Logged in",
        ))
        .unwrap();
        assert_eq!(caps, ["IMAP4rev1", "LITERAL+"]);
        assert!(matches!(classify(b"+ OK\r\n"), Resp::Continuation));
        assert!(matches!(classify(b"1.2 OK done\r\n"), Resp::Tagged { .. }));
    }
}
