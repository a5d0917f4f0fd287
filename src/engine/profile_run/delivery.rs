//! LMTP deliveries: a queue slot, a pooled connection, the marked message, the result.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use rand::SeedableRng as _;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::Ctx;
use super::user::{Fate, UserShared};
use crate::lmtp::{LmtpClient, LmtpError, marker, with_marker, with_message_id};
use crate::metrics::{DeliveryEvent, ErrorKind, Event, Outcome, SkipReason};
use crate::ops::{ActionKind, Op, Server};
use crate::profile::schedule::{Mailbox, splitmix64};

/// Delivers message `msg` (0 for Spam) to `user`; `intended` is the planned time.
pub(super) async fn deliver(
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    to: Mailbox,
    msg: u32,
    intended: Instant,
) {
    let mut abandon = ctx.abandon.subscribe();
    let skipped = tokio::select! {
        skipped = deliver_one(&ctx, &user, to, msg, intended) => skipped,
        // The run is over (its stop grace too): whatever the server does, this
        // delivery ends now.
        _ = abandon.wait_for(|abandoned| *abandoned) => {
            ctx.abandoned.fetch_add(1, Ordering::Relaxed);
            if to == Mailbox::Inbox {
                user.mail().delivery_failed(msg);
            }
            Some(SkipReason::RunEnded)
        }
    };
    if let Some(reason) = skipped {
        ctx.skip(reason);
    } else {
        ctx.action_done();
    }
    user.delivery_ended.notify_waiters();
    if ctx.deliveries.fetch_sub(1, Ordering::AcqRel) == 1 {
        ctx.deliveries_done.notify_waiters();
    }
}

/// A delivery the run does not attempt because
/// [`crate::limits::MAX_DELIVERIES_IN_FLIGHT`] are already under way: skipped as
/// `over-limit` (the dispatcher reports them, a line a second).
pub(super) fn not_attempted(ctx: &Ctx, user: &UserShared, to: Mailbox, msg: u32) {
    if to == Mailbox::Inbox {
        user.mail().delivery_failed(msg);
    }
    ctx.skip(SkipReason::OverLimit);
}

/// The message body of a delivery: drawn to the population's `delivery_size` when it
/// has one (the final size, marker and Message-ID included), else the next message of
/// the run's source.
fn delivery_body(
    ctx: &Ctx,
    user: &UserShared,
    to: Mailbox,
    msg: u32,
    unique: &str,
    marker_text: &str,
) -> Result<Vec<u8>, crate::mail::MboxError> {
    // The same message for the same (seed, user, delivery) in every run.
    let seed = splitmix64(ctx.seed ^ user.marker_id(msg) ^ ((to == Mailbox::Spam) as u64) << 63);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let finish = |data: &[u8]| with_marker(&with_message_id(data, unique), marker_text);
    match ctx
        .delivery_sources
        .get(user.population as usize)
        .and_then(Option::as_ref)
    {
        Some(sized) => {
            let (size, attach) = sized.draw(&mut rng);
            let first = finish(&sized.message_of(size, attach, seed).data);
            // The marker and Message-ID add a fixed overhead: build again without it.
            let overhead = first.len() as i64 - size as i64;
            if overhead == 0 || size as i64 - overhead < crate::mail::sized::MIN_BUILT as i64 {
                return Ok(first);
            }
            Ok(finish(
                &sized
                    .message_of((size as i64 - overhead) as u64, attach, seed)
                    .data,
            ))
        }
        None => Ok(finish(&ctx.messages.next_message(&mut rng)?.data)),
    }
}

