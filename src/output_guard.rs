//! Outputs never destroy inputs: before a run, every output path is checked against
//! the run's inputs and the other outputs, existing files are kept unless the user said
//! `overwrite`, and each output is shown to be writable — all before the first
//! connection. During the run, [`OutputHealth`] remembers the first write error so the
//! edge can end with a non-zero exit status.
//!
//! ```no_run
//! # use imaptest::output_guard::OutputGuard;
//! let mut guard = OutputGuard::new();
//! guard.input("mbox", "test.mbox").input("userfile", "users.txt");
//! guard.output("csv", "run.csv").output("output", "run.tab");
//! guard.rawlog_dir("rawlogs");
//! let checked = guard.check(false)?; // refuses csv=test.mbox, csv=X output=X, …
//! // … on a failure before the run starts:
//! checked.remove_created();
//! # Ok::<(), imaptest::output_guard::GuardError>(())
//! ```
//!
//! Paths are compared canonicalised (for a file that does not exist yet: its
//! canonical directory plus its name) and, for files that exist, by (device, inode),
//! so a symlink or a second hard link to an input is caught too. Character devices and
//! FIFOs (`/dev/null`, `/dev/stdout`, a pipe) are never "overwritten" and may be named
//! more than once.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why the outputs of a run are refused. Each message names the key and the path.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("{output}={path} is the {input}= input: refusing to overwrite an input")]
    OutputIsInput {
        output: String,
        input: String,
        path: PathBuf,
    },
    #[error(
        "{output}={path} is inside the {input}= input directory: refusing to write among the inputs"
    )]
    OutputInInputDir {
        output: String,
        input: String,
        path: PathBuf,
    },
    #[error("{first}= and {second}= name the same file {path}: give each output its own file")]
    SameOutput {
        first: String,
        second: String,
        path: PathBuf,
    },
    #[error("{output}={path} exists: add `overwrite` to replace it, or choose another name")]
    Exists { output: String, path: PathBuf },
    #[error("{output}={path} is a directory, not a file")]
    IsDirectory { output: String, path: PathBuf },
    #[error("{output}={path} cannot be written: {source}")]
    NotWritable {
        output: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("rawlog={dir}: {problem}")]
    RawlogDir { dir: PathBuf, problem: String },
    #[error(
        "rawlog={dir} already holds {count} rawlog file(s) ({example}) that this run would overwrite: use an empty directory or add `overwrite`"
    )]
    RawlogsExist {
        dir: PathBuf,
        count: usize,
        example: String,
    },
    #[error("{output}={path} is a rawlog file name in the rawlog={dir} directory")]
    OutputIsRawlog {
        output: String,
        path: PathBuf,
        dir: PathBuf,
    },
}

/// One file or directory named on the command line.
#[derive(Debug, Clone)]
struct Named {
    key: String,
    path: PathBuf,
}

/// Where a path leads: its canonical form and, if it exists, what it is.
#[derive(Debug, Clone)]
struct Resolved {
    canonical: PathBuf,
    meta: Option<fs::Metadata>,
}

impl Resolved {
    fn of(path: &Path) -> Resolved {
        if let Ok(canonical) = fs::canonicalize(path) {
            let meta = fs::metadata(&canonical).ok();
            return Resolved { canonical, meta };
        }
        // Not there yet: its directory's canonical form and its name.
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let canonical = match (fs::canonicalize(&parent), path.file_name()) {
            (Ok(dir), Some(name)) => dir.join(name),
            _ => absolute(path),
        };
        Resolved {
            canonical,
            meta: None,
        }
    }

    fn identity(&self) -> Option<(u64, u64)> {
        self.meta.as_ref().map(|m| (m.dev(), m.ino()))
    }

    fn same_file(&self, other: &Resolved) -> bool {
        match (self.identity(), other.identity()) {
            (Some(a), Some(b)) => a == b,
            _ => self.canonical == other.canonical,
        }
    }

    /// A device or pipe: writing to it replaces nothing.
    fn is_stream(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| {
            let t = m.file_type();
            t.is_char_device() || t.is_fifo() || t.is_socket()
        })
    }

    fn is_dir(&self) -> bool {
        self.meta.as_ref().is_some_and(fs::Metadata::is_dir)
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
}

/// Collects a run's inputs and outputs, then checks them all at once.
#[derive(Debug, Default)]
pub struct OutputGuard {
    inputs: Vec<Named>,
    outputs: Vec<Named>,
    rawlog: Option<PathBuf>,
}

