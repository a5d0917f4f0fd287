//! Parsing client and server conversation scripts. Every error names `file:line`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::escape::{eval_escapes, send_escapes};

/// How deep `<<< file` inclusions may nest.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Where a script step came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A script that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{loc}: {message}")]
    Syntax { loc: Loc, message: String },
}

fn syntax(loc: &Loc, message: impl Into<String>) -> ScriptError {
    ScriptError::Syntax {
        loc: loc.clone(),
        message: message.into(),
    }
}

/// What one client script line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// `??? text`: the next server line must start with `text`.
    Expect(Vec<u8>),
    /// `???*`: the server must close the connection.
    ExpectEof,
    /// `???? text`: skip any number of server lines starting with `text`.
    ExpectRepeated(Vec<u8>),
    /// `+++ n` or `:sleep:n`.
    Sleep(Duration),
    /// Bytes to send. `starttls` arms the TLS switch (a sent line whose last word is
    /// `STARTTLS` or `STLS`): the next `???` line that reads a positive reply starts TLS.
    Send { data: Vec<u8>, starttls: bool },
    /// `### text`: copied to stdout and stderr.
    Comment(String),
    /// `stoptls`: end TLS (close_notify) and go on in plain text.
    StopTls,
}

/// One client script step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStep {
    pub loc: Loc,
    pub action: ClientAction,
}

/// A parsed client script (`<<< file` inclusions already expanded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientScript {
    pub steps: Vec<ClientStep>,
}

/// What one server script line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAction {
    /// `>text`, `>>text`, `>CR>text`, `>LF>text` or a line starting with a digit.
    Send(Vec<u8>),
    /// `>*eof`: the server closes the connection.
    Close,
    /// `*sleep n`.
    Sleep(Duration),
    /// `*data n`: the client sends n bytes, which are discarded.
    Data(usize),
    /// `*eof`: the client must close the connection.
    ExpectEof,
    /// `.`: the client sends lines up to a lone dot.
    DotBlock,
    /// A line the client must send, starting with these bytes (`<` prefix allowed).
    ExpectLine(Vec<u8>),
    /// `<<text`: exactly these bytes, no line end.
    ExpectBytes(Vec<u8>),
    /// `*starttls`: the TLS handshake (server side) starts now.
    StartTls,
    /// `*stoptls`: wait for the client's close_notify, answer it, go on in plain text.
    StopTls,
    /// `*fill n [text]`: send n bytes made of `text` (default `x`) repeated, no line end.
    Fill { len: usize, pattern: Vec<u8> },
    /// `*drip secs`: from now on, send byte by byte with this pause (0 turns it off).
    Drip(Duration),
    /// `### text`.
    Comment(String),
}

impl ServerAction {
    /// Whether this step ends the connection it runs on.
    pub fn ends_connection(&self) -> bool {
        matches!(self, ServerAction::Close | ServerAction::ExpectEof)
    }
}

/// One server script step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStep {
    pub loc: Loc,
    pub action: ServerAction,
}

/// A parsed server script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerScript {
    pub steps: Vec<ServerStep>,
}

/// Largest `*data` or `*fill` count.
const MAX_COUNT: usize = 1 << 30;

