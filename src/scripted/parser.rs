//! Test files: header, command groups and expected replies, parsed into [`Test`].
//!
//! The grammar is ImapTest's (see the module documentation of [`super`]). Errors name
//! the line and what is wrong; a file with an error is reported and not run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{self, Arg};

/// `user N: $user2`: the connection logs in as the `user2` setting.
pub const USER2: &str = "$user2";

/// Largest `connections:` value (and connection prefix).
pub const MAX_CONNECTIONS: usize = 100;

/// State the connections are brought to before the first command group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StartState {
    NonAuth,
    /// `auth`: logged in, test mailboxes deleted.
    Auth,
    Created,
    Appended,
    Selected,
}

/// How many messages the setup appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageCount {
    Count(u32),
    /// `all`: every message of the mbox, once.
    All,
}

/// Whether an untagged expectation must, must not or may match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    MustExist,
    MustNotExist,
    MayExist,
}

/// One expected untagged reply (`*`, `!` or `?` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untagged {
    pub existence: Existence,
    /// Arguments after the marker, with default list directives inserted.
    pub args: Vec<Arg>,
    pub line: usize,
}

/// One command of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Line of the command in the file (0 for the automatic LOGOUT).
    pub line: usize,
    /// Command text without tag, before variable expansion.
    pub text: Vec<u8>,
    /// `tagN` number, 0 when untagged in the file.
    pub tag: u32,
    /// Expected tagged reply (status word plus optional prefix), matched as a prefix.
    pub reply: Vec<Arg>,
}

/// Commands sent back to back on one connection, their expected replies, and the
/// directives that apply after them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// 0-based connection index.
    pub connection: usize,
    pub commands: Vec<Command>,
    pub untagged: Vec<Untagged>,
    pub sleep: Option<Duration>,
    pub output: Vec<Vec<u8>>,
    /// An untagged BYE must arrive; the group ends at disconnection.
    pub have_untagged_bye: bool,
}

impl Group {
    /// A group without commands checks the server greeting.
    pub fn is_banner_check(&self) -> bool {
        self.commands.is_empty()
    }

    /// First line of the group in the file.
    pub fn line(&self) -> usize {
        self.commands
            .first()
            .map(|c| c.line)
            .or_else(|| self.untagged.first().map(|u| u.line))
            .unwrap_or(0)
    }
}

/// One parsed test file.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    pub path: PathBuf,
    pub name: String,
    /// Message source for APPENDs.
    pub mbox: PathBuf,
    /// `capabilities:`; a test with this header counts as an extension test.
    pub required_capabilities: Option<Vec<String>>,
    pub connections: usize,
    pub state: StartState,
    pub messages: MessageCount,
    pub ignore_extra_untagged: bool,
    /// `user N:` overrides, indexed by connection; [`USER2`] means the `user2` setting.
    pub users: Vec<Option<String>>,
    /// `user N: $user2`: the test needs the `user2` setting.
    pub require_user2: bool,
    pub groups: Vec<Group>,
    pub have_banner_check: bool,
    /// `$modseqN` captures are checked for increasing values (see [`modseq_rule_applies`]).
    pub modseq_rule: bool,
}

/// A malformed test file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{path} line {line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

impl ParseError {
    pub fn line(&self) -> Option<usize> {
        match self {
            ParseError::Line { line, .. } => Some(*line),
            ParseError::File { .. } => None,
        }
    }
}

struct IfEnv {
    line: usize,
    else_seen: bool,
    /// Skip state outside this block.
    outer_skip: bool,
}

struct FileParser<'t> {
    test: &'t mut Test,
    /// Index of the current group in `test.groups`.
    cur: Option<usize>,
    replies_pending: usize,
    ifenv: Vec<IfEnv>,
    skip: bool,
    env: &'t dyn Fn(&str) -> bool,
}

/// The default mbox of a test directory.
pub const DEFAULT_MBOX: &str = "default.mbox";

