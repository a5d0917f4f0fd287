//! The battery's probes. Each probe works in a mailbox of its own, made for it and
//! deleted after it, with as many sessions of one user as its question needs, and
//! answers one or more rows of the matrix.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::session::{Data, Session, Target, append_uid, status_word, tagged_code};
use super::{Check, Verdict};
use crate::config::{Common, ScriptedSettings};
use crate::imap::Completion;
use crate::imap::command::quoted;
use crate::imap::response::{Response, Status, Untagged};
use crate::imap::token::Arg;

/// A question of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub id: &'static str,
    pub question: &'static str,
    pub rfc: &'static str,
}

/// A probe and the rows it answers, in order.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub name: &'static str,
    pub rows: &'static [Row],
}

/// Every probe, in the matrix's order.
pub const PROBES: &[Probe] = &[
    Probe {
        name: "expunged",
        rows: &[
            Row {
                id: "expunged-fetch",
                question: "FETCH of a message another session expunged",
                rfc: "RFC 2180 §4.1",
            },
            Row {
                id: "expunged-store",
                question: "STORE to a message another session expunged",
                rfc: "RFC 2180 §4.2",
            },
            Row {
                id: "expunged-search",
                question: "SEARCH while another session expunged a message",
                rfc: "RFC 2180 §4.3",
            },
        ],
    },
    Probe {
        name: "recent",
        rows: &[Row {
            id: "recent",
            question: "\\Recent given to exactly one session",
            rfc: "RFC 3501 §2.3.2, §6.3.11",
        }],
    },
    Probe {
        name: "flags",
        rows: &[
            Row {
                id: "flags-announced",
                question: "flag changes announced to other sessions",
                rfc: "RFC 3501 §7.4.2",
            },
            Row {
                id: "flags-atomic",
                question: "concurrent +FLAGS from two sessions, none lost",
                rfc: "RFC 3501 §6.4.6",
            },
        ],
    },
    Probe {
        name: "expunge-order",
        rows: &[Row {
            id: "expunge-order",
            question: "EXPUNGE numbering when two messages go",
            rfc: "RFC 3501 §7.4.1",
        }],
    },
    Probe {
        name: "uidvalidity",
        rows: &[Row {
            id: "uidvalidity-rename",
            question: "UIDVALIDITY after RENAME, and of a new mailbox of the old name",
            rfc: "RFC 3501 §2.3.1.1, §6.3.5",
        }],
    },
    Probe {
        name: "idle",
        rows: &[Row {
            id: "idle-delay",
            question: "IDLE: delay from another session's APPEND to EXISTS",
            rfc: "RFC 2177",
        }],
    },
    Probe {
        name: "uidplus",
        rows: &[Row {
            id: "uidplus",
            question: "APPENDUID and COPYUID",
            rfc: "RFC 4315",
        }],
    },
    Probe {
        name: "condstore",
        rows: &[Row {
            id: "condstore",
            question: "HIGHESTMODSEQ, MODSEQ on STORE, UNCHANGEDSINCE",
            rfc: "RFC 7162 §3.1",
        }],
    },
    Probe {
        name: "qresync",
        rows: &[Row {
            id: "qresync",
            question: "VANISHED after ENABLE QRESYNC, VANISHED (EARLIER) on resync",
            rfc: "RFC 7162 §3.2",
        }],
    },
    Probe {
        name: "literal-plus",
        rows: &[Row {
            id: "literal-plus",
            question: "APPEND with a non-synchronising literal",
            rfc: "RFC 7888",
        }],
    },
    Probe {
        name: "pipelining",
        rows: &[Row {
            id: "pipelining",
            question: "ten commands in one write",
            rfc: "RFC 3501 §5.5",
        }],
    },
    Probe {
        name: "compress",
        rows: &[Row {
            id: "compress",
            question: "COMPRESS=DEFLATE",
            rfc: "RFC 4978",
        }],
    },
];

/// The scripted suite's row.
const SCRIPTED: Row = Row {
    id: "scripted-suite",
    question: "the scripted suite given with test=",
    rfc: "ImapTest scripts",
};

/// How long another session's change may take to show (NOOP polling).
const SETTLE: Duration = Duration::from_secs(5);
/// How long IDLE waits for the EXISTS.
const IDLE_WAIT: Duration = Duration::from_secs(15);
/// Rounds of concurrent +FLAGS in `flags-atomic`.
const FLAG_ROUNDS: u32 = 10;

/// One row's answer.
#[derive(Debug)]
struct Answer {
    verdict: Verdict,
    answer: String,
    measured_ms: Option<f64>,
    detail: String,
}