/// The outputs after a successful [`OutputGuard::check`]. Files the check created (empty)
/// can be removed again if the run does not start.
#[derive(Debug, Default)]
#[must_use]
pub struct CheckedOutputs {
    created: Vec<PathBuf>,
}

impl CheckedOutputs {
    /// Files the check created because they did not exist (they are empty).
    pub fn created(&self) -> &[PathBuf] {
        &self.created
    }

    /// Removes the empty files the check created, when the run ends before it starts.
    pub fn remove_created(self) {
        for path in self.created {
            if fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
                let _ = fs::remove_file(path);
            }
        }
    }
}

impl OutputGuard {
    pub fn new() -> Self {
        OutputGuard::default()
    }

    /// A file or directory the run reads (`mbox`, `userfile`, `profile`, `test`,
    /// `ssl_ca_file`, …). `key` is the command-line key, used in messages. Outputs may
    /// be neither the input nor inside it, if it is a directory.
    pub fn input(&mut self, key: &str, path: impl AsRef<Path>) -> &mut Self {
        self.inputs.push(Named {
            key: key.to_owned(),
            path: path.as_ref().to_path_buf(),
        });
        self
    }

    /// A file the run writes (`csv`, `output`, `session_csv`, `plan`, `junit`, `out`, …).
    pub fn output(&mut self, key: &str, path: impl AsRef<Path>) -> &mut Self {
        self.outputs.push(Named {
            key: key.to_owned(),
            path: path.as_ref().to_path_buf(),
        });
        self
    }

    /// The `rawlog=` directory, where `rawlog.<N>` files will be written.
    pub fn rawlog_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.rawlog = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Checks every output, in the order named: not an input, not inside an input
    /// directory, not another output, not an existing file unless `overwrite`, and
    /// writable (a missing file is created empty; an existing one is opened without
    /// truncating it). The rawlog directory must exist, be writable and hold no
    /// `rawlog.*` files unless `overwrite`.
    pub fn check(&self, overwrite: bool) -> Result<CheckedOutputs, GuardError> {
        let mut checked = CheckedOutputs::default();
        let result = self.check_into(overwrite, &mut checked);
        match result {
            Ok(()) => Ok(checked),
            Err(e) => {
                checked.remove_created();
                Err(e)
            }
        }
    }

    fn check_into(&self, overwrite: bool, checked: &mut CheckedOutputs) -> Result<(), GuardError> {
        let inputs: Vec<(&Named, Resolved)> = self
            .inputs
            .iter()
            .map(|n| (n, Resolved::of(&n.path)))
            .collect();
        let rawlog = self.rawlog.as_deref().map(|d| (d, Resolved::of(d)));
        let mut seen: Vec<(&Named, Resolved)> = Vec::new();
        for out in &self.outputs {
            let here = Resolved::of(&out.path);
            for (input, there) in &inputs {
                if here.same_file(there) && !(here.is_stream() && there.is_stream()) {
                    return Err(GuardError::OutputIsInput {
                        output: out.key.clone(),
                        input: input.key.clone(),
                        path: out.path.clone(),
                    });
                }
                if there.is_dir() && here.canonical.starts_with(&there.canonical) {
                    return Err(GuardError::OutputInInputDir {
                        output: out.key.clone(),
                        input: input.key.clone(),
                        path: out.path.clone(),
                    });
                }
            }
            for (other, there) in &seen {
                if here.same_file(there) && !here.is_stream() {
                    return Err(GuardError::SameOutput {
                        first: other.key.clone(),
                        second: out.key.clone(),
                        path: out.path.clone(),
                    });
                }
            }
            if let Some((dir, resolved)) = &rawlog
                && here.canonical.parent() == Some(resolved.canonical.as_path())
                && here
                    .canonical
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_rawlog_name)
            {
                return Err(GuardError::OutputIsRawlog {
                    output: out.key.clone(),
                    path: out.path.clone(),
                    dir: dir.to_path_buf(),
                });
            }
            if here.is_dir() {
                return Err(GuardError::IsDirectory {
                    output: out.key.clone(),
                    path: out.path.clone(),
                });
            }
            if here.meta.is_some() && !here.is_stream() && !overwrite {
                return Err(GuardError::Exists {
                    output: out.key.clone(),
                    path: out.path.clone(),
                });
            }
            let not_writable = |source| GuardError::NotWritable {
                output: out.key.clone(),
                path: out.path.clone(),
                source,
            };
            if here.meta.is_some() {
                // Writable without truncating: the file keeps its content until the
                // run starts writing.
                OpenOptions::new()
                    .write(true)
                    .open(&out.path)
                    .map_err(not_writable)?;
            } else {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&out.path)
                    .map_err(not_writable)?;
                checked.created.push(out.path.clone());
            }
            seen.push((out, Resolved::of(&out.path)));
        }
        if let Some((dir, _)) = rawlog {
            check_rawlog_dir(dir, overwrite)?;
        }
        Ok(())
    }
}