fn parse_secs(loc: &Loc, what: &str, text: &str) -> Result<Duration, ScriptError> {
    let text = text.trim();
    let secs: f64 = text.parse().map_err(|_| {
        syntax(
            loc,
            format!("{what} needs a number of seconds, got `{text}`"),
        )
    })?;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(syntax(
            loc,
            format!("{what}: `{text}` is not between 0 and 86400 seconds"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_count(loc: &Loc, what: &str, text: &str) -> Result<usize, ScriptError> {
    let text = text.trim();
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_COUNT => Ok(n),
        _ => Err(syntax(
            loc,
            format!("{what} needs a byte count up to {MAX_COUNT}, got `{text}`"),
        )),
    }
}

/// Splits a script into lines without line ends or trailing blanks; line numbers from 1.
fn script_lines<'a>(
    name: &'a Arc<str>,
    bytes: &'a [u8],
) -> impl Iterator<Item = Result<(Loc, &'a str), ScriptError>> + 'a {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = bytes.is_empty();
    trimmed
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(move |_| !empty)
        .map(move |(i, raw)| {
            let loc = Loc {
                file: name.clone(),
                line: i + 1,
            };
            let text = std::str::from_utf8(raw)
                .map_err(|_| syntax(&loc, "the line is not valid UTF-8"))?;
            Ok((loc, text.trim_end_matches(['\r', ' ', '\t'])))
        })
}

/// The text after a three- or four-character marker: empty, or after one space.
fn marker_rest<'a>(loc: &Loc, marker: &str, rest: &'a str) -> Result<&'a str, ScriptError> {
    if rest.is_empty() {
        Ok(rest)
    } else if let Some(text) = rest.strip_prefix(' ') {
        Ok(text)
    } else {
        Err(syntax(
            loc,
            format!("`{marker}` must be followed by a space (got `{marker}{rest}`)"),
        ))
    }
}

/// Whether a sent line asks for STARTTLS (`STARTTLS`, `STLS`, `a1 STARTTLS`).
fn is_starttls_line(text: &str) -> bool {
    text.split_ascii_whitespace()
        .next_back()
        .is_some_and(|w| w.eq_ignore_ascii_case("starttls") || w.eq_ignore_ascii_case("stls"))
}

fn crlf(mut data: Vec<u8>) -> Vec<u8> {
    data.extend_from_slice(b"\r\n");
    data
}

impl ClientScript {
    /// Reads and parses a client script; `<<< file` paths are relative to the script's folder.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let mut script = ClientScript::default();
        script.include(path, None, 0)?;
        Ok(script)
    }

    /// Parses script text; `name` is used in error messages, `<<< file` paths are
    /// relative to `base_dir`.
    pub fn parse(name: &str, text: &str, base_dir: &Path) -> Result<Self, ScriptError> {
        let mut script = ClientScript::default();
        script.parse_into(&Arc::from(name), text.as_bytes(), base_dir, 0)?;
        Ok(script)
    }

    /// Whether any step needs TLS to be configured (a STARTTLS line or `stoptls`).
    pub fn uses_tls(&self) -> bool {
        self.steps.iter().any(|s| {
            matches!(
                s.action,
                ClientAction::Send { starttls: true, .. } | ClientAction::StopTls
            )
        })
    }

    fn include(
        &mut self,
        path: &Path,
        from: Option<&Loc>,
        depth: usize,
    ) -> Result<(), ScriptError> {
        let bytes = std::fs::read(path).map_err(|source| match from {
            Some(loc) => syntax(loc, format!("cannot read {}: {source}", path.display())),
            None => ScriptError::Read {
                path: path.display().to_string(),
                source,
            },
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name: Arc<str> = Arc::from(path.display().to_string());
        self.parse_into(&name, &bytes, &base, depth)
    }

    fn parse_into(
        &mut self,
        name: &Arc<str>,
        bytes: &[u8],
        base_dir: &Path,
        depth: usize,
    ) -> Result<(), ScriptError> {
        for item in script_lines(name, bytes) {
            let (loc, line) = item?;
            let action = if let Some(rest) = line.strip_prefix("????") {
                ClientAction::ExpectRepeated(send_escapes(marker_rest(&loc, "????", rest)?))
            } else if let Some(rest) = line.strip_prefix("???*") {
                if !rest.is_empty() {
                    return Err(syntax(&loc, "nothing may follow `???*`"));
                }
                ClientAction::ExpectEof
            } else if let Some(rest) = line.strip_prefix("???") {
                ClientAction::Expect(send_escapes(marker_rest(&loc, "???", rest)?))
            } else if let Some(rest) = line.strip_prefix("+++") {
                ClientAction::Sleep(parse_secs(&loc, "`+++`", marker_rest(&loc, "+++", rest)?)?)
            } else if let Some(rest) = line.strip_prefix(">>>") {
                ClientAction::Send {
                    data: send_escapes(marker_rest(&loc, ">>>", rest)?),
                    starttls: false,
                }
            } else if let Some(rest) = line.strip_prefix("<<<") {
                let file = marker_rest(&loc, "<<<", rest)?.trim();
                if file.is_empty() {
                    return Err(syntax(&loc, "`<<<` needs a file name"));
                }
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(syntax(
                        &loc,
                        format!("`<<< {file}`: inclusions nest deeper than {MAX_INCLUDE_DEPTH}"),
                    ));
                }
                let path: PathBuf = base_dir.join(file);
                self.include(&path, Some(&loc), depth + 1)?;
                continue;
            } else if let Some(rest) = line.strip_prefix("###") {
                ClientAction::Comment(rest.strip_prefix(' ').unwrap_or(rest).to_owned())
            } else if let Some(rest) = line.strip_prefix(":eval:") {
                let data = eval_escapes(rest).map_err(|e| syntax(&loc, format!(":eval: {e}")))?;
                ClientAction::Send {
                    data,
                    starttls: false,
                }
            } else if let Some(rest) = line.strip_prefix(":noeol:") {
                ClientAction::Send {
                    data: send_escapes(rest),
                    starttls: false,
                }
            } else if let Some(rest) = line.strip_prefix(":sleep:") {
                ClientAction::Sleep(parse_secs(&loc, "`:sleep:`", rest)?)
            } else if line.starts_with(':')
                && let Some(end) = line[1..].find(':')
                && end > 0
                && line[1..=end].bytes().all(|b| b.is_ascii_lowercase())
            {
                return Err(syntax(
                    &loc,
                    format!(
                        "unknown prefix `{}` (known: :eval:, :noeol:, :sleep:; write `\\:` to send a line starting with a colon)",
                        &line[..=end + 1]
                    ),
                ));
            } else if line.eq_ignore_ascii_case("stoptls") {
                ClientAction::StopTls
            } else if let Some(rest) = strip_prefix_ignore_case(line, "starttls_wait") {
                let text = rest.trim_start();
                let data = if text.is_empty() {
                    b"STARTTLS".to_vec()
                } else if rest.starts_with([' ', '\t']) {
                    send_escapes(text)
                } else {
                    return Err(syntax(
                        &loc,
                        "`starttls_wait` must stand alone or be followed by a space and the line to send",
                    ));
                };
                ClientAction::Send {
                    data: crlf(data),
                    starttls: false,
                }
            } else {
                ClientAction::Send {
                    data: crlf(send_escapes(line)),
                    starttls: is_starttls_line(line),
                }
            };
            self.steps.push(ClientStep { loc, action });
        }
        Ok(())
    }
}

fn strip_prefix_ignore_case<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &line[prefix.len()..])
}