fn answer(verdict: Verdict, text: impl Into<String>) -> Answer {
    Answer {
        verdict,
        answer: text.into(),
        measured_ms: None,
        detail: String::new(),
    }
}

impl Answer {
    fn detail(mut self, detail: impl Into<String>) -> Answer {
        self.detail = detail.into();
        self
    }
}

fn check(row: &Row, a: Answer) -> Check {
    Check {
        id: row.id.to_owned(),
        question: row.question.to_owned(),
        rfc: row.rfc.to_owned(),
        verdict: a.verdict,
        answer: a.answer,
        measured_ms: a.measured_ms,
        detail: a.detail,
    }
}

/// Runs `probe` in its own mailbox and deletes it afterwards; a probe that cannot
/// finish answers every row with [`Verdict::Error`].
pub async fn run_probe(probe: Probe, target: &Target) -> Vec<Check> {
    let mailbox = target.mailbox(probe.name);
    let result = match probe.name {
        "expunged" => expunged(target, &mailbox).await,
        "recent" => recent(target, &mailbox).await.map(|a| vec![a]),
        "flags" => flags(target, &mailbox).await,
        "expunge-order" => expunge_order(target, &mailbox).await.map(|a| vec![a]),
        "uidvalidity" => uidvalidity(target, &mailbox).await.map(|a| vec![a]),
        "idle" => idle(target, &mailbox).await.map(|a| vec![a]),
        "uidplus" => uidplus(target, &mailbox).await.map(|a| vec![a]),
        "condstore" => condstore(target, &mailbox).await.map(|a| vec![a]),
        "qresync" => qresync(target, &mailbox).await.map(|a| vec![a]),
        "literal-plus" => literal_plus(target, &mailbox).await.map(|a| vec![a]),
        "pipelining" => pipelining(target, &mailbox).await.map(|a| vec![a]),
        "compress" => compress(target, &mailbox).await.map(|a| vec![a]),
        other => Err(anyhow::anyhow!("no probe {other}")),
    };
    cleanup(target, &[mailbox.clone(), renamed(&mailbox)]).await;
    match result {
        Ok(answers) => probe
            .rows
            .iter()
            .zip(answers)
            .map(|(row, a)| check(row, a))
            .collect(),
        Err(e) => probe
            .rows
            .iter()
            .map(|row| {
                check(
                    row,
                    answer(Verdict::Error, "could not run").detail(format!("{e:#}")),
                )
            })
            .collect(),
    }
}

fn renamed(mailbox: &str) -> String {
    format!("{mailbox}-renamed")
}

async fn cleanup(target: &Target, mailboxes: &[String]) {
    if let Ok(mut s) = target.session().await {
        for m in mailboxes {
            let _ = s.cmd(&format!("DELETE {}", quoted(m))).await;
        }
        s.logout().await;
    }
}

/// The personal namespace's prefix (`INBOX.` on Courier), empty without NAMESPACE.
pub async fn personal_prefix(session: &mut Session) -> String {
    if !session.has("NAMESPACE") {
        return String::new();
    }
    let Ok(done) = session.cmd("NAMESPACE").await else {
        return String::new();
    };
    for r in &done.untagged {
        if let Ok(Response::Untagged(Untagged::Other { name, args })) = r.parse()
            && name.eq_ignore_ascii_case(b"NAMESPACE")
            && let Some(prefix) = args
                .first()
                .and_then(Arg::as_list)
                .and_then(|l| l.first())
                .and_then(Arg::as_list)
                .and_then(|l| l.first())
                .and_then(Arg::as_str_bytes)
        {
            return String::from_utf8_lossy(prefix).into_owned();
        }
    }
    String::new()
}

