//! One logged-in connection of the battery and what it needs to read replies: the
//! untagged responses of a command, as owned values, so probes stay short.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::Mech;
use crate::imap::client::LoginRequest;
use crate::imap::command::quoted;
use crate::imap::response::{self, Code, FetchItem, Response, Status, Untagged};
use crate::imap::{ClientOptions, Completion, ImapClient, RawResponse};
use crate::net::Endpoint;
use crate::sasl::ScramCache;

/// Where and as whom the battery connects, and the names it uses.
pub struct Target {
    pub endpoint: Endpoint,
    pub options: ClientOptions,
    pub user: String,
    pub password: String,
    pub mech: Mech,
    scram_cache: ScramCache,
    next_id: AtomicU64,
    /// Personal namespace prefix (`INBOX.` on Courier, empty elsewhere).
    pub prefix: String,
    /// Tells this run's mailboxes and messages from any other's.
    pub run_id: String,
}

impl Target {
    pub fn new(
        endpoint: Endpoint,
        options: ClientOptions,
        user: String,
        password: String,
        mech: Mech,
    ) -> Target {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Target {
            endpoint,
            options,
            user,
            password,
            mech,
            scram_cache: ScramCache::default(),
            next_id: AtomicU64::new(1),
            prefix: String::new(),
            run_id: format!("{}-{nanos:x}", std::process::id()),
        }
    }

    /// A new logged-in session.
    pub async fn session(&self) -> anyhow::Result<Session> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut client = ImapClient::connect(&self.endpoint, id, &self.options)
            .await
            .with_context(|| format!("cannot connect to {}", self.endpoint))?;
        if !client.preauth() {
            let done = client
                .log_in(&LoginRequest {
                    user: &self.user,
                    password: &self.password,
                    mech: self.mech,
                    master: None,
                    scram_cache: &self.scram_cache,
                })
                .await
                .with_context(|| format!("cannot log in as {}", self.user))?;
            if !done.is_ok() {
                bail!("login as {} refused: {}", self.user, done.line);
            }
            // Capabilities after login may differ (RFC 3501 §6.2.3).
            let announced_after_login =
                done.line.contains("[CAPABILITY ") || has_capability_response(&done);
            if !announced_after_login {
                client.refresh_capabilities().await?;
            }
        }
        Ok(Session { client })
    }

    /// The name of this run's mailbox for `probe`.
    pub fn mailbox(&self, probe: &str) -> String {
        format!("{}imaptest-compliance-{}-{probe}", self.prefix, self.run_id)
    }

    /// A small plain message, different for each `n`.
    pub fn message(&self, n: u32) -> Vec<u8> {
        format!(
            "From: Compliance Sender <sender@example.com>\r\n\
             To: Compliance Reader <reader@example.com>\r\n\
             Subject: imaptest compliance message {n}\r\n\
             Message-ID: <compliance-{run}-{n}@imaptest.invalid>\r\n\
             Date: Mon, 01 Jan 2024 10:00:{n:02} +0000\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             \r\n\
             Body of compliance message {n}.\r\n",
            run = self.run_id,
            n = n % 60
        )
        .into_bytes()
    }
}

fn has_capability_response(done: &Completion) -> bool {
    done.untagged
        .iter()
        .any(|r| matches!(r.parse(), Ok(Response::Untagged(Untagged::Capability(_)))))
}

/// A logged-in connection.
pub struct Session {
    pub client: ImapClient,
}

impl Session {
    /// A command line (without tag), its completion whatever the status.
    pub async fn cmd(&mut self, line: &str) -> anyhow::Result<Completion> {
        self.client
            .simple(line)
            .await
            .with_context(|| format!("{line}: no complete reply"))
    }

    /// A command that must succeed.
    pub async fn ok(&mut self, line: &str) -> anyhow::Result<Completion> {
        let done = self.cmd(line).await?;
        if !done.is_ok() {
            bail!("{line} failed: {}", done.line);
        }
        Ok(done)
    }

