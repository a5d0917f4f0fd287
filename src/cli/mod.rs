use crate::config::Settings;
pub enum Command {
    Run(Box<Settings>),
    MboxGen {
        out: std::path::PathBuf,
        count: usize,
        seed: u64,
    },
    Help,
    Version,
}
pub fn parse<I: IntoIterator<Item = String>>(_a: I) -> Result<Command, CliError> {
    todo!()
}
pub fn usage() -> String {
    todo!()
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct CliError;