/// `rawlog.<digits>`.
fn is_rawlog_name(name: &str) -> bool {
    name.strip_prefix("rawlog.")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn check_rawlog_dir(dir: &Path, overwrite: bool) -> Result<(), GuardError> {
    let problem = |problem: String| GuardError::RawlogDir {
        dir: dir.to_path_buf(),
        problem,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(problem("no such directory".into()));
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(problem("not a directory".into()));
        }
        Err(e) => return Err(problem(format!("cannot read the directory: {e}"))),
    };
    let mut existing: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_rawlog_name(n))
        .collect();
    if !existing.is_empty() && !overwrite {
        existing.sort_by_key(|n| n[7..].parse::<u64>().unwrap_or(u64::MAX));
        return Err(GuardError::RawlogsExist {
            dir: dir.to_path_buf(),
            count: existing.len(),
            example: existing[0].clone(),
        });
    }
    // Writable: create and remove a probe file.
    let probe = dir.join(format!(".imaptest-probe.{}", std::process::id()));
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b""));
    let _ = fs::remove_file(&probe);
    created.map_err(|e| problem(format!("cannot create files in it: {e}")))
}

/// Whether every output is still being written: the first write error of the run, for
/// the exit status. Cheap to clone; share it with every sink.
#[derive(Debug, Clone, Default)]
pub struct OutputHealth {
    first_error: Arc<Mutex<Option<String>>>,
}

impl OutputHealth {
    pub fn new() -> Self {
        OutputHealth::default()
    }

    /// Records a write error of `what` (e.g. `csv=run.csv`); only the first is kept.
    pub fn record(&self, what: &str, error: &io::Error) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(format!("writing {what} failed: {error}"));
        }
    }

    /// The first write error, if any: the run must not end with success.
    pub fn failure(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Wraps a writer so its errors are recorded here as `what`.
    pub fn watch<W: Write>(&self, what: impl Into<String>, inner: W) -> Watched<W> {
        Watched {
            inner,
            what: what.into(),
            health: self.clone(),
        }
    }
}

/// A writer whose write and flush errors are recorded in an [`OutputHealth`] (and
/// still returned).
#[derive(Debug)]
pub struct Watched<W> {
    inner: W,
    what: String,
    health: OutputHealth,
}

impl<W> Watched<W> {
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| {
            self.health.record(&self.what, e);
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|e| {
            self.health.record(&self.what, e);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
    }

    #[test]
    fn an_output_naming_an_input_is_refused_and_the_input_kept() {
        let d = dir();
        let mbox = d.path().join("test.mbox");
        write(&mbox, "From x\n\nbody\n");
        let mut g = OutputGuard::new();
        g.input("mbox", &mbox).output("csv", &mbox);
        let e = g.check(true).unwrap_err();
        assert!(
            matches!(&e, GuardError::OutputIsInput { output, input, .. } if output == "csv" && input == "mbox"),
            "{e}"
        );
        assert!(
            e.to_string()
                .ends_with("is the mbox= input: refusing to overwrite an input")
        );
        assert_eq!(fs::read_to_string(&mbox).unwrap(), "From x\n\nbody\n");
    }

    #[test]
    fn links_and_other_spellings_of_an_input_are_caught() {
        let d = dir();
        let users = d.path().join("users.txt");
        write(&users, "u1:p\n");
        let link = d.path().join("link.txt");
        std::os::unix::fs::symlink(&users, &link).unwrap();
        let hard = d.path().join("hard.txt");
        fs::hard_link(&users, &hard).unwrap();
        let dotted = d.path().join(".").join("sub").join("..").join("users.txt");
        fs::create_dir(d.path().join("sub")).unwrap();
        for out in [&link, &hard, &dotted] {
            let mut g = OutputGuard::new();
            g.input("userfile", &users).output("output", out);
            assert!(
                matches!(g.check(true), Err(GuardError::OutputIsInput { .. })),
                "{}",
                out.display()
            );
        }
    }

    #[test]
    fn two_outputs_on_one_path_are_refused() {
        let d = dir();
        let path = d.path().join("run.csv");
        let mut g = OutputGuard::new();
        g.output("csv", &path).output("output", &path);
        let e = g.check(false).unwrap_err();
        assert!(matches!(e, GuardError::SameOutput { .. }), "{e}");
        // The file the check created for the first one is gone again.
        assert!(!path.exists());
        // Another spelling of the same (not yet existing) file is the same file too.
        fs::create_dir(d.path().join("sub")).unwrap();
        let mut g = OutputGuard::new();
        g.output("csv", &path)
            .output("plan", d.path().join("sub").join("..").join("run.csv"));
        assert!(matches!(g.check(false), Err(GuardError::SameOutput { .. })));
    }

    #[test]
    fn existing_files_need_overwrite_and_keep_their_content_until_then() {
        let d = dir();
        let plan = d.path().join("plan.csv");
        write(&plan, "old plan\n");
        let mut g = OutputGuard::new();
        g.output("plan", &plan);
        let e = g.check(false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "plan={} exists: add `overwrite` to replace it, or choose another name",
                plan.display()
            )
        );
        let checked = g.check(true).unwrap();
        assert!(checked.created().is_empty());
        assert_eq!(fs::read_to_string(&plan).unwrap(), "old plan\n");
    }

