//! The mail actions of the schedule on an IMAP session: read, delete, move to Spam,
//! reply, and the Drafts → Sent flow.

use std::time::Instant;

use super::super::user::Fate;
use super::{DRAFTS, INBOX, SENT, SPAM, Session};
use crate::imap::response::{Code, Response};
use crate::metrics::{Event, SkipReason};
use crate::states::State;

/// How long an action waits for its message's delivery to end before it is skipped.
const VISIBILITY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Session {
    /// The UID of message `msg`, catching up with new mail if it is not known yet. A
    /// message still being delivered is waited for (up to [`VISIBILITY_WAIT`], checked
    /// again after each of the user's deliveries ends). `None`: skipped, counted by
    /// reason.
    pub(super) async fn uid_of(&mut self, msg: u32, at: Instant) -> Option<u32> {
        let deadline = tokio::time::Instant::now() + VISIBILITY_WAIT;
        let mut fetched_after_delivery = false;
        loop {
            if self.conns.is_empty() {
                self.skip(SkipReason::SessionDown);
                return None;
            }
            // UID 0: only a POP3 client has seen it so far.
            if let Some(&uid) = self.user.mail().inbox.get(&msg)
                && uid != 0
            {
                return Some(uid);
            }
            let fate = self.user.mail().fate(msg);
            match fate {
                Some(Fate::Failed) => {
                    self.skip(SkipReason::DeliveryFailed);
                    return None;
                }
                Some(Fate::Gone) => {
                    self.skip(SkipReason::MessageGone);
                    return None;
                }
                Some(Fate::InFlight) => {
                    // Wait for the delivery to end (or the deadline), then look again.
                    let ended = self.user.delivery_ended.notified();
                    if self.user.mail().fate(msg) == Some(Fate::InFlight) {
                        let waited = tokio::time::timeout_at(deadline, ended).await;
                        if waited.is_err() || self.ctx.stopping_now() {
                            self.skip(SkipReason::NotYetVisible);
                            return None;
                        }
                    }
                    continue;
                }
                Some(Fate::Delivered) | None => {
                    if fetched_after_delivery {
                        // Accepted by the server, not in INBOX: POP3 took it, or it
                        // was never ours to see (no delivery offered in this run).
                        let reason = if self.user.mail().inbox.get(&msg) == Some(&0) {
                            SkipReason::MessageGone
                        } else {
                            SkipReason::NotYetVisible
                        };
                        self.skip(reason);
                        return None;
                    }
                    fetched_after_delivery = true;
                    // Dovecot shows new mail after a command, not during it: NOOP
                    // first, then fetch from UIDNEXT.
                    if self
                        .simple(0, State::Noop, at, "NOOP".into())
                        .await
                        .is_some()
                    {
                        self.fetch_new(0, at).await;
                    }
                }
            }
        }
    }

    pub(super) async fn read(&mut self, msg: u32, at: Instant) {
        let Some(uid) = self.uid_of(msg, at).await else {
            return;
        };
        let items = self
            .kind()
            .fetch_on_open
            .clone()
            .unwrap_or_else(|| "BODY.PEEK[]".to_owned());
        let items = parenthesised(&items);
        if self
            .simple(0, State::Fetch2, at, format!("UID FETCH {uid} {items}"))
            .await
            .is_none()
        {
            return;
        }
        let line = format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)");
        self.simple(0, State::Store, at, line).await;
    }

    pub(super) async fn delete(&mut self, msg: u32, at: Instant) {
        let Some(uid) = self.uid_of(msg, at).await else {
            return;
        };
        if self.expunge_uid(0, uid, at).await {
            self.user.mail().forget(msg);
        }
    }

    /// `\Deleted` and UID EXPUNGE (plain EXPUNGE without UIDPLUS).
    pub(super) async fn expunge_uid(&mut self, c: usize, uid: u32, at: Instant) -> bool {
        let line = format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)");
        if self.simple(c, State::Delete, at, line).await.is_none() {
            return false;
        }
        let line = if self.conns[c].client.capabilities().has("UIDPLUS") {
            format!("UID EXPUNGE {uid}")
        } else {
            "EXPUNGE".to_owned()
        };
        self.simple(c, State::Expunge, at, line).await.is_some()
    }

    pub(super) async fn move_to_spam(&mut self, msg: u32, at: Instant) {
        let Some(uid) = self.uid_of(msg, at).await else {
            return;
        };
        if !self.ensure_mailbox(0, SPAM, at).await {
            return;
        }
        let Some(conn) = self.conns.first() else {
            return;
        };
        let caps = conn.client.capabilities();
        let moved = if caps.has("MOVE") || caps.has("IMAP4rev2") {
            self.simple(0, State::Move, at, format!("UID MOVE {uid} {SPAM}"))
                .await
                .is_some_and(|done| done.is_ok())
        } else {
            let copied = self
                .simple(0, State::Copy, at, format!("UID COPY {uid} {SPAM}"))
                .await
                .is_some_and(|done| done.is_ok());
            copied && self.expunge_uid(0, uid, at).await
        };
        if moved {
            self.user.mail().forget(msg);
        }
    }

    pub(super) async fn reply(&mut self, msg: u32, draft: u32, at: Instant) {
        if let Some(uid) = self.uid_of(msg, at).await {
            let line = format!("UID STORE {uid} +FLAGS.SILENT (\\Answered)");
            if self.simple(0, State::Store, at, line).await.is_none() {
                return;
            }
        }
        self.write_draft(draft, at).await;
    }

    /// The connection for Drafts/Sent work: one with Drafts selected, else the first.
    pub(super) fn drafts_conn(&self) -> usize {
        self.conns
            .iter()
            .position(|c| c.mailbox == DRAFTS)
            .unwrap_or(0)
    }

    pub(super) async fn append(&mut self, mailbox: &str, flags: &str, at: Instant) -> Option<u32> {
        let c = self.drafts_conn();
        let source = self.ctx.write_sources[self.user.population as usize]
            .clone()
            .unwrap_or_else(|| self.ctx.messages.clone());
        let message = match source.next_message(&mut self.rng) {
            Ok(message) => message,
            Err(e) => {
                let user = &self.user.name;
                self.ctx.error(
                    crate::metrics::ErrorKind::Other,
                    user,
                    None,
                    e.to_string(),
                    None,
                );
                return None;
            }
        };
        let done = self
            .run(c, State::Append, at, |client| {
                let (tag, builder) = client.command("APPEND");
                let parts = builder
                    .string(mailbox.as_bytes())
                    .raw(flags)
                    .literal(&message.data)
                    .finish();
                (tag, parts)
            })
            .await?;
        self.ctx.metrics.send(Event::MessageSent {
            bytes: message.data.len() as u64,
            written: true,
        });
        if !done.is_ok() {
            return None;
        }
        appended_uid(&done.line)
    }

    pub(super) async fn write_draft(&mut self, draft: u32, at: Instant) {
        if self.conns.is_empty() {
            self.skip(SkipReason::SessionDown);
            return;
        }
        if !self.ensure_mailbox(0, DRAFTS, at).await {
            return;
        }
        if let Some(uid) = self.append(DRAFTS, "(\\Draft)", at).await {
            self.user.mail().drafts.insert(draft, uid);
        }
    }

    pub(super) async fn send_draft(&mut self, draft: u32, at: Instant) {
        if self.conns.is_empty() {
            self.skip(SkipReason::SessionDown);
            return;
        }
        if !self.ensure_mailbox(0, SENT, at).await {
            return;
        }
        if self.append(SENT, "(\\Seen)", at).await.is_none() && self.conns.is_empty() {
            return;
        }
        let Some(uid) = self.user.mail().drafts.remove(&draft) else {
            return;
        };
        let c = self.drafts_conn();
        if self.conns[c].mailbox == DRAFTS {
            self.expunge_uid(c, uid, at).await;
            return;
        }
        // One connection: visit Drafts and come back to INBOX.
        if self.select(c, DRAFTS, at).await && self.expunge_uid(c, uid, at).await {
            self.select(c, INBOX, at).await;
        }
    }
}

/// The UID in a tagged `OK [APPENDUID v uid]`.
fn appended_uid(line: &str) -> Option<u32> {
    let data = format!("{line}\r\n");
    match crate::imap::response::parse(data.as_bytes()) {
        Ok(Response::Tagged { text, .. }) => match text.code {
            Some(Code::AppendUid { uids, .. }) => uids.ranges().first().map(|&(lo, _)| lo),
            _ => None,
        },
        _ => None,
    }
}

fn parenthesised(items: &str) -> String {
    let items = items.trim();
    if items.starts_with('(') {
        items.to_owned()
    } else {
        format!("({items})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appenduid_is_read_from_the_tagged_line() {
        assert_eq!(
            appended_uid("a1 OK [APPENDUID 1700000000 42] Append completed."),
            Some(42)
        );
        assert_eq!(appended_uid("a1 OK Append completed."), None);
    }

    #[test]
    fn fetch_items_are_parenthesised_once() {
        assert_eq!(parenthesised("BODY[]"), "(BODY[])");
        assert_eq!(parenthesised("(FLAGS UID)"), "(FLAGS UID)");
    }
}