/// NOOPs until `done` says the change arrived, for at most [`SETTLE`]; the data of
/// every NOOP, merged.
async fn poll(session: &mut Session, done: impl Fn(&Data) -> bool) -> anyhow::Result<Data> {
    let started = Instant::now();
    let mut all = Data::default();
    loop {
        let reply = session.ok("NOOP").await?;
        for r in &reply.untagged {
            if let Ok(Response::Untagged(u)) = r.parse() {
                all.add(u);
            }
        }
        if done(&all) || started.elapsed() > SETTLE {
            return Ok(all);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn code_suffix(done: &Completion) -> String {
    match tagged_code(done) {
        Some((name, _)) => format!(" [{name}]"),
        None => String::new(),
    }
}

async fn expunged(target: &Target, mailbox: &str) -> anyhow::Result<Vec<Answer>> {
    let mut a = target.session().await?;
    let mut b = target.session().await?;
    a.create_with(target, mailbox, 1, 3).await?;
    a.select(mailbox, "").await?;
    b.select(mailbox, "").await?;
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)").await?;
    let expunge = b.cmd("EXPUNGE").await?;
    if !expunge.is_ok() {
        let refused = answer(Verdict::Pass, "§4.1.4: EXPUNGE refused while shared")
            .detail(expunge.line.clone());
        return Ok(vec![
            refused,
            answer(Verdict::Info, "not reached"),
            answer(Verdict::Info, "not reached"),
        ]);
    }
    let original = target.message(2);
    let fetch = a.cmd("FETCH 2 (UID RFC822.SIZE BODY.PEEK[])").await?;
    let data = Data::of(&fetch.untagged);
    let fetch_answer = if !data.expunged.is_empty() {
        answer(Verdict::Deviation, "EXPUNGE sent during FETCH").detail(fetch.line.clone())
    } else {
        let row = data.fetches.iter().find(|f| f.seq == 2);
        let body = row.and_then(|f| f.section("BODY[]")).cloned();
        match (fetch.status, row, body) {
            (Status::No, _, _) => answer(
                Verdict::Pass,
                format!("§4.1.2: tagged NO{}", code_suffix(&fetch)),
            ),
            (Status::Ok, Some(_), Some(Some(body))) if body == original => answer(
                Verdict::Pass,
                "§4.1.1: still readable until EXPUNGE is sent",
            ),
            (Status::Ok, Some(_), Some(None)) => {
                answer(Verdict::Pass, "§4.1.3: NIL data, tagged OK")
            }
            (Status::Ok, Some(_), Some(Some(body))) => answer(
                Verdict::Deviation,
                format!(
                    "made-up message ({} bytes) instead of the expunged one",
                    body.len()
                ),
            )
            .detail(format!(
                "quirk expunged-message-fabricated: {}",
                String::from_utf8_lossy(&body[..body.len().min(120)]).replace("\r\n", " | ")
            )),
            (Status::Ok, _, _) => answer(
                Verdict::Pass,
                format!("tagged OK{} without data", code_suffix(&fetch)),
            )
            .detail("RFC 9051 §7.5.1 reads this way; RFC 2180 §4.1 lists NIL data"),
            (status, _, _) => answer(
                Verdict::Deviation,
                format!("tagged {}", status_word(status)),
            )
            .detail(fetch.line.clone()),
        }
    };
    let store = a.cmd("STORE 2 +FLAGS (\\Flagged)").await?;
    let data = Data::of(&store.untagged);
    let store_answer = if !data.expunged.is_empty() {
        answer(Verdict::Deviation, "EXPUNGE sent during STORE")
    } else {
        match store.status {
            Status::No => answer(Verdict::Pass, format!("tagged NO{}", code_suffix(&store))),
            Status::Ok if data.fetches.iter().any(|f| f.seq == 2) => answer(
                Verdict::Pass,
                format!("tagged OK{}, FETCH with the new flags", code_suffix(&store)),
            ),
            Status::Ok => answer(
                Verdict::Pass,
                format!("tagged OK{} without FETCH", code_suffix(&store)),
            ),
            status => answer(
                Verdict::Deviation,
                format!("tagged {}", status_word(status)),
            )
            .detail(store.line.clone()),
        }
    };
    let search = a.cmd("SEARCH ALL").await?;
    let data = Data::of(&search.untagged);
    let search_answer = if !data.expunged.is_empty() {
        answer(Verdict::Deviation, "EXPUNGE sent during SEARCH")
    } else {
        match (search.status, &data.search) {
            (Status::Ok, Some(nums)) if nums.contains(&2) => {
                answer(Verdict::Pass, "the expunged message still matches")
            }
            (Status::Ok, Some(_)) => answer(Verdict::Pass, "the expunged message is left out"),
            (Status::No, _) => answer(Verdict::Pass, format!("tagged NO{}", code_suffix(&search))),
            (status, _) => answer(
                Verdict::Deviation,
                format!("tagged {} without SEARCH", status_word(status)),
            )
            .detail(search.line.clone()),
        }
    };
    a.logout().await;
    b.logout().await;
    Ok(vec![fetch_answer, store_answer, search_answer])
}

async fn recent(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    let mut b = target.session().await?;
    let mut c = target.session().await?;
    c.create_with(target, mailbox, 1, 0).await?;
    a.select(mailbox, "").await?;
    b.select(mailbox, "").await?;
    let appended = c.append(mailbox, &target.message(1)).await?;
    if !appended.is_ok() {
        bail!("APPEND failed: {}", appended.line);
    }
    let mut seen = Vec::new();
    for s in [&mut a, &mut b] {
        let noop = poll(s, |d| d.exists.is_some_and(|n| n >= 1)).await?;
        let fetch = s.ok("FETCH 1:* (FLAGS)").await?;
        let flagged = Data::of(&fetch.untagged)
            .fetches
            .iter()
            .any(|f| f.has_flag("\\Recent"));
        seen.push(noop.recent.unwrap_or(0) > 0 || flagged);
    }
    let detail = format!("session A: {}, session B: {}", seen[0], seen[1]);
    a.logout().await;
    b.logout().await;
    c.logout().await;
    Ok(match seen.iter().filter(|s| **s).count() {
        1 => answer(Verdict::Pass, "exactly one session"),
        2 => answer(Verdict::Deviation, "both sessions").detail(detail),
        _ => answer(Verdict::Deviation, "no session").detail(detail),
    })
}

async fn flags(target: &Target, mailbox: &str) -> anyhow::Result<Vec<Answer>> {
    let mut a = target.session().await?;
    let mut b = target.session().await?;
    a.create_with(target, mailbox, 1, 1).await?;
    a.select(mailbox, "").await?;
    b.select(mailbox, "").await?;
    a.ok("STORE 1 +FLAGS (\\Flagged)").await?;
    let seen = poll(&mut b, |d| {
        d.fetches
            .iter()
            .any(|f| f.seq == 1 && f.has_flag("\\Flagged"))
    })
    .await?;
    let announced = if seen
        .fetches
        .iter()
        .any(|f| f.seq == 1 && f.has_flag("\\Flagged"))
    {
        answer(
            Verdict::Pass,
            "announced to the other session at its next NOOP",
        )
    } else {
        answer(
            Verdict::Deviation,
            format!("not announced within {} s of NOOPs", SETTLE.as_secs()),
        )
    };
    for round in 0..FLAG_ROUNDS {
        let (to_a, to_b) = (
            format!("STORE 1 +FLAGS.SILENT ($ImaptestA{round})"),
            format!("STORE 1 +FLAGS.SILENT ($ImaptestB{round})"),
        );
        let (x, y) = tokio::join!(a.cmd(&to_a), b.cmd(&to_b));
        let (x, y) = (x?, y?);
        if !x.is_ok() || !y.is_ok() {
            let line = if x.is_ok() { y.line } else { x.line };
            return Ok(vec![
                announced,
                answer(Verdict::Unsupported, "keywords refused").detail(line),
            ]);
        }
    }
    let fetch = a.ok("FETCH 1 (FLAGS)").await?;
    let data = Data::of(&fetch.untagged);
    let flags = data
        .fetches
        .iter()
        .rev()
        .find(|f| f.seq == 1)
        .and_then(|f| f.flags.clone())
        .context("no FLAGS for message 1")?;
    let wanted =
        (0..FLAG_ROUNDS).flat_map(|r| [format!("$ImaptestA{r}"), format!("$ImaptestB{r}")]);
    let lost: Vec<String> = wanted
        .filter(|k| !flags.iter().any(|f| f.eq_ignore_ascii_case(k)))
        .collect();
    let total = 2 * FLAG_ROUNDS;
    let atomic = if lost.is_empty() {
        answer(
            Verdict::Pass,
            format!("{total} concurrent keyword additions, none lost"),
        )
    } else {
        answer(
            Verdict::Deviation,
            format!(
                "lost {} of {total} concurrent keyword additions",
                lost.len()
            ),
        )
        .detail(lost.join(" "))
    };
    a.logout().await;
    b.logout().await;
    Ok(vec![announced, atomic])
}

/// The UIDs of `1:*` in sequence order.
async fn uids(session: &mut Session) -> anyhow::Result<Vec<u32>> {
    let done = session.ok("FETCH 1:* (UID)").await?;
    let mut rows: Vec<(u32, u32)> = Data::of(&done.untagged)
        .fetches
        .iter()
        .filter_map(|f| Some((f.seq, f.uid?)))
        .collect();
    rows.sort_unstable();
    Ok(rows.into_iter().map(|(_, u)| u).collect())
}

/// The UIDs left after removing `expunged` sequence numbers one after the other.
fn apply_expunges(mut uids: Vec<u32>, expunged: &[u32]) -> Option<Vec<u32>> {
    for &seq in expunged {
        let i = usize::try_from(seq).ok()?.checked_sub(1)?;
        if i >= uids.len() {
            return None;
        }
        uids.remove(i);
    }
    Some(uids)
}

fn describe_order(seqs: &[u32]) -> String {
    let list = seqs
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let order = if seqs.windows(2).all(|w| w[0] > w[1]) {
        "highest first"
    } else if seqs.windows(2).all(|w| w[0] <= w[1]) {
        "lowest first, renumbered"
    } else {
        "mixed"
    };
    format!("EXPUNGE {list} ({order})")
}

async fn expunge_order(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    let mut b = target.session().await?;
    a.create_with(target, mailbox, 1, 5).await?;
    a.select(mailbox, "").await?;
    b.select(mailbox, "").await?;
    let before = uids(&mut a).await?;
    if before.len() != 5 {
        bail!("expected 5 messages, FETCH gave {} UIDs", before.len());
    }
    b.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)").await?;
    let own = Data::of(&b.ok("EXPUNGE").await?.untagged).expunged;
    let other = poll(&mut a, |d| d.expunged.len() >= 2).await?.expunged;
    let wanted = vec![before[0], before[2], before[4]];
    let after = uids(&mut a).await?;
    a.logout().await;
    b.logout().await;
    let right = |seqs: &[u32]| apply_expunges(before.clone(), seqs).as_ref() == Some(&wanted);
    if !right(&own) || !right(&other) || after != wanted {
        return Ok(answer(
            Verdict::Deviation,
            "EXPUNGE numbers do not match the messages removed",
        )
        .detail(format!(
            "expunging session: {own:?}, other session: {other:?}, left {after:?}, expected {wanted:?}"
        )));
    }
    let text = describe_order(&own);
    let other_text = describe_order(&other);
    Ok(if text == other_text {
        answer(Verdict::Pass, format!("{text}, same for the other session"))
    } else {
        answer(
            Verdict::Pass,
            format!("{text}; the other session: {other_text}"),
        )
    })
}

async fn uidvalidity(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    let status = |s: &Completion| {
        let d = Data::of(&s.untagged);
        (d.status_u32("UIDVALIDITY"), d.status_u32("UIDNEXT"))
    };
    a.create_with(target, mailbox, 1, 2).await?;
    let q = quoted(mailbox);
    let (v1, n1) = status(&a.ok(&format!("STATUS {q} (UIDVALIDITY UIDNEXT)")).await?);
    let to = renamed(mailbox);
    let rename = a.cmd(&format!("RENAME {q} {}", quoted(&to))).await?;
    if !rename.is_ok() {
        return Ok(answer(Verdict::Deviation, "RENAME failed").detail(rename.line));
    }
    let (v2, _) = status(
        &a.ok(&format!("STATUS {} (UIDVALIDITY)", quoted(&to)))
            .await?,
    );
    a.ok(&format!("CREATE {q}")).await?;
    let (v3, n3) = status(&a.ok(&format!("STATUS {q} (UIDVALIDITY UIDNEXT)")).await?);
    a.logout().await;
    let (Some(v1), Some(v2), Some(v3)) = (v1, v2, v3) else {
        bail!("STATUS gave no UIDVALIDITY");
    };
    let renamed_part = if v2 == v1 {
        "the renamed mailbox keeps its UIDVALIDITY"
    } else {
        "the renamed mailbox gets a new UIDVALIDITY"
    };
    let detail = format!("before {v1}, renamed {v2}, new {v3}");
    Ok(if v3 != v1 {
        answer(
            Verdict::Pass,
            format!("{renamed_part}; a new mailbox of the old name gets a new one"),
        )
        .detail(detail)
    } else if n3.zip(n1).is_some_and(|(n3, n1)| n3 >= n1) {
        answer(
            Verdict::Pass,
            format!("{renamed_part}; a new mailbox of the old name keeps it, UIDs go on"),
        )
        .detail(detail)
    } else {
        answer(
            Verdict::Deviation,
            format!("{renamed_part}; a new mailbox of the old name reuses it and its UIDs"),
        )
        .detail(detail)
    })
}

/// The band an IDLE delay falls in: coarse, so a committed matrix stays comparable.
pub fn idle_band(delay: Option<Duration>) -> &'static str {
    match delay.map(|d| d.as_secs_f64()) {
        Some(s) if s < 2.0 => "< 2 s",
        Some(s) if s < IDLE_WAIT.as_secs_f64() => "2-15 s",
        _ => "none within 15 s",
    }
}