/// Reads and parses one test file. `default_mbox` is used when `<path>.mbox` is missing.
pub fn parse_file(path: &Path, default_mbox: &Path) -> Result<Test, ParseError> {
    let data = std::fs::read(path).map_err(|e| ParseError::File {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    let mut mbox_path = path.as_os_str().to_owned();
    mbox_path.push(".mbox");
    let mbox_path = PathBuf::from(mbox_path);
    let mbox = if mbox_path.exists() {
        mbox_path
    } else {
        default_mbox.to_owned()
    };
    parse_bytes(path, &data, mbox, &|name| std::env::var_os(name).is_some())
}

/// Parses test file contents. `env` says whether an environment variable is set.
pub fn parse_bytes(
    path: &Path,
    data: &[u8],
    mbox: PathBuf,
    env: &dyn Fn(&str) -> bool,
) -> Result<Test, ParseError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut test = Test {
        path: path.to_owned(),
        name,
        mbox,
        required_capabilities: None,
        connections: 1,
        state: StartState::Selected,
        messages: MessageCount::Count(0),
        ignore_extra_untagged: true,
        users: Vec::new(),
        require_user2: false,
        groups: Vec::new(),
        have_banner_check: false,
        modseq_rule: false,
    };
    let shown = path.display().to_string();
    let line_err = |line: usize, message: String| ParseError::Line {
        path: shown.clone(),
        line,
        message,
    };
    let file_err = |message: String| ParseError::File {
        path: shown.clone(),
        message,
    };
    let mut p = FileParser {
        test: &mut test,
        cur: None,
        replies_pending: 0,
        ifenv: Vec::new(),
        skip: false,
        env,
    };

    let mut header = true;
    let mut linenum = 0usize;
    let mut start_linenum = 0usize;
    // Multi-line literal state.
    let mut continues = false;
    let mut binary = false;
    let mut multiline: Vec<u8> = Vec::new();
    let mut start_pos = 0usize;
    let mut last_line_end = 0usize;

    // CRLF files would fail later with a puzzling "Missing ':'" on the header's end.
    if let Some(nl) = memchr::memchr(b'\n', data)
        && data[..nl].ends_with(b"\r")
    {
        return Err(line_err(
            1,
            "the file has CRLF (Windows) line endings; test files need LF line endings \
             (convert it with `dos2unix` or `sed -i 's/\\r$//'`)"
                .into(),
        ));
    }
    let mut rest = data;
    while let Some(nl) = memchr::memchr(b'\n', rest) {
        let raw = rest.get(..nl).unwrap_or_default();
        rest = rest.get(nl + 1..).unwrap_or_default();
        linenum += 1;
        let line: Vec<u8>;
        if continues {
            if !raw.starts_with(b"}}}") {
                multiline.extend_from_slice(raw);
                last_line_end = multiline.len();
                multiline.extend_from_slice(if binary { b"\n" } else { b"\r\n" });
                continue;
            }
            multiline.truncate(last_line_end);
            let size = multiline.len() - start_pos;
            let marker = format!("{}{{{size}}}\r\n", if binary { "~" } else { "" });
            multiline.splice(start_pos..start_pos, marker.bytes());
            let after = raw.get(3..).unwrap_or_default();
            if let Some(prefix) = after.strip_suffix(b"{{{") {
                let (prefix, bin) = match prefix.strip_suffix(b"~") {
                    Some(p) => (p, true),
                    None => (prefix, false),
                };
                binary = bin;
                multiline.extend_from_slice(prefix);
                start_pos = multiline.len();
                last_line_end = start_pos;
                continue;
            }
            multiline.extend_from_slice(after);
            line = std::mem::take(&mut multiline);
            continues = false;
        } else {
            start_linenum = linenum;
            if raw.is_empty() {
                header = false;
                continue;
            }
            if raw.first() == Some(&b'#') {
                continue;
            }
            if let Some(prefix) = raw.strip_suffix(b"{{{") {
                let (prefix, bin) = match prefix.strip_suffix(b"~") {
                    Some(p) => (p, true),
                    None => (prefix, false),
                };
                binary = bin;
                multiline.clear();
                multiline.extend_from_slice(prefix);
                start_pos = multiline.len();
                last_line_end = start_pos;
                continues = true;
                continue;
            }
            line = raw.to_vec();
        }
        let result = if header {
            p.header_line(&line)
        } else {
            p.command_line(start_linenum, &line)
        };
        result.map_err(|m| line_err(linenum, m))?;
    }
    if !rest.is_empty() {
        return Err(file_err("Last line doesn't end with LF".into()));
    }
    if continues {
        return Err(file_err(format!(
            "Multiline reply at line {start_linenum} not ended"
        )));
    }
    if p.cur.is_none() {
        return Err(file_err("No commands in file".into()));
    }
    if p.replies_pending > 0 {
        let missing = p
            .cur
            .and_then(|g| p.test.groups.get(g))
            .and_then(|g| g.commands.iter().find(|c| c.reply.is_empty()))
            .map(|c| c.line)
            .unwrap_or(0);
        return Err(line_err(
            linenum,
            format!("Missing reply from previous command at line {missing}"),
        ));
    }
    if let Some(open) = p.ifenv.first() {
        return Err(file_err(format!(
            "!ifenv at line {} not closed with !endif",
            open.line
        )));
    }
    for (i, group) in test.groups.iter().enumerate() {
        if i > 0 && group.is_banner_check() {
            return Err(line_err(
                group.line(),
                "A greeting check (untagged reply before any command) must come first".into(),
            ));
        }
    }
    add_logout(&mut test);
    test.modseq_rule = modseq_rule_applies(&test);
    Ok(test)
}

fn add_logout(test: &mut Test) {
    let has_logout = test.groups.iter().any(|g| {
        g.have_untagged_bye
            || g.commands
                .iter()
                .any(|c| c.text.eq_ignore_ascii_case(b"logout"))
    });
    if has_logout {
        return;
    }
    test.groups.push(Group {
        connection: 0,
        commands: vec![Command {
            line: 0,
            text: b"logout".to_vec(),
            tag: 0,
            reply: vec![Arg::Atom(b"ok".to_vec())],
        }],
        ..Group::default()
    });
}

/// The `$modseqN` rule (a capture must be at least the previous one plus the index
/// difference) came with the 2025 test suite, which writes `$modseqN` captures in
/// increasing N. Older suites (release-2.3) reuse the names freely. The rule is
/// applied to a test only when its `$modseqN` variables first appear in increasing
/// order, so both suites keep the verdicts of the tool version they were written for.
pub fn modseq_rule_applies(test: &Test) -> bool {
    let mut order: Vec<u32> = Vec::new();
    let mut visit = |bytes: &[u8]| {
        for n in modseq_indexes(bytes) {
            if !order.contains(&n) {
                order.push(n);
            }
        }
    };
    fn walk(args: &[Arg], visit: &mut dyn FnMut(&[u8])) {
        for a in args {
            match a {
                Arg::List(l) => walk(l, visit),
                other => {
                    if let Some(s) = other.as_astring() {
                        visit(s);
                    }
                }
            }
        }
    }
    for g in &test.groups {
        for c in &g.commands {
            visit(&c.text);
            walk(&c.reply, &mut visit);
        }
        for u in &g.untagged {
            walk(&u.args, &mut visit);
        }
    }
    !order.is_empty() && order.windows(2).all(|w| w[0] < w[1])
}

/// N of every `$modseqN` / `${modseqN}` in `bytes`.
fn modseq_indexes(bytes: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'$', bytes.get(i..).unwrap_or_default()) {
        let mut j = i + off + 1;
        if bytes.get(j) == Some(&b'{') {
            j += 1;
        }
        let rest = bytes.get(j..).unwrap_or_default();
        if let Some(tail) = rest.strip_prefix(b"modseq") {
            let digits: Vec<u8> = tail
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            let next = tail.get(digits.len()).copied();
            let ends_name = !matches!(next, Some(b) if b.is_ascii_alphanumeric() || b == b'_');
            if !digits.is_empty()
                && ends_name
                && let Ok(n) = String::from_utf8_lossy(&digits).parse::<u32>()
            {
                out.push(n);
            }
        }
        i = j;
    }
    out
}

