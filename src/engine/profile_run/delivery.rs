//! LMTP deliveries: a queue slot, a pooled connection, the marked message, the result.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use rand::SeedableRng as _;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::Ctx;
use super::user::UserShared;
use crate::lmtp::{LmtpClient, LmtpError, marker, with_marker, with_message_id};
use crate::metrics::{DeliveryEvent, ErrorKind, Event, Outcome};
use crate::profile::schedule::{Mailbox, splitmix64};
use crate::states::State;

/// Delivers message `msg` (0 for Spam) to `user`; `intended` is the planned time.
pub(super) async fn deliver(
    ctx: Arc<Ctx>,
    user: Arc<UserShared>,
    to: Mailbox,
    msg: u32,
    intended: Instant,
) {
    deliver_one(&ctx, &user, to, msg, intended).await;
    if ctx.deliveries.fetch_sub(1, Ordering::AcqRel) == 1 {
        ctx.deliveries_done.notify_waiters();
    }
}

async fn deliver_one(ctx: &Ctx, user: &UserShared, to: Mailbox, msg: u32, intended: Instant) {
    let Some(endpoint) = ctx.endpoints.lmtp.as_ref() else {
        ctx.skip();
        return;
    };
    let gauges = &ctx.metrics.gauges;
    gauges.queued.fetch_add(1, Ordering::Relaxed);
    let slot = ctx.lmtp_queue.acquire().await;
    gauges.queued.fetch_sub(1, Ordering::Relaxed);
    if ctx.stopping_now() {
        return;
    }

    // The same message for the same (seed, user, delivery) in every run.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(splitmix64(
        ctx.seed ^ user.marker_id(msg) ^ ((to == Mailbox::Spam) as u64) << 63,
    ));
    let source = match ctx.messages.next_message(&mut rng) {
        Ok(source) => source,
        Err(e) => {
            ctx.error(ErrorKind::Other, &user.name, None, e.to_string(), None);
            return;
        }
    };
    let id = user.marker_id(msg);
    let sent = SystemTime::now();
    let unique = format!("{:x}.{id:x}.{}@imaptest", ctx.run_id, to as u8);
    let body = with_marker(&with_message_id(&source.data, &unique), &marker(id, sent));
    let recipient = match to {
        Mailbox::Inbox => user.name.clone(),
        Mailbox::Spam => with_detail(&user.name, "Spam"),
    };

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
                finish(ctx, Outcome::Failed, intended, started, slot.queued);
                let message = format!("LMTP connect failed: {e}");
                ctx.error(ErrorKind::ConnectFailed, &user.name, None, message, None);
                return;
            }
        },
    };
    let connection = client.id();
    if to == Mailbox::Inbox {
        user.mail().submitted(msg, Instant::now());
    }
    let result = client.deliver("", &[&recipient], &body).await;
    let (outcome, reusable) = match &result {
        Ok(delivery) if delivery.all_delivered() => (Outcome::Ok, true),
        Ok(delivery) => {
            let reply = delivery
                .reply_for(&recipient)
                .map_or_else(String::new, ToString::to_string);
            ctx.error(
                ErrorKind::DeliveryRefused,
                &user.name,
                Some(connection),
                format!("LMTP delivery to {recipient} refused"),
                Some(reply),
            );
            (Outcome::No, true)
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
                format!("LMTP delivery to {recipient} failed: {e}"),
                e.reply().map(ToString::to_string),
            );
            let outcome = match e {
                LmtpError::Rejected { .. } => Outcome::No,
                _ => Outcome::Failed,
            };
            (outcome, e.is_recoverable())
        }
    };
    if reusable {
        let mut pool = ctx.lmtp_pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < ctx.lmtp_pool_max {
            pool.push(client);
        }
    }
    finish(ctx, outcome, intended, started, slot.queued);
    if outcome != Outcome::Ok && to == Mailbox::Inbox {
        user.mail().forget(msg);
    }
}

fn finish(
    ctx: &Ctx,
    outcome: Outcome,
    intended: Instant,
    started: Instant,
    waited: std::time::Duration,
) {
    ctx.metrics.send(Event::Command {
        state: State::Lmtp,
        outcome,
        intended,
        started,
        finished: Instant::now(),
    });
    ctx.metrics
        .send(Event::Delivery(DeliveryEvent::Finished { outcome, waited }));
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
