//! Where the conversation is shown: stdout/stderr for the subcommands, a buffer in tests.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// The conversation log: received (`<<<`/`<`) and sent (`>>>`/`>`) lines, notes, and
/// `###` comments (those go to both outputs).
pub struct Transcript {
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
}

/// What a capturing [`Transcript`] collected (stdout and stderr interleaved).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transcript {
    /// The subcommands' transcript: stdout, and stderr for comments.
    pub fn stdio() -> Self {
        Transcript {
            out: Box::new(io::stdout()),
            err: Box::new(io::stderr()),
        }
    }

    /// A transcript kept in memory; `###` comments appear twice.
    pub fn capture() -> (Self, Captured) {
        let captured = Captured::default();
        (
            Transcript {
                out: Box::new(captured.clone()),
                err: Box::new(captured.clone()),
            },
            captured,
        )
    }

    /// A transcript that goes nowhere.
    pub fn discard() -> Self {
        Transcript {
            out: Box::new(io::sink()),
            err: Box::new(io::sink()),
        }
    }

    pub(crate) fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    pub(crate) fn comment(&mut self, text: &str) {
        self.line(text);
        let _ = writeln!(self.err, "{text}");
        let _ = self.err.flush();
    }
}
