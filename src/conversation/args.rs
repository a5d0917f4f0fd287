//! The `key=value` arguments of `imaptest client` and `imaptest server`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::client::ClientOptions;
use super::server::ServerOptions;
use crate::config::{TlsMode, TlsSettings};

/// Default read, write and connect timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A bad command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("missing SCRIPT: usage: {0}")]
    NoScript(&'static str),
    #[error("more than one SCRIPT given (`{0}` and `{1}`)")]
    TwoScripts(String, String),
    #[error("missing port=: usage: {0}")]
    NoPort(&'static str),
    #[error("invalid {key} value `{value}`: {why}")]
    Value {
        key: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("unknown argument `{arg}` for `imaptest {command}` (known: {known})")]
    Unknown {
        arg: String,
        command: &'static str,
        known: &'static str,
    },
    #[error("cert= and key= must be given together")]
    CertWithoutKey,
}

pub const CLIENT_USAGE: &str = "imaptest client SCRIPT host=HOST port=PORT [ssl|starttls] [ssl=any-cert] [ssl_ca_file=FILE] [timeout=SECS]";
pub const SERVER_USAGE: &str = "imaptest server SCRIPT [port=PORT] [host=LOOPBACK] [connections=N] [timeout=SECS] [ssl] [cert=FILE key=FILE]";

/// `imaptest client --help`.
pub const CLIENT_HELP: &str = "\
Runs a client script against a server; exit 0 when the whole script matched.

Script lines:
  ??? text         the next server line must start with text (??? alone: any line)
  ???? text        skip server lines starting with text
  ???*             the server must close the connection
  +++ n            sleep n seconds (also :sleep:n)
  >>> text         send text without a line end (also :noeol:text)
  :eval:text       send text after escapes (\\t \\0 \\e \\NNN \\xHH \\x{HHHH}), no line end
  <<< file         insert the script lines of file
  ### text         copy the line to stdout and stderr
  stoptls          end TLS and go on in plain text
  starttls_wait X  send X (default STARTTLS) without switching to TLS
  anything else    sent with CRLF; a line ending in STARTTLS or STLS switches to
                   TLS after the next ??? line that reads a positive reply
Sent and expected text: \\r \\n \\xHH \\\\ become bytes; other backslashes stay.
";

/// `imaptest server --help`.
pub const SERVER_HELP: &str = "\
Plays a server script to clients on loopback; exit 0 when every expected line came.

Script lines:
  >text, 2xx text  send a line (>>text: no line end; >CR>text, >LF>text)
  >*eof            close the connection
  *sleep n         sleep n seconds
  *data n          the client sends n bytes, discarded
  *eof             the client must close the connection
  .                the client sends lines up to a lone dot
  <text, text      the client sends a line starting with text (<<text: exact bytes)
  *starttls        TLS handshake now; *stoptls ends TLS
  *fill n [text]   send n bytes of text repeated (default x), no line end
  *drip secs       send byte by byte with this pause (0: off)
  ### text         copy the line to stdout and stderr
A section ends at *eof or >*eof; connection k plays section k (cycling).
";

/// Whether the arguments ask for help.
pub fn wants_help(args: &[String]) -> bool {
    args.iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "help"))
}

fn port(value: &str) -> Result<u16, ArgsError> {
    value.parse().map_err(|_| ArgsError::Value {
        key: "port",
        value: value.to_owned(),
        why: "expected a number from 0 to 65535",
    })
}

fn timeout(value: &str) -> Result<Duration, ArgsError> {
    match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(ArgsError::Value {
            key: "timeout",
            value: value.to_owned(),
            why: "expected seconds, more than 0 and at most 86400",
        }),
    }
}

fn set_script(script: &mut Option<PathBuf>, arg: &str) -> Result<(), ArgsError> {
    if let Some(first) = script {
        return Err(ArgsError::TwoScripts(
            first.display().to_string(),
            arg.to_owned(),
        ));
    }
    *script = Some(PathBuf::from(arg));
    Ok(())
}

/// `imaptest client` arguments: the script path and the options.
pub fn client_args(args: &[String]) -> Result<(PathBuf, ClientOptions), ArgsError> {
    const KNOWN: &str = "host=, port=, ssl, ssl=any-cert, starttls, ssl_ca_file=, timeout=";
    let mut script = None;
    let mut host = "127.0.0.1".to_owned();
    let mut port_no = None;
    let mut tls = TlsSettings::default();
    let mut ssl = false;
    let mut starttls = false;
    let mut timeout_d = DEFAULT_TIMEOUT;
    for arg in args {
        match arg.split_once('=') {
            Some(("host", v)) => host = v.to_owned(),
            Some(("port", v)) => port_no = Some(port(v)?),
            Some(("ssl", "any-cert")) => {
                ssl = true;
                tls.accept_any_cert = true;
            }
            Some(("ssl", v)) => {
                return Err(ArgsError::Value {
                    key: "ssl",
                    value: v.to_owned(),
                    why: "expected `ssl` or `ssl=any-cert`",
                });
            }
            Some(("ssl_ca_file", v)) => tls.ca_file = Some(PathBuf::from(v)),
            Some(("timeout", v)) => timeout_d = timeout(v)?,
            Some(_) => {
                return Err(ArgsError::Unknown {
                    arg: arg.clone(),
                    command: "client",
                    known: KNOWN,
                });
            }
            None if arg == "ssl" => ssl = true,
            None if arg == "starttls" => starttls = true,
            None if arg.starts_with('-') && arg.len() > 1 => {
                return Err(ArgsError::Unknown {
                    arg: arg.clone(),
                    command: "client",
                    known: KNOWN,
                });
            }
            None => set_script(&mut script, arg)?,
        }
    }
    tls.mode = match (starttls, ssl) {
        (true, _) => TlsMode::StartTls,
        (false, true) => TlsMode::Implicit,
        (false, false) => TlsMode::Plain,
    };
    let script = script.ok_or(ArgsError::NoScript(CLIENT_USAGE))?;
    let port = port_no.ok_or(ArgsError::NoPort(CLIENT_USAGE))?;
    Ok((
        script,
        ClientOptions {
            host,
            port,
            tls,
            timeout: timeout_d,
        },
    ))
}