    pub fn has(&self, capability: &str) -> bool {
        self.client.capabilities().has(capability)
    }

    /// `APPEND mailbox {n}` + `message`, whatever the status.
    pub async fn append(&mut self, mailbox: &str, message: &[u8]) -> anyhow::Result<Completion> {
        let (tag, builder) = self.client.command("APPEND");
        let parts = builder.string(mailbox.as_bytes()).literal(message).finish();
        self.client
            .run(&tag, parts)
            .await
            .with_context(|| format!("APPEND to {mailbox}: no complete reply"))
    }

    /// Appends `count` messages (`first..`) to a new `mailbox`.
    pub async fn create_with(
        &mut self,
        target: &Target,
        mailbox: &str,
        first: u32,
        count: u32,
    ) -> anyhow::Result<()> {
        self.ok(&format!("CREATE {}", quoted(mailbox))).await?;
        for n in first..first + count {
            let done = self.append(mailbox, &target.message(n)).await?;
            if !done.is_ok() {
                bail!("APPEND to {mailbox} failed: {}", done.line);
            }
        }
        Ok(())
    }

    /// SELECT (with `extra` after the name), which must succeed.
    pub async fn select(&mut self, mailbox: &str, extra: &str) -> anyhow::Result<Completion> {
        self.ok(&format!("SELECT {}{extra}", quoted(mailbox))).await
    }

    /// Sends raw bytes (whole command lines with CRLF) as one write.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.client
            .stream()
            .send(bytes, None)
            .await
            .context("write failed")
    }

    /// The next response, within `wait`; `None` when nothing came in time.
    pub async fn read_within(&mut self, wait: Duration) -> anyhow::Result<Option<RawResponse>> {
        match self.client.stream().read_response_within(Some(wait)).await {
            Ok(r) => Ok(Some(r)),
            Err(crate::imap::StreamError::Timeout(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn logout(mut self) {
        let _ = self.client.logout().await;
    }

    /// A fresh tag for a command sent with [`Self::send_raw`].
    pub fn tag(&mut self) -> String {
        self.client.next_tag()
    }
}

/// The untagged data of a completion, as owned values.
#[derive(Debug, Default, Clone)]
pub struct Data {
    pub exists: Option<u32>,
    pub recent: Option<u32>,
    pub expunged: Vec<u32>,
    /// `(earlier, uids)`
    pub vanished: Vec<(bool, Vec<u32>)>,
    pub fetches: Vec<Fetched>,
    pub search: Option<Vec<u32>>,
    pub uidvalidity: Option<u32>,
    pub uidnext: Option<u32>,
    pub highestmodseq: Option<u64>,
    /// `STATUS` items by upper-case name.
    pub status: Vec<(String, u64)>,
}

/// One `* n FETCH`.
#[derive(Debug, Default, Clone)]
pub struct Fetched {
    pub seq: u32,
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub modseq: Option<u64>,
    pub size: Option<u64>,
    /// `BODY[...]` items: name as sent, data (`None` for NIL).
    pub sections: Vec<(String, Option<Vec<u8>>)>,
    /// Item names that came as NIL (ENVELOPE NIL, BODY[] NIL, …).
    pub nil_items: Vec<String>,
}

impl Fetched {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x.eq_ignore_ascii_case(flag)))
    }

    pub fn section(&self, name: &str) -> Option<&Option<Vec<u8>>> {
        self.sections
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, d)| d)
    }
}

impl Data {
    pub fn of(responses: &[RawResponse]) -> Data {
        let mut data = Data::default();
        for r in responses {
            let Ok(Response::Untagged(u)) = r.parse() else {
                continue;
            };
            data.add(u);
        }
        data
    }

