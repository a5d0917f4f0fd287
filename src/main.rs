use std::process::ExitCode;

use imaptest::app::{self, exit};
use imaptest::cli::{self, Command};

fn main() -> ExitCode {
    if let Some(code) = conversation_subcommand() {
        return code;
    }
    if let Some(code) = profile_subcommand() {
        return code;
    }
    let command = match cli::parse_os(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("Fatal: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    match run(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Fatal: {}", one_line(&e));
            ExitCode::from(exit::FATAL)
        }
    }
}

/// `imaptest client …` and `imaptest server …`: conversation scripts.
fn conversation_subcommand() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let entry: fn(&[String]) -> anyhow::Result<ExitCode> = match args.next()?.to_str()? {
        "client" => imaptest::conversation::client_main,
        "server" => imaptest::conversation::server_main,
        _ => return None,
    };
    let args: Vec<String> = match args.map(|a| a.into_string()).collect() {
        Ok(args) => args,
        Err(bad) => {
            eprintln!(
                "Fatal: argument is not valid UTF-8: {}",
                bad.to_string_lossy()
            );
            return Some(ExitCode::from(exit::FATAL));
        }
    };
    Some(entry(&args).unwrap_or_else(|e| {
        eprintln!("Fatal: {}", one_line(&e));
        ExitCode::from(exit::FATAL)
    }))
}

/// `imaptest profile convert FILE` (legacy profile.conf or TOML → TOML on stdout) and
/// `imaptest schema` (the JSON Schema of TOML profiles).
fn profile_subcommand() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).take(4).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["schema"] => {
            print!("{}", imaptest::profile::schema::profile_schema_json());
            Some(ExitCode::SUCCESS)
        }
        ["profile", "convert", file] => {
            match imaptest::profile::convert_file(std::path::Path::new(file)) {
                Ok((toml, warnings)) => {
                    for warning in warnings {
                        eprintln!("Warning: {warning}");
                    }
                    print!("{toml}");
                    Some(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("Fatal: {e}");
                    Some(ExitCode::from(exit::FATAL))
                }
            }
        }
        ["profile", ..] => {
            eprintln!("Fatal: usage: imaptest profile convert FILE");
            Some(ExitCode::from(exit::FATAL))
        }
        _ => None,
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Help => {
            print!("{}", cli::usage());
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("imaptest {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::MboxGen { out, count, seed } => app::generate_mbox(&out, count, seed),
        Command::Run(settings) => {
            let runtime = imaptest::engine::runtime(&settings)?;
            runtime.block_on(app::run(*settings))
        }
    }
}

/// The error and its causes on one line, skipping causes the message already quotes
/// (many errors include their source in their own text).
fn one_line(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text.replace('\n', " ")
}