fn first_word(line: &[u8]) -> &[u8] {
    let end = memchr::memchr(b' ', line).unwrap_or(line.len());
    line.get(..end).unwrap_or(line)
}

fn parse_uint(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Which reply a line starts with.
#[derive(Clone, Copy)]
enum ReplyWord {
    Ok,
    No,
    Bad,
    Any,
}

impl ReplyWord {
    fn arg(self) -> Arg {
        Arg::Atom(
            match self {
                ReplyWord::Ok => "ok",
                ReplyWord::No => "no",
                ReplyWord::Bad => "bad",
                ReplyWord::Any => "",
            }
            .as_bytes()
            .to_vec(),
        )
    }
}

/// `[tagN] ok|no|bad|"" ...`: returns (tag, reply, rest of line after the keyword).
fn cmd_reply(line: &[u8]) -> (u32, Option<ReplyWord>, &[u8]) {
    let mut tag = 0;
    let mut rest = line;
    let word = first_word(rest);
    if word.len() > 3
        && word[..3].eq_ignore_ascii_case(b"tag")
        && word.len() < rest.len()
        && let Some(n) = parse_uint(&word[3..]).filter(|&n| n > 0)
    {
        tag = n;
        rest = rest.get(word.len() + 1..).unwrap_or_default();
    }
    let word = first_word(rest);
    let reply = if word.eq_ignore_ascii_case(b"ok") {
        Some(ReplyWord::Ok)
    } else if word.eq_ignore_ascii_case(b"no") {
        Some(ReplyWord::No)
    } else if word.eq_ignore_ascii_case(b"bad") {
        Some(ReplyWord::Bad)
    } else if word == b"\"\"" {
        Some(ReplyWord::Any)
    } else {
        None
    };
    if reply.is_some() {
        rest = rest.get(word.len()..).unwrap_or_default();
        if rest.first() == Some(&b' ') {
            rest = rest.get(1..).unwrap_or_default();
        }
    }
    (tag, reply, rest)
}

fn untagged_marker(line: &[u8]) -> Option<Existence> {
    match line.get(..2) {
        Some(b"* ") => Some(Existence::MustExist),
        Some(b"! ") => Some(Existence::MustNotExist),
        Some(b"? ") => Some(Existence::MayExist),
        _ => None,
    }
}

/// Parses a Dovecot-style interval: `<n>[ ]<unit>`, units ms/msec(s)/milliseconds,
/// s/sec(s)/second(s), m/min(s)/minute(s), h/hour(s), d/day(s); bare numbers are seconds.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: u64 = num.parse().map_err(|_| "Invalid number".to_string())?;
    let unit = unit.trim().to_ascii_lowercase();
    let ms = match unit.as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1,
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 7 * 86_400_000,
        other => return Err(format!("Unknown unit '{other}'")),
    };
    n.checked_mul(ms)
        .map(Duration::from_millis)
        .ok_or_else(|| "Value too large".to_string())
}