    pub fn add(&mut self, u: Untagged<'_>) {
        match u {
            Untagged::Exists(n) => self.exists = Some(n),
            Untagged::Recent(n) => self.recent = Some(n),
            Untagged::Expunge(n) => self.expunged.push(n),
            Untagged::Vanished { earlier, uids } => {
                self.vanished.push((earlier, uids.iter().collect()));
            }
            Untagged::Search { nums, .. } => self.search = Some(nums),
            Untagged::ESearch { all, .. } => {
                self.search = Some(all.map(|s| s.iter().collect()).unwrap_or_default());
            }
            Untagged::MailboxStatus { items, .. } => {
                for (name, value) in items {
                    self.status
                        .push((String::from_utf8_lossy(name).to_ascii_uppercase(), value));
                }
            }
            Untagged::Status { text, .. } => match text.code {
                Some(Code::UidValidity(v)) => self.uidvalidity = Some(v),
                Some(Code::UidNext(v)) => self.uidnext = Some(v),
                Some(Code::HighestModSeq(v)) => self.highestmodseq = Some(v),
                _ => {}
            },
            Untagged::Fetch { seq, items } => {
                let mut f = Fetched {
                    seq,
                    ..Fetched::default()
                };
                for item in items {
                    match item {
                        FetchItem::Uid(u) => f.uid = Some(u),
                        FetchItem::Flags(flags) => {
                            f.flags = Some(
                                flags
                                    .iter()
                                    .map(|x| String::from_utf8_lossy(x).into_owned())
                                    .collect(),
                            );
                        }
                        FetchItem::ModSeq(m) => f.modseq = Some(m),
                        FetchItem::Rfc822Size(s) => f.size = Some(s),
                        FetchItem::Section { name, data, .. } => {
                            let value = data.as_nstring().flatten().map(<[u8]>::to_vec);
                            let name = String::from_utf8_lossy(name).into_owned();
                            if value.is_none() {
                                f.nil_items.push(name.clone());
                            }
                            f.sections.push((name, value));
                        }
                        FetchItem::Envelope(a)
                        | FetchItem::BodyStructure(a)
                        | FetchItem::Body(a)
                            if a.is_nil() =>
                        {
                            f.nil_items.push("structure".into());
                        }
                        _ => {}
                    }
                }
                self.fetches.push(f);
            }
            _ => {}
        }
    }

    pub fn status_item(&self, name: &str) -> Option<u64> {
        self.status
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    pub fn status_u32(&self, name: &str) -> Option<u32> {
        self.status_item(name).and_then(|v| u32::try_from(v).ok())
    }
}

/// The response code of a completion's tagged line and its arguments, upper-case name.
pub fn tagged_code(done: &Completion) -> Option<(String, String)> {
    let Ok(Response::Tagged { text, .. }) = response::parse(done.line.as_bytes()) else {
        return None;
    };
    Some(match text.code? {
        Code::AppendUid { uidvalidity, uids } => (
            "APPENDUID".into(),
            format!("{uidvalidity} {}", first(&uids)),
        ),
        Code::CopyUid { uidvalidity, .. } => ("COPYUID".into(), uidvalidity.to_string()),
        Code::Other { name, args } => (
            String::from_utf8_lossy(name).to_ascii_uppercase(),
            String::from_utf8_lossy(args).into_owned(),
        ),
        Code::HighestModSeq(n) => ("HIGHESTMODSEQ".into(), n.to_string()),
        other => (format!("{other:?}").to_ascii_uppercase(), String::new()),
    })
}

fn first(set: &response::SeqSet) -> u32 {
    set.iter().next().unwrap_or(0)
}

/// `APPENDUID`'s UID, if the tagged reply has one.
pub fn append_uid(done: &Completion) -> Option<u32> {
    let Ok(Response::Tagged { text, .. }) = response::parse(done.line.as_bytes()) else {
        return None;
    };
    match text.code? {
        Code::AppendUid { uids, .. } => Some(first(&uids)),
        _ => None,
    }
}

/// The status word of a completion as text.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "OK",
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::PreAuth => "PREAUTH",
        Status::Bye => "BYE",
    }
}
