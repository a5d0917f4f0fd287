use std::process::ExitCode;

use imaptest::cli::{self, Command, DocumentOut, SchemaKind};
use imaptest::exit;

fn main() -> ExitCode {
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
        Command::MboxGen {
            out,
            count,
            seed,
            overwrite,
        } => {
            imaptest::app::check_document_out(&out, overwrite, &[])?;
            imaptest::app::generate_mbox(&out, count, seed)
        }
        Command::Client(args) => imaptest::conversation::client_main(&args),
        Command::Server(args) => imaptest::conversation::server_main(&args),
        Command::Schema(kind) => {
            match kind {
                SchemaKind::Profile => {
                    print!("{}", imaptest::profile::schema::profile_schema_json())
                }
                SchemaKind::Summary => print!("{}", imaptest::summary::schema_json()),
                SchemaKind::Capacity => {
                    print!("{}", imaptest::capacity::document::schema_json())
                }
                SchemaKind::Compliance => print!("{}", imaptest::compliance::schema_json()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ProfileConvert { file, out } => {
            let (toml, warnings) = imaptest::profile::convert_file(&file)?;
            for warning in warnings {
                eprintln!("Warning: {warning}");
            }
            write_document(&out, &toml, &[&file])?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ProfileFit(args) => imaptest::fit::fit_main(&args),
        Command::Merge { inputs, out } => {
            let (merged, files) = imaptest::app::merge::merge_files(&inputs)?;
            let files: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
            write_document(&out, &merged.to_json(), &files)?;
            Ok(ExitCode::from(merged.exit_status))
        }
        Command::Compliance(args) => imaptest::compliance::compliance_main(&args),
        Command::Run(settings) => {
            let runtime = imaptest::app::runtime(&settings)?;
            runtime.block_on(imaptest::app::run(*settings))
        }
        Command::Capacity(settings) => runtime()?.block_on(imaptest::app::capacity(*settings)),
        Command::Report { inputs, out } => {
            let html = imaptest::app::analysis::report(&inputs)?;
            let inputs: Vec<&std::path::Path> = inputs.iter().map(|p| p.as_path()).collect();
            write_document(&out, &html, &inputs)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare {
            base,
            new,
            tolerance,
        } => Ok(ExitCode::from(imaptest::app::analysis::compare_files(
            &base, &new, tolerance,
        )?)),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// A subcommand's document: to `out=FILE` (never over one of `inputs`, never over an
/// existing file without `overwrite`), else to stdout.
fn write_document(
    out: &DocumentOut,
    text: &str,
    inputs: &[&std::path::Path],
) -> anyhow::Result<()> {
    let Some(path) = &out.path else {
        print!("{text}");
        return Ok(());
    };
    imaptest::app::check_document_out(path, out.overwrite, inputs)?;
    imaptest::app::pipeline::write_atomically(path, text.as_bytes())
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
