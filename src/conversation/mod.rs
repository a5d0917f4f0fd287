//! Conversation scripts in the style of the Exim test suite's `client` and `server`
//! programs: plain-text scripts that drive ([`client`]) or imitate ([`server`]) a
//! line-protocol peer byte by byte (IMAP, POP3, LMTP, SMTP, with or without TLS).
//!
//! # Client scripts (`imaptest client SCRIPT host=… port=…`)
//!
//! | line | meaning |
//! | --- | --- |
//! | `??? text` | the next server line must start with `text` (`???` alone: any line) |
//! | `???*` | the server must close the connection |
//! | `???? text` | skip server lines starting with `text`; the first other line is kept |
//! | `+++ n` | sleep n seconds (decimals allowed) |
//! | `>>> text` | send `text` (escapes below) without a line end |
//! | `<<< file` | insert the script lines of `file` (relative to the script's folder) |
//! | `### text` | copy the line to stdout and stderr |
//! | `:eval:text` | send `text` after the full escape set, nothing appended |
//! | `:noeol:text` | send `text` without a line end |
//! | `:sleep:n` | sleep n seconds |
//! | `stoptls` | end TLS (close_notify both ways) and go on in plain text |
//! | `starttls_wait [line]` | send `line` (default `STARTTLS`) without switching to TLS |
//! | anything else | sent with CRLF |
//!
//! Sent and expected text turn `\r`, `\n`, `\xHH` and `\\` into bytes and keep any
//! other backslash as written (so `\Seen` is sent and matched as is). `:eval:` also
//! knows `\t`, `\0`, `\e`, `\a`, octal `\NNN` and `\x{HHHH}`. Lines are shown in the
//! same notation (control bytes as `\r`, `\n`, `\t`, `\xHH`).
//! Trailing blanks of script lines are dropped (write `\x20` to send one).
//!
//! A sent line whose last word is `STARTTLS` or `STLS` (`a1 STARTTLS`, `STLS`,
//! `STARTTLS`) arms the TLS switch: the next `???` line that reads a positive reply
//! (`2xx`, `+OK`, `tag OK`) starts TLS right after it; a negative one disarms it.
//! Bytes the server sent after that reply, before the handshake, are an error.
//!
//! # Server scripts (`imaptest server SCRIPT port=…`)
//!
//! | line | meaning |
//! | --- | --- |
//! | `>text`, or a line starting with a digit | send the line with CRLF |
//! | `>>text` / `>CR>text` / `>LF>text` | send without line end / with CR / with LF |
//! | `>*eof` | close the connection |
//! | `*sleep n` | sleep n seconds |
//! | `*data n` | the client sends n bytes, which are discarded |
//! | `*eof` | the client must close the connection |
//! | `.` | the client sends lines up to a lone dot |
//! | `<text` or any other line | the client sends a line starting with `text` |
//! | `<<text` | the client sends exactly these bytes (no line end) |
//! | `*starttls` / `*stoptls` | start / end TLS (server side) now |
//! | `*fill n [text]` | send n bytes of `text` (default `x`) repeated, no line end |
//! | `*drip secs` | send byte by byte with this pause from now on (0: off) |
//! | `### text` | copy the line to stdout and stderr |
//!
//! `*eof` and `>*eof` end a connection's section; connection k runs section k (cycling
//! when there are more connections than sections). The server listens on loopback only.

pub mod args;
pub mod client;
mod conn;
pub mod escape;
pub mod script;
pub mod server;
mod transcript;

use std::process::ExitCode;

pub use client::{ClientFailure, ClientOptions, ClientReport, run_script, run_script_until};
pub use script::{ClientScript, Loc, ScriptError, ServerScript};
pub use server::{ServerFailure, ServerOptions, ServerReport, bind};
pub use transcript::{Captured, Transcript};

/// Exit status when the script did not match (the same as failed scripted tests).
pub const EXIT_MISMATCH: u8 = crate::exit::ERRORS;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `imaptest client SCRIPT host=… port=… [ssl|starttls] [ssl=any-cert] [ssl_ca_file=…] [timeout=…]`
/// (the arguments after `client`). Exit 0 when the whole script matched, 2 when it did not
/// (the reason on stderr as `Error: file:line: …`); `Err` when it could not start.
pub fn client_main(args: &[String]) -> anyhow::Result<ExitCode> {
    if args::wants_help(args) {
        print!("usage: {}\n\n{}", args::CLIENT_USAGE, args::CLIENT_HELP);
        return Ok(ExitCode::SUCCESS);
    }
    let (path, options) = args::client_args(args)?;
    let script = ClientScript::load(&path)?;
    let result = runtime()?.block_on(async {
        let mut transcript = Transcript::stdio();
        run_script(&script, &options, &mut transcript).await
    });
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(ClientFailure::Connect(e)) => Err(e.into()),
        Err(failure) => {
            eprintln!("Error: {failure}");
            Ok(ExitCode::from(EXIT_MISMATCH))
        }
    }
}

/// `imaptest server SCRIPT port=… [connections=N] [timeout=…] [ssl] [cert=… key=…]`
/// (the arguments after `server`). Exit 0 when every expected line came, 2 at the first
/// mismatch (the reason on stderr as `Error: file:line: …`); `Err` when it could not start.
pub fn server_main(args: &[String]) -> anyhow::Result<ExitCode> {
    if args::wants_help(args) {
        print!("usage: {}\n\n{}", args::SERVER_USAGE, args::SERVER_HELP);
        return Ok(ExitCode::SUCCESS);
    }
    let (path, options) = args::server_args(args)?;
    let script = ServerScript::load(&path)?;
    runtime()?.block_on(async {
        let (addr, task) = bind(script, options, Transcript::stdio()).await?;
        println!("Listening on {addr}");
        match task.await {
            Ok(Ok(_)) => Ok(ExitCode::SUCCESS),
            Ok(Err(failure)) => {
                eprintln!("Error: {failure}");
                Ok(ExitCode::from(EXIT_MISMATCH))
            }
            Err(join) => Err(anyhow::anyhow!("the server task failed: {join}")),
        }
    })
}