    #[test]
    fn new_outputs_are_created_and_can_be_removed_again() {
        let d = dir();
        let csv = d.path().join("new.csv");
        let mut g = OutputGuard::new();
        g.output("csv", &csv);
        let checked = g.check(false).unwrap();
        assert_eq!(checked.created(), std::slice::from_ref(&csv));
        assert!(csv.exists());
        checked.remove_created();
        assert!(!csv.exists());
    }

    #[test]
    fn unwritable_outputs_are_found_before_the_run() {
        let d = dir();
        let missing_dir = d.path().join("no-such-dir").join("run.csv");
        let mut g = OutputGuard::new();
        g.output("csv", &missing_dir);
        let e = g.check(false).unwrap_err();
        assert!(matches!(e, GuardError::NotWritable { .. }), "{e}");
        assert!(e.to_string().contains("cannot be written"), "{e}");
        let mut g = OutputGuard::new();
        g.output("csv", d.path());
        assert!(matches!(g.check(true), Err(GuardError::IsDirectory { .. })));
    }

    #[test]
    fn devices_may_be_named_freely() {
        let mut g = OutputGuard::new();
        g.input("mbox", "/dev/zero")
            .output("csv", "/dev/null")
            .output("output", "/dev/null");
        g.check(false).unwrap().remove_created();
        assert!(Path::new("/dev/null").exists());
    }

    #[test]
    fn outputs_inside_an_input_directory_are_refused() {
        let d = dir();
        let tests = d.path().join("tests");
        fs::create_dir(&tests).unwrap();
        let mut g = OutputGuard::new();
        g.input("test", &tests)
            .output("junit", tests.join("junit.xml"));
        assert!(matches!(
            g.check(true),
            Err(GuardError::OutputInInputDir { .. })
        ));
        assert!(!tests.join("junit.xml").exists());
    }

    #[test]
    fn existing_rawlogs_are_not_overwritten_silently() {
        let d = dir();
        let mut g = OutputGuard::new();
        g.rawlog_dir(d.path());
        g.check(false).unwrap().remove_created();
        write(&d.path().join("rawlog.12"), "S: * OK\n");
        write(&d.path().join("rawlog.3"), "S: * OK\n");
        write(&d.path().join("notes.txt"), "mine\n");
        let e = g.check(false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "rawlog={} already holds 2 rawlog file(s) (rawlog.3) that this run would overwrite: use an empty directory or add `overwrite`",
                d.path().display()
            )
        );
        g.check(true).unwrap().remove_created();
        let mut g = OutputGuard::new();
        g.rawlog_dir(d.path().join("missing"));
        assert!(
            g.check(false)
                .unwrap_err()
                .to_string()
                .ends_with("no such directory")
        );
        let mut g = OutputGuard::new();
        g.rawlog_dir(d.path())
            .output("csv", d.path().join("rawlog.7"));
        assert!(matches!(
            g.check(true),
            Err(GuardError::OutputIsRawlog { .. })
        ));
    }

    #[test]
    fn write_errors_are_remembered() {
        let health = OutputHealth::new();
        assert_eq!(health.failure(), None);
        let mut full = health.watch("csv=/mnt/full/run.csv", Full);
        assert!(full.write_all(b"time,command\n").is_err());
        assert!(full.flush().is_err());
        assert_eq!(
            health.failure().as_deref(),
            Some("writing csv=/mnt/full/run.csv failed: No space left on device (os error 28)")
        );
        let mut ok = health.clone().watch("output=x", Vec::new());
        ok.write_all(b"fine").unwrap();
        assert_eq!(ok.get_ref(), b"fine");
    }

    /// A disk that is full.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(28))
        }
    }
}
