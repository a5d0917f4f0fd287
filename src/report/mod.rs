//! Sinks that consume aggregated metrics.

pub mod console;
pub mod csv;
pub mod html;
pub mod output;
pub mod sessions;

pub use self::csv::CsvTimeline;
pub use console::Console;
pub use output::ResultsFile;
pub use sessions::SessionCsv;