impl FileParser<'_> {
    fn header_line(&mut self, line: &[u8]) -> Result<(), String> {
        let line = String::from_utf8_lossy(line);
        let Some(colon) = line.find(':') else {
            return Err("Missing ':'".into());
        };
        let key = line[..colon].trim_end_matches(' ').to_ascii_lowercase();
        let value = line[colon + 1..].trim_start_matches(' ');
        let test = &mut *self.test;
        match key.as_str() {
            "capabilities" => {
                test.required_capabilities =
                    Some(value.split_whitespace().map(str::to_owned).collect());
            }
            "connections" => {
                let n = if value == "n" {
                    2
                } else {
                    leading_number(value)
                };
                if n == 0 || n > MAX_CONNECTIONS {
                    return Err("Too many connections".into());
                }
                test.connections = n;
            }
            "ignore_extra_untagged" => test.ignore_extra_untagged = value.starts_with('y'),
            "messages" => {
                test.messages = if value == "all" {
                    MessageCount::All
                } else {
                    MessageCount::Count(u32::try_from(leading_number(value)).unwrap_or(u32::MAX))
                };
            }
            "state" => {
                test.state = match value.to_ascii_lowercase().as_str() {
                    "nonauth" => StartState::NonAuth,
                    "auth" => StartState::Auth,
                    "created" => StartState::Created,
                    "appended" => StartState::Appended,
                    "selected" => StartState::Selected,
                    _ => return Err("Unknown state value".into()),
                };
            }
            _ => {
                let idx = key
                    .strip_prefix("user ")
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&n| n > 0);
                let Some(idx) = idx else {
                    return Err(format!("Unknown setting: {key}"));
                };
                if idx > MAX_CONNECTIONS {
                    return Err("Too many connections".into());
                }
                let user = if value == "$user2" || value == "${user2}" {
                    test.require_user2 = true;
                    Some(USER2.to_owned())
                } else {
                    Some(value.to_owned())
                };
                if test.users.len() < idx {
                    test.users.resize(idx, None);
                }
                test.users[idx - 1] = user;
            }
        }
        Ok(())
    }

    fn group_mut(&mut self) -> Option<&mut Group> {
        self.cur.and_then(|i| self.test.groups.get_mut(i))
    }

    fn command_line(&mut self, linenum: usize, line: &[u8]) -> Result<(), String> {
        // Conditionals are handled even inside skipped blocks.
        let env_name = |prefix: &[u8]| {
            line.strip_prefix(prefix)
                .map(|n| String::from_utf8_lossy(n).into_owned())
        };
        if let Some((name, negate)) = env_name(b"!ifenv ")
            .map(|n| (n, false))
            .or_else(|| env_name(b"!ifnenv ").map(|n| (n, true)))
        {
            let set = (self.env)(&name);
            let include = set != negate;
            self.ifenv.push(IfEnv {
                line: linenum,
                else_seen: false,
                outer_skip: self.skip,
            });
            if !include {
                self.skip = true;
            }
            return Ok(());
        }
        if line == b"!else" {
            let Some(top) = self.ifenv.last_mut() else {
                return Err("!else without !ifenv".into());
            };
            if top.else_seen {
                return Err("!else already seen".into());
            }
            top.else_seen = true;
            if !top.outer_skip {
                self.skip = !self.skip;
            }
            return Ok(());
        }
        if line == b"!endif" {
            let Some(top) = self.ifenv.pop() else {
                return Err("!endif without !ifenv".into());
            };
            self.skip = top.outer_skip;
            return Ok(());
        }
        if self.skip {
            return Ok(());
        }

        if self.cur.is_some() {
            if let Some(value) = line.strip_prefix(b"!sleep ") {
                let value = String::from_utf8_lossy(value);
                let d = parse_interval(&value)
                    .map_err(|e| format!("Invalid !sleep value {value}: {e}"))?;
                if let Some(g) = self.group_mut() {
                    g.sleep = Some(d);
                }
                return Ok(());
            }
            if let Some(text) = line.strip_prefix(b"!output ") {
                let text = text.to_vec();
                if let Some(g) = self.group_mut() {
                    g.output.push(text);
                }
                return Ok(());
            }
            if let Some(existence) = untagged_marker(line) {
                return self.untagged(linenum, line.get(2..).unwrap_or_default(), existence);
            }
            if self.replies_pending > 0 {
                let group_conn = self.group_mut().map(|g| g.connection).unwrap_or(0);
                let mut no_conn = line;
                let mut reply_conn = None;
                if self.test.connections > 1
                    && let Some(n) = parse_uint(first_word(line)).filter(|&n| n > 0)
                {
                    reply_conn = Some(n as usize);
                    no_conn = line.get(first_word(line).len() + 1..).unwrap_or_default();
                }
                let (tag, reply, _) = cmd_reply(no_conn);
                if reply.is_some() {
                    // A reply line without the connection prefix is accepted in
                    // multi-connection tests: the release-2.3 suite writes them so.
                    if let Some(n) = reply_conn
                        && n - 1 != group_conn
                    {
                        return Err("Reply for wrong connection".into());
                    }
                    return self.finish_command(tag, no_conn);
                }
            }
        } else if line.starts_with(b"!sleep ") || line.starts_with(b"!output ") {
            return Err(format!(
                "{} before any command",
                String::from_utf8_lossy(first_word(line))
            ));
        }
        if line.first() == Some(&b'!')
            && line.get(1).is_some_and(u8::is_ascii_alphabetic)
            && !line.starts_with(b"!sleep ")
            && !line.starts_with(b"!output ")
        {
            return Err(format!(
                "Unknown directive: {}",
                String::from_utf8_lossy(first_word(line))
            ));
        }

        if self.cur.is_none() || self.replies_pending == 0 {
            self.test.groups.push(Group::default());
            self.cur = Some(self.test.groups.len() - 1);
        }
        let connections = self.test.connections;
        let mut line = line;
        let mut connection = 0usize;
        if connections > 1 {
            let word = first_word(line);
            let idx = parse_uint(word).filter(|&n| n > 0);
            let Some(idx) = idx else {
                return Err("Missing client index".into());
            };
            let idx = idx as usize;
            if idx > MAX_CONNECTIONS {
                return Err("Too many connections".into());
            }
            let group = self.group_mut().ok_or("internal: no group")?;
            if !group.commands.is_empty() && group.connection != idx - 1 {
                return Err("All pipelined commands must use the same connection".into());
            }
            connection = idx - 1;
            if self.test.connections < idx {
                self.test.connections = idx;
            }
            line = line.get(word.len() + 1..).unwrap_or_default();
        }
        let (tag, reply, rest) = cmd_reply(line);
        let replies_pending = self.replies_pending;
        let group = self.group_mut().ok_or("internal: no group")?;
        group.connection = connection;
        if tag == 0 {
            if replies_pending > 0 {
                return Err("Missing reply from previous command group".into());
            }
        } else if group.commands.iter().any(|c| c.tag == tag) {
            return Err("Tag reused within command group".into());
        }
        if group.commands.is_empty()
            && let Some(existence) = untagged_marker(rest)
        {
            self.test.have_banner_check = true;
            return self.untagged(linenum, rest.get(2..).unwrap_or_default(), existence);
        }
        if rest.is_empty() {
            return Err("Missing command".into());
        }
        group.commands.push(Command {
            line: linenum,
            text: rest.to_vec(),
            tag,
            reply: reply.map(|r| vec![r.arg()]).unwrap_or_default(),
        });
        if reply.is_none() {
            self.replies_pending += 1;
        }
        Ok(())
    }

    fn finish_command(&mut self, tag: u32, line: &[u8]) -> Result<(), String> {
        let group = self.group_mut().ok_or("internal: no group")?;
        let Some(cmd) = group.commands.iter_mut().find(|c| c.tag == tag) else {
            return Err("Reply for unknown tag".into());
        };
        if !cmd.reply.is_empty() {
            return Err("Command already has a reply".into());
        }
        let mut args = args::parse_strict(line).map_err(|e| e.to_string())?;
        if tag != 0 && !args.is_empty() {
            args.remove(0);
        }
        if args.is_empty() {
            return Err("Missing reply".into());
        }
        cmd.reply = args;
        self.replies_pending -= 1;
        Ok(())
    }

    fn untagged(
        &mut self,
        linenum: usize,
        text: &[u8],
        existence: Existence,
    ) -> Result<(), String> {
        let mut args = args::parse_strict(text).map_err(|e| e.to_string())?;
        if args.is_empty() {
            return Err("Empty untagged reply".into());
        }
        let mut name: Vec<u8> = args
            .first()
            .and_then(Arg::as_atom)
            .unwrap_or_default()
            .to_vec();
        if name
            .first()
            .is_some_and(|&b| b == b'$' || b.is_ascii_digit())
        {
            name = args
                .get(1)
                .and_then(Arg::as_atom)
                .unwrap_or_default()
                .to_vec();
        }
        name.make_ascii_lowercase();
        directives(&mut args, &name, &[])?;
        let bye = name.len() >= 3 && name[..3].eq_ignore_ascii_case(b"bye");
        let group = self.group_mut().ok_or("internal: no group")?;
        if bye {
            match existence {
                Existence::MustNotExist => {}
                Existence::MustExist => group.have_untagged_bye = true,
                Existence::MayExist => return Err("? BYE not currently supported".into()),
            }
        }
        group.untagged.push(Untagged {
            existence,
            args,
            line: linenum,
        });
        Ok(())
    }
}