/// Delivers; `Some(reason)` when the delivery could not be attempted.
async fn deliver_one(
    ctx: &Ctx,
    user: &UserShared,
    to: Mailbox,
    msg: u32,
    intended: Instant,
) -> Option<SkipReason> {
    let failed = |_: &Ctx| {
        if to == Mailbox::Inbox {
            user.mail().delivery_failed(msg);
        }
    };
    let Some(endpoint) = ctx.endpoints.lmtp.as_ref() else {
        failed(ctx);
        return Some(SkipReason::NoServer);
    };
    let gauges = &ctx.metrics.gauges;
    gauges.queued.fetch_add(1, Ordering::Relaxed);
    let slot = ctx.lmtp_queue.acquire().await;
    gauges.queued.fetch_sub(1, Ordering::Relaxed);
    if ctx.stopping_now() {
        failed(ctx);
        return Some(SkipReason::RunEnded);
    }

    let id = user.marker_id(msg);
    let sent = SystemTime::now();
    let unique = format!("{:x}.{id:x}.{}@imaptest", ctx.run_id, to as u8);
    let body = match delivery_body(ctx, user, to, msg, &unique, &marker(id, sent)) {
        Ok(body) => bytes::Bytes::from(body),
        Err(e) => {
            failed(ctx);
            let message = format!("LMTP delivery: no message to send: {e}");
            ctx.error(ErrorKind::Other, &user.name, None, message, None);
            return Some(SkipReason::DeliveryFailed);
        }
    };
    // Content truth for INBOX deliveries (every Spam delivery carries message 0, so
    // its marker names no single message).
    if let Some(tracking) = ctx.tracking.as_ref().filter(|_| to == Mailbox::Inbox) {
        tracking.delivered(id, body.clone());
    }
    let recipient = match to {
        Mailbox::Inbox => user.name.clone(),
        Mailbox::Spam => with_detail(&user.name, "Spam"),
    };
    let mut recipients = vec![recipient.clone()];
    recipients.extend(ctx.co_recipients(user, msg, to));
    let extra = recipients.len() - 1;
    if extra > 0 {
        // The dispatcher offered one recipient; these go in the same transaction.
        ctx.metrics
            .send(Event::Delivery(DeliveryEvent::MoreRecipients {
                recipients: extra as u32,
            }));
    }

    let started = Instant::now();
    let pooled = ctx
        .lmtp_pool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop();
    let mut client = match pooled {
        Some(client) => client,
        None => match LmtpClient::connect(endpoint, ctx.connection_id(), &ctx.lmtp_options).await {
            Ok(client) => client,
            Err(e) => {
                ctx.metrics
                    .connect_failed(Server::Lmtp, e.failed_phase(), started);
                finish(
                    ctx,
                    to,
                    &vec![Outcome::Failed; extra + 1],
                    intended,
                    started,
                    slot.queued,
                );
                failed(ctx);
                let message = format!("LMTP connect failed: {e}");
                ctx.error(ErrorKind::ConnectFailed, &user.name, None, message, None);
                return None;
            }
        },
    };
    let connection = client.id();
    if to == Mailbox::Inbox {
        user.mail().submitted(msg, Instant::now());
    }
    ctx.metrics.send(Event::MessageSent {
        bytes: body.len() as u64,
        written: false,
    });
    let rcpts: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let result = client.deliver("", &rcpts, &body).await;
    ctx.metrics.timed(client.timings().drain());
    let (outcomes, reusable) = match &result {
        Ok(delivery) => {
            let outcomes: Vec<Outcome> = recipients
                .iter()
                .map(|r| match delivery.reply_for(r) {
                    Some(reply) if reply.is_positive() => Outcome::Ok,
                    reply => {
                        let reply = reply.map_or_else(String::new, ToString::to_string);
                        ctx.error(
                            ErrorKind::DeliveryRefused,
                            &user.name,
                            Some(connection),
                            format!("LMTP delivery to {r} refused"),
                            Some(reply),
                        );
                        Outcome::No
                    }
                })
                .collect();
            (outcomes, true)
        }
        Err(e) => {
            let kind = match e {
                LmtpError::Rejected { .. } => ErrorKind::DeliveryRefused,
                _ => ErrorKind::DeliveryFailed,
            };
            ctx.error(
                kind,
                &user.name,
                Some(connection),
                format!("LMTP delivery to {} failed: {e}", rcpts.join(", ")),
                e.reply().map(ToString::to_string),
            );
            let outcome = match e {
                LmtpError::Rejected { .. } => Outcome::No,
                _ => Outcome::Failed,
            };
            (vec![outcome; recipients.len()], e.is_recoverable())
        }
    };
    if reusable {
        let mut pool = ctx.lmtp_pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < ctx.lmtp_pool_max {
            pool.push(client);
        }
    }
    finish(ctx, to, &outcomes, intended, started, slot.queued);
    if to == Mailbox::Inbox {
        if outcomes[0] == Outcome::Ok {
            user.mail().set_fate(msg, Fate::Delivered);
        } else {
            user.mail().delivery_failed(msg);
        }
    }
    None
}

/// The delivery action's row (OK when the first recipient got it) and every
/// recipient's outcome.
fn finish(
    ctx: &Ctx,
    to: Mailbox,
    outcomes: &[Outcome],
    intended: Instant,
    started: Instant,
    waited: std::time::Duration,
) {
    let action = match to {
        Mailbox::Inbox => ActionKind::DeliverInbox,
        Mailbox::Spam => ActionKind::DeliverSpam,
    };
    ctx.metrics.send(Event::Command {
        op: Op::Action(action),
        outcome: outcomes.first().copied().unwrap_or(Outcome::Failed),
        intended,
        started,
        finished: Instant::now(),
    });
    let count = |want: &[Outcome]| outcomes.iter().filter(|o| want.contains(o)).count() as u32;
    ctx.metrics.send(Event::Delivery(DeliveryEvent::Finished {
        delivered: count(&[Outcome::Ok]),
        refused: count(&[Outcome::No, Outcome::Bad]),
        failed: count(&[Outcome::Failed]),
        waited,
    }));
}

/// `user+detail@domain` (or `user+detail` without a domain).
pub(super) fn with_detail(address: &str, detail: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{detail}@{domain}"),
        None => format!("{address}+{detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_detail;

    #[test]
    fn detail_goes_before_the_domain() {
        assert_eq!(with_detail("a@example.com", "Spam"), "a+Spam@example.com");
        assert_eq!(with_detail("testuser1", "Spam"), "testuser1+Spam");
    }
}