async fn idle(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    if !a.has("IDLE") {
        return Ok(answer(Verdict::Unsupported, "IDLE not announced"));
    }
    let mut b = target.session().await?;
    a.create_with(target, mailbox, 1, 1).await?;
    a.select(mailbox, "").await?;
    let (tag, _) = a.client.idle().await.context("IDLE")?;
    let appended = b.append(mailbox, &target.message(2)).await?;
    if !appended.is_ok() {
        bail!("APPEND failed: {}", appended.line);
    }
    let started = Instant::now();
    let mut delay = None;
    while started.elapsed() < IDLE_WAIT {
        let Some(r) = a.read_within(IDLE_WAIT - started.elapsed()).await? else {
            break;
        };
        if let Ok(Response::Untagged(Untagged::Exists(n))) = r.parse()
            && n >= 2
        {
            delay = Some(started.elapsed());
            break;
        }
    }
    a.client.idle_done(&tag).await.context("DONE")?;
    a.logout().await;
    b.logout().await;
    let mut result = answer(Verdict::Info, idle_band(delay));
    result.measured_ms = delay.map(|d| (d.as_secs_f64() * 1e4).round() / 10.0);
    Ok(result)
}

async fn uidplus(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    if !a.has("UIDPLUS") {
        return Ok(answer(Verdict::Unsupported, "UIDPLUS not announced"));
    }
    a.ok(&format!("CREATE {}", quoted(mailbox))).await?;
    let appended = a.append(mailbox, &target.message(1)).await?;
    let uid = append_uid(&appended);
    a.select(mailbox, "").await?;
    let known = uids(&mut a).await?;
    let copy = a.ok(&format!("COPY 1 {}", quoted(mailbox))).await?;
    let copyuid = tagged_code(&copy).is_some_and(|(name, _)| name == "COPYUID");
    a.logout().await;
    let mut missing = Vec::new();
    match uid {
        Some(u) if known.first() == Some(&u) => {}
        Some(u) => missing.push(format!("APPENDUID {u} is not the message's UID {known:?}")),
        None => missing.push("no APPENDUID".to_owned()),
    }
    if !copyuid {
        missing.push("no COPYUID".to_owned());
    }
    Ok(if missing.is_empty() {
        answer(Verdict::Pass, "APPENDUID and COPYUID, UIDs right")
    } else {
        answer(Verdict::Deviation, missing.join(", "))
    })
}