impl ServerScript {
    /// Reads and parses a server script.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let bytes = std::fs::read(path).map_err(|source| ScriptError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_bytes(&path.display().to_string(), &bytes)
    }

    /// Parses script text; `name` is used in error messages.
    pub fn parse(name: &str, text: &str) -> Result<Self, ScriptError> {
        Self::parse_bytes(name, text.as_bytes())
    }

    fn parse_bytes(name: &str, bytes: &[u8]) -> Result<Self, ScriptError> {
        let name: Arc<str> = Arc::from(name);
        let mut steps = Vec::new();
        for item in script_lines(&name, bytes) {
            let (loc, line) = item?;
            let action = if let Some(rest) = line.strip_prefix('>') {
                if rest == "*eof" {
                    ServerAction::Close
                } else if let Some(text) = rest.strip_prefix('>') {
                    ServerAction::Send(send_escapes(text.trim_start()))
                } else if let Some(text) = rest.strip_prefix("CR>") {
                    let mut data = send_escapes(text.trim_start());
                    data.push(b'\r');
                    ServerAction::Send(data)
                } else if let Some(text) = rest.strip_prefix("LF>") {
                    let mut data = send_escapes(text.trim_start());
                    data.push(b'\n');
                    ServerAction::Send(data)
                } else {
                    ServerAction::Send(crlf(send_escapes(rest.trim_start())))
                }
            } else if line.starts_with(|c: char| c.is_ascii_digit()) {
                ServerAction::Send(crlf(send_escapes(line)))
            } else if let Some(rest) = line.strip_prefix('*')
                && rest.starts_with(|c: char| c.is_ascii_alphabetic())
            {
                let (word, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
                let arg = arg.trim();
                let no_arg = |action: ServerAction| {
                    if arg.is_empty() {
                        Ok(action)
                    } else {
                        Err(syntax(&loc, format!("nothing may follow `*{word}`")))
                    }
                };
                match word {
                    "sleep" => ServerAction::Sleep(parse_secs(&loc, "`*sleep`", arg)?),
                    "data" => ServerAction::Data(parse_count(&loc, "`*data`", arg)?),
                    "eof" => no_arg(ServerAction::ExpectEof)?,
                    "starttls" => no_arg(ServerAction::StartTls)?,
                    "stoptls" => no_arg(ServerAction::StopTls)?,
                    "drip" => ServerAction::Drip(parse_secs(&loc, "`*drip`", arg)?),
                    "fill" => {
                        let (count, pattern) = arg.split_once(' ').unwrap_or((arg, ""));
                        let len = parse_count(&loc, "`*fill`", count)?;
                        let pattern = match send_escapes(pattern.trim_start()) {
                            p if p.is_empty() => b"x".to_vec(),
                            p => p,
                        };
                        ServerAction::Fill { len, pattern }
                    }
                    _ => {
                        return Err(syntax(
                            &loc,
                            format!(
                                "unknown directive `*{word}` (known: *sleep, *data, *eof, *starttls, *stoptls, *fill, *drip; write `<*{word}` to expect a client line starting with `*`)"
                            ),
                        ));
                    }
                }
            } else if line == "." {
                ServerAction::DotBlock
            } else if let Some(rest) = line.strip_prefix("###") {
                ServerAction::Comment(rest.strip_prefix(' ').unwrap_or(rest).to_owned())
            } else if let Some(rest) = line.strip_prefix("<<") {
                if rest.is_empty() {
                    return Err(syntax(
                        &loc,
                        "`<<` needs the bytes the client is expected to send",
                    ));
                }
                ServerAction::ExpectBytes(send_escapes(rest))
            } else if let Some(rest) = line.strip_prefix('<') {
                ServerAction::ExpectLine(send_escapes(rest))
            } else {
                ServerAction::ExpectLine(send_escapes(line))
            };
            steps.push(ServerStep { loc, action });
        }
        Ok(ServerScript { steps })
    }

    /// The per-connection sections: each ends after `*eof` or `>*eof`, or at the end
    /// of the script. Always at least one (possibly empty) section.
    pub fn sections(&self) -> Vec<Range<usize>> {
        let mut sections = Vec::new();
        let mut start = 0;
        for (i, step) in self.steps.iter().enumerate() {
            if step.action.ends_connection() {
                sections.push(start..i + 1);
                start = i + 1;
            }
        }
        if start < self.steps.len() || sections.is_empty() {
            sections.push(start..self.steps.len());
        }
        sections
    }

    /// Whether any step needs a TLS acceptor.
    pub fn uses_tls(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, ServerAction::StartTls | ServerAction::StopTls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(text: &str) -> Vec<ClientAction> {
        ClientScript::parse("t", text, Path::new("."))
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.action)
            .collect()
    }

    fn client_err(text: &str) -> String {
        ClientScript::parse("t.client", text, Path::new("."))
            .unwrap_err()
            .to_string()
    }

    fn server(text: &str) -> Vec<ServerAction> {
        ServerScript::parse("t", text)
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.action)
            .collect()
    }

    fn send(data: &[u8], starttls: bool) -> ClientAction {
        ClientAction::Send {
            data: data.to_vec(),
            starttls,
        }
    }

    #[test]
    fn client_line_kinds() {
        let actions = client(
            "??? * OK\n???*\n???? * \n+++ 1.5\n>>> a\\r\n### hi there\n:eval:\\x41\\102\n:noeol:x\\n\n:sleep:2\nstoptls\nstarttls_wait\nstarttls_wait a STARTTLS\na1 STARTTLS\nSTLS\nA NOOP \\Seen\n\n???\n",
        );
        assert_eq!(
            actions,
            vec![
                ClientAction::Expect(b"* OK".to_vec()),
                ClientAction::ExpectEof,
                ClientAction::ExpectRepeated(b"*".to_vec()),
                ClientAction::Sleep(Duration::from_millis(1500)),
                send(b"a\r", false),
                ClientAction::Comment("hi there".into()),
                send(b"AB", false),
                send(b"x\n", false),
                ClientAction::Sleep(Duration::from_secs(2)),
                ClientAction::StopTls,
                send(b"STARTTLS\r\n", false),
                send(b"a STARTTLS\r\n", false),
                send(b"a1 STARTTLS\r\n", true),
                send(b"STLS\r\n", true),
                send(b"A NOOP \\Seen\r\n", false),
                send(b"\r\n", false),
                ClientAction::Expect(Vec::new()),
            ]
        );
    }

    #[test]
    fn client_errors_name_file_and_line() {
        assert_eq!(
            client_err("a\n???x\n"),
            "t.client:2: `???` must be followed by a space (got `???x`)"
        );
        assert!(client_err("+++ soon").starts_with("t.client:1: `+++` needs a number"));
        assert!(client_err("+++ -1").contains("not between"));
        assert!(client_err("x\n???* y").starts_with("t.client:2: nothing may follow"));
        assert!(client_err(":eval:\\777").starts_with("t.client:1: :eval: octal"));
        assert!(client_err(":bogus:x").contains("unknown prefix `:bogus:`"));
        assert!(client_err("<<< /nonexistent/file").starts_with("t.client:1: cannot read"));
        assert!(client_err("starttls_waitx").contains("starttls_wait"));
        let err = ClientScript::parse_into_bytes_for_test(b"ok\n\xff\n");
        assert_eq!(err, "t:2: the line is not valid UTF-8");
    }

    impl ClientScript {
        fn parse_into_bytes_for_test(bytes: &[u8]) -> String {
            let mut s = ClientScript::default();
            s.parse_into(&Arc::from("t"), bytes, Path::new("."), 0)
                .unwrap_err()
                .to_string()
        }
    }

    #[test]
    fn client_includes_nest_and_report_their_own_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inner"), "A\n??? ok\n").unwrap();
        std::fs::write(dir.path().join("main"), "### start\n<<< inner\nB\n").unwrap();
        let script = ClientScript::load(&dir.path().join("main")).unwrap();
        assert_eq!(script.steps.len(), 4);
        assert_eq!(script.steps[2].loc.line, 2);
        assert!(script.steps[2].loc.file.ends_with("inner"));
        std::fs::write(dir.path().join("loop"), "<<< loop\n").unwrap();
        let err = ClientScript::load(&dir.path().join("loop")).unwrap_err();
        assert!(err.to_string().contains("nest deeper"), "{err}");
        std::fs::write(dir.path().join("bad"), "x\n+++ z\n").unwrap();
        std::fs::write(dir.path().join("outer"), "<<< bad\n").unwrap();
        let err = ClientScript::load(&dir.path().join("outer")).unwrap_err();
        assert!(err.to_string().contains("bad:2: `+++`"), "{err}");
    }

    #[test]
    fn server_line_kinds() {
        let actions = server(
            "220 ready\n> * OK hi\n>>partial\n>CR>cr\n>LF>lf\n>*eof\n*sleep 0.5\n*data 10\n*eof\n.\nEHLO\n<250 x\n<<abc\n*starttls\n*stoptls\n*fill 5 ab\n*fill 3\n*drip 0.01\n### note\n\n",
        );
        assert_eq!(
            actions,
            vec![
                ServerAction::Send(b"220 ready\r\n".to_vec()),
                ServerAction::Send(b"* OK hi\r\n".to_vec()),
                ServerAction::Send(b"partial".to_vec()),
                ServerAction::Send(b"cr\r".to_vec()),
                ServerAction::Send(b"lf\n".to_vec()),
                ServerAction::Close,
                ServerAction::Sleep(Duration::from_millis(500)),
                ServerAction::Data(10),
                ServerAction::ExpectEof,
                ServerAction::DotBlock,
                ServerAction::ExpectLine(b"EHLO".to_vec()),
                ServerAction::ExpectLine(b"250 x".to_vec()),
                ServerAction::ExpectBytes(b"abc".to_vec()),
                ServerAction::StartTls,
                ServerAction::StopTls,
                ServerAction::Fill {
                    len: 5,
                    pattern: b"ab".to_vec()
                },
                ServerAction::Fill {
                    len: 3,
                    pattern: b"x".to_vec()
                },
                ServerAction::Drip(Duration::from_millis(10)),
                ServerAction::Comment("note".into()),
                ServerAction::ExpectLine(Vec::new()),
            ]
        );
    }

    #[test]
    fn server_errors_and_sections() {
        let err = ServerScript::parse("s", "x\n*slep 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s:2: unknown directive `*slep`"), "{err}");
        let err = ServerScript::parse("s", "*data lots")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s:1: `*data` needs a byte count"), "{err}");
        let err = ServerScript::parse("s", "*eof now")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "s:1: nothing may follow `*eof`");
        let script = ServerScript::parse("s", "> a\nb\n*eof\n> c\n>*eof\n> d\n").unwrap();
        assert_eq!(script.sections(), vec![0..3, 3..5, 5..6]);
        let script = ServerScript::parse("s", "> a\n*eof\n").unwrap();
        assert_eq!(script.sections(), vec![0..2]);
        assert_eq!(ServerScript::default().sections(), vec![0..0]);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut client = ClientScript::default();
            if let Err(e) = client.parse_into(&Arc::from("p"), &bytes, Path::new("/nonexistent"), 0) {
                proptest::prop_assert!(e.to_string().starts_with("p:"), "{}", e);
            }
            if let Err(e) = ServerScript::parse_bytes("p", &bytes) {
                proptest::prop_assert!(e.to_string().starts_with("p:"), "{}", e);
            }
        }

        #[test]
        fn script_like_lines_never_panic(lines in proptest::collection::vec("[?+<>#:*.a-z0-9 \\\\{}]{0,12}", 0..20)) {
            let text = lines.join("\n");
            let _ = ClientScript::parse("p", &text, Path::new("/nonexistent"));
            if let Ok(script) = ServerScript::parse("p", &text) {
                let sections = script.sections();
                proptest::prop_assert!(!sections.is_empty());
                proptest::prop_assert_eq!(sections.last().map(|r| r.end), Some(script.steps.len()));
            }
        }
    }
}
