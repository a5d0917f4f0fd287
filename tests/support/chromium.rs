//! Headless Chromium driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: commands on fd 3, replies and events on fd 4, one JSON
//! message per NUL-terminated frame), so a test can load a page, collect its console
//! messages, exceptions and network requests, evaluate script in it, and print it to
//! PNG and PDF. No websocket, no port.
//!
//! Runs as root in CI: the flags are the ones Chromium needs there (`--no-sandbox`,
//! no GPU, no first-run, no background networking) with a fresh profile directory.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The Chromium binary on PATH, if any.
pub fn find() -> Option<PathBuf> {
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    })
}

/// A headless browser with one page attached.
pub struct Browser {
    child: Child,
    to: File,
    from: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    /// Every event received so far (method, params), in order.
    pub events: Vec<(String, Value)>,
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

impl Browser {
    /// Starts `binary` headless with a fresh profile in `profile_dir`; `extra` flags are
    /// added (e.g. a proxy that counts connection attempts).
    pub fn launch(binary: &Path, profile_dir: &Path, extra: &[String]) -> Browser {
        let (cmd_read, cmd_write) = pipe();
        let (ev_read, ev_write) = pipe();
        let mut command = Command::new(binary);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--hide-scrollbars",
                // Chromium's own services (clock sync, updates, sign-in, metrics).
                "--disable-domain-reliability",
                "--disable-client-side-phishing-detection",
                "--disable-breakpad",
                "--no-pings",
                "--metrics-recording-only",
                "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,\
                 MediaRouter,AutofillServerCommunication,SigninInterceptBubble,AccountConsistency",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile_dir.display()))
            .args(extra)
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe dup2 between fork and exec. The pipe ends are
        // close-on-exec; dup2 makes fds 3 and 4 inheritable.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(cmd_read, 3) < 0 || libc::dup2(ev_write, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        // SAFETY: the parent owns these descriptors from here on.
        unsafe {
            libc::close(cmd_read);
            libc::close(ev_write);
        }
        let to = unsafe { File::from_raw_fd(cmd_write) };
        let from_file = unsafe { File::from_raw_fd(ev_read) };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_file);
            let mut frame = Vec::new();
            loop {
                frame.clear();
                match reader.read_until(0, &mut frame) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if frame.last() == Some(&0) {
                    frame.pop();
                }
                let Ok(value) = serde_json::from_slice::<Value>(&frame) else {
                    continue;
                };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        let mut browser = Browser {
            child,
            to,
            from: rx,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
        };
        let targets = browser.call("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .map(|t| t["targetId"].as_str().unwrap().to_owned());
        let target = match page {
            Some(id) => id,
            None => browser.call("Target.createTarget", json!({"url": "about:blank"}))["targetId"]
                .as_str()
                .unwrap()
                .to_owned(),
        };
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in [
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
            "Page.enable",
        ] {
            browser.page(domain, json!({}));
        }
        browser
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let value = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method} within 60 s"));
            if value["id"] == json!(id) {
                if let Some(error) = value.get("error") {
                    panic!("{method}: {error}");
                }
                return value["result"].clone();
            }
            self.keep_event(value);
        }
    }

    fn keep_event(&mut self, value: Value) {
        if let Some(method) = value["method"].as_str() {
            self.events
                .push((method.to_owned(), value["params"].clone()));
        }
    }

    /// A browser-level command.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// A command to the page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    /// Waits for an event named `method` (already received or still to come).
    pub fn wait_event(&mut self, method: &str, timeout: Duration) -> Value {
        if let Some((_, params)) = self.events.iter().find(|(m, _)| m == method) {
            return params.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let value = self
                .from
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {method} within {timeout:?}"));
            let found = value["method"] == json!(method);
            let params = value["params"].clone();
            self.keep_event(value);
            if found {
                return params;
            }
        }
    }

    /// Collects events arriving within `period`.
    pub fn drain(&mut self, period: Duration) {
        let deadline = Instant::now() + period;
        while let Ok(value) = self
            .from
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.keep_event(value);
        }
    }

    /// Loads `url` and waits for its load event.
    pub fn open(&mut self, url: &str) {
        self.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        self.events.retain(|(m, _)| m != "Page.loadEventFired");
        self.page("Page.navigate", json!({"url": url}));
        self.wait_event("Page.loadEventFired", Duration::from_secs(60));
    }

    /// Evaluates `expression` in the page; returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.page(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(e) = result.get("exceptionDetails") {
            panic!("script failed: {e}");
        }
        result["result"]["value"].clone()
    }

    /// The whole page as a PNG.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let metrics = self.page("Page.getLayoutMetrics", json!({}));
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .or_else(|| metrics["contentSize"]["height"].as_f64())
            .unwrap_or(900.0)
            .ceil();
        let shot = self.page(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1},
            }),
        );
        decode(shot["data"].as_str().unwrap())
    }

    /// The page printed to PDF.
    pub fn pdf(&mut self) -> Vec<u8> {
        let printed = self.page("Page.printToPDF", json!({"printBackground": true}));
        decode(printed["data"].as_str().unwrap())
    }

    /// Console errors and warnings, uncaught exceptions and error log entries, as text.
    pub fn problems(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(method, p)| match method.as_str() {
                "Runtime.consoleAPICalled"
                    if matches!(p["type"].as_str(), Some("error" | "warning" | "assert")) =>
                {
                    Some(format!("console.{}: {}", p["type"], p["args"]))
                }
                "Runtime.exceptionThrown" => Some(format!("exception: {}", p["exceptionDetails"])),
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    Some(format!("log: {}", p["entry"]))
                }
                _ => None,
            })
            .collect()
    }

    /// URLs of the requests the page made.
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(m, _)| m == "Network.requestWillBeSent")
            .map(|(_, p)| p["request"]["url"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .to
            .write_all(b"{\"id\":999999,\"method\":\"Browser.close\"}\0");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64 from chromium")
}