async fn condstore(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    if !a.has("CONDSTORE") {
        return Ok(answer(Verdict::Unsupported, "CONDSTORE not announced"));
    }
    a.create_with(target, mailbox, 1, 2).await?;
    let selected = Data::of(&a.select(mailbox, " (CONDSTORE)").await?.untagged);
    let modseq = |d: &Completion| {
        Data::of(&d.untagged)
            .fetches
            .iter()
            .find(|f| f.seq == 1)
            .and_then(|f| f.modseq)
    };
    let m1 = modseq(&a.ok("FETCH 1 (MODSEQ)").await?);
    let m2 = modseq(&a.ok("STORE 1 +FLAGS (\\Seen)").await?);
    let mut missing = Vec::new();
    if selected.highestmodseq.is_none() {
        missing.push("no HIGHESTMODSEQ at SELECT");
    }
    match (m1, m2) {
        (Some(a1), Some(a2)) if a2 > a1 => {}
        (Some(_), Some(_)) => missing.push("MODSEQ did not rise on STORE"),
        _ => missing.push("no MODSEQ in FETCH"),
    }
    let old = m1.unwrap_or(1);
    let guarded = a
        .cmd(&format!(
            "STORE 1 (UNCHANGEDSINCE {old}) +FLAGS (\\Flagged)"
        ))
        .await?;
    let modified = tagged_code(&guarded).is_some_and(|(name, _)| name == "MODIFIED");
    if !modified {
        missing.push("UNCHANGEDSINCE with an old MODSEQ not answered [MODIFIED]");
    }
    a.logout().await;
    Ok(if missing.is_empty() {
        answer(
            Verdict::Pass,
            "HIGHESTMODSEQ, MODSEQ rises on STORE, UNCHANGEDSINCE gives MODIFIED",
        )
    } else {
        answer(Verdict::Deviation, missing.join(", ")).detail(guarded.line)
    })
}

