use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::config::{RunTime, TlsMode};

fn env() -> Env {
    Env {
        home: Some(PathBuf::from("/home/t")),
        user: Some("tester".to_owned()),
        ..Env::default()
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn parse_env(args: &[&str], env: &Env) -> Result<Command, CliError> {
    parse_with_env(&strings(args), env)
}

fn run(args: &[&str]) -> Draft {
    match parse_draft(&strings(args), &env()) {
        Ok(parsed) => parsed.settings,
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn err(args: &[&str]) -> String {
    match parse_env(args, &env()) {
        Err(e) => e.to_string(),
        Ok(other) => panic!("{args:?} parsed: {other:?}"),
    }
}

fn p(s: &Draft, state: State) -> (u8, u8) {
    (s.probabilities.get(state), s.probabilities.again(state))
}

#[test]
fn defaults() {
    let s = run(&[]);
    assert_eq!(s.host, "127.0.0.1");
    assert_eq!(s.port, None);
    assert_eq!(s.imap_port(), 143);
    assert_eq!(s.user.template, "tester");
    assert_eq!(s.user.users, (1, 99));
    assert_eq!(s.user.domains, (1, 99));
    assert_eq!(s.user.password, "pass");
    assert_eq!(s.user.mech.name(), "LOGIN");
    assert_eq!(s.clients, 10);
    assert_eq!(s.msgs, 30);
    assert_eq!(s.mbox, PathBuf::from("/home/t/mail/dovecot-crlf"));
    assert_eq!(s.mailbox, "INBOX");
    assert_eq!(s.tls, crate::config::TlsSettings::default());
    assert_eq!(s.secs, None);
    assert_eq!(s.rawlog, None);
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!(p(&s, State::Login), (100, 0));
    assert_eq!(p(&s, State::Authenticate), (0, 0));
    assert_eq!(p(&s, State::Copy).0, 0, "no copybox");
    assert_eq!(p(&s, State::Checkpoint).0, 0);
    assert_eq!(p(&s, State::Fetch2), (100, 30));
    assert_eq!(p(&s, State::Append), (100, 5));
}

type Check = fn(&Draft) -> bool;

/// One or more cases per key and flag of the table.
const KEY_CASES: &[(&[&str], Check)] = &[
    (&["user=u%d@d%d.org"], |s| s.user.template == "u%d@d%d.org"),
    (&["user=a=b"], |s| s.user.template == "a=b"),
    (&["user=u%04i@d%d%%"], |s| s.user.template == "u%04i@d%d%%"),
    (&["user=100%%"], |s| s.user.template == "100%%"),
    (&["user=u%064d"], |s| s.user.template == "u%064d"),
    (&["users=5"], |s| s.user.users == (1, 5)),
    (&["users=0-7"], |s| s.user.users == (0, 7)),
    (&["users=3-3"], |s| s.user.users == (3, 3)),
    (&["domains=20"], |s| s.user.domains == (1, 20)),
    (&["domains=10-20"], |s| s.user.domains == (10, 20)),
    (&["userfile=/etc/users"], |s| {
        s.user.userfile == Some(PathBuf::from("/etc/users"))
    }),
    (&["userfile=~/users"], |s| {
        s.user.userfile == Some(PathBuf::from("/home/t/users"))
    }),
    (&["user2=other"], |s| {
        s.user.user2.as_deref() == Some("other")
    }),
    (&["pass=sw=ord"], |s| s.user.password == "sw=ord"),
    (&["master=admin"], |s| {
        s.user.master.as_deref() == Some("admin")
    }),
    (&["mech=SCRAM-SHA-256"], |s| {
        s.user.mech.name() == "SCRAM-SHA-256"
    }),
    (&["summary=~/s.json"], |s| {
        s.summary == Some(PathBuf::from("/home/t/s.json"))
    }),
    (&["csv_format=wide"], |s| {
        s.csv_format == crate::config::CsvFormat::Wide
    }),
    (&["csv_format=long"], |s| {
        s.csv_format == crate::config::CsvFormat::Long
    }),
    (
        &["slo=imap.LOGIN.p99 < 500ms; errors == 0", "slo=warnings<3"],
        |s| {
            s.slos.iter().map(|o| o.text.as_str()).collect::<Vec<_>>()
                == ["imap.LOGIN.p99 < 500ms", "errors == 0", "warnings<3"]
        },
    ),
    (&["warmup=30s"], |s| {
        s.warmup == Some(Duration::from_secs(30))
    }),
    (&["overwrite"], |s| s.overwrite),
    (&["shard=2/5"], |s| {
        s.shard == crate::shard::Shard::new(2, 5)
    }),
    (&["start_at=1000.5"], |s| {
        s.start_at == Some(std::time::UNIX_EPOCH + Duration::from_millis(1_000_500))
    }),
    (&["report=~/r.html"], |s| {
        s.report == Some(PathBuf::from("/home/t/r.html"))
    }),
    (&["server_pid=4242"], |s| {
        s.server_usage == Some(crate::usage::ServerSource::ProcessTree(4242))
    }),
    (&["server_cgroup=/sys/fs/cgroup/dovecot"], |s| {
        s.server_usage
            == Some(crate::usage::ServerSource::Cgroup(PathBuf::from(
                "/sys/fs/cgroup/dovecot",
            )))
    }),
    (&["host=imap.example.org"], |s| {
        s.host == "imap.example.org" && s.connect_host() == "imap.example.org"
    }),
    (&["hostip=10.0.0.1"], |s| s.connect_host() == "10.0.0.1"),
    (&["port=1"], |s| s.port == Some(1)),
    (&["port=65535"], |s| s.port == Some(65535)),
    (&["ssl"], |s| {
        s.tls.mode == TlsMode::Implicit && !s.tls.accept_any_cert && s.imap_port() == 993
    }),
    (&["ssl=any-cert"], |s| {
        s.tls.mode == TlsMode::Implicit && s.tls.accept_any_cert
    }),
    (&["starttls"], |s| {
        s.tls.mode == TlsMode::StartTls && !s.tls.accept_any_cert && s.imap_port() == 143
    }),
    (&["starttls", "ssl=any-cert"], |s| {
        s.tls.mode == TlsMode::StartTls && s.tls.accept_any_cert
    }),
    (&["ssl=any-cert", "starttls"], |s| {
        s.tls.mode == TlsMode::StartTls && s.tls.accept_any_cert
    }),
    (&["ssl=any-cert", "ssl"], |s| {
        s.tls.mode == TlsMode::Implicit && !s.tls.accept_any_cert
    }),
    (&["ssl", "port=994"], |s| s.imap_port() == 994),
    (&["ssl_ca_file=/etc/ca.pem"], |s| {
        s.tls.ca_file == Some(PathBuf::from("/etc/ca.pem")) && s.tls.mode == TlsMode::Plain
    }),
    (&["clients=1"], |s| s.clients == 1),
    (&["clients=4294967295"], |s| s.clients == u32::MAX),
    (&["timeout=5"], |s| s.timeout == Duration::from_secs(5)),
    (&["timeout=500ms"], |s| {
        s.timeout == Duration::from_millis(500)
    }),
    (&["timeout=2m 30s"], |s| {
        s.timeout == Duration::from_secs(150)
    }),
    (&["timeout=1000000000"], |s| {
        s.timeout == Duration::from_secs(1_000_000_000)
    }),
    (&["secs=1000000000,1000000000"], |s| {
        s.secs.is_some_and(|r| r.run == r.stop_grace)
    }),
    (&["stalled_disconnect_timeout=60"], |s| {
        s.stalled_disconnect_timeout == Some(Duration::from_secs(60))
    }),
    (&["stalled_disconnect_timeout=0"], |s| {
        s.stalled_disconnect_timeout.is_none()
    }),
    (&["max_literal=1048576"], |s| s.max_literal == 1 << 20),
    (&["max_literal=0"], |s| s.max_literal == 0),
    (&["box=test%{client_idx}"], |s| {
        s.mailbox == "test%{client_idx}"
    }),
    (&["copybox=Trash"], |s| {
        s.copybox.as_deref() == Some("Trash") && s.probabilities.get(State::Copy) == 33
    }),
    (&["mbox=/tmp/x.mbox"], |s| {
        s.mbox.as_path() == std::path::Path::new("/tmp/x.mbox")
    }),
    (&["mbox=~/mail/m"], |s| {
        s.mbox.as_path() == std::path::Path::new("/home/t/mail/m")
    }),
    (&["mbox=~"], |s| {
        s.mbox.as_path() == std::path::Path::new("/home/t")
    }),
    (&["mbox=~other/m"], |s| {
        s.mbox.as_path() == std::path::Path::new("~other/m")
    }),
    (&["mbox=rel/m"], |s| {
        s.mbox.as_path() == std::path::Path::new("rel/m")
    }),
    (&["random_msg_size=4096"], |s| s.random_msg_size == 4096),
    (&["msgs=0"], |s| s.msgs == 0),
    (&["msgs=1000"], |s| s.msgs == 1000),
    (&["secs=10"], |s| {
        s.secs
            == Some(RunTime {
                run: Duration::from_secs(10),
                stop_grace: Duration::from_secs(30),
            })
    }),
    (&["secs=10,5"], |s| {
        s.secs
            == Some(RunTime {
                run: Duration::from_secs(10),
                stop_grace: Duration::from_secs(5),
            })
    }),
    (&["secs=10,0"], |s| {
        s.secs.is_some_and(|r| r.stop_grace.is_zero())
    }),
    (&["seed=42"], |s| s.seed == Some(42)),
    (&["seed=18446744073709551615"], |s| s.seed == Some(u64::MAX)),
    (&["checkpoint=5"], |s| {
        s.checkpoint == Some(Duration::from_secs(5))
            && s.probabilities.get(State::Checkpoint) == 100
    }),
    (&["checkpoint=0"], |s| {
        s.checkpoint.is_none() && s.probabilities.get(State::Checkpoint) == 0
    }),
    (&["test=/suite"], |s| {
        s.test == Some(PathBuf::from("/suite")) && s.mailbox == "imaptest"
    }),
    (&["test=/suite", "box=other"], |s| s.mailbox == "other"),
    (&["profile=~/p.conf"], |s| {
        s.profile == Some(PathBuf::from("/home/t/p.conf"))
    }),
    (&["output=out.txt"], |s| {
        s.output == Some(PathBuf::from("out.txt"))
    }),
    (&["csv=stats.csv"], |s| {
        s.csv == Some(PathBuf::from("stats.csv"))
    }),
    (&["junit=results.xml"], |s| {
        s.junit == Some(PathBuf::from("results.xml"))
    }),
    (&["session_csv=sessions.csv"], |s| {
        s.session_csv == Some(PathBuf::from("sessions.csv"))
    }),
    (&["plan=plan.csv"], |s| {
        s.plan == Some(PathBuf::from("plan.csv"))
    }),
    (&["rawlog"], |s| s.rawlog == Some(PathBuf::from("."))),
    (&["rawlog=/tmp/logs"], |s| {
        s.rawlog == Some(PathBuf::from("/tmp/logs"))
    }),
    (&["random"], |s| s.random_states),
    (&["no_pipelining"], |s| s.no_pipelining),
    (&["no_tracking"], |s| s.no_tracking),
    (&["dry_run"], |s| s.dry_run),
    (&["disconnect_quit"], |s| s.disconnect_quit),
    (&["error_quit"], |s| s.error_quit),
    (&["own_msgs"], |s| s.own_msgs),
    (&["own_flags"], |s| s.own_flags),
    (&["qresync"], |s| s.qresync && !s.imap4rev2),
    (&["imap4rev2"], |s| s.imap4rev2 && s.qresync),
    (&["host=a", "host=b"], |s| s.host == "b"),
];

#[test]
fn every_key_parses() {
    for (args, check) in KEY_CASES {
        let s = run(args);
        assert!(check(&s), "{args:?} gave {s:#?}");
    }
}

#[test]
fn every_key_has_a_case() {
    for key in KEYS {
        if key.name == "pass_file" {
            // Needs an owner-only file: passwords_from_the_environment_and_pass_file.
            continue;
        }
        assert!(
            KEY_CASES
                .iter()
                .any(|(args, _)| args[0].split('=').next() == Some(key.name)),
            "no test case for `{}`",
            key.name
        );
    }
}

#[test]
fn flags_reject_values() {
    for key in KEYS.iter().filter(|k| k.kind == Kind::Flag) {
        let arg = format!("{}=1", key.name);
        assert_eq!(
            err(&[&arg]),
            format!(
                "`{0}` takes no value: write `{0}` instead of `{0}=1`",
                key.name
            )
        );
    }
}

#[test]
fn value_keys_need_values() {
    for key in KEYS.iter().filter(|k| k.kind == Kind::Value) {
        let want = format!("`{0}` needs a value: {0}={1}", key.name, key.hint);
        assert_eq!(err(&[key.name]), want);
        let empty = format!("{}=", key.name);
        assert_eq!(
            err(&[&empty]),
            format!("`{0}=` needs a value: {0}={1}", key.name, key.hint)
        );
    }
    assert_eq!(
        err(&["ssl="]),
        "`ssl=` needs a value: ssl=any-cert, or `ssl` alone"
    );
    assert_eq!(
        err(&["rawlog="]),
        "`rawlog=` needs a value: rawlog=DIR, or `rawlog` alone"
    );
}

#[test]
fn error_texts() {
    for (args, want) in [
        (
            &["clints=10"][..],
            "unknown argument `clints=10` (did you mean `clients`?)",
        ),
        (
            &["clients=ten"],
            "invalid clients count `ten` in `clients=ten`: expected a whole number",
        ),
        (
            &["clients=0"],
            "invalid clients count `0` in `clients=0`: expected a whole number of at least 1",
        ),
        (
            &["clients=-1"],
            "invalid clients count `-1` in `clients=-1`: expected a whole number",
        ),
        (
            &["clients=+1"],
            "invalid clients count `+1` in `clients=+1`: expected a whole number",
        ),
        (
            &["clients= 1"],
            "invalid clients count ` 1` in `clients= 1`: expected a whole number",
        ),
        (
            &["clients=4294967296"],
            "invalid clients count `4294967296` in `clients=4294967296`: expected a whole number no larger than 4294967295",
        ),
        (&["pass"], "`pass` needs a value: pass=PASSWORD"),
        (
            &["ssl=x"],
            "invalid ssl value `x`: expected `ssl` or `ssl=any-cert`",
        ),
        (
            &["ssl=ANY-CERT"],
            "invalid ssl value `ANY-CERT`: expected `ssl` or `ssl=any-cert`",
        ),
        (
            &["port=0"],
            "invalid port `0` in `port=0`: expected a port number from 1 to 65535",
        ),
        (
            &["port=65536"],
            "invalid port `65536` in `port=65536`: expected a port number from 1 to 65535",
        ),
        (
            &["port=imap"],
            "invalid port `imap` in `port=imap`: expected a port number from 1 to 65535",
        ),
        (
            &["users=0"],
            "invalid users range `0` in `users=0`: expected N of at least 1, or A-B with A <= B",
        ),
        (
            &["users=5-2"],
            "invalid users range `5-2` in `users=5-2`: expected N (meaning 1-N) or A-B with A <= B",
        ),
        (
            &["domains=a-b"],
            "invalid domains range `a-b` in `domains=a-b`: expected N (meaning 1-N) or A-B with A <= B",
        ),
        (
            &["domains=1-"],
            "invalid domains range `1-` in `domains=1-`: expected N (meaning 1-N) or A-B with A <= B",
        ),
        (
            &["users=1-2-3"],
            "invalid users range `1-2-3` in `users=1-2-3`: expected N (meaning 1-N) or A-B with A <= B",
        ),
        (
            &["secs=x"],
            "invalid secs `x` in `secs=x`: expected a whole number",
        ),
        (
            &["secs=0"],
            "invalid secs `0` in `secs=0`: expected at least 1 second (leave secs out to run until interrupted)",
        ),
        (
            &["secs=5,x"],
            "invalid secs final wait `x` in `secs=5,x`: expected a whole number",
        ),
        (
            &["secs=5,"],
            "invalid secs final wait `` in `secs=5,`: expected a whole number",
        ),
        (
            &["seed=-1"],
            "invalid seed `-1` in `seed=-1`: expected a whole number",
        ),
        (
            &["timeout=0"],
            "invalid timeout `0` in `timeout=0`: expected seconds or a duration such as 500ms or 2m, above zero",
        ),
        (
            &["timeout=0ms"],
            "invalid timeout `0ms` in `timeout=0ms`: expected seconds or a duration such as 500ms or 2m, above zero",
        ),
        (
            &["timeout=soon"],
            "invalid timeout `soon` in `timeout=soon`: expected seconds or a duration such as 500ms or 2m, above zero",
        ),
        (
            &["checkpoint=1s"],
            "invalid checkpoint interval `1s` in `checkpoint=1s`: expected a whole number",
        ),
        (
            &["msgs=many"],
            "invalid msgs count `many` in `msgs=many`: expected a whole number",
        ),
        (
            &["max_literal=1k"],
            "invalid max_literal size `1k` in `max_literal=1k`: expected a whole number",
        ),
        (
            &["fetch=abc"],
            "invalid probability `abc` in `fetch=abc`: expected a percentage from 0 to 255 (100 or more means always)",
        ),
        (
            &["fetch=256"],
            "invalid probability `256` in `fetch=256`: expected a percentage from 0 to 255 (100 or more means always)",
        ),
        (
            &["fetch=50,300"],
            "invalid again probability `300` in `fetch=50,300`: expected a percentage from 0 to 255 (100 or more means always)",
        ),
        (
            &["fetch=50,"],
            "invalid again probability `` in `fetch=50,`: expected a percentage from 0 to 255 (100 or more means always)",
        ),
        (
            &["fetch=,5"],
            "invalid probability `` in `fetch=,5`: expected a percentage from 0 to 255 (100 or more means always)",
        ),
        (
            &["fetch=1,2,3"],
            "invalid again probability `2,3` in `fetch=1,2,3`: expected a percentage from 0 to 255 (100 or more means always)",
        ),
        (&["Fetch="], "`Fetch=` needs a value: Fetch=PERCENT[,AGAIN]"),
        (
            &["random=1"],
            "`random` takes no value: write `random` instead of `random=1`",
        ),
        (
            &["starttls=any-cert"],
            "`starttls` takes no value: write `starttls` instead of `starttls=any-cert`",
        ),
        (
            &["-", "select=0", "logout=0"],
            "invalid probabilities: every state from LIST to LOGOUT is 0",
        ),
        (
            &["test=x", "user=u%d"],
            "user `u%d` contains `%`, which test= does not allow: give a plain user name",
        ),
        (
            &["test=x", "profile=y"],
            "`test=` and `profile=` cannot be combined: give one of them",
        ),
        (
            &["user=u%s"],
            "invalid user template `u%s` in `user=u%s`: expected at most two %d or %i (with an optional width up to 64, such as %04d), and %% for a percent sign",
        ),
        (
            &["user=u%d%d%d"],
            "invalid user template `u%d%d%d` in `user=u%d%d%d`: expected at most two %d or %i (with an optional width up to 64, such as %04d), and %% for a percent sign",
        ),
        (
            &["user=u%"],
            "invalid user template `u%` in `user=u%`: expected at most two %d or %i (with an optional width up to 64, such as %04d), and %% for a percent sign",
        ),
        (
            &["user=u%65d"],
            "invalid user template `u%65d` in `user=u%65d`: expected at most two %d or %i (with an optional width up to 64, such as %04d), and %% for a percent sign",
        ),
        (
            &["user=u%-4d"],
            "invalid user template `u%-4d` in `user=u%-4d`: expected at most two %d or %i (with an optional width up to 64, such as %04d), and %% for a percent sign",
        ),
        (
            &["secs=1000000001"],
            "invalid secs `1000000001` in `secs=1000000001`: expected a whole number of seconds no larger than 1000000000",
        ),
        (
            &["secs=1,99999999999"],
            "invalid secs final wait `99999999999` in `secs=1,99999999999`: expected a whole number of seconds no larger than 1000000000",
        ),
        (
            &["checkpoint=18446744073709551615"],
            "invalid checkpoint interval `18446744073709551615` in `checkpoint=18446744073709551615`: expected a whole number of seconds no larger than 1000000000",
        ),
        (
            &["stalled_disconnect_timeout=18446744073709551616"],
            "invalid stalled disconnect timeout `18446744073709551616` in `stalled_disconnect_timeout=18446744073709551616`: expected a whole number no larger than 18446744073709551615",
        ),
        (
            &["timeout=1000000001"],
            "invalid timeout `1000000001` in `timeout=1000000001`: expected a whole number of seconds no larger than 1000000000",
        ),
        (
            &["timeout=100years"],
            "invalid timeout `100years` in `timeout=100years`: expected a duration no longer than 1000000000s",
        ),
        (&["a\nb"], "unknown argument `a\\nb`"),
        (&["=5"], "unknown argument `=5`"),
        (&[""], "unknown argument ``"),
        (&["-="], "unknown argument `-=`"),
        (&["--"], "unknown argument `--`"),
    ] {
        assert_eq!(err(args), want, "{args:?}");
    }
}

#[test]
fn first_error_wins() {
    assert_eq!(
        err(&["clients=x", "port=0"]),
        "invalid clients count `x` in `clients=x`: expected a whole number"
    );
}

#[test]
fn suggestion_texts() {
    for (arg, want) in [
        ("clints=10", Some("clients")),
        ("CLIENTS=10", Some("clients")),
        ("Host=x", Some("host")),
        ("randon", Some("random")),
        ("no_pipelin", Some("no_pipelining")),
        ("no_pipelinin", Some("no_pipelining")),
        ("nopipelining", Some("no_pipelining")),
        ("stalled=5", Some("stalled_disconnect_timeout")),
        ("ssl_ca=/x", Some("ssl_ca_file")),
        ("fecth=50", Some("FETCH")),
        ("fetch22=50", Some("FETCH2")),
        ("apend", Some("APPEND")),
        ("imap4rev1", Some("imap4rev2")),
        ("start_tls", Some("starttls")),
        ("password=x", Some("pass")),
        ("mailbox=x", Some("box")),
        ("hostname=x", Some("host")),
        ("xyzzy", None),
        ("q", None),
        ("--clients=5", Some("clients")),
    ] {
        let want_text = match want {
            Some(name) => format!("unknown argument `{arg}` (did you mean `{name}`?)"),
            None => format!("unknown argument `{arg}`"),
        };
        assert_eq!(err(&[arg]), want_text, "{arg}");
    }
}

#[test]
fn state_arguments() {
    let s = run(&["fet2=50,10"]);
    assert_eq!(p(&s, State::Fetch2), (50, 10));

    let s = run(&["APPEND=0"]);
    assert_eq!(p(&s, State::Append), (0, 5), "again is kept when not given");
    let s = run(&["append=0", "APPEND"]);
    assert_eq!(p(&s, State::Append), (100, 5));
    let s = run(&["Appe=40,0"]);
    assert_eq!(p(&s, State::Append), (40, 0));

    let s = run(&["select=0"]);
    assert_eq!(p(&s, State::Select).0, 0);

    let s = run(&["-"]);
    for state in State::all() {
        let want = match state {
            State::Login | State::Select | State::Logout => 100,
            _ => 0,
        };
        assert_eq!(s.probabilities.get(state), want, "{state:?}");
    }

    let s = run(&["-", "fetch=50", "noop", "store=30,20"]);
    assert_eq!(p(&s, State::Fetch).0, 50);
    assert_eq!(p(&s, State::Noop).0, 100);
    assert_eq!(p(&s, State::Store), (30, 20));
    assert_eq!(p(&s, State::Append).0, 0);

    let s = run(&["fetch=0", "-", "fetch=20", "-"]);
    assert_eq!(p(&s, State::Fetch).0, 0, "a later `-` wins");

    let s = run(&["list=255", "status=100,255"]);
    assert_eq!(p(&s, State::List).0, 255);
    assert_eq!(p(&s, State::Status), (100, 255));

    let s = run(&["idle=50"]);
    assert_eq!(p(&s, State::Idle).0, 50, "IDLE is allowed");

    let s = run(&["disc=10", "DELAY=5", "lmtp=1", "Root=7", "BANNER=3"]);
    assert_eq!(p(&s, State::Disconnect).0, 10);
    assert_eq!(p(&s, State::Delay).0, 5);
    assert_eq!(p(&s, State::Lmtp).0, 1);
    assert_eq!(p(&s, State::ListRoot).0, 7);
    assert_eq!(p(&s, State::Banner).0, 3);

    // Every full and short name works in three spellings.
    for info in crate::states::STATES.iter() {
        for name in [
            info.name.to_owned(),
            info.short.to_owned(),
            info.name.to_lowercase(),
            info.short.to_uppercase(),
        ] {
            let arg = format!("{name}=7,3");
            let s = run(&[&arg, "copybox=X"]);
            let got = p(&s, info.state);
            match info.state {
                // Overwritten by the fix-ups.
                State::Checkpoint => assert_eq!(got, (0, 3)),
                _ => assert_eq!(got, (7, 3), "{arg}"),
            }
        }
    }
}

#[test]
fn copy_and_move_need_copybox() {
    let s = run(&["copy=50", "move=50"]);
    assert_eq!(p(&s, State::Copy).0, 0);
    assert_eq!(p(&s, State::Move).0, 0);
    let s = run(&["copy=50", "move=50", "copybox=Other"]);
    assert_eq!(p(&s, State::Copy).0, 50);
    assert_eq!(p(&s, State::Move).0, 50);
}

#[test]
fn checkpoint_column() {
    assert_eq!(p(&run(&["checkpoint=3"]), State::Checkpoint).0, 100);
    assert_eq!(p(&run(&["ChkP=100"]), State::Checkpoint).0, 0);
    assert_eq!(
        p(&run(&["checkpoint!=0", "checkpoint=1"]), State::Checkpoint).0,
        100
    );
}

#[test]
fn login_columns() {
    // (args, AUTHENTICATE, LOGIN, mech)
    for (args, auth, login, mech) in [
        (&[][..], 0, 100, "LOGIN"),
        (&["master=admin"], 100, 0, "PLAIN"),
        (&["master=admin", "mech=SCRAM-SHA-1"], 100, 0, "SCRAM-SHA-1"),
        (&["master=admin", "login=100"], 100, 0, "PLAIN"),
        (&["login=50"], 50, 50, "LOGIN"),
        (&["login=0"], 100, 0, "PLAIN"),
        (&["login=150"], 0, 150, "LOGIN"),
        (&["auth=30"], 30, 70, "LOGIN"),
        (&["auth=100"], 100, 0, "PLAIN"),
        (&["AUTHENTICATE"], 100, 0, "PLAIN"),
        (&["auth=200"], 100, 0, "PLAIN"),
        (&["auth=100", "mech=LOGIN"], 100, 0, "LOGIN"),
        (&["mech=PLAIN"], 100, 0, "PLAIN"),
        (&["mech=login"], 100, 0, "login"),
        (&["mech=PLAIN", "login=100", "auth=0"], 100, 0, "PLAIN"),
        (&["mech=LOGIN"], 0, 100, "LOGIN"),
        (&["login=60", "auth=10"], 40, 60, "LOGIN"),
    ] {
        let s = run(args);
        assert_eq!(
            (
                s.probabilities.get(State::Authenticate),
                s.probabilities.get(State::Login),
                s.user.mech.name()
            ),
            (auth, login, mech),
            "{args:?}"
        );
    }
}

#[test]
fn probabilities_must_leave_something_to_do() {
    let want = "invalid probabilities: every state from LIST to LOGOUT is 0";
    assert_eq!(err(&["-", "select=0", "logout=0"]), want);
    assert_eq!(
        err(&["-", "sele=0", "logo=0", "copy=5"]),
        want,
        "COPY is zeroed first"
    );
    run(&["-", "select=0", "logout=0", "noop"]);
    run(&["-", "select=0", "logout=0", "check=1"]);
    run(&["-", "select=0", "logout=0", "copy=5", "copybox=X"]);
    assert_eq!(
        err(&[
            "-",
            "select=0",
            "logout=0",
            "disc=100",
            "delay=100",
            "login=100"
        ]),
        want,
        "states outside LIST..LOGOUT do not count"
    );
}

#[test]
fn user_name_rules() {
    let no_user = Env::default();
    let e = parse_env(&[], &no_user).unwrap_err();
    assert_eq!(e, CliError::MissingUsername);
    assert_eq!(e.to_string(), "missing username: give user=");
    let empty_user = Env {
        user: Some(String::new()),
        ..Env::default()
    };
    assert_eq!(parse_env(&[], &empty_user), Err(CliError::MissingUsername));
    assert!(matches!(
        parse_env(&["user=me"], &no_user),
        Ok(Command::Run(s)) if s.common.user.template == "me"
    ));
    assert!(matches!(
        parse_env(&["userfile=/u"], &no_user),
        Ok(Command::Run(s)) if s.common.user.userfile.is_some()
    ));
    // Without a home, `~/` stays and the default mbox is relative.
    assert!(matches!(
        parse_env(&["user=me", "mbox=~/m"], &no_user),
        Ok(Command::Run(s)) if matches!(&s.mode, crate::config::Mode::Stress(m) if m.mbox.as_path() == std::path::Path::new("~/m"))
    ));
    assert!(matches!(
        parse_env(&["user=me"], &no_user),
        Ok(Command::Run(s)) if matches!(&s.mode, crate::config::Mode::Stress(m) if m.mbox.as_path() == std::path::Path::new("dovecot-crlf"))
    ));
    // `%` is fine without test=.
    assert_eq!(run(&["user=u%04d"]).user.template, "u%04d");
    assert_eq!(
        err(&["user=u%d", "test=/t"]),
        "user `u%d` contains `%`, which test= does not allow: give a plain user name"
    );
    let with_percent_env = Env {
        user: Some("we%rd".to_owned()),
        ..Env::default()
    };
    assert!(matches!(
        parse_env(&["test=/t"], &with_percent_env),
        Err(CliError::PercentInTestUser { .. })
    ));
}

#[test]
fn help_and_version() {
    for args in [
        &["-h"][..],
        &["--help"],
        &["help"],
        &["clints=1", "-h"],
        &["mbox-gen", "--help"],
        &["-h", "-V"],
    ] {
        assert_eq!(parse_env(args, &env()), Ok(Command::Help), "{args:?}");
    }
    for args in [
        &["-V"][..],
        &["--version"],
        &["host=x", "--version", "help"],
    ] {
        assert_eq!(parse_env(args, &env()), Ok(Command::Version), "{args:?}");
    }
    assert_eq!(err(&["-help"]), "unknown argument `-help`");
    assert_eq!(err(&["--HELP"]), "unknown argument `--HELP`");
}

#[test]
fn mbox_gen() {
    let mbox_gen = |args: &[&str]| parse_env(args, &env());
    assert_eq!(
        mbox_gen(&["mbox-gen", "out=/tmp/m"]),
        Ok(Command::MboxGen {
            out: PathBuf::from("/tmp/m"),
            count: 1000,
            seed: 1,
            overwrite: false
        })
    );
    assert_eq!(
        mbox_gen(&["mbox-gen", "seed=9", "count=5", "out=~/x.mbox", "overwrite"]),
        Ok(Command::MboxGen {
            out: PathBuf::from("/home/t/x.mbox"),
            count: 5,
            seed: 9,
            overwrite: true
        })
    );
    assert_eq!(
        mbox_gen(&["mbox-gen", "out=a", "out=b"]),
        Ok(Command::MboxGen {
            out: PathBuf::from("b"),
            count: 1000,
            seed: 1,
            overwrite: false
        })
    );
    // No user name is needed.
    let no_user = Env::default();
    assert!(parse_env(&["mbox-gen", "out=a"], &no_user).is_ok());

    for (args, want) in [
        (
            &["mbox-gen"][..],
            "`mbox-gen` needs out=FILE: imaptest mbox-gen out=FILE [count=N] [seed=S] [overwrite]",
        ),
        (
            &["mbox-gen", "count=3"],
            "`mbox-gen` needs out=FILE: imaptest mbox-gen out=FILE [count=N] [seed=S] [overwrite]",
        ),
        (&["mbox-gen", "out"], "`out` needs a value: out=FILE"),
        (&["mbox-gen", "out="], "`out=` needs a value: out=FILE"),
        (
            &["mbox-gen", "out=a", "clients=3"],
            "unknown mbox-gen argument `clients=3`: expected imaptest mbox-gen out=FILE [count=N] [seed=S] [overwrite]",
        ),
        (
            &["mbox-gen", "out=a", "counts=3"],
            "unknown mbox-gen argument `counts=3` (did you mean `count`?): expected imaptest mbox-gen out=FILE [count=N] [seed=S] [overwrite]",
        ),
        (
            &["mbox-gen", "out=a", "count=x"],
            "invalid mbox-gen count `x` in `count=x`: expected a whole number",
        ),
        (
            &["mbox-gen", "out=a", "count=0"],
            "invalid mbox-gen count `0` in `count=0`: expected a whole number of at least 1",
        ),
        (
            &["mbox-gen", "out=a", "seed=1.5"],
            "invalid mbox-gen seed `1.5` in `seed=1.5`: expected a whole number",
        ),
        (
            &["host=x", "mbox-gen"],
            "`mbox-gen` must be the first argument: imaptest mbox-gen out=FILE [count=N] [seed=S] [overwrite]",
        ),
    ] {
        assert_eq!(mbox_gen(args).unwrap_err().to_string(), want, "{args:?}");
    }
}

#[test]
fn help_lists_every_key() {
    let text = usage();
    assert!(text.starts_with("Usage: imaptest [options] [states]\n"));
    for key in KEYS {
        let synopsis = key.synopsis();
        assert!(
            text.lines().any(
                |l| l.trim_start().starts_with(&format!("{synopsis} ")) || l.trim() == synopsis
            ),
            "help lacks `{synopsis}`"
        );
    }
    let mut last = 0;
    for title in [
        "Authentication & Users:",
        "Connection & Network:",
        "Mailbox & Message Source:",
        "Testing & Control:",
        "Flags & Behavior:",
        "States & Probabilities:",
        "Subcommands:",
    ] {
        let at = text
            .find(&format!("\n{title}\n"))
            .unwrap_or_else(|| panic!("{title}"));
        assert!(at > last, "{title} out of order");
        last = at;
    }
    for needle in [
        "[1-99]",
        "[127.0.0.1]",
        "[10]",
        "[30]",
        "F=30]",
        "mbox-gen",
        "out=FILE",
        "count=N",
        "[1000]",
        "FETCH2/Fet2=100,30",
        "CHECKPOINT!/ChkP=0",
        "ssl[=any-cert]",
        "rawlog[=DIR]",
    ] {
        assert!(text.contains(needle), "help lacks {needle}");
    }
    for l in text.lines() {
        assert!(l.chars().count() <= 100, "long help line: {l}");
        assert_eq!(l, l.trim_end(), "trailing space: {l:?}");
    }
}

#[test]
fn table_defaults_match_settings() {
    let d = Draft::default();
    let default_of = |name: &str| keys::find(name).map(|k| k.default).unwrap_or("?");
    assert_eq!(default_of("host"), d.host);
    assert_eq!(default_of("clients"), d.clients.to_string());
    assert_eq!(default_of("msgs"), d.msgs.to_string());
    assert_eq!(default_of("pass"), d.user.password);
    assert_eq!(default_of("mech"), d.user.mech.name());
    assert_eq!(default_of("max_literal"), d.max_literal.to_string());
    assert_eq!(
        default_of("timeout"),
        humantime::format_duration(d.timeout).to_string()
    );
    assert_eq!(
        default_of("users"),
        format!("{}-{}", d.user.users.0, d.user.users.1)
    );
    assert_eq!(
        default_of("domains"),
        format!("{}-{}", d.user.domains.0, d.user.domains.1)
    );
    assert!(default_of("box").starts_with(&d.mailbox));
    assert!(default_of("secs").ends_with(&format!("F={}", keys::DEFAULT_STOP_GRACE)));
}

#[test]
fn table_is_consistent() {
    let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate key");
    for key in KEYS {
        assert!(
            State::from_name(key.name).is_none(),
            "{} is a state",
            key.name
        );
        assert!(!key.help.is_empty(), "{} has no help", key.name);
        assert_eq!(key.kind == Kind::Flag, key.hint.is_empty(), "{}", key.name);
        assert!(!key.name.contains('='));
    }
}

#[test]
fn public_finalize() {
    let mut s = Draft::default();
    s.user.template = "x".to_owned();
    s.probabilities.set(State::Move, 40, None);
    s.probabilities.set(State::Authenticate, 100, None);
    finalize(&mut s).unwrap();
    assert_eq!(s.probabilities.get(State::Move), 0);
    assert_eq!(s.probabilities.get(State::Login), 0);
    assert_eq!(s.user.mech.name(), "PLAIN");
}

#[test]
fn real_environment_parse() {
    // Whatever $USER is, explicit arguments parse.
    assert!(matches!(
        parse(strings(&["user=x", "clients=3"])),
        Ok(Command::Run(s)) if matches!(&s.mode, crate::config::Mode::Stress(m) if m.clients == 3)
    ));
    assert_eq!(
        parse(Vec::new().into_iter().chain(["-h".to_owned()])),
        Ok(Command::Help)
    );
}

fn arg_strategy() -> impl Strategy<Value = String> {
    let names: Vec<String> = candidates()
        .map(str::to_owned)
        .chain(["-", "mbox-gen", "out", "count", "~"].map(str::to_owned))
        .collect();
    prop_oneof![
        any::<String>(),
        "[a-z_0-9=,~/%-]{0,12}",
        (prop::sample::select(names.clone()), "[0-9a-z,.~/ -]{0,8}")
            .prop_map(|(n, v)| format!("{n}={v}")),
        prop::sample::select(names),
    ]
}

proptest! {
    #[test]
    fn never_panics_and_errors_are_one_line(args in prop::collection::vec(arg_strategy(), 0..6)) {
        for env in [env(), Env::default()] {
            if let Err(e) = parse_with_env(&args, &env) {
                let text = e.to_string();
                prop_assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
                prop_assert!(!text.is_empty());
            }
        }
        let mut with_gen = vec!["mbox-gen".to_owned()];
        with_gen.extend(args.iter().cloned());
        let _ = parse_with_env(&with_gen, &env());
    }

    #[test]
    fn durations_never_panic(value in "[0-9]{0,25}[a-z ]{0,6}[0-9]{0,3}") {
        let arg = format!("timeout={value}");
        let _ = parse_with_env(&[arg], &env());
    }

    #[test]
    fn arbitrary_strings_never_panic(args in prop::collection::vec(any::<String>(), 0..4)) {
        let _ = parse(args);
    }
}

#[cfg(unix)]
#[test]
fn os_arguments() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let bad = OsString::from_vec(vec![b'u', b's', b'e', b'r', b'=', 0xff]);
    let e = parse_os([bad]).unwrap_err();
    assert_eq!(e.to_string(), "argument `user=\u{fffd}` is not valid UTF-8");
    assert_eq!(parse_os([OsString::from("--help")]), Ok(Command::Help));
}

#[test]
fn long_input_is_shortened_in_messages() {
    let long = format!("x{}", "y".repeat(500));
    let text = err(&[&long]);
    assert!(text.chars().count() < 200, "{text}");
    assert!(text.contains('…'));
    let text = err(&[&format!("clients={}", "9".repeat(300))]);
    assert!(text.chars().count() < 400, "{text}");
}

#[test]
fn passwords_from_the_environment_and_pass_file() {
    use std::os::unix::fs::PermissionsExt;
    let secret_env = Env {
        pass: Some("env-pass".to_owned()),
        master_pass: Some("env-master".to_owned()),
        ..env()
    };
    let password = |args: &[&str]| match parse_draft(&strings(args), &secret_env) {
        Ok(parsed) => parsed.settings.user.password,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(password(&[]), "env-pass");
    assert_eq!(password(&["master=admin"]), "env-master");
    // The command line wins over the environment.
    assert_eq!(password(&["pass=given"]), "given");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "from-file\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let arg = format!("pass_file={}", file.display());
    assert_eq!(password(&[&arg]), "from-file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let Err(e) = parse_draft(&strings(&[&arg]), &secret_env) else {
        panic!("a group-readable pass_file was accepted");
    };
    let e = e.to_string();
    assert!(
        e.contains("other users can read it (mode 0640): make it owner-only, e.g. chmod 600"),
        "{e}"
    );
    // Without any, the default.
    assert_eq!(run(&[]).user.password, "pass");
}

#[test]
fn keys_of_another_mode_are_errors() {
    assert_eq!(
        err(&["junit=/tmp/j.xml"]),
        "`junit=` does nothing in stress mode (no test= or profile=): it needs scripted tests (test=DIR)"
    );
    assert_eq!(
        err(&["user=u", "test=/t", "csv=/tmp/x.csv"]),
        "`csv=` does nothing in scripted tests (test=DIR): it needs stress mode (no test= or profile=) or profile mode (profile=FILE)"
    );
    assert!(
        err(&["profile=/p.toml", "fetch=50"]).starts_with("`state=` does nothing in profile mode")
    );
    assert!(err(&["session_csv=/tmp/s.csv"]).contains("it needs profile mode"));
    assert_eq!(
        err(&["profile=/p.toml", "plan=/tmp/plan.csv"]),
        "`plan=` writes the plan of a dry run: add `dry_run` (without it the profile runs)"
    );
    assert!(err(&["mech=CRAM-MD5"]).starts_with("unknown mech `CRAM-MD5`"));
    let e = err(&["slo=imap.LOGON.p99 < 5ms"]);
    assert!(e.contains("unknown metric \"imap.LOGON.p99\""), "{e}");
    // What each mode gets.
    let Ok(Command::Run(s)) = parse_env(&["profile=/p.toml", "clients=7", "users=5000"], &env())
    else {
        panic!("profile run")
    };
    match s.mode {
        crate::config::Mode::Profile(p) => {
            assert_eq!(p.clients, Some(7));
            assert_eq!(p.users, Some(5000));
        }
        other => panic!("{other:?}"),
    }
    let Ok(Command::Run(s)) = parse_env(&["mech=login", "slo=errors==0"], &env()) else {
        panic!("stress run")
    };
    assert_eq!(
        s.common.user.mech,
        crate::config::Mech::Sasl(crate::sasl::SaslMech::Login)
    );
    assert_eq!(s.common.slos.len(), 1);
    assert_eq!(s.common.command_line, ["mech=login", "slo=errors==0"]);
}

#[test]
fn subcommands() {
    assert_eq!(
        parse_env(&["client", "--help"], &env()),
        Ok(Command::Client(vec!["--help".into()]))
    );
    assert_eq!(
        parse_env(&["schema", "summary"], &env()),
        Ok(Command::Schema(SchemaKind::Summary))
    );
    assert_eq!(
        parse_env(
            &["profile", "convert", "~/p.conf", "out=/tmp/p.toml"],
            &env()
        ),
        Ok(Command::ProfileConvert {
            file: PathBuf::from("/home/t/p.conf"),
            out: DocumentOut {
                path: Some(PathBuf::from("/tmp/p.toml")),
                overwrite: false
            }
        })
    );
    assert!(parse_env(&["profile", "fly"], &env()).is_err());
}

#[test]
fn shards_from_arguments_or_the_job_environment() {
    use crate::shard::Shard;
    let job = |index: &str, shards: &str| Env {
        job_index: Some(index.to_owned()),
        shards: Some(shards.to_owned()),
        ..env()
    };
    let shard_of = |args: &[&str], env: &Env| match parse_env(args, env) {
        Ok(Command::Run(s)) => s.common.shard,
        other => panic!("{args:?}: {other:?}"),
    };
    assert_eq!(shard_of(&[], &env()), None);
    assert_eq!(shard_of(&[], &job("3", "25")), Shard::new(3, 25));
    assert_eq!(
        shard_of(&["profile=p.toml"], &job("0", "2")),
        Shard::new(0, 2)
    );
    // shard= wins over the environment.
    assert_eq!(shard_of(&["shard=1/4"], &job("3", "25")), Shard::new(1, 4));
    // An index alone does not shard (a Job may run imaptest for other reasons).
    let index_only = Env {
        job_index: Some("3".into()),
        ..env()
    };
    assert_eq!(shard_of(&[], &index_only), None);
    assert_eq!(
        parse_env(
            &[],
            &Env {
                shards: Some("25".into()),
                ..env()
            }
        )
        .unwrap_err()
        .to_string(),
        "$IMAPTEST_SHARDS=25 is set but $JOB_COMPLETION_INDEX is not: give shard=I/N"
    );
    assert_eq!(
        parse_env(&[], &job("25", "25")).unwrap_err().to_string(),
        "`25/25 (from $JOB_COMPLETION_INDEX and $IMAPTEST_SHARDS)` is not a shard: expected I/N with 0 <= I < N, such as 0/4"
    );
    assert_eq!(
        parse_env(&[], &job("one", "25")).unwrap_err().to_string(),
        "$JOB_COMPLETION_INDEX=one is not a whole number"
    );
    assert_eq!(
        parse_env(&["test=/t", "user=u"], &job("0", "2"))
            .unwrap_err()
            .to_string(),
        "$IMAPTEST_SHARDS is set, but scripted tests (test=) cannot be sharded: unset it"
    );
    assert_eq!(
        err(&["shard=4/4"]),
        "invalid shard `4/4` in `shard=4/4`: expected I/N with 0 <= I < N, such as 0/4"
    );
    assert_eq!(
        err(&["test=/t", "shard=0/2"]),
        "`shard=` does nothing in scripted tests (test=DIR): it needs stress mode (no test= or profile=) or profile mode (profile=FILE)"
    );
    let e = err(&["start_at=tomorrow"]);
    assert!(
        e.starts_with("start_at: `tomorrow` is not an instant"),
        "{e}"
    );
}

#[test]
fn merge_subcommand() {
    assert_eq!(
        parse_env(
            &["merge", "a.json", "~/shards", "out=~/m.json", "overwrite"],
            &env()
        ),
        Ok(Command::Merge {
            inputs: vec![PathBuf::from("a.json"), PathBuf::from("/home/t/shards")],
            out: DocumentOut {
                path: Some(PathBuf::from("/home/t/m.json")),
                overwrite: true,
            },
        })
    );
    assert_eq!(
        parse_env(&["merge", "a.json"], &env()),
        Ok(Command::Merge {
            inputs: vec![PathBuf::from("a.json")],
            out: DocumentOut::default(),
        })
    );
    for bad in [
        &["merge"][..],
        &["merge", "out=x.json"],
        &["merge", "a.json", "seed=3"],
    ] {
        assert_eq!(
            parse_env(bad, &env()).unwrap_err().to_string(),
            format!("usage: {MERGE_USAGE}"),
            "{bad:?}"
        );
    }
}