/// `imaptest server` arguments: the script path and the options.
pub fn server_args(args: &[String]) -> Result<(PathBuf, ServerOptions), ArgsError> {
    const KNOWN: &str = "port=, host=, connections=, timeout=, ssl, cert=, key=";
    let mut script = None;
    let mut options = ServerOptions {
        timeout: DEFAULT_TIMEOUT,
        ..ServerOptions::default()
    };
    let mut cert = None;
    let mut key = None;
    for arg in args {
        match arg.split_once('=') {
            Some(("port", v)) => options.port = port(v)?,
            Some(("host", v)) => {
                let ip: IpAddr = v
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| ArgsError::Value {
                        key: "host",
                        value: v.to_owned(),
                        why: "expected a loopback IP address (127.0.0.1 or ::1)",
                    })?;
                if !ip.is_loopback() {
                    return Err(ArgsError::Value {
                        key: "host",
                        value: v.to_owned(),
                        why: "the script server listens on loopback addresses only",
                    });
                }
                options.host = ip;
            }
            Some(("connections", v)) => match v.parse::<usize>() {
                Ok(n) if n > 0 => options.connections = Some(n),
                _ => {
                    return Err(ArgsError::Value {
                        key: "connections",
                        value: v.to_owned(),
                        why: "expected a number of connections, at least 1",
                    });
                }
            },
            Some(("timeout", v)) => options.timeout = timeout(v)?,
            Some(("cert", v)) => cert = Some(PathBuf::from(v)),
            Some(("key", v)) => key = Some(PathBuf::from(v)),
            Some(_) => {
                return Err(ArgsError::Unknown {
                    arg: arg.clone(),
                    command: "server",
                    known: KNOWN,
                });
            }
            None if arg == "ssl" => options.tls_on_connect = true,
            None if arg.starts_with('-') && arg.len() > 1 => {
                return Err(ArgsError::Unknown {
                    arg: arg.clone(),
                    command: "server",
                    known: KNOWN,
                });
            }
            None => set_script(&mut script, arg)?,
        }
    }
    options.cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err(ArgsError::CertWithoutKey),
    };
    let script = script.ok_or(ArgsError::NoScript(SERVER_USAGE))?;
    Ok((script, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn client_arguments() {
        let (script, o) =
            client_args(&v(&["s.txt", "host=::1", "port=143", "timeout=2.5"])).unwrap();
        assert_eq!(script, PathBuf::from("s.txt"));
        assert_eq!(o.host, "::1");
        assert_eq!(o.port, 143);
        assert_eq!(o.tls.mode, TlsMode::Plain);
        assert_eq!(o.timeout, Duration::from_millis(2500));
        let (_, o) = client_args(&v(&["s", "port=1", "ssl=any-cert"])).unwrap();
        assert_eq!(o.tls.mode, TlsMode::Implicit);
        assert!(o.tls.accept_any_cert);
        let (_, o) = client_args(&v(&[
            "s",
            "port=1",
            "starttls",
            "ssl=any-cert",
            "ssl_ca_file=ca",
        ]))
        .unwrap();
        assert_eq!(o.tls.mode, TlsMode::StartTls);
        assert_eq!(o.tls.ca_file, Some(PathBuf::from("ca")));
        assert!(matches!(
            client_args(&v(&["port=1"])),
            Err(ArgsError::NoScript(_))
        ));
        assert!(matches!(client_args(&v(&["s"])), Err(ArgsError::NoPort(_))));
        assert!(matches!(
            client_args(&v(&["s", "t", "port=1"])),
            Err(ArgsError::TwoScripts(..))
        ));
        let err = client_args(&v(&["s", "port=1", "bogus=1"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown argument `bogus=1`"), "{err}");
        let err = client_args(&v(&["s", "port=x"])).unwrap_err().to_string();
        assert!(err.contains("invalid port value `x`"), "{err}");
        assert!(client_args(&v(&["s", "port=1", "timeout=0"])).is_err());
        assert!(client_args(&v(&["s", "port=1", "ssl=maybe"])).is_err());
    }

    #[test]
    fn server_arguments() {
        let (_, o) = server_args(&v(&["s", "port=0", "connections=3", "ssl", "host=::1"])).unwrap();
        assert_eq!(o.connections, Some(3));
        assert!(o.tls_on_connect);
        assert!(o.host.is_loopback());
        let err = server_args(&v(&["s", "host=10.0.0.1"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback"), "{err}");
        assert_eq!(
            server_args(&v(&["s", "cert=c"])).unwrap_err(),
            ArgsError::CertWithoutKey
        );
        assert!(server_args(&v(&["s", "connections=0"])).is_err());
        let (_, o) = server_args(&v(&["s", "cert=c", "key=k"])).unwrap();
        assert_eq!(o.cert, Some((PathBuf::from("c"), PathBuf::from("k"))));
    }
}