async fn qresync(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    if !a.has("QRESYNC") {
        return Ok(answer(Verdict::Unsupported, "QRESYNC not announced"));
    }
    let mut b = target.session().await?;
    a.create_with(target, mailbox, 1, 3).await?;
    a.ok("ENABLE QRESYNC").await?;
    let selected = Data::of(&a.select(mailbox, "").await?.untagged);
    let (Some(validity), Some(modseq)) = (selected.uidvalidity, selected.highestmodseq) else {
        bail!("SELECT with QRESYNC enabled gave no UIDVALIDITY or HIGHESTMODSEQ");
    };
    let before = uids(&mut a).await?;
    let gone = *before.first().context("no messages")?;
    b.select(mailbox, "").await?;
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)").await?;
    b.ok("EXPUNGE").await?;
    let seen = poll(&mut a, |d| !d.vanished.is_empty() || !d.expunged.is_empty()).await?;
    a.logout().await;
    let mut c = target.session().await?;
    c.ok("ENABLE QRESYNC").await?;
    let resync = Data::of(
        &c.select(mailbox, &format!(" (QRESYNC ({validity} {modseq}))"))
            .await?
            .untagged,
    );
    c.logout().await;
    b.logout().await;
    let mut wrong = Vec::new();
    if !seen.expunged.is_empty() {
        wrong.push("EXPUNGE instead of VANISHED".to_owned());
    } else if !seen
        .vanished
        .iter()
        .any(|(earlier, u)| !earlier && u.contains(&gone))
    {
        wrong.push("no VANISHED for the expunge".to_owned());
    }
    if !resync
        .vanished
        .iter()
        .any(|(earlier, u)| *earlier && u.contains(&gone))
    {
        wrong.push("resync without VANISHED (EARLIER) of the expunged UID".to_owned());
    }
    Ok(if wrong.is_empty() {
        answer(Verdict::Pass, "VANISHED, and VANISHED (EARLIER) on resync")
    } else {
        answer(Verdict::Deviation, wrong.join(", "))
    })
}