fn leading_number(s: &str) -> usize {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or(if digits.is_empty() { 0 } else { usize::MAX })
}

/// Where a list sits: its position in each enclosing list, outermost first, and the
/// atom before it in its parent list.
#[derive(Clone)]
struct ListPos<'a> {
    /// Chain-relative index of each enclosing list within its parent (outermost first).
    path: &'a [usize],
    prev_atom: Option<Vec<u8>>,
}

/// Validates `$!` directives and inserts the defaults, recursively. `path` holds the
/// (chain-relative) indexes leading to `args` (empty for the top level).
fn directives(args: &mut Vec<Arg>, reply: &[u8], path: &[usize]) -> Result<(), String> {
    directives_at(
        args,
        reply,
        &ListPos {
            path,
            prev_atom: None,
        },
    )
}

fn directives_at(args: &mut Vec<Arg>, reply: &[u8], pos: &ListPos<'_>) -> Result<(), String> {
    let mut chain = 1usize;
    let mut have = false;
    for a in args.iter() {
        let Some(s) = a.as_atom() else { break };
        let Some(d) = s.strip_prefix(b"$!") else {
            break;
        };
        have = true;
        if let Some(n) = d.strip_prefix(b"unordered") {
            if n.is_empty() {
            } else if let Some(n) = n.strip_prefix(b"=").and_then(parse_uint) {
                if n == 0 {
                    return Err("Broken $!unordered directive".into());
                }
                chain = n as usize;
            } else {
                return Err("Broken $!unordered directive".into());
            }
        } else if d == b"ordered"
            || d == b"noextra"
            || d == b"extra"
            || d.starts_with(b"ignore=")
            || d.starts_with(b"ban=")
        {
        } else {
            return Err(format!("Unknown directive: {}", String::from_utf8_lossy(d)));
        }
    }
    if !have {
        let defaults = default_directives(reply, pos);
        for d in defaults.iter().rev() {
            args.insert(0, Arg::Atom(d.as_bytes().to_vec()));
        }
    }
    let ndirectives = args
        .iter()
        .take_while(|a| a.as_atom().is_some_and(|s| s.starts_with(b"$!")))
        .count();
    if !(args.len() - ndirectives).is_multiple_of(chain) {
        return Err(format!("Invalid list argument count, chain size={chain}"));
    }
    let mut prev_atom: Option<Vec<u8>> = None;
    for (i, a) in args.iter_mut().enumerate() {
        if let Some(s) = a.as_atom() {
            prev_atom = Some(s.to_ascii_lowercase());
        }
        if let Arg::List(items) = a {
            let idx = if chain == 1 { i } else { i % chain };
            let mut path = pos.path.to_vec();
            path.push(idx);
            directives_at(
                items,
                reply,
                &ListPos {
                    path: &path,
                    prev_atom: prev_atom.clone(),
                },
            )?;
        }
    }
    Ok(())
}