async fn literal_plus(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    let plus = a.has("LITERAL+");
    if !plus && !a.has("LITERAL-") {
        return Ok(answer(Verdict::Unsupported, "LITERAL+ not announced"));
    }
    a.ok(&format!("CREATE {}", quoted(mailbox))).await?;
    let message = target.message(1);
    let tag = a.tag();
    let mut bytes = format!(
        "{tag} APPEND {} {{{}+}}\r\n",
        quoted(mailbox),
        message.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&message);
    bytes.extend_from_slice(b"\r\n");
    a.send_raw(&bytes).await?;
    let mut continuation = false;
    let status = loop {
        let r = a
            .read_within(target.options.timeout)
            .await?
            .context("no reply to APPEND")?;
        match r.parse() {
            Ok(Response::Continuation(_)) => continuation = true,
            Ok(Response::Tagged { tag: t, status, .. }) if t == tag.as_bytes() => break status,
            _ => {}
        }
    };
    a.logout().await;
    let kind = if plus { "LITERAL+" } else { "LITERAL-" };
    Ok(match (status, continuation) {
        (Status::Ok, false) => answer(Verdict::Pass, format!("{kind}: APPEND {{n+}} accepted")),
        (Status::Ok, true) => answer(
            Verdict::Deviation,
            format!("{kind}: asked for the literal anyway"),
        ),
        (status, _) => answer(
            Verdict::Deviation,
            format!("{kind}: APPEND {{n+}} answered {}", status_word(status)),
        ),
    })
}

async fn pipelining(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    const COMMANDS: [&str; 10] = [
        "NOOP",
        "FETCH 1 (FLAGS)",
        "FETCH 2 (UID RFC822.SIZE)",
        "SEARCH ALL",
        "UID FETCH 1:* (FLAGS)",
        "STORE 1 +FLAGS.SILENT (\\Seen)",
        "FETCH 1:2 (ENVELOPE)",
        "SEARCH SEEN",
        "CHECK",
        "NOOP",
    ];
    let mut a = target.session().await?;
    a.create_with(target, mailbox, 1, 2).await?;
    a.select(mailbox, "").await?;
    let mut bytes = Vec::new();
    let mut tags = Vec::new();
    for command in COMMANDS {
        let tag = a.tag();
        bytes.extend_from_slice(format!("{tag} {command}\r\n").as_bytes());
        tags.push(tag);
    }
    a.send_raw(&bytes).await?;
    let mut answered: Vec<(String, Status)> = Vec::new();
    while answered.len() < tags.len() {
        let r = a
            .read_within(target.options.timeout)
            .await?
            .context("pipelined commands not all answered")?;
        if let Ok(Response::Tagged { tag, status, .. }) = r.parse() {
            answered.push((String::from_utf8_lossy(tag).into_owned(), status));
        }
    }
    a.logout().await;
    let failed: Vec<&str> = answered
        .iter()
        .filter(|(_, s)| *s != Status::Ok)
        .filter_map(|(t, _)| tags.iter().position(|x| x == t).map(|i| COMMANDS[i]))
        .collect();
    let in_order = answered.iter().map(|(t, _)| t).eq(tags.iter());
    Ok(if !failed.is_empty() {
        answer(
            Verdict::Deviation,
            format!("{} of 10 failed: {}", failed.len(), failed.join("; ")),
        )
    } else {
        // The order may change with timing (RFC 3501 §5.5 allows either): detail only.
        answer(Verdict::Pass, "all 10 answered OK").detail(if in_order {
            "answered in order"
        } else {
            "answered out of order"
        })
    })
}