fn default_directives(reply: &[u8], pos: &ListPos<'_>) -> &'static [&'static str] {
    match (reply, pos.path) {
        (b"list" | b"lsub", [1]) => &["$!unordered"],
        (b"status", [2]) | (b"fetch", [2]) => &["$!unordered=2"],
        (b"fetch", [2, _]) if pos.prev_atom.as_deref() == Some(b"flags") => &[
            "$!unordered",
            "$!noextra",
            "$!ignore=\\recent",
            "$!ignore=$HasAttachment",
            "$!ignore=$HasNoAttachment",
        ],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Test, ParseError> {
        parse_bytes(
            Path::new("t/x"),
            text.as_bytes(),
            PathBuf::from("t/default.mbox"),
            &|n| n == "HAVE_FOO",
        )
    }

    fn atoms(args: &[Arg]) -> String {
        super::super::args::Display(args).to_string()
    }

    #[test]
    fn crlf_files_are_named_as_such() {
        let e = parse("state: auth\r\n\r\nok noop\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t/x line 1: the file has CRLF (Windows) line endings; test files need LF line endings (convert it with `dos2unix` or `sed -i 's/\\r$//'`)"
        );
    }

    #[test]
    fn forms_and_logout() {
        let t = parse(
            "state: auth\n\nok select $mailbox\n* 0 exists\n\nselect x\n* 1 exists\nok [read-write]\n",
        )
        .unwrap();
        assert_eq!(t.state, StartState::Auth);
        assert_eq!(t.groups.len(), 3);
        assert_eq!(atoms(&t.groups[0].commands[0].reply), "ok");
        assert_eq!(atoms(&t.groups[1].commands[0].reply), "ok [read-write]");
        assert_eq!(t.groups[1].commands[0].line, 6);
        assert_eq!(t.groups[2].commands[0].text, b"logout");
    }

    #[test]
    fn defaults_inserted() {
        let t = parse("\nok fetch 1 flags\n* 1 fetch (flags (\\seen))\n* list () / x\n* status x (messages 1)\n").unwrap();
        let u = &t.groups[0].untagged;
        assert_eq!(
            atoms(&u[0].args),
            "1 fetch ($!unordered=2 flags ($!unordered $!noextra $!ignore=\\recent $!ignore=$HasAttachment $!ignore=$HasNoAttachment \\seen))"
        );
        assert_eq!(atoms(&u[1].args), "list ($!unordered) / x");
        assert_eq!(atoms(&u[2].args), "status x ($!unordered=2 messages 1)");
        let t = parse("\nok fetch 1 flags\n* 1 fetch (flags ($!extra))\n").unwrap();
        assert_eq!(
            atoms(&t.groups[0].untagged[0].args),
            "1 fetch ($!unordered=2 flags ($!extra))"
        );
    }

    #[test]
    fn pipelining_and_connections() {
        let t =
            parse("connections: 2\n\n1 tag1 noop\n1 tag2 noop\n1 tag2 ok\ntag1 ok\n2 ok noop\n")
                .unwrap();
        assert_eq!(t.groups[0].commands.len(), 2);
        assert_eq!(t.groups[1].connection, 1);
        let e = parse("connections: 2\n\n1 tag1 noop\n2 tag2 noop\n").unwrap_err();
        assert!(e.to_string().contains("line 4: All pipelined"), "{e}");
        let e = parse("connections: 2\n\nnoop\n").unwrap_err();
        assert!(
            e.to_string().contains("line 3: Missing client index"),
            "{e}"
        );
        let e = parse("\ntag1 noop\ntag1 noop\n").unwrap_err();
        assert!(e.to_string().contains("Tag reused"), "{e}");
        let e = parse("\ntag1 noop\ntag2 ok\n").unwrap_err();
        assert!(e.to_string().contains("unknown tag"), "{e}");
        let e = parse("\nnoop\n* 1 exists\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("Missing reply from previous command at line 2"),
            "{e}"
        );
    }

    #[test]
    fn multiline_literals() {
        let t = parse("\nok append x {{{\nl1\n\nl3\n\n}}} foo ~{{{\na\nb\n}}})\n").unwrap();
        assert_eq!(
            t.groups[0].commands[0].text,
            b"append x {10}\r\nl1\r\n\r\nl3\r\n foo ~{3}\r\na\nb)"
        );
        let e = parse("\nok append x {{{\nl1\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("Multiline reply at line 2 not ended"),
            "{e}"
        );
    }

    #[test]
    fn header_errors() {
        for (text, msg) in [
            ("foo: bar\n\nnoop\n", "line 1: Unknown setting"),
            ("state: weird\n\nnoop\n", "line 1: Unknown state value"),
            ("connections: 101\n\nnoop\n", "line 1: Too many connections"),
            ("nonsense\n\nnoop\n", "line 1: Missing ':'"),
            ("\nok noop", "Last line doesn't end with LF"),
            ("\n", "No commands in file"),
            ("\nok noop\n* 1 fetch (flags (a)\n", "line 3: Missing ')'"),
            (
                "\nok noop\n* 1 fetch ($!bogus a)\n",
                "line 3: Unknown directive: bogus",
            ),
            (
                "\nok noop\n* 1 x ($!unordered=2 a b c)\n",
                "Invalid list argument count",
            ),
            (
                "\nok noop\n!sleep 1 parsec\n",
                "line 3: Invalid !sleep value",
            ),
            ("\n!endif\n", "line 2: !endif without !ifenv"),
            (
                "\nok noop\n!ifenv X\nok noop\n",
                "!ifenv at line 3 not closed",
            ),
            ("\nok noop\n? bye\n", "? BYE not currently supported"),
            ("\nok noop\n!frobnicate\n", "Unknown directive: !frobnicate"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(msg), "{text:?}: {e}");
        }
    }

    #[test]
    fn ifenv_blocks() {
        let t = parse("\n!ifenv HAVE_FOO\nok a\n!else\nok b\n!endif\n!ifnenv HAVE_FOO\nok c\n!else\nok d\n!endif\n!ifenv NOPE\nok e\n!ifenv HAVE_FOO\nok f\n!endif\n!endif\n").unwrap();
        let cmds: Vec<String> = t
            .groups
            .iter()
            .map(|g| String::from_utf8_lossy(&g.commands[0].text).into_owned())
            .collect();
        assert_eq!(cmds, ["a", "d", "logout"]);
    }

    #[test]
    fn modseq_rule_detection() {
        let t = parse("\nok a\n* 1 fetch (modseq ($modseq1))\nok b\n* 1 fetch (modseq ($modseq3))\nok c\n* x $modseq2\n").unwrap();
        assert!(!t.modseq_rule);
        let t = parse("\nok a\n* 1 fetch (modseq ($modseq1))\nok b $modseq1\n* x ${modseq2}\n")
            .unwrap();
        assert!(t.modseq_rule);
        assert_eq!(modseq_indexes(b"$modseq_seq1 $modseq12x $modseq7"), vec![7]);
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_interval("2 s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("3").unwrap(), Duration::from_secs(3));
        assert!(parse_interval("x").is_err());
    }
}