async fn compress(target: &Target, mailbox: &str) -> anyhow::Result<Answer> {
    let mut a = target.session().await?;
    if !a.has("COMPRESS=DEFLATE") {
        return Ok(answer(
            Verdict::Unsupported,
            "COMPRESS=DEFLATE not announced",
        ));
    }
    let done = a.cmd("COMPRESS DEFLATE").await?;
    if !done.is_ok() {
        return Ok(answer(Verdict::Deviation, "COMPRESS DEFLATE refused").detail(done.line));
    }
    a.client.stream().start_compress()?;
    a.create_with(target, mailbox, 1, 2).await?;
    a.select(mailbox, "").await?;
    let fetched = Data::of(&a.ok("FETCH 1:* (BODY.PEEK[])").await?.untagged);
    a.logout().await;
    let bodies_right = fetched.fetches.len() == 2
        && fetched.fetches.iter().all(|f| {
            f.section("BODY[]")
                .and_then(Option::as_ref)
                .is_some_and(|b| *b == target.message(f.seq))
        });
    Ok(if bodies_right {
        answer(Verdict::Pass, "DEFLATE: APPEND and FETCH work compressed")
    } else {
        answer(
            Verdict::Deviation,
            "DEFLATE: messages differ when read compressed",
        )
    })
}

/// Runs the scripted suite of `test=` and answers its row.
pub async fn scripted_suite(common: &Common, scripted: &ScriptedSettings) -> Check {
    let (_tx, rx) = tokio::sync::watch::channel(crate::control::RunState::Running);
    let result = crate::scripted::run_tests(common, scripted, None, rx, |_| {}).await;
    let a = match result {
        Err(e) => answer(Verdict::Error, "could not run").detail(format!("{e:#}")),
        Ok(results) => {
            let mut failed: Vec<String> = results
                .iter()
                .filter(|r| r.is_failure())
                .map(|r| r.name.clone())
                .collect();
            failed.sort();
            if failed.is_empty() {
                answer(
                    Verdict::Pass,
                    format!("{} tests, all passed", results.len()),
                )
            } else {
                answer(
                    Verdict::Deviation,
                    format!(
                        "{} tests, {} failed: {}",
                        results.len(),
                        failed.len(),
                        failed.join(", ")
                    ),
                )
            }
        }
    };
    check(&SCRIPTED, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expunges_apply_in_order() {
        let uids = vec![10, 11, 12, 13, 14];
        assert_eq!(
            apply_expunges(uids.clone(), &[4, 2]),
            Some(vec![10, 12, 14])
        );
        assert_eq!(
            apply_expunges(uids.clone(), &[2, 3]),
            Some(vec![10, 12, 14])
        );
        assert_eq!(
            apply_expunges(uids.clone(), &[2, 4]),
            Some(vec![10, 12, 13])
        );
        assert_eq!(apply_expunges(uids, &[6]), None);
        assert_eq!(describe_order(&[4, 2]), "EXPUNGE 4, 2 (highest first)");
        assert_eq!(
            describe_order(&[2, 3]),
            "EXPUNGE 2, 3 (lowest first, renumbered)"
        );
    }

    #[test]
    fn idle_bands_are_coarse() {
        assert_eq!(idle_band(Some(Duration::from_millis(3))), "< 2 s");
        assert_eq!(idle_band(Some(Duration::from_millis(1500))), "< 2 s");
        assert_eq!(idle_band(Some(Duration::from_secs(7))), "2-15 s");
        assert_eq!(idle_band(None), "none within 15 s");
    }

    #[test]
    fn every_row_id_is_unique() {
        let mut ids: Vec<&str> = PROBES
            .iter()
            .flat_map(|p| p.rows.iter().map(|r| r.id))
            .chain([SCRIPTED.id])
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
